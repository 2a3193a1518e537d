"""The ordinary linear model ``y = Xβ + ε``: the null model of a test that drops every random effect.

It offers what model comparison and the parametric bootstrap read from a fit (log-likelihood,
parameter count, simulate, refit), with R's ``logLik.lm`` conventions for ML and REML.
"""

from __future__ import annotations

import dataclasses
import math
from functools import cached_property

import numpy as np
import pandas as pd

from .exceptions import ModelError
from .engine.objective import criterion_value
from .formula.design import Design, build_design


class LinearModelResults:
    """A linear model fitted by least squares.

    Parameters
    ----------
    design : Design
        Evaluated formula without random-effects terms.
    reml : bool
        Whether :attr:`loglik` is the restricted log-likelihood (R's ``logLik(m, REML = TRUE)``).
    data_name : str, optional
        Name of the data.
    """

    def __init__(self, design: Design, *, reml: bool = False, data_name: str | None = None) -> None:
        if design.terms:
            raise ModelError("a linear model has no random-effects terms; use LinearMixedModel")
        n, p = design.X.shape
        if n <= p:
            raise ModelError(f"the linear model needs more observations ({n}) than coefficients ({p})")
        self.design = design
        self.reml = reml
        self.data_name = data_name

    @classmethod
    def from_formula(cls, formula: str, data: pd.DataFrame, *, reml: bool = False, data_name: str | None = None) -> "LinearModelResults":
        """Fit ``formula`` (no ``( | )`` terms) to ``data``."""
        return cls(build_design(formula, data, warn=True), reml=reml, data_name=data_name)

    @property
    def formula(self) -> str:
        """The model formula."""
        return self.design.formula.text

    @property
    def method(self) -> str:
        """``"REML"`` or ``"ML"``: which log-likelihood :attr:`loglik` is."""
        return "REML" if self.reml else "ML"

    @property
    def nobs(self) -> int:
        """Observations used."""
        return len(self.design.y)

    @property
    def nfixed(self) -> int:
        """Number of coefficients."""
        return self.design.X.shape[1]

    @property
    def npar(self) -> int:
        """Coefficients plus σ."""
        return self.nfixed + 1

    @cached_property
    def _qr(self) -> tuple[np.ndarray, np.ndarray]:
        return np.linalg.qr(self.design.X)

    @cached_property
    def beta(self) -> np.ndarray:
        """Least-squares coefficients."""
        Q, R = self._qr
        return np.linalg.solve(R, Q.T @ self.design.y)

    @cached_property
    def fitted(self) -> np.ndarray:
        """Fitted values ``Xβ̂``."""
        return self.design.X @ self.beta

    @property
    def fitted_fixed(self) -> np.ndarray:
        """Same as :attr:`fitted` (there are no random effects)."""
        return self.fitted

    @property
    def residuals(self) -> np.ndarray:
        """Residuals ``y − Xβ̂``."""
        return self.design.y - self.fitted

    @cached_property
    def rss(self) -> float:
        """Residual sum of squares."""
        r = self.residuals
        return float(r @ r)

    @property
    def sigma(self) -> float:
        """Residual standard deviation (``n − p`` denominator, as ``summary.lm``)."""
        return math.sqrt(self.rss / (self.nobs - self.nfixed))

    @property
    def loglik(self) -> float:
        """Log-likelihood as R's ``logLik.lm`` (restricted when :attr:`reml`): the mixed model's criterion without Z."""
        n, p = self.nobs, self.nfixed
        if not self.reml:
            return -0.5 * criterion_value(self.rss, 0.0, n)
        logdet = 2.0 * float(np.sum(np.log(np.abs(np.diag(self._qr[1])))))
        return -0.5 * criterion_value(self.rss, logdet, n - p)

    @property
    def deviance(self) -> float:
        """``-2`` times the ML log-likelihood."""
        return criterion_value(self.rss, 0.0, self.nobs)

    @property
    def aic(self) -> float:
        """``-2 logLik + 2 npar``."""
        return -2.0 * self.loglik + 2.0 * self.npar

    @property
    def bic(self) -> float:
        """``-2 logLik + npar log n``."""
        return -2.0 * self.loglik + self.npar * math.log(self.nobs)

    def refit_ml(self, *, warn: bool = True) -> "LinearModelResults":
        """The same model with the ML log-likelihood."""
        return self if not self.reml else LinearModelResults(self.design, reml=False, data_name=self.data_name)

    def simulate(self, nsim: int = 1, seed: int | np.random.Generator | None = None) -> np.ndarray:
        """``n × nsim`` responses ``Xβ̂ + ε``, ``ε ~ N(0, σ̂² I)``."""
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return self.fitted[:, None] + self.sigma * rng.standard_normal((self.nobs, nsim))

    def refit(self, y: np.ndarray, **_: object) -> "LinearModelResults":
        """The same model fitted to a new response."""
        y = np.asarray(y, dtype=float).reshape(-1)
        if y.shape != self.design.y.shape:
            raise ModelError(f"the new response has {y.size} values; the model has {self.nobs} observations")
        new = LinearModelResults(dataclasses.replace(self.design, y=y), reml=self.reml, data_name=self.data_name)
        new.__dict__["_qr"] = self._qr
        return new
