"""Variance partition: the share of variance per grouping factor and residual, with the ICC."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._common import single_axes

if TYPE_CHECKING:
    from ..results import LinearMixedModelResults

_RESIDUAL = "#bbbbbb"
_FIXED = "#4d4d4d"


def variance_partition(
    result: "LinearMixedModelResults",
    *,
    include_fixed: bool = False,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """A stacked horizontal bar of the share of variance of each grouping factor and the residual.

    A factor's variance is that of its random effects averaged over the observations
    (``mean_i z_i' G_k z_i``, the variance itself for a random intercept; see
    :func:`mixedmodels.inference.partition.variance_components`), so without the fixed part the
    factors' shares are their adjusted intraclass correlations and the title gives the total.

    Parameters
    ----------
    result : LinearMixedModelResults
        A fitted model.
    include_fixed : bool
        Add the variance of the fixed-effects predictions ``var(Xβ̂)`` as a segment; the factors'
        shares are then conditional ICCs and the title adds Nakagawa's marginal and conditional R².
    ax : matplotlib.axes.Axes, optional
        Draw into this Axes instead of a new Figure.
    figsize : tuple of float, optional
        Size of a new Figure in inches.

    Returns
    -------
    matplotlib.figure.Figure
        One bar segment (patch) per grouping factor and the residual (and the fixed part).
    """
    from ..inference.partition import icc, variance_components

    vc = variance_components(result)
    names = list(vc["random"])
    values = list(vc["random"].values())
    if include_fixed:
        names, values = ["fixed effects"] + names, [vc["fixed"]] + values
    names.append("residual")
    values.append(vc["residual"])
    v = np.array(values, dtype=float)
    total = v.sum()
    share = v / total if total > 0 else np.zeros_like(v)

    own = ax is None
    fig, ax = single_axes(ax, figsize, (7.0, 2.6))
    cycle = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
    colours, k = [], 0
    for name in names:
        if name == "residual":
            colours.append(_RESIDUAL)
        elif name == "fixed effects" and include_fixed:
            colours.append(_FIXED)
        else:
            colours.append(cycle[k % len(cycle)])
            k += 1
    left = np.r_[0.0, np.cumsum(share)[:-1]]
    for name, s, x0, c in zip(names, share, left, colours):
        ax.barh(0, s, left=x0, height=0.6, color=c, edgecolor="white", linewidth=1, label=f"{name}: {100 * s:.1f}%")
        if s >= 0.06:
            dark = c in (_FIXED, "#1f77b4", "#9467bd", "#8c564b")
            ax.text(x0 + s / 2, 0, f"{100 * s:.0f}%", ha="center", va="center", fontsize=9, color="white" if dark else "black")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.5, 0.5)
    ax.set_yticks([])
    ax.xaxis.set_major_formatter(lambda x, _: f"{100 * x:.0f}%")
    ax.set_xlabel("share of variance")
    table = icc(result)
    title = f"adjusted ICC = {table.loc['total', 'adjusted']:.3f}"
    if include_fixed:
        f, ran = vc["fixed"], sum(vc["random"].values())
        title = (
            f"conditional ICC = {table.loc['total', 'conditional']:.3f};  "
            f"R² marginal = {f / total:.3f}, conditional = {(f + ran) / total:.3f}"
        ) if total > 0 else title
    ax.set_title(title, fontsize=10)
    if own:
        fig.legend(loc="outside lower center", ncols=min(len(names), 4), fontsize=8, frameon=False)
    else:
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    return fig
