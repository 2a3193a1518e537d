"""mixedmodels: linear mixed-effects models with lme4's formulas and numbers.

>>> import mixedmodels as mm
>>> fit = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
>>> print(fit.summary())  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
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
from .engine.threads import get_blas_threads, set_blas_threads
from .model import LinearMixedModel
from .optimize import OptimizerControl
from .results import LinearMixedModelResults

__version__ = "0.1.0"


def mmrm(
    formula: str,
    data: pd.DataFrame,
    *,
    REML: bool = True,
    weights: str | Sequence[float] | None = None,
    control: OptimizerControl | dict | None = None,
    data_name: str | None = None,
) -> LinearMixedModelResults:
    """Fit a mixed model for repeated measures as R's ``mmrm``: ``mm.mmrm("y ~ arm * visit + us(visit | id)", data)``.

    The covariance term (``us``, ``toep``, ``toeph``, ``ar1``, ``ar1h``, ``cs``, ``csh``, ``ad``, ``adh``,
    ``sp_exp``/``car1``, ``diag``; ``(visit | arm / id)`` for one covariance per arm) is the residual
    structure; the formula may also have lme4 random-effects terms. Fitted by REML with Satterthwaite's
    df, mmrm's defaults.
    """
    from .covariance.residual_spec import extract_residual

    rest, spec = extract_residual(formula)
    if spec is None:
        raise FormulaError(
            f"an mmrm formula needs a covariance term such as us(visit | subject); none in {formula!r}"
        )
    model = LinearMixedModel.from_formula(
        rest, data, reml=REML, data_name=data_name, control=OptimizerControl.make(control), weights=weights, residual=spec
    )
    return model.fit()

_LAZY = {
    "compare": ("mixedmodels.inference.compare", "compare"),
    "bootstrap_lrt": ("mixedmodels.inference.compare", "bootstrap_lrt"),
    "LinearModelResults": ("mixedmodels.linear", "LinearModelResults"),
    "load": ("mixedmodels.persist", "load"),
    "why": ("mixedmodels.naive", "why"),
    "glmer": ("mixedmodels.glmm", "glmer"),
    "GeneralizedLinearMixedModelResults": ("mixedmodels.glmm.results", "GeneralizedLinearMixedModelResults"),
    "select": ("mixedmodels.inference.select", "select"),
    "ranova": ("mixedmodels.inference.ranova", "ranova"),
    "step": ("mixedmodels.inference.step", "step"),
    "allfit": ("mixedmodels.inference.allfit", "allfit"),
    "power": ("mixedmodels.inference.power", "power"),
    "make_lmer": ("mixedmodels.inference.power", "make_lmer"),
    "fit_many": ("mixedmodels.many", "fit_many"),
    "gwas": ("mixedmodels.genetics.gwas", "gwas"),
    "genetics": ("mixedmodels.genetics", None),
}


def __getattr__(name: str):
    """Import the inference entry points on first use (keeps ``import mixedmodels`` and the CLI quick)."""
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        loaded = importlib.import_module(module)
        return loaded if attr is None else getattr(loaded, attr)
    raise AttributeError(f"module 'mixedmodels' has no attribute {name!r}")


def lmer(
    formula: str,
    data: pd.DataFrame,
    *,
    REML: bool = True,
    control: OptimizerControl | dict | None = None,
    optimizer: str | None = None,
    start: Sequence[float] | dict | None = None,
    contrasts: dict[str, str] | None = None,
    na_action: str = "omit",
    weights: str | Sequence[float] | None = None,
    offset: str | Sequence[float] | None = None,
    residual: str | None = None,
    variance: str | None = None,
    covariance: dict | None = None,
    data_name: str | None = None,
) -> LinearMixedModelResults:
    """Fit a linear mixed model, as lme4's ``lmer(formula, data, REML = TRUE, control, start, contrasts, na.action)``.

    Parameters
    ----------
    formula : str
        lme4-style formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``. A term may name the
        covariance of its random effects as lme4 2.x and glmmTMB: ``us(x | g)`` (the default),
        ``diag(x | g)``, ``cs(x | g)`` (one common correlation), ``ar1(0 + f | g)`` (across the levels
        of a factor ``f``), the homogeneous ``homdiag``, ``homcs`` and the heterogeneous ``hetar1``
        (or ``diag(x | g, hom = TRUE)``, ``cs(x | g, hom = TRUE)``, ``ar1(0 + f | g, hom = FALSE)``).
    data : pandas.DataFrame or dask.dataframe.DataFrame
        The data; rows with missing values in the variables used are dropped and counted. A Dask DataFrame is
        fitted partition by partition (:mod:`mixedmodels.scale`): the same estimates, row-level outputs lazily.
    REML : bool
        REML (default) or maximum likelihood.
    control : OptimizerControl or dict, optional
        Optimizer settings, as lme4's ``lmerControl``: ``optimizer`` (``"bobyqa"``, the default, or
        ``"nelder_mead"``), ``maxfun``, ``ftol_abs``, ``xtol_abs``, ``check_conv`` and ``restart_edge``.
    optimizer : str, optional
        Shorthand for ``control={"optimizer": ...}``.
    start : sequence of float or dict, optional
        Starting θ (lme4's ``start=``; a dict ``{"theta": [...]}`` is accepted too).
    contrasts : dict, optional
        Contrast coding per factor, ``{"column": "sum"}`` (R's ``contr.sum``) or ``"treatment"`` (the default).
    na_action : {"omit", "exclude"}
        ``"exclude"`` pads fitted values and residuals with missing values at dropped rows, so they
        can be assigned back to ``data`` (R's ``na.exclude``).
    weights : str or sequence of float, optional
        Prior (precision) weights, a column name or one value per row: ``Var(εᵢ) = σ²/wᵢ`` (lme4's ``weights``).
    offset : str or sequence of float, optional
        A known part of the linear predictor (lme4's ``offset``); ``offset(x)`` in the formula works too.
    residual : str, optional
        A residual covariance structure within subjects, ``"ar1(visit | subject)"``: ``us``, ``toep``,
        ``toeph``, ``ar1``, ``ar1h``, ``cs``, ``csh``, ``ad``, ``adh``, ``diag``, ``car1`` (numeric time),
        optionally per group, ``"us(visit | arm / subject)"`` (as nlme's ``correlation``/``weights`` and
        mmrm's covariance terms). Default: iid residuals, lme4's model.
    variance : str, optional
        A variance function: ``"ident(arm)"`` (a residual SD per level), ``"power(x)"`` (SD ∝ |x|^δ) or
        ``"exp(x)"`` (SD ∝ exp(δx)), as nlme's varIdent, varPower and varExp of a covariate.
    covariance : dict, optional
        Known covariances of random effects, ``{"id": K}``: the effects of ``(1 | id)`` are ``N(0, σ²_g K)``
        with ``K`` a relationship matrix (kinship, GRM) given as a DataFrame labelled by id on both axes, a
        pair ``(matrix, ids)`` or a :class:`mixedmodels.genetics.Kinship` (see :mod:`mixedmodels.genetics`).
    data_name : str, optional
        Name shown in the summary.

    Returns
    -------
    LinearMixedModelResults
    """
    from .scale import is_dask

    if is_dask(data):  # data beyond one machine's memory: two passes over the partitions (mixedmodels.scale)
        from .scale import lmer as dask_lmer

        return dask_lmer(
            formula, data, REML=REML, control=control, optimizer=optimizer, start=start, contrasts=contrasts,
            na_action=na_action, weights=weights, offset=offset, residual=residual, variance=variance, data_name=data_name,
        )
    ctl = OptimizerControl.make(control, optimizer)
    model = LinearMixedModel.from_formula(
        formula, data, reml=REML, data_name=data_name, contrasts=contrasts, na_action=na_action, control=ctl,
        weights=weights, offset=offset, residual=residual, variance=variance, covariance=covariance,
    )
    if isinstance(start, dict):
        unknown = set(start) - {"theta"}
        if unknown:
            raise ModelError(f"start may only name 'theta', got {', '.join(sorted(unknown))}")
        start = start.get("theta")
    return model.fit(start=None if start is None else np.asarray(start, dtype=float))


__all__ = [
    "lmer",
    "mmrm",
    "LinearMixedModel",
    "LinearMixedModelResults",
    "LinearModelResults",
    "OptimizerControl",
    "set_blas_threads",
    "get_blas_threads",
    "compare",
    "bootstrap_lrt",
    "load",
    "why",
    "glmer",
    "GeneralizedLinearMixedModelResults",
    "select",
    "ranova",
    "step",
    "allfit",
    "power",
    "make_lmer",
    "fit_many",
    "gwas",
    "genetics",
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
