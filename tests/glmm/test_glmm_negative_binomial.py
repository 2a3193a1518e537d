"""The negative binomial NB2 against glmmTMB 1.1.5's ``nbinom2`` (θ estimated with the other parameters) and
lme4's ``glmer.nb`` (tests/reference/glmer.json, made by tests/reference/glmer.R).

glmmTMB's Laplace approximation uses the observed information (the exact Hessian in the random effects),
lme4's the expected one; for NB2's log link, which is not canonical, they differ (logLik −845.8462 against
−845.8316 here). Our default is glmmTMB's; ``information="expected"`` gives glmer.nb's criterion.
"""

from __future__ import annotations

import numpy as np
import pytest
from glmm_refs import FITS, as_list, data

from mixedmodels.glmm import glmer, make_family

REF = FITS["nb2"]


@pytest.fixture(scope="module")
def nb():
    return glmer(REF["formula"], data(REF["data"]), family="nbinom2")


def test_nb2_matches_glmmtmb(nb):
    t = REF["tmb"]
    assert nb.loglik == pytest.approx(t["loglik"], abs=1e-4)
    assert nb.beta == pytest.approx(t["beta"], rel=1e-4)
    assert nb.bse.to_numpy() == pytest.approx(t["se"], rel=1e-4)
    assert nb.theta == pytest.approx(as_list(t["sd"]), rel=1e-3)
    assert nb.dispersion == pytest.approx(t["theta"], rel=1e-3)
    assert nb.npar == t["npar"]
    assert nb.aic == pytest.approx(t["aic"], abs=2e-4)
    assert nb.ranef()["g"].iloc[:5, 0].to_numpy() == pytest.approx(t["ranef"], rel=1e-3, abs=1e-5)


def test_expected_information_matches_glmer_nb():
    """glmer.nb estimates θ by alternating glmer fits at fixed θ with a one-dimensional search, each glmer
    with its default PIRLS tolerance: its logLik is within 5e-4 of the exact criterion (as glmer's), its
    θ and β within 1e-3; its SEs come from the Hessian at fixed θ."""
    g = REF["glmer_nb"]
    m = glmer(REF["formula"], data(REF["data"]), family=make_family("nbinom2", information="expected"))
    assert m.loglik == pytest.approx(g["loglik"], abs=5e-4)
    assert m.dispersion == pytest.approx(g["nb_theta"], rel=1e-3)
    assert m.beta == pytest.approx(g["beta"], rel=1e-3)
    assert m.theta == pytest.approx(as_list(g["theta"]), rel=1e-3)
    assert m.bse.to_numpy() == pytest.approx(g["se"], rel=1e-2)


def test_nb2_summary_names_the_dispersion(nb):
    text = str(nb.summary())
    assert " Family: Negative Binomial(2.537)  ( log )" in text
    assert "Dispersion parameter for nbinom2 family (): 2.54" in text


def test_nb2_dispersion_start_and_fixed_family():
    """A start for θ is accepted; a family at a fixed θ is the same model with one parameter less free."""
    m = glmer(REF["formula"], data(REF["data"]), family="nbinom2", start={"dispersion": 5.0})
    assert m.dispersion == pytest.approx(REF["tmb"]["theta"], rel=1e-3)
    fam = make_family("nbinom2", dispersion=2.0)
    assert fam.with_dispersion(3.0).dispersion == 3.0
    sim = m.simulate(200, seed=1)
    assert sim.shape == (m.nobs, 200) and np.all(sim >= 0) and np.all(sim == np.round(sim))
