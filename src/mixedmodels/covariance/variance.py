"""Variance functions (nlme's ``varFunc``): residual SDs that change from row to row.

``Var(ε_i) = σ² g_i(δ)²`` with, as nlme defines them,

* ``ident(f)`` — ``varIdent(form = ~ 1 | f)``: one SD ratio per level of the factor ``f``,
  ``g = exp(δ_level)``, the first level's fixed at 1;
* ``power(x)`` — ``varPower(form = ~ x)``: ``g = |x|^δ``;
* ``exp(x)``   — ``varExp(form = ~ x)``: ``g = exp(δ x)``.

They combine with a residual correlation structure as ``Σ_i = σ² G_i C_i G_i`` (``G_i`` the
subject's ``g``'s on the diagonal); the engine divides each row by ``g`` before whitening, and the
criterion gains ``2 Σ log g``. A power of the fitted values (nlme's default ``varPower()``) depends
on β and is not offered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..exceptions import DataError, FormulaError

_SPEC = re.compile(r"^\s*(ident|power|exp)\s*\(\s*([^()]*?)\s*\)\s*$")


@dataclass(frozen=True)
class VarianceSpec:
    """A parsed variance function: ``kind`` (``ident``, ``power``, ``exp``) of ``column``."""

    kind: str
    column: str

    def __str__(self) -> str:
        return f"{self.kind}({self.column})"


def parse_variance(text: str) -> VarianceSpec:
    """``"ident(arm)"``, ``"power(base)"``, ``"exp(time)"`` → :class:`VarianceSpec`."""
    m = _SPEC.match(text or "")
    if not m:
        raise FormulaError(
            f"cannot read the variance function {text!r}: write ident(FACTOR), power(COLUMN) or exp(COLUMN)"
        )
    kind, column = m.group(1), m.group(2).strip("` ")
    if not column:
        raise FormulaError(
            f"{kind}() needs a column: a power of the fitted values (nlme's varPower()) is not offered; "
            f"write {kind}(COLUMN)"
        )
    return VarianceSpec(kind, column)


class VarianceFunction:
    """A variance function bound to the model's rows.

    Parameters
    ----------
    spec : VarianceSpec
    column : pandas.Series
        The named column on the model's rows.
    """

    def __init__(self, spec: VarianceSpec, column: pd.Series) -> None:
        self.spec = spec
        if spec.kind == "ident":
            cat = pd.Categorical(column)
            if len(cat.categories) < 2:
                raise DataError(f"ident({spec.column}) needs a factor with at least two levels")
            self.levels = [str(c) for c in cat.categories]
            self.codes = np.asarray(cat.codes, dtype=np.int64)
            self.npar = len(self.levels) - 1
        else:
            if not pd.api.types.is_numeric_dtype(column):
                raise DataError(f"{spec.kind}({spec.column}) needs a numeric column")
            self.x = column.to_numpy(dtype=float)
            if spec.kind == "power" and np.any(self.x == 0):
                raise DataError(f"power({spec.column}) needs a covariate without zeros (|x|^δ is 0 there)")
            self.npar = 1
            # the optimizer's parameter is δ times the spread of the exponent's covariate, so that a first
            # step of 1 changes the SDs by a factor of about e whatever the covariate's units
            u = np.log(np.abs(self.x)) if spec.kind == "power" else self.x
            spread = float(np.std(u))
            self._unit = spread if spread > 0 else 1.0

    @property
    def names(self) -> list[str]:
        """Parameter names, as nlme prints them."""
        if self.spec.kind == "ident":
            return [f"sd ratio ({self.spec.column}={lev})" for lev in self.levels[1:]]
        return ["power" if self.spec.kind == "power" else "expon"]

    def start(self) -> np.ndarray:
        """Equal variances: δ = 0."""
        return np.zeros(self.npar)

    def log_sd(self, delta: np.ndarray) -> np.ndarray:
        """``log g`` of every row."""
        delta = np.asarray(delta, dtype=float)
        if self.spec.kind == "ident":
            return np.r_[0.0, delta][self.codes]
        if self.spec.kind == "power":
            return (delta[0] / self._unit) * np.log(np.abs(self.x))
        return (delta[0] / self._unit) * self.x

    def natural(self, delta: np.ndarray) -> list[tuple[str, float]]:
        """``(name, value)`` on nlme's scale: SD ratios for ident, the power or exponent otherwise."""
        values = np.exp(delta) if self.spec.kind == "ident" else np.asarray(delta, dtype=float) / self._unit
        return list(zip(self.names, values.tolist()))
