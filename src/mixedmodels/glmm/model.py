"""The generalised linear mixed model: a design, a family and its response, fitted in glmer's two stages.

Stage 1 (lme4's ``nAGQ = 0`` step): θ (and a family's dispersion) by BOBYQA, with β inside PIRLS
(the joint modes of ``u`` and ``β``), minimising ``log|L|² + ‖û‖² + aic``.
Stage 2 (``nAGQ ≥ 1``): θ and β together (and the dispersion), with PIRLS over ``u`` alone at each point
(β entering as an offset), minimising the Laplace or adaptive Gauss–Hermite deviance
(:mod:`.objective`). The optimizer sees β relative to stage 1 in units of its stage-1 standard errors.
Then, as glmer: the boundary check (a θ within ``boundary_tol`` of 0 is set to 0 if that is no worse),
the finite-difference gradient and Hessian in (θ, β) (lme4's ``deriv12``), which give the convergence
checks and the covariance matrix of β (``2 H⁻¹``, lme4's ``use.hessian = TRUE``).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from ..engine.threads import blas_policy
from ..exceptions import ModelError, warn_user
from ..formula.design import Design, build_design, to_pandas
from ..formula.parse import parse_formula
from ..optimize import MAXEVAL
from .family import Family, make_family
from .objective import MAX_NAGQ, agq_deviance, laplace_deviance
from .pirls import Mode, Pirls
from .response import Response, finish_response, prepare_response


@dataclass(frozen=True)
class GlmerControl:
    """Settings of a GLMM fit (lme4's ``glmerControl``).

    Attributes
    ----------
    maxfun : int
        Most deviance evaluations per stage.
    ftol_abs, xtol_abs : float
        BOBYQA's absolute tolerances on the deviance and the (scaled) parameters.
    check_conv : bool
        Compute the finite-difference gradient and Hessian at the optimum (lme4's ``calc.derivs``): the
        convergence checks and the Hessian-based covariance of β need them.
    boundary_tol : float
        θ components closer than this to 0 are tried at 0 (lme4's ``boundary.tol``).
    nagq0_init : bool
        Run stage 1 before stage 2 (lme4's ``nAGQ0initStep``).
    pirls_tol : float
        PIRLS stops when a step moves ``η`` and ``u`` by less than this.
    pirls_maxit : int
        Most PIRLS iterations per evaluation.
    check_separation : bool
        Look for (quasi-)complete separation of the fixed effects before fitting.
    """

    maxfun: int = MAXEVAL
    ftol_abs: float = 1e-10
    xtol_abs: float = 1e-7
    check_conv: bool = True
    boundary_tol: float = 1e-5
    nagq0_init: bool = True
    pirls_tol: float = 1e-8
    pirls_maxit: int = 100
    check_separation: bool = True

    @classmethod
    def make(cls, control: GlmerControl | dict | None) -> GlmerControl:
        """Settings from a ``GlmerControl``, a dict of its fields, or None."""
        if control is None:
            return cls()
        if isinstance(control, cls):
            return control
        if isinstance(control, dict):
            known = {f.name for f in dataclasses.fields(cls)}
            unknown = set(control) - known
            if unknown:
                raise ModelError(f"unknown control setting(s) {', '.join(sorted(map(str, unknown)))}; known: {', '.join(sorted(known))}")
            return cls(**control)
        raise ModelError(f"control must be a GlmerControl or a dict, got {type(control).__name__}")


@dataclass(frozen=True)
class StageRecord:
    """What one optimisation stage did (evaluations, time, nlopt's return code)."""

    evaluations: int
    seconds: float
    return_code: int


class GeneralizedLinearMixedModel:
    """A GLMM ``g(E[y | b]) = Xβ + Zb + offset``, ``b ~ N(0, Λ_θΛ_θ')``, ready to be fitted.

    Parameters
    ----------
    design : Design
        The evaluated formula (:func:`mixedmodels.formula.design.build_design`).
    response : Response
        The response and prior weights as the family reads them (:mod:`.response`).
    family : Family
    nAGQ : int
        0 (stage 1 only), 1 (Laplace) or up to 100 quadrature points (one scalar random-effects term).
    control : GlmerControl or dict, optional
    data_name : str, optional
    """

    def __init__(
        self,
        design: Design,
        response: Response,
        family: Family,
        *,
        nAGQ: int = 1,
        control: GlmerControl | dict | None = None,
        data_name: str | None = None,
    ) -> None:
        if not design.terms:
            raise ModelError("the formula has no random-effects terms such as (1 | g); fit a generalised linear model instead")
        nagq = int(nAGQ)
        if nagq != nAGQ or not 0 <= nagq <= MAX_NAGQ:
            raise ModelError(f"nAGQ must be a whole number between 0 and {MAX_NAGQ}, got {nAGQ!r}")
        if nagq > 1 and (len(design.terms) != 1 or design.terms[0].p != 1):
            raise ModelError("nAGQ > 1 is only available for models with a single, scalar random-effects term")
        self.design = design
        self.response = response
        self.family = family
        self.nagq = nagq
        self.control = GlmerControl.make(control)
        self.data_name = data_name

    @classmethod
    def from_formula(
        cls,
        formula: str,
        data: pd.DataFrame,
        *,
        family: str | Family = "binomial",
        link: str | None = None,
        nAGQ: int = 1,
        weights: object = None,
        offset: object = None,
        control: GlmerControl | dict | None = None,
        data_name: str | None = None,
        contrasts: dict[str, str] | None = None,
    ) -> GeneralizedLinearMixedModel:
        """Build a model from an lme4 formula (``cbind(s, f) ~ x + (1 | g)`` for binomial counts) and data."""
        fam = make_family(family, link)
        parsed = parse_formula(formula)
        data = to_pandas(data)
        parsed2, frame, extra, spec = prepare_response(parsed, data, fam)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            design = build_design(
                parsed2, frame, warn=True, contrasts=contrasts, weights=weights, offset=offset,
                extra_columns=extra, allow_n=True,
            )
        # a response the fixed effects reproduce is a linear model's degenerate fit, not a GLMM's: the
        # separation check speaks for GLMMs
        for w in caught:
            if str(w.message) != design.degenerate:
                warn_user(str(w.message), w.category)
        messages = tuple(m for m in design.messages if m != design.degenerate)
        design = dataclasses.replace(design, messages=messages, degenerate=None, response_name=spec.text)
        response = finish_response(spec, design.y, design.frame, design.weights, fam)
        return cls(design, response, fam, nAGQ=nAGQ, control=control, data_name=data_name)

    # ------------------------------------------------------------------ facts
    @property
    def formula(self) -> str:
        """The formula as given."""
        return self.design.formula.text

    @property
    def terms(self) -> tuple:
        """Random-effects terms in lme4's order (decreasing number of levels)."""
        return self.design.terms

    @property
    def nobs(self) -> int:
        """Observations used (rows with no trials included, as R counts them)."""
        return len(self.response.y)

    @property
    def nfixed(self) -> int:
        """Number of fixed effects (after dropping dependent columns)."""
        return self.design.X.shape[1]

    @property
    def n_theta(self) -> int:
        """Number of covariance parameters θ."""
        return sum(t.ntheta for t in self.terms)

    @property
    def theta_start(self) -> np.ndarray:
        """lme4's start of θ (identity λ for every term)."""
        return np.concatenate([t.theta_start for t in self.terms])

    @property
    def lower_bounds(self) -> np.ndarray:
        """Lower bounds of θ (0 for the diagonal elements of each λ)."""
        return np.concatenate([t.lower_bounds for t in self.terms])

    @property
    def theta_names(self) -> list[str]:
        """lme4's names of θ (``herd.(Intercept)``)."""
        return [n for t in self.terms for n in t.theta_names]

    @property
    def offset(self) -> np.ndarray:
        """The offset of each row (0 without one)."""
        d = self.design
        return np.zeros(self.nobs) if d.offset is None else d.offset

    #: GLMMs have no residual covariance structure and no variance function (read by the shared summary code).
    residual_structure = None
    variance = None

    @cached_property
    def pirls(self) -> Pirls:
        """The PIRLS engine (weighted systems of this design)."""
        c = self.control
        return Pirls(
            self.terms, self.design.X, self.response.y, self.response.wt, self.offset, tol=c.pirls_tol, maxit=c.pirls_maxit
        )

    def family_at(self, log_dispersion: float | None) -> Family:
        """The family with its dispersion at ``exp(log_dispersion)`` (itself for families without one)."""
        if log_dispersion is None or not self.family.has_dispersion:
            return self.family
        return self.family.with_dispersion(float(np.exp(log_dispersion)))

    # ------------------------------------------------------------------ parameters
    def split(self, params: np.ndarray, stage: int) -> tuple[np.ndarray, np.ndarray | None, Family]:
        """``(θ, β or None, family)`` from a stage's parameter vector: θ, then β (stage 2), then log dispersion."""
        params = np.asarray(params, dtype=float)
        k = self.n_theta
        theta = params[:k]
        beta = params[k : k + self.nfixed] if stage == 2 else None
        rest = params[k + (self.nfixed if stage == 2 else 0) :]
        return theta, beta, self.family_at(rest[0] if rest.size else None)

    def deviance_at(self, mode: Mode, family: Family, theta: np.ndarray, nagq: int | None = None) -> float:
        """The Laplace (nAGQ ≤ 1) or quadrature deviance at a mode."""
        nagq = self.nagq if nagq is None else nagq
        r = self.response
        if nagq <= 1:
            return laplace_deviance(mode, family, r.y, r.wt, self.pirls.constants(family).aic)
        t = self.terms[0]
        return agq_deviance(mode, family, r.y, r.wt, z=t.z[:, 0], refs=t.refs, lam=float(theta[0]), nagq=nagq)

    def evaluator(self) -> Evaluator:
        """A deviance function with warm starts for one fit."""
        return Evaluator(self)

    def deviance(
        self, theta: np.ndarray, beta: np.ndarray | None = None, dispersion: float | None = None, nagq: int | None = None
    ) -> float:
        """glmer's deviance at ``(θ, β)`` (and the family's dispersion): what stage 2 minimises (lme4's
        ``devFunOnly = TRUE``). With ``beta`` None, stage 1's: β at the joint modes with ``u`` (nAGQ = 0)."""
        disp = [[np.log(dispersion)]] if dispersion is not None else []
        ev = self.evaluator()
        if beta is None:
            return ev.stage1(np.concatenate([np.asarray(theta, dtype=float)] + disp))
        return ev.stage2(np.concatenate([np.asarray(theta, dtype=float), np.asarray(beta, dtype=float)] + disp), nagq=nagq)

    # ------------------------------------------------------------------ fitting
    def fit(self, *, start: Any = None, warn: bool = True):
        """Fit in glmer's two stages; returns a :class:`~.results.GeneralizedLinearMixedModelResults`.

        Parameters
        ----------
        start : array-like or dict, optional
            θ, or ``{"theta": ..., "fixef": ..., "dispersion": ...}`` (lme4's ``start``).
        warn : bool
            Emit the convergence, singular-fit and separation warnings (they are kept in ``.warnings`` either way).
        """
        from .fitting import run_fit

        with blas_policy():
            result = run_fit(self, start)
        if warn:
            result.emit_warnings()
        return result


class Evaluator:
    """The stage 1 and stage 2 deviance functions of a model, with PIRLS warm-started from the last modes."""

    def __init__(self, model: GeneralizedLinearMixedModel) -> None:
        self.model = model
        self.evaluations = 0
        self._warm: dict[int, Mode] = {}

    def mode(self, params: np.ndarray, stage: int) -> tuple[Mode, Family, np.ndarray]:
        """The modes at a stage's parameters, the family there and θ."""
        theta, beta, family = self.model.split(params, stage)
        mode = self.model.pirls.run(theta, family, beta=beta, start=self._warm.get(stage))
        self._warm[stage] = mode
        return mode, family, theta

    def stage1(self, params: np.ndarray) -> float:
        """Stage 1: ``log|L|² + ‖û‖² + aic`` at the joint modes of ``(u, β)``."""
        self.evaluations += 1
        mode, family, theta = self.mode(params, 1)
        return self.model.deviance_at(mode, family, theta, nagq=1)

    def stage2(self, params: np.ndarray, nagq: int | None = None) -> float:
        """Stage 2: the Laplace or quadrature deviance at ``(θ, β)`` with the modes of ``u``."""
        self.evaluations += 1
        mode, family, theta = self.mode(params, 2)
        return self.model.deviance_at(mode, family, theta, nagq=nagq)

    def minimise(self, fun, x0: np.ndarray, lower: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, float, StageRecord]:
        """BOBYQA from ``x0`` with per-component initial steps."""
        import nlopt

        c = self.model.control
        n = x0.size
        start_evals = self.evaluations
        t0 = time.perf_counter()
        if n == 0:
            return x0, float(fun(x0)), StageRecord(1, 0.0, 1)
        best: list = [np.inf, x0]

        def tracked(x: np.ndarray, grad: np.ndarray) -> float:
            value = float(fun(x))
            if value < best[0]:
                best[0], best[1] = value, x.copy()
            return value

        opt = nlopt.opt(nlopt.LN_BOBYQA, n)
        opt.set_min_objective(tracked)
        opt.set_lower_bounds(lower)
        opt.set_ftol_abs(c.ftol_abs)
        opt.set_xtol_abs(c.xtol_abs)
        opt.set_maxeval(int(c.maxfun))
        opt.set_initial_step(steps)
        try:
            opt.optimize(x0)
            code = opt.last_optimize_result()
        except nlopt.RoundoffLimited:
            code = -4
        return np.asarray(best[1]), float(best[0]), StageRecord(self.evaluations - start_evals, time.perf_counter() - t0, int(code))

