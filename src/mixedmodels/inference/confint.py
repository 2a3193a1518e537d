"""Confidence intervals: Wald, profile likelihood and parametric bootstrap (lme4's ``confint``).

Parameters are named as lme4 names them: ``.sig01, .sig02, …`` for the standard deviations and
correlations of each term (in θ's order: a term's column-major lower triangle, diagonal entries
as SDs, off-diagonal ones as correlations), ``.sigma``, then the fixed effects.

The profile is of the ML deviance, as lme4's (which profiles a REML fit's ML refit): for each
parameter ψ, ``ζ(ψ) = sign(ψ − ψ̂) √(d(ψ) − d(ψ̂))`` with ``d(ψ)`` the deviance minimised over all
other parameters, and the interval's ends solve ``ζ(ψ) = ±z_{(1+level)/2}`` (Bates et al. 2015, §5.1).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import nlopt
import numpy as np
import pandas as pd
from scipy import optimize, stats

from ..engine.objective import criterion
from ..engine.threads import blas_policy
from ..exceptions import ConvergenceWarning, ModelError, warn_user
from .bootstrap import _progress, parametric_bootstrap, progress_enabled

if TYPE_CHECKING:
    from ..results import LinearMixedModelResults


class VarianceParameters:
    """The map between ``(θ, σ)`` and lme4's SD/correlation scale ``φ = (sd's and correlations, σ)``.

    Each term's covariance structure gives its part (:meth:`RandomCovariance.to_phi`).
    """

    def __init__(self, result: "LinearMixedModelResults") -> None:
        self.terms = result.terms
        self.kinds: list[str] = [k for t in self.terms for k in t.structure.phi_kinds()]
        self.kinds.append("sigma")
        self.names = [f".sig{i + 1:02d}" for i in range(len(self.kinds) - 1)] + [".sigma"]

    def to_phi(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        """SDs and correlations of each term, then σ."""
        out, start = [], 0
        for t in self.terms:
            out.extend(t.structure.to_phi(theta[start : start + t.ntheta], sigma))
            start += t.ntheta
        out.append(sigma)
        return np.array(out)

    def to_theta(self, phi: np.ndarray) -> tuple[np.ndarray, float]:
        """``(θ, σ)`` for a point ``φ``."""
        sigma = float(phi[-1])
        out, start = [], 0
        for t in self.terms:
            out.extend(t.structure.from_phi(phi[start : start + t.ntheta], sigma))
            start += t.ntheta
        return np.array(out), sigma

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of φ (each structure's: a compound symmetry's correlation is at least −1/(p − 1))."""
        parts = [t.structure.phi_bounds() for t in self.terms]
        lower = np.concatenate([lo for lo, _ in parts] + [[1e-10]])
        upper = np.concatenate([hi for _, hi in parts] + [[np.inf]])
        return lower, upper


@dataclass
class Profile:
    """Profile traces ``(value, ζ)`` per parameter, for intervals and zeta plots."""

    traces: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    estimates: dict[str, float] = field(default_factory=dict)

    def frame(self) -> pd.DataFrame:
        """Long table with columns ``parameter``, ``value``, ``zeta``."""
        rows = [(name, v, z) for name, pts in self.traces.items() for v, z in sorted(pts)]
        return pd.DataFrame(rows, columns=["parameter", "value", "zeta"])


class _Profiler:
    """Profiles the ML deviance of a fit over each parameter."""

    def __init__(self, result: "LinearMixedModelResults") -> None:
        self.ml = result.refit_ml(warn=False)
        for msg in self.ml.fit_record.warnings:  # the intervals are solved against this minimum
            if not msg.startswith("boundary"):
                warn_user(f"ML refit for the profile: {msg}", ConvergenceWarning)
        self.vp = VarianceParameters(self.ml)
        self.factor = self.ml.factor.with_crossproducts(self.ml.model.crossprods)
        self.n = self.ml.nobs
        self.phi_hat = self.vp.to_phi(self.ml.theta, self.ml.sigma)
        self.dev_hat = self.ml.objective
        self.profile = Profile()

    def deviance_phi(self, phi: np.ndarray) -> float:
        """ML deviance with β profiled out and σ not: ``r²/σ² + n log 2πσ² + log|L|²``."""
        theta, sigma = self.vp.to_theta(phi)
        f = self.factor.update(theta)
        return criterion(f, reml=False, n=self.n, p=self.ml.nfixed, sigma=sigma, logdet_r=self.ml.model.logdet_r)

    def _minimise_others(self, i: int, value: float, start: np.ndarray) -> tuple[float, np.ndarray]:
        lower, upper = self.vp.bounds()
        free = [j for j in range(len(start)) if j != i]
        phi = start.copy()
        phi[i] = value

        best = [np.inf, None]

        def fun(x, grad):
            phi[free] = x
            try:
                val = self.deviance_phi(phi)
            except ModelError:
                return 1e300
            if val < best[0]:
                best[0], best[1] = val, x.copy()
            return val

        if not free:
            return fun(np.zeros(0), None), phi
        opt = nlopt.opt(nlopt.LN_BOBYQA, len(free))
        lo = lower[free]
        hi = upper[free]
        x0 = np.clip(start[free], lo, hi)
        x0 = np.where(lo == 0, np.maximum(x0, 1e-8), x0)
        opt.set_lower_bounds(lo)
        opt.set_upper_bounds(np.where(np.isfinite(hi), hi, 1e300))
        opt.set_min_objective(fun)
        opt.set_ftol_abs(1e-10)
        opt.set_xtol_abs(1e-10)
        opt.set_maxeval(5000)
        steps = np.maximum(np.abs(x0) * 0.1, 0.01)
        opt.set_initial_step(np.minimum(steps, np.where(np.isfinite(hi), (hi - lo) / 4, steps)))
        try:
            opt.optimize(x0)
        except nlopt.RoundoffLimited:  # the best point so far is as good as the tolerances allow
            pass
        phi[free] = best[1] if best[1] is not None else x0
        return float(best[0]), phi.copy()

    def zeta_var(self, i: int, value: float, start: np.ndarray) -> tuple[float, np.ndarray]:
        # two starts — the previous point (continuation) and the estimate — and the lower minimum:
        # the profiled deviance can have several local minima in the other parameters
        dev, phi = self._minimise_others(i, value, start)
        if not np.array_equal(np.delete(start, i), np.delete(self.phi_hat, i)):
            dev2, phi2 = self._minimise_others(i, value, self.phi_hat)
            if dev2 < dev:
                dev, phi = dev2, phi2
        z = math.copysign(math.sqrt(max(dev - self.dev_hat, 0.0)), value - self.phi_hat[i])
        return z, phi

    def zeta_fixed(self, j: int, value: float, start_theta: np.ndarray) -> tuple[float, np.ndarray]:
        from ..model import LinearMixedModel

        d = self.ml.design
        keep = [k for k in range(d.X.shape[1]) if k != j]
        design = dataclasses.replace(
            d, X=np.ascontiguousarray(d.X[:, keep]), y=d.y - d.X[:, j] * value, fixed_names=tuple(d.fixed_names[k] for k in keep)
        )
        model = LinearMixedModel(design, reml=False)
        # from the previous point (continuation), from the estimate and, when the estimate is on the
        # boundary, from a point off it: a start at the boundary can keep the inner fit there
        starts = [start_theta, self.ml.theta]
        if self.ml.singular:
            starts.append(model.theta_off_boundary(self.ml.theta))
        fit = model.fit_best(starts, check_convergence=False, warn=False)
        z = math.copysign(math.sqrt(max(fit.objective - self.dev_hat, 0.0)), value - self.ml.beta[j])
        return z, fit.theta


def _solve_side(zeta, estimate: float, scale: float, target: float, bound: float) -> tuple[float, list[tuple[float, float]]]:
    """Find ``v`` on one side of the estimate with ``ζ(v) = target``, or the bound if ζ never gets there."""
    trace: list[tuple[float, float]] = []
    sign = 1.0 if target > 0 else -1.0
    step = scale if scale > 0 and np.isfinite(scale) else max(abs(estimate) * 0.1, 1e-3)
    a, za = estimate, 0.0
    for _ in range(60):
        b = estimate + sign * step
        if (sign > 0 and b >= bound) or (sign < 0 and b <= bound):
            b = bound
        zb = zeta(b)
        trace.append((b, zb))
        if abs(zb) >= abs(target):
            # the bracket's ends keep the values already found: the inner optimisations start from
            # the previous point, so a second evaluation at the same place can differ in the last digits
            known = {a: za, b: zb}

            def gap(v: float) -> float:
                z = known[v] if v in known else zeta(v)
                return z - target

            root = optimize.brentq(gap, a, b, xtol=1e-8 * max(1.0, abs(estimate)), rtol=1e-10)
            return root, trace
        if b == bound:
            return bound, trace
        a, za = b, zb
        step *= 1.6
    return (bound if np.isfinite(bound) else np.nan), trace


def _fill(zeta, estimate: float, end: float, bound: float) -> list[tuple[float, float]]:
    """A few more profile points between the estimate and an interval's end (for smooth zeta plots)."""
    if not np.isfinite(end) or end == estimate:
        return []
    pts = [(estimate, 0.0)]
    for frac in (0.25, 0.5, 0.75, 1.0):
        v = estimate + frac * (end - estimate)
        pts.append((v, zeta(v)))
    return pts


def profile_parameter(
    zeta_at, start: np.ndarray, estimate: float, scale: float, bounds: tuple[float, float], z: float, trace_points: bool
) -> tuple[list[float], list[tuple[float, float]]]:
    """Both ends of one parameter's profile interval and the ``(value, ζ)`` points visited.

    ``zeta_at(value, start) -> (ζ, optimum)`` minimises over the other parameters from ``start``; each side
    walks out from the estimate, each point starting from the previous one's optimum (continuation).
    """
    sides: list[float] = []
    trace: list[tuple[float, float]] = []
    for target, bound in ((-z, bounds[0]), (z, bounds[1])):
        state = {"start": np.array(start, dtype=float, copy=True)}

        def zeta(v: float) -> float:
            value, state["start"] = zeta_at(v, state["start"])
            return value

        end, points = _solve_side(zeta, estimate, scale, target, bound)
        sides.append(end)
        trace.extend(points + (_fill(zeta, estimate, end, bound) if trace_points else []))
    return sides, trace


def profile_intervals(
    result: "LinearMixedModelResults",
    level: float = 0.95,
    *,
    parm: list[str] | None = None,
    progress: bool | None = None,
    trace_points: bool = False,
) -> tuple[pd.DataFrame, Profile]:
    """Profile-likelihood intervals for every parameter (lme4's ``confint(m, method = "profile")``).

    ``trace_points=True`` also evaluates ζ at evenly spaced points inside each interval, for plots.
    Models with a residual structure or variance function are profiled by
    :func:`.residual_intervals.residual_profile_intervals`.
    """
    if not result.model.iid_residuals:
        from .residual_intervals import residual_profile_intervals

        with blas_policy():
            return residual_profile_intervals(result, level, parm=parm, progress=progress, trace_points=trace_points)
    with blas_policy():
        return _profile_intervals(_Profiler(result), level, parm=parm, progress=progress, trace_points=trace_points)


def _profile_intervals(
    pr: _Profiler, level: float, *, parm: list[str] | None, progress: bool | None, trace_points: bool
) -> tuple[pd.DataFrame, Profile]:
    z = stats.norm.ppf(0.5 + level / 2)
    vp = pr.vp
    names = vp.names + list(pr.ml.design.fixed_names)
    wanted = names if parm is None else [p for p in names if p in parm]
    lower_b, upper_b = vp.bounds()
    # scales for the first steps: Wald-type SEs from the curvature of the deviance
    from .numdiff import hessian

    try:
        H = hessian(lambda ph: pr.deviance_phi(np.clip(ph, lower_b, upper_b)), pr.phi_hat)
        se_phi = np.sqrt(np.abs(np.diag(np.linalg.pinv(H / 2))))
    except (ModelError, np.linalg.LinAlgError):
        se_phi = np.abs(pr.phi_hat) * 0.2
    se_beta = np.sqrt(np.diag(pr.ml.vcov.to_numpy()))
    rows = {}
    show = progress_enabled(progress)
    for name in _progress(wanted, len(wanted), "profile", show):
        if name in vp.names:
            i = vp.names.index(name)
            est = pr.phi_hat[i]
            sides, trace = profile_parameter(
                lambda v, st, i=i: pr.zeta_var(i, v, st), pr.phi_hat, est,
                max(se_phi[i], 1e-3 * max(abs(est), 1e-3)), (lower_b[i], upper_b[i]), z, trace_points,
            )
        else:
            j = list(pr.ml.design.fixed_names).index(name)
            est = pr.ml.beta[j]
            sides, trace = profile_parameter(
                lambda v, st, j=j: pr.zeta_fixed(j, v, st), pr.ml.theta, est, se_beta[j], (-np.inf, np.inf), z, trace_points,
            )
        pr.profile.traces.setdefault(name, []).extend(trace)
        pr.profile.estimates[name] = float(est)
        rows[name] = sides
    return _frame(rows, level), pr.profile


def _frame(rows: dict[str, list[float]], level: float) -> pd.DataFrame:
    a = (1 - level) / 2
    cols = [f"{100 * a:.3g} %", f"{100 * (1 - a):.3g} %"]
    out = pd.DataFrame.from_dict(rows, orient="index", columns=cols)
    out.index.name = "parameter"
    return out


def wald_intervals(result: "LinearMixedModelResults", level: float = 0.95) -> pd.DataFrame:
    """Wald intervals ``β̂ ± z·SE`` for the fixed effects; variance parameters are NaN, as lme4, except with a
    residual structure or variance function, where they are nlme's (:mod:`.residual_intervals`)."""
    z = stats.norm.ppf(0.5 + level / 2)
    vp = VarianceParameters(result)
    rows = {name: [np.nan, np.nan] for name in vp.names}
    if not result.model.iid_residuals:
        from .residual_intervals import wald_variance_intervals

        rows = wald_variance_intervals(result, level)
    se = np.sqrt(np.diag(result.vcov.to_numpy()))
    for name, b, s in zip(result.design.fixed_names, result.beta, se):
        rows[name] = [b - z * s, b + z * s]
    return _frame(rows, level)


def _residual_parameters(result: Any) -> tuple[list[str], np.ndarray]:
    """Names and natural-scale values of a fit's residual-structure and variance-function parameters."""
    names: list[str] = []
    values: list[float] = []
    model = result.model
    if model.residual_structure is not None:
        for n, v in model.residual_structure.natural_items(result.rho, result.sigma):
            names.append(f"residual {n}")
            values.append(v)
    if model.variance is not None:
        for n, v in model.variance.natural(result.delta):
            names.append(f"variance {n}")
            values.append(v)
    return names, np.asarray(values, dtype=float)


def all_parameters(result: Any) -> np.ndarray:
    """lme4's ``confint`` parameters of a fit: SDs/correlations, σ, any residual-structure and variance-function
    parameters (natural scale), then β."""
    vp = VarianceParameters(result)
    return np.r_[vp.to_phi(result.theta, result.sigma), _residual_parameters(result)[1], result.beta]


def boot_intervals(
    result: "LinearMixedModelResults", level: float = 0.95, *, nsim: int = 500, seed: int | None = None, n_jobs: int = 1, progress: bool | None = None
) -> pd.DataFrame:
    """Parametric-bootstrap percentile intervals (lme4's ``confint(m, method = "boot")``)."""
    vp = VarianceParameters(result)
    names = vp.names + _residual_parameters(result)[0] + list(result.design.fixed_names)
    B = parametric_bootstrap(result, all_parameters, nsim, seed=seed, n_jobs=n_jobs, progress=progress)
    B = B[~np.isnan(B).any(axis=1)]
    if B.shape[0] < 2:
        raise ModelError("too few successful bootstrap refits for an interval")
    a = (1 - level) / 2
    lo, hi = np.quantile(B, [a, 1 - a], axis=0)
    return _frame({n: [l, h] for n, l, h in zip(names, lo, hi)}, level)


def confint(result: "LinearMixedModelResults", method: str = "profile", level: float = 0.95, **kwargs: Any) -> pd.DataFrame:
    """Confidence intervals by ``"profile"`` (default, as lme4), ``"wald"`` or ``"boot"``."""
    if not 0 < level < 1:
        raise ModelError(f"level must be between 0 and 1, got {level}")
    key = method.lower()
    if key == "profile":
        return profile_intervals(result, level, **kwargs)[0]
    if key == "wald":
        return wald_intervals(result, level)
    if key in ("boot", "bootstrap"):
        return boot_intervals(result, level, **kwargs)
    raise ModelError(f"unknown interval method {method!r}; use 'profile', 'wald' or 'boot'")
