"""Residual covariance structures: positive definiteness, pattern, normalisation, inverse maps, names.

Random parameters are drawn from seeds that hypothesis chooses (derandomised in CI, see conftest.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixedmodels.covariance import CAR1, IID, STRUCTURES, ResidualStructure, Toeplitz, Unstructured
from mixedmodels.covariance.transforms import (
    acf_to_pacf,
    corr_to_cpc,
    cpc_to_chol,
    pacf_to_acf,
    shrink_to_pd,
    toeplitz_corr,
)

DISCRETE = [k for k, c in STRUCTURES.items() if c.discrete]


def make(kind: str, size: int, groups: int) -> ResidualStructure:
    cls = STRUCTURES[kind]
    g = None if groups == 1 else [f"g{i}" for i in range(groups)]
    return cls(size if cls.discrete else None, time_name="visit", groups=g, group_name="arm")


def corr_of(c: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.diag(c))
    return c / np.outer(sd, sd)


def check_pattern(s: ResidualStructure, par: np.ndarray, g: int) -> None:
    """The correlation matrix of group ``g`` has the family's pattern."""
    _, _, c = s.split(par, g)
    r = corr_of(s.cov_full(par, g))
    size = s.n_levels
    lag = np.abs(np.subtract.outer(np.arange(size), np.arange(size)))
    off = lag > 0
    if s.kind in ("diag",):
        assert np.allclose(r[off], 0.0)
    elif s.kind in ("ar1", "ar1h"):
        assert np.allclose(r, np.tanh(c[0]) ** lag, atol=1e-12)
    elif s.kind in ("cs", "csh") and size > 1:
        assert np.allclose(r[off], r[off][0]) and r[off][0] > -1.0 / (size - 1)
    elif s.kind in ("toep", "toeph"):
        for k in range(1, size):
            assert np.allclose(np.diagonal(r, -k), np.diagonal(r, -k)[0], atol=1e-12)
    elif s.kind in ("ad", "adh"):
        rho = np.tanh(c)
        for i in range(size):
            for j in range(i):
                assert r[i, j] == pytest.approx(np.prod(rho[j:i]), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(DISCRETE), st.integers(1, 6), st.integers(1, 3), st.integers(0, 2**32 - 1),
       st.sampled_from([0.5, 1.5, 3.0]))
def test_discrete_structures_are_positive_definite_with_their_pattern(kind, size, groups, seed, spread):
    size = max(size, STRUCTURES[kind].min_levels)
    s = make(kind, size, groups)
    par = np.random.default_rng(seed).normal(scale=spread, size=s.npar)
    assert len(s.names) == s.npar == s.n_groups * s.n_core + s.n_groups - 1
    for g in range(s.n_groups):
        c = s.cov_full(par, g)
        assert c.shape == (size, size) and np.allclose(c, c.T)
        assert np.linalg.eigvalsh(c)[0] > 0
        scale, v, _ = s.split(par, g)
        # the first group's scale is fixed: a correlation matrix, or level 1's variance 1
        if s.heterogeneous:
            assert c[0, 0] == pytest.approx(np.exp(2 * scale))
            assert np.sqrt(np.diag(c)[1:] / c[0, 0]) == pytest.approx(np.exp(v))
        else:
            assert np.diag(c) == pytest.approx(np.full(size, np.exp(2 * scale)))
        if g == 0:
            assert scale == 0.0
        check_pattern(s, par, g)
        # subsets, batches, Cholesky factor and log-determinant agree with the full matrix
        times = np.arange(size)[np.random.default_rng(seed + g).random(size) < 0.7]
        if times.size:
            sub = s.cov(par, times, g)
            assert np.allclose(sub, c[np.ix_(times, times)])
            batch = s.cov(par, np.vstack([times, times]), g)
            assert batch.shape == (2, times.size, times.size) and np.allclose(batch[1], sub)
            L = s.chol(par, times, g)
            assert np.allclose(L @ L.T, sub)
            assert s.logdet(par, times, g) == pytest.approx(np.linalg.slogdet(sub)[1])


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(DISCRETE + ["car1", "iid"]), st.integers(2, 6), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_from_covariance_inverts_cov(kind, size, groups, seed):
    s = make(kind, size, groups)
    rng = np.random.default_rng(seed)
    par = rng.normal(size=s.npar)
    sigma2 = float(rng.uniform(0.2, 5.0))
    if s.discrete:
        covs = [sigma2 * s.cov_full(par, g) for g in range(s.n_groups)]
        back, s2 = s.from_covariance(covs)
    else:
        times = np.sort(rng.uniform(0, 10, size))
        covs = [sigma2 * s.cov(par, times, g) for g in range(s.n_groups)]
        back, s2 = s.from_covariance(covs, times=times)
    assert s2 == pytest.approx(sigma2)
    assert back == pytest.approx(par, abs=1e-7)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(DISCRETE), st.integers(2, 5), st.integers(1, 2), st.integers(0, 2**32 - 1))
def test_natural_scale_matches_the_matrix(kind, size, groups, seed):
    s = make(kind, size, groups)
    par = np.random.default_rng(seed).normal(size=s.npar)
    sigma = 1.7
    nat = s.natural(par, sigma)
    assert list(nat.columns) == ["group", "parameter", "value"]
    for g in range(s.n_groups):
        label = "" if s.groups is None else f"arm=g{g}"
        rows = nat[nat.group == label].set_index("parameter")["value"]
        cov = sigma**2 * s.cov_full(par, g)
        pd_cov = s.covariance(par, sigma, g)
        assert np.allclose(pd_cov.to_numpy(), cov) and list(pd_cov.index) == [f"visit{k + 1}" for k in range(size)]
        sds = np.sqrt(np.diag(cov))
        if s.heterogeneous:
            assert rows[[f"sd(visit{k + 1})" for k in range(size)]].to_numpy() == pytest.approx(sds)
        else:
            assert rows["sd"] == pytest.approx(sds[0])
        r = corr_of(cov)
        if kind == "us":
            for i in range(size):
                for j in range(i):
                    assert rows[f"cor(visit{j + 1},visit{i + 1})"] == pytest.approx(r[i, j])
        elif kind in ("ar1", "ar1h", "cs", "csh"):
            assert rows["rho"] == pytest.approx(r[1, 0])
        elif kind in ("toep", "toeph"):
            assert rows[[f"rho(lag{k})" for k in range(1, size)]].to_numpy() == pytest.approx(r[1:, 0])
        elif kind in ("ad", "adh"):
            assert rows[[f"cor(visit{k},visit{k + 1})" for k in range(1, size)]].to_numpy() == pytest.approx(
                np.diagonal(r, -1))


def test_toeplitz_from_a_matrix_outside_the_family_is_positive_definite():
    # a positive-definite correlation matrix whose diagonal means are not a valid Toeplitz correlation
    # (third partial autocorrelation −1.11): mapped to a shrunk valid one
    corr = np.array([[1.0, -0.463, 0.159, -0.753], [-0.463, 1.0, 0.601, 0.821], [0.159, 0.601, 1.0, 0.227],
                     [-0.753, 0.821, 0.227, 1.0]])
    assert np.linalg.eigvalsh(corr)[0] > 0
    s = Toeplitz(4)
    par, sigma2 = s.from_covariance(2.0 * corr)
    assert np.isfinite(par).all() and sigma2 == pytest.approx(2.0)
    np.linalg.cholesky(s.cov_full(par))


def test_names():
    assert Unstructured(3, time_name="visit").names == [
        "sd(visit2)", "sd(visit3)", "cor(visit1,visit2)", "cor(visit1,visit3)", "cor(visit2,visit3)"]
    assert STRUCTURES["ar1h"](["a", "b"], time_name="v").names == ["sd(vb)", "rho"]
    grouped = STRUCTURES["cs"](4, time_name="visit", groups=["PBO", "TRT"], group_name="arm")
    assert grouped.names == ["arm=PBO: rho", "arm=TRT: sd", "arm=TRT: rho"]
    grouped = STRUCTURES["csh"](2, time_name="visit", groups=["PBO", "TRT"], group_name="arm")
    assert grouped.names == ["arm=PBO: sd(visit2)", "arm=PBO: rho", "arm=TRT: sd(visit1)", "arm=TRT: sd(visit2)",
                             "arm=TRT: rho"]
    assert IID().names == [] and IID(groups=["a", "b"]).names == ["group=b: sd"]
    assert CAR1(time_name="week").names == ["phi"]
    assert Toeplitz(3).names == ["rho(lag1)", "rho(lag2)"]


def test_starts_are_zero_correlation_and_unit_sds():
    for cls in STRUCTURES.values():
        s = cls(5 if cls.discrete else None, groups=["a", "b"])
        par = s.start()
        assert par.shape == (s.npar,)
        if cls.discrete:
            for g in range(2):
                assert s.cov_full(par, g) == pytest.approx(np.eye(5), abs=1e-12)
    car1 = CAR1().start()
    assert CAR1().natural(car1)["value"].iloc[-1] == pytest.approx(0.2)


def test_car1_is_phi_to_the_distance_and_batched():
    s = CAR1(groups=["a", "b"])
    par = np.array([0.3, 0.2, -1.0])  # phi_a = logistic(0.3); group b: scale 0.2, phi_b = logistic(-1)
    t = np.array([0.0, 0.5, 2.25, 7.0])
    phi_a, phi_b = 1 / (1 + np.exp(-0.3)), 1 / (1 + np.exp(1.0))
    assert np.allclose(s.cov(par, t, 0), phi_a ** np.abs(np.subtract.outer(t, t)))
    assert np.allclose(s.cov(par, t, 1), np.exp(0.4) * phi_b ** np.abs(np.subtract.outer(t, t)))
    times = np.sort(np.random.default_rng(1).uniform(0, 20, (50, 4)), axis=1)
    batch = s.chol(par, times, 1)
    assert batch.shape == (50, 4, 4)
    assert np.allclose(batch[7] @ batch[7].T, s.cov(par, times[7], 1))
    with pytest.raises(TypeError):
        s.cov_full(par)


def test_iid_is_identity_times_group_scale():
    s = IID(groups=["a", "b"])
    assert np.array_equal(s.cov(np.array([0.5]), np.arange(3), 0), np.eye(3))
    assert np.allclose(s.cov(np.array([0.5]), np.arange(3), 1), np.exp(1.0) * np.eye(3))
    assert s.cov(np.array([0.5]), np.zeros((4, 2)), 1).shape == (4, 2, 2)


def test_extreme_parameters_stay_finite():
    # every real vector is positive definite in exact arithmetic; far out (|z| ≳ 3 for toep, whose
    # determinant is ∏(1 − π_k²)^(T−k)) the matrix is numerically singular and a Cholesky factor may fail,
    # which a criterion reports as +inf (see marginal_criterion)
    for kind in DISCRETE:
        s = make(kind, 6, 2)
        for value in (-2.0, 2.0):
            np.linalg.cholesky(s.cov_full(np.full(s.npar, value), 1))
        for value in (-30.0, 30.0):
            assert np.isfinite(s.cov_full(np.full(s.npar, value), 1)).all()


def test_wrong_parameter_length_is_an_error():
    with pytest.raises(ValueError, match="parameters"):
        Unstructured(3).cov_full(np.zeros(4))


# ------------------------------------------------------------------------------------------------ transforms
@settings(max_examples=50, deadline=None)
@given(st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_partial_autocorrelations_give_positive_definite_toeplitz_and_back(m, seed):
    pacf = np.tanh(np.random.default_rng(seed).normal(scale=1.0, size=m))
    acf = pacf_to_acf(pacf)
    assert np.linalg.eigvalsh(toeplitz_corr(acf, m + 1))[0] > 0
    assert acf_to_pacf(acf) == pytest.approx(pacf, abs=1e-8)


def test_toeplitz_spans_ar_process_correlations():
    # an AR(2) process's autocorrelations (Yule-Walker) have partial autocorrelations (phi1/(1-phi2), phi2, 0, ...)
    phi1, phi2 = 0.5, 0.3
    rho = [1.0, phi1 / (1 - phi2)]
    for _ in range(4):
        rho.append(phi1 * rho[-1] + phi2 * rho[-2])
    pacf = acf_to_pacf(np.array(rho[1:]))
    assert pacf == pytest.approx([phi1 / (1 - phi2), phi2, 0, 0, 0], abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 7), st.integers(0, 2**32 - 1))
def test_canonical_partial_correlations_round_trip(size, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(size, size + 2))
    corr = corr_of(a @ a.T)
    w = cpc_to_chol(corr_to_cpc(corr), size)
    assert np.allclose(w @ w.T, corr)


def test_shrink_to_pd():
    bad = np.array([[1, 0.9, -0.9], [0.9, 1, 0.9], [-0.9, 0.9, 1]])
    good = shrink_to_pd(bad, 0.05)
    assert np.linalg.eigvalsh(good)[0] == pytest.approx(0.05)
    assert shrink_to_pd(np.eye(3)) is not None
