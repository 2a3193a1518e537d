"""Known covariance terms: ``(1 | id)`` with ``b ~ N(0, σ²θ²K)``.

The engine (``Z L`` with ``L'Z'ZL`` diagonal) is checked against a dense brute force of
``V = σ²(θ² Z K Z' + …)`` (:mod:`mixedmodels.covariance.criterion`), against lme4 (the ``Zt`` of the id
term replaced by ``L'Zt``, tests/reference/genetics_lme4.R), and its fast path against the general engine.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sla

import mixedmodels as mm
from mixedmodels import LinearMixedModel
from mixedmodels.covariance.criterion import profiled_dense_criterion
from mixedmodels.engine.crossprod import _indicator, z_matrix
from mixedmodels.exceptions import DataError, ModelError
from mixedmodels.genetics import Kinship
from mixedmodels.genetics.spectral import OPTIMIZER
from mixedmodels.inference.rlrt import null_eigenvalues
from mixedmodels.optimize import OptimizerControl, optimize_theta
from mixedmodels.results import LinearMixedModelResults

REF = Path(__file__).parents[1] / "reference"


def _grm(rng: np.random.Generator, q: int, m: int) -> np.ndarray:
    G = rng.binomial(2, rng.uniform(0.1, 0.5, m), size=(q, m)).astype(float)
    G = G[:, G.std(axis=0) > 0]
    G = (G - G.mean(axis=0)) / G.std(axis=0)
    return G @ G.T / G.shape[1]


def _data(seed: int, q: int = 40, m: int = 60, records: tuple[int, int] = (1, 4), weights: bool = False):
    rng = np.random.default_rng(seed)
    K = _grm(rng, q, m)
    ids = [f"i{j:03d}" for j in range(q)]
    nrec = rng.integers(records[0], records[1] + 1, q)
    idx = np.repeat(np.arange(q), nrec)
    n = idx.size
    data = pd.DataFrame({
        "id": np.array(ids)[idx], "x": rng.standard_normal(n), "fam": [f"f{j // 5}" for j in idx],
    })
    L = np.linalg.cholesky(K + 1e-6 * np.eye(q))
    data["y"] = 2.0 + 0.3 * data.x + (L @ rng.standard_normal(q))[idx] + 0.5 * rng.standard_normal(q // 5)[idx // 5]
    data["y"] += rng.standard_normal(n)
    if weights:
        data["w"] = rng.uniform(0.5, 2.0, n)
    return data, pd.DataFrame(K, index=ids, columns=ids)


def _dense_check(model: LinearMixedModel, K: pd.DataFrame, theta: np.ndarray, weights: np.ndarray | None) -> None:
    d = model.design
    Zs, Gs = [], []
    for t, th in zip(model.terms, np.split(theta, np.cumsum([t.ntheta for t in model.terms])[:-1])):
        Zs.append(_indicator(t).toarray())
        rel = K.loc[list(t.levels), list(t.levels)].to_numpy() if t.rotated else np.eye(t.nlevels)
        Gs.append(th[0] ** 2 * rel)
    C = None if weights is None else np.diag(1.0 / weights)
    for reml in (True, False):
        want = profiled_dense_criterion(d.y, d.X, C=C, Z=np.hstack(Zs), G=sla.block_diag(*Gs), reml=reml)[0]
        if weights is not None:  # the engine's criterion includes log|W⁻¹| as lme4's; the dense one too (C)
            pass
        got = model.criterion_at(theta, reml=reml)
        assert got == pytest.approx(want, rel=1e-10, abs=1e-8)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("formula", ["y ~ x + (1 | id)", "y ~ x + (1 | id) + (1 | fam)", "y ~ x + (1 | fam) + (0 + x | id)"])
def test_criterion_equals_dense_brute_force(seed: int, formula: str) -> None:
    data, K = _data(seed)
    model = LinearMixedModel.from_formula(formula, data, covariance={"id": K})
    assert any(t.rotated for t in model.terms)
    rng = np.random.default_rng(seed + 10)
    for theta in [model.theta_start, rng.uniform(0.0, 2.0, model.theta_start.size), np.zeros(model.theta_start.size)]:
        _dense_check(model, K, theta, None)


def test_two_known_covariances_on_two_factors() -> None:
    data, K = _data(18)
    rng = np.random.default_rng(18)
    fams = sorted(data["fam"].unique())
    B = rng.standard_normal((len(fams), 3))
    Kf = pd.DataFrame(B @ B.T + 0.1 * np.eye(len(fams)), index=fams, columns=fams)
    model = LinearMixedModel.from_formula("y ~ x + (1 | id) + (1 | fam)", data, covariance={"id": K, "fam": Kf})
    assert [t.rotated for t in model.terms] == [True, True]
    d = model.design
    Zs = [_indicator(t).toarray() for t in model.terms]
    rels = [K.loc[list(model.terms[0].levels), list(model.terms[0].levels)].to_numpy(),
            Kf.loc[list(model.terms[1].levels), list(model.terms[1].levels)].to_numpy()]
    for theta in (np.array([0.7, 0.4]), np.array([1.5, 0.0])):
        G = sla.block_diag(theta[0] ** 2 * rels[0], theta[1] ** 2 * rels[1])
        for reml in (True, False):
            want = profiled_dense_criterion(d.y, d.X, Z=np.hstack(Zs), G=G, reml=reml)[0]
            assert model.criterion_at(theta, reml=reml) == pytest.approx(want, rel=1e-10)


def test_criterion_with_prior_weights_and_one_record_per_id() -> None:
    data, K = _data(4, records=(1, 1), weights=True)
    model = LinearMixedModel.from_formula("y ~ x + (1 | id)", data, weights="w", covariance={"id": K})
    for theta in ([0.3], [1.7]):
        _dense_check(model, K, np.array(theta), data["w"].to_numpy())


def test_low_rank_factor_gives_the_same_model_as_its_matrix() -> None:
    rng = np.random.default_rng(5)
    q, m = 50, 12  # fewer SNPs than individuals: rank-12 K
    F = rng.standard_normal((q, m)) / np.sqrt(m)
    ids = [f"i{j}" for j in range(q)]
    data = pd.DataFrame({"id": ids, "x": rng.standard_normal(q)})
    data["y"] = F @ rng.standard_normal(m) + data.x + rng.standard_normal(q)
    by_factor = mm.lmer("y ~ x + (1 | id)", data, covariance={"id": Kinship(tuple(ids), factor=F)})
    by_matrix = mm.lmer("y ~ x + (1 | id)", data, covariance={"id": (F @ F.T, ids)})
    assert by_factor.fit_record.optimizer == OPTIMIZER
    assert by_factor.model.terms[0].root.rank == m
    assert by_factor.objective == pytest.approx(by_matrix.objective, rel=1e-10)
    assert by_factor.theta == pytest.approx(by_matrix.theta, rel=1e-6)
    for th in (0.2, 1.3):
        assert by_factor.model.criterion_at(np.array([th])) == pytest.approx(by_matrix.model.criterion_at(np.array([th])), rel=1e-11)


def test_matches_lme4_with_replaced_design() -> None:
    ref = json.loads((REF / "genetics_lme4.json").read_text())
    data = pd.read_csv(REF / "data" / "genetics_records.csv")
    K = pd.read_csv(REF / "data" / "genetics_K.csv", index_col=0)
    for case in ref["fits"]:
        fit = mm.lmer(case["formula"], data, REML=case["reml"], covariance={"id": K},
                      control={"xtol_abs": 1e-12, "ftol_abs": 1e-14})
        assert fit.theta_names == list(np.atleast_1d(case["theta_names"]))
        # the engine at lme4's θ gives lme4's criterion; our optimum is no worse than lme4's
        assert fit.model.criterion_at(np.atleast_1d(case["theta"])) == pytest.approx(case["objective"], abs=1e-9)
        assert fit.objective <= case["objective"] + 1e-9
        assert fit.theta == pytest.approx(np.atleast_1d(case["theta"]), rel=1e-5)
        assert fit.sigma == pytest.approx(case["sigma"], rel=1e-6)
        assert fit.beta == pytest.approx(case["beta"], rel=1e-6)
        assert fit.bse.to_numpy() == pytest.approx(case["se"], rel=1e-5)
        assert fit.varcorr["vcov"].to_numpy() == pytest.approx(case["varcorr"]["vcov"], rel=2e-5)


def test_fast_path_agrees_with_the_general_engine() -> None:
    data, K = _data(6, q=150, m=400, records=(1, 1))
    for reml in (True, False):
        fast = mm.lmer("y ~ x + (1 | id)", data, REML=reml, covariance={"id": K})
        assert fast.fit_record.optimizer == OPTIMIZER
        model = fast.model
        path = model._spectral
        for th in (0.0, 0.4, 2.5):
            assert path.objective(th) == pytest.approx(model.criterion_at(np.array([th])), rel=1e-12)
        ctl = OptimizerControl(ftol_abs=1e-15, xtol_abs=1e-12)
        theta, value, record = optimize_theta(model.criterion_at, model.theta_start, model.lower_bounds, control=ctl)
        general = LinearMixedModelResults(model, theta, value, record)
        assert fast.objective <= general.objective + 1e-10
        assert fast.theta == pytest.approx(general.theta, rel=1e-6)
        assert fast.sigma == pytest.approx(general.sigma, rel=1e-6)
        assert fast.beta == pytest.approx(general.beta, rel=1e-6)
        assert fast.bse.to_numpy() == pytest.approx(general.bse.to_numpy(), rel=1e-6)


def test_fast_path_only_for_one_record_per_level() -> None:
    data, K = _data(7)  # repeated records
    fit = mm.lmer("y ~ x + (1 | id)", data, covariance={"id": K})
    assert fit.fit_record.optimizer != OPTIMIZER
    data1, K1 = _data(7, records=(1, 1))
    nm = mm.lmer("y ~ x + (1 | id)", data1, covariance={"id": K1}, optimizer="nelder_mead")
    assert nm.fit_record.optimizer != OPTIMIZER


@pytest.mark.parametrize("seed", [12, 14])
def test_fast_path_singular_fit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    q = 80
    K = _grm(rng, q, 200)
    ids = [f"i{j}" for j in range(q)]
    data = pd.DataFrame({"id": ids, "y": rng.standard_normal(q)})  # no genetic signal
    with pytest.warns(mm.SingularFitWarning):
        fit = mm.lmer("y ~ 1 + (1 | id)", data, covariance={"id": (K, ids)})
    assert fit.fit_record.optimizer == OPTIMIZER and fit.theta[0] == 0.0 and fit.singular
    model = fit.model
    theta, value, _ = optimize_theta(model.criterion_at, model.theta_start, model.lower_bounds)
    assert theta[0] < 1e-4 and fit.objective <= value + 1e-10


def test_blups_and_conditional_variances_match_dense_formulas() -> None:
    data, K = _data(9, records=(1, 3))
    fit = mm.lmer("y ~ x + (1 | id)", data, covariance={"id": K})
    t = fit.terms[0]
    Z = _indicator(t).toarray()
    Kl = K.loc[list(t.levels), list(t.levels)].to_numpy()
    s2 = fit.sigma**2
    G = s2 * fit.theta[0] ** 2 * Kl
    V = Z @ G @ Z.T + s2 * np.eye(len(data))
    Vi = np.linalg.inv(V)
    X = fit.design.X
    beta = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ fit.design.y)
    assert fit.beta == pytest.approx(beta, rel=1e-9)
    b = G @ Z.T @ Vi @ (fit.design.y - X @ beta)
    re = fit.ranef(condvar=True)["id"]
    assert re["(Intercept)"].to_numpy() == pytest.approx(b, rel=1e-7, abs=1e-10)
    # lme4's conditional variance (β at β̂): G − G Z'(Z G Z' + σ²I)⁻¹ Z G
    cv = G - G @ Z.T @ Vi @ Z @ G
    assert re["sd((Intercept))"].to_numpy() == pytest.approx(np.sqrt(np.diag(cv)), rel=1e-7)
    assert fit.fitted == pytest.approx(X @ beta + Z @ b, rel=1e-9)


def test_simulation_draws_from_k() -> None:
    data, K = _data(10, q=30, records=(2, 2))
    fit = mm.lmer("y ~ x + (1 | id)", data, covariance={"id": K})
    sims = fit.simulate(20000, seed=3) - fit.fitted_fixed[:, None]
    t = fit.terms[0]
    Z = _indicator(t).toarray()
    V = fit.sigma**2 * (fit.theta[0] ** 2 * Z @ K.loc[list(t.levels), list(t.levels)].to_numpy() @ Z.T + np.eye(len(data)))
    emp = np.cov(sims)
    scale = np.sqrt(np.outer(np.diag(V), np.diag(V)))
    assert np.max(np.abs(emp - V) / scale) < 0.05


@pytest.mark.filterwarnings("ignore::mixedmodels.SingularFitWarning")
def test_save_and_load_round_trip(tmp_path: Path) -> None:
    data, K = _data(11)
    fit = mm.lmer("y ~ x + (1 | id) + (1 | fam)", data, covariance={"id": K})
    path = tmp_path / "fit.json.gz"
    fit.save(path)
    back = mm.load(path)
    assert back.objective == fit.objective
    assert back.theta == pytest.approx(fit.theta, rel=0, abs=0)
    assert back.terms[0].rotated and back.terms[0].kinship.matrix == pytest.approx(
        K.loc[list(fit.terms[0].levels), list(fit.terms[0].levels)].to_numpy(), rel=0, abs=0)
    pd.testing.assert_frame_equal(back.ranef()["id"], fit.ranef()["id"])
    assert back.heritability()["h2"].to_numpy() == pytest.approx(fit.heritability()["h2"].to_numpy(), rel=1e-12)
    rng = np.random.default_rng(0)
    F = rng.standard_normal((40, 5))
    ids = [f"i{j:03d}" for j in range(40)]
    low = mm.lmer("y ~ x + (1 | id)", data, covariance={"id": Kinship(tuple(ids), factor=F)})
    low.save(tmp_path / "low.json")
    assert mm.load(tmp_path / "low.json").objective == low.objective


def test_identity_k_is_the_ordinary_term() -> None:
    """K = I gives lme4's (1 | id): criterion, estimates, Satterthwaite and Kenward–Roger df, BLUPs, ICC."""
    data, K = _data(12, records=(2, 4))
    eye = pd.DataFrame(np.eye(len(K)), index=K.index, columns=K.index)
    known = mm.lmer("y ~ x + (1 | id) + (1 | fam)", data, covariance={"id": eye})
    plain = mm.lmer("y ~ x + (1 | id) + (1 | fam)", data)
    assert known.terms[0].rotated and not plain.terms[0].rotated
    for th in ([0.3, 0.8], [1.2, 0.1]):
        assert known.model.criterion_at(np.array(th)) == pytest.approx(plain.model.criterion_at(np.array(th)), rel=1e-12)
    assert known.theta == pytest.approx(plain.theta, rel=1e-6)
    for ddf in ("satterthwaite", "kenward-roger"):
        a, b = known.coef_table(ddf), plain.coef_table(ddf)
        assert a["Std. Error"].to_numpy() == pytest.approx(b["Std. Error"].to_numpy(), rel=1e-6)
        assert a["df"].to_numpy() == pytest.approx(b["df"].to_numpy(), rel=1e-4)
    ra, rb = known.ranef(condvar=True)["id"], plain.ranef(condvar=True)["id"]
    assert ra.to_numpy() == pytest.approx(rb.to_numpy(), rel=1e-5, abs=1e-8)
    assert known.icc().to_numpy() == pytest.approx(plain.icc().to_numpy(), rel=1e-5)
    share = known.varcorr["vcov"].to_numpy()
    assert known.heritability()["h2"].iloc[0] == pytest.approx(share[0] / share.sum(), rel=1e-10)


def test_rlrt_uses_the_spectrum_of_z_k_z() -> None:
    data, K = _data(13, records=(1, 2))
    fit = mm.lmer("y ~ x + (1 | id)", data, covariance={"id": K})
    t = fit.terms[0]
    X = fit.design.X
    mu = null_eigenvalues(X, z_matrix(t))
    Z = _indicator(t).toarray()
    P0 = np.eye(len(data)) - X @ np.linalg.solve(X.T @ X, X.T)
    Kl = K.loc[list(t.levels), list(t.levels)].to_numpy()
    want = np.sort(np.linalg.eigvalsh(P0 @ Z @ Kl @ Z.T @ P0))[::-1][: mu.size]
    assert mu == pytest.approx(want / want[0], abs=1e-9)


def test_implied_covariance_of_an_individual() -> None:
    data, K = _data(14, records=(3, 3))
    fit = mm.lmer("y ~ x + (1 | id)", data, covariance={"id": K})
    level = fit.terms[0].levels[2]
    V = fit.implied_covariance(group="id", level=level).covariance.to_numpy()
    g = fit.sigma**2 * fit.theta[0] ** 2 * K.loc[level, level]
    assert V == pytest.approx(g + fit.sigma**2 * np.eye(3), rel=1e-10)
    with pytest.raises(ModelError, match="known covariance"):
        fit.implied_covariance(newdata=data.head(2))


# ---------------------------------------------------------------------------------------------- errors
def test_missing_ids_are_named() -> None:
    data, K = _data(15)
    K2 = K.drop(index=["i003", "i007"], columns=["i003", "i007"])
    with pytest.raises(DataError, match=r"2 individual\(s\) of grouping factor 'id' are not in the relationship matrix: 'i003', 'i007'"):
        mm.lmer("y ~ x + (1 | id)", data, covariance={"id": K2})


def test_bad_matrices_are_refused() -> None:
    data, K = _data(16)
    bad = K.copy()
    bad.iloc[0, 1] += 0.5
    with pytest.raises(DataError, match="not symmetric"):
        mm.lmer("y ~ x + (1 | id)", data, covariance={"id": bad})
    neg = K - 2.0 * np.eye(len(K))
    with pytest.raises(ModelError, match="not positive semi-definite: its smallest eigenvalue is"):
        mm.lmer("y ~ x + (1 | id)", data, covariance={"id": neg})
    with pytest.raises(DataError, match="is 40 × 40 but has 39 ids"):
        mm.lmer("y ~ x + (1 | id)", data, covariance={"id": (K.to_numpy(), list(K.index[:-1]))})
    nan = K.copy()
    nan.iloc[3, 3] = np.nan
    with pytest.raises(DataError, match="missing or infinite"):
        mm.lmer("y ~ x + (1 | id)", data, covariance={"id": nan})
    swapped = K.copy()
    swapped.columns = list(K.columns[1:]) + ["zzz"]
    with pytest.raises(DataError, match="index and columns differ"):
        mm.lmer("y ~ x + (1 | id)", data, covariance={"id": swapped})


def test_misuse_of_covariance_argument() -> None:
    data, K = _data(17)
    with pytest.raises(DataError, match="groups no random-effects term"):
        mm.lmer("y ~ x + (1 | id)", data, covariance={"family": K})
    with pytest.raises(DataError, match="must be a dict"):
        mm.lmer("y ~ x + (1 | id)", data, covariance=K)
    with pytest.raises(DataError, match="must be a pandas DataFrame"):
        mm.lmer("y ~ x + (1 | id)", data, covariance={"id": "K.txt"})
    with pytest.raises(ModelError, match="has 2 columns; a known covariance applies to a term with one column"):
        mm.lmer("y ~ x + (1 + x | id)", data, covariance={"id": K})
    with pytest.raises(ModelError, match="cannot be combined with a residual structure"):
        mm.lmer("y ~ x + (1 | id)", data.assign(t=data.groupby("id").cumcount()), covariance={"id": K},
                residual="ar1(t | fam)")
