"""glmer's fit: stage 1, stage 2, the boundary check, the derivatives and the checks they feed."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla

from ..exceptions import ModelError
from ..optimize import finite_difference_derivatives, initial_step, singular_components
from .checks import gradient_messages, hessian_messages, separated_coefficients, separation_message
from .model import Evaluator, GeneralizedLinearMixedModel, StageRecord
from .pirls import Mode

#: nlopt's return codes, for the warning a failed stage gives.
_NLOPT = {-1: "NLOPT_FAILURE", -2: "NLOPT_INVALID_ARGS", -3: "NLOPT_OUT_OF_MEMORY", -4: "NLOPT_ROUNDOFF_LIMITED", 5: "NLOPT_MAXEVAL_REACHED"}
#: Initial step of θ in stage 2 (lme4's Nelder–Mead: 0.2 × 0.1) and of β in units of its stage-1 SE.
THETA_STEP2, BETA_STEP2 = 0.02, 0.2
#: Largest unit of β in stage 2 (lme4: ``pmin(betaSD, 10)``).
MAX_BETA_SCALE = 10.0


@dataclass
class FitOutcome:
    """Everything a fit produced, for the results object.

    Attributes
    ----------
    params : numpy.ndarray
        θ, then β, then the log dispersion (stage 2; for nAGQ = 0, β from the joint modes).
    objective : float
        The deviance minimised (−2 logLik).
    mode : Mode
        The conditional modes at ``params``.
    gradient, hessian : numpy.ndarray or None
        Finite-difference derivatives of the stage-2 deviance at ``params`` (None for nAGQ = 0 or when not computed).
    stages : list of StageRecord
    evaluations : int
        Deviance evaluations in all (including the derivatives).
    warnings : list of str
        Convergence, singularity and separation messages, in lme4's words where lme4 has them.
    separated : dict
        Coefficients along a direction of separation, with their signs.
    """

    params: np.ndarray
    objective: float
    mode: Mode
    gradient: np.ndarray | None
    hessian: np.ndarray | None
    stages: list[StageRecord]
    evaluations: int
    warnings: list[str] = field(default_factory=list)
    separated: dict = field(default_factory=dict)


def _start(model: GeneralizedLinearMixedModel, start) -> tuple[np.ndarray, np.ndarray | None, float]:
    """θ, β (or None) and log dispersion to start from (lme4's ``start``: θ, or a dict with ``theta``/``fixef``)."""
    theta, beta, disp = model.theta_start, None, None
    if start is None:
        pass
    elif isinstance(start, dict):
        unknown = set(start) - {"theta", "fixef", "dispersion"}
        if unknown:
            raise ModelError(f"bad name(s) for start ({', '.join(sorted(unknown))}); use theta, fixef and dispersion")
        if start.get("theta") is not None:
            theta = np.asarray(start["theta"], dtype=float).reshape(-1)
        if start.get("fixef") is not None:
            beta = np.asarray(start["fixef"], dtype=float).reshape(-1)
            if beta.size != model.nfixed:
                raise ModelError(f"start['fixef'] must have {model.nfixed} elements, got {beta.size}")
            if model.nagq == 0:
                raise ModelError("should not specify both start['fixef'] and nAGQ=0")
        disp = start.get("dispersion")
    else:
        theta = np.asarray(start, dtype=float).reshape(-1)
    if theta.size != model.n_theta:
        raise ModelError(f"start must have {model.n_theta} theta elements, got {theta.size}")
    if not np.all(np.isfinite(theta)) or np.any(theta < model.lower_bounds):
        raise ModelError(f"start theta must be finite and within its bounds (diagonal elements >= 0), got {theta.tolist()}")
    if disp is not None and not (float(disp) > 0):
        raise ModelError(f"start['dispersion'] must be positive, got {disp!r}")
    if disp is None and model.family.has_dispersion:
        disp = model.family.dispersion  # the family's own value is the start
    log_disp = float(np.log(disp)) if disp is not None else 0.0
    return theta, beta, log_disp


def _nlopt_warning(record: StageRecord, stage: int) -> list[str]:
    code = record.return_code
    if code < 0 or code == 5:
        return [f"convergence code {code} from bobyqa (stage {stage}): {_NLOPT.get(code, 'unknown')}"]
    return []


def _boundary(fun, x: np.ndarray, value: float, lower_theta: np.ndarray, tol: float) -> tuple[np.ndarray, float]:
    """lme4's ``check.boundary``: each θ within ``tol`` of its 0 bound is set to 0 when that is no worse."""
    k = lower_theta.size
    edge = np.flatnonzero((x[:k] - lower_theta > 0) & (x[:k] - lower_theta < tol))
    if edge.size == 0:
        return x, value
    x = x.copy()
    for i in edge:
        trial = x.copy()
        trial[i] = lower_theta[i]
        if fun(trial) < value:
            x[i] = lower_theta[i]
    return x, float(fun(x))


def stage1_se(mode: Mode, p: int) -> np.ndarray:
    """Standard errors of β from ``R_X`` of the joint system (lme4's ``sqrt(diag(pp$unsc()))``)."""
    if p == 0:
        return np.zeros(0)
    rinv = sla.solve_triangular(mode.factor.LXX[:p, :p], np.eye(p), lower=True)
    return np.sqrt(np.sum(rinv**2, axis=0))


def run_fit(model: GeneralizedLinearMixedModel, start) -> GeneralizedLinearMixedModelResults:  # noqa: F821
    """Fit ``model`` as glmer does and return its results."""
    from .results import GeneralizedLinearMixedModelResults

    c = model.control
    ev = model.evaluator()
    p, k = model.nfixed, model.n_theta
    has_disp = model.family.has_dispersion
    theta0, beta_start, log_disp0 = _start(model, start)
    msgs: list[str] = []
    lower_t = model.lower_bounds
    lower1 = np.concatenate([lower_t, [-np.inf] if has_disp else []])
    x1 = np.concatenate([theta0, [log_disp0] if has_disp else []])
    stages: list[StageRecord] = []
    value1 = None
    if c.nagq0_init or model.nagq == 0:
        steps = np.concatenate([initial_step(theta0, lower_t), [1.0] if has_disp else []])
        x1, value1, rec = ev.minimise(ev.stage1, x1, lower1, steps)
        stages.append(rec)
        msgs += _nlopt_warning(rec, 1)
        if model.nagq == 0 and c.boundary_tol > 0:
            x1, value1 = _boundary(ev.stage1, x1, value1, lower_t, c.boundary_tol)
    mode1, _, _ = ev.mode(x1, 1)
    if model.nagq == 0:
        value1 = ev.stage1(x1) if value1 is None else value1
        params = np.concatenate([x1[:k], mode1.beta, x1[k:]])
        separated = _separation(model, mode1, msgs)
        _singular(params[:k], lower_t, msgs)
        outcome = FitOutcome(params, float(value1), mode1, None, None, stages, ev.evaluations, msgs, separated)
        return GeneralizedLinearMixedModelResults(model, outcome)

    beta1 = mode1.beta if beta_start is None else beta_start
    scale = stage1_se(mode1, p)
    # β in units of its stage-1 SE, at most 10 (lme4's Nelder-Mead steps: 0.2 pmin(SE, 10)): a coefficient
    # running off with separation has an enormous SE, and the optimizer's steps along it must stay finite
    scale = np.where(np.isfinite(scale) & (scale > 0), np.minimum(scale, MAX_BETA_SCALE), 1.0)
    theta1, rest1 = x1[:k], x1[k:]

    def unscale(x: np.ndarray) -> np.ndarray:
        return np.concatenate([x[:k], beta1 + scale * x[k : k + p], x[k + p :]])

    def scaled_fun(x: np.ndarray) -> float:
        return ev.stage2(unscale(x))

    x0 = np.concatenate([theta1, np.zeros(p), rest1])
    lower2 = np.concatenate([lower_t, np.full(p, -np.inf), [-np.inf] if has_disp else []])
    steps2 = np.concatenate([np.full(k, THETA_STEP2), np.full(p, BETA_STEP2), [0.1] if has_disp else []])
    xs, value, rec = ev.minimise(scaled_fun, x0, lower2, steps2)
    stages.append(rec)
    msgs += _nlopt_warning(rec, 2)
    params = unscale(xs)
    if c.boundary_tol > 0:
        params, value = _boundary(ev.stage2, params, value, lower_t, c.boundary_tol)
    grad = hess = None
    if c.check_conv:
        value = ev.stage2(params)
        grad, hess = finite_difference_derivatives(ev.stage2, params, value)
    value = ev.stage2(params)  # the modes at the estimates (not at the last derivative point)
    mode = ev.mode(params, 2)[0]
    separated = _separation(model, mode, msgs)
    if not _singular(params[:k], lower_t, msgs) and grad is not None:
        msgs += gradient_messages(grad, hess)
        if p:
            msgs += hessian_messages(hess[k : k + p, k : k + p], kind="fixed-effect")
        msgs += hessian_messages(hess)
    outcome = FitOutcome(params, float(value), mode, grad, hess, stages, ev.evaluations, list(dict.fromkeys(msgs)), separated)
    return GeneralizedLinearMixedModelResults(model, outcome)


#: A fitted mean this close to the edge of its range (0 or 1) makes the separation check run.
EDGE_MEAN = 1e-6


def _separation(model: GeneralizedLinearMixedModel, mode: Mode, msgs: list[str]) -> dict:
    """The separation check (:func:`.checks.separated_coefficients`), run when a fitted mean sits at the edge.

    Along a direction of separation the deviance keeps falling, so the optimizer stops only where the
    separated rows' means are within ~1e-10 of 0 or 1; fits without such means cannot be separated.
    """
    if not model.control.check_separation:
        return {}
    r, mu = model.response, mode.mu
    used = r.wt > 0
    edge = (mu < EDGE_MEAN) & (r.y <= 0)
    if model.family.name == "binomial":
        edge |= (mu > 1.0 - EDGE_MEAN) & (r.y >= 1)
    if not np.any(edge & used):
        return {}
    separated = separated_coefficients(model.design.X, r.y, r.wt, model.family, list(model.design.fixed_names))
    if separated:
        msgs.insert(0, separation_message(separated))
    return separated


def _singular(theta: np.ndarray, lower: np.ndarray, msgs: list[str]) -> bool:
    """Add lme4's singular-fit message when a variance or correlation is on the boundary; True if so."""
    if singular_components(theta, lower).size:
        msgs.append("boundary (singular) fit: see help('isSingular')")
        return True
    return False


__all__ = ["Evaluator", "FitOutcome", "run_fit"]
