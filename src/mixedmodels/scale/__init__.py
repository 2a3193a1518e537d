"""Fitting on data beyond one machine's memory: linear mixed models on Dask DataFrames.

``mm.lmer(formula, ddf)`` with a Dask DataFrame (or :func:`lmer` here) fits the model in two passes over the
partitions — level tables and encodings first, then each partition's cross-products, tree-reduced on the
cluster — and optimises θ on the driver from the reduced cross-products (:mod:`.fit`). The estimates are those
of the in-memory fit. A ``distributed.Client`` in effect runs the passes on its cluster; without one, Dask's
default scheduler runs them locally.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..exceptions import ModelError
from ..optimize import OptimizerControl
from .model import DaskLinearMixedModel, DaskResults, _is_dask

__all__ = ["DaskLinearMixedModel", "DaskResults", "is_dask", "lmer"]


def is_dask(data: Any) -> bool:
    """True for a Dask DataFrame (what :func:`lmer` fits)."""
    return _is_dask(data)


def lmer(
    formula: str,
    ddf: Any,
    *,
    REML: bool = True,
    control: OptimizerControl | dict | None = None,
    optimizer: str | None = None,
    start: Sequence[float] | dict | None = None,
    contrasts: dict[str, str] | None = None,
    na_action: str = "omit",
    weights: Any = None,
    offset: Any = None,
    residual: Any = None,
    variance: Any = None,
    data_name: str | None = None,
    split_every: int = 8,
) -> DaskResults:
    """Fit a linear mixed model to a Dask DataFrame (lme4's ``lmer`` arguments, as :func:`mixedmodels.lmer`).

    Parameters
    ----------
    formula : str
        lme4-style formula. Stateful transforms (``scale()``, ``center()``, orthogonal ``poly()``) and
        ``offset()`` terms are refused: add such columns to the DataFrame first.
    ddf : dask.dataframe.DataFrame
        The data, in any number of partitions; rows with a missing value in a variable the model uses are
        dropped and counted.
    REML, control, optimizer, start, contrasts, data_name
        As :func:`mixedmodels.lmer`.
    na_action : {"omit"}
        Rows with missing values are left out (row-level outputs are lazy Dask Series of the rows used).
    weights, offset, residual, variance
        Not available on Dask data yet (an error says so).
    split_every : int
        Partial results merged per node of the tree reductions.

    Returns
    -------
    DaskResults
        Estimates, SEs, variance components, likelihood, df and tests as the in-memory fit gives them; row-level
        quantities lazily (``fitted_dask()``, ``residuals_dask()``, ``predict(ddf)``).
    """
    from .fit import dask_model

    for name, value in (("weights", weights), ("offset", offset), ("residual", residual), ("variance", variance)):
        if value is not None:
            raise ModelError(f"{name}= is not available for a fit on Dask data yet; fit the data in memory or without it")
    if na_action != "omit":
        raise ModelError("a fit on Dask data keeps no rows to pad, so na_action must be 'omit'")
    ctl = OptimizerControl.make(control, optimizer)
    model = dask_model(formula, ddf, reml=REML, contrasts=contrasts, control=ctl, data_name=data_name, split_every=split_every)
    if isinstance(start, dict):
        unknown = set(start) - {"theta"}
        if unknown:
            raise ModelError(f"start may only name 'theta', got {', '.join(sorted(unknown))}")
        start = start.get("theta")
    return model.fit(start=None if start is None else np.asarray(start, dtype=float))
