"""simulate(), refit() and the parametric bootstrap."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels.exceptions import MixedModelsError, ModelError
from mixedmodels.inference.bootstrap import parametric_bootstrap


@pytest.fixture(scope="module")
def data():
    return mm.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def fit(data):
    return mm.lmer("Reaction ~ Days + (Days|Subject)", data)


def test_simulate_shape_and_seed(fit):
    a = fit.simulate(5, seed=1)
    assert a.shape == (fit.nobs, 5)
    assert np.array_equal(a, fit.simulate(5, seed=1))
    assert not np.array_equal(a, fit.simulate(5, seed=2))


def test_simulated_moments(fit):
    # the marginal covariance of y within a subject is Z G Z' + σ² I
    Y = fit.simulate(4000, seed=3)
    days = fit.model.design.X[:10, 1]
    G = fit.covariances[0].to_numpy()
    Z = np.column_stack([np.ones(10), days])
    V = Z @ G @ Z.T + fit.sigma**2 * np.eye(10)
    S = np.cov(Y[:10])
    assert np.max(np.abs(S - V) / V.max()) < 0.08
    np.testing.assert_allclose(Y.mean(axis=1), fit.fitted_fixed, atol=4 * np.sqrt(V.max() / 4000))


def test_refit_equals_fresh_fit(fit, data):
    y = fit.simulate(1, seed=4)[:, 0]
    a = fit.refit(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = mm.lmer("Reaction ~ Days + (Days|Subject)", data.assign(Reaction=y))
    assert a.loglik == pytest.approx(b.loglik, abs=1e-6)
    np.testing.assert_allclose(a.beta, b.beta, rtol=1e-6)
    np.testing.assert_allclose(a.varcorr["vcov"], b.varcorr["vcov"], rtol=1e-3)
    # the original fit is untouched
    assert fit.loglik == pytest.approx(-871.8141, abs=1e-3)


def test_refit_checks_response(fit):
    with pytest.raises(ModelError, match="observations"):
        fit.refit(np.ones(3))
    y = np.full(fit.nobs, 1.0)
    y[0] = np.nan
    with pytest.raises(ModelError, match="missing"):
        fit.refit(y)


def test_refit_ml_matches_ml_fit(fit, data):
    ml = mm.lmer("Reaction ~ Days + (Days|Subject)", data, REML=False)
    assert fit.refit_ml().loglik == pytest.approx(ml.loglik, abs=1e-6)


def test_bootstrap_reproducible_and_parallel(fit):
    stat = lambda f: np.r_[f.beta, f.sigma]  # noqa: E731
    a = parametric_bootstrap(fit, stat, 30, seed=7)
    b = parametric_bootstrap(fit, stat, 30, seed=7, n_jobs=2)
    assert a.shape == (30, 3)
    np.testing.assert_array_equal(a, b)
    # bootstrap means are within Monte-Carlo error of the estimates
    se = a.std(axis=0) / np.sqrt(len(a))
    assert np.all(np.abs(a.mean(axis=0) - np.r_[fit.beta, fit.sigma]) < 4.5 * se)


def test_bootstrap_bad_nsim(fit):
    with pytest.raises(MixedModelsError, match="nsim"):
        parametric_bootstrap(fit, lambda f: f.sigma, 0)


def test_progress_bar_only_when_asked_or_on_a_terminal(fit, capsys):
    parametric_bootstrap(fit, lambda f: f.sigma, 5, seed=1)  # stderr is not a terminal under pytest
    assert capsys.readouterr().err == ""
    parametric_bootstrap(fit, lambda f: f.sigma, 5, seed=1, progress=True)
    assert "bootstrap" in capsys.readouterr().err
    fit.confint("boot", nsim=5, seed=1, progress=False)
    assert capsys.readouterr().err == ""


def test_cli_quiet_has_no_progress(capsys):
    from mixedmodels.cli import main

    code = main(["fit", "Dyestuff", "-f", "Yield ~ 1 + (1|Batch)", "--ci", "boot", "--nsim", "5", "--quiet", "--json"])
    assert code == 0 and capsys.readouterr().err == ""
