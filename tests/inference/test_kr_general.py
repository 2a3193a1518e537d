"""Kenward–Roger for random effects together with a residual structure or a variance function
(inference/kr_general.py), against a brute-force computation from the dense ``V(φ)`` of all rows.

The first-order adjustment does not depend on the parameterisation, so the brute force differentiates
``V = σ²(Z ΛΛ' Z' + D C D)`` numerically in our own parameters φ = (θ, ρ, δ, σ), with the same ``W``
(Satterthwaite's covariance of φ̂). The second-order term is checked against SAS in test_kr_sas.py;
here it must vanish for linear structures and agree between the marginal and general paths.
"""

from __future__ import annotations

import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import mixedmodels as mm
from mixedmodels.covariance import residual_matrix
from mixedmodels.engine.crossprod import z_matrix
from mixedmodels.inference.kr_general import KenwardRogerGeneral, clusters
from mixedmodels.inference.kr_residual import KenwardRogerResidual

HERE = Path(__file__).parents[1] / "reference"
CASES = {
    "ri_ar1": ("y ~ arm * visit + base + (1 | id)", "ar1(visit | id)", None),
    "rs_diag": ("y ~ arm + time + base + (1 + time | id)", "diag(visit | id)", None),
    "ri_car1": ("y ~ arm + time + base + (1 | id)", "car1(time | id)", None),
    "ri_power": ("y ~ arm + time + base + (1 | id)", None, "power(base)"),
    "site_ar1h": ("y ~ arm + visit + (1 | site)", "ar1h(visit | id)", None),
}


@cache
def data() -> pd.DataFrame:
    d = pd.read_csv(HERE / "data" / "residual_trial.csv")
    ids = d["id"].unique()[:60]
    d = d[d["id"].isin(ids)].copy()
    d["site"] = "s" + (pd.factorize(d["id"])[0] % 7).astype(str)
    return d


@cache
def fit(case: str) -> mm.LinearMixedModelResults:
    formula, residual, variance = CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer(formula, data(), residual=residual, variance=variance)


def dense_v(res: mm.LinearMixedModelResults, varpar: np.ndarray) -> np.ndarray:
    model = res.model
    params, sigma = varpar[:-1], varpar[-1]
    k, kr = model.n_theta, model.n_theta + model.n_rho
    n = model.nobs
    C = np.eye(n) if model.whitening is None else residual_matrix(model.whitening.structure, params[k:kr], model.whitening.binding)
    d = model.residual_sd_scale(params[kr:])
    if d is not None:
        C = C * np.outer(d, d)
    off, ZGZ = 0, np.zeros((n, n))
    for t in model.design.terms:
        lam = t.lambda_matrix(params[off:off + t.ntheta])
        off += t.ntheta
        Z = z_matrix(t)
        ZGZ += (Z @ sp.kron(sp.identity(t.nlevels), lam @ lam.T) @ Z.T).toarray()
    return sigma**2 * (ZGZ + C)


def brute_force(res: mm.LinearMixedModelResults) -> np.ndarray:
    X = res.model.design.X
    varpar = np.r_[res.theta, res.sigma]
    Vinv = np.linalg.inv(dense_v(res, varpar))
    phi = np.linalg.inv(X.T @ Vinv @ X)
    dV = []
    for k in range(varpar.size):
        e = np.zeros(varpar.size)
        e[k] = 1e-6 * max(abs(varpar[k]), 1.0)
        dV.append((dense_v(res, varpar + e) - dense_v(res, varpar - e)) / (2 * e[k]))
    W = res.ddf_calculator("satterthwaite").vcov_varpar
    B = Vinv @ X
    P = [-B.T @ d @ B for d in dV]
    U = np.zeros_like(phi)
    for r in range(len(dV)):
        for s in range(len(dV)):
            Q = B.T @ dV[r] @ Vinv @ dV[s] @ B
            U += W[r, s] * (Q - P[r] @ phi @ P[s])
    return phi + 2 * phi @ U @ phi


@pytest.mark.parametrize("case", sorted(CASES))
def test_first_order_adjustment_equals_the_dense_brute_force(case):
    res = fit(case)
    kr = KenwardRogerGeneral(res, first_order=True)
    expected = brute_force(res)
    assert kr.vcov_adjusted == pytest.approx(expected, rel=1e-5, abs=1e-9 * np.abs(expected).max())
    assert np.allclose(kr.phi, np.linalg.inv(res.model.design.X.T @ np.linalg.inv(dense_v(res, np.r_[res.theta, res.sigma])) @ res.model.design.X), rtol=1e-6)


@pytest.mark.parametrize("case", sorted(CASES))
def test_coefficient_table_with_kenward_roger(case):
    res = fit(case)
    kr = res.coef_table("kenward-roger")
    sat = res.coef_table("satterthwaite")
    assert np.all(kr["df"] > 1) and np.all(np.isfinite(kr["Pr(>|t|)"]))
    assert np.all(kr["Std. Error"] >= sat["Std. Error"] * 0.97)  # the adjustment inflates the SEs (here)
    linear = res.coef_table("kenward-roger-linear")
    if CASES[case][1] in (None,) or CASES[case][1].startswith("diag"):
        if CASES[case][2] is None:
            assert kr["Std. Error"].to_numpy() == pytest.approx(linear["Std. Error"].to_numpy(), rel=1e-10)


def test_marginal_models_agree_with_the_pattern_path():
    d = pd.read_csv(HERE / "data" / "fev_data.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.mmrm("FEV1 ~ ARMCD + csh(AVISIT | USUBJID)", d)
    for first in (False, True):
        a, b = KenwardRogerGeneral(m, first), KenwardRogerResidual(m, first)
        assert a.vcov_adjusted == pytest.approx(b.vcov_adjusted, rel=1e-8)


def test_clusters_join_rows_through_levels_and_subjects():
    class T:
        def __init__(self, refs):
            self.refs = np.asarray(refs)
    out = clusters((T([0, 0, 1, 1, 2, 2]),), np.array([0, 1, 1, 2, 3, 3]), 6)
    assert sorted(map(sorted, (c.tolist() for c in out))) == [[0, 1, 2, 3], [4, 5]]
