"""Hard but valid data still fit and match lme4 (data and values from reference/hard_data.R)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

HERE = Path(__file__).parent
REF = json.loads((HERE / "reference" / "hard_data.json").read_text())
CASES = sorted(k for k in REF if k != "provenance")


@pytest.fixture(scope="module")
def fits():
    out = {}
    for key in CASES:
        ref = REF[key]
        data = pd.read_csv(HERE.parent / ref["file"])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out[key] = (mm.lmer(ref["formula"], data), [str(w.message) for w in caught])
    return out


@pytest.mark.parametrize("key", CASES)
def test_matches_lme4(fits, key):
    ref = REF[key]
    fit, _ = fits[key]
    assert fit.nobs == ref["nobs"]
    # log-likelihood as good as lme4's (relative to its size for the 1e9-scale response)
    assert fit.loglik > ref["loglik"] - 1e-4 * max(1.0, abs(ref["loglik"]) * 1e-6)
    assert fit.loglik - ref["loglik"] < 1e-2
    fe = ref["fixef"]
    est, se = np.array(fe["estimate"]), np.array(fe["std_error"])
    # within 1e-4 relative, or 1e-4 standard errors where the estimate is near zero
    assert np.all(np.abs(fit.fixed_effects["Estimate"].to_numpy() - est) <= np.maximum(1e-4 * np.abs(est), 1e-4 * se))
    np.testing.assert_allclose(fit.fixed_effects["Std. Error"], fe["std_error"], rtol=1e-3)
    assert fit.sigma == pytest.approx(ref["sigma"], rel=1e-4)
    theta = np.atleast_1d(ref["theta"])
    np.testing.assert_allclose(fit.theta, theta, rtol=1e-3, atol=1e-4)
    assert fit.singular == ref["singular"]


def test_scale_warning_like_lme4(fits):
    _, caught = fits["tiny_predictors"]
    assert any("very different scales" in m for m in caught)
    assert "very different scales" in str(REF["tiny_predictors"]["messages"])


def test_zero_variance_is_singular(fits):
    fit, caught = fits["zero_variance"]
    assert fit.singular and fit.theta[0] == pytest.approx(0.0, abs=1e-4)
    assert any("singular" in m for m in caught)
