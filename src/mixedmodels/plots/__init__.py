"""Plots of fitted linear mixed models, drawn with matplotlib's object API (no pyplot state).

Every function returns a :class:`matplotlib.figure.Figure`, so they work headless (Agg), in
threads and in notebooks (a Figure displays itself); save with ``fig.savefig("name.png")``.

- :func:`caterpillar`: conditional modes of the random effects with intervals, sorted.
- :func:`trajectories`: per-subject panels of observations, subject and population fits over time.
- :func:`residuals_vs_fitted`, :func:`qq_residuals`: residual diagnostics.
- :func:`qq_ranef`: normal QQ plots of the conditional modes.
- :func:`variance_partition`: share of variance per grouping factor and residual, with the ICC.
- :func:`zeta_plot`: profile ζ traces of every parameter.
- :func:`plot_power`: a simulation study's power per sample size with its intervals.
- :func:`binned_residuals_plot`, :func:`observed_vs_fitted`: GLMM diagnostics.

>>> import mixedmodels as mm
>>> from mixedmodels import plots
>>> fit = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> fig = plots.caterpillar(fit)
>>> len(fig.axes)
2
"""

from __future__ import annotations

from .caterpillar import caterpillar
from .diagnostics import qq_ranef, qq_residuals, residuals_vs_fitted
from .glmm import binned_residuals_plot, observed_vs_fitted
from .partition import variance_partition
from .power import plot_power
from .profile import parameter_labels, zeta_plot
from .trajectories import trajectories

__all__ = [
    "caterpillar",
    "trajectories",
    "residuals_vs_fitted",
    "qq_residuals",
    "qq_ranef",
    "variance_partition",
    "zeta_plot",
    "parameter_labels",
    "plot_power",
    "binned_residuals_plot",
    "observed_vs_fitted",
]
