"""One response of :func:`~mixedmodels.many.fit_many`: BOBYQA, lme4's checks and Satterthwaite's df on the lean evaluator.

Every step is the one :meth:`LinearMixedModel.fit` and :class:`~mixedmodels.inference.ddf.Satterthwaite`
take — the same optimizer call (:func:`~mixedmodels.optimize.optimize_theta`: lme4's start, bounds,
tolerances, edge restart, gradient check and singularity test), the same numerical derivatives
(:mod:`~mixedmodels.inference.numdiff`) at the same points — on the criterion of
:class:`~mixedmodels.many.lean.ResponseEvaluator`, so the numbers are those of ``mm.lmer`` on that response.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
from scipy import special

from ..engine.objective import criterion_value
from ..inference.ddf import HESSIAN_TOL
from ..inference.numdiff import D_HESSIAN, hessian, jacobian
from ..optimize import FitRecord, optimize_theta
from ..terms import boundary_components
from .lean import ResponseEvaluator, SharedDesign


@dataclass
class ResponseFit:
    """The numbers :func:`fit_many` reports for one response.

    Attributes
    ----------
    theta : numpy.ndarray
        θ̂ in lme4's order.
    objective : float
        REML criterion or ML deviance at θ̂ (``-2 logLik``).
    sigma : float
        Residual SD.
    beta, se, df : numpy.ndarray
        Fixed effects, their SEs and Satterthwaite's df (NaN when not computed).
    evaluations : int
        Criterion evaluations by the optimizer.
    return_code : int
        nlopt's return code.
    warnings : tuple of str
        lme4's convergence and singular-fit messages.
    converged, singular : bool
    """

    theta: np.ndarray
    objective: float
    sigma: float
    beta: np.ndarray
    se: np.ndarray
    df: np.ndarray
    evaluations: int
    return_code: int
    warnings: tuple[str, ...]
    converged: bool
    singular: bool

    @property
    def t(self) -> np.ndarray:
        """t statistics ``β̂ / SE``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.beta / self.se

    @property
    def p_values(self) -> np.ndarray:
        """Two-sided p-values of the t statistics on Satterthwaite's df."""
        return 2.0 * special.stdtr(self.df, -np.abs(self.t))


def _rx_inverse(lxx: np.ndarray, p: int) -> np.ndarray:
    return sla.solve_triangular(lxx[:p, :p], np.eye(p), lower=True)


class _Satterthwaite:
    """Satterthwaite's df as :class:`~mixedmodels.inference.ddf.Satterthwaite`, on one lean evaluator."""

    def __init__(self, ev: ResponseEvaluator, reml: bool) -> None:
        self.ev = ev
        self.reml = reml
        s = ev.s
        self.p = s.p
        self.c = s.c_reml if reml else s.c_ml
        self._cache: dict[bytes, tuple[float, float, np.ndarray]] = {}

    def at(self, theta: np.ndarray) -> tuple[float, float, np.ndarray]:
        """``(r², log-determinants, (R_X'R_X)⁻¹)`` at θ, cached as the derivatives share their points."""
        key = theta.tobytes()
        hit = self._cache.get(key)
        if hit is None:
            r2, logdets, U = self.ev.states(theta[None, :], self.reml)
            hit = self._cache[key] = (float(r2[0]), float(logdets[0]), U[0])
        return hit

    def _prefill(self, theta: np.ndarray, sigma: float) -> None:
        """Evaluate every point the derivatives will ask for in one batch: a first pass through the same
        derivative code records the points (the second pass then finds each one in the cache)."""
        points: dict[bytes, np.ndarray] = {}

        def record(th: np.ndarray) -> float:
            th = np.asarray(th, dtype=float)
            points.setdefault(th.tobytes(), th)
            return 0.0

        hessian(record, theta)  # the Jacobian below (step D_HESSIAN) uses the Hessian's diagonal points
        keys = [k for k in points if k not in self._cache]
        if keys:
            r2, logdets, U = self.ev.states(np.array([points[k] for k in keys]), self.reml)
            for i, key in enumerate(keys):
                self._cache[key] = (float(r2[i]), float(logdets[i]), U[i])

    def derivatives(self, theta: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
        """Hessian of the deviance in ``(θ, σ)`` and ``∂C/∂(θ, σ)`` (``C = σ²U(θ)``)."""
        k = theta.size
        self._prefill(theta, sigma)
        r2, _, U = self.at(theta)
        H = np.empty((k + 1, k + 1))
        jac = np.empty((k + 1,) + U.shape)

        def deviance(th: np.ndarray) -> float:
            r2_, logdets, _ = self.at(np.asarray(th, dtype=float))
            return criterion_value(r2_, logdets, self.c, sigma=sigma)

        H[:k, :k] = hessian(deviance, theta)
        def r2_and_u(th: np.ndarray) -> np.ndarray:
            r2_, _, U_ = self.at(th)
            out = np.empty(1 + U_.size)
            out[0] = r2_
            out[1:] = U_.reshape(-1)
            return out

        J = jacobian(r2_and_u, theta, d=D_HESSIAN)
        H[:k, k] = H[k, :k] = -2.0 * J[0] / sigma**3
        jac[:k] = np.moveaxis(sigma**2 * J[1:].reshape(U.shape + (k,)), -1, 0)
        H[k, k] = 6.0 * r2 / sigma**4 - 2.0 * self.c / sigma**2
        jac[k] = 2.0 * sigma * U
        return H, jac

    def df(self, theta: np.ndarray, sigma: float, vcov_beta: np.ndarray) -> np.ndarray:
        """Denominator df of each coefficient's t-test."""
        H, jac = self.derivatives(theta, sigma)
        values, vectors = np.linalg.eigh(H)
        pos = values > HESSIAN_TOL
        A = 2.0 * (vectors[:, pos] / values[pos]) @ vectors[:, pos].T
        idx = np.arange(self.p)
        var = vcov_beta[idx, idx]
        grad = jac[:, idx, idx]  # (k + 1, p)
        return 2.0 * var**2 / np.einsum("ki,kl,li->i", grad, A, grad)


def fit_response(shared: SharedDesign, ev: ResponseEvaluator, *, ddf: bool = True) -> ResponseFit:
    """Fit one response as ``LinearMixedModel.fit`` would, then Satterthwaite's df when ``ddf``."""
    model = shared.model
    terms = model.terms
    theta, value, record = optimize_theta(
        lambda th: ev.criterion(th, model.reml), model.theta_start, model.lower_bounds, check=True,
        control=model.control, boundary=lambda th: boundary_components(terms, th),
    )
    return summarize(shared, ev, theta, value, record, ddf=ddf)


def summarize(shared: SharedDesign, ev: ResponseEvaluator, theta: np.ndarray, value: float, record: FitRecord,
              *, ddf: bool = True) -> ResponseFit:
    """The reported numbers at ``theta`` (β̂, σ̂, SEs, Satterthwaite's df), as the results of a fit read them."""
    model = shared.model
    reml = model.reml
    theta = np.asarray(theta, dtype=float)
    _, _, r2, L = ev.state(theta)
    p = shared.p
    lxx = ev.fixed_block(L)
    beta = sla.solve_triangular(lxx[:p, :p].T, lxx[p, :p], lower=False) if p else np.zeros(0)
    if model.y_shift is not None:
        beta[model.y_shift[0]] += ev.shift
    sigma = math.sqrt(r2 / (shared.c_reml if reml else shared.c_ml))
    rinv = _rx_inverse(lxx, p)
    vcov = sigma**2 * rinv.T @ rinv
    se = np.sqrt(np.diag(vcov))
    df = np.full(p, np.nan)
    if ddf and sigma > 0 and p:
        df = _Satterthwaite(ev, reml).df(theta, sigma, vcov)
    at_bound = boundary_components(model.terms, theta)
    messages = record.warnings
    if at_bound.size:  # as the results of a fit word it: which parameters are on the boundary
        names = ", ".join(model.theta_names[i] for i in at_bound)
        messages = tuple(m + f" (at the boundary: {names})" if m.startswith("boundary") else m for m in messages)
    return ResponseFit(
        theta=theta, objective=float(value), sigma=sigma, beta=beta, se=se, df=df,
        evaluations=record.evaluations, return_code=record.return_code, warnings=messages,
        converged=record.converged, singular=bool(at_bound.size),
    )


def from_results(result, *, ddf: bool = True) -> ResponseFit:
    """The same numbers from an ordinary fit (:class:`~mixedmodels.results.LinearMixedModelResults`): the path
    for degenerate responses (σ̂ = 0, as ``mm.lmer``) and for responses the lean evaluator cannot factor."""
    table = result.coef_table("satterthwaite" if ddf else None)
    record = result.fit_record
    return ResponseFit(
        theta=np.asarray(result.theta, dtype=float), objective=float(result.objective), sigma=float(result.sigma),
        beta=np.asarray(result.beta, dtype=float), se=table["Std. Error"].to_numpy(dtype=float),
        df=table["df"].to_numpy(dtype=float), evaluations=record.evaluations, return_code=record.return_code,
        warnings=tuple(result.warnings[len(result.design.messages):]), converged=result.converged, singular=result.singular,
    )
