"""mixedmodels: linear mixed-effects models with lme4's formulas and numbers.

>>> import mixedmodels as mm
>>> fit = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> print(fit.summary())  # doctest: +SKIP
"""

from __future__ import annotations

import pandas as pd

from . import datasets
from .exceptions import (
    ConvergenceWarning,
    DataError,
    FormulaError,
    MixedModelsError,
    ModelError,
    RankDeficiencyWarning,
    SingularFitWarning,
)
from .model import LinearMixedModel
from .results import LinearMixedModelResults

__version__ = "0.1.0"

_LAZY = {
    "compare": ("mixedmodels.inference.compare", "compare"),
    "bootstrap_lrt": ("mixedmodels.inference.compare", "bootstrap_lrt"),
    "LinearModelResults": ("mixedmodels.linear", "LinearModelResults"),
    "load": ("mixedmodels.persist", "load"),
}


def __getattr__(name: str):
    """Import the inference entry points on first use (keeps ``import mixedmodels`` and the CLI quick)."""
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'mixedmodels' has no attribute {name!r}")


def lmer(formula: str, data: pd.DataFrame, *, REML: bool = True, data_name: str | None = None) -> LinearMixedModelResults:
    """Fit a linear mixed model, as lme4's ``lmer(formula, data, REML = TRUE)``.

    Parameters
    ----------
    formula : str
        lme4-style formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``.
    data : pandas.DataFrame
        The data; rows with missing values in the variables used are dropped and counted.
    REML : bool
        REML (default) or maximum likelihood.
    data_name : str, optional
        Name shown in the summary.

    Returns
    -------
    LinearMixedModelResults
    """
    return LinearMixedModel.from_formula(formula, data, reml=REML, data_name=data_name).fit()


__all__ = [
    "lmer",
    "LinearMixedModel",
    "LinearMixedModelResults",
    "LinearModelResults",
    "compare",
    "bootstrap_lrt",
    "load",
    "datasets",
    "MixedModelsError",
    "FormulaError",
    "DataError",
    "ModelError",
    "ConvergenceWarning",
    "SingularFitWarning",
    "RankDeficiencyWarning",
    "__version__",
]
