"""emmeans of GLMM fits on the link and response scales against R's emmeans 1.8 on tight glmer fits
(tests/reference/glmm_inference.R)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from glmm_refs import REFERENCE

import mixedmodels.datasets as ds
from mixedmodels.exceptions import ModelError
from mixedmodels.glmm import glmer

REF = json.loads((REFERENCE / "glmm_inference.json").read_text())
CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
RTOL = 2e-4  # the fits agree with glmer's tight fits to ~1e-6; SEs come from finite-difference Hessians


@pytest.fixture(scope="module")
def cbpp():
    return glmer(CBPP, ds.load("cbpp"), family="binomial")


@pytest.fixture(scope="module")
def poisson():
    d = pd.read_csv(REFERENCE / "data" / "glmm_nb.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return glmer("y ~ x + f + (1 | g)", d, family="poisson")


def _check(ours: pd.DataFrame, ref: list[dict], columns: dict[str, str]) -> None:
    ref = pd.DataFrame(ref)
    assert len(ours) == len(ref)
    for mine, theirs in columns.items():
        np.testing.assert_allclose(ours[mine].to_numpy(dtype=float), ref[theirs].to_numpy(dtype=float), rtol=RTOL,
                                   err_msg=mine)


def test_link_scale(cbpp):
    emm = cbpp.emmeans("period")
    _check(emm.table, REF["cbpp"]["emmeans_link"],
           {"emmean": "emmean", "SE": "SE", "lower.CL": "asymp.LCL", "upper.CL": "asymp.UCL"})
    assert np.all(np.isinf(emm.table["df"]))
    c = emm.contrasts()
    _check(c, REF["cbpp"]["pairs_link"], {"estimate": "estimate", "SE": "SE", "t.ratio": "z.ratio", "p.value": "p.value"})
    assert list(c["contrast"]) == [r["contrast"] for r in REF["cbpp"]["pairs_link"]]
    assert "Results are given on the logit (not the response) scale." in str(emm)


def test_response_scale_probabilities_and_odds_ratios(cbpp):
    emm = cbpp.emmeans("period", type="response")
    _check(emm.table, REF["cbpp"]["emmeans_response"],
           {"prob": "prob", "SE": "SE", "lower.CL": "asymp.LCL", "upper.CL": "asymp.UCL"})
    c = emm.contrasts()
    _check(c, REF["cbpp"]["pairs_response"], {"odds.ratio": "odds.ratio", "SE": "SE", "t.ratio": "z.ratio", "p.value": "p.value"})
    _check(c, REF["cbpp"]["pairs_response_ci"], {"lower.CL": "asymp.LCL", "upper.CL": "asymp.UCL"})  # Tukey-adjusted
    assert list(c["contrast"]) == [r["contrast"] for r in REF["cbpp"]["pairs_response"]]
    text = emm.format_contrasts(c)
    assert "odds.ratio" in text and "Tests are performed on the log odds ratio scale" in text
    assert " prob " in str(emm) and "back-transformed from the logit scale" in str(emm)
    # the link-scale means give the same odds ratios when asked for type="response"
    np.testing.assert_allclose(cbpp.emmeans("period").contrasts(type="response")["odds.ratio"], c["odds.ratio"])


def test_trt_vs_ctrl_dunnettx_intervals(cbpp):
    c = cbpp.emmeans("period", type="response").contrasts("trt.vs.ctrl")
    _check(c, REF["cbpp"]["trt_vs_ctrl_response"], {"odds.ratio": "odds.ratio", "SE": "SE", "p.value": "p.value"})
    _check(c, REF["cbpp"]["trt_vs_ctrl_response_ci"], {"lower.CL": "asymp.LCL", "upper.CL": "asymp.UCL"})


def test_poisson_rates_and_rate_ratios(poisson):
    # estimates as glmer's (tight); SEs as glmmTMB's exact Hessian (glmer's finite-difference one is 1e-3 off here)
    np.testing.assert_allclose(poisson.beta, REF["poisson"]["beta"], rtol=5e-5)
    emm = poisson.emmeans("f", type="response")
    _check(emm.table, REF["poisson"]["emmeans_response"], {"rate": "rate"})
    _check(emm.table, REF["poisson"]["tmb_emmeans_response"], {"SE": "SE", "lower.CL": "asymp.LCL", "upper.CL": "asymp.UCL"})
    c = emm.contrasts()
    _check(c, REF["poisson"]["pairs_response"], {"ratio": "ratio"})
    _check(c, REF["poisson"]["tmb_pairs_response"], {"SE": "SE", "t.ratio": "z.ratio"})
    # Tukey p-values of 1e-8 and below: scipy's studentized range is exact only to ~1e-12 in absolute terms
    p_ref = [r["p.value"] for r in REF["poisson"]["tmb_pairs_response"]]
    np.testing.assert_allclose(c["p.value"], p_ref, rtol=1e-3, atol=1e-12)
    assert list(c["contrast"]) == ["a / b", "a / c", "b / c"]
    assert " rate " in str(emm)


def test_probit_contrasts_stay_on_the_link_scale():
    f = glmer(CBPP, ds.load("cbpp"), family="binomial", link="probit")
    emm = f.emmeans("period", type="response")
    _check(emm.table, REF["probit"]["emmeans_response"],
           {"prob": "prob", "SE": "SE", "lower.CL": "asymp.LCL", "upper.CL": "asymp.UCL"})
    c = emm.contrasts()
    _check(c, REF["probit"]["pairs_response"], {"estimate": "estimate", "SE": "SE", "t.ratio": "z.ratio", "p.value": "p.value"})
    assert "Note: contrasts are still on the probit scale" in c.attrs["notes"]


def test_errors(cbpp):
    with pytest.raises(ModelError, match="type must be"):
        cbpp.emmeans("period", type="prob")
    with pytest.raises(ModelError, match="not a variable"):
        cbpp.emmeans("herd")
