"""compare() and the bootstrap LRT against lme4's anova(); the χ̄² boundary p-value."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import mixedmodels as mm
from mixedmodels.exceptions import ModelError
from mixedmodels.inference.compare import boundary_df, bootstrap_lrt, compare, mixture_pvalue
from mixedmodels.linear import LinearModelResults

REF = json.loads((Path(__file__).parents[1] / "reference" / "inference.json").read_text())["compare"]


@pytest.fixture(scope="module")
def sleep():
    return mm.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def fits(sleep):
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key in ("random_reml", "fixed", "uncorrelated"):
            for f in REF[key]["formulas"]:
                out[f] = mm.lmer(f, sleep)
    return out


@pytest.mark.parametrize("key", ["random_reml", "random_ml", "fixed", "uncorrelated"])
def test_matches_lme4_anova(fits, key):
    ref = REF[key]
    m0, m1 = (fits[f] for f in ref["formulas"])
    comp = compare(m0, m1, refit=None if key != "random_ml" else True)
    t = comp.table
    assert comp.refitted == ref["refit"]
    np.testing.assert_array_equal(t["npar"], ref["npar"])
    for col, name in [("AIC", "aic"), ("BIC", "bic"), ("logLik", "loglik"), ("deviance", "deviance")]:
        np.testing.assert_allclose(t[col], ref[name], rtol=1e-6, err_msg=col)
    np.testing.assert_allclose(t["Chisq"].iloc[1], ref["chisq"][1], rtol=1e-4)
    assert t["Df"].iloc[1] == ref["df"][1]
    np.testing.assert_allclose(t["Pr(>Chisq)"].iloc[1], ref["p_value"][1], rtol=1e-3)


def test_boundary_mixture(fits):
    # random slope with its covariance added to a random intercept: 50:50 chi2_1 : chi2_2
    m0, m1 = (fits[f] for f in REF["random_reml"]["formulas"])
    row = compare(m0, m1).table.iloc[1]
    x = row["Chisq"]
    assert row["Pr(>Chisq) boundary"] == pytest.approx(0.5 * stats.chi2.sf(x, 1) + 0.5 * stats.chi2.sf(x, 2))
    # one uncorrelated variance added: 50:50 chi2_0 : chi2_1 = half the naive p-value
    m0, m2 = (fits[f] for f in REF["uncorrelated"]["formulas"])
    row = compare(m0, m2).table.iloc[1]
    assert row["Pr(>Chisq) boundary"] == pytest.approx(0.5 * row["Pr(>Chisq)"])
    # different fixed effects: no boundary involved
    a, b = (fits[f] for f in REF["fixed"]["formulas"])
    assert np.isnan(compare(a, b).table.iloc[1]["Pr(>Chisq) boundary"])


def test_boundary_df_rules(fits):
    f = REF["random_reml"]["formulas"]
    assert boundary_df(fits[f[0]], fits[f[1]]) == 1
    u = REF["uncorrelated"]["formulas"]
    assert boundary_df(fits[u[0]], fits[u[1]]) == 0
    assert boundary_df(fits[f[1]], fits[f[0]]) is None


def test_mixture_pvalue_values():
    assert mixture_pvalue(0.0, 0) == pytest.approx(1.0)
    assert mixture_pvalue(2.705543, 0) == pytest.approx(0.05, rel=1e-5)  # 5% point of 50:50 chi2_0:chi2_1
    assert mixture_pvalue(5.138, 1) == pytest.approx(0.05, rel=1e-3)  # Stram & Lee (1994) table: 5.14


def test_linear_model_null(sleep, fits):
    ref = REF["lm_null"]
    lm_reml = LinearModelResults.from_formula(ref["formula"], sleep, reml=True)
    assert lm_reml.loglik == pytest.approx(ref["loglik_reml"], rel=1e-10)
    assert lm_reml.refit_ml().loglik == pytest.approx(ref["loglik_ml"], rel=1e-10)
    m = fits["Reaction ~ Days + (1 | Subject)"]
    row = compare(lm_reml, m).table.iloc[1]
    assert row["Chisq"] == pytest.approx(2 * (m.loglik - ref["loglik_reml"]), rel=1e-8)
    assert row["Pr(>Chisq) boundary"] == pytest.approx(0.5 * row["Pr(>Chisq)"])
    # the REML criterion of the model at theta = 0 is the linear model's
    assert -0.5 * m.model.objective(np.zeros(1)) == pytest.approx(ref["loglik_reml"], rel=1e-10)


def test_json_layout(fits):
    m0, m1 = (fits[f] for f in REF["random_reml"]["formulas"])
    d = compare(m0, m1).to_dict()
    assert set(d["models"][0]) >= {"formula", "npar", "loglik", "aic", "bic", "deviance"}
    assert set(d["tests"][0]) >= {"chisq", "df", "p_value", "p_value_boundary"}
    assert len(d["tests"]) == len(d["models"]) - 1


def test_errors(sleep, fits):
    m = fits["Reaction ~ Days + (1 | Subject)"]
    with pytest.raises(ModelError, match="at least two"):
        compare(m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = mm.lmer("Reaction ~ Days + (1|Subject)", sleep.iloc[:170])
    with pytest.raises(ModelError, match="same rows"):
        compare(m, other)
    ml = mm.lmer("Reaction ~ Days + (1|Subject)", sleep, REML=False)
    with pytest.raises(ModelError, match="REML and some by ML"):
        compare(m, ml, refit=False)


def test_bootstrap_lrt(fits):
    m0, m1 = (fits[f] for f in REF["random_reml"]["formulas"])
    a = bootstrap_lrt(m0, m1, 40, seed=5)
    b = bootstrap_lrt(m0, m1, 40, seed=5, n_jobs=2)
    assert a.statistic == pytest.approx(REF["random_ml"]["chisq"][1], rel=1e-4)  # ML statistic
    assert a.p_value == b.p_value and np.array_equal(a.reference, b.reference)
    assert a.p_value == pytest.approx(1 / 41)  # nothing simulated under the null gets near 42
    assert 0 < a.nsim_used <= 40 and np.all(a.reference >= -1e-6)


def test_html_display(fits):
    m0, m1 = (fits[f] for f in REF["random_reml"]["formulas"])
    html = compare(m0, m1)._repr_html_()
    assert html.startswith("<div") and "<table" in html and "Pr(&gt;Chisq) boundary" in html
    assert "<table>" in m1._repr_html_()
