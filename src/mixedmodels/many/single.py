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
from scipy import special
from scipy.linalg import lapack

from ..inference.ddf import HESSIAN_TOL
from ..inference.numdiff import _R, _V, D_HESSIAN, _extrapolate, _steps
from ..optimize import FitRecord, optimize_theta
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
    """``R_X'⁻¹`` from the lower factor of the X, y block (LAPACK's triangular inverse)."""
    inv, info = lapack.dtrtri(lxx[:p, :p], lower=1)
    if info != 0:
        raise np.linalg.LinAlgError("the fixed-effects block of the factor is singular")
    return inv


def _stencil(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """The points at which :func:`~mixedmodels.inference.numdiff.hessian` (relative step ``D_HESSIAN``, halved
    ``_R − 1`` times) evaluates a function of θ, as one array: θ itself, then per parameter ``i`` and halving
    ``r`` the pair ``θ ± h e_i``, then per pair ``i > j`` and halving the four ``θ ± h_i e_i ± h_j e_j``. The
    Jacobian with the same step (:func:`~mixedmodels.inference.numdiff.jacobian`) uses the diagonal pairs."""
    k = theta.size
    h = _steps(theta, D_HESSIAN)[None, :] / (float(_V) ** np.arange(_R))[:, None]  # (R, k)
    pts = [theta[None, :]]
    for i in range(k):
        e = np.zeros((_R, k))
        e[:, i] = h[:, i]
        pts += [theta + e, theta - e]  # rows: +h for each halving, then −h
    pairs = [(i, j) for i in range(k) for j in range(i)]
    for i, j in pairs:
        ei = np.zeros((_R, k))
        ej = np.zeros((_R, k))
        ei[:, i] = h[:, i]
        ej[:, j] = h[:, j]
        pts += [theta + ei + ej, theta + ei - ej, theta - ei + ej, theta - ei - ej]
    return np.vstack(pts), h, pairs


def satterthwaite_df(ev: ResponseEvaluator, theta: np.ndarray, sigma: float, vcov_beta: np.ndarray, reml: bool) -> np.ndarray:
    """Satterthwaite's df of each coefficient, as :class:`~mixedmodels.inference.ddf.Satterthwaite` computes them
    (lmerTest's method: the Hessian of the deviance in ``(θ, σ)`` and ``∂C/∂(θ, σ)`` for ``C = σ²(R_X'R_X)⁻¹``,
    by numDeriv's Richardson scheme), with every point of the numerical derivatives evaluated in one batch."""
    s = ev.s
    k, p = theta.size, s.p
    c = s.c_reml if reml else s.c_ml
    pts, h, pairs = _stencil(theta)
    r2, logdets, U = ev.states(pts, reml)
    dev = logdets + r2 / sigma**2 + c * math.log(2.0 * math.pi * sigma**2)  # criterion_value at σ, per point
    g = np.concatenate([r2[:, None], U.reshape(len(pts), -1)], axis=1)  # r² and U, for the Jacobian
    H = np.empty((k + 1, k + 1))
    J = np.empty((g.shape[1], k))
    for i in range(k):
        plus, minus = slice(1 + 2 * _R * i, 1 + 2 * _R * i + _R), slice(1 + 2 * _R * i + _R, 1 + 2 * _R * (i + 1))
        H[i, i] = _extrapolate((dev[plus] - 2.0 * dev[0] + dev[minus]) / h[:, i] ** 2)
        J[:, i] = _extrapolate((g[plus] - g[minus]) / (2.0 * h[:, i])[:, None])
    base = 1 + 2 * _R * k
    for n, (i, j) in enumerate(pairs):
        f = dev[base + 4 * _R * n : base + 4 * _R * (n + 1)].reshape(4, _R)
        H[i, j] = H[j, i] = _extrapolate((f[0] - f[1] - f[2] + f[3]) / (4.0 * h[:, i] * h[:, j]))
    H[:k, k] = H[k, :k] = -2.0 * J[0] / sigma**3
    H[k, k] = 6.0 * r2[0] / sigma**4 - 2.0 * c / sigma**2
    jac = np.empty((k + 1, p, p))
    jac[:k] = np.moveaxis(sigma**2 * J[1:].reshape(p, p, k), -1, 0)
    jac[k] = 2.0 * sigma * U[0]
    values, vectors = np.linalg.eigh(H)
    pos = values > HESSIAN_TOL
    A = 2.0 * (vectors[:, pos] / values[pos]) @ vectors[:, pos].T
    idx = np.arange(p)
    grad = jac[:, idx, idx]  # (k + 1, p)
    return 2.0 * vcov_beta[idx, idx] ** 2 / np.einsum("ki,kl,li->i", grad, A, grad)


def _check_derivatives(ev: ResponseEvaluator, reml: bool):
    """lme4's convergence check derivatives (:func:`~mixedmodels.optimize.finite_difference_derivatives`: central
    differences with step δ = 1e-4 at the same points, by the same formulas) with the points evaluated in one batch."""

    def derivatives(fun, x: np.ndarray, f0: float, delta: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
        n = x.size
        E = np.eye(n) * delta
        pairs = [(i, j) for i in range(n) for j in range(i)]
        pts = [x + E, x - E] + [np.array([x + E[i] + E[j], x + E[i] - E[j], x - E[i] + E[j], x - E[i] - E[j]])
                                for i, j in pairs]
        r2, logdets, _ = ev.states(np.vstack(pts), reml, need_u=False)
        c = ev.s.c_reml if reml else ev.s.c_ml
        with np.errstate(divide="ignore"):
            f = logdets + c * (1.0 + np.log(2.0 * math.pi * r2 / c))  # criterion_value profiled over σ
        fp, fm = f[:n], f[n : 2 * n]
        grad = (fp - fm) / (2 * delta)
        hess = np.empty((n, n))
        hess[np.arange(n), np.arange(n)] = (fp - 2 * f0 + fm) / delta**2
        for k, (i, j) in enumerate(pairs):
            q = f[2 * n + 4 * k : 2 * n + 4 * k + 4]
            hess[i, j] = hess[j, i] = (q[0] - q[1] - q[2] + q[3]) / (4 * delta**2)
        return grad, hess

    return derivatives


def fit_response(shared: SharedDesign, ev: ResponseEvaluator, *, ddf: bool = True) -> ResponseFit:
    """Fit one response as ``LinearMixedModel.fit`` would, then Satterthwaite's df when ``ddf``."""
    model = shared.model
    theta, value, record = optimize_theta(
        lambda th: ev.criterion(th, model.reml), shared.theta_start, shared.lower_bounds, check=True,
        control=model.control, boundary=shared.boundary, derivatives=_check_derivatives(ev, model.reml),
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
    rinv = _rx_inverse(lxx, p)
    beta = rinv.T @ lxx[p, :p]  # R_X β = r_Xy, with R_X' the lower factor's X block
    if model.y_shift is not None:
        beta[model.y_shift[0]] += ev.shift
    sigma = math.sqrt(r2 / (shared.c_reml if reml else shared.c_ml))
    vcov = sigma**2 * rinv.T @ rinv
    se = np.sqrt(np.diag(vcov))
    df = np.full(p, np.nan)
    if ddf and sigma > 0 and p:
        df = satterthwaite_df(ev, theta, sigma, vcov, reml)
    at_bound = shared.boundary(theta)
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
