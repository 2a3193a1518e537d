"""Caterpillar plot: conditional modes of the random effects with their intervals (lme4's ``dotplot(ranef(m, condVar = TRUE))``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..exceptions import ModelError
from ._common import POINT, REFERENCE, RanefPanel, new_figure, ranef_panels, root_figure, z_value

if TYPE_CHECKING:
    from ..results import LinearMixedModelResults

Show = Literal["extremes", "all", "sample"]


def _select(panels: list[RanefPanel], show: str, max_levels: int, rank_by: str, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """Indices of the levels to draw (in plotting order, bottom to top) and whether to label them."""
    n = panels[0].mode.size
    if n <= max_levels:
        chosen = np.arange(n)
    elif show == "all":
        chosen = np.arange(n)
    elif show == "sample":
        chosen = rng.choice(n, size=max_levels, replace=False)
    else:  # extremes: largest |mode|/sd (or |mode|) over the factor's columns
        score = np.zeros(n)
        for p in panels:
            a = np.abs(p.mode)
            if rank_by == "z":
                a = np.divide(a, p.sd, out=np.zeros_like(a), where=p.sd > 0)
            score = np.maximum(score, a)
        chosen = np.argsort(-score, kind="stable")[:max_levels]
    chosen = chosen[np.argsort(panels[0].mode[chosen], kind="stable")]
    return chosen, chosen.size <= max_levels


def _draw(ax: Axes, panel: RanefPanel, idx: np.ndarray, z: float, labelled: bool, first: bool) -> None:
    y = np.arange(idx.size)
    mode, sd = panel.mode[idx], panel.sd[idx]
    dense = not labelled
    ax.axvline(0.0, color=REFERENCE, linewidth=0.8, zorder=0)
    ax.hlines(y, mode - z * sd, mode + z * sd, color=POINT, linewidth=0.4 if dense else 1.2, alpha=0.35 if dense else 1.0, rasterized=dense)
    ax.plot(mode, y, "o", color=POINT, markersize=1.5 if dense else 3.5, linestyle="none", rasterized=dense)
    ax.set_ylim(-0.7, idx.size - 0.3)
    ax.set_title(panel.title, fontsize=10)
    ax.set_xlabel("conditional mode")
    if not first:  # the y axis is shared with the factor's first panel, which carries the labels
        ax.tick_params(axis="y", left=False, labelleft=False)
    elif labelled:
        ax.set_yticks(y, labels=list(panel.levels[idx]), fontsize=8 if idx.size <= 30 else 6)
    else:
        ax.set_yticks([])
    ax.grid(axis="x", color="#eeeeee", linewidth=0.6)


def caterpillar(
    result: "LinearMixedModelResults",
    group: str | None = None,
    *,
    term: str | None = None,
    level: float = 0.95,
    max_levels: int = 60,
    show: Show = "extremes",
    rank_by: Literal["z", "abs"] = "z",
    seed: int | None = 0,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Conditional modes of the random effects with ±z·(conditional SD) intervals, sorted.

    One row of panels per grouping factor, one panel per random-effect column; the levels of a
    factor are sorted by the mode of its first column and share the vertical axis, so one level's
    effects line up across its panels (as lme4's ``dotplot(ranef(m, condVar = TRUE))``).

    Parameters
    ----------
    result : LinearMixedModelResults
        A fitted model.
    group : str, optional
        Grouping factor to draw (e.g. ``"Subject"``); all factors by default.
    term : str, optional
        Random-effect column to draw (e.g. ``"(Intercept)"``, ``"Days"``); all by default.
    level : float
        Coverage of the intervals (0.95: ±1.96 conditional SDs).
    max_levels : int
        A factor with more levels than this is thinned according to ``show``; levels are labelled
        only when at most this many are drawn.
    show : {"extremes", "all", "sample"}
        For factors with more than ``max_levels`` levels: the ``max_levels`` most extreme levels
        (labelled), all levels as an unlabelled point cloud, or a random sample of ``max_levels``
        levels (labelled).
    rank_by : {"z", "abs"}
        What "extreme" means: largest ``|mode| / sd`` or largest ``|mode|`` (over the factor's columns).
    seed : int, optional
        Seed of the random sample for ``show="sample"``.
    ax : matplotlib.axes.Axes, optional
        Draw into this Axes; only possible when a single panel is drawn (one factor, one column).
    figsize : tuple of float, optional
        Figure size in inches; chosen from the number of levels by default.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ModelError
        For an unknown ``group`` or ``term``, a bad ``show``/``rank_by``/``level``/``max_levels``,
        or an ``ax`` when several panels are to be drawn.

    Examples
    --------
    >>> fig = caterpillar(fit, "Subject")  # doctest: +SKIP
    >>> fig.savefig("ranef.png")  # doctest: +SKIP
    """
    if show not in ("extremes", "all", "sample"):
        raise ModelError(f"show must be 'extremes', 'all' or 'sample', got {show!r}")
    if rank_by not in ("z", "abs"):
        raise ModelError(f"rank_by must be 'z' or 'abs', got {rank_by!r}")
    if max_levels < 1:
        raise ModelError(f"max_levels must be at least 1, got {max_levels}")
    z = z_value(level)
    rows = ranef_panels(result, group, term)
    rng = np.random.default_rng(seed)
    picks = [_select(panels, show, max_levels, rank_by, rng) for panels in rows]
    npanels = sum(len(p) for p in rows)
    if ax is not None and npanels != 1:
        raise ModelError(f"ax= needs a single panel but {npanels} would be drawn; choose one with group= and term=")

    if ax is not None:
        idx, labelled = picks[0]
        _draw(ax, rows[0][0], idx, z, labelled, True)
        return root_figure(ax)

    heights = [max(1.6, 0.16 * idx.size + 0.9) if labelled else 3.5 for idx, labelled in picks]
    ncols = max(len(p) for p in rows)
    if figsize is None:
        figsize = (2.2 + 3.2 * ncols, min(sum(heights) + 0.4, 40.0))
    fig = new_figure(figsize, figsize)
    gs = fig.add_gridspec(len(rows), 1, height_ratios=heights)
    for r, (panels, (idx, labelled)) in enumerate(zip(rows, picks)):
        sub = gs[r].subgridspec(1, ncols)
        first_ax: Axes | None = None
        for j, panel in enumerate(panels):
            a = fig.add_subplot(sub[0, j], sharey=first_ax)
            _draw(a, panel, idx, z, labelled, first_ax is None)
            first_ax = first_ax or a
        n = panels[0].mode.size
        if idx.size < n and first_ax is not None:
            how = {"extremes": "most extreme", "sample": "randomly chosen", "all": ""}[show]
            first_ax.set_title(f"{panels[0].title}  ({idx.size} {how} of {n} levels)", fontsize=10)
        elif not labelled and first_ax is not None:
            first_ax.set_title(f"{panels[0].title}  (all {n} levels)", fontsize=10)
    fig.suptitle(f"Conditional modes with {100 * level:g}% intervals", fontsize=11)
    return fig
