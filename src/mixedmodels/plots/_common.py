"""Shared helpers of the plotting functions: figures without pyplot, random-effect panels, quantiles."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import stats

from ..exceptions import DataError, ModelError

if TYPE_CHECKING:
    from ..results import LinearMixedModelResults

#: Colours used throughout (matplotlib's default cycle, named for readability).
POINT = "#1f77b4"
SUBJECT = "#d62728"
POPULATION = "#555555"
REFERENCE = "#999999"


def new_figure(figsize: tuple[float, float] | None, default: tuple[float, float]) -> Figure:
    """A pyplot-free Figure (safe headless and in threads) with constrained layout."""
    return Figure(figsize=figsize or default, layout="constrained")


def root_figure(ax: Axes) -> Figure:
    """The top-level Figure holding ``ax`` (which may sit in a SubFigure)."""
    fig = ax.figure
    while not isinstance(fig, Figure) and getattr(fig, "figure", None) is not None and fig.figure is not fig:
        fig = fig.figure
    return fig  # type: ignore[return-value]


def single_axes(ax: Axes | None, figsize: tuple[float, float] | None, default: tuple[float, float]) -> tuple[Figure, Axes]:
    """Use the caller's Axes, or make a Figure with one Axes."""
    if ax is not None:
        return root_figure(ax), ax
    fig = new_figure(figsize, default)
    return fig, fig.add_subplot()


def z_value(level: float) -> float:
    """Two-sided normal quantile for a confidence level (1.96 for 0.95)."""
    if not 0 < level < 1:
        raise ModelError(f"level must be between 0 and 1, got {level}")
    return float(stats.norm.ppf(0.5 + level / 2))


def normal_quantiles(n: int) -> np.ndarray:
    """Theoretical normal quantiles at R's ``ppoints(n)`` (Blom's a = 3/8 for n ≤ 10, else 1/2)."""
    a = 3 / 8 if n <= 10 else 0.5
    return stats.norm.ppf((np.arange(1, n + 1) - a) / (n + 1 - 2 * a))


def qq_line(ax: Axes, sample: np.ndarray, theoretical: np.ndarray) -> None:
    """R's ``qqline``: the line through the first and third quartiles."""
    if sample.size < 2:
        return
    y1, y3 = np.quantile(sample, [0.25, 0.75])
    x1, x3 = stats.norm.ppf([0.25, 0.75])
    slope = (y3 - y1) / (x3 - x1)
    xs = np.array([theoretical.min(), theoretical.max()])
    ax.plot(xs, y1 + slope * (xs - x1), color=REFERENCE, linestyle="--", linewidth=1)


@dataclass
class RanefPanel:
    """Conditional modes and conditional SDs of one random-effect column of one grouping factor."""

    group: str
    column: str
    levels: np.ndarray
    mode: np.ndarray
    sd: np.ndarray

    @property
    def title(self) -> str:
        """Panel title, ``group: column``."""
        return f"{self.group}: {self.column}"


def ranef_panels(result: "LinearMixedModelResults", group: str | None = None, term: str | None = None, *, condvar: bool = True) -> list[list[RanefPanel]]:
    """Random-effect columns grouped by grouping factor, optionally restricted to one factor or column.

    Raises
    ------
    ModelError
        For a grouping factor or column the model does not have.
    """
    terms = list(result.terms)
    groups = list(dict.fromkeys(t.group for t in terms))
    if group is not None and group not in groups:
        raise ModelError(f"the model has no grouping factor {group!r}; its grouping factors are {', '.join(map(repr, groups))}")
    wanted = groups if group is None else [group]
    ranef = result.ranef(condvar=condvar)
    out: list[list[RanefPanel]] = []
    found_term = False
    for g in wanted:
        frame = ranef[g]
        panels: list[RanefPanel] = []
        pos = 0
        for t in (t for t in terms if t.group == g):
            block = frame.iloc[:, pos : pos + (2 if condvar else 1) * t.p]
            for j, c in enumerate(t.cnames):
                if term is not None and c != term:
                    continue
                found_term = True
                mode = block.iloc[:, j].to_numpy(dtype=float)
                sd = block.iloc[:, t.p + j].to_numpy(dtype=float) if condvar else np.zeros_like(mode)
                panels.append(RanefPanel(g, c, frame.index.to_numpy().astype(str), mode, sd))
            pos += (2 if condvar else 1) * t.p
        if panels:
            out.append(panels)
    if term is not None and not found_term:
        cols = sorted({c for t in terms if group is None or t.group == group for c in t.cnames})
        where = f"grouping factor {group!r}" if group is not None else "any grouping factor"
        raise ModelError(f"no random-effect column {term!r} for {where}; columns are {', '.join(map(repr, cols))}")
    return out


def panel_grid(fig: Figure, n: int, ncols: int, *, sharex: bool = True, sharey: bool = False) -> list[Axes]:
    """``n`` Axes in a grid of ``ncols`` columns (unused cells are not created)."""
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    gs = fig.add_gridspec(nrows, ncols)
    axes: list[Axes] = []
    for k in range(n):
        share = axes[0] if axes else None
        ax = fig.add_subplot(gs[k // ncols, k % ncols], sharex=share if sharex else None, sharey=share if sharey else None)
        axes.append(ax)
    return axes


def model_frame(result: "LinearMixedModelResults"):
    """The data frame of the variables the model used (rows used), or a DataError if the fit lacks it."""
    frame = result.design.frame
    if frame is None or len(frame) != result.nobs:
        raise DataError("this fit does not carry the data it was fitted to (refit it from a data frame to plot observations)")
    return frame
