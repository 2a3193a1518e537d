"""Residual covariance structures fitted by the engine (whitened cross-products), against mmrm 0.3.14 and
nlme 3.1-162, and against a brute-force dense likelihood.

References: tests/reference/residual.json (tests/reference/residual.R: mmrm and nlme fits of the trial data
tests/reference/data/residual_trial.csv) and tests/reference/mmrm_df.json (tests/reference/mmrm_df.R:
mmrm's Satterthwaite df and SEs).
"""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sla

import mixedmodels as mm
from mixedmodels.covariance import profiled_dense_criterion, residual_matrix
from mixedmodels.engine.crossprod import z_matrix
from mixedmodels.optimize import optimize_theta

HERE = Path(__file__).parent / "reference"
REF = json.loads((HERE / "residual.json").read_text())
DF = json.loads((HERE / "mmrm_df.json").read_text())
FIXED = "y ~ arm * visit + base"
LME = {
    "ri_ar1": ("(1 | id)", "ar1(visit | id)"),
    "ri_ar1h": ("(1 | id)", "ar1h(visit | id)"),
    "ri_car1": ("(1 | id)", "car1(time | id)"),
    "rs_diag": ("(1 + time | id)", "diag(visit | id)"),
}


@cache
def trial() -> pd.DataFrame:
    return pd.read_csv(HERE / "data" / "residual_trial.csv")


@cache
def fit(formula: str, residual: str, reml: bool) -> mm.LinearMixedModelResults:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer(formula, trial(), REML=reml, residual=residual)


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("case", sorted(REF["mmrm"]))
def test_mmrm_fits(case, method):
    ref = REF["mmrm"][case][method]
    m = fit(FIXED, ref["spec"].replace("sp_exp", "car1"), method == "REML")
    assert m.loglik >= ref["loglik"] - 1e-4
    assert m.loglik == pytest.approx(ref["loglik"], abs=1e-3)
    assert list(m.params.index) == ref["beta_names"]
    assert m.beta == pytest.approx(ref["beta"], rel=1e-3, abs=3e-4)


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("case", sorted(REF["nlme"]))
def test_nlme_gls_fits(case, method):
    ref = REF["nlme"][case][method]
    spec = {"us": "us", "ar1": "ar1", "ar1h": "ar1h", "cs": "cs", "csh": "csh", "toep": "toep", "diag": "diag",
            "car1": "car1", "iid": "iid"}[case]
    residual = f"{spec}(time | id)" if case == "car1" else ("iid(id)" if case == "iid" else f"{spec}(visit | id)")
    m = fit(FIXED, residual, method == "REML")
    assert m.loglik >= ref["loglik"] - 1e-4
    assert m.beta == pytest.approx(ref["beta"], rel=1e-3, abs=3e-4)
    assert m.sigma == pytest.approx(ref["sigma"], rel=1e-3)


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("case", sorted(LME))
def test_random_effects_with_a_residual_structure_as_nlme_lme(case, method):
    ref = REF["lme"][case][method]
    random, residual = LME[case]
    m = fit(f"{FIXED} + {random}", residual, method == "REML")
    assert m.loglik >= ref["loglik"] - 1e-4
    assert m.beta == pytest.approx(ref["beta"], rel=1e-3, abs=1e-3)
    G = m.covariances[0].to_numpy()
    assert G == pytest.approx(np.array(ref["G"]), rel=0.05, abs=0.01)  # a flat optimum: G and R trade off


@pytest.mark.parametrize("spec", sorted(k for k in DF if "(" in k))
def test_satterthwaite_df_and_se_as_mmrm(spec):
    ref = DF[spec]["Satterthwaite"]
    m = fit(FIXED, spec, True)
    table = m.coef_table()
    assert m.loglik == pytest.approx(ref["loglik"], abs=1e-3)
    assert table["Std. Error"].to_numpy() == pytest.approx(ref["se"], rel=1e-3)
    assert table["df"].to_numpy() == pytest.approx(ref["df"], rel=1e-2)
    assert table["Pr(>|t|)"].to_numpy() == pytest.approx(ref["p"], rel=1e-2, abs=1e-6)


@pytest.mark.parametrize("spec", sorted(k for k in DF if "(" in k))
def test_kenward_roger_as_mmrm_linear(spec):
    """mmrm's vcov = "Kenward-Roger-Linear" (no second derivatives: invariant to the parameterisation)."""
    ref = DF[spec]["Kenward-Roger-Linear"]
    table = fit(FIXED, spec, True).coef_table("kenward-roger-linear")
    assert table["Std. Error"].to_numpy() == pytest.approx(ref["se"], rel=1e-3)
    assert table["df"].to_numpy() == pytest.approx(ref["df"], rel=1e-2)
    assert table["Pr(>|t|)"].to_numpy() == pytest.approx(ref["p"], rel=1e-2, abs=1e-6)


def test_mmrm_formula_pasted_from_r_and_the_json_residual_object(capsys):
    m = mm.mmrm("y ~ arm * visit + base + us(visit | id)", trial())
    assert m.loglik == pytest.approx(REF["mmrm"]["us"]["REML"]["loglik"], abs=1e-3)
    cov = m.residual_covariance
    assert list(cov.index) == ["visitV1", "visitV2", "visitV3", "visitV4", "visitV5"] or len(cov) == 5
    assert cov.to_numpy() == pytest.approx(np.array(REF["mmrm"]["us"]["REML"]["cov"]), rel=2e-3)
    from mixedmodels.cli import main

    data = str(HERE / "data" / "residual_trial.csv")
    assert main(["fit", data, "--formula", FIXED, "--residual", "us(visit | id)", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    res = doc["residual"]
    assert res["structure"] == "us" and res["subject"] == "id" and res["time"] == "visit"
    assert np.array(res["covariance"]) == pytest.approx(cov.to_numpy())
    assert np.diag(np.array(res["correlation"])) == pytest.approx(np.ones(5))
    assert len(res["parameters"]) == 15


@pytest.mark.parametrize(
    "formula, residual",
    [(FIXED, f"{kind}(visit | id)") for kind in ("us", "toep", "toeph", "ar1", "ar1h", "cs", "csh", "ad", "adh", "diag")]
    + [(FIXED, "car1(time | id)"), (FIXED, "iid(arm / id)"), (FIXED, "us(visit | arm / id)")]
    + [
        (FIXED + " + (1 | site)", "ar1h(visit | id)"),
        (FIXED + " + (1 | id)", "car1(time | id)"),
        (FIXED + " + (1 + time | id)", "ad(visit | id)"),
        (FIXED + " + (1 | site)", "cs(visit | arm / id)"),
    ],
)
def test_criterion_equals_dense_likelihood(formula, residual):
    """At random parameters, the whitened engine's criterion is the dense one from V = σ²(Z G Z' + C)."""
    data = trial().assign(site=lambda d: "s" + (d["id"].str[-1:].astype(int) % 4).astype(str))  # sites hold subjects
    model = mm.LinearMixedModel.from_formula(formula, data, reml=True, residual=residual)
    rng = np.random.default_rng(7)
    params = model.theta_start + rng.normal(scale=0.3, size=model.theta_start.size)
    params = np.where(model.lower_bounds == 0, np.abs(params), params)
    k = model.n_theta
    w = model.whitening
    C = residual_matrix(w.structure, params[k:], w.binding)
    Z = G = None
    if model.terms:
        Z = np.hstack([z_matrix(t).toarray() for t in model.terms])
        G = sla.block_diag(*[np.kron(np.eye(t.nlevels), (lam := t.lambda_matrix(params[:k])) @ lam.T) for t in model.terms])
    want, _ = profiled_dense_criterion(model.design.y, model.design.X, C=C, Z=Z, G=G, reml=True)
    assert model.criterion_at(params) == pytest.approx(want, rel=1e-9)


def test_clear_errors():
    d = trial()
    with pytest.raises(mm.ModelError, match="varies within subjects"):
        mm.lmer(FIXED + " + (1 | vnum)", d, residual="ar1(visit | id)")
    with pytest.raises(mm.DataError):
        mm.lmer(FIXED, pd.concat([d, d.head(1)]), residual="us(visit | id)")  # a visit twice in a subject
    with pytest.raises(mm.DataError, match="unknown column 'vist'"):
        mm.lmer(FIXED, d, residual="us(vist | id)")
    m = fit(FIXED, "ar1(visit | id)", True)
    kr = fit(FIXED + " + (1 | id)", "ar1(visit | id)", True).coef_table("kenward-roger")  # inference/kr_general.py
    assert np.all(np.isfinite(kr["df"])) and np.all(kr["df"] > 10)
    with pytest.raises(mm.ModelError, match="not available yet"):
        m.icc()
    with pytest.raises(mm.FormulaError, match="covariance term"):
        mm.mmrm(FIXED, d)


def test_least_squares_means_of_an_mmrm_as_emmeans():
    """emmeans 1.8 on mmrm's fit (Satterthwaite df, mmrm's default) against ours (tests/reference/mmrm_df.R)."""
    ref = DF["emmeans_us"]
    m = fit(FIXED, "us(visit | id)", True)
    em = m.emmeans("arm", by="visit")
    table = em.table
    assert list(table["arm"]) == ref["arm"] and list(table["visit"]) == ref["visit"]
    assert table["emmean"].to_numpy() == pytest.approx(ref["emmean"], rel=1e-4, abs=1e-4)
    assert table["SE"].to_numpy() == pytest.approx(ref["se"], rel=1e-3)
    assert table["df"].to_numpy() == pytest.approx(ref["df"], rel=1e-2)
    con = em.contrasts("revpairwise")
    assert list(con["contrast"]) == ref["contrast"]
    assert con["estimate"].to_numpy() == pytest.approx(ref["estimate"], rel=1e-3, abs=1e-4)
    assert con["SE"].to_numpy() == pytest.approx(ref["c_se"], rel=1e-3)
    assert con["p.value"].to_numpy() == pytest.approx(ref["p"], rel=1e-2)


@pytest.mark.parametrize(
    "random, residual, ok",
    [
        ("(1 | id)", "us(visit | id)", False),
        ("(1 | id)", "cs(visit | id)", False),
        ("(1 | id)", "toep(visit | id)", False),
        ("(1 + time | id)", "us(visit | id)", False),
        ("(1 | id)", "ar1(visit | id)", True),
        ("(1 + time | id)", "diag(visit | id)", True),
    ],
)
def test_random_effects_the_structure_already_spans_are_refused(random, residual, ok):
    if ok:
        assert fit(f"{FIXED} + {random}", residual, True).loglik < 0
    else:
        with pytest.raises(mm.ModelError, match="cannot both be estimated"):
            mm.lmer(f"{FIXED} + {random}", trial(), residual=residual)


def test_marginal_moments_equal_whitened_rows():
    """The marginal model's per-pattern moments give the cross-products the whitened rows give."""
    model = mm.LinearMixedModel.from_formula(FIXED, trial(), residual="toeph(visit | id)")
    w = model.whitening
    rho = w.structure.start() + 0.2
    fast, logdet_fast = w.at(rho)
    slow, logdet_slow = w.at(rho, y=model.engine_y(model.design.y))  # a response given: the row path
    assert fast.xx == pytest.approx(slow.xx, rel=1e-10, abs=1e-10)
    assert logdet_fast == pytest.approx(logdet_slow, rel=1e-12)


def test_compare_between_structures_names_them():
    ar1, us = fit(FIXED, "ar1(visit | id)", True), fit(FIXED, "us(visit | id)", True)
    comp = mm.compare(ar1, us)
    assert comp.table["npar"].tolist() == [ar1.npar, us.npar] == [11 + 1 + 1, 11 + 14 + 1]  # σ² profiled: ρ; 14 of us's 15
    assert "residual: us(visit | id)" in str(comp)
    assert comp.table["Chisq"].iloc[1] == pytest.approx(2 * (us.loglik - ar1.loglik))


def test_implied_covariance_combines_random_effects_and_residual_structure():
    """For a complete subject, V = Z G Z' + R: nlme's lme with a random intercept and corAR1 (G + R) and, for a
    marginal us model, the residual covariance itself."""
    cid = REF["complete_id"]
    ri = fit(FIXED + " + (1 | id)", "ar1(visit | id)", True)
    imp = ri.implied_covariance(group="id", level=cid, label="visit")
    lme = REF["lme"]["ri_ar1"]["REML"]
    want = np.array(lme["cov"]) + np.array(lme["G"])[0, 0]
    assert list(imp.covariance.index) == ["V1", "V2", "V3", "V4", "V5"]
    assert imp.covariance.to_numpy() == pytest.approx(want, rel=1e-4)
    us = fit(FIXED, "us(visit | id)", True)
    marginal = us.implied_covariance(group="id", level=cid, label="visit")
    assert marginal.covariance.to_numpy() == pytest.approx(us.residual_covariance.to_numpy(), rel=1e-12)
    with pytest.raises(mm.ModelError, match="newdata"):
        us.implied_covariance(newdata=pd.DataFrame({"visit": ["V1", "V2"]}))


def test_simulations_follow_the_residual_structure_and_refit():
    m = fit(FIXED, "us(visit | id)", True)
    sims = m.simulate(2000, seed=3)
    complete = next(p for p in m.model.whitening.binding.patterns if p.times.size == 5)
    e = sims[complete.rows] - m.fitted_fixed[complete.rows][:, :, None]
    empirical = np.einsum("mas,mbs->ab", e, e) / (e.shape[0] * e.shape[2])
    assert empirical == pytest.approx(m.residual_covariance.to_numpy(), rel=0.05)
    again = m.refit(sims[:, 0], warn=False)
    assert np.isfinite(again.loglik) and again.model.residual_spec == m.model.residual_spec


def test_unstructured_mmrm_takes_the_analytic_gradient_path_and_reaches_a_lower_criterion():
    """engine/marginal.py: the criterion and gradient in Cholesky parameters equal the general path's
    criterion and its central differences; the L-BFGS fit ends at or below BOBYQA's criterion."""
    from mixedmodels.engine.marginal import UnstructuredMarginal

    for spec in ("us(visit | id)", "us(visit | arm / id)"):
        m = fit(FIXED, spec, True)
        um = m.model._unstructured_marginal
        assert isinstance(um, UnstructuredMarginal) and m.fit_record.optimizer.startswith("nlopt LD_LBFGS")
        rho = m.theta + 0.05 * np.random.default_rng(1).standard_normal(m.theta.size)
        x = um.from_params(rho)
        value, grad = um.value_and_grad(x)
        assert value == pytest.approx(m.model.criterion_at(rho), abs=1e-9)
        assert um.to_params(x) == pytest.approx(rho, abs=1e-10)
        h = 1e-6
        num = [(um.value_and_grad(x + e)[0] - um.value_and_grad(x - e)[0]) / (2 * h) for e in np.eye(x.size) * h]
        assert grad == pytest.approx(num, abs=1e-4)
        model = m.model
        _, bobyqa_value, _ = optimize_theta(model.criterion_at, model.theta_start, model.lower_bounds, check=False)
        assert m.objective <= bobyqa_value + 1e-7
