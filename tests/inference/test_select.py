"""Model choice against lmerTest's ranova/step, lme4's allFit and the criteria of R fits.

References: tests/reference/select.json, written by tests/reference/select.R (lme4 1.1-31, lmerTest 3.1-3,
nlme). Tolerances: 1e-6 relative for statistics that are closed forms of a fit's likelihood at the same
optimum (logLik, AIC, LRT between REML fits of one-parameter-fewer models agree to ~1e-10), 1e-4 for
quantities that depend on where an optimizer stopped (F-tests' df and statistics, allFit's estimates).
"""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.exceptions import ModelError
from mixedmodels.inference.allfit import ALLFIT_OPTIMIZERS, allfit
from mixedmodels.inference.ranova import ranova, reduced_formulas
from mixedmodels.inference.select import aicc, nested, select
from mixedmodels.inference.step import drop1, step

ROOT = Path(__file__).parents[1] / "reference"
REF = json.loads((ROOT / "select.json").read_text())
CLOSED, FITTED = 1e-6, 1e-4


@cache
def _data(name: str) -> pd.DataFrame:
    if name == "ham":
        return pd.read_csv(ROOT / "data" / "ham.csv")
    return mm.datasets.load(name)


@cache
def _fit(dataset: str, formula: str, reml: bool = True):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer(formula, _data(dataset), REML=reml)


def _arr(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _close(ours, ref, rtol, atol=0.0):
    np.testing.assert_allclose(np.asarray(ours, dtype=float), _arr(ref), rtol=rtol, atol=atol, equal_nan=True)


# ------------------------------------------------------------------------------------------------ ranova
@pytest.mark.parametrize("key", list(REF["ranova"]))
def test_ranova_matches_lmertest(key):
    c = REF["ranova"][key]
    r = ranova(_fit(c["dataset"], c["formula"], c["REML"]), reduce_terms=c["reduce_terms"])
    assert list(r.table.index) == c["rows"]
    t = r.table
    _close(t["npar"], c["npar"], 0)
    _close(t["Df"], c["Df"], 0)
    _close(t["logLik"], c["logLik"], CLOSED)
    _close(t["AIC"], c["AIC"], CLOSED)
    _close(t["LRT"], c["LRT"], CLOSED, atol=1e-7)
    _close(t["Pr(>Chisq)"], c["p_value"], CLOSED, atol=1e-12)


def test_ranova_reduced_formulas_and_boundary_column():
    fit = _fit("sleepstudy", "Reaction ~ Days + (Days || Subject)")
    forms = reduced_formulas(fit)
    # lmerTest: the slope term reduces to (1 | Subject), which the formula already has: one term, not two
    assert forms == {"(1 | Subject)": "Reaction ~ Days + (0 + Days | Subject)",
                     "Days in (0 + Days | Subject)": "Reaction ~ Days + (1 | Subject)"}
    t = ranova(fit).table
    # each reduction removes one variance: the chi-bar-square p-value is half the chi-square one
    np.testing.assert_allclose(t["Pr(>Chisq) boundary"].iloc[1:], t["Pr(>Chisq)"].iloc[1:] / 2, rtol=1e-12)
    assert np.isnan(t["Pr(>Chisq) boundary"].iloc[0])


def test_ranova_of_two_column_terms_and_errors():
    fit = _fit("sleepstudy", "Reaction ~ Days + (Days | Subject)")
    r = ranova(fit)
    # (Days | Subject) -> (1 | Subject) removes a variance and a covariance: 50:50 chi2_1:chi2_2
    from scipy import stats

    lrt = r.table["LRT"].iloc[1]
    assert r.table["Pr(>Chisq) boundary"].iloc[1] == pytest.approx(0.5 * stats.chi2.sf(lrt, 1) + 0.5 * stats.chi2.sf(lrt, 2))
    d = r.to_dict()
    assert d["method"] == "REML" and d["terms"][1]["formula"] == "Reaction ~ Days + (1 | Subject)" and d["terms"][1]["df"] == 2
    assert "Days in (Days | Subject)" in str(r)
    with pytest.raises(ModelError):
        ranova(mm.LinearModelResults.from_formula("Reaction ~ Days", _data("sleepstudy")))


# -------------------------------------------------------------------------------------------------- step
def _step(c):
    args = c["args"] or {}
    keep = [args["keep"]] if "keep" in args else []
    return step(_fit(c["dataset"], c["formula"]), c["ddf"].lower(), alpha_random=args.get("alpha.random", 0.1),
                alpha_fixed=args.get("alpha.fixed", 0.05), keep=keep)


@pytest.mark.parametrize("key", list(REF["step"]))
def test_step_matches_lmertest(key):
    c = REF["step"][key]
    s = _step(c)
    assert s.formula.replace(" ", "") == c["model"].replace(" ", "")
    r, rr = s.random, c["random"]
    assert list(r.index) == rr["rows"]
    _close(r["Eliminated"], rr["Eliminated"], 0)
    _close(r["npar"], rr["npar"], 0)
    _close(r["logLik"], rr["logLik"], CLOSED)
    _close(r["LRT"], rr["LRT"], CLOSED, atol=1e-7)
    _close(r["Pr(>Chisq)"], rr["Pr(>Chisq)"], CLOSED, atol=1e-12)
    f, fr = s.fixed, c["fixed"]
    assert list(f.index) == fr["rows"]
    _close(f["Eliminated"], fr["Eliminated"], 0)
    _close(f["NumDF"], fr["NumDF"], 0)
    for col in ("Sum Sq", "Mean Sq", "DenDF", "F value", "Pr(>F)"):
        _close(f[col], fr[col], FITTED)


def test_step_options_and_output():
    fit = _fit("ham", "Informed.liking ~ Product * Information * Gender + (1 | Consumer) + (1 | Product:Consumer)")
    # nothing reduced: the tables are the first ranova and drop1
    s = step(fit, reduce_random=False, reduce_fixed=False)
    assert s.formula == fit.formula and (s.random["Eliminated"].iloc[1:] == 0).all()
    assert list(s.fixed.index) == ["Product:Information:Gender"]
    text = str(s)
    assert "Backward reduced random-effect table:" in text and "Model found:" in text
    d = s.to_dict()
    assert d["ddf"] == "Satterthwaite" and d["fixed"][0]["num_df"] == 3 and d["random"][0]["eliminated"] is None
    with pytest.raises(ModelError, match="keep names"):
        step(fit, keep=["Nope"])
    with pytest.raises(ModelError, match="ddf"):
        step(fit, "lme4")


def test_drop1_single_term_is_the_anova_row():
    fit = _fit("sleepstudy", "Reaction ~ Days + (Days | Subject)")
    d = drop1(fit)
    a = fit.anova()
    np.testing.assert_allclose(d.loc["Days"].to_numpy(float), a.loc["Days"].to_numpy(float), rtol=1e-12)


def test_step_to_a_linear_model_tests_its_terms():
    # a random effect with p > alpha is removed; the linear model's F-test of Days is the lm one
    d = _data("sleepstudy").copy()
    rng = np.random.default_rng(3)
    d["g"] = rng.integers(0, 30, len(d)).astype(str)
    fit = _fit_frame(d, "Reaction ~ Days + (1 | g)")
    s = step(fit)
    assert s.formula == "Reaction ~ Days" and list(s.random.index) == ["<none>", "(1 | g)"]
    X = np.column_stack([np.ones(len(d)), d["Days"]])
    _, rss, *_ = np.linalg.lstsq(X, d["Reaction"], rcond=None)
    rss0 = float(np.sum((d["Reaction"] - d["Reaction"].mean()) ** 2))
    F = (rss0 - rss[0]) / (rss[0] / (len(d) - 2))
    assert s.fixed.loc["Days", "F value"] == pytest.approx(F, rel=1e-10)
    assert s.fixed.loc["Days", "DenDF"] == len(d) - 2


def _fit_frame(frame, formula):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer(formula, frame)


# ------------------------------------------------------------------------------------------------ allFit
@pytest.mark.parametrize("key", list(REF["allfit"]))
def test_allfit_matches_lme4(key):
    c = REF["allfit"][key]
    a = allfit(_fit(c["dataset"], c["formula"], c["REML"]))
    assert list(a.table.index) == list(ALLFIT_OPTIMIZERS) and a.table["ok"].all() and a.table["converged"].all()
    best_r = int(np.argmax(c["loglik"]))
    # every optimizer reaches lme4's best log-likelihood
    np.testing.assert_allclose(a.table["logLik"], max(c["loglik"]), rtol=CLOSED)
    for part in ("fixef", "theta", "sdcor"):
        ref = c[part]
        ours = getattr(a, part)
        # lme4 labels its sdcor columns with theta's names; the values are in VarCorr's order, as ours
        assert part == "sdcor" or list(ours.columns) == ref["columns"]
        best = np.array(ref["values"][best_r])
        # our best fit against lme4's best, and every optimizer within 1e-4 of it (1e-3 for SDs, as lme4's own spread)
        ours_best = ours.loc[a.table["logLik"].idxmax()].to_numpy(float)
        np.testing.assert_allclose(ours_best, best, rtol=FITTED, atol=1e-6)
        tol = FITTED if part == "fixef" else 1e-3
        for name in ours.index:
            np.testing.assert_allclose(ours.loc[name].to_numpy(float), best, rtol=tol, atol=1e-5)
    lme4_spread = np.ptp(np.array(c["sdcor"]["values"]), axis=0) / np.max(np.abs(c["sdcor"]["values"]), axis=0)
    assert a.max_relative_spread <= max(float(lme4_spread.max()), 1e-4)
    assert a.loglik_range < 1e-6


def test_allfit_output_and_failures():
    fit = _fit("sleepstudy", "Reaction ~ Days + (Days | Subject)")
    a = allfit(fit, ["bobyqa", "lbfgsb"], maxfun=5)  # five evaluations: neither can converge
    assert not a.table["converged"].any()
    assert a.table.loc["bobyqa", "evaluations"] == 5  # scipy's limit is checked between iterations only
    d = allfit(fit, ["bobyqa", "nelder_mead"]).to_dict()
    assert [f["optimizer"] for f in d["fits"]] == ["bobyqa", "nelder_mead"] and d["loglik_range"] < 1e-6
    assert list(d["fits"][0]["sdcor"]) == ["Subject.(Intercept)", "Subject.Days", "Subject.Days.(Intercept)", "sigma"]
    assert d["fits"][0]["sdcor"]["Subject.Days.(Intercept)"] == pytest.approx(0.0656, abs=1e-4)  # the correlation
    assert "Spread over the optimizers" in str(allfit(fit, ["bobyqa"]))
    with pytest.raises(ModelError, match="unknown optimizer"):
        allfit(fit, ["simplex"])


@pytest.mark.parametrize("optimizer", ["newuoa", "sbplx", "lbfgsb", "powell"])
def test_new_optimizers_fit_sleepstudy(optimizer):
    fit = _fit("sleepstudy", "Reaction ~ Days + (Days | Subject)")
    other = mm.lmer("Reaction ~ Days + (Days | Subject)", _data("sleepstudy"), optimizer=optimizer)
    assert other.loglik == pytest.approx(fit.loglik, abs=1e-6)
    assert other.fit_record.optimizer.split()[0] in ("nlopt", "scipy")


# ---------------------------------------------------------------------------------------------- criteria
NAMES = ["none", "intercept", "slope", "uncorrelated", "slope_only", "intercept_car1"]


@cache
def _selection(reml: bool):
    random = ["", "(1 | Subject)", "(Days | Subject)", "(Days || Subject)", "(0 + Days | Subject)",
              {"random": "(1 | Subject)", "residual": "car1(Days | Subject)"}]
    return select(_data("sleepstudy"), "Reaction ~ Days", random, REML=reml, names=NAMES)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_criteria_match_r(method):
    s = _selection(method == "REML")
    assert s.method == method
    for row in REF["criteria"][method]:
        ours = s.table.loc[row["name"]]
        assert ours["npar"] == row["df"] and bool(ours["singular"]) == row["singular"]
        tol = CLOSED if row["name"] not in ("slope", "uncorrelated") or method == "REML" else FITTED
        for col in ("logLik", "AIC", "AICc", "BIC"):
            assert ours[col] == pytest.approx(row[col], rel=tol), (row["name"], col)


def test_selection_table_and_tests():
    s = _selection(True)
    assert list(s.table.index) == ["intercept_car1", "uncorrelated", "slope", "slope_only", "intercept", "none"]
    assert s.table["dAIC"].iloc[0] == 0 and s.table["weight"].sum() == pytest.approx(1.0)
    assert s.best is s.fits["intercept_car1"]
    pairs = {(r["null"], r["alt"]) for _, r in s.tests.iterrows()}
    assert ("intercept", "slope") in pairs and ("uncorrelated", "slope") in pairs and ("none", "intercept_car1") in pairs
    assert ("slope", "uncorrelated") not in pairs and ("slope_only", "intercept") not in pairs
    assert ("intercept", "slope_only") not in pairs  # neither is a special case of the other
    row = s.tests[(s.tests["null"] == "intercept") & (s.tests["alt"] == "slope")].iloc[0]
    comp = mm.compare(s.fits["intercept"], s.fits["slope"]).table.iloc[1]
    assert row["Chisq"] == pytest.approx(comp["Chisq"], rel=1e-12)
    assert row["Pr(>Chisq) boundary"] == pytest.approx(comp["Pr(>Chisq) boundary"], rel=1e-12)
    # a residual structure added: no boundary p-value (the correlation's null value is interior)
    row = s.tests[(s.tests["null"] == "intercept") & (s.tests["alt"] == "intercept_car1")].iloc[0]
    assert np.isnan(row["Pr(>Chisq) boundary"])
    d = s.to_dict()
    assert d["method"] == "REML" and d["candidates"][0]["name"] == "intercept_car1" and len(d["tests"]) == len(s.tests)
    assert "Candidates fitted by REML" in str(s)


def test_selection_by_bic_and_ml_when_fixed_effects_differ():
    s = select(_data("sleepstudy"), ["Reaction ~ 1", "Reaction ~ Days", "Reaction ~ Days + I(Days^2)"], ["(Days | Subject)"],
               criterion="BIC")
    assert s.method == "ML" and "not comparable" in s.reason
    bics = s.table["BIC"].to_numpy()
    assert np.all(np.diff(bics) >= 0)
    for ref in REF["criteria_fixed_differ"]:
        name = f"{ref['formula'].split(' + (')[0]} + (Days | Subject)"
        ours = s.table.loc[name]
        assert ours["logLik"] == pytest.approx(ref["logLik"], rel=FITTED) and ours["AICc"] == pytest.approx(ref["AICc"], rel=FITTED)
    assert len(s.tests) == 3  # 1 within Days within Days + Days^2


def test_aicc_and_nesting_rules():
    assert aicc(-10.0, 3, 20) == pytest.approx(26 + 2 * 3 * 4 / 16)
    assert aicc(-10.0, 3, 4) == np.inf
    f = lambda formula, **kw: _fit_kw(formula, **kw)
    us = f("Reaction ~ Days + (Days | Subject)")
    diag = f("Reaction ~ Days + diag(Days | Subject)")
    cs = f("Reaction ~ Days + cs(Days | Subject)")
    ri = f("Reaction ~ Days + (1 | Subject)")
    assert nested(diag, us) and nested(ri, diag) and nested(diag, cs) and not nested(us, diag)
    assert not nested(cs, diag) and nested(ri, us)


@cache
def _fit_kw(formula):
    return _fit("sleepstudy", formula)


def test_select_errors():
    d = _data("sleepstudy")
    with pytest.raises(ModelError, match="two candidates"):
        select(d, "Reaction ~ Days", ["(1 | Subject)"])
    with pytest.raises(ModelError, match="random-effects term"):
        select(d, "Reaction ~ Days + (1 | Subject)", ["", "(Days | Subject)"])
    with pytest.raises(ModelError, match="criterion"):
        select(d, "Reaction ~ Days", ["", "(1 | Subject)"], criterion="DIC")
    with pytest.raises(ModelError, match="names"):
        select(d, "Reaction ~ Days", ["", "(1 | Subject)"], names=["a"])
    d2 = d.copy()
    d2.loc[3, "Days"] = np.nan
    d2["w"] = 1.0
    d2.loc[5, "w"] = np.nan
    with pytest.raises(ModelError, match="different rows"):
        select(d2, "Reaction ~ 1", ["(1 | Subject)", "(Days | Subject)"])


def test_allfit_of_residual_structures():
    trial = pd.read_csv(ROOT / "data" / "residual_trial.csv")
    mmrm = mm.mmrm("y ~ arm * visit + base + us(visit | id)", trial)
    a = allfit(mmrm, ["bobyqa", "nelder_mead"])
    # the default optimizer of an unstructured MMRM is L-BFGS on the analytic gradient; others take the general path
    assert a.table.loc["bobyqa", "algorithm"].startswith("nlopt LD_LBFGS")
    assert a.table.loc["nelder_mead", "algorithm"] == "nlopt LN_NELDERMEAD"
    assert a.loglik_range < 1e-5 and a.max_relative_spread < 1e-3
