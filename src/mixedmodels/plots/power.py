"""The power curve of a simulation study (simr's ``plot(powerCurve)``): power per sample size with its intervals."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..exceptions import ModelError
from ._common import POINT, REFERENCE, single_axes

if TYPE_CHECKING:
    from ..inference.power import PowerCurve


def plot_power(
    curve: PowerCurve,
    *,
    target: float | None = 0.8,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Estimated power against the number of levels of ``along``, with Clopper–Pearson error bars.

    Parameters
    ----------
    curve : PowerCurve
        The result of :func:`mixedmodels.inference.power.power` with ``along``.
    target : float or None
        Draw a horizontal reference line at this power (simr draws 0.8); None for none.
    ax : matplotlib.axes.Axes, optional
        Draw into this Axes instead of a new Figure.
    figsize : tuple of float, optional
        Size of a new Figure in inches.

    Returns
    -------
    matplotlib.figure.Figure
        One line with error bars (the power per size) and the reference line.
    """
    table = curve.table
    if "size" not in table.columns:
        raise ModelError("a power curve needs sizes along a factor (power(..., along=...)); this result has one size")
    fig, ax = single_axes(ax, figsize, (6.0, 4.0))
    x = table["size"].to_numpy(dtype=float)
    p = table["power"].to_numpy(dtype=float)
    err = np.vstack([p - table["lower"].to_numpy(dtype=float), table["upper"].to_numpy(dtype=float) - p])
    ax.errorbar(x, p, yerr=err, color=POINT, marker="o", capsize=3, label=f"power ({curve.level:.0%} interval)")
    if target is not None:
        ax.axhline(target, color=REFERENCE, linestyle="--", linewidth=1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"number of levels of {curve.along}")
    ax.set_ylabel(f"power (alpha = {curve.alpha:g})")
    values = ", ".join(f"{k} = {v:g}" for k, v in curve.value.items())
    ax.set_title(f"Power for {curve.effect} ({values}), {curve.nsim} simulations", fontsize="medium")
    return fig
