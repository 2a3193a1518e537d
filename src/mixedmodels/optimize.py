"""Derivative-free optimisation of the profiled objective over θ, and lme4's convergence checks."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import nlopt
import numpy as np

#: lme4's ``nloptwrap`` defaults.
FTOL_ABS = 1e-8
XTOL_ABS = 1e-8
MAXEVAL = 100_000
#: θ elements with a lower bound of 0 below this are "on the boundary" (lme4's isSingular tol).
SINGULAR_TOL = 1e-4
#: lme4's ``check.conv.grad`` tolerance on the scaled gradient.
GRAD_TOL = 2e-3
#: Skip the finite-difference check when it would take more evaluations than this.
MAX_CHECK_EVALS = 400

_NLOPT_CODES = {
    1: "NLOPT_SUCCESS",
    2: "NLOPT_STOPVAL_REACHED",
    3: "NLOPT_FTOL_REACHED",
    4: "NLOPT_XTOL_REACHED",
    5: "NLOPT_MAXEVAL_REACHED",
    6: "NLOPT_MAXTIME_REACHED",
    -1: "NLOPT_FAILURE",
    -2: "NLOPT_INVALID_ARGS",
    -3: "NLOPT_OUT_OF_MEMORY",
    -4: "NLOPT_ROUNDOFF_LIMITED",
    -5: "NLOPT_FORCED_STOP",
}


@dataclass(frozen=True)
class FitRecord:
    """What the optimizer did.

    Attributes
    ----------
    optimizer : str
        Algorithm name.
    evaluations : int
        Objective evaluations by the optimizer (not counting the convergence check).
    seconds : float
        Wall time of the optimisation.
    return_code : int
        nlopt's return code (positive: success).
    message : str
        nlopt's name for that code.
    theta_start : tuple of float
    gradient : tuple of float or None
        Finite-difference gradient of the objective at the optimum (None if not computed).
    max_scaled_gradient : float or None
        lme4's convergence statistic ``max(min(|H⁻¹g|, |g|))`` over interior parameters.
    warnings : tuple of str
        Convergence and singularity warnings, in lme4's words.
    """

    optimizer: str
    evaluations: int
    seconds: float
    return_code: int
    message: str
    theta_start: tuple[float, ...]
    gradient: tuple[float, ...] | None = None
    max_scaled_gradient: float | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def converged(self) -> bool:
        """True when nlopt reported success and no convergence warning was raised."""
        return self.return_code > 0 and self.return_code != 5 and not any(
            w.startswith("Model failed to converge") for w in self.warnings
        )


def bobyqa(
    fun: Callable[[np.ndarray], float],
    x0: np.ndarray,
    lower: np.ndarray,
    *,
    ftol_abs: float = FTOL_ABS,
    xtol_abs: float = XTOL_ABS,
    maxeval: int = MAXEVAL,
) -> tuple[np.ndarray, float, int]:
    """Minimise ``fun`` from ``x0`` subject to ``x >= lower`` with nlopt's BOBYQA.

    Returns
    -------
    x, f, return_code
    """
    n = len(x0)
    opt = nlopt.opt(nlopt.LN_BOBYQA, n)
    opt.set_min_objective(lambda x, grad: fun(x))
    opt.set_lower_bounds(np.asarray(lower, dtype=float))
    opt.set_ftol_abs(ftol_abs)
    opt.set_xtol_abs(xtol_abs)
    opt.set_maxeval(maxeval)
    try:
        x = opt.optimize(np.asarray(x0, dtype=float))
        code = opt.last_optimize_result()
    except nlopt.RoundoffLimited:
        x, code = None, -4
    if x is None:
        x = np.asarray(x0, dtype=float)
    return np.asarray(x), float(opt.last_optimum_value()), int(code)


def finite_difference_derivatives(fun: Callable[[np.ndarray], float], x: np.ndarray, f0: float, delta: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference gradient and Hessian of ``fun`` at ``x`` (as lme4's ``deriv12``)."""
    n = len(x)
    grad = np.empty(n)
    hess = np.empty((n, n))
    fp = np.empty(n)
    fm = np.empty(n)
    for i in range(n):
        e = np.zeros(n)
        e[i] = delta
        fp[i], fm[i] = fun(x + e), fun(x - e)
        grad[i] = (fp[i] - fm[i]) / (2 * delta)
        hess[i, i] = (fp[i] - 2 * f0 + fm[i]) / delta**2
    for i in range(n):
        for j in range(i):
            ei = np.zeros(n)
            ej = np.zeros(n)
            ei[i] = ej[j] = delta
            hess[i, j] = hess[j, i] = (
                fun(x + ei + ej) - fun(x + ei - ej) - fun(x - ei + ej) + fun(x - ei - ej)
            ) / (4 * delta**2)
    return grad, hess


def singular_components(theta: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Indices of θ elements with lower bound 0 that are (numerically) at it."""
    return np.flatnonzero((lower == 0) & (theta < SINGULAR_TOL))


def convergence_warnings(grad: np.ndarray, hess: np.ndarray, interior: np.ndarray) -> tuple[list[str], float | None]:
    """lme4's ``checkConv`` on the interior components: scaled gradient and Hessian definiteness."""
    if interior.size == 0:
        return [], None
    g = grad[interior]
    H = hess[np.ix_(interior, interior)]
    out: list[str] = []
    try:
        scaled = np.linalg.solve(np.linalg.cholesky(H).T, g)
    except np.linalg.LinAlgError:
        neg = int(np.sum(np.linalg.eigvalsh(H) < 0))
        out.append("unable to evaluate scaled gradient")
        out.append(f"Model failed to converge: degenerate Hessian with {neg} negative eigenvalues")
        return out, None
    mingrad = np.minimum(np.abs(scaled), np.abs(g))
    worst = float(np.max(mingrad))
    if worst > GRAD_TOL:
        out.append(
            f"Model failed to converge with max|grad| = {worst:.6g} (tol = {GRAD_TOL:g}, component {int(np.argmax(mingrad)) + 1})"
        )
    return out, worst


def optimize_theta(
    fun: Callable[[np.ndarray], float],
    x0: np.ndarray,
    lower: np.ndarray,
    *,
    check: bool = True,
) -> tuple[np.ndarray, float, FitRecord]:
    """Run BOBYQA, then lme4's singularity and convergence checks.

    Parameters
    ----------
    fun : callable
        Objective of θ.
    x0, lower : numpy.ndarray
        Start and lower bounds.
    check : bool
        Compute the finite-difference gradient check when it is cheap.

    Returns
    -------
    theta, value, FitRecord
    """
    evals = 0

    def counted(x: np.ndarray) -> float:
        nonlocal evals
        evals += 1
        return fun(x)

    t0 = time.perf_counter()
    theta, value, code = bobyqa(counted, x0, lower)
    seconds = time.perf_counter() - t0
    msgs: list[str] = []
    if code < 0 or code == 5:
        msgs.append(f"convergence code {code} from nloptwrap: {_NLOPT_CODES.get(code, 'unknown')}")
    grad = None
    worst = None
    n = len(theta)
    if check and n and 2 * n * n <= MAX_CHECK_EVALS:
        value = fun(theta)  # also leaves the factor at the optimum
        g, H = finite_difference_derivatives(fun, theta, value)
        grad = tuple(float(v) for v in g)
        boundary = singular_components(theta, lower)
        interior = np.setdiff1d(np.arange(n), boundary)
        extra, worst = convergence_warnings(g, H, interior)
        msgs.extend(extra)
    if singular_components(theta, lower).size:
        msgs.append("boundary (singular) fit: see help('isSingular')")
    record = FitRecord(
        optimizer="nlopt LN_BOBYQA",
        evaluations=evals,
        seconds=seconds,
        return_code=code,
        message=_NLOPT_CODES.get(code, "unknown"),
        theta_start=tuple(float(v) for v in x0),
        gradient=grad,
        max_scaled_gradient=worst,
        warnings=tuple(msgs),
    )
    return theta, value, record
