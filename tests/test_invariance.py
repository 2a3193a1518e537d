"""Property tests: fits are invariant to row order and level labels, equivariant under y → a·y + c,
and random designs either fit or raise one of the package's exceptions."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mixedmodels as mm

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def quiet_fit(formula, data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer(formula, data, **kw)


@st.composite
def grouped_data(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ngroups = draw(st.integers(4, 10))
    sizes = rng.integers(2, 9, size=ngroups)
    g = np.repeat(np.arange(ngroups), sizes)
    n = len(g)
    x = rng.normal(size=n)
    b0 = rng.normal(scale=draw(st.floats(0.0, 2.0)), size=ngroups)
    b1 = rng.normal(scale=0.5, size=ngroups)
    y = 1.0 + 0.5 * x + b0[g] + b1[g] * x + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "g": [f"s{v:02d}" for v in g]})


FORMULA = "y ~ x + (1 | g)"


@SETTINGS
@given(grouped_data(), st.integers(0, 2**32 - 1))
def test_row_order_does_not_matter(data, seed):
    perm = np.random.default_rng(seed).permutation(len(data))
    a, b = quiet_fit(FORMULA, data), quiet_fit(FORMULA, data.iloc[perm])
    assert b.objective == pytest.approx(a.objective, rel=1e-9, abs=1e-8)
    np.testing.assert_allclose(b.beta, a.beta, rtol=1e-5, atol=1e-6)
    assert b.sigma == pytest.approx(a.sigma, rel=1e-5)


@SETTINGS
@given(grouped_data(), st.integers(0, 2**32 - 1))
def test_level_labels_do_not_matter(data, seed):
    labels = sorted(data["g"].unique())
    new = dict(zip(labels, np.random.default_rng(seed).permutation([f"L{i}" for i in range(len(labels))])))
    a, b = quiet_fit(FORMULA, data), quiet_fit(FORMULA, data.assign(g=data["g"].map(new)))
    assert b.objective == pytest.approx(a.objective, rel=1e-9, abs=1e-8)
    ra, rb = a.ranef()["g"], b.ranef()["g"]
    np.testing.assert_allclose(rb.loc[[new[k] for k in ra.index]].to_numpy(), ra.to_numpy(), rtol=1e-4, atol=1e-6)


@SETTINGS
@given(grouped_data(), st.floats(0.01, 100.0), st.floats(-1000.0, 1000.0), st.booleans())
def test_affine_response(data, scale, shift, reml):
    a = quiet_fit(FORMULA, data, REML=reml)
    b = quiet_fit(FORMULA, data.assign(y=scale * data["y"] + shift), REML=reml)
    # exactly at any fixed θ: the objective shifts by 2·dof·log a (the Jacobian of y → a·y + c)
    dof = a.nobs - (a.nfixed if reml else 0)
    # (cross-products of an uncentred y lose about (c/a)² ε of relative precision in the residual sum of squares)
    cancellation = 1e-14 * a.nobs * (1.0 + (shift / scale) ** 2)
    assert b.model.objective(a.theta) == pytest.approx(a.objective + 2 * dof * np.log(scale), rel=1e-9, abs=1e-7 + cancellation)
    # at the optimum, up to the optimizer's tolerance: σ and SEs scale by a, β by a with the
    # intercept shifted by c, θ (relative to σ) is unchanged
    assert b.sigma == pytest.approx(scale * a.sigma, rel=2e-3)
    se = b.fixed_effects["Std. Error"].to_numpy()
    assert np.all(np.abs(b.beta - (scale * a.beta + np.array([shift, 0.0]))) <= 1e-2 * se)
    np.testing.assert_allclose(se, scale * a.fixed_effects["Std. Error"], rtol=5e-3)
    np.testing.assert_allclose(b.theta, a.theta, atol=5e-3)
    # the log-likelihood shifts by −n log a (the Jacobian), REML by −(n − p) log a
    assert b.loglik == pytest.approx(a.loglik - dof * np.log(scale), abs=1e-4)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 40),
    st.integers(1, 8),
    st.sampled_from(["y ~ x + (1 | g)", "y ~ x + (x | g)", "y ~ f + (1 | g) + (1 | h)", "y ~ 1 + (1 | g/h)", "y ~ x * f + (x || g)"]),
    st.floats(0.0, 0.5),
)
def test_random_designs_fit_or_raise_our_errors(seed, n, ngroups, formula, missing):
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({
        "y": rng.normal(size=n),
        "x": rng.choice([0.0, 1.0, rng.normal()], size=n),
        "f": rng.choice(["a", "b"], size=n),
        "g": rng.integers(0, ngroups, size=n),
        "h": rng.choice(["p", "q", "r"], size=n),
    })
    data.loc[rng.random(n) < missing, "y"] = np.nan
    try:
        fit = quiet_fit(formula, data)
    except mm.MixedModelsError:
        return
    assert np.isfinite(fit.objective)
    assert fit.nobs + fit.n_dropped == n
