"""Residual and random-effect diagnostics: residuals against fitted values and normal QQ plots."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._common import POINT, REFERENCE, SUBJECT, new_figure, normal_quantiles, panel_grid, qq_line, ranef_panels, single_axes

if TYPE_CHECKING:
    from ..results import LinearMixedModelResults

#: Above this many points, markers shrink, fade and are rasterised (keeps PDFs and SVGs small).
DENSE_POINTS = 5000


def _marker(n: int) -> dict:
    if n > DENSE_POINTS:
        return {"markersize": 1.5, "alpha": 0.25, "rasterized": True}
    return {"markersize": 3.5, "alpha": 0.7}


def _binned_mean(x: np.ndarray, y: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Means of x and y within quantile bins of x: a cheap, robust trend line."""
    order = np.argsort(x, kind="stable")
    chunks = np.array_split(order, min(bins, max(1, x.size // 5)))
    chunks = [c for c in chunks if c.size]
    return np.array([x[c].mean() for c in chunks]), np.array([y[c].mean() for c in chunks])


def residuals_vs_fitted(
    result: "LinearMixedModelResults",
    *,
    standardized: bool = False,
    smooth: bool = True,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Conditional residuals ``y − Xβ̂ − Zb̂`` against fitted values ``Xβ̂ + Zb̂`` (lme4's ``plot(m)``).

    Parameters
    ----------
    result : LinearMixedModelResults
        A fitted model.
    standardized : bool
        Divide the residuals by σ̂ (Pearson residuals).
    smooth : bool
        Add a trend line (means of the residuals within 20 quantile bins of the fitted values);
        it should stay near zero.
    ax : matplotlib.axes.Axes, optional
        Draw into this Axes instead of a new Figure.
    figsize : tuple of float, optional
        Size of a new Figure in inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = single_axes(ax, figsize, (5.5, 4.0))
    fitted = np.asarray(result.fitted, dtype=float)
    res = np.asarray(result.residuals, dtype=float)
    if standardized:
        res = res / result.sigma
    ax.axhline(0.0, color=REFERENCE, linewidth=0.8)
    ax.plot(fitted, res, "o", color=POINT, linestyle="none", **_marker(res.size))
    if smooth and res.size >= 10:
        bx, by = _binned_mean(fitted, res, 20)
        ax.plot(bx, by, "-", color=SUBJECT, linewidth=1.5)
    ax.set_xlabel("fitted values")
    ax.set_ylabel("standardized residuals" if standardized else "residuals")
    ax.set_title("Residuals vs fitted", fontsize=10)
    return fig


def qq_residuals(
    result: "LinearMixedModelResults",
    *,
    standardized: bool = True,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Normal QQ plot of the conditional residuals, with R's ``qqline`` (through the quartiles).

    Parameters
    ----------
    result : LinearMixedModelResults
        A fitted model.
    standardized : bool
        Divide the residuals by σ̂.
    ax : matplotlib.axes.Axes, optional
        Draw into this Axes instead of a new Figure.
    figsize : tuple of float, optional
        Size of a new Figure in inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = single_axes(ax, figsize, (4.5, 4.5))
    res = np.sort(np.asarray(result.residuals, dtype=float))
    if standardized:
        res = res / result.sigma
    q = normal_quantiles(res.size)
    ax.plot(q, res, "o", color=POINT, linestyle="none", **_marker(res.size))
    qq_line(ax, res, q)
    ax.set_xlabel("standard normal quantiles")
    ax.set_ylabel("standardized residuals" if standardized else "residuals")
    ax.set_title("Normal QQ plot of residuals", fontsize=10)
    return fig


def qq_ranef(
    result: "LinearMixedModelResults",
    group: str | None = None,
    *,
    term: str | None = None,
    ncols: int = 3,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Normal QQ plots of the conditional modes, one panel per grouping factor and column.

    Parameters
    ----------
    result : LinearMixedModelResults
        A fitted model.
    group : str, optional
        Grouping factor to draw; all by default.
    term : str, optional
        Random-effect column to draw (``"(Intercept)"``, ``"Days"``); all by default.
    ncols : int
        Panels per row.
    figsize : tuple of float, optional
        Figure size in inches; about 3.2 × 3 inches per panel by default.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ModelError
        For an unknown ``group`` or ``term``.

    Notes
    -----
    Conditional modes are shrunken towards zero, so their spread is smaller than the estimated
    random-effect SD; look at the shape (straightness), not the slope.
    """
    panels = [p for row in ranef_panels(result, group, term, condvar=False) for p in row]
    n = len(panels)
    cols = max(1, min(ncols, n))
    nrows = -(-n // cols)
    fig = new_figure(figsize, (0.6 + 3.2 * cols, 0.4 + 3.0 * nrows))
    for ax, panel in zip(panel_grid(fig, n, cols, sharex=False), panels):
        b = np.sort(panel.mode)
        q = normal_quantiles(b.size)
        ax.plot(q, b, "o", color=POINT, linestyle="none", **_marker(b.size))
        qq_line(ax, b, q)
        ax.set_title(f"{panel.title}  ({b.size} levels)", fontsize=10)
        ax.set_xlabel("standard normal quantiles", fontsize=9)
        ax.set_ylabel("conditional mode", fontsize=9)
    return fig
