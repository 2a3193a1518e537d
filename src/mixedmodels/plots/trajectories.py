"""Growth-curve panels: each subject's observations, its fitted curve and the population curve."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..exceptions import DataError, MixedModelsError, ModelError
from ._common import POINT, POPULATION, SUBJECT, model_frame, new_figure, panel_grid

if TYPE_CHECKING:
    from ..results import LinearMixedModelResults
    from ..terms import RandomEffectsTerm


def _pick_term(result: "LinearMixedModelResults", group: str | None, time: str) -> "RandomEffectsTerm":
    terms = list(result.terms)
    if group is not None:
        for t in terms:
            if t.group == group:
                return t
        groups = list(dict.fromkeys(t.group for t in terms))
        raise ModelError(f"the model has no grouping factor {group!r}; its grouping factors are {', '.join(map(repr, groups))}")
    for t in terms:  # the factor with a random slope on time is the "subject"
        if time in t.cnames:
            return t
    return terms[0]


def _pick_levels(term: "RandomEffectsTerm", levels: Sequence[object] | None, max_panels: int) -> np.ndarray:
    """Level indices to draw: the requested ones, or up to ``max_panels`` spread evenly over the levels."""
    if levels is not None:
        index = {lab: i for i, lab in enumerate(term.levels)}
        wanted = [str(v) for v in levels]
        unknown = [v for v in wanted if v not in index]
        if unknown:
            raise DataError(f"{term.group!r} has no level(s) {', '.join(map(repr, unknown[:5]))}")
        if not wanted:
            raise DataError("levels= is empty")
        return np.array([index[v] for v in wanted])
    n = term.nlevels
    if n <= max_panels:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_panels).round().astype(int))


def _curves(result: "LinearMixedModelResults", frame: pd.DataFrame, rows_by_level: list[np.ndarray], time: str, n_grid: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(t, subject fit, population fit)`` per level: on a grid of ``time`` where the subject's other
    variables are constant, else at its observed rows sorted by time."""
    response = result.design.response_name
    others = [c for c in frame.columns if c not in (time, response)]
    out: list[tuple[np.ndarray, np.ndarray, np.ndarray] | None] = [None] * len(rows_by_level)
    grids, owners = [], []
    for k, rows in enumerate(rows_by_level):
        sub = frame.iloc[rows]
        constant = all(sub[c].nunique(dropna=False) <= 1 for c in others)
        tvals = sub[time].to_numpy(dtype=float)
        if constant and np.ptp(tvals) > 0:
            g = pd.DataFrame({c: sub[c].iloc[[0] * n_grid].to_numpy() for c in others})
            for c in others:
                if isinstance(sub[c].dtype, pd.CategoricalDtype):
                    g[c] = pd.Categorical(g[c], categories=sub[c].cat.categories, ordered=sub[c].cat.ordered)
            g[time] = np.linspace(tvals.min(), tvals.max(), n_grid)
            grids.append(g)
            owners.append(k)
    if grids:
        grid = pd.concat(grids, ignore_index=True)
        try:
            subj = result.predict(grid, include_random=True)
            pop = result.predict(grid, include_random=False)
        except (MixedModelsError, ValueError):
            owners = []  # the formula cannot be evaluated on a grid: fall back to the observed rows
        else:
            for j, k in enumerate(owners):
                sl = slice(j * n_grid, (j + 1) * n_grid)
                out[k] = (grid[time].to_numpy(dtype=float)[sl], subj[sl], pop[sl])
    fitted, fixed = result.fitted, result.fitted_fixed
    tcol = frame[time].to_numpy(dtype=float)
    for k, rows in enumerate(rows_by_level):
        if out[k] is None:
            order = rows[np.argsort(tcol[rows], kind="stable")]
            out[k] = (tcol[order], fitted[order], fixed[order])
    return out  # type: ignore[return-value]


def trajectories(
    result: "LinearMixedModelResults",
    time: str,
    *,
    group: str | None = None,
    levels: Sequence[object] | None = None,
    ncols: int = 4,
    max_panels: int = 24,
    n_grid: int = 50,
    population: bool = True,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """One panel per subject: observed points, the subject's fitted curve and the population curve.

    The subject's curve is the conditional prediction (fixed + random effects) and the population
    curve the fixed-effects prediction, both evaluated on a grid of ``time`` over the subject's
    observed range with its other variables held at their values. Where those other variables change
    within a subject (so no single grid represents it), or the formula cannot be evaluated on a
    grid, the curves join the fitted values at the subject's observed rows, sorted by time.

    Parameters
    ----------
    result : LinearMixedModelResults
        A fitted model (with its data: ``result.design.frame``).
    time : str
        Numeric column of the data on the horizontal axis (e.g. ``"Days"``).
    group : str, optional
        Grouping factor whose levels get panels; by default the factor with a random slope on
        ``time``, else the factor with the most levels.
    levels : sequence, optional
        Levels to draw, in this order; by default all, or ``max_panels`` of them spread evenly over
        the levels.
    ncols : int
        Panels per row.
    max_panels : int
        Most panels drawn when ``levels`` is not given.
    n_grid : int
        Points of the time grid per subject.
    population : bool
        Draw the population (fixed-effects) curve.
    figsize : tuple of float, optional
        Figure size in inches; about 2.4 × 2 inches per panel by default.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    DataError
        If ``time`` is not a numeric column of the data, a requested level does not exist, or
        the fit does not carry its data.
    ModelError
        For an unknown ``group``.

    Examples
    --------
    >>> fig = trajectories(fit, "Days", max_panels=18)  # doctest: +SKIP
    """
    frame = model_frame(result)
    response = result.design.response_name
    if time not in frame.columns:
        usable = [c for c in frame.columns if c != response and pd.api.types.is_numeric_dtype(frame[c])]
        raise DataError(f"time column {time!r} is not a variable of the model; numeric variables are {', '.join(map(repr, usable)) or 'none'}")
    if time == response:
        raise DataError(f"time column {time!r} is the response")
    if not pd.api.types.is_numeric_dtype(frame[time]) or isinstance(frame[time].dtype, pd.CategoricalDtype):
        raise DataError(f"time column {time!r} must be numeric, not {frame[time].dtype}")
    if ncols < 1 or max_panels < 1 or n_grid < 2:
        raise ModelError("ncols and max_panels must be at least 1 and n_grid at least 2")
    term = _pick_term(result, group, time)
    chosen = _pick_levels(term, levels, max_panels)
    rows_by_level = [np.flatnonzero(term.refs == i) for i in chosen]
    curves = _curves(result, frame, rows_by_level, time, n_grid)

    n = len(chosen)
    cols = min(ncols, n)
    nrows = -(-n // cols)
    fig = new_figure(figsize, (1.0 + 2.4 * cols, 0.8 + 2.0 * nrows))
    axes = panel_grid(fig, n, cols, sharex=True, sharey=True)
    y = result.design.y
    tcol = frame[time].to_numpy(dtype=float)
    for k, (ax, i, rows, (tt, subj, pop)) in enumerate(zip(axes, chosen, rows_by_level, curves)):
        ax.plot(tcol[rows], y[rows], "o", color=POINT, markersize=3, alpha=0.8)
        ax.plot(tt, subj, "-", color=SUBJECT, linewidth=1.4)
        if population:
            ax.plot(tt, pop, "--", color=POPULATION, linewidth=1.0)
        ax.set_title(str(term.levels[i]), fontsize=9)
        ax.tick_params(labelsize=7)
        if k % cols:
            ax.tick_params(axis="y", labelleft=False)
        if k < n - cols:
            ax.tick_params(axis="x", labelbottom=False)
        else:
            ax.set_xlabel(time, fontsize=9)
    handles = [
        Line2D([], [], color=POINT, marker="o", linestyle="none", markersize=4, label="observed"),
        Line2D([], [], color=SUBJECT, label=f"{term.group} fit (fixed + random)"),
    ]
    if population:
        handles.append(Line2D([], [], color=POPULATION, linestyle="--", label="population fit (fixed)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)
    fig.supylabel(response, fontsize=10)
    if n < term.nlevels:
        fig.suptitle(f"{n} of {term.nlevels} levels of {term.group}", fontsize=10)
    return fig
