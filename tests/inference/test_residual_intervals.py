"""Wald and profile intervals of models with residual structures and variance functions.

Wald: nlme 3.1-162's ``intervals()`` (tests/reference/intervals.json, made by tests/reference/intervals.R).
nlme takes the parameters' covariance from fdHess, a coarse finite-difference Hessian; where its
intervals and ours differ by more than 1e-3 the script recomputes them from numDeriv's Richardson
Hessian of nlme's own likelihood ("power_numderiv"), which ours match to 5e-5 (the estimates differ by as much).

Profile: the generic profiler (inference/residual_intervals.py) on sleepstudy against lme4's profile
intervals, and at the ends of residual-model intervals an independent computation of the profiled
deviance (marginal GLS criterion, or a 1-D minimisation) equals the ML minimum plus z².
"""

from __future__ import annotations

import json
import math
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

import mixedmodels as mm
from mixedmodels.covariance import marginal_criterion
from mixedmodels.inference.residual_intervals import residual_profile_intervals

HERE = Path(__file__).parents[1] / "reference"
REF = json.loads((HERE / "intervals.json").read_text())
LME4 = json.loads((HERE / "inference.json").read_text())["confint"]["sleepstudy"]["profile"]
F = "y ~ arm * visit + base"
CASES = {
    "ar1": (F, "ar1(visit | id)", None, 1e-3),  # the tolerance for covariance parameters
    "cs": (F, "cs(visit | id)", None, 1e-3),
    "ident_ar1": (F, "ar1(visit | id)", "ident(arm)", 1e-3),
    "ri_ar1": (F + " + (1 | id)", "ar1(visit | id)", None, 1.5e-2),  # nlme's fdHess
    "power": (F, None, "power(base)", 5e-2),  # nlme's fdHess; see power_numderiv
}


@cache
def trial() -> pd.DataFrame:
    return pd.read_csv(HERE / "data" / "residual_trial.csv")


@cache
def fit(formula: str, residual: str | None, variance: str | None, reml: bool = True) -> mm.LinearMixedModelResults:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer(formula, trial(), REML=reml, residual=residual, variance=variance)


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_wald_as_nlme_intervals(case, method):
    formula, residual, variance, rtol = CASES[case]
    ci = fit(formula, residual, variance, method == "REML").confint("wald")
    ref = REF[case][method]
    assert ci.loc[".sigma"].to_numpy() == pytest.approx([ref["sigma"][0], ref["sigma"][2]], rel=rtol)
    if "cor" in ref:
        row = ci.loc["residual rho"].to_numpy()
        assert row == pytest.approx([ref["cor"][0], ref["cor"][2]], rel=rtol)
    if "var" in ref:
        row = ci.loc[[n for n in ci.index if n.startswith("variance")][0]].to_numpy()
        assert row == pytest.approx([ref["var"][0], ref["var"][2]], rel=rtol, abs=0.012 if case == "power" else 0)
    if "re" in ref:
        assert ci.loc[".sig01"].to_numpy() == pytest.approx([ref["re"][0], ref["re"][2]], rel=rtol)


def test_wald_as_an_accurate_hessian_of_nlmes_likelihood():
    ci = fit(F, None, "power(base)").confint("wald")
    ref = REF["power_numderiv"]["REML"]
    assert ci.loc[".sigma"].to_numpy() == pytest.approx(ref["sigma"], rel=5e-5)
    assert ci.loc["variance power"].to_numpy() == pytest.approx(ref["var"], rel=5e-5, abs=2e-5)


def test_the_generic_profiler_reproduces_lme4_on_sleepstudy():
    m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    ci, _ = residual_profile_intervals(m)
    np.testing.assert_allclose(ci.iloc[:, 0], LME4["lower"], rtol=1e-3)
    np.testing.assert_allclose(ci.iloc[:, 1], LME4["upper"], rtol=1e-3)


def test_profile_ends_of_a_marginal_ar1_model_by_an_independent_computation():
    m = fit("y ~ arm + time + base", "ar1(visit | id)", None)
    ci = m.confint("profile")
    z2 = stats.norm.ppf(0.975) ** 2
    ml = m.refit_ml(warn=False)
    w = ml.model.whitening
    X, y = ml.design.X, ml.design.y
    dev_hat = marginal_criterion(w.structure, ml.rho, w.binding, y, X)[0]
    # ρ: σ and β are profiled in closed form at fixed ρ
    for end in ci.loc["residual rho"]:
        dev = marginal_criterion(w.structure, np.array([math.atanh(end)]), w.binding, y, X)[0]
        assert dev - dev_hat == pytest.approx(z2, abs=2e-3)
    # β_j: the same criterion with y − x_j b, minimised over ρ
    j = list(ml.design.fixed_names).index("time")
    keep = [c for c in range(X.shape[1]) if c != j]
    for end in ci.loc["time"]:
        best = optimize.minimize_scalar(
            lambda r: marginal_criterion(w.structure, np.array([r]), w.binding, y - X[:, j] * end, X[:, keep])[0],
            bounds=(-3, 3), method="bounded", options={"xatol": 1e-10})
        assert best.fun - dev_hat == pytest.approx(z2, abs=2e-3)


def test_profile_with_random_effects_brackets_the_estimates_and_power_of_fitted_values_is_refused():
    m = fit("y ~ arm + time + base + (1 | id)", "ar1(visit | id)", None)
    ci = m.confint("profile", parm=[".sig01", "residual rho"])
    ml = m.refit_ml(warn=False)
    rho = math.tanh(ml.rho[0])
    assert ci.loc["residual rho", "2.5 %"] < rho < ci.loc["residual rho", "97.5 %"]
    assert ci.loc[".sig01", "2.5 %"] >= 0
    with pytest.raises(mm.ModelError, match="fixed point"):
        fit(F, None, "power()").confint("profile")
