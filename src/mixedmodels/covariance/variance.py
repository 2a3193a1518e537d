"""Variance functions (nlme's ``varFunc``): residual SDs that change from row to row.

``Var(ε_i) = σ² g_i(δ)²`` with, as nlme defines them,

* ``ident(f)`` — ``varIdent(form = ~ 1 | f)``: one SD ratio per level of the factor ``f``,
  ``g = exp(δ_level)``, the first level's fixed at 1;
* ``power(x)`` — ``varPower(form = ~ x)``: ``g = |x|^δ``;
* ``power()``  — ``varPower()``, nlme's default: ``g = |μ̂|^δ`` of the fitted values (``Xβ̂`` without
  random effects, ``Xβ̂ + Zb̂`` with them, as nlme's ``fitted(.)``);
* ``exp(x)``   — ``varExp(form = ~ x)``: ``g = exp(δ x)``.

They combine with a residual correlation structure as ``Σ_i = σ² G_i C_i G_i`` (``G_i`` the
subject's ``g``'s on the diagonal); the engine divides each row by ``g`` before whitening, and the
criterion gains ``2 Σ log g``. A power of the fitted values depends on β, so the fit alternates as
nlme's does: the parameters at fixed fitted values, then the fitted values, until neither moves
(:meth:`..model.LinearMixedModel.fit`); the estimates are the fixed point, the same as nlme's.
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

    @property
    def of_fitted(self) -> bool:
        """A power of the fitted values (``power()``), not of a column."""
        return self.kind == "power" and not self.column

    def __str__(self) -> str:
        return f"{self.kind}({self.column})"


def parse_variance(text: str) -> VarianceSpec:
    """``"ident(arm)"``, ``"power(base)"``, ``"power()"``, ``"exp(time)"`` → :class:`VarianceSpec`."""
    m = _SPEC.match(text or "")
    if not m:
        raise FormulaError(
            f"cannot read the variance function {text!r}: write ident(FACTOR), power(), power(COLUMN) or exp(COLUMN)"
        )
    kind, column = m.group(1), m.group(2).strip("` ")
    if not column and kind != "power":
        raise FormulaError(f"{kind}() needs a column: write {kind}(COLUMN) (only power() may be of the fitted values)")
    return VarianceSpec(kind, column)


class VarianceFunction:
    """A variance function bound to the model's rows.

    Parameters
    ----------
    spec : VarianceSpec
    column : pandas.Series or None
        The named column on the model's rows; None for a power of the fitted values, whose
        covariate is set by :meth:`set_covariate`.
    """

    def __init__(self, spec: VarianceSpec, column: pd.Series | None) -> None:
        self.spec = spec
        self._unit: float | None = None
        if spec.of_fitted:
            self.x = None
            self.npar = 1
        elif spec.kind == "ident":
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
            self._set_unit()

    def _set_unit(self) -> None:
        # the optimizer's parameter is δ times the spread of the exponent's covariate, so that a first
        # step of 1 changes the SDs by a factor of about e whatever the covariate's units
        u = np.log(np.abs(self.x)) if self.spec.kind == "power" else self.x
        spread = float(np.std(u))
        self._unit = spread if spread > 0 else 1.0

    @property
    def unit(self) -> float | None:
        """The spread of the exponent's covariate that scales δ for the optimizer (``δ = par / unit``)."""
        return self._unit

    def set_covariate(self, fitted: np.ndarray, unit: float | None = None) -> None:
        """The fitted values a power of the fitted values is taken of; the scaling of δ is fixed by the
        first (or given, for a saved fit)."""
        fitted = np.asarray(fitted, dtype=float)
        if np.any(fitted == 0) or not np.all(np.isfinite(fitted)):
            raise DataError("power() of the fitted values needs fitted values that are finite and not 0 (|μ|^δ)")
        self.x = fitted
        if unit is not None:
            self._unit = unit
        elif self._unit is None:
            self._set_unit()

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
        if self.x is None:
            raise ValueError("power() of the fitted values: set_covariate() first")
        if self.spec.kind == "power":
            return (delta[0] / self._unit) * np.log(np.abs(self.x))
        return (delta[0] / self._unit) * self.x

    def natural(self, delta: np.ndarray) -> list[tuple[str, float]]:
        """``(name, value)`` on nlme's scale: SD ratios for ident, the power or exponent otherwise."""
        values = np.exp(delta) if self.spec.kind == "ident" else np.asarray(delta, dtype=float) / self._unit
        return list(zip(self.names, values.tolist()))
