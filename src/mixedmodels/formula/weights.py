"""Prior weights and offsets: per-row vectors the model uses besides y, X and Z.

lme4's ``weights = w`` are precision weights (``Var(εᵢ) = σ²/wᵢ``); an offset (``offset(x)`` in the
formula or ``offset = x``) is a known part of the linear predictor with coefficient 1. Either may be
given as a column name or as a vector as long as the data; rows where one is missing are dropped
with the rows missing another variable, and counted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import DataError

#: Names of the per-row vectors inside the model frame (R's model.frame uses the same).
WEIGHTS, OFFSET = "(weights)", "(offset)"


def as_row_vector(data: pd.DataFrame, value: Any, what: str) -> pd.Series | None:
    """``value`` (a column name or a vector with one entry per row of ``data``) as a numeric Series on ``data``'s index."""
    if value is None:
        return None
    if isinstance(value, str):
        if value not in data.columns:
            raise DataError(f"{what} column {value!r} is not in the data")
        column = data[value]
    else:
        arr = np.asarray(value.to_numpy() if isinstance(value, pd.Series) else value)
        if arr.ndim != 1 or len(arr) != len(data):
            raise DataError(f"{what} must be a column name or have one value per row of the data ({len(data)}), got shape {arr.shape}")
        column = pd.Series(arr, index=data.index)
    try:
        numeric = pd.to_numeric(column, errors="raise").astype(float)
    except (TypeError, ValueError):
        raise DataError(f"{what} must be numeric") from None
    return numeric


def check_weights(w: np.ndarray) -> None:
    """Prior weights must be positive and finite (lme4: ``negative weights not allowed``)."""
    bad = np.flatnonzero(~(np.isfinite(w) & (w > 0)))
    if bad.size:
        shown = ", ".join(f"row {i}: {w[i]:g}" for i in bad[:3])
        raise DataError(f"weights must be positive and finite; {bad.size} are not ({shown})")
