"""fit_many against lme4/lmerTest (tests/reference/fit_many.R) and against mm.lmer fitted response by response."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.engine.threads import single_threaded_blas
from mixedmodels.exceptions import DataError, FormulaError, ModelError
from mixedmodels.many import fit_many
from mixedmodels.many.lean import SharedDesign
from mixedmodels.many.results import p_adjust_bh
from mixedmodels.many.single import summarize

REF = json.loads((Path(__file__).parents[1] / "reference" / "fit_many.json").read_text())
DATA = pd.read_csv(Path(__file__).parents[1] / "reference" / "data" / "fit_many.csv")


def _lmer(response: str, formula: str, data: pd.DataFrame, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer(f"{response} {formula}", data, **kw)


def simulated(n_resp: int = 40, n_ind: int = 40, per: int = 5, n_batch: int = 8, seed: int = 5) -> pd.DataFrame:
    """Crossed individuals and batches, a covariate, responses with assorted variance components."""
    rng = np.random.default_rng(seed)
    n = n_ind * per
    ind = np.repeat(np.arange(n_ind), per)
    batch = rng.integers(0, n_batch, n)
    x = rng.normal(size=n)
    sd_i, sd_b, beta = rng.uniform(0, 1.5, n_resp), rng.uniform(0, 1, n_resp), rng.normal(0, 0.3, n_resp)
    Y = (beta * x[:, None] + sd_i * rng.standard_normal((n_ind, n_resp))[ind] + sd_b * rng.standard_normal((n_batch, n_resp))[batch]
         + rng.standard_normal((n, n_resp)) + 5.0)
    frame = pd.DataFrame({"individual": [f"I{i:02d}" for i in ind], "batch": [f"B{b}" for b in batch], "x": x})
    return pd.concat([frame, pd.DataFrame(Y, columns=[f"gene_{j:03d}" for j in range(n_resp)])], axis=1)


# ---------------------------------------------------------------------------------------------- lme4 / lmerTest
@pytest.mark.parametrize("key,reml", [("reml", True), ("ml", False), ("slope", True)])
def test_matches_lme4_and_lmertest(key, reml):
    entries = REF[key]
    res = fit_many(entries[0]["formula"], DATA, [e["response"] for e in entries], REML=reml)
    assert res.method == ("REML" if reml else "ML") and res.n_failed == 0
    for e in entries:
        f = res.fits.loc[e["response"]]
        fixed = res.fixed[res.fixed["response"] == e["response"]]
        assert int(f["nobs"]) == e["nobs"]
        assert bool(f["singular"]) == e["singular"]
        np.testing.assert_allclose([f[n] for n in e["theta_names"]], e["theta"], rtol=1e-3, atol=2e-4)
        assert f["loglik"] == pytest.approx(e["loglik"], abs=1e-6)
        assert f["sigma"] == pytest.approx(e["sigma"], rel=1e-4)
        assert list(fixed["term"]) == e["terms"]
        np.testing.assert_allclose(fixed["estimate"], e["estimate"], rtol=1e-4, atol=1e-8)
        np.testing.assert_allclose(fixed["se"], e["se"], rtol=1e-4)
        np.testing.assert_allclose(fixed["df"], e["df"], rtol=1e-4 if not e["singular"] else 2e-3)
        np.testing.assert_allclose(fixed["p_value"], e["p_value"], rtol=1e-3, atol=1e-12)
        fractions = res.variance_fractions.loc[e["response"]]
        assert set(fractions.index) == set(e["fractions"])
        for name, value in e["fractions"].items():
            assert fractions[name] == pytest.approx(value, rel=1e-4, abs=1e-6)
        assert fractions.sum() == pytest.approx(1.0)


def test_missing_values_dropped_per_response_as_lmer():
    genes = ["gene_05", "gene_09", "gene_11", "gene_01"]
    res = fit_many("~ x + condition + (1 | individual) + (1 | batch)", DATA, genes)
    assert list(res.fits["nobs"]) == [117, 117, 119, 120]
    for g in genes:
        fit = _lmer(g, "~ x + condition + (1 | individual) + (1 | batch)", DATA)
        assert res.fits.loc[g, "loglik"] == pytest.approx(fit.loglik, rel=1e-10)
        np.testing.assert_allclose(res.fixed.loc[res.fixed["response"] == g, "estimate"], fit.beta, rtol=1e-5, atol=1e-8)


# ---------------------------------------------------------------------------------------------- the ordinary fit
@pytest.fixture(scope="module")
def sim():
    return simulated()


@pytest.fixture(scope="module")
def sim_fits(sim):
    cols = [c for c in sim.columns if c.startswith("gene_")]
    return cols, {c: _lmer(c, "~ x + (1 | individual) + (1 | batch)", sim) for c in cols}


def test_lean_criterion_is_the_engines(sim):
    """The lean evaluator's criterion equals the blocked factor's at any θ, for several kinds of terms."""
    rng = np.random.default_rng(0)
    data = sim.assign(z=rng.normal(size=len(sim)), w=rng.uniform(0.5, 2.0, len(sim)))
    cases = [("~ x + (1 | individual) + (1 | batch)", {}), ("~ x + (x | individual) + (1 | batch)", {}),
             ("~ x + (1 | batch) + (0 + z | batch) + (1 | individual)", {}), ("~ x + (1 | individual)", {"weights": "w"}),
             ("~ x + (1 | batch) + (z | individual)", {"offset": "z"}), ("~ x + cs(1 + z | individual) + (z | batch)", {}),
             ("~ 0 + x + (1 | individual) + (1 | batch)", {})]
    for formula, kw in cases:
        model = _lmer("gene_000", formula, data, **kw).model
        shared = SharedDesign(model)
        Y = data[["gene_001", "gene_002"]].to_numpy()
        u0, ur, yy, shift = shared.response_products(Y)
        for j in range(2):
            ev = shared.evaluator(u0[:, j], ur[:, j], yy[j], shift[j])
            one = model.with_response(Y[:, j])
            for _ in range(3):
                theta = np.maximum(model.theta_start * rng.uniform(0.05, 2.0, model.theta_start.size), model.lower_bounds)
                for reml in (True, False):
                    assert ev.criterion(theta, reml) == pytest.approx(one.criterion_at(theta, reml=reml), rel=1e-11), formula


def test_same_numbers_as_lmer_at_the_same_theta(sim, sim_fits):
    """Given lmer's θ̂, the lean path reads off the same β̂, SEs, σ̂ and Satterthwaite df."""
    cols, fits = sim_fits
    model = fits[cols[0]].model
    shared = SharedDesign(model)
    u0, ur, yy, shift = shared.response_products(sim[cols].to_numpy())
    with single_threaded_blas():
        for j, c in enumerate(cols):
            fit = fits[c]
            table = fit.coef_table()
            r = summarize(shared, shared.evaluator(u0[:, j], ur[:, j], yy[j], shift[j]), fit.theta, fit.objective, fit.fit_record)
            np.testing.assert_allclose(r.beta, fit.beta, rtol=1e-10)
            np.testing.assert_allclose(r.se, table["Std. Error"], rtol=1e-10)
            assert r.sigma == pytest.approx(fit.sigma, rel=1e-12)
            np.testing.assert_allclose(r.df, table["df"], rtol=1e-6)


def test_fits_equal_lmer_response_by_response(sim, sim_fits):
    """Fitted by the same optimizer with the same settings: the criterion at the optimum to 1e-10 and every number to
    1e-6 unless BOBYQA's path parted from lmer's on a rounding difference (criteria differing by ~1e-16 relative
    compare differently), which leaves a difference within the optimizer's tolerance (ftol_abs 1e-8)."""
    cols, fits = sim_fits
    res = fit_many("~ x + (1 | individual) + (1 | batch)", sim, cols)
    close = []
    for c in cols:
        fit, f = fits[c], res.fits.loc[c]
        table = fit.coef_table()
        fixed = res.fixed[res.fixed["response"] == c]
        assert f["loglik"] == pytest.approx(fit.loglik, rel=1e-10)
        assert bool(f["singular"]) == fit.singular and bool(f["converged"]) == fit.converged
        assert f["message"] == "; ".join(fit.warnings)
        theta = np.array([f[n] for n in fit.theta_names])
        pairs = [(theta, fit.theta), (fixed["estimate"].to_numpy(), fit.beta), (fixed["se"].to_numpy(), table["Std. Error"].to_numpy()),
                 (fixed["df"].to_numpy(), table["df"].to_numpy()), (np.array([f["sigma"]]), np.array([fit.sigma]))]
        worst = max(float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-4))) for a, b in pairs)
        assert worst < 2e-3, c
        close.append(worst < 1e-6)
    assert np.mean(close) >= 0.85


def test_results_do_not_depend_on_processes_or_chunks(sim):
    cols = [c for c in sim.columns if c.startswith("gene_")][:24]
    one = fit_many("~ x + (1 | individual) + (1 | batch)", sim, cols, n_jobs=1)
    two = fit_many("~ x + (1 | individual) + (1 | batch)", sim, cols, n_jobs=2, chunk_size=5)
    pd.testing.assert_frame_equal(one.fits, two.fits)
    pd.testing.assert_frame_equal(one.fixed, two.fixed)
    pd.testing.assert_frame_equal(one.variance_fractions, two.variance_fractions)


def test_weights_and_offset_as_lmer(sim):
    rng = np.random.default_rng(3)
    data = sim.assign(w=rng.uniform(0.5, 2.0, len(sim)), off=rng.normal(size=len(sim)))
    res = fit_many("~ x + (1 | individual) + (1 | batch)", data, ["gene_003", "gene_004"], weights="w", offset="off")
    for c in ["gene_003", "gene_004"]:
        fit = _lmer(c, "~ x + (1 | individual) + (1 | batch)", data, weights="w", offset="off")
        assert res.fits.loc[c, "loglik"] == pytest.approx(fit.loglik, rel=1e-10)
        np.testing.assert_allclose(res.fixed.loc[res.fixed["response"] == c, "estimate"], fit.beta, rtol=1e-5)


def test_responses_as_a_frame_equal_columns(sim):
    cols = ["gene_000", "gene_001", "gene_002"]
    by_name = fit_many("~ x + (1 | individual) + (1 | batch)", sim, "gene_00[0-2]")
    by_frame = fit_many("~ x + (1 | individual) + (1 | batch)", sim.drop(columns=cols), sim[cols])
    assert by_name.responses == cols
    pd.testing.assert_frame_equal(by_name.fixed, by_frame.fixed)


def test_degenerate_and_failed_responses(sim):
    data = sim.assign(const=2.0, linear=3.0 + 2.0 * sim["x"], inf=sim["gene_000"].where(sim.index != 4, np.inf),
                      sparse=np.where(np.arange(len(sim)) < 3, 1.0, np.nan))
    res = fit_many("~ x + (1 | individual) + (1 | batch)", data, ["const", "linear", "gene_000", "inf", "sparse"])
    for c in ["const", "linear"]:
        fit = _lmer(c, "~ x + (1 | individual) + (1 | batch)", data)
        assert res.fits.loc[c, "sigma"] == 0.0 == fit.sigma
        np.testing.assert_allclose(res.fixed.loc[res.fixed["response"] == c, "estimate"], fit.beta, atol=1e-10)
        assert res.fixed.loc[res.fixed["response"] == c, "df"].isna().all()
    assert "infinite" in res.fits.loc["inf", "message"] and res.fits.loc["inf", "nobs"] == 0
    assert "observed" in res.fits.loc["sparse", "message"]
    assert res.n_failed == 2 and res.fits.loc["gene_000", "nobs"] == len(sim)
    json.dumps(res.to_dict(), allow_nan=False)


def test_bh_adjustment_as_r():
    p = np.array([0.001, 0.02, np.nan, 0.03, 0.5, 0.04, 0.0001, 0.9, 0.03])
    expected = [0.004, 0.048, np.nan, 0.048, 0.5714285714285714, 0.05333333333333333, 0.0008, 0.9, 0.048]  # R's p.adjust(p, "BH")
    np.testing.assert_allclose(p_adjust_bh(p), expected, rtol=1e-14)


def test_bh_per_term_across_responses(sim):
    res = fit_many("~ x + (1 | individual) + (1 | batch)", sim, "gene_*")
    for term, rows in res.fixed.groupby("term"):
        np.testing.assert_allclose(rows["p_adjusted"], p_adjust_bh(rows["p_value"].to_numpy()))
    assert (res.fixed["p_adjusted"] >= res.fixed["p_value"]).all()


def test_outputs(sim, tmp_path):
    res = fit_many("~ x + (1 | individual) + (1 | batch)", sim, "gene_00*", ddf=None)
    assert res.fixed["df"].isna().all() and res.fixed["p_value"].isna().all()
    res = fit_many("~ x + (1 | individual) + (1 | batch)", sim, "gene_00*")
    table = res.table()
    assert list(table.index) == res.responses
    assert {"fraction.individual", "fraction.batch", "fraction.x", "fraction.Residuals", "x.df", "x.p_adjusted"} <= set(table.columns)
    for suffix in (".csv", ".parquet", ".tsv"):
        path = res.write(tmp_path / f"out{suffix}")
        back = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", index_col=0)
        np.testing.assert_allclose(back["x.estimate"].to_numpy(), table["x.estimate"].to_numpy(), rtol=1e-12)
    with pytest.raises(DataError, match="csv"):
        res.write(tmp_path / "out.xlsx")
    d = res.to_dict()
    assert d["n_responses"] == 10 and d["responses"][0]["fixed"][1]["term"] == "x"
    json.dumps(d, allow_nan=False)
    assert "variance fractions" in res.summary() and len(res.top("x", 3)) == 3


def test_errors(sim):
    with pytest.raises(FormulaError, match="one-sided"):
        fit_many("gene_000 ~ x + (1 | individual)", sim, "gene_*")
    with pytest.raises(DataError, match="matches"):
        fit_many("~ x + (1 | individual)", sim, "protein_*")
    with pytest.raises(DataError, match="numeric"):
        fit_many("~ x + (1 | individual)", sim, ["gene_000", "batch"])
    with pytest.raises(DataError, match="not in the data"):
        fit_many("~ x + (1 | individual)", sim, ["gene_000", "nope"])
    with pytest.raises(ModelError, match="random-effects"):
        fit_many("~ x", sim, "gene_*")
    with pytest.raises(ModelError, match="Satterthwaite"):
        fit_many("~ x + (1 | individual)", sim, "gene_*", ddf="kenward-roger")
