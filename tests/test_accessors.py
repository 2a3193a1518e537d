"""statsmodels- and lme4-style accessors, na_action padding and typed ranef levels against lme4
(tests/reference/results_reference.R)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.exceptions import DataError

REF = json.loads((Path(__file__).parent / "reference" / "results_reference.json").read_text())
SLEEP = "Reaction ~ Days + (Days | Subject)"


def quiet_lmer(formula, data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer(formula, data, **kw)


@pytest.fixture(scope="module")
def sleep():
    return mm.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def fit(sleep):
    return mm.lmer(SLEEP, sleep)


# ---------------------------------------------------------------- statsmodels habits
def test_coefficient_series_match_lme4(fit):
    ref = REF["accessors"]
    for name, key, rtol in [("params", "params", 1e-6), ("bse", "bse", 1e-4), ("tvalues", "tvalues", 1e-4)]:
        got = getattr(fit, name)
        assert isinstance(got, pd.Series) and list(got.index) == ref["terms"], name
        np.testing.assert_allclose(got.to_numpy(), ref[key], rtol=rtol, err_msg=name)
    # Satterthwaite p-values, as lmerTest and summary()
    np.testing.assert_allclose(fit.pvalues.to_numpy(), ref["pvalues"], rtol=1e-3)
    np.testing.assert_allclose(fit.pvalues.to_numpy(), fit.coef_table()["Pr(>|t|)"].to_numpy())
    assert fit.llf == pytest.approx(ref["llf"], rel=1e-8)
    assert fit.scale == pytest.approx(fit.sigma**2)


def test_fixef_is_params(fit):
    pd.testing.assert_series_equal(fit.fixef(), fit.params)
    np.testing.assert_allclose(fit.fixef().to_numpy(), fit.fe_params.to_numpy())


@pytest.mark.parametrize("alpha, key", [(0.05, "conf_int_95"), (0.10, "conf_int_90")])
def test_conf_int_is_lme4_wald(fit, alpha, key):
    ci = fit.conf_int(alpha) if alpha != 0.05 else fit.conf_int()
    assert isinstance(ci, pd.DataFrame) and list(ci.columns) == [0, 1]
    assert list(ci.index) == REF["accessors"]["terms"]
    np.testing.assert_allclose(ci[0].to_numpy(), REF["accessors"][key]["lower"], rtol=1e-4)
    np.testing.assert_allclose(ci[1].to_numpy(), REF["accessors"][key]["upper"], rtol=1e-4)
    with pytest.raises(ValueError):
        fit.conf_int(1.5)


def test_cov_params_is_vcov(fit):
    cov = fit.cov_params()
    assert list(cov.index) == list(cov.columns) == REF["accessors"]["terms"]
    np.testing.assert_allclose(cov.to_numpy(), np.array(REF["accessors"]["vcov"]), rtol=1e-4)
    cov.iloc[0, 0] = -1.0  # a copy: the fit is unchanged
    assert fit.cov_params().iloc[0, 0] > 0


def test_fittedvalues_and_resid_are_labelled_series(fit, sleep):
    ref = REF["accessors"]
    fv, res = fit.fittedvalues, fit.resid
    assert isinstance(fv, pd.Series) and fv.index.equals(sleep.index) and res.index.equals(sleep.index)
    np.testing.assert_allclose(fv.to_numpy(), ref["fitted"], rtol=1e-5)
    np.testing.assert_allclose(res.to_numpy(), ref["resid"], atol=1e-3)
    # the array properties are unchanged
    assert isinstance(fit.fitted, np.ndarray) and isinstance(fit.residuals, np.ndarray)
    np.testing.assert_allclose(fv.to_numpy(), fit.fitted)


def test_random_effects_as_statsmodels(fit):
    ref = REF["accessors"]["ranef"]
    re = fit.random_effects
    assert isinstance(re, dict) and list(re) == ref["levels"]
    first = re[ref["levels"][0]]
    assert isinstance(first, pd.Series) and list(first.index) == ref["columns"]
    got = np.array([re[level].to_numpy() for level in ref["levels"]])
    np.testing.assert_allclose(got, np.array(ref["values"]), rtol=2e-3, atol=1e-3)


@pytest.mark.parametrize("key", list(REF["coef"]))
def test_coef_matches_lme4(key):
    spec = REF["coef"][key]
    fit = quiet_lmer(spec["formula"], mm.datasets.load(spec["data"]))
    ours = fit.coef()
    assert list(ours) == list(spec["coef"])
    for group, theirs in spec["coef"].items():
        frame = ours[group]
        assert isinstance(frame, pd.DataFrame)
        assert [str(v) for v in frame.index] == theirs["levels"]
        assert list(frame.columns) == theirs["columns"]
        values = np.array(theirs["values"], dtype=float)
        np.testing.assert_allclose(frame.to_numpy(), values, rtol=1e-3, atol=1e-3 * np.abs(values).max())


# ---------------------------------------------------------------- na_action
@pytest.fixture(scope="module")
def sleep_na(sleep):
    ref = REF["na_action"]
    data = sleep.copy()
    data.loc[[i - 1 for i in ref["missing_reaction"]], "Reaction"] = np.nan
    data.loc[[i - 1 for i in ref["missing_days"]], "Days"] = np.nan
    return data


def test_na_exclude_pads_to_the_data(sleep_na):
    ref = REF["na_action"]
    fit = quiet_lmer(SLEEP, sleep_na, na_action="exclude")
    fv, res = fit.fittedvalues, fit.resid
    assert fv.index.equals(sleep_na.index) and res.index.equals(sleep_na.index)
    expected_fv = np.array([np.nan if v is None else v for v in ref["exclude"]["fitted"]])
    expected_res = np.array([np.nan if v is None else v for v in ref["exclude"]["resid"]])
    np.testing.assert_array_equal(np.isnan(fv.to_numpy()), np.isnan(expected_fv))
    np.testing.assert_allclose(fv.to_numpy(), expected_fv, rtol=1e-5)
    np.testing.assert_allclose(res.to_numpy(), expected_res, atol=1e-3)
    frame = sleep_na.copy()
    frame["fit"] = fit.fittedvalues  # the use this is for
    np.testing.assert_allclose(frame["fit"].to_numpy(), expected_fv, rtol=1e-5)
    assert len(fit.fitted) == len(fit.residuals) == fit.nobs == len(sleep_na) - 4


def test_na_omit_keeps_the_rows_used(sleep_na):
    ref = REF["na_action"]["omit"]
    fit = quiet_lmer(SLEEP, sleep_na)
    assert fit.model.na_action == "omit"
    assert list(fit.fittedvalues.index) == [i - 1 for i in ref["rows"]]
    np.testing.assert_allclose(fit.fittedvalues.to_numpy(), ref["fitted"], rtol=1e-5)
    np.testing.assert_allclose(fit.resid.to_numpy(), ref["resid"], atol=1e-3)


def test_na_exclude_with_labelled_rows(sleep_na):
    data = sleep_na.set_axis([f"r{i}" for i in range(len(sleep_na))])
    fit = quiet_lmer(SLEEP, data, na_action="exclude")
    assert fit.resid.index.equals(data.index) and np.isnan(fit.resid["r2"]) and np.isfinite(fit.resid["r0"])
    # duplicate labels cannot be aligned
    dup = sleep_na.set_axis([0] * len(sleep_na))
    with pytest.raises(DataError, match="duplicate"):
        quiet_lmer(SLEEP, dup, na_action="exclude").fittedvalues
    # nothing dropped: nothing to align
    assert len(quiet_lmer(SLEEP, mm.datasets.load("sleepstudy").set_axis([0] * 180), na_action="exclude").resid) == 180


# ---------------------------------------------------------------- ranef levels in the column's type
@pytest.fixture(scope="module")
def int_fit(sleep):
    data = sleep.assign(Subject=(sleep["Subject"].cat.codes.astype("int64") + 1) * 5)
    return mm.lmer(SLEEP, data), data


def test_integer_ids_stay_integers(int_fit):
    fit, _ = int_fit
    ref = REF["integer_ids"]
    for condvar in (False, True):
        frame = fit.ranef(condvar=condvar)["Subject"]
        assert pd.api.types.is_integer_dtype(frame.index.dtype) and frame.index.name == "Subject"
        assert list(frame.index) == ref["levels"]
        np.testing.assert_allclose(frame[ref["columns"]].to_numpy(), np.array(ref["ranef"]), rtol=2e-3, atol=1e-3)
    assert list(fit.random_effects) == ref["levels"] and all(isinstance(k, (int, np.integer)) for k in fit.random_effects)
    coef = fit.coef()["Subject"]
    assert list(coef.index) == ref["levels"]
    np.testing.assert_allclose(coef.to_numpy(), np.array(ref["coef"]["values"]), rtol=1e-3)
    assert fit.ranef()["Subject"].loc[5].shape == (2,)


def test_integer_ids_after_save_and_load(int_fit, tmp_path):
    fit, _ = int_fit
    loaded = mm.load(fit.save(tmp_path / "fit.json"))
    assert loaded.ranef()["Subject"].index.equals(fit.ranef()["Subject"].index)


def test_integer_ids_predict_and_plot(int_fit):
    fit, data = int_fit
    np.testing.assert_allclose(fit.predict(data), fit.fitted, rtol=1e-10)
    from mixedmodels import plots

    fig = plots.caterpillar(fit)
    assert len(fig.axes) == 2


def test_level_types(sleep):
    # categorical columns keep their categories; interactions keep string labels
    fit = quiet_lmer("strength ~ 1 + (1 | batch/cask)", mm.datasets.load("Pastes"))
    re = fit.ranef(condvar=True)
    assert isinstance(re["batch"].index, pd.CategoricalIndex) and list(re["batch"].index[:2]) == ["A", "B"]
    assert list(re["cask:batch"].index[:2]) == ["a:A", "a:B"]
    # string and float ids
    data = sleep.assign(Subject=sleep["Subject"].astype(str), Group=sleep["Subject"].cat.codes.astype(float) / 2)
    fs = quiet_lmer("Reaction ~ Days + (1 | Subject)", data)
    assert list(fs.ranef()["Subject"].index[:2]) == ["308", "309"]
    ff = quiet_lmer("Reaction ~ Days + (1 | Group)", data)
    idx = ff.ranef()["Group"].index
    assert pd.api.types.is_float_dtype(idx.dtype) and list(idx[:3]) == [0.0, 0.5, 1.0]


# ---------------------------------------------------------------- printing in full
def test_tables_print_in_full(fit):
    tables = {
        "coef_table": fit.coef_table(),
        "anova": fit.anova(),
        "fixed_effects": fit.fixed_effects,
        "coef": fit.coef()["Subject"],
    }
    with pd.option_context("display.width", 40, "display.max_columns", 3):
        for name, table in tables.items():
            assert isinstance(table, pd.DataFrame), name
            for text in (repr(table), str(table)):
                assert "..." not in text, name
                assert all(str(c) in text for c in table.columns), name
                assert "\\" not in text, name  # not wrapped either
        # derived frames keep printing in full
        assert "..." not in repr(fit.coef_table().round(2))
    # whole-number columns without decimals, as R prints them
    assert fit.anova().to_string().count("1.0") >= 1 and " 1.0 " not in repr(fit.anova())
