"""Profile, Wald and bootstrap intervals against lme4's confint (tests/reference/inference.R)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels.exceptions import ModelError
from mixedmodels.inference.confint import VarianceParameters

REF = json.loads((Path(__file__).parents[1] / "reference" / "inference.json").read_text())["confint"]
# lme4 interpolates its profile with splines; we solve zeta(x) = ±1.96 exactly, so allow 1e-3
PROFILE_RTOL = 1e-3


@pytest.fixture(scope="module")
def fits():
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key, e in REF.items():
            out[key] = mm.lmer(e["formula"], mm.datasets.load(e["model"]), REML=e["REML"])
    return out


@pytest.fixture(scope="module")
def profiles(fits):
    return {key: fits[key].profile() for key in REF}


def _arr(v):
    return np.array([np.nan if x is None else x for x in np.atleast_1d(v)], dtype=float)


@pytest.mark.parametrize("key", list(REF))
def test_profile_matches_lme4(profiles, key):
    ref = REF[key]["profile"]
    ci, _ = profiles[key]
    assert list(ci.index) == list(np.atleast_1d(ref["parameter"]))
    lo, hi = _arr(ref["lower"]), _arr(ref["upper"])
    # a lower end at the boundary is 0 in both
    np.testing.assert_allclose(ci.iloc[:, 0], lo, rtol=PROFILE_RTOL, atol=1e-6)
    np.testing.assert_allclose(ci.iloc[:, 1], hi, rtol=PROFILE_RTOL, atol=1e-6)


@pytest.mark.parametrize("key", list(REF))
def test_wald_matches_lme4(fits, key):
    ref = REF[key]["wald"]
    ci = fits[key].confint("wald")
    np.testing.assert_allclose(ci.iloc[:, 0], _arr(ref["lower"]), rtol=1e-5)
    np.testing.assert_allclose(ci.iloc[:, 1], _arr(ref["upper"]), rtol=1e-5)


def test_profile_traces_are_monotone(profiles):
    _, prof = profiles["sleepstudy"]
    frame = prof.frame()
    assert set(frame["parameter"]) == {".sig01", ".sig02", ".sig03", ".sigma", "(Intercept)", "Days"}
    for _, grp in frame.groupby("parameter"):
        z = grp.sort_values("value")["zeta"].to_numpy()
        assert np.all(np.diff(z) > -1e-6)


def test_variance_parameter_map_roundtrip(fits):
    r = fits["sleepstudy"]
    vp = VarianceParameters(r)
    phi = vp.to_phi(r.theta, r.sigma)
    theta, sigma = vp.to_theta(phi)
    np.testing.assert_allclose(theta, r.theta, rtol=1e-12)
    assert sigma == r.sigma
    vc = r.varcorr
    np.testing.assert_allclose(phi, vc["sdcor"].to_numpy()[[0, 2, 1, 3]], rtol=1e-12)


def test_boot_intervals_cover_estimates(fits):
    r = fits["sleepstudy"]
    ci = r.confint("boot", nsim=60, seed=11)
    a = r.confint("boot", nsim=60, seed=11, n_jobs=2)
    assert ci.equals(a)
    est = np.r_[VarianceParameters(r).to_phi(r.theta, r.sigma), r.beta]
    assert np.all(ci.iloc[:, 0].to_numpy() < est) and np.all(est < ci.iloc[:, 1].to_numpy())


def test_bad_arguments(fits):
    with pytest.raises(ModelError, match="level"):
        fits["dyestuff"].confint("wald", level=1.5)
    with pytest.raises(ModelError, match="unknown interval method"):
        fits["dyestuff"].confint("jackknife")
