"""Structured random-effects covariances (G-side): us, diag, homdiag, cs, homcs, ar1, hetar1.

Reference values: tests/reference/gstruct.json, made by tests/reference/gstruct.R (glmmTMB 1.1.5 and lme4
1.1-31) from sleepstudy and two simulated data sets in tests/reference/data/ (gstruct_long.csv: 50 subjects
x 4 visits x 2 replicates with missing rows; gstruct_cs.csv: 40 groups x 15 rows, three correlated effects).

glmmTMB's standard errors of β are not lme4's ``σ²(X'V⁻¹X)⁻¹``: ``vcov(m)$cond`` comes from the joint
(observed) information of β and the covariance parameters (for REML, TMB's ``sdreport`` of β as a random
effect), which adds ``J A J'`` with ``J = ∂β̂(θ)/∂θ`` and ``A`` the asymptotic covariance of θ̂. The two
agree on balanced data (sleepstudy) and differ by up to 0.4% here (missing rows). So our SEs are compared
with glmmTMB's after adding that term (``A`` from the Satterthwaite code's deviance Hessian), and with
lme4's as they are wherever lme4 1.1-31 fits the same model (``(Days || Subject)`` is ``diag(Days | Subject)``,
``(1 | subject:visit)`` is ``homdiag(0 + visit | subject)``, ``(1 | subject) + (1 | subject:visit)`` is
``homcs(0 + visit | subject)`` with ρ ≥ 0).
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sla
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import mixedmodels as mm
from mixedmodels import LinearMixedModel
from mixedmodels.cli import main
from mixedmodels.covariance import profiled_dense_criterion
from mixedmodels.covariance.random import RANDOM_STRUCTURES, SINGULAR_TOL, random_structure
from mixedmodels.engine.crossprod import z_matrix
from mixedmodels.exceptions import FormulaError, ModelError
from mixedmodels.inference.compare import boundary_df
from mixedmodels.inference.ddf import Satterthwaite
from mixedmodels.inference.numdiff import jacobian

HERE = Path(__file__).parents[1] / "reference"
REF = json.loads((HERE / "gstruct.json").read_text())["fits"]


@cache
def data(name: str) -> pd.DataFrame:
    if name == "sleep":
        return mm.datasets.load("sleepstudy")
    return pd.read_csv(HERE / "data" / f"gstruct_{name}.csv")


@cache
def fit(formula: str, name: str, reml: bool):
    return mm.lmer(formula, data(name), REML=reml)


#: Reference fit -> (our formula, data set).
GLMMTMB = {
    "sleep_diag": ("Reaction ~ Days + diag(Days | Subject)", "sleep"),
    "sleep_us": ("Reaction ~ Days + us(Days | Subject)", "sleep"),
    "cs3": ("y ~ x1 + x2 + cs(1 + x1 + x2 | g)", "cs"),
    "long_ar1": ("y ~ arm + visit + ar1(0 + visit | subject)", "long"),
    "long_cs": ("y ~ arm + visit + cs(0 + visit | subject)", "long"),
    "long_diag": ("y ~ arm + visit + diag(0 + visit | subject)", "long"),
    "long_homdiag": ("y ~ arm + visit + diag(0 + visit | subject, hom = TRUE)", "long"),
    "long_homcs": ("y ~ arm + visit + homcs(0 + visit | subject)", "long"),
}
#: Reference lme4 fit -> (our formula of the same model, data set).
LME4 = {
    "sleep_diag_lme4": ("Reaction ~ Days + diag(Days | Subject)", "sleep"),
    "sleep_us_lme4": ("Reaction ~ Days + us(Days | Subject)", "sleep"),
    "cs3_us_lme4": ("y ~ x1 + x2 + us(1 + x1 + x2 | g)", "cs"),
    "long_homdiag_lme4": ("y ~ arm + visit + homdiag(0 + visit | subject)", "long"),
    "long_homcs_lme4": ("y ~ arm + visit + cs(0 + visit | subject, hom = TRUE)", "long"),
    "long_us_lme4": ("y ~ arm + visit + us(0 + visit | subject)", "long"),
}
METHODS = ["REML", "ML"]


def _sd_cor(result) -> tuple[np.ndarray, np.ndarray]:
    S = result.covariances[0].to_numpy()
    sd = np.sqrt(np.diag(S))
    return sd, S / np.outer(sd, sd)


def _beta_at(result, theta: np.ndarray) -> np.ndarray:
    """β̂(θ): the GLS estimate at covariance parameters θ."""
    f, _ = result.model.state(theta, fresh=True)
    p = result.nfixed
    return sla.solve_triangular(f.LXX[:p, :p].T, f.LXX[p, :p], lower=False)


# ------------------------------------------------------------------------------------------ glmmTMB
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("key", list(GLMMTMB))
def test_matches_glmmtmb(key, method):
    ref = REF[key][method]
    formula, name = GLMMTMB[key]
    r = fit(formula, name, method == "REML")
    assert r.converged and not r.singular
    assert r.loglik == pytest.approx(ref["logLik"], abs=1e-4)
    assert list(r.design.fixed_names) == ref["fixed"]["names"]
    np.testing.assert_allclose(r.beta, ref["fixed"]["estimate"], rtol=1e-4)
    assert r.sigma == pytest.approx(ref["sigma"], rel=1e-3)
    sd, cor = _sd_cor(r)
    (term,) = ref["terms"].values()
    np.testing.assert_allclose(sd, term["sd"], rtol=1e-3)
    np.testing.assert_allclose(cor, term["cor"], rtol=1e-3, atol=1e-12)
    # glmmTMB's SEs: lme4's plus the uncertainty of θ̂ carried through β̂(θ) (module docstring)
    k = r.theta.size
    J = jacobian(lambda th: _beta_at(r, th), r.theta)
    A = Satterthwaite(r).vcov_varpar[:k, :k]
    se_joint = np.sqrt(np.diag(r.vcov.to_numpy() + J @ A @ J.T))
    np.testing.assert_allclose(se_joint, ref["fixed"]["se"], rtol=1e-4)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("key", list(LME4))
def test_matches_lme4_equivalent(key, method):
    ref = REF[key][method]
    formula, name = LME4[key]
    r = fit(formula, name, method == "REML")
    assert r.loglik == pytest.approx(ref["logLik"], abs=1e-4)
    np.testing.assert_allclose(r.beta, ref["fixed"]["estimate"], rtol=1e-4)
    # cs3_us_lme4 (REML): the surface is flat in θ; lme4's BOBYQA stopped 1.4e-6 higher in logLik than ours,
    # with θ differing in the fourth digit, which moves the intercept's SE by 1.3e-4 (relative)
    se_rtol = 2e-4 if key == "cs3_us_lme4" else 1e-4
    np.testing.assert_allclose(r.fixed_effects["Std. Error"], ref["fixed"]["se"], rtol=se_rtol)
    assert r.sigma == pytest.approx(ref["sigma"], rel=1e-4)
    sd, cor = _sd_cor(r)
    terms = list(ref["terms"].values())
    if key == "long_homcs_lme4":  # (1 | subject:visit) then (1 | subject): s² = both variances, ρ = subject's share
        v_sv, v_s = terms[0]["sd"][0] ** 2, terms[1]["sd"][0] ** 2
        np.testing.assert_allclose(sd, math.sqrt(v_s + v_sv), rtol=1e-3)
        assert cor[1, 0] == pytest.approx(v_s / (v_s + v_sv), rel=1e-3)
    elif len(terms) > 1 or len(terms[0]["sd"]) < len(sd):  # (Days || Subject); (1 | subject:visit)
        np.testing.assert_allclose(sd, [t["sd"][0] for t in terms] if len(terms) > 1 else terms[0]["sd"][0], rtol=1e-3)
        np.testing.assert_allclose(cor, np.eye(len(sd)), atol=1e-12)
    else:
        np.testing.assert_allclose(sd, terms[0]["sd"], rtol=1e-3)
        np.testing.assert_allclose(cor, terms[0]["cor"], rtol=1e-3, atol=1e-6)


def test_cs_is_nested_in_us():
    """cs(1 + x1 + x2 | g) is us with equal correlations: its optimum is below lme4's us optimum, above the diagonal."""
    for method in METHODS:
        cs = fit(GLMMTMB["cs3"][0], "cs", method == "REML")
        dg = fit("y ~ x1 + x2 + diag(1 + x1 + x2 | g)", "cs", method == "REML")
        assert dg.loglik < cs.loglik < REF["cs3_us_lme4"][method]["logLik"]


def test_us_is_lme4_default():
    """``us(x | g)`` is the same model, parameters and fit as ``(x | g)``."""
    a = fit("Reaction ~ Days + us(Days | Subject)", "sleep", True)
    b = mm.lmer("Reaction ~ Days + (Days | Subject)", data("sleep"))
    assert type(a.terms[0].structure) is type(b.terms[0].structure)
    np.testing.assert_array_equal(a.theta, b.theta)
    assert a.theta_names == b.theta_names == ["Subject.(Intercept)", "Subject.Days.(Intercept)", "Subject.Days"]


def test_two_column_cs_is_unstructured():
    """A 2 × 2 compound symmetry (two SDs, one correlation) spans every 2 × 2 covariance: the us optimum, and the
    same Satterthwaite df (derivatives taken in the transformed correlation)."""
    a = fit("Reaction ~ Days + cs(Days | Subject)", "sleep", True)
    b = fit("Reaction ~ Days + us(Days | Subject)", "sleep", True)
    assert a.loglik == pytest.approx(b.loglik, abs=1e-6)
    np.testing.assert_allclose(a.coef_table()["df"], b.coef_table()["df"], rtol=1e-4)
    np.testing.assert_allclose(a.coef_table("kenward-roger")["df"], b.coef_table("kenward-roger")["df"], rtol=1e-4)


# ------------------------------------------------------------------------------------------ Kenward-Roger
@pytest.mark.parametrize(
    "structured, lme4_form",
    [
        ("Reaction ~ Days + diag(Days | Subject)", "Reaction ~ Days + (Days || Subject)"),
        ("y ~ arm + visit + homdiag(0 + visit | subject)", "y ~ arm + visit + (1 | subject:visit)"),
        ("y ~ arm + visit + homcs(0 + visit | subject)", "y ~ arm + visit + (1 | subject) + (1 | subject:visit)"),
    ],
)
def test_kenward_roger_of_linear_structures(structured, lme4_form):
    """KR of a structure linear in its parameters equals KR of the lme4 model it is (pbkrtest-matched code)."""
    name = "sleep" if "Reaction" in structured else "long"
    a = fit(structured, name, True)
    b = mm.lmer(lme4_form, data(name))
    ta, tb = a.coef_table("kenward-roger"), b.coef_table("kenward-roger")
    np.testing.assert_allclose(ta["df"], tb["df"], rtol=1e-4)
    np.testing.assert_allclose(ta["Std. Error"], tb["Std. Error"], rtol=1e-5)
    L = np.eye(a.nfixed)[1:]
    assert a.ddf_calculator("kr").ftest(L)["ddf"] == pytest.approx(b.ddf_calculator("kr").ftest(L)["ddf"], rel=1e-4)


@pytest.mark.parametrize("key", ["cs3", "long_ar1", "long_cs"])
def test_kenward_roger_refused_for_nonlinear_structures(key):
    formula, name = GLMMTMB[key]
    r = fit(formula, name, True)
    with pytest.raises(ModelError, match="Kenward-Roger's method needs covariances linear in their parameters.*use Satterthwaite"):
        r.coef_table("kenward-roger")
    df = r.coef_table("satterthwaite")["df"].to_numpy()
    assert np.all(np.isfinite(df)) and np.all(df > 1)


# ------------------------------------------------------------------------------------------ structures
def _correlation(kind: str, rho: float, p: int) -> np.ndarray:
    i, j = np.indices((p, p))
    if kind in ("cs", "homcs"):
        return np.where(i == j, 1.0, rho)
    if kind in ("ar1", "hetar1"):
        return rho ** np.abs(i - j).astype(float)
    return np.eye(p)


def _definition(kind: str, par: np.ndarray, p: int) -> np.ndarray:
    """``D R(ρ) D`` written from the structure's definition (lme4 2.x's vignette), ρ by the documented map."""
    hom = kind in ("homdiag", "homcs", "ar1")
    n_sd = 1 if hom else p
    sd = np.broadcast_to(par[:n_sd], (p,))
    rho = 0.0
    if kind in ("cs", "homcs", "ar1", "hetar1") and p > 1:
        lo = -1.0 / (p - 1) if kind in ("cs", "homcs") else -1.0
        rho = lo + (1.0 - lo) * (1.0 + math.tanh(par[-1])) / 2.0
    return np.outer(sd, sd) * _correlation(kind, rho, p)


KINDS = [k for k in RANDOM_STRUCTURES if k != "us"]


@pytest.mark.parametrize("p", [1, 2, 3, 5])
@pytest.mark.parametrize("kind", KINDS)
def test_structure_algebra(kind, p):
    s = random_structure(kind, tuple(f"c{i}" for i in range(p)))
    rng = np.random.default_rng(p)
    assert np.allclose(s.lam(s.start()), np.eye(p))  # lme4's start: λ = I
    for _ in range(5):
        par = np.r_[rng.uniform(0.2, 2.0, s.n_sd), rng.uniform(-2.5, 2.5, int(s.has_rho))]
        lam = s.lam(par)
        assert np.allclose(lam, np.tril(lam))
        np.testing.assert_allclose(lam @ lam.T, _definition(kind, par, p), atol=1e-12)
        np.testing.assert_allclose(s.from_phi(s.to_phi(par, 1.7), 1.7), par, rtol=1e-10)
        assert s.on_boundary(par).size == 0
    assert len(s.names("g")) == len(s.phi_labels("g")) == len(s.phi_kinds()) == s.npar == s.start().size == s.lower().size


@pytest.mark.parametrize("kind", ["cs", "homcs", "ar1", "hetar1"])
def test_correlation_at_its_bounds(kind):
    """ρ at either end of its range: λ stays finite and λλ' is the (singular) limit; the fit is on the boundary."""
    p = 4
    s = random_structure(kind, ("a", "b", "c", "d"))
    lo, hi = s.rho_bounds()
    assert (lo, hi) == ((-1 / 3, 1.0) if kind.endswith("cs") else (-1.0, 1.0))
    for rho in (lo, hi):
        par = s.from_phi(np.r_[np.full(s.n_sd, 2.0), rho], 2.0)
        S = s.covariance(par, 1.0)
        np.testing.assert_allclose(S, _correlation(kind, rho, p), atol=1e-12)
        assert np.linalg.eigvalsh(S).min() < 1e-10
        assert s.on_boundary(par).tolist() == [s.npar - 1]
    inside = s.from_phi(np.r_[np.full(s.n_sd, 2.0), hi - 2 * SINGULAR_TOL], 2.0)
    assert s.on_boundary(inside).size == 0
    zero_sd = s.from_phi(np.r_[np.zeros(s.n_sd), 0.3], 2.0)
    assert s.on_boundary(zero_sd).tolist() == list(range(s.n_sd))
    lower, upper = s.phi_bounds()
    assert lower[-1] == lo and upper[-1] == hi and np.all(lower[:-1] == 0) and np.all(np.isinf(upper[:-1]))


@pytest.mark.parametrize("p", [1, 2, 3, 4])
@pytest.mark.parametrize("kind", list(RANDOM_STRUCTURES))
def test_linear_parameters_span_the_structure(kind, p):
    """Kenward–Roger's basis: every covariance of the structure is a combination of the ``E_r``, and there are as
    many ``E_r`` as the covariances have dimensions (the rank of ∂vech(G)/∂par); None exactly when not linear."""
    s = random_structure(kind, tuple(f"c{i}" for i in range(p)))
    rng = np.random.default_rng(7)
    tri = np.tril_indices(p)

    def vech(par):
        return s.covariance(par, 1.0)[tri]

    pars = [np.where(s.lower() == 0, rng.uniform(0.3, 2.0, s.npar), rng.uniform(-1.5, 1.5, s.npar)) for _ in range(12)]
    rank = max(np.linalg.matrix_rank(jacobian(vech, par), tol=1e-7) for par in pars)
    basis = s.linear_basis()
    points = np.array([vech(par) for par in pars])
    if basis is None:
        # not linear: the structure's covariances span more than its own number of dimensions
        assert np.linalg.matrix_rank(points, tol=1e-8) > rank
        assert kind in ("cs", "ar1", "hetar1") and p >= 3
        with pytest.raises(ModelError, match="Kenward-Roger's method is not available"):
            s.linear_parameters()
        return
    assert np.linalg.matrix_rank(points, tol=1e-8) == rank
    E = np.zeros((len(basis), len(tri[0])))
    for r, elements in enumerate(basis):
        M = np.zeros((p, p))
        for a, b in elements:
            assert a >= b
            M[a, b] = M[b, a] = 1.0
        E[r] = M[tri]
    assert len(basis) == rank == np.linalg.matrix_rank(E)
    coef = np.linalg.lstsq(E.T, points.T, rcond=None)[0]
    np.testing.assert_allclose(E.T @ coef, points.T, atol=1e-10)
    if all(len(elements) == 1 for elements in basis):  # the single-element form: γ_r = G[a, b]
        assert s.linear_parameters() == [elements[0] for elements in basis]
    else:
        with pytest.raises(ModelError, match="Kenward-Roger's method is not available"):
            s.linear_parameters()


# ------------------------------------------------------------------------------------------ dense criterion
@st.composite
def designs(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_g = draw(st.integers(4, 7))
    sizes = [draw(st.integers(3, 9)) for _ in range(n_g)]
    g = np.repeat(np.arange(n_g), sizes)
    n = len(g)
    frame = pd.DataFrame({
        "g": [f"g{v}" for v in g],
        "h": [f"h{v}" for v in rng.integers(0, 3, size=n)],
        "f": rng.choice(["a", "b", "c"], size=n),
        "x": rng.normal(size=n),
        "z": rng.uniform(-1, 1, size=n),
        "y": rng.normal(size=n) + 0.4 * g,
    })
    kind = draw(st.sampled_from(KINDS))
    lhs = "0 + f" if kind in ("ar1", "hetar1") else draw(st.sampled_from(["1 + x", "1 + x + z", "0 + f", "x"]))
    rhs = f"{kind}({lhs} | g)"
    if draw(st.booleans()):
        rhs += " + (1 | h)"
    fixed = draw(st.sampled_from(["x", "x + f", "1"]))
    return frame, f"y ~ {fixed} + {rhs}"


def dense(model: LinearMixedModel, theta: np.ndarray, reml: bool) -> float:
    """The criterion from ``V = σ²(Z G Z' + I)``, each term's ``G`` written from its structure's definition."""
    Zs, Gs, start = [], [], 0
    for t in model.terms:
        par = theta[start : start + t.ntheta]
        start += t.ntheta
        G = _definition(t.structure.kind, par, t.p) if t.structure.kind != "us" else t.lambda_matrix(par) @ t.lambda_matrix(par).T
        Zs.append(z_matrix(t).toarray())
        Gs.append(np.kron(np.eye(t.nlevels), G))
    return profiled_dense_criterion(model.design.y, model.design.X, Z=np.hstack(Zs), G=sla.block_diag(*Gs), reml=reml)[0]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(designs(), st.booleans(), st.integers(0, 2**32 - 1))
def test_criterion_equals_dense_likelihood(design, reml, seed):
    frame, formula = design
    try:
        model = LinearMixedModel.from_formula(formula, frame, reml=reml)
    except (ModelError, FormulaError):  # e.g. as many random effects as rows
        assume(False)
    rng = np.random.default_rng(seed)
    theta = np.where(model.lower_bounds == 0, rng.uniform(0.05, 2.5, model.lower_bounds.size), rng.uniform(-2.0, 2.0, model.lower_bounds.size))
    assert model.objective(theta) == pytest.approx(dense(model, theta, reml), rel=1e-8, abs=1e-8)


# ------------------------------------------------------------------------------------------ reports
def test_varcorr_summary_and_json_follow_the_structure():
    cs = fit(GLMMTMB["long_cs"][0], "long", True)
    ar1 = fit(GLMMTMB["long_ar1"][0], "long", True)
    diag = fit(GLMMTMB["long_diag"][0], "long", True)
    hom = fit(GLMMTMB["long_homdiag"][0], "long", True)
    levels = ["visitV1", "visitV2", "visitV3", "visitV4"]
    # cs: four variances and one correlation
    vc = cs.varcorr
    assert vc["var1"].tolist()[:5] == levels + ["visitV1"] and vc["var2"].tolist()[4] == "visitV2" and len(vc) == 6
    assert vc["sdcor"][4] == pytest.approx(REF["long_cs"]["REML"]["terms"]["subject"]["cor"][1][0], rel=1e-3)
    # ar1: one SD (named by the first level, as glmmTMB prints it) and one correlation
    vc = ar1.varcorr
    assert vc["var1"].tolist()[:2] == ["visitV1", "visitV1"] and vc["var2"].tolist()[1] == "visitV2" and len(vc) == 3
    assert vc["sdcor"][1] == pytest.approx(REF["long_ar1"]["REML"]["terms"]["subject"]["cor"][1][0], rel=1e-3)
    assert len(diag.varcorr) == 5 and diag.varcorr["var2"].isna().all()
    assert len(hom.varcorr) == 2
    text = str(cs.summary())
    rho = round(float(cs.varcorr["sdcor"][4]), 2)
    assert " subject  visitV1 " in text and f"{rho:.2f} (cs)" in text and text.count("(cs)") == 1
    text = ar1.summary().random_effects()
    assert text.count("visitV") == 1 and "(ar1)" in text  # one SD row
    assert "Corr" not in diag.summary().random_effects()
    d = cs.to_dict()
    re_rows = [(r["term1"], r["term2"]) for r in d["random_effects"] if r["group"] == "subject"]
    assert re_rows == [(v, None) for v in levels] + [("visitV1", "visitV2")]
    (term,) = d["random_terms"]
    assert term["structure"] == "cs" and term["columns"] == levels
    assert [p["name"] for p in term["parameters"]] == [f"sd({v}|subject)" for v in levels] + ["cor(cs|subject)"]
    assert json.dumps(d)  # JSON-ready
    assert hom.theta_names == ["subject.*"] and ar1.theta_names == ["subject.*", "subject.rho"]


def test_save_load_round_trip(tmp_path):
    r = fit(GLMMTMB["long_ar1"][0], "long", True)
    path = r.save(tmp_path / "ar1.json")
    back = mm.load(path)
    assert back.formula == r.formula and isinstance(back.terms[0].structure, type(r.terms[0].structure))
    np.testing.assert_array_equal(back.theta, r.theta)
    assert back.loglik == pytest.approx(r.loglik, abs=1e-10)
    pd.testing.assert_frame_equal(back.varcorr, r.varcorr)
    pd.testing.assert_frame_equal(back.coef_table(), r.coef_table())


def test_profile_interval_of_a_structure_correlation():
    """The profile works on the SD/correlation scale of the structure: ρ's interval lies inside (−1, 1) around ρ̂."""
    r = fit(GLMMTMB["long_ar1"][0], "long", True)
    ci = r.confint(parm=[".sig01", ".sig02"])
    ml = r.refit_ml(warn=False)
    sd, rho = ml.terms[0].structure.to_phi(ml.theta, ml.sigma)
    lo, hi = ci.loc[".sig02"]
    assert -1 < lo < rho < hi < 1
    assert ci.loc[".sig01"].iloc[0] < sd < ci.loc[".sig01"].iloc[1]


def test_hetar1_nests_ar1():
    """glmmTMB 1.1.5 has no heterogeneous AR(1): it is checked by the dense criterion above, and here it must reach at
    least ar1's optimum (its special case of equal SDs) and, with two levels, be the unstructured model."""
    ar1 = fit(GLMMTMB["long_ar1"][0], "long", True)
    het = fit("y ~ arm + visit + ar1(0 + visit | subject, hom = FALSE)", "long", True)
    assert het.terms[0].structure.kind == "hetar1" and het.npar == ar1.npar + 3
    assert het.loglik >= ar1.loglik - 1e-8
    two = data("long").query("visit in ['V1', 'V2']")
    a = mm.lmer("y ~ arm + visit + hetar1(0 + visit | subject)", two)
    b = mm.lmer("y ~ arm + visit + (0 + visit | subject)", two)
    assert a.loglik == pytest.approx(b.loglik, abs=1e-6)


def test_bootstrap_interval_of_a_structure():
    r = fit(GLMMTMB["long_ar1"][0], "long", True)
    ci = r.confint(method="boot", nsim=20, seed=1)
    assert list(ci.index[:3]) == [".sig01", ".sig02", ".sigma"]
    assert -1 < ci.loc[".sig02"].iloc[0] < ci.loc[".sig02"].iloc[1] < 1


def test_singular_correlation():
    """Random effects that do not vary across visits within a subject: ρ goes to 1, a boundary (singular) fit
    named by the correlation parameter, without a convergence warning."""
    rng = np.random.default_rng(1)
    rows = [(f"S{s}", f"V{v}", 1 + b + rng.normal()) for s, b in enumerate(rng.normal(size=30) * 1.5) for v in range(4) for _ in range(2)]
    frame = pd.DataFrame(rows, columns=["subject", "visit", "y"])
    with pytest.warns(mm.SingularFitWarning, match=r"at the boundary: subject\.rho"):
        r = mm.lmer("y ~ 1 + homcs(0 + visit | subject)", frame)
    assert r.singular and r.converged and r.singular_terms == ["subject.rho"]
    assert r.varcorr["sdcor"][1] == pytest.approx(1.0, abs=SINGULAR_TOL)
    # the same model as (1 | subject): the subject's variance is the whole of s²
    ri = mm.lmer("y ~ 1 + (1 | subject)", frame)
    assert r.loglik == pytest.approx(ri.loglik, abs=1e-5)


def test_compare_boundary_df():
    sleep = data("sleep")
    ri = mm.lmer("Reaction ~ Days + (1 | Subject)", sleep, REML=False)
    dg = mm.lmer("Reaction ~ Days + diag(Days | Subject)", sleep, REML=False)
    us = mm.lmer("Reaction ~ Days + (Days | Subject)", sleep, REML=False)
    cs = mm.lmer("Reaction ~ Days + cs(Days | Subject)", sleep, REML=False)
    assert boundary_df(ri, dg) == 0  # one more variance, no covariance
    assert boundary_df(ri, us) == boundary_df(ri, cs) == 1
    assert boundary_df(dg, us) is None  # a covariance added: no boundary
    table = mm.compare(ri=ri, dg=dg).table
    assert table.loc["dg", "Df"] == 1 and table.loc["dg", "Pr(>Chisq) boundary"] == pytest.approx(
        0.5 * table.loc["dg", "Pr(>Chisq)"], rel=1e-9
    )


# ------------------------------------------------------------------------------------------ formulas and errors
def test_structure_names_are_only_special_as_terms():
    """A column called ``diag`` (or ``cs``) is an ordinary variable, in the fixed part and inside a term."""
    frame = data("cs").rename(columns={"x1": "diag"}).assign(cs=lambda d: np.exp(d["x2"]))
    a = mm.lmer("y ~ diag + log(cs) + (1 + diag | g)", frame)
    assert list(a.design.fixed_names) == ["(Intercept)", "diag", "log(cs)"] and a.terms[0].cnames == ("(Intercept)", "diag")
    assert a.terms[0].structure.kind == "us"
    b = mm.lmer("y ~ diag + log(cs) + diag(1 + diag | g)", frame)
    assert b.terms[0].structure.kind == "diag" and b.terms[0].cnames == ("(Intercept)", "diag")


@pytest.mark.parametrize(
    "formula, error, match",
    [
        ("y ~ arm + foo(0 + visit | subject)", FormulaError, r"unknown covariance structure 'foo'.*us, diag, homdiag, cs, homcs, ar1, hetar1"),
        ("y ~ arm + cs(0 + visit | subject, het = TRUE)", FormulaError, r"unknown argument 'het' of cs\(\).*hom = TRUE or FALSE"),
        ("y ~ arm + us(0 + visit | subject, hom = TRUE)", FormulaError, r"unknown argument 'hom' of us\(\)"),
        ("y ~ arm + diag(0 + visit | subject, hom = yes)", FormulaError, r"hom must be TRUE or FALSE"),
        ("y ~ arm + diag(0 + visit | subject, TRUE)", FormulaError, r"takes one term and named arguments"),
        ("y ~ arm + diag(rep || subject)", FormulaError, r"'\|\|' inside diag\(\)"),
        ("y ~ arm + ar1(0 + rep | subject)", ModelError, r"ar1\(\) needs the indicator columns of one factor, and 'rep' is numeric; write factor\(rep\)"),
        ("y ~ arm + ar1(visit | subject)", ModelError, r"ar1\(\) needs one column per level of the factor, without an intercept"),
        ("y ~ arm + ar1(0 + visit + arm | subject)", ModelError, r"ar1\(\) needs the indicator columns of one factor.*uses 'arm', 'visit'"),
        ("y ~ arm + hetar1(0 + visit:arm | subject)", ModelError, r"hetar1\(\) needs the indicator columns of one factor"),
    ],
)
def test_bad_structures(formula, error, match):
    with pytest.raises(error, match=match):
        mm.lmer(formula, data("long"))


def test_factor_call_in_ar1():
    frame = data("long").assign(vnum=lambda d: d["visit"].str[1:].astype(int))
    a = mm.lmer("y ~ arm + visit + ar1(0 + factor(vnum) | subject)", frame)
    b = fit(GLMMTMB["long_ar1"][0], "long", True)
    assert a.loglik == pytest.approx(b.loglik, abs=1e-8)


def test_cli_reports_a_bad_structure_in_one_line(capsys, tmp_path):
    path = tmp_path / "long.csv"
    data("long").to_csv(path, index=False)
    code = main(["fit", str(path), "--formula", "y ~ arm + ar1(0 + rep | subject)"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "ar1() needs the indicator columns of one factor" in err
    code = main(["fit", str(path), "--formula", "y ~ arm + cs(0 + visit | subject)", "--json"])
    out = capsys.readouterr().out
    assert code == 0 and json.loads(out)["random_terms"][0]["structure"] == "cs"
