"""Prior weights and offsets against lme4 1.1-31, lmerTest 3.1-3 and pbkrtest 0.5.2.

Reference values: tests/reference/weights.json, made by tests/reference/weights.R.
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

HERE = Path(__file__).parent / "reference"
REF = json.loads((HERE / "weights.json").read_text())
CASES = ["weighted", "weighted_ml", "offset_formula", "offset_arg", "both"]


@cache
def data() -> pd.DataFrame:
    return pd.read_csv(HERE / "data" / "weights_sleepstudy.csv")


@cache
def fit(case: str) -> mm.LinearMixedModelResults:
    ref = REF[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer(ref["formula"], data(), REML=ref["reml"], weights=ref["weights"], offset=ref["offset"])


@pytest.mark.parametrize("case", CASES)
def test_fit_matches_lme4(case):
    ref, m = REF[case], fit(case)
    assert m.loglik == pytest.approx(ref["loglik"], abs=1e-4)
    assert m.objective == pytest.approx(ref["criterion"], abs=2e-4)
    assert m.beta == pytest.approx(ref["beta"], rel=1e-5)
    assert m.bse.to_numpy() == pytest.approx(ref["se"], rel=1e-4)
    assert m.sigma == pytest.approx(ref["sigma"], rel=1e-4)
    assert m.theta == pytest.approx(ref["theta"], rel=1e-3, abs=1e-4)
    assert m.fitted == pytest.approx(ref["fitted"], rel=5e-5)
    assert m.residuals == pytest.approx(ref["residuals"], abs=1e-5 * np.abs(ref["fitted"]).max())  # y − fitted


@pytest.mark.parametrize("case", CASES)
def test_df_match_lmertest_and_pbkrtest(case):
    ref, m = REF[case], fit(case)
    assert m.coef_table()["df"].to_numpy() == pytest.approx(ref["df_satterthwaite"], rel=1e-3)
    if not ref["reml"]:
        return
    kr = m.coef_table("kenward-roger")
    if ref["weights"] is None:
        want = ref
    elif case == "weighted":
        # pbkrtest ignores prior weights (residual covariance σ²I); on the same model written without weights
        # (rows scaled by √w) it is right, and that is what we must match
        want = REF["kr_whitened"]
    else:
        return
    assert kr["df"].to_numpy() == pytest.approx(want["df_kr"], rel=1e-3)
    assert kr["Std. Error"].to_numpy() == pytest.approx(want["se_kr"], rel=1e-4)


@pytest.mark.parametrize("case", ["weighted", "offset_formula", "both"])
def test_predict_new_data_as_lme4(case):
    ref, m = REF[case], fit(case)
    new = pd.DataFrame(REF["newdata"]).astype({"Subject": int})
    assert m.predict(new, include_random=False) == pytest.approx(ref["predict_fixed"], rel=1e-5)
    assert m.predict(new) == pytest.approx(ref["predict"], rel=1e-5)


def test_offset_column_is_read_from_new_data_and_a_vector_offset_cannot_be():
    d = data()
    by_name = fit("offset_arg")
    new = pd.DataFrame({"Days": [1.0], "Subject": [308], "e": [10.0]})
    shifted = new.assign(e=11.0)
    assert by_name.predict(shifted)[0] - by_name.predict(new)[0] == pytest.approx(1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_vector = mm.lmer("Reaction ~ Days + (1 | Subject)", d, offset=d["e"].to_numpy())
    assert by_vector.loglik == pytest.approx(by_name.loglik, abs=1e-8)
    with pytest.raises(mm.DataError, match="offset was given as a vector"):
        by_vector.predict(new)


def test_weights_scale_the_residual_variance_in_simulations():
    m = fit("weighted")
    sims = m.simulate(4000, seed=1, include_random=False)
    resid_var = (sims - m.fitted[:, None]).var(axis=1)
    w = data()["w"].to_numpy()
    assert np.corrcoef(resid_var, 1.0 / w)[0, 1] > 0.9
    assert np.median(resid_var * w) == pytest.approx(m.sigma**2, rel=0.1)


@pytest.mark.parametrize(
    "weights, message",
    [
        ("nope", "weights column 'nope' is not in the data"),
        (np.ones(3), "one value per row"),
        (np.r_[0.0, np.ones(179)], "weights must be positive and finite; 1 are not"),
        (np.r_[-1.0, np.ones(179)], "weights must be positive"),
    ],
)
def test_bad_weights_are_clear_errors(weights, message):
    with pytest.raises(mm.DataError, match=message):
        mm.lmer("Reaction ~ Days + (1 | Subject)", data(), weights=weights)


def test_missing_weights_drop_the_row_and_are_counted():
    w = data()["w"].to_numpy().copy()
    w[[0, 5]] = np.nan
    with pytest.warns(mm.exceptions.DroppedRowsWarning, match="2 rows"):
        m = mm.lmer("Reaction ~ Days + (1 | Subject)", data(), weights=w)
    assert m.nobs == 178 and m.n_dropped == 2
