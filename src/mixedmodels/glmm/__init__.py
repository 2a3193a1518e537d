"""Generalised linear mixed models (lme4's ``glmer``; NB2 as glmmTMB's ``nbinom2``).

:func:`glmer` is the entry point; :class:`GeneralizedLinearMixedModel` the model (stage-1 and stage-2
deviance functions), :mod:`.pirls` the conditional modes, :mod:`.objective` the Laplace and adaptive
Gauss–Hermite deviances, :mod:`.family` the families and links.
"""

from __future__ import annotations

import pandas as pd

from .family import Binomial, Family, NegativeBinomial, Poisson, make_family
from .model import GeneralizedLinearMixedModel, GlmerControl
from .results import GeneralizedLinearMixedModelResults


def glmer(
    formula: str,
    data: pd.DataFrame,
    family: str | Family = "binomial",
    link: str | None = None,
    nAGQ: int = 1,
    weights: object = None,
    offset: object = None,
    control: GlmerControl | dict | None = None,
    start: object = None,
    data_name: str | None = None,
    contrasts: dict[str, str] | None = None,
) -> GeneralizedLinearMixedModelResults:
    """Fit a generalised linear mixed model as lme4's ``glmer`` (NB2 as glmmTMB's ``nbinom2``).

    Parameters
    ----------
    formula : str
        lme4 formula; a binomial response may be 0/1, a two-level factor, proportions (with ``weights``
        the numbers of trials) or ``cbind(successes, failures)``.
    data : pandas.DataFrame
    family : str or Family
        ``"binomial"``, ``"poisson"`` or ``"nbinom2"`` (negative binomial with θ estimated), or a :class:`Family`.
    link : str, optional
        ``"logit"`` (default), ``"probit"`` or ``"cloglog"`` for the binomial; ``"log"`` for counts.
    nAGQ : int
        1: Laplace approximation; 0: stage 1 only (β inside PIRLS); > 1: adaptive Gauss–Hermite quadrature
        with that many points (one scalar random-effects term only).
    weights : str or array-like, optional
        Prior weights (the numbers of trials for a binomial proportion).
    offset : str or array-like, optional
        Added to the linear predictor (``offset(log(x))`` in the formula adds too).
    control : GlmerControl or dict, optional
    start : array-like or dict, optional
        θ, or ``{"theta": ..., "fixef": ..., "dispersion": ...}``.
    data_name : str, optional
        Shown in the summary.
    contrasts : dict, optional
        Contrast coding per factor (``{"x": "sum"}``).

    Returns
    -------
    GeneralizedLinearMixedModelResults
    """
    model = GeneralizedLinearMixedModel.from_formula(
        formula, data, family=family, link=link, nAGQ=nAGQ, weights=weights, offset=offset, control=control,
        data_name=data_name, contrasts=contrasts,
    )
    return model.fit(start=start)


__all__ = [
    "Binomial",
    "Family",
    "GeneralizedLinearMixedModel",
    "GeneralizedLinearMixedModelResults",
    "GlmerControl",
    "NegativeBinomial",
    "Poisson",
    "glmer",
    "make_family",
]
