"""Population-averaged (marginal) means and ratios of GLMM fits (mixedmodels.glmm.marginal).

References: tests/reference/glmm_inference.json (R's integrate() over glmer's random-intercept
distribution, emmeans 1.8 on the same tight glmer fit), closed forms for probit and log links, the
mean of responses simulated from the fit, and draws of the parameters for the delta method.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from glmm_refs import REFERENCE
from scipy import integrate
from scipy.special import expit, ndtr

import mixedmodels.datasets as ds
from mixedmodels.exceptions import ModelError
from mixedmodels.glmm import glmer
from mixedmodels.glmm.marginal import gauss_hermite_mean

REF = json.loads((REFERENCE / "glmm_inference.json").read_text())["cbpp"]
CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


@pytest.fixture(scope="module")
def cbpp():
    return glmer(CBPP, ds.load("cbpp"), family="binomial")


@pytest.fixture(scope="module")
def cbpp_me(cbpp):
    return cbpp.marginal_effects("period")


def test_marginal_means_equal_r_integrate(cbpp_me):
    np.testing.assert_allclose(cbpp_me.means["marginal"], REF["marginal"]["prob"], rtol=2e-6)
    np.testing.assert_allclose(cbpp_me.ratios["marginal"], REF["marginal"]["odds_ratio"], rtol=5e-6)
    assert list(cbpp_me.ratios["contrast"]) == REF["marginal"]["contrast"]
    assert cbpp_me.quadrature_error < 1e-12


def test_conditional_columns_are_emmeans_response(cbpp_me):
    resp = pd.DataFrame(REF["emmeans_response"])
    m = cbpp_me.means
    np.testing.assert_allclose(m["conditional"], resp["prob"], rtol=2e-6)
    np.testing.assert_allclose(m["conditional.SE"], resp["SE"], rtol=2e-4)
    np.testing.assert_allclose(m["conditional.LCL"], resp["asymp.LCL"], rtol=2e-4)
    np.testing.assert_allclose(m["conditional.UCL"], resp["asymp.UCL"], rtol=2e-4)
    link = pd.DataFrame(REF["pairs_link"])
    np.testing.assert_allclose(np.log(cbpp_me.ratios["conditional"]), link["estimate"], atol=5e-6)
    np.testing.assert_allclose(cbpp_me.ratios["conditional.SE.log"], link["SE"], rtol=2e-4)


def test_marginal_attenuated_towards_one(cbpp_me):
    r = cbpp_me.ratios
    assert np.all(np.abs(np.log(r["marginal"])) < np.abs(np.log(r["conditional"])))
    assert np.all(cbpp_me.means["marginal"] > cbpp_me.means["conditional"])  # probabilities below 1/2
    text = str(cbpp_me)
    assert "conditional (subject-specific)" in text and "1 / 4" in text


def test_simulated_responses_average_to_the_marginal_means(cbpp, cbpp_me):
    # E[y_i] over new random effects is the marginal mean of row i's period (one random intercept)
    d = ds.load("cbpp")
    sims = cbpp.simulate(4000, seed=11)
    for level, expected in zip(cbpp_me.means["period"], cbpp_me.means["marginal"]):
        rows = (d["period"].astype(str) == level).to_numpy()
        per_sim = sims[rows].mean(axis=0)
        mc_se = per_sim.std(ddof=1) / np.sqrt(per_sim.size)
        assert abs(per_sim.mean() - expected) < 4 * mc_se
    # and not the conditional means: the test can tell them apart
    rows = (d["period"].astype(str) == "1").to_numpy()
    assert abs(sims[rows].mean() - cbpp_me.means["conditional"][0]) > 8 * sims[rows].mean(axis=0).std(ddof=1) / np.sqrt(4000)


def test_delta_method_against_parameter_draws(cbpp_me):
    rng = np.random.default_rng(3)
    draws = rng.multivariate_normal(cbpp_me._phi, cbpp_me._V, size=4000)
    vals = np.array([cbpp_me._evaluate(p) for p in draws])
    n = len(cbpp_me.levels)
    m = cbpp_me.means["marginal"].to_numpy()
    # on the logit scale of the intervals, where the mean is nearly linear in the parameters
    logit_sd = np.log(vals[:, n:] / (1 - vals[:, n:])).std(axis=0)
    np.testing.assert_allclose(logit_sd, cbpp_me.means["marginal.SE"] / (m * (1 - m)), rtol=0.05)
    assert "(θ, β)" in cbpp_me.uncertainty


def _simulated(seed: int, link: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ng, m = 40, 15
    g = np.repeat(np.arange(ng), m)
    x = rng.uniform(-1, 1, ng * m)
    arm = np.where(rng.uniform(size=ng * m) < 0.5, "A", "B")
    b0, b1 = rng.normal(0, 0.8, ng), rng.normal(0, 0.5, ng)
    eta = -0.3 + 0.7 * (arm == "B") + 0.5 * x + b0[g] + b1[g] * x
    p = ndtr(eta) if link == "probit" else expit(eta)
    return pd.DataFrame({"g": [f"g{i}" for i in g], "x": x, "arm": arm, "y": rng.binomial(1, p)})


@pytest.mark.parametrize("link", ["probit", "logit"])
def test_random_slopes_closed_form_and_quadrature(link):
    d = _simulated(7, link)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = glmer("y ~ arm + x + (1 + x | g)", d, family="binomial", link=link)
    me = f.marginal_effects("arm")
    S = f.covariances[0].to_numpy()
    z = np.array([1.0, d["x"].mean()])  # the grid's x is its mean
    s = float(np.sqrt(z @ S @ z))
    b = f.beta
    eta = b[0] + np.array([0.0, b[1]]) + b[2] * d["x"].mean()
    if link == "probit":
        expected = ndtr(eta / np.sqrt(1 + s * s))
        np.testing.assert_allclose(me.means["marginal"], expected, rtol=1e-12)
    else:
        expected = [integrate.quad(lambda t, e=e: expit(e + s * t) * np.exp(-t * t / 2) / np.sqrt(2 * np.pi),
                                   -np.inf, np.inf, epsabs=1e-14, epsrel=1e-12)[0] for e in eta]
        np.testing.assert_allclose(me.means["marginal"], expected, rtol=1e-10)
    np.testing.assert_allclose(me.means["conditional"], f.family.link.linkinv(eta), rtol=1e-12)


def test_log_link_rate_ratio_is_collapsible():
    d = pd.read_csv(REFERENCE / "data" / "glmm_nb.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = glmer("y ~ x + f + (1 | g)", d, family="poisson")
    me = f.marginal_effects("f")
    s2 = float(f.covariances[0].to_numpy()[0, 0])
    # log link: the marginal mean is exp(η + s²/2), so ratios are the conditional ones
    np.testing.assert_allclose(me.means["marginal"], me.means["conditional"] * np.exp(s2 / 2), rtol=1e-10)
    np.testing.assert_allclose(me.ratios["marginal"], me.ratios["conditional"], rtol=1e-10)
    assert me.ratio_name == "ratio"


def test_gauss_hermite_mean_identity_link_and_errors(cbpp):
    np.testing.assert_allclose(gauss_hermite_mean(lambda e: e, np.array([0.3, -1.0]), np.array([2.0, 0.5])), [0.3, -1.0])
    with pytest.raises(ModelError, match="not a variable"):
        cbpp.marginal_effects("herd")
    with pytest.raises(ModelError, match="level must be"):
        cbpp.marginal_effects("period", level=1.5)


def test_covariate_is_refused():
    d = _simulated(7, "logit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = glmer("y ~ arm + x + (1 | g)", d, family="binomial")
    with pytest.raises(ModelError, match="one value in the reference grid"):
        f.marginal_effects("x")
