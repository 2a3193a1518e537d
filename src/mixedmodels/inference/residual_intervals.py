"""Intervals for the variance parameters of models with a residual structure or a variance function.

The parameters are reported on their natural scale — the random-effects SDs and correlations
(lme4's ``.sig01, …``), σ, the structure's SDs and correlations, the variance function's SD ratios or
power — as :func:`.confint.all_parameters` lists them.

* **Wald** (nlme's ``intervals``): ``g⁻¹(g(ψ̂) ± z·se)`` with ``g`` the log for SDs and ratios, Fisher's
  z for correlations (the bounded logit ``log((ρ − l)/(1 − ρ))``, ``l = −1/(T−1)``, for compound
  symmetry, as nlme's corCompSymm), the logit for ``car1``'s φ and the identity for a power or
  exponent; ``se`` by the delta method from the asymptotic covariance of the parameters
  (Satterthwaite's: twice the inverse Hessian of the fit's own criterion, nlme's ``apVar``).
* **Profile** (of the ML deviance, as lme4's intervals): for a natural parameter ψ_i the deviance is
  minimised over all parameters with ``ψ_i`` held at each value. The constraint is met by solving for
  the one parameter ψ_i depends on most (a 1-D root at every evaluation) while BOBYQA moves the
  others; β is profiled by refitting with β_j fixed.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import nlopt
import numpy as np
import pandas as pd
from scipy import optimize, stats

from ..exceptions import ConvergenceWarning, ModelError, warn_user
from .bootstrap import _progress, progress_enabled

if TYPE_CHECKING:
    from ..results import LinearMixedModelResults


class NaturalParameters:
    """The variance parameters of a fit on their natural scale, as functions of ``(params, σ)``."""

    def __init__(self, result: "LinearMixedModelResults") -> None:
        from .confint import VarianceParameters, _residual_parameters

        model = result.model
        self.model = model
        self.vp = VarianceParameters(result)
        self.k, self.kr = model.n_theta, model.n_theta + model.n_rho
        names = list(self.vp.names) + _residual_parameters(result)[0]
        kinds = ["sd" if k == "sigma" else k for k in self.vp.kinds]
        s, v = model.residual_structure, model.variance
        lower_cs = None
        if s is not None:
            kinds += s.natural_kinds()
            if s.kind in ("cs", "csh"):
                lower_cs = -1.0 / (s.n_levels - 1)
        if v is not None:
            kinds += ["ratio" if v.spec.kind == "ident" else "real"] * v.npar
        self.names, self.kinds = names, kinds
        n_re = len(self.vp.names)
        self.lower_cor = [lower_cs if (i >= n_re and k == "cor" and lower_cs is not None) else -1.0
                          for i, k in enumerate(kinds)]

    def values(self, varpar: np.ndarray) -> np.ndarray:
        """Natural values at ``(params, σ)``."""
        params, sigma = np.asarray(varpar[:-1], dtype=float), float(varpar[-1])
        out = [self.vp.to_phi(params[: self.k], sigma)]
        if self.model.residual_structure is not None:
            out.append(self.model.residual_structure.natural_values(params[self.k:self.kr], sigma))
        if self.model.variance is not None:
            out.append(np.array([val for _, val in self.model.variance.natural(params[self.kr:])]))
        return np.concatenate(out)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of each natural value."""
        lo = {"sd": 0.0, "ratio": 0.0, "unit": 0.0, "real": -np.inf}
        hi = {"sd": np.inf, "ratio": np.inf, "unit": 1.0, "real": np.inf, "cor": 1.0}
        lower = np.array([self.lower_cor[i] if k == "cor" else lo[k] for i, k in enumerate(self.kinds)])
        upper = np.array([hi[k] for k in self.kinds])
        return lower, upper

    def transform(self, values: np.ndarray) -> np.ndarray:
        """The unbounded scale of each value (log, Fisher's z, logit, identity)."""
        out = np.empty_like(values)
        for i, (k, x) in enumerate(zip(self.kinds, values)):
            if k in ("sd", "ratio"):
                out[i] = np.log(x) if x > 0 else -np.inf
            elif k == "cor":
                l = self.lower_cor[i]
                out[i] = np.arctanh(x) if l == -1.0 else np.log((x - l) / (1.0 - x))
            elif k == "unit":
                out[i] = np.log(x / (1.0 - x))
            else:
                out[i] = x
        return out

    def inverse(self, t: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`transform`."""
        out = np.empty_like(t)
        for i, (k, x) in enumerate(zip(self.kinds, t)):
            if k in ("sd", "ratio"):
                out[i] = np.exp(x)
            elif k == "cor":
                l = self.lower_cor[i]
                out[i] = np.tanh(x) if l == -1.0 else (l + np.exp(x)) / (1.0 + np.exp(x))
            elif k == "unit":
                out[i] = 1.0 / (1.0 + np.exp(-x))
            else:
                out[i] = x
        return out


def wald_variance_intervals(result: "LinearMixedModelResults", level: float = 0.95) -> dict[str, list[float]]:
    """nlme-style Wald intervals of the natural variance parameters (module docstring)."""
    z = stats.norm.ppf(0.5 + level / 2)
    nat = NaturalParameters(result)
    V = result.ddf_calculator("satterthwaite").vcov_varpar
    x = np.r_[result.theta, result.sigma]
    est = nat.values(x)
    t_hat = nat.transform(est)
    J = np.empty((est.size, x.size))
    for j in range(x.size):
        h = 1e-6 * max(abs(x[j]), 1.0)
        e = np.zeros(x.size)
        e[j] = h
        J[:, j] = (nat.transform(nat.values(x + e)) - nat.transform(nat.values(x - e))) / (2 * h)
    se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", J, V, J), 0.0))
    lo, hi = nat.inverse(t_hat - z * se), nat.inverse(t_hat + z * se)
    out = {}
    for name, a, b, t in zip(nat.names, lo, hi, t_hat):
        out[name] = [float(a), float(b)] if np.isfinite(t) else [np.nan, np.nan]
    return out


class ResidualProfiler:
    """Profiles the ML deviance of a residual-structure fit over each natural parameter and each β."""

    def __init__(self, result: "LinearMixedModelResults") -> None:
        if result.model.variance is not None and result.model.variance.spec.of_fitted:
            raise ModelError("profile intervals need a likelihood; power() of the fitted values is a fixed point, not "
                             "a maximum of one (use confint('wald') or confint('boot'))")
        self.ml = result.refit_ml(warn=False)
        for msg in self.ml.fit_record.warnings:
            if not msg.startswith("boundary"):
                warn_user(f"ML refit for the profile: {msg}", ConvergenceWarning)
        self.nat = NaturalParameters(self.ml)
        self.z_hat = np.r_[self.ml.theta, math.log(self.ml.sigma)]
        self.lower = np.r_[self.ml.model.lower_bounds, -np.inf]
        self.dev_hat = self.deviance(self.z_hat)
        self.psi_hat = self.natural(self.z_hat)

    def deviance(self, z: np.ndarray) -> float:
        """ML deviance at parameters ``z = (θ, ρ, δ, log σ)``, β profiled."""
        if abs(z[-1]) > 700:
            return 1e300
        try:
            return self.ml.model.criterion_at(z[:-1], reml=False, sigma=math.exp(z[-1]))
        except (np.linalg.LinAlgError, ModelError):
            return 1e300

    def natural(self, z: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            return self.nat.values(np.r_[z[:-1], np.exp(min(z[-1], 700.0))])

    def _pivot(self, i: int) -> int:
        """The parameter natural value ``i`` depends on most (it is solved for on the profile)."""
        grad = np.empty(self.z_hat.size)
        for j in range(self.z_hat.size):
            e = np.zeros(self.z_hat.size)
            e[j] = 1e-6 * max(abs(self.z_hat[j]), 1.0)
            grad[j] = (self.natural(self.z_hat + e)[i] - self.natural(self.z_hat - e)[i]) / (2 * e[j])
        return int(np.argmax(np.abs(grad)))

    def _solve(self, i: int, k: int, z: np.ndarray, value: float) -> np.ndarray | None:
        """``z`` with ``z_k`` set so that natural value ``i`` equals ``value`` (None if it cannot)."""
        z = z.copy()

        def gap(t: float) -> float:
            z[k] = t
            try:
                return self.natural(z)[i] - value
            except (OverflowError, FloatingPointError, ValueError):
                return math.nan

        t0 = z[k]
        g0 = gap(t0)
        if not np.isfinite(g0):
            return None
        if g0 == 0:
            return z
        step = 0.1 * max(abs(t0), 1.0)
        for direction in (1.0, -1.0):
            a, ga, s = t0, g0, step
            for _ in range(40):
                b = a + direction * s
                if abs(b - t0) > 60.0:  # beyond any plausible value of a log-scale or z-scale parameter
                    break
                if b < self.lower[k]:
                    b = self.lower[k]
                gb = gap(b)
                if not np.isfinite(gb):
                    break
                if np.sign(gb) != np.sign(ga):
                    root = optimize.brentq(gap, min(a, b), max(a, b), xtol=1e-12, rtol=1e-12)
                    z[k] = root
                    return z
                if b == self.lower[k]:
                    break
                a, ga, s = b, gb, s * 2.0
        return None

    def zeta_natural(self, i: int, k: int, value: float, start: np.ndarray) -> tuple[float, np.ndarray]:
        free = [j for j in range(start.size) if j != k]
        best = [np.inf, None]

        def fun(x: np.ndarray, grad: np.ndarray) -> float:
            z = start.copy()
            z[free] = x
            z = self._solve(i, k, z, value)
            if z is None:
                return 1e300
            val = self.deviance(z)
            if val < best[0]:
                best[0], best[1] = val, z
            return val

        results = []
        for s0 in (start, self.z_hat):
            best[0], best[1] = np.inf, None
            opt = nlopt.opt(nlopt.LN_BOBYQA, len(free))
            lo = self.lower[free]
            opt.set_lower_bounds(np.where(np.isfinite(lo), lo, -1e300))
            opt.set_min_objective(fun)
            opt.set_ftol_abs(1e-9)
            opt.set_xtol_abs(1e-9)
            opt.set_maxeval(4000)
            x0 = np.maximum(s0[free], np.where(np.isfinite(lo), lo, -np.inf))
            opt.set_initial_step(np.maximum(np.abs(x0) * 0.1, 0.05))
            try:
                opt.optimize(x0)
            except (nlopt.RoundoffLimited, ValueError):
                pass
            if best[1] is not None:
                results.append((best[0], best[1]))
            if np.array_equal(start, self.z_hat):
                break
        if not results:  # the value cannot be reached: beyond any interval's end
            return math.copysign(1e3, value - self.psi_hat[i]), start
        dev, z = min(results, key=lambda r: r[0])
        return math.copysign(math.sqrt(max(dev - self.dev_hat, 0.0)), value - self.psi_hat[i]), z

    def zeta_fixed(self, j: int, value: float, start: np.ndarray) -> tuple[float, np.ndarray]:
        d = self.ml.design
        keep = [c for c in range(d.X.shape[1]) if c != j]
        design = dataclasses.replace(
            d, X=np.ascontiguousarray(d.X[:, keep]), y=d.y - d.X[:, j] * value,
            fixed_names=tuple(d.fixed_names[c] for c in keep),
        )
        model = self.ml.model._like(design, reml=False)
        starts = [start, self.ml.theta]
        if self.ml.singular:
            starts.append(model.theta_off_boundary(self.ml.theta))
        fit = model.fit_best(starts, check_convergence=False, warn=False)
        z = math.copysign(math.sqrt(max(fit.objective - self.ml.objective, 0.0)), value - self.ml.beta[j])
        return z, fit.theta


def residual_profile_intervals(
    result: "LinearMixedModelResults", level: float = 0.95, *, parm: list[str] | None = None,
    progress: bool | None = None, trace_points: bool = False,
):
    """Profile intervals of every natural variance parameter and every β (module docstring)."""
    from .confint import Profile, _frame, profile_parameter

    pr = ResidualProfiler(result)
    z = stats.norm.ppf(0.5 + level / 2)
    nat = pr.nat
    names = nat.names + list(pr.ml.design.fixed_names)
    wanted = names if parm is None else [p for p in names if p in parm]
    wald = wald_variance_intervals(pr.ml, level)
    lower_b, upper_b = nat.bounds()
    se_beta = np.sqrt(np.diag(pr.ml.vcov.to_numpy()))
    profile = Profile()
    rows = {}
    for name in _progress(wanted, len(wanted), "profile", progress_enabled(progress)):
        if name in nat.names:
            i = nat.names.index(name)
            k = pr._pivot(i)
            est = float(pr.psi_hat[i])
            lo_w, hi_w = wald[name]
            scale = (hi_w - lo_w) / (4 * z) if np.isfinite(hi_w - lo_w) else 0.1 * max(abs(est), 1e-3)
            sides, trace = profile_parameter(
                lambda v, st, i=i, k=k: pr.zeta_natural(i, k, v, st), pr.z_hat, est, max(scale, 1e-6),
                (lower_b[i], upper_b[i]), z, trace_points,
            )
        else:
            j = list(pr.ml.design.fixed_names).index(name)
            est = float(pr.ml.beta[j])
            sides, trace = profile_parameter(
                lambda v, st, j=j: pr.zeta_fixed(j, v, st), pr.ml.theta, est, max(float(se_beta[j]), 1e-6),
                (-np.inf, np.inf), z, trace_points,
            )
        profile.traces.setdefault(name, []).extend(trace)
        profile.estimates[name] = est
        rows[name] = sides
    return _frame(rows, level), profile
