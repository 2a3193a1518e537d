"""Satterthwaite and Kenward–Roger t- and F-tests against lmerTest/pbkrtest (tests/reference/inference.R)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels.exceptions import ModelError

REF = json.loads((Path(__file__).parents[1] / "reference" / "inference.json").read_text())
DF_RTOL = 1e-4


def _fit(dataset: str, formula: str, reml: bool):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer(formula, mm.datasets.load(dataset), REML=reml)


@pytest.fixture(scope="module")
def fits():
    return {key: _fit(e["model"], e["formula"], e["REML"]) for key, e in REF["coef"].items()}


COEF_CASES = [(k, m) for k, e in REF["coef"].items() if k != "cake_factor" for m in ("satterthwaite", "kenward_roger") if m in e]


@pytest.mark.parametrize("key,method", COEF_CASES)
def test_coefficient_table(fits, key, method):
    ref = REF["coef"][key][method]
    table = fits[key].coef_table(method.replace("_", "-"))
    assert list(table.index) == list(np.atleast_1d(ref["term"]))
    np.testing.assert_allclose(table["Estimate"], ref["estimate"], rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(table["Std. Error"], ref["std_error"], rtol=1e-4)
    np.testing.assert_allclose(table["df"], ref["df"], rtol=DF_RTOL)
    np.testing.assert_allclose(table["t value"], ref["t_value"], rtol=1e-4)
    p = np.asarray(ref["p_value"])
    np.testing.assert_allclose(table["Pr(>|t|)"], p, rtol=2e-3, atol=1e-12)


@pytest.mark.parametrize("key", list(REF["anova"]))
@pytest.mark.parametrize("method", ["satterthwaite", "kenward_roger"])
def test_type3_anova(fits, key, method):
    ref = REF["anova"][key][method]
    table = fits[key].anova(method.replace("_", "-"))
    assert list(table.index) == ref["term"]
    for col, name in [("NumDF", "num_df"), ("DenDF", "den_df"), ("F value", "f_value"), ("Sum Sq", "sum_sq"), ("Mean Sq", "mean_sq")]:
        np.testing.assert_allclose(table[col], ref[name], rtol=2e-4, err_msg=col)
    np.testing.assert_allclose(table["Pr(>F)"], ref["p_value"], rtol=2e-3)


@pytest.mark.parametrize("key,model", [("grouse", "grouse"), ("sleepstudy", "sleepstudy")])
@pytest.mark.parametrize("method", ["satterthwaite", "kenward_roger"])
def test_contest(fits, key, model, method):
    ref = REF["contest"][key]
    row = fits[model].contest(np.array(ref["L"], dtype=float), ddf=method.replace("_", "-"))
    assert row["NumDF"] == ref[method]["num_df"]
    np.testing.assert_allclose(row["DenDF"], ref[method]["den_df"], rtol=DF_RTOL)
    np.testing.assert_allclose(row["F value"], ref[method]["f_value"], rtol=1e-4)
    np.testing.assert_allclose(row["Pr(>F)"], ref[method]["p_value"], rtol=2e-3)


def test_kenward_roger_needs_reml(fits):
    with pytest.raises(ModelError, match="REML"):
        fits["sleepstudy_ml"].coef_table("kenward-roger")


def test_unknown_method(fits):
    with pytest.raises(ModelError, match="unknown ddf method"):
        fits["sleepstudy"].coef_table("containment")


def test_no_ddf_gives_lme4_table(fits):
    table = fits["sleepstudy"].coef_table(None)
    assert table["df"].isna().all() and table["Pr(>|t|)"].isna().all()
    np.testing.assert_allclose(table["t value"], fits["sleepstudy"].fixed_effects["t value"])


def test_contest_checks_columns(fits):
    with pytest.raises(ModelError, match="columns"):
        fits["sleepstudy"].contest(np.ones((1, 3)))


def test_summary_shows_lmertest_table(fits):
    text = str(fits["sleepstudy"].summary())
    assert "t-tests use Satterthwaite's method" in text and "Pr(>|t|)" in text
    assert "lmerMod'" in str(fits["sleepstudy"].summary(ddf=None))
