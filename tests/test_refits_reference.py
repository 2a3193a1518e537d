"""Refits by ML, profiles on singular fits and a crossed `||` design, against lme4 1.1-31.

Reference values: tests/reference/refits.json, made by tests/reference/refits.R from the data files
in tests/reference/data/ (R's CO2, MASS's nlschools, afex's fhch2010).
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from functools import cache
from pathlib import Path

import nlopt
import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.exceptions import ConvergenceWarning

HERE = Path(__file__).parent / "reference"
REF = json.loads((HERE / "refits.json").read_text())


@cache
def data(name: str) -> pd.DataFrame:
    return pd.read_csv(HERE / "data" / f"{name}.csv")


@cache
def fit(name: str, formula: str, reml: bool = True) -> mm.LinearMixedModelResults:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer(formula, data(name), REML=reml)


# ---------------------------------------------------------------- refit by ML (issue: CO2 gave 2.321)
def test_compare_refits_singular_reml_fit_to_lme4_optimum():
    ref = REF["co2_compare"]
    m1, m0 = fit("CO2", ref["formula1"]), fit("CO2", ref["formula0"])
    assert m1.singular  # the REML slope SD is on the boundary: the ML refit starts next to it
    table = mm.compare(m0, m1).table
    assert table["Chisq"].iloc[1] == pytest.approx(ref["chisq"], rel=1e-4)
    assert table["Pr(>Chisq)"].iloc[1] == pytest.approx(ref["p_value"], rel=1e-4)
    assert table["logLik"].to_numpy() == pytest.approx(ref["loglik"], abs=1e-4)


@pytest.mark.parametrize("which", ["ml0", "ml1"])
def test_refit_ml_reaches_lme4_deviance(which):
    ref = REF["co2_compare"][which]
    reml = fit("CO2", REF["co2_compare"]["formula0" if which == "ml0" else "formula1"])
    ml = reml.refit_ml()
    assert ml.loglik >= ref["loglik"] - 1e-5
    assert ml.beta == pytest.approx(ref["beta"], rel=1e-4, abs=1e-4)
    assert ml.sigma == pytest.approx(ref["sigma"], rel=1e-4)


def test_start_next_to_the_boundary_does_not_freeze_the_optimizer():
    """The root cause: nlopt's default first step for θ = 1e-6 ≥ 0 is 7.5e-7, so BOBYQA stopped at its start."""
    ref = REF["co2_compare"]
    model = mm.LinearMixedModel.from_formula(ref["formula1"], data("CO2"), reml=False)
    start = np.array(ref["reml_theta1"]) + np.array([0.0, 0.0, 1e-6])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = model.fit(start=start)
    assert got.loglik == pytest.approx(ref["ml1"]["loglik"], abs=1e-5)
    assert got.fit_record.evaluations > 30


def test_refit_ml_does_not_hide_convergence_warnings():
    ss = mm.datasets.load("sleepstudy")
    control = mm.OptimizerControl(maxfun=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m1 = mm.lmer("Reaction ~ Days + (Days | Subject)", ss, control=control)
        m0 = mm.lmer("Reaction ~ 1 + (Days | Subject)", ss, control=control)
    with pytest.warns(ConvergenceWarning):
        ml = m1.refit_ml()
    assert not ml.converged
    with pytest.warns(ConvergenceWarning):
        mm.compare(m0, m1)  # the fixed effects differ: both are refitted by ML
    with pytest.warns(ConvergenceWarning):
        m1.refit(ss["Reaction"].to_numpy() + 1.0, start=m1.model.theta_start)


def test_edge_restart_moves_off_a_boundary_start():
    """lme4's restart_edge: a fit that ends on the boundary while the objective falls inward is restarted."""
    ss = mm.datasets.load("sleepstudy")
    model = mm.LinearMixedModel.from_formula("Reaction ~ Days + (Days | Subject)", ss)
    best = model.fit(warn=False)
    assert model.fit(start=np.array([0.0, 0.0, 0.0]), warn=False).objective == pytest.approx(best.objective, abs=1e-6)


# ---------------------------------------------------------------- profiles on singular fits
def _profile_deviance_brute(result: mm.LinearMixedModelResults, j: int, value: float) -> float:
    """ML deviance at β_j = value, minimised over θ from several starts (independent of the profiler's starts)."""
    d = result.model.design
    keep = [k for k in range(d.X.shape[1]) if k != j]
    design = dataclasses.replace(
        d, X=np.ascontiguousarray(d.X[:, keep]), y=d.y - d.X[:, j] * value, fixed_names=tuple(d.fixed_names[k] for k in keep)
    )
    model = mm.LinearMixedModel(design, reml=False)
    best = math.inf
    for start in ([0.5, 0.0], [0.5, 0.05], [0.5, 0.3], [1.0, 1.0], [0.1, 0.5]):
        opt = nlopt.opt(nlopt.LN_BOBYQA, 2)
        opt.set_lower_bounds([0.0, 0.0])
        opt.set_min_objective(lambda th, g: model.objective(th))
        opt.set_initial_step([0.2, 0.2])
        opt.set_xtol_abs(1e-10)
        opt.set_ftol_abs(1e-12)
        opt.optimize(np.array(start, dtype=float))
        best = min(best, opt.last_optimum_value())
    return best


@pytest.mark.parametrize("case", range(2))
def test_profile_intervals_on_singular_fit_match_lme4(case):
    ref = REF["nlschools_ci"][case]
    m = fit("nlschools", ref["formula"], reml=False)
    assert m.singular
    ci = m.confint("profile")
    want = pd.DataFrame({"lower": ref["lower"], "upper": ref["upper"]}, index=ref["parameter"])
    for name in m.model.design.fixed_names:
        assert ci.loc[name].to_numpy() == pytest.approx(want.loc[name].to_numpy(), rel=1e-5)
    # σ and the intercept SD: lme4 interpolates a spline through its profile, we solve for the root
    assert ci.loc[".sigma"].to_numpy() == pytest.approx(want.loc[".sigma"].to_numpy(), rel=5e-4)
    if case == 0:
        assert ci.loc[".sig01"].to_numpy() == pytest.approx(want.loc[".sig01"].to_numpy(), rel=5e-4)
    else:
        # lme4 warns "non-monotonic profile for .sig02" here and its lower end for .sig01 is short: at
        # its end the slope SD can leave 0 (about 0.054) and the deviance is lower than lme4 found
        assert ci.loc[".sig01"].iloc[1] == pytest.approx(want.loc[".sig01"].iloc[1], rel=5e-4)
        assert ci.loc[".sig01"].iloc[0] < want.loc[".sig01"].iloc[0]


def test_profile_end_points_are_conditional_optima():
    """|ζ| = z at both ends, with the deviance at fixed β minimised from several starts independently."""
    ref = REF["nlschools_ci"][0]
    m = fit("nlschools", ref["formula"], reml=False)
    ci = m.confint("profile", parm=["IQ"])
    j = list(m.model.design.fixed_names).index("IQ")
    for end in ci.loc["IQ"]:
        zeta = math.sqrt(_profile_deviance_brute(m, j, end) - m.objective)
        assert zeta == pytest.approx(1.959964, abs=2e-4)


# ---------------------------------------------------------------- crossed design with || (crashed)
@pytest.mark.parametrize(
    "formula",
    ["log_rt ~ task + (1 | id) + (task || item)", "log_rt ~ task + (task || item) + (1 | id)"],
)
def test_crossed_uncorrelated_design_fits_as_lme4(formula):
    ref = REF["fhch2010_fit"]
    m = fit("fhch2010", formula)
    assert m.loglik >= ref["loglik"] - 1e-4
    assert m.loglik == pytest.approx(ref["loglik"], abs=1e-3)
    assert m.beta == pytest.approx(ref["beta"], rel=1e-4)
    assert m.sigma == pytest.approx(ref["sigma"], rel=1e-4)
