"""Heritability: each known-covariance term's share of the phenotypic variance, with intervals and tests.

With ``v_k`` the variance of term ``k``'s effects averaged over the observations (``mean_i z_i'G_k z_i``
times ``K_ii`` for a known covariance: :func:`..inference.partition.variance_components`) and ``σ²``
the residual variance::

    h²_k = v_k / (Σ_j v_j + σ²)

For one known-covariance term with one record per individual this is ``σ²_g m/(σ²_g m + σ²_e)``,
``m = tr(K)/n``: GEMMA's "pve" (``trace_G λ/(trace_G λ + 1)``), and ``σ²_g/(σ²_g + σ²_e)`` when
``diag(K) = 1``. Intervals:

* ``"profile"``: ``{h : d(h) − d(ĥ) ≤ χ²₁(level)}`` with ``d`` the fit's criterion (the restricted
  likelihood of a REML fit) minimised over everything but ``h`` — for a target ``h`` the term's θ is
  set from the other terms' shares, ``θ_k² m_k = h (Σ_{j≠k} a_j + 1)/(1 − h)``, and BOBYQA moves the
  other θ's; the ends are found by Brent's method and clipped at 0 and 1;
* ``"boot"``: percentiles of the parametric bootstrap (refits to responses simulated from the fit);
* the standard error is the delta method with the inverse Hessian of ``d/2`` in θ (GEMMA's se(pve)).

:func:`genetic_variance_test` tests ``σ²_g = 0``: the exact restricted LRT (RLRsim's, with the term's
``Z L`` as its design) and the χ̄² = ½χ²₀ + ½χ²₁ p-value of the same statistic.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import nlopt
import numpy as np
import pandas as pd
from scipy import optimize, stats

from ..engine.threads import blas_policy
from ..exceptions import ModelError

if TYPE_CHECKING:
    from ..results import LinearMixedModelResults

#: Largest h² profiled (h² → 1 sends θ to infinity).
H2_MAX = 1.0 - 1e-9


def _names(fit: "LinearMixedModelResults") -> list[str]:
    from ..ranef import unique_group_names

    return unique_group_names([t.group for t in fit.terms])


def _shares_per_theta(fit: "LinearMixedModelResults") -> list[Any]:
    """For each term, ``a_j(θ_j)``: its averaged variance relative to σ² (``v_j = σ² a_j``)."""
    out = []
    for t in fit.terms:
        w = t.relationship_diagonal()[t.refs]

        def a(par: np.ndarray, t=t, w=w) -> float:
            lam = t.lambda_matrix(par)
            zl = t.z @ lam
            return float(np.mean(np.einsum("ni,ni->n", zl, zl) * w))

        out.append(a)
    return out


def _slices(fit: "LinearMixedModelResults") -> list[slice]:
    offsets = np.cumsum([0] + [t.ntheta for t in fit.terms])
    return [slice(int(offsets[i]), int(offsets[i + 1])) for i in range(len(fit.terms))]


def heritability_values(fit: "LinearMixedModelResults") -> np.ndarray:
    """``h²`` of each known-covariance term at the fit's θ̂ (module docstring), in term order."""
    shares = _shares_per_theta(fit)
    sl = _slices(fit)
    a = np.array([f(fit.theta[s]) for f, s in zip(shares, sl)])
    return np.array([a[k] / (a.sum() + 1.0) for k, t in enumerate(fit.terms) if t.rotated])


class _H2Profile:
    """The criterion minimised over everything but ``h²_k`` (module docstring)."""

    def __init__(self, fit: "LinearMixedModelResults", k: int) -> None:
        self.fit, self.k = fit, k
        self.shares = _shares_per_theta(fit)
        self.sl = _slices(fit)
        self.m_k = self.shares[k](np.ones(1))  # a_k = θ_k² m_k
        self.free = np.array([i for i in range(fit.theta.size) if not (self.sl[k].start <= i < self.sl[k].stop)], dtype=int)
        self.start = fit.theta[self.free].copy()

    def theta(self, h: float, others: np.ndarray) -> np.ndarray:
        th = self.fit.theta.copy()
        th[self.free] = others
        rest = sum(f(th[s]) for j, (f, s) in enumerate(zip(self.shares, self.sl)) if j != self.k)
        th[self.sl[self.k]] = math.sqrt(max(h * (rest + 1.0) / ((1.0 - h) * self.m_k), 0.0))
        return th

    def value(self, h: float) -> float:
        crit = self.fit.model.criterion_at
        if self.free.size == 0:
            return crit(self.theta(h, np.zeros(0)))
        best = [math.inf, self.start]

        def fun(x: np.ndarray, grad: np.ndarray) -> float:
            try:
                v = crit(self.theta(h, x))
            except (ModelError, np.linalg.LinAlgError):
                return 1e300
            if v < best[0]:
                best[0], best[1] = v, x.copy()
            return v

        lower = self.fit.model.lower_bounds[self.free]
        opt = nlopt.opt(nlopt.LN_BOBYQA, self.free.size)
        opt.set_min_objective(fun)
        opt.set_lower_bounds(lower)
        opt.set_ftol_abs(1e-10)
        opt.set_xtol_abs(1e-9)
        opt.set_maxeval(2000)
        opt.set_initial_step(np.maximum(np.abs(self.start) * 0.2, 0.05))
        try:
            opt.optimize(np.maximum(self.start, lower))
        except (nlopt.RoundoffLimited, ValueError):
            pass
        self.start = best[1]  # continuation: the next h starts here
        return float(best[0])


def _profile_interval(fit: "LinearMixedModelResults", k: int, estimate: float, level: float) -> tuple[float, float]:
    prof = _H2Profile(fit, k)
    base = fit.objective
    crit = float(stats.chi2.ppf(level, 1))

    def gap(h: float) -> float:
        return prof.value(h) - base - crit

    def solve(bound: float) -> float:
        prof.start = fit.theta[prof.free].copy()
        if bound == estimate or gap(bound) <= 0.0:  # the interval reaches the bound
            return 0.0 if bound == 0.0 else 1.0
        prof.start = fit.theta[prof.free].copy()
        a, b = sorted((bound, estimate))
        return float(optimize.brentq(gap, a, b, xtol=1e-8))

    return solve(0.0), solve(H2_MAX)


def _standard_errors(fit: "LinearMixedModelResults") -> np.ndarray:
    """Delta-method SEs of each h² from the Hessian of the criterion in θ (NaN on the boundary)."""
    from ..inference.numdiff import hessian, jacobian

    if fit.singular:
        return np.full(len([t for t in fit.terms if t.rotated]), np.nan)

    def h_of(theta: np.ndarray) -> np.ndarray:
        shares = _shares_per_theta(fit)
        a = np.array([f(theta[s]) for f, s in zip(shares, _slices(fit))])
        return np.array([a[k] / (a.sum() + 1.0) for k, t in enumerate(fit.terms) if t.rotated])

    H = hessian(fit.model.criterion_at, fit.theta)
    cov = 2.0 * np.linalg.pinv(H)
    J = jacobian(h_of, fit.theta)
    return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", J, cov, J), 0.0))


def heritability(
    fit: "LinearMixedModelResults",
    ci: str | None = None,
    level: float = 0.95,
    *,
    nsim: int = 500,
    seed: int | None = None,
    n_jobs: int = 1,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Heritability of each known-covariance term (module docstring).

    Parameters
    ----------
    fit : LinearMixedModelResults
        A fit with at least one known-covariance term (``covariance=``).
    ci : {None, "profile", "boot"}
        Interval method.
    level : float
        Confidence level.
    nsim, seed, n_jobs, progress
        For ``ci="boot"``: refits, seed, processes, progress bar.

    Returns
    -------
    pandas.DataFrame
        One row per known-covariance term (indexed by its group): ``h2``, ``se`` and, with ``ci``, ``lower`` and ``upper``.
    """
    from ..report.table import Table

    if not any(t.rotated for t in fit.terms):
        raise ModelError("heritability needs a term with a known covariance (lmer(..., covariance={'id': K}))")
    if not 0.0 < level < 1.0:
        raise ModelError(f"level must be between 0 and 1, got {level}")
    names = [n for n, t in zip(_names(fit), fit.terms) if t.rotated]
    h2 = heritability_values(fit)
    with blas_policy():
        cols: dict[str, Any] = {"h2": h2, "se": _standard_errors(fit)}
        key = None if ci is None else str(ci).lower()
        if key == "profile":
            idx = [k for k, t in enumerate(fit.terms) if t.rotated]
            ends = [_profile_interval(fit, k, float(h), level) for k, h in zip(idx, h2)]
            cols["lower"], cols["upper"] = [e[0] for e in ends], [e[1] for e in ends]
        elif key in ("boot", "bootstrap"):
            from ..inference.bootstrap import parametric_bootstrap

            B = parametric_bootstrap(fit, heritability_values, nsim, seed=seed, n_jobs=n_jobs, progress=progress)
            B = B[~np.isnan(B).any(axis=1)]
            if B.shape[0] < 2:
                raise ModelError("too few successful bootstrap refits for an interval")
            a = (1.0 - level) / 2.0
            cols["lower"], cols["upper"] = np.quantile(B, a, axis=0), np.quantile(B, 1.0 - a, axis=0)
        elif key is not None:
            raise ModelError(f"unknown interval method {ci!r}; use 'profile' or 'boot'")
    return Table(cols, index=pd.Index(names, name="group"))


@dataclass(frozen=True)
class GeneticVarianceTest:
    """Test of ``σ²_g = 0`` for one known-covariance term.

    Attributes
    ----------
    group : str
        The term tested.
    statistic : float
        ``2 (ℓ_R(fit) − ℓ_R(fit without the term))``, restricted likelihoods.
    p_value : float
        Exact RLRT p-value (simulated finite-sample null), or the χ̄² one when ``method="chibar2"``.
    p_chibar2 : float
        ``½ P(χ²₁ > statistic)``.
    method : str
        ``"rlrt"`` or ``"chibar2"``.
    nsim : int
        Simulated null values (0 for χ̄² or a statistic of 0).
    """

    group: str
    statistic: float
    p_value: float
    p_chibar2: float
    method: str
    nsim: int

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values."""
        return dataclasses.asdict(self)


def genetic_variance_test(
    fit: "LinearMixedModelResults", group: str | None = None, *, method: str = "rlrt", nsim: int = 10000,
    seed: int | None = None,
) -> GeneticVarianceTest:
    """Test ``σ²_g = 0`` for the known-covariance term on ``group`` (the only one when None).

    ``method="rlrt"`` (default) is the exact restricted LRT of :func:`..inference.rlrt.exact_rlrt`; with other
    terms, the fit without the tested term and the fit with only that term are made from the fit's design.
    ``"chibar2"`` is the asymptotic ½χ²₀ + ½χ²₁ mixture.
    """
    from ..inference.rlrt import exact_rlrt
    from ..model import LinearMixedModel

    known = [k for k, t in enumerate(fit.terms) if t.rotated and (group is None or t.group == group)]
    if len(known) != 1:
        what = "no" if not known else "several"
        raise ModelError(f"{what} known-covariance term(s) {'on ' + repr(group) if group else ''} to test; name one with group=")
    if method not in ("rlrt", "chibar2"):
        raise ModelError(f"unknown method {method!r}; use 'rlrt' or 'chibar2'")
    if not fit.reml:
        raise ModelError("the test uses restricted likelihoods: fit by REML")
    k = known[0]
    term = fit.terms[k]

    def refit(terms: tuple) -> "LinearMixedModelResults":
        design = dataclasses.replace(fit.design, terms=terms)
        return LinearMixedModel(design, reml=True, data_name=fit.data_name, control=fit.model.control).fit(warn=False)

    if len(fit.terms) == 1:
        null_loglik = -0.5 * fit.model.criterion_at(np.zeros(fit.theta.size))
        null, single = None, None
    else:
        null = refit(tuple(t for j, t in enumerate(fit.terms) if j != k))
        single = refit((term,))
        null_loglik = null.loglik
    stat = max(2.0 * (fit.loglik - null_loglik), 0.0)
    p_chibar = 0.5 * float(stats.chi2.sf(stat, 1)) if stat > 0 else 1.0
    if method == "chibar2":
        return GeneticVarianceTest(term.group, stat, p_chibar, p_chibar, method, 0)
    res = exact_rlrt(fit, null, single, nsim=nsim, seed=seed)
    return GeneticVarianceTest(term.group, res.statistic, res.p_value, p_chibar, method, res.nsim)
