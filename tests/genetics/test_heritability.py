"""Heritability of known-covariance terms: estimate, delta-method SE, profile and bootstrap intervals, and
the tests of σ²_g = 0."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

import mixedmodels as mm
from mixedmodels.exceptions import ModelError
from mixedmodels.genetics.heritability import _H2Profile, genetic_variance_test, heritability_values


def _grm(rng: np.random.Generator, q: int, m: int) -> np.ndarray:
    G = rng.binomial(2, rng.uniform(0.1, 0.5, m), size=(q, m)).astype(float)
    G = G[:, G.std(axis=0) > 0]
    G = (G - G.mean(axis=0)) / G.std(axis=0)
    return G @ G.T / G.shape[1]


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(2024)
    q = 300
    K = _grm(rng, q, 500)
    ids = [f"i{j:03d}" for j in range(q)]
    L = np.linalg.cholesky(K + 1e-6 * np.eye(q))
    fam = np.arange(q) // 8
    frame = pd.DataFrame({"id": ids, "x": rng.standard_normal(q), "fam": [f"f{f}" for f in fam]})
    frame["y"] = 1 + frame.x + 1.5 * L @ rng.standard_normal(q) + 0.6 * rng.standard_normal(fam.max() + 1)[fam]
    frame["y"] += rng.standard_normal(q)
    return frame, pd.DataFrame(K, index=ids, columns=ids)


def test_estimate_is_the_variance_share(data) -> None:
    frame, K = data
    fit = mm.lmer("y ~ x + (1 | id)", frame, covariance={"id": K})
    vg, ve = fit.varcorr["vcov"].to_numpy()
    m = np.mean(np.diag(K.loc[list(fit.terms[0].levels), list(fit.terms[0].levels)]))
    lam = vg / ve  # GEMMA's λ; pve = trace_G λ / (trace_G λ + 1), trace_G = tr(K)/n
    assert fit.heritability()["h2"].iloc[0] == pytest.approx(m * lam / (m * lam + 1.0), rel=1e-12)
    two = mm.lmer("y ~ x + (1 | id) + (1 | fam)", frame, covariance={"id": K})
    vg2, vf, ve2 = two.varcorr["vcov"].to_numpy()
    assert heritability_values(two)[0] == pytest.approx(m * vg2 / (m * vg2 + vf + ve2), rel=1e-12)


def test_delta_method_se_from_the_curvature_in_lambda(data) -> None:
    frame, K = data
    fit = mm.lmer("y ~ x + (1 | id)", frame, covariance={"id": K})
    path = fit.model._spectral
    lam = fit.theta[0] ** 2
    m = heritability_values(fit)[0] / (lam * (1 - heritability_values(fit)[0]))  # h = mλ/(mλ + 1)

    def loglik(l: float) -> float:
        return -0.5 * path.objective(math.sqrt(l))

    step = 1e-4 * lam
    d2 = (loglik(lam + step) - 2 * loglik(lam) + loglik(lam - step)) / step**2
    se_lam = math.sqrt(-1.0 / d2)
    want = m / (m * lam + 1.0) ** 2 * se_lam  # GEMMA's se(pve)
    assert fit.heritability()["se"].iloc[0] == pytest.approx(want, rel=1e-4)


def test_profile_interval_single_term(data) -> None:
    frame, K = data
    fit = mm.lmer("y ~ x + (1 | id)", frame, covariance={"id": K})
    table = fit.heritability("profile", level=0.9)
    h, lo, hi = table.loc["id", ["h2", "lower", "upper"]]
    assert 0 < lo < h < hi < 1
    m = h / (fit.theta[0] ** 2 * (1 - h))
    crit = stats.chi2.ppf(0.9, 1)
    for end in (lo, hi):
        theta = math.sqrt(end / (m * (1 - end)))
        assert fit.model.criterion_at(np.array([theta])) - fit.objective == pytest.approx(crit, abs=1e-6)


def test_profile_interval_with_another_term(data) -> None:
    frame, K = data
    fit = mm.lmer("y ~ x + (1 | id) + (1 | fam)", frame, covariance={"id": K})
    table = fit.heritability("profile")
    h, lo, hi = table.loc["id", ["h2", "lower", "upper"]]
    assert lo < h < hi
    prof = _H2Profile(fit, 0)
    crit = stats.chi2.ppf(0.95, 1)
    m = prof.m_k

    def brute(target: float) -> float:  # minimise over θ_fam directly, θ_id from the constraint
        def f(t_fam: float) -> float:
            t_id = math.sqrt(target * (t_fam**2 + 1.0) / ((1.0 - target) * m))
            return fit.model.criterion_at(np.array([t_id, t_fam]))

        return optimize.minimize_scalar(f, bounds=(0.0, 5.0), method="bounded", options={"xatol": 1e-10}).fun

    for end in (lo, hi):
        if 0.0 < end < 1.0:
            assert brute(end) - fit.objective == pytest.approx(crit, abs=1e-5)
    assert brute(h) - fit.objective == pytest.approx(0.0, abs=1e-6)


def test_bootstrap_interval_is_reproducible(data) -> None:
    frame, K = data
    fit = mm.lmer("y ~ x + (1 | id)", frame, covariance={"id": K})
    a = fit.heritability("boot", nsim=40, seed=5)
    b = fit.heritability("boot", nsim=40, seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert a["lower"].iloc[0] < a["h2"].iloc[0] < a["upper"].iloc[0]


def test_errors(data) -> None:
    frame, K = data
    plain = mm.lmer("y ~ x + (1 | fam)", frame)
    with pytest.raises(ModelError, match="needs a term with a known covariance"):
        plain.heritability()
    fit = mm.lmer("y ~ x + (1 | id)", frame, covariance={"id": K})
    with pytest.raises(ModelError, match="unknown interval method"):
        fit.heritability("wald")
    with pytest.raises(ModelError, match="fit by REML"):
        genetic_variance_test(mm.lmer("y ~ x + (1 | id)", frame, covariance={"id": K}, REML=False))


def test_genetic_variance_tests(data) -> None:
    frame, K = data
    fit = mm.lmer("y ~ x + (1 | id)", frame, covariance={"id": K})
    res = genetic_variance_test(fit, nsim=5000, seed=1)
    null = -0.5 * fit.model.criterion_at(np.zeros(1))
    assert res.statistic == pytest.approx(2 * (fit.loglik - null), rel=1e-10)
    assert res.p_chibar2 == pytest.approx(0.5 * stats.chi2.sf(res.statistic, 1), rel=1e-12)
    chibar = genetic_variance_test(fit, method="chibar2")
    assert chibar.p_value == chibar.p_chibar2 and chibar.nsim == 0
    # with a family term: the null refit keeps (1 | fam)
    two = mm.lmer("y ~ x + (1 | id) + (1 | fam)", frame, covariance={"id": K})
    res2 = genetic_variance_test(two, nsim=2000, seed=1)
    null2 = mm.lmer("y ~ x + (1 | fam)", frame)
    assert res2.statistic == pytest.approx(2 * (two.loglik - null2.loglik), rel=1e-6)
    assert 0.0 <= res2.p_value <= 1.0 and res2.nsim == 2000
