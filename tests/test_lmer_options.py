"""lmer's control=, optimizer= and start= (lme4's lmerControl, start), and the optimizer's start-up."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels.exceptions import ConvergenceWarning, ModelError
from mixedmodels.optimize import MIN_INITIAL_STEP, _edge_restart_needed, initial_step

FORMULA = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def ss():
    return mm.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def default_fit(ss):
    return mm.lmer(FORMULA, ss)


def test_nelder_mead_reaches_the_same_optimum(ss, default_fit):
    nm = mm.lmer(FORMULA, ss, optimizer="nelder_mead")
    assert nm.fit_record.optimizer == "nlopt LN_NELDERMEAD"
    assert default_fit.fit_record.optimizer == "nlopt LN_BOBYQA"
    assert nm.objective == pytest.approx(default_fit.objective, abs=1e-5)
    assert nm.beta == pytest.approx(default_fit.beta, rel=1e-4)


def test_control_dict_and_object(ss):
    with pytest.warns(ConvergenceWarning, match="NLOPT_MAXEVAL_REACHED"):
        few = mm.lmer(FORMULA, ss, control={"maxfun": 10})
    assert few.fit_record.evaluations == 10 and not few.converged
    same = mm.lmer(FORMULA, ss, control=mm.OptimizerControl(maxfun=10, check_conv=False), optimizer="bobyqa")
    assert same.fit_record.gradient is None  # no finite-difference check asked for
    assert same.theta == pytest.approx(few.theta)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"control": {"maxiter": 5}}, "unknown control setting"),
        ({"optimizer": "lbfgs"}, "unknown optimizer"),
        ({"control": {"maxfun": 0}}, "maxfun"),
        ({"control": 3}, "control must be"),
        ({"start": [1.0, 0.0]}, "start must have 3"),
        ({"start": [-1.0, 0.0, 1.0]}, "within the bounds"),
        ({"start": {"fixef": [1.0]}}, "start may only name 'theta'"),
    ],
)
def test_bad_settings_are_clear_errors(ss, kwargs, message):
    with pytest.raises(ModelError, match=message):
        mm.lmer(FORMULA, ss, **kwargs)


def test_start_at_the_optimum(ss, default_fit):
    for start in (default_fit.theta, {"theta": list(default_fit.theta)}):
        again = mm.lmer(FORMULA, ss, start=start)
        assert again.objective == pytest.approx(default_fit.objective, abs=1e-7)
        assert again.fit_record.evaluations < default_fit.fit_record.evaluations
        assert again.fit_record.theta_start == pytest.approx(tuple(default_fit.theta))


def test_initial_step_is_never_tiny():
    """nlopt's default first step for x = 1e-6 ≥ 0 is 7.5e-7: BOBYQA's trust region would start (and end) there."""
    step = initial_step(np.array([1e-6, 0.0, 1.0, -0.3]), np.array([0.0, -np.inf, 0.0, -np.inf]))
    assert step == pytest.approx([MIN_INITIAL_STEP, 1.0, 0.75, 0.3])


def test_edge_restart_probe():
    lower = np.array([0.0, -np.inf])
    falling_inward = lambda th: (th[0] - 1.0) ** 2 + th[1] ** 2  # noqa: E731
    rising_inward = lambda th: (th[0] + 1.0) ** 2 + th[1] ** 2  # noqa: E731
    at_bound = np.array([0.0, 0.0])
    assert _edge_restart_needed(falling_inward, at_bound, lower, falling_inward(at_bound))
    assert not _edge_restart_needed(rising_inward, at_bound, lower, rising_inward(at_bound))
    assert not _edge_restart_needed(falling_inward, np.array([0.5, 0.0]), lower, falling_inward(np.array([0.5, 0.0])))


def test_fit_best_keeps_the_lowest_objective(ss):
    model = mm.LinearMixedModel.from_formula(FORMULA, ss, control=mm.OptimizerControl(maxfun=12))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = [model.fit(start=s, warn=False) for s in ([1.0, 0.0, 1.0], [0.5, 0.0, 0.5])]
        best = model.fit_best([np.array([1.0, 0.0, 1.0]), np.array([0.5, 0.0, 0.5])], warn=False)
    assert best.objective == pytest.approx(min(f.objective for f in fits))
