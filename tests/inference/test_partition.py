"""ICC, R² and the implied covariance against R's performance package and lme4 (tests/reference/partition.R)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.exceptions import DataError, ModelError

REF = json.loads((Path(__file__).parents[1] / "reference" / "partition.json").read_text())


@pytest.fixture(scope="module")
def fits():
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key, e in REF["partition"].items():
            out[key] = mm.lmer(e["formula"], mm.datasets.load(e["dataset"]))
    return out


@pytest.mark.parametrize("key", list(REF["partition"]))
def test_icc_r2_match_performance(fits, key):
    ref = REF["partition"][key]
    r = fits[key]
    table = r.icc()
    assert table.loc["total", "adjusted"] == pytest.approx(ref["icc_adjusted"], rel=1e-4)
    assert table.loc["total", "conditional"] == pytest.approx(ref["icc_conditional"], rel=1e-4)
    r2 = r.r2()
    assert r2["marginal"] == pytest.approx(ref["r2_marginal"], rel=1e-4, abs=1e-12)
    assert r2["conditional"] == pytest.approx(ref["r2_conditional"], rel=1e-4)
    from mixedmodels.inference.partition import variance_components

    vc = variance_components(r)
    assert vc["fixed"] == pytest.approx(ref["var_fixed"], rel=1e-4, abs=1e-12)
    assert sum(vc["random"].values()) == pytest.approx(ref["var_random"], rel=1e-4)
    assert vc["residual"] == pytest.approx(ref["var_residual"], rel=1e-4)
    if "by_group" in ref:
        for g, v in zip(ref["by_group"]["group"], ref["by_group"]["icc"]):
            assert table.loc[g, "adjusted"] == pytest.approx(v, rel=1e-4)


def test_icc_bootstrap_interval(fits):
    r = fits["sleep_intercept"]
    t = r.icc(ci=0.95, nsim=40, seed=2)
    assert (t["adjusted_lower"] < t["adjusted"]).all() and (t["adjusted"] < t["adjusted_upper"]).all()
    assert t.equals(r.icc(ci=0.95, nsim=40, seed=2, n_jobs=2))
    r2 = r.r2(ci=0.9, nsim=40, seed=2)
    assert r2["marginal_lower"] < r2["marginal"] < r2["marginal_upper"]
    assert r2["conditional_lower"] < r2["conditional"] < r2["conditional_upper"]


@pytest.mark.parametrize("kind,key", [("implied_slope", "sleep_slope"), ("implied_intercept", "sleep_intercept")])
def test_implied_covariance_over_days(fits, kind, key):
    ref = REF[kind]
    ic = fits[key].implied_covariance(newdata=pd.DataFrame({"Days": ref["days"]}))
    np.testing.assert_allclose(ic.covariance.to_numpy(), np.array(ref["covariance"]), rtol=1e-4)
    np.testing.assert_allclose(ic.correlation.to_numpy(), np.array(ref["correlation"]), rtol=1e-4)
    assert list(ic.correlation.index) == ref["days"]


def test_correlation_shapes(fits):
    days = pd.DataFrame({"Days": range(10)})
    c0 = fits["sleep_intercept"].implied_covariance(newdata=days).correlation.to_numpy()
    off = c0[~np.eye(10, dtype=bool)]
    assert np.ptp(off) < 1e-12  # random intercept: one correlation for every pair
    c1 = fits["sleep_slope"].implied_covariance(newdata=days).correlation.to_numpy()
    assert np.all(np.diff(c1[9, :9]) > 0)  # with day 9, correlation grows as the gap shrinks
    assert c1[0, 1] > c1[0, 9]


def test_implied_for_a_subject_in_the_data(fits):
    r = fits["sleep_slope"]
    ic = r.implied_covariance(group="Subject", level="308", label="Days")
    ref = np.array(REF["implied_slope"]["covariance"])
    np.testing.assert_allclose(ic.covariance.to_numpy(), ref, rtol=1e-4)
    assert list(ic.covariance.index) == list(range(10))
    # crossed factors: two rows share the plate term, the sample term, both or neither
    pen = fits["penicillin"]
    ic = pen.implied_covariance(group="plate", level="a")
    vc = pen.varcorr.set_index("grp")["vcov"]
    assert ic.covariance.shape == (6, 6)
    assert ic.covariance.iloc[0, 1] == pytest.approx(vc["plate"], rel=1e-10)
    assert ic.covariance.iloc[0, 0] == pytest.approx(vc.sum(), rel=1e-10)


def test_implied_errors(fits):
    r = fits["sleep_slope"]
    with pytest.raises(ModelError, match="no random-effects term is grouped by"):
        r.implied_covariance(group="Patient", level="1")
    with pytest.raises(DataError, match="not in the data"):
        r.implied_covariance(group="Subject", level="999")
    with pytest.raises(ModelError, match="give group and level"):
        r.implied_covariance()
    with pytest.raises(DataError, match="cannot build"):
        r.implied_covariance(newdata=pd.DataFrame({"Hours": [1, 2]}))
