"""What a fitted model exposes to inference, reports, plots and persistence.

Those readers type their argument with these protocols and test ``isinstance(fit, MixedFit)``
instead of probing attributes. :class:`~mixedmodels.results.LinearMixedModelResults` is a
:class:`MixedFit`; :class:`~mixedmodels.linear.LinearModelResults` (the null of a comparison) is a
:class:`Fit` only.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd


@runtime_checkable
class Fit(Protocol):
    """A fitted model with a likelihood: what ``compare`` and the reports read."""

    @property
    def design(self) -> Any: ...

    @property
    def formula(self) -> str: ...

    @property
    def reml(self) -> bool: ...

    @property
    def nobs(self) -> int: ...

    @property
    def nfixed(self) -> int: ...

    @property
    def npar(self) -> int: ...

    @property
    def loglik(self) -> float: ...

    @property
    def beta(self) -> np.ndarray: ...

    @property
    def sigma(self) -> float: ...

    def refit_ml(self) -> Any: ...


@runtime_checkable
class MixedFit(Fit, Protocol):
    """A fitted mixed model: random-effects terms, covariance parameters and the df machinery."""

    @property
    def terms(self) -> tuple: ...

    @property
    def theta(self) -> np.ndarray: ...

    @property
    def vcov(self) -> pd.DataFrame: ...

    def ddf_calculator(self, method: str = "satterthwaite") -> Any: ...

    def ranef(self, condvar: bool = False) -> dict[str, pd.DataFrame]: ...

    @property
    def iid_residuals(self) -> bool: ...

    @property
    def residual_structure(self) -> Any: ...

    @property
    def residual_binding(self) -> Any: ...

    @property
    def variance_function(self) -> Any: ...

    @property
    def data_name(self) -> str | None: ...
