"""Diagnostics of GLMM fits: binned residuals and observed against fitted means by group."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..exceptions import ModelError
from ._common import POINT, REFERENCE, SUBJECT, single_axes

if TYPE_CHECKING:
    from ..glmm.results import GeneralizedLinearMixedModelResults


def binned_residuals_plot(
    result: GeneralizedLinearMixedModelResults,
    term: str | None = None,
    *,
    n_bins: int | None = None,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Binned response residuals with their ±1.96 SE band (performance's ``plot(binned_residuals(m))``).

    Parameters
    ----------
    result : GeneralizedLinearMixedModelResults
    term : str, optional
        Bin by this numeric column instead of the fitted means.
    n_bins : int, optional
        Default ``round(√n)``.
    ax : matplotlib.axes.Axes, optional
    figsize : tuple of float, optional

    Returns
    -------
    matplotlib.figure.Figure
        Bins outside the band are drawn in the highlight colour; the title gives the share inside.
    """
    from ..glmm.binned import binned_residuals

    table = binned_residuals(result, term, n_bins)
    fig, ax = single_axes(ax, figsize, (5.5, 4.0))
    order = np.argsort(table["xbar"].to_numpy())
    x = table["xbar"].to_numpy()[order]
    band = table["se"].to_numpy()[order]
    ax.axhline(0.0, color=REFERENCE, linewidth=0.8)
    ax.plot(x, band, "-", color=REFERENCE, linewidth=1.0)
    ax.plot(x, -band, "-", color=REFERENCE, linewidth=1.0)
    inside = (table["group"] == "yes").to_numpy()
    ax.plot(table["xbar"][inside], table["ybar"][inside], "o", color=POINT, linestyle="none", markersize=4)
    ax.plot(table["xbar"][~inside], table["ybar"][~inside], "o", color=SUBJECT, linestyle="none", markersize=4)
    ax.set_xlabel(term or "fitted mean")
    ax.set_ylabel("average residual")
    ax.set_title(f"Binned residuals: {100 * table.attrs['resid_ok']:.0f}% of bins within ±1.96 SE", fontsize=10)
    return fig


def observed_vs_fitted(
    result: GeneralizedLinearMixedModelResults,
    group: str | None = None,
    *,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Observed against fitted mean response of each level of a grouping factor.

    Both means weight rows by their prior weights (binomial trials), so for a binomial fit the observed
    value is the group's proportion of successes. Conditional fitted means (with the group's modes) and
    population-level ones (random effects 0) are both drawn: the first should lie near the diagonal,
    the gap to the second is the group's random effect on the response scale.

    Parameters
    ----------
    result : GeneralizedLinearMixedModelResults
    group : str, optional
        A grouping factor of the random effects (default: the first).
    ax : matplotlib.axes.Axes, optional
    figsize : tuple of float, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    groups = [t.group for t in result.terms]
    group = groups[0] if group is None else group
    if group not in groups:
        raise ModelError(f"{group!r} is not a grouping factor of the random effects ({', '.join(dict.fromkeys(groups))})")
    table = observed_fitted_table(result, group)
    fig, ax = single_axes(ax, figsize, (4.8, 4.5))
    lo = float(min(table[["observed", "conditional", "population"]].min()))
    hi = float(max(table[["observed", "conditional", "population"]].max()))
    ax.plot([lo, hi], [lo, hi], "-", color=REFERENCE, linewidth=0.8)
    ax.plot(table["conditional"], table["observed"], "o", color=POINT, linestyle="none", markersize=4, label="conditional")
    ax.plot(table["population"], table["observed"], "x", color=SUBJECT, linestyle="none", markersize=4, label="population")
    ax.set_xlabel("fitted mean")
    ax.set_ylabel("observed mean")
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(f"Observed vs fitted by {group}", fontsize=10)
    return fig


def observed_fitted_table(result: GeneralizedLinearMixedModelResults, group: str) -> pd.DataFrame:
    """Per level of ``group``: rows, weighted observed mean, conditional and population fitted means."""
    term = next(t for t in result.terms if t.group == group)
    codes = np.asarray(term.refs)
    r = result.model.response
    w = r.wt
    k = len(term.levels)
    tot = np.bincount(codes, weights=w, minlength=k)
    out = pd.DataFrame({
        "level": list(term.levels),
        "n": np.bincount(codes, minlength=k),
        "observed": np.bincount(codes, weights=w * r.y, minlength=k) / tot,
        "conditional": np.bincount(codes, weights=w * result.fitted, minlength=k) / tot,
        "population": np.bincount(codes, weights=w * result.fitted_fixed, minlength=k) / tot,
    })
    return out
