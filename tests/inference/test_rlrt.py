"""Exact restricted LRT (mixedmodels.inference.rlrt) against RLRsim's exactRLRT and the spectral formula.

References: tests/reference/rlrt.json, written by tests/reference/rlrt.R (RLRsim, nsim = 200000).
"""

from __future__ import annotations

import copy
import json
import math

import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels.engine.crossprod import z_matrix
from mixedmodels.exceptions import ConvergenceWarning, ModelError
from mixedmodels.inference.rlrt import (
    RLRTResult,
    exact_rlrt,
    lambda_grid,
    null_eigenvalues,
    null_statistics,
    simulate_null,
)

REF = json.loads((Path(__file__).parents[1] / "reference" / "rlrt.json").read_text())["cases"]
SINGLE = [k for k, c in REF.items() if "formula" in c]
NSIM, SEED = 10000, 20240


@lru_cache(maxsize=None)
def _fit(dataset: str, formula: str, reml: bool = True):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer(formula, mm.datasets.load(dataset), REML=reml)


def _models(key: str) -> tuple:
    c = REF[key]
    if "formula" in c:
        return (_fit(c["dataset"], c["formula"]),)
    return tuple(_fit(c["dataset"], c[k]) for k in ("alt", "null", "single"))


@lru_cache(maxsize=None)
def _test(key: str, nsim: int = NSIM, seed: int = SEED) -> RLRTResult:
    return exact_rlrt(*_models(key), nsim=nsim, seed=seed)


def _mc_tol(p: float, n: int) -> float:
    """Four Monte-Carlo standard errors of a proportion near ``p`` estimated from ``n`` draws, plus 1e-3."""
    return 4 * math.sqrt(p * (1 - p) / n) + 1e-3


def _null_mu(key: str) -> tuple[np.ndarray, int, int]:
    single = _models(key)[-1]
    X = single.model.design.X
    return null_eigenvalues(X, z_matrix(single.model.terms[0])), X.shape[0], X.shape[1]


# ---------------------------------------------------------------------------------------------- RLRsim


@pytest.mark.parametrize("key", list(REF))
def test_statistic_matches_rlrsim(key):
    ref = REF[key]["statistic"]
    assert abs(_test(key).statistic - ref) <= max(1e-4, 1e-5 * abs(ref))


@pytest.mark.parametrize("key", SINGLE)
def test_null_is_the_linear_model_reml_loglik(key):
    # ℓ_R(null) = -½ REML criterion at θ = 0 = R's logLik(lm(...), REML = TRUE)
    fit = _models(key)[0]
    null = -0.5 * fit.model.objective(np.zeros(fit.theta.size))
    assert null == pytest.approx(REF[key]["reml_null"], rel=1e-9, abs=1e-7)
    assert fit.loglik == pytest.approx(REF[key]["reml_alt"], rel=1e-7)


@pytest.mark.parametrize("key", [k for k in REF if k != "dyestuff2"])
def test_p_value_within_monte_carlo_error(key):
    ref = REF[key]["p_value"]
    res = _test(key)
    assert res.nsim == NSIM and res.sample.shape == (NSIM,)
    assert abs(res.p_value - ref) < _mc_tol(ref, NSIM), (res.p_value, ref)


@pytest.mark.parametrize("key", [k for k in REF if k != "dyestuff2"])
def test_simulated_null_matches_rlrsim(key):
    # point mass at 0 (more than half the draws) and the null CDF at RLRsim's 90/95/99% quantiles
    ref, sample = REF[key], _test(key).sample
    zero = float(np.mean(sample == 0))
    assert 0.5 < zero < 0.6
    assert abs(zero - ref["mass_at_zero"]) < _mc_tol(ref["mass_at_zero"], NSIM)
    for level, q in zip((0.9, 0.95, 0.99), ref["quantiles"][1:]):
        assert abs(np.mean(sample <= q) - level) < _mc_tol(level, NSIM), (level, q)


def test_zero_statistic_is_not_simulated():
    # Dyestuff2: the variance estimate is 0, so the statistic is 0 and p = 1 (RLRsim's statistic is 6e-14
    # from rounding; it then simulates and reports P(RLRT* > 0) = 1 − its point mass at 0)
    res = _test("dyestuff2")
    assert res.statistic == 0.0 and res.p_value == 1.0 and res.nsim == 0 and res.sample.size == 0
    ref = REF["dyestuff2"]
    assert ref["p_value"] == pytest.approx(1 - ref["mass_at_zero"], abs=1e-12)
    mu, n, p = _null_mu("dyestuff2")
    sample = simulate_null(mu, n, p, NSIM, np.random.default_rng(1))
    assert abs(np.mean(sample > 0) - ref["p_value"]) < _mc_tol(ref["p_value"], NSIM)


# ---------------------------------------------------------------------------------------------- reproducibility


def test_same_seed_same_result_and_other_seed_differs():
    a, b = _test("dyestuff", 2000, 7), exact_rlrt(*_models("dyestuff"), nsim=2000, seed=7)
    assert a.p_value == b.p_value and np.array_equal(a.sample, b.sample)
    assert a == b  # the sample does not take part in ==
    c = exact_rlrt(*_models("dyestuff"), nsim=2000, seed=8)
    assert not np.array_equal(a.sample, c.sample)


def test_finer_grid_uses_the_same_draws():
    # one seed gives the same random numbers whatever the grid: a 4x finer grid moves each draw only a little
    models = _models("pastes_batch")
    coarse = exact_rlrt(*models, nsim=3000, seed=3)
    fine = exact_rlrt(*models, nsim=3000, seed=3, log_grid=800)
    assert np.array_equal(coarse.sample == 0, fine.sample == 0)
    assert np.all(fine.sample >= coarse.sample - 1e-3)
    assert np.quantile(np.abs(fine.sample - coarse.sample), 0.99) < 1e-2


def test_result_dict_and_text():
    res = _test("dyestuff")
    assert res.to_dict() == {"statistic": res.statistic, "p_value": res.p_value, "nsim": NSIM, "seed": SEED}
    json.dumps(res.to_dict())
    text = str(res)
    assert "RLRT = 6.3690" in text and f"{NSIM} simulated values" in text


def test_alternative_worse_than_null_warns_and_clips():
    fit = copy.copy(_models("dyestuff2")[0])
    fit.objective += 10.0  # as if the optimiser had stopped 5 log-likelihood units short
    with pytest.warns(ConvergenceWarning, match="may not have converged"):
        res = exact_rlrt(fit)
    assert res.statistic == 0.0 and res.p_value == 1.0


# ---------------------------------------------------------------------------------------------- the spectral formula


def _loop_rlrsim(mu, n, p, chi1, rest, grid):
    """Draw by draw, grid point by grid point: follow the profile from λ = 0 while it does not decrease."""
    out = []
    for w, W in zip(chi1, rest):
        best = 0.0
        for lam in grid:
            N = sum(lam * m / (1 + lam * m) * x for m, x in zip(mu, w))
            D = sum(x / (1 + lam * m) for m, x in zip(mu, w)) + W
            lr = (n - p) * math.log1p(N / D) - sum(math.log1p(lam * m) for m in mu)
            if lr < best:
                break
            best = lr
        out.append(best)
    return np.array(out)


@pytest.mark.parametrize("key", ["dyestuff", "sleep_slope_only"])
def test_vectorised_profile_equals_plain_loop(key):
    mu, n, p = _null_mu(key)
    rng = np.random.default_rng(11)
    chi1, rest = rng.chisquare(1, size=(150, mu.size)), rng.chisquare(n - p - mu.size, size=150)
    grid = lambda_grid(length=60)
    vectorised = null_statistics(mu, n, p, chi1, rest, grid, refine=False)
    np.testing.assert_allclose(vectorised, _loop_rlrsim(mu, n, p, chi1, rest, grid), rtol=1e-10, atol=1e-12)
    assert np.all(null_statistics(mu, n, p, chi1, rest, grid) >= vectorised)


def test_balanced_one_way_matches_closed_form_supremum():
    # μ = (1, …, 1, 0): the profile has one maximum, at λ̂ = max(0, F − 1) with F the ANOVA F ratio
    # (Crainiceanu & Ruppert 2004, section 3), where the statistic has a closed form; the refined
    # grid maximum reaches it.
    K, per = 8, 4
    n, p = K * per, 1
    X = np.ones((n, 1))
    Z = np.kron(np.eye(K), np.ones((per, 1)))
    mu = null_eigenvalues(X, Z)
    np.testing.assert_allclose(mu, [1.0] * (K - 1) + [0.0], atol=1e-12)
    rng = np.random.default_rng(5)
    chi1, rest = rng.chisquare(1, size=(4000, K)), rng.chisquare(n - p - K, size=4000)
    got = null_statistics(mu, n, p, chi1, rest)
    grid_only = null_statistics(mu, n, p, chi1, rest, refine=False)
    a, b = K - 1, n - p - K + 1
    wa, wb = chi1[:, : K - 1].sum(axis=1), chi1[:, K - 1] + rest
    F = (wa / a) / (wb / b)
    exact = np.where(F > 1, (n - p) * np.log((wa + wb) / (n - p)) - b * np.log(wb / b) - a * np.log(wa / a), 0.0)
    inside = F < math.exp(7.0)  # the grid stops at e^8
    assert np.array_equal(got[inside] == 0, F[inside] <= 1)
    np.testing.assert_allclose(got[inside], exact[inside], rtol=1e-9, atol=1e-9)
    # RLRsim's grid alone stays below the supremum, by a few thousandths at most
    assert np.all(grid_only <= got + 1e-12) and np.max(got - grid_only) < 5e-3


def test_null_eigenvalues_match_the_dense_projection():
    rng = np.random.default_rng(2)
    n, q = 40, 7
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    Z = rng.normal(size=(n, q)) * (rng.random((n, q)) < 0.4)
    P0 = np.eye(n) - X @ np.linalg.pinv(X)
    dense = np.sort(np.linalg.eigvalsh(Z.T @ P0 @ Z))[::-1]
    np.testing.assert_allclose(null_eigenvalues(X, Z), dense / dense[0], atol=1e-12)
    # a reparametrised X spans the same space; permuted columns of Z give the same random effect
    A = np.array([[1.0, 2.0, -1.0], [0.0, 3.0, 1.0], [0.0, 0.0, 0.5]])
    np.testing.assert_allclose(null_eigenvalues(X @ A, Z[:, ::-1]), dense / dense[0], atol=1e-12)


# ---------------------------------------------------------------------------------------------- errors


def test_errors():
    ss = "sleepstudy"
    one = _fit(ss, "Reaction ~ Days + (1 | Subject)")
    two = _fit(ss, "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)")
    slope = _fit(ss, "Reaction ~ Days + (0 + Days | Subject)")
    with pytest.raises(ModelError, match="ML"):
        exact_rlrt(_fit(ss, "Reaction ~ Days + (1 | Subject)", reml=False))
    with pytest.raises(ModelError, match="ML"):
        exact_rlrt(two, _fit(ss, "Reaction ~ Days + (1 | Subject)", reml=False), slope)
    with pytest.raises(ModelError, match="2 correlated effects"):
        exact_rlrt(_fit(ss, "Reaction ~ Days + (Days | Subject)"))
    with pytest.raises(ModelError, match="exactly one random-effects term"):
        exact_rlrt(two)
    with pytest.raises(ModelError, match="give both"):
        exact_rlrt(two, one)
    with pytest.raises(ModelError, match="give both"):
        exact_rlrt(two, model_single=slope)
    with pytest.raises(ModelError, match="exactly one random-effects term"):
        exact_rlrt(two, one, two)
    with pytest.raises(ModelError, match="2 more parameters"):
        exact_rlrt(_fit(ss, "Reaction ~ Days + (Days | Subject)"), one, slope)
    with pytest.raises(ModelError, match="not a term of model_alt"):
        exact_rlrt(two, slope, _fit(ss, "Reaction ~ Days + (1 | Days)"))
    with pytest.raises(ModelError, match="also a term of model_null"):
        exact_rlrt(two, slope, slope)
    with pytest.raises(ModelError, match="other fixed effects"):
        exact_rlrt(two, _fit(ss, "Reaction ~ 1 + (1 | Subject)"), slope)
    with pytest.raises(ModelError, match="same observations"):
        exact_rlrt(two, _fit(ss, "log(Reaction) ~ Days + (1 | Subject)"), slope)
    with pytest.raises(ModelError, match="fitted linear mixed model"):
        exact_rlrt("not a model")
    with pytest.raises(ModelError, match="nsim"):
        exact_rlrt(one, nsim=0)
    with pytest.raises(ModelError, match="log_grid"):
        exact_rlrt(one, log_grid=1)
