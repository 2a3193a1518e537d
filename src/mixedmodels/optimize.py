"""Derivative-free optimisation of the profiled objective over θ, and lme4's convergence checks."""

from __future__ import annotations

import dataclasses
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
#: Smallest initial step of a component with a lower bound.  nlopt's default step for a start
#: ``x > lower`` is ``0.75 (x − lower)``: a θ started at 1e-6 (a REML estimate on the boundary,
#: the start of its ML refit) would get a trust region of 1e-6 and BOBYQA would stop where it began.
MIN_INITIAL_STEP = 0.1
#: lme4's ``restart_edge`` probe: a θ component at its bound is moved by this to test the slope.
EDGE_STEP = 1e-5

_ALGORITHMS = {"bobyqa": nlopt.LN_BOBYQA, "nelder_mead": nlopt.LN_NELDERMEAD, "newuoa": nlopt.LN_NEWUOA_BOUND,
               "sbplx": nlopt.LN_SBPLX}
#: Bounded methods of scipy.optimize (finite-difference gradients for L-BFGS-B), for allFit-style checks.
_SCIPY = {"lbfgsb": "L-BFGS-B", "powell": "Powell"}

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
class OptimizerControl:
    """Optimizer settings, as lme4's ``lmerControl``.

    Attributes
    ----------
    optimizer : {"bobyqa", "nelder_mead", "newuoa", "sbplx", "lbfgsb", "powell"}
        nlopt's BOBYQA (lme4's default ``nloptwrap``), Nelder–Mead, NEWUOA (with bounds) or Subplex;
        scipy's L-BFGS-B (finite-difference gradient) or Powell.
    maxfun : int
        Most objective evaluations.
    ftol_abs, xtol_abs : float
        Absolute tolerances on the objective and on θ.
    check_conv : bool
        Run lme4's finite-difference gradient and Hessian check at the optimum.
    restart_edge : bool
        When a θ component ends on its bound while the objective decreases into the interior,
        restart from there (lme4's ``restart_edge``).
    """

    optimizer: str = "bobyqa"
    maxfun: int = MAXEVAL
    ftol_abs: float = FTOL_ABS
    xtol_abs: float = XTOL_ABS
    check_conv: bool = True
    restart_edge: bool = True

    def __post_init__(self) -> None:
        from .exceptions import ModelError

        if self.optimizer not in _ALGORITHMS and self.optimizer not in _SCIPY:
            raise ModelError(f"unknown optimizer {self.optimizer!r}; use one of {', '.join(sorted({**_ALGORITHMS, **_SCIPY}))}")
        if int(self.maxfun) < 1:
            raise ModelError(f"maxfun must be a positive number of evaluations, got {self.maxfun!r}")
        if not (self.ftol_abs >= 0 and self.xtol_abs >= 0):
            raise ModelError("ftol_abs and xtol_abs must be non-negative")

    @classmethod
    def make(cls, control: "OptimizerControl | dict | None" = None, optimizer: str | None = None) -> "OptimizerControl":
        """Settings from an ``OptimizerControl``, a dict of its fields, or None, with ``optimizer`` overriding."""
        from .exceptions import ModelError

        if control is None:
            fields: dict = {}
        elif isinstance(control, cls):
            fields = dataclasses.asdict(control)
        elif isinstance(control, dict):
            known = {f.name for f in dataclasses.fields(cls)}
            unknown = set(control) - known
            if unknown:
                raise ModelError(
                    f"unknown control setting(s) {', '.join(sorted(map(str, unknown)))}; known: {', '.join(sorted(known))}"
                )
            fields = dict(control)
        else:
            raise ModelError(f"control must be an OptimizerControl or a dict, got {type(control).__name__}")
        if optimizer is not None:
            fields["optimizer"] = optimizer
        if "optimizer" in fields:
            fields["optimizer"] = str(fields["optimizer"]).lower().replace("-", "_")
        return cls(**fields)


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


def initial_step(x0: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """nlopt's default first step for each component, but never below :data:`MIN_INITIAL_STEP`."""
    x0 = np.asarray(x0, dtype=float)
    lower = np.asarray(lower, dtype=float)
    above = np.isfinite(lower) & (x0 > lower)
    default = np.where(above, 0.75 * (x0 - lower), np.where(x0 != 0, np.abs(x0), 1.0))
    return np.maximum(default, MIN_INITIAL_STEP)


def bobyqa(
    fun: Callable[[np.ndarray], float],
    x0: np.ndarray,
    lower: np.ndarray,
    *,
    ftol_abs: float = FTOL_ABS,
    xtol_abs: float = XTOL_ABS,
    maxeval: int = MAXEVAL,
    algorithm: str = "bobyqa",
) -> tuple[np.ndarray, float, int]:
    """Minimise ``fun`` from ``x0`` subject to ``x >= lower`` with nlopt's BOBYQA (or Nelder–Mead).

    Returns
    -------
    x, f, return_code
    """
    n = len(x0)
    if n == 0:  # nothing to optimise (a marginal model with iid residuals): the criterion at its only point
        return np.zeros(0), float(fun(np.zeros(0))), 1
    if algorithm in _SCIPY:
        return _scipy_minimize(fun, x0, lower, ftol_abs=ftol_abs, xtol_abs=xtol_abs, maxeval=maxeval, method=_SCIPY[algorithm])
    opt = nlopt.opt(_ALGORITHMS[algorithm], n)
    opt.set_min_objective(lambda x, grad: fun(x))
    opt.set_lower_bounds(np.asarray(lower, dtype=float))
    opt.set_ftol_abs(ftol_abs)
    opt.set_xtol_abs(xtol_abs)
    opt.set_maxeval(int(maxeval))
    if n:
        opt.set_initial_step(initial_step(x0, lower))
    try:
        x = opt.optimize(np.asarray(x0, dtype=float))
        code = opt.last_optimize_result()
    except nlopt.RoundoffLimited:
        x, code = None, -4
    if x is None:
        x = np.asarray(x0, dtype=float)
    return np.asarray(x), float(opt.last_optimum_value()), int(code)


def _scipy_minimize(
    fun: Callable[[np.ndarray], float], x0: np.ndarray, lower: np.ndarray, *, ftol_abs: float, xtol_abs: float,
    maxeval: int, method: str,
) -> tuple[np.ndarray, float, int]:
    """Minimise with a bounded scipy method; the return code is nlopt's (1 success, 5 evaluations exhausted, -1 failure)."""
    from scipy.optimize import minimize

    bounds = [(None if not np.isfinite(lo) else float(lo), None) for lo in lower]
    if method == "L-BFGS-B":
        options = {"maxfun": int(maxeval), "ftol": 1e-15, "gtol": 1e-8, "maxls": 50}
    else:
        options = {"maxfev": int(maxeval), "ftol": 1e-12, "xtol": float(xtol_abs)}
    res = minimize(fun, np.asarray(x0, dtype=float), method=method, bounds=bounds, options=options)
    code = 1 if res.success else (5 if res.nfev >= maxeval else -1)
    return np.asarray(res.x, dtype=float), float(res.fun), code


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


def _edge_restart_needed(fun: Callable[[np.ndarray], float], theta: np.ndarray, lower: np.ndarray, value: float) -> bool:
    """lme4's ``restart_edge`` test: does the objective fall when a component at its bound moves inward?"""
    at_bound = np.flatnonzero(np.isfinite(lower) & (theta <= lower))
    for i in at_bound:
        probe = theta.copy()
        probe[i] = lower[i] + EDGE_STEP
        if fun(probe) < value:
            return True
    return False


def optimize_theta(
    fun: Callable[[np.ndarray], float],
    x0: np.ndarray,
    lower: np.ndarray,
    *,
    check: bool = True,
    control: OptimizerControl | None = None,
    boundary: Callable[[np.ndarray], np.ndarray] | None = None,
    derivatives: Callable[..., tuple[np.ndarray, np.ndarray]] = finite_difference_derivatives,
) -> tuple[np.ndarray, float, FitRecord]:
    """Run the optimizer, lme4's edge restart, then lme4's singularity and convergence checks.

    Parameters
    ----------
    fun : callable
        Objective of θ.
    x0, lower : numpy.ndarray
        Start and lower bounds.
    check : bool
        Compute the finite-difference gradient check when it is cheap (and ``control.check_conv``).
    control : OptimizerControl, optional
        Optimizer and tolerances (lme4's defaults when None).
    boundary : callable, optional
        Indices of the components of θ on the boundary of the parameter space (a structure's
        correlation at ±1, say); default :func:`singular_components` (components at a lower bound of 0).
        They are left out of the gradient check and make the fit singular.
    derivatives : callable, optional
        ``derivatives(fun, theta, value) → (gradient, Hessian)`` for the check; default
        :func:`finite_difference_derivatives` (``fit_many`` evaluates the same points in one batch).

    Returns
    -------
    theta, value, FitRecord
    """
    if boundary is None:

        def boundary(th: np.ndarray) -> np.ndarray:
            return singular_components(th, lower)

    ctl = control if control is not None else OptimizerControl()
    evals = 0

    def counted(x: np.ndarray) -> float:
        nonlocal evals
        evals += 1
        return fun(x)

    def run(start: np.ndarray) -> tuple[np.ndarray, float, int]:
        return bobyqa(
            counted, start, lower, ftol_abs=ctl.ftol_abs, xtol_abs=ctl.xtol_abs, maxeval=ctl.maxfun - evals,
            algorithm=ctl.optimizer,
        )

    t0 = time.perf_counter()
    theta, value, code = run(np.asarray(x0, dtype=float))
    if ctl.restart_edge and code > 0 and evals < ctl.maxfun and _edge_restart_needed(counted, theta, lower, value):
        theta2, value2, code2 = run(theta)
        if value2 <= value:
            theta, value, code = theta2, value2, code2
    seconds = time.perf_counter() - t0
    msgs: list[str] = []
    if code < 0 or code == 5:
        msgs.append(f"convergence code {code} from nloptwrap: {_NLOPT_CODES.get(code, 'unknown')}")
    grad = None
    worst = None
    n = len(theta)
    if check and ctl.check_conv and n and 2 * n * n <= MAX_CHECK_EVALS:
        value = fun(theta)
        g, H = derivatives(fun, theta, value)
        grad = tuple(float(v) for v in g)
        interior = np.setdiff1d(np.arange(n), boundary(theta))
        extra, worst = convergence_warnings(g, H, interior)
        msgs.extend(extra)
    if boundary(theta).size:
        msgs.append("boundary (singular) fit: see help('isSingular')")
    record = FitRecord(
        optimizer=f"scipy {_SCIPY[ctl.optimizer]}" if ctl.optimizer in _SCIPY else f"nlopt LN_{ctl.optimizer.upper().replace('_', '')}",
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
