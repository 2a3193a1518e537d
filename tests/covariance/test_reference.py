"""Residual structures against nlme 3.1-162 (gls) and mmrm 0.3.14 on a simulated trial.

Reference values: tests/reference/residual.json, made by tests/reference/residual.R from
tests/reference/data/residual_trial.csv (100 subjects, 5 visits, dropout; y ~ arm * visit + base).

For every reference fit, its estimated covariance is mapped to our parameters
(``ResidualStructure.from_covariance``) and the dense criterion there must equal the reference
log-likelihood: this checks the parameterisation, the level order, the normalisation and the constants
(nlme's and mmrm's REML has no ``log|X'X|`` term).  A few structures are then fitted by minimising our
criterion from our start and must reach the reference optimum.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.optimize as so

from mixedmodels.covariance import (
    bind,
    dense_criterion,
    marginal_criterion,
    profiled_dense_criterion,
    residual_matrix,
)
from mixedmodels.engine.threads import single_threaded_blas

HERE = Path(__file__).parents[1] / "reference"
REF = json.loads((HERE / "residual.json").read_text())
NLME = REF["nlme"]
MMRM = REF["mmrm"]
TIMES = np.array(REF["complete_times"])


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    with single_threaded_blas():
        yield


@cache
def data() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The trial, ``X`` in R's column order for y ~ arm * visit + base (treatment contrasts), ``y``."""
    d = pd.read_csv(HERE / "data" / "residual_trial.csv")
    vis = pd.get_dummies(d["visit"], drop_first=True, dtype=float).to_numpy()
    trt = (d["arm"] == "TRT").to_numpy(float)
    X = np.column_stack([np.ones(len(d)), trt, vis, d["base"], trt[:, None] * vis])
    return d, X, d["y"].to_numpy()


def nlme_spec(name: str) -> str:
    return "car1(time | id)" if name == "car1" else f"{name}(visit | id)"


def mapped(spec: str, ref: dict):
    """Binding, structure, parameters and σ² of a reference fit's covariance."""
    d, _, _ = data()
    b = bind(spec, d)
    s = b.structure()
    if isinstance(ref["cov"], dict):
        par, sigma2 = s.from_covariance([np.array(ref["cov"][g]) for g in ref["groups"]])
    elif s.kind == "car1":
        par, sigma2 = s.from_covariance(np.array(ref["cov"]), times=np.array(ref.get("times", TIMES)))
    else:
        par, sigma2 = s.from_covariance(np.array(ref["cov"]))
    return b, s, par, sigma2


def ref_covs(ref: dict) -> list[np.ndarray]:
    if isinstance(ref["cov"], dict):
        return [np.array(ref["cov"][g]) for g in ref["groups"]]
    return [np.array(ref["cov"])]


def our_covs(s, par: np.ndarray, sigma2: float) -> list[np.ndarray]:
    if s.discrete:
        return [sigma2 * s.cov_full(par, g) for g in range(s.n_groups)]
    return [sigma2 * s.cov(par, TIMES)]


CASES = [("nlme", name, method) for name in NLME for method in ("REML", "ML")] + [
    ("mmrm", name, method) for name in MMRM for method in ("REML", "ML")]


@pytest.mark.parametrize(("source", "name", "method"), CASES)
def test_criterion_at_reference_estimate_is_reference_loglik(source, name, method):
    ref = REF[source][name][method]
    spec = nlme_spec(name) if source == "nlme" else ref["spec"]
    _, X, y = data()
    b, s, par, sigma2 = mapped(spec, ref)
    reml = method == "REML"
    # the mapped parameters reproduce the reference covariance
    for ours, theirs in zip(our_covs(s, par, sigma2), ref_covs(ref)):
        assert ours == pytest.approx(theirs, rel=1e-10, abs=1e-10)
    explicit = dense_criterion(y, X, R=residual_matrix(s, par, b, sigma2), reml=reml)
    assert -explicit / 2 == pytest.approx(ref["loglik"], abs=1e-6)
    profiled, s2 = profiled_dense_criterion(y, X, C=residual_matrix(s, par, b), reml=reml)
    fast, s2_fast, beta = marginal_criterion(s, par, b, y, X, reml=reml)
    assert fast == pytest.approx(profiled, abs=1e-8) and s2_fast == pytest.approx(s2, rel=1e-10)
    assert beta == pytest.approx(np.array(ref["beta"]), abs=1e-6)
    if source == "nlme":
        # nlme profiles σ²: its σ is the profiled one and the profiled criterion is its logLik
        assert math.sqrt(s2) == pytest.approx(ref["sigma"], rel=1e-9)
        assert -profiled / 2 == pytest.approx(ref["loglik"], abs=1e-6)
    else:
        # mmrm estimates the scale with the rest: profiling it can only raise the log-likelihood, by little
        assert ref["loglik"] - 1e-9 <= -profiled / 2 <= ref["loglik"] + 1e-5


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_natural_parameters_match_nlme(method):
    for name in ("us", "ar1", "ar1h", "cs", "csh", "diag", "car1"):
        ref = NLME[name][method]
        _, s, par, sigma2 = mapped(nlme_spec(name), ref)
        nat = s.natural(par, math.sqrt(sigma2)).set_index("parameter")["value"]
        if "var_natural" in ref:  # varIdent: SD ratios to the first visit
            assert ref["var_names"] == ["V1", "V2", "V3", "V4", "V5"]
            sds = nat[[f"sd(visit{v})" for v in ref["var_names"]]].to_numpy()
            assert sds / sds[0] == pytest.approx(ref["var_natural"], rel=1e-8)
            assert sds[0] == pytest.approx(ref["sigma"], rel=1e-8)
        else:
            assert nat["sd"] == pytest.approx(ref["sigma"], rel=1e-8)
        if name == "us":  # corSymm's order: (1,2), (1,3), …, (2,3), … is ours
            cors = nat[[p for p in nat.index if p.startswith("cor(")]].to_numpy()
            assert cors == pytest.approx(ref["cor_natural"], abs=1e-8)
        elif name in ("ar1", "ar1h", "cs", "csh"):
            assert nat["rho"] == pytest.approx(ref["cor_natural"], abs=1e-8)
        elif name == "car1":
            assert nat["phi"] == pytest.approx(ref["cor_natural"], abs=1e-8)


def test_group_specific_structures_are_separate_per_group():
    ref = MMRM["us_group"]["REML"]
    _, s, par, sigma2 = mapped(ref["spec"], ref)
    assert s.npar == 2 * 15 - 1
    nat = s.natural(par, math.sqrt(sigma2)).set_index(["group", "parameter"])["value"]
    for g in ("PBO", "TRT"):
        cov = np.array(ref["cov"][g])
        assert nat[(f"arm={g}", "sd(visitV3)")] == pytest.approx(math.sqrt(cov[2, 2]), rel=1e-9)
        assert nat[(f"arm={g}", "cor(visitV1,visitV4)")] == pytest.approx(
            cov[3, 0] / math.sqrt(cov[0, 0] * cov[3, 3]), rel=1e-9)


# ----------------------------------------------------------------------------------------- fits from our start
def fit(spec: str, reml: bool, dense: bool, from_residuals: bool = True):
    d, X, y = data()
    b = bind(spec, d)
    s = b.structure()
    resid = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
    start = s.start(resid, b) if from_residuals else s.start()

    def objective(par: np.ndarray) -> float:
        if dense:
            try:
                return profiled_dense_criterion(y, X, C=residual_matrix(s, par, b), reml=reml)[0]
            except np.linalg.LinAlgError:
                return math.inf
        return marginal_criterion(s, par, b, y, X, reml=reml)[0]

    res = so.minimize(objective, start, method="BFGS", options={"gtol": 1e-6})
    value, sigma2, _ = marginal_criterion(s, res.x, b, y, X, reml=reml)
    return s, res.x, sigma2, value


@pytest.mark.parametrize(
    ("source", "name", "method", "dense", "from_residuals"),
    [
        ("nlme", "ar1h", "ML", True, True),
        ("nlme", "csh", "REML", True, False),
        ("nlme", "toep", "REML", True, True),
        ("nlme", "car1", "REML", True, False),
        ("nlme", "us", "REML", False, True),
        ("mmrm", "adh", "ML", False, True),
        ("mmrm", "us_group", "REML", False, True),
        ("mmrm", "cs_group", "ML", True, True),
    ],
)
def test_minimising_our_criterion_reaches_the_reference_fit(source, name, method, dense, from_residuals):
    ref = REF[source][name][method]
    spec = nlme_spec(name) if source == "nlme" else ref["spec"]
    s, par, sigma2, value = fit(spec, method == "REML", dense, from_residuals)
    assert -value / 2 >= ref["loglik"] - 1e-4
    assert -value / 2 <= ref["loglik"] + 1e-4  # and no better: the reference is the optimum
    for ours, theirs in zip(our_covs(s, par, sigma2), ref_covs(ref)):
        assert ours == pytest.approx(theirs, rel=1e-3, abs=1e-3 * np.abs(theirs).max())


# ------------------------------------------------------------------------------------- mixed models (nlme::lme)
LME_STRUCTURES = {"ri_ar1": "ar1(visit | id)", "ri_ar1h": "ar1h(visit | id)", "ri_car1": "car1(time | id)",
                  "rs_diag": "diag(visit | id)"}


@pytest.mark.parametrize(("name", "method"), [(n, m) for n in LME_STRUCTURES for m in ("REML", "ML")])
def test_dense_criterion_with_random_effects_is_nlme_lme_loglik(name, method):
    ref = REF["lme"][name][method]
    d, X, y = data()
    b, s, par, sigma2 = mapped(LME_STRUCTURES[name], ref)
    assert math.sqrt(sigma2) == pytest.approx(ref["sigma"], rel=1e-9)
    ids = b.subject
    cols = [np.ones(len(d))] if ref["random"] == "~1 | id" else [np.ones(len(d)), d["time"].to_numpy()]
    Z = np.zeros((len(d), b.n_subjects * len(cols)))
    for j, c in enumerate(cols):
        Z[np.arange(len(d)), ids * len(cols) + j] = c
    G = np.kron(np.eye(b.n_subjects), np.array(ref["G"]))
    value = dense_criterion(y, X, Z, G, residual_matrix(s, par, b, sigma2), reml=method == "REML")
    assert -value / 2 == pytest.approx(ref["loglik"], abs=1e-6)
    # and with σ² profiled, G relative to σ²: the same value (nlme profiles σ² too)
    profiled, s2 = profiled_dense_criterion(y, X, residual_matrix(s, par, b), Z, G / sigma2, reml=method == "REML")
    assert -profiled / 2 == pytest.approx(ref["loglik"], abs=1e-6) and s2 == pytest.approx(sigma2, rel=1e-8)
