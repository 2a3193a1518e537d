"""ICC and Nakagawa's R² of a GLMM on the latent (link) scale, as R's performance 0.10 (insight 0.19).

Variances (insight's ``get_variance``):

* fixed: the sample variance (n − 1) of ``Xβ̂`` over the rows used (no offset);
* random: for each term that is not observation-level, ``tr(Σ_k Z_k'Z_k) / n`` with ``Z_k`` the term's
  columns taken from the fixed-effects matrix (Johnson's 2014 extension to random slopes; columns absent
  from the fixed effects are left out, as insight does, with a note);
* distribution-specific: π²/3 (logit), 1 (probit), π²/6 (cloglog); Poisson log link:
  ``log(1 + 1/μ)`` with ``μ = exp(β₀)`` of the null model (the response on the same random-effects terms,
  intercept only, refitted here);
* dispersion: the variance of observation-level terms (one level per row), computed as for ``random``.

Then ``ICC_adjusted = σ²_random / (σ²_random + σ²_residual)``, ``ICC_conditional = σ²_random / (σ²_fixed +
σ²_random + σ²_residual)``, Nakagawa's marginal ``R² = σ²_fixed / total`` and conditional ``R² =
(σ²_fixed + σ²_random) / total``, with ``σ²_residual`` = distribution + dispersion.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..exceptions import ModelError

if TYPE_CHECKING:
    from .results import GeneralizedLinearMixedModelResults

_BINOMIAL = {"logit": math.pi**2 / 3, "probit": 1.0, "cloglog": math.pi**2 / 6}


@dataclass(frozen=True)
class LatentVariances:
    """Variance components on the latent scale (insight's ``get_variance``).

    Attributes
    ----------
    fixed, random, distribution, dispersion : float
        ``random`` is NaN for a singular fit (performance returns NA ICCs then).
    notes : list of str
    """

    fixed: float
    random: float
    distribution: float
    dispersion: float
    notes: list[str] = field(default_factory=list)

    @property
    def residual(self) -> float:
        """Distribution-specific plus dispersion variance."""
        return self.distribution + self.dispersion

    def icc(self) -> dict[str, float]:
        """performance's ``icc(m)``: ``ICC_adjusted`` and ``ICC_conditional`` (= ``ICC_unadjusted``)."""
        adjusted = self.random / (self.random + self.residual)
        conditional = self.random / (self.fixed + self.random + self.residual)
        return {"ICC_adjusted": adjusted, "ICC_conditional": conditional, "ICC_unadjusted": conditional}

    def r2(self) -> dict[str, float]:
        """performance's ``r2_nakagawa(m)``: ``R2_conditional`` and ``R2_marginal``.

        Without random-effect variances (a singular fit) the conditional R² is NaN and the marginal one
        ``fixed / (fixed + residual)``, as performance returns them.
        """
        if math.isnan(self.random):
            return {"R2_conditional": float("nan"), "R2_marginal": self.fixed / (self.fixed + self.residual)}
        total = self.fixed + self.random + self.residual
        return {"R2_conditional": (self.fixed + self.random) / total, "R2_marginal": self.fixed / total}


def _term_variance(fit: GeneralizedLinearMixedModelResults, terms: list[int], notes: list[str]) -> float:
    X = fit.design.X
    names = list(fit.design.fixed_names)
    n = X.shape[0]
    total = 0.0
    for k in terms:
        t, S = fit.terms[k], fit.covariances[k].to_numpy()
        cols, keep = [], []
        for i, c in enumerate(t.cnames):
            if c in names:
                cols.append(X[:, names.index(c)])
                keep.append(i)
            elif c == "(Intercept)":
                cols.append(np.ones(n))
                keep.append(i)
            else:
                notes.append(f"random slope {c} (of {t.group}) is not a fixed effect and is left out, as insight does")
        if not keep:
            continue
        Z = np.column_stack(cols)
        total += float(np.trace(S[np.ix_(keep, keep)] @ (Z.T @ Z))) / n
    return total


def _null_intercept(fit: GeneralizedLinearMixedModelResults) -> float:
    """``β₀`` of the response on the fit's random-effects terms alone (insight's ``null_model``)."""
    from ..formula.parse import parse_formula
    from ..inference.reformulate import assemble
    from .model import GeneralizedLinearMixedModel

    design = fit.design
    if design.frame is None:
        raise ModelError("the fit does not keep its data, which the null model of a Poisson R² needs")
    parsed = parse_formula(fit.formula)
    formula = assemble(parsed, "1", parsed.random)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = GeneralizedLinearMixedModel.from_formula(
            formula, design.frame, family=fit.family, nAGQ=fit.model.nagq, weights=design.weights,
            offset=design.offset_argument, control=fit.model.control,
        )
        null = model.fit()
    return float(null.beta[0])


def latent_variances(fit: GeneralizedLinearMixedModelResults) -> LatentVariances:
    """The variance components of ``fit`` on the latent scale (see the module docstring).

    Raises
    ------
    ModelError
        For families and links performance does not define here (NB2: use glmmTMB's conventions
        elsewhere; identity or sqrt links).
    """
    fam, link = fit.family.name, fit.family.link.name
    notes: list[str] = []
    if fam == "binomial" and link in _BINOMIAL:
        distribution = _BINOMIAL[link]
    elif fam == "poisson" and link == "log":
        mu = math.exp(_null_intercept(fit))
        distribution = math.log1p(1.0 / mu)
        if mu < 6:
            notes.append(f"mu of {mu:.1f} is too close to zero, estimate of the random-effect variances may be unreliable")
    else:
        raise ModelError(f"latent-scale variances are defined here for binomial (logit, probit, cloglog) and Poisson (log) "
                         f"fits, not {fam} ({link})")
    eta = fit.design.X @ fit.beta
    fixed = float(np.var(eta, ddof=1))
    obs = [k for k, t in enumerate(fit.terms) if t.nlevels == fit.nobs]
    other = [k for k in range(len(fit.terms)) if k not in obs]
    dispersion = _term_variance(fit, obs, notes) if obs else 0.0
    if fit.singular:
        notes.append("some variance components are zero (a singular fit): the ICC and conditional R² are not defined")
        random = float("nan")
    else:
        random = _term_variance(fit, other, notes)
    return LatentVariances(fixed, random, distribution, dispersion, notes)
