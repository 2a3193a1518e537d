"""The Laplace and quadrature deviances against brute force on small random designs.

For given (θ, β) the brute force finds the mode of ``Σ devres + ‖u‖²`` by dense Newton steps on the full
``n × q`` matrix ``ZΛ`` and evaluates ``log det(Λ'Z'WZΛ + I) + ‖û‖² + aic`` with dense linear algebra (W the
expected information, as lme4; the observed one for NB2, as glmmTMB). The quadrature deviance of one scalar
term is checked against numerical integration of each level's integral, and with the one-point rule it
is the Laplace deviance less ``aic − Σ devres``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.integrate import quad

from mixedmodels.glmm import GeneralizedLinearMixedModel
from mixedmodels.glmm.objective import agq_deviance, laplace_deviance

FAMILIES = [("binomial", "logit"), ("binomial", "probit"), ("binomial", "cloglog"), ("poisson", "log"), ("nbinom2", "log")]


def _data(seed: int, n_g: int, n_h: int, per: int, family: str, slope: bool, crossed: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_g * per
    g = np.repeat(np.arange(n_g), per)
    h = rng.integers(0, n_h, n) if crossed else g % n_h
    x = rng.normal(size=n)
    f = rng.choice(["a", "b"], n)
    eta = 0.2 + 0.5 * x + rng.normal(0, 0.7, n_g)[g] + (rng.normal(0, 0.3, n_g)[g] * x if slope else 0)
    if family == "binomial":
        trials = rng.integers(1, 6, n)
        y = rng.binomial(trials, 1 / (1 + np.exp(-eta)))
        out = {"s": y, "fl": trials - y}
    else:
        y = rng.poisson(np.exp(eta))
        out = {"y": y}
    return pd.DataFrame({**out, "x": x, "f": f, "g": [f"g{v}" for v in g], "h": [f"h{v}" for v in h]})


def _model(frame: pd.DataFrame, family: str, link: str, slope: bool, crossed: bool) -> GeneralizedLinearMixedModel:
    lhs = "cbind(s, fl)" if family == "binomial" else "y"
    rand = "(1 + x | g)" if slope else "(1 | g)"
    if crossed:
        rand += " + (1 | h)"
    return GeneralizedLinearMixedModel.from_formula(f"{lhs} ~ x + f + {rand}", frame, family=family, link=link)


def _dense_laplace(model: GeneralizedLinearMixedModel, theta: np.ndarray, beta: np.ndarray) -> float:
    """Dense Newton for the mode, then the Laplace formula, independent of the blocked engine."""
    fam, r = model.family, model.response
    y, wt = r.y, r.wt
    cols = []
    lams = []
    start = 0
    for t in model.terms:
        k = t.ntheta
        lams.append(t.lambda_matrix(theta[start : start + k]))
        start += k
        Z = np.zeros((len(y), t.q))
        for a in range(t.p):
            Z[np.arange(len(y)), t.refs * t.p + a] = t.z[:, a]
        cols.append(Z)
    Z = np.hstack(cols)
    Lam = np.zeros((Z.shape[1], Z.shape[1]))
    pos = 0
    for t, lam in zip(model.terms, lams):
        for lv in range(t.nlevels):
            Lam[pos + lv * t.p : pos + (lv + 1) * t.p, pos + lv * t.p : pos + (lv + 1) * t.p] = lam
        pos += t.q
    ZL = Z @ Lam
    fixed = model.design.X @ beta + model.offset

    def pdev(u):
        mu = fam.link.linkinv(fixed + ZL @ u)
        return float(np.sum(fam.dev_resids(y, mu, wt)) + u @ u)

    u = np.zeros(ZL.shape[1])
    for _ in range(200):
        eta = fixed + ZL @ u
        mu = fam.link.linkinv(eta)
        w = fam.weights(y, eta, mu, wt, "observed")
        grad = -ZL.T @ fam.score(y, eta, mu, wt) + u  # half the gradient of pdev
        H = ZL.T @ (w[:, None] * ZL) + np.eye(len(u))
        step = np.linalg.solve(H, grad)
        t = 1.0
        while pdev(u - t * step) > pdev(u) + 1e-12 and t > 1e-8:
            t /= 2
        u = u - t * step
        if np.max(np.abs(step)) < 1e-13:
            break
    eta = fixed + ZL @ u
    mu = fam.link.linkinv(eta)
    w = fam.weights(y, eta, mu, wt, fam.information)
    _, logdet = np.linalg.slogdet(ZL.T @ (w[:, None] * ZL) + np.eye(len(u)))
    return logdet + u @ u + fam.aic(y, mu, wt)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    fam=st.sampled_from(FAMILIES),
    n_g=st.integers(3, 8),
    per=st.integers(3, 7),
    slope=st.booleans(),
    crossed=st.booleans(),
    theta_scale=st.floats(0.0, 1.5),
)
def test_laplace_deviance_equals_dense_brute_force(seed, fam, n_g, per, slope, crossed, theta_scale):
    family, link = fam
    frame = _data(seed, n_g, 3, per, family, slope, crossed)
    model = _model(frame, family, link, slope, crossed)
    rng = np.random.default_rng(seed + 1)
    theta = model.theta_start * theta_scale + np.where(model.lower_bounds == 0, 0.0, rng.normal(0, 0.2, model.n_theta))
    beta = rng.normal(0, 0.5, model.nfixed)
    disp = 1.7 if model.family.has_dispersion else None
    if disp is not None:
        model.family = model.family.with_dispersion(disp)
    ours = model.deviance(theta, beta, dispersion=disp)
    assert ours == pytest.approx(_dense_laplace(model, theta, beta), rel=1e-9, abs=1e-8)


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")  # quad's own roundoff notes; the comparison is the check
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), fam=st.sampled_from(FAMILIES[:4]), n_g=st.integers(3, 8), per=st.integers(2, 6),
       theta=st.floats(0.05, 2.0))
def test_quadrature_one_point_is_laplace_and_many_points_integrate(seed, fam, n_g, per, theta):
    family, link = fam
    frame = _data(seed, n_g, 3, per, family, False, False)
    model = _model(frame, family, link, False, False)
    beta = np.random.default_rng(seed).normal(0, 0.5, model.nfixed)
    ev = model.evaluator()
    params = np.concatenate([[theta], beta])
    mode, famly, _ = ev.mode(params, 2)
    r, t = model.response, model.terms[0]
    lap = laplace_deviance(mode, famly, r.y, r.wt)
    one = agq_deviance(mode, famly, r.y, r.wt, z=t.z[:, 0], refs=t.refs, lam=theta, nagq=1)
    assert one == pytest.approx(lap - famly.aic(r.y, mode.mu, r.wt) + mode.devsum, rel=1e-12, abs=1e-9)
    # 25 points against each level's integral (2π)^{-1/2} ∫ exp(−devc_j(u)/2) du, by adaptive quadrature
    fixed = model.design.X @ beta + model.offset
    exact = 0.0
    for j in range(t.nlevels):
        rows = t.refs == j

        def devc(u, rows=rows):
            mu = famly.link.linkinv(fixed[rows] + t.z[rows, 0] * theta * u)
            return u * u + float(np.sum(famly.dev_resids(r.y[rows], mu, r.wt[rows])))

        uj = mode.u[j]
        c0 = devc(uj)  # the integrand scaled by its value at the mode
        val, _ = quad(lambda u, c0=c0, devc=devc: math.exp(-0.5 * (devc(u) - c0)), uj - 12, uj + 12,
                      epsabs=0, epsrel=1e-11, limit=200)
        exact += c0 - 2.0 * math.log(val / math.sqrt(2 * math.pi))
    many = agq_deviance(mode, famly, r.y, r.wt, z=t.z[:, 0], refs=t.refs, lam=theta, nagq=25)
    # the 25-point rule is not exact: with two rows per level, θ = 2 and a probit link the integrand is far
    # from Gaussian and the rule is off by 2e-7 relative; a wrong scale or centre would be off by far more
    assert many == pytest.approx(exact, rel=1e-5, abs=1e-6)
