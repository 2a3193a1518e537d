"""Fitting on Dask DataFrames (mixedmodels.scale): the same fit as in memory, on a distributed LocalCluster."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import mixedmodels as mm
from mixedmodels.cli import main
from mixedmodels.exceptions import DataError, ModelError
from mixedmodels.inference.rlrt import exact_rlrt
from mixedmodels.scale import DaskResults

TOL = 1e-8
pytestmark = pytest.mark.filterwarnings("ignore::mixedmodels.exceptions.MixedModelsWarning")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    with cluster, distributed.Client(cluster) as c:
        yield c


def make_data(seed: int = 0, n: int = 4000) -> pd.DataFrame:
    """Groups g (80 levels, a random intercept and slope), h (25, crossed with g), s (4 per g: nested),
    a string factor f, a categorical c, and missing values in x, y and f."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 80, n)
    h = rng.integers(0, 25, n)
    s = rng.integers(0, 4, n)
    x = rng.normal(size=n)
    u = rng.multivariate_normal([0, 0], [[1, 0.4], [0.4, 0.5]], size=80)
    f = rng.choice(["lo", "mid", "hi"], n)
    c = pd.Categorical(rng.choice(["b", "a", "c"], n), categories=["c", "b", "a"])
    y = (2 + 0.5 * x + 0.3 * (f == "hi") + u[g, 0] + u[g, 1] * x + 0.6 * rng.normal(size=25)[h]
         + 0.5 * rng.normal(size=(80, 4))[g, s] + rng.normal(size=n))
    df = pd.DataFrame({"g": g, "h": np.array([f"h{i:02d}" for i in h], dtype=object), "s": s, "x": x, "f": f, "c": c, "y": y})
    for col, k in (("x", 40), ("y", 30), ("f", 20)):
        df.loc[rng.choice(n, k, replace=False), col] = np.nan
    return df


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.abs(a)))


def fit_both(formula: str, df: pd.DataFrame, npartitions: int = 5, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mem = mm.lmer(formula, df, **kw)
        dsk = mm.lmer(formula, dd.from_pandas(df, npartitions=npartitions), **kw)
    return mem, dsk


def assert_same_fit(mem, dsk) -> None:
    assert isinstance(dsk, DaskResults)
    assert dsk.nobs == mem.nobs and dsk.n_dropped == mem.n_dropped
    assert list(dsk.design.fixed_names) == list(mem.design.fixed_names)
    assert dsk.theta_names == mem.theta_names
    assert dsk.ngroups == mem.ngroups
    assert [list(t.levels) for t in dsk.terms] == [list(t.levels) for t in mem.terms]
    assert dsk.warnings == mem.warnings
    assert rel(mem.theta, dsk.theta) < TOL
    assert rel(mem.beta, dsk.beta) < TOL
    assert rel(mem.bse, dsk.bse) < TOL
    assert rel(mem.loglik, dsk.loglik) < TOL
    assert rel(mem.sigma, dsk.sigma) < TOL


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ x + f + c + (1 | g/s)",  # nested: (1 | g) + (1 | s:g)
        "y ~ x + f + (1 | g) + (1 | h)",  # crossed
        "y ~ x + f + (x | g)",  # random slope
    ],
)
def test_same_fit_as_in_memory(client, formula):
    mem, dsk = fit_both(formula, make_data())
    assert mem.n_dropped == 90
    assert_same_fit(mem, dsk)
    assert str(dsk.summary()).splitlines()[:3] == str(mem.summary()).splitlines()[:3]
    ranef_mem, ranef_dsk = mem.ranef(condvar=True), dsk.ranef(condvar=True)
    for name in ranef_mem:
        pd.testing.assert_index_equal(ranef_dsk[name].index, ranef_mem[name].index)
        np.testing.assert_allclose(ranef_dsk[name].to_numpy(), ranef_mem[name].to_numpy(), rtol=1e-6, atol=1e-8)


def test_ml_fit_df_and_tests(client):
    df = make_data(1)
    mem, dsk = fit_both("y ~ x + f + (1 | g) + (1 | h)", df, REML=False)
    assert_same_fit(mem, dsk)
    assert rel(mem.deviance, dsk.deviance) < TOL
    a, b = mem.coef_table("satterthwaite"), dsk.coef_table("satterthwaite")
    np.testing.assert_allclose(b["df"], a["df"], rtol=1e-5)
    mem_reml, dsk_reml = fit_both("y ~ x + f + (1 | g) + (1 | h)", df)
    a, b = mem_reml.coef_table("kenward-roger"), dsk_reml.coef_table("kenward-roger")
    np.testing.assert_allclose(b["df"], a["df"], rtol=1e-6)
    np.testing.assert_allclose(b["Std. Error"], a["Std. Error"], rtol=1e-7)
    L = np.array([[0, 0, 1.0, 0], [0, 0, 0, 1.0]])
    np.testing.assert_allclose(dsk_reml.contest(L).to_numpy(dtype=float), mem_reml.contest(L).to_numpy(dtype=float), rtol=1e-5)
    comp_mem = mm.compare(null=mm.lmer("y ~ x + f + (1 | g)", df, REML=False), alt=mem)
    comp_dsk = mm.compare(null=mm.lmer("y ~ x + f + (1 | g)", dd.from_pandas(df, npartitions=3), REML=False), alt=dsk)
    np.testing.assert_allclose(comp_dsk.table["Chisq"].iloc[1], comp_mem.table["Chisq"].iloc[1], rtol=1e-6)


def test_rank_deficiency_and_messages(client):
    df = make_data(2)
    df["x2"] = 2 * df["x"]
    df["w"] = np.random.default_rng(9).normal(size=len(df)) * 1e4  # on another scale: lme4's checkScaleX warning
    df.loc[df.index[:3], "h"] = ""  # an empty string is a level of its own
    mem, dsk = fit_both("y ~ x + x2 + w + (1 | h)", df)
    assert dsk.design.dropped_columns == mem.design.dropped_columns == ("x2",)
    assert any("rank deficient" in m for m in dsk.warnings) and any("scales" in m for m in dsk.warnings)
    assert any("empty strings" in m for m in dsk.warnings)
    assert_same_fit(mem, dsk)


def test_levels_seen_only_with_missing_values(client):
    df = make_data(3)
    df.loc[df["g"] == 7, "y"] = np.nan  # a grouping level whose rows are all incomplete
    df["k"] = np.where(df["g"] == 7, "only-missing", np.where(df["x"].fillna(0) > 0, "p", "q"))
    mem, dsk = fit_both("y ~ x + k + (1 | g)", df)  # level "only-missing" of k exists only on dropped rows
    assert "7" not in list(dsk.terms[0].levels)
    assert_same_fit(mem, dsk)


def test_row_level_quantities_lazily(client):
    df = make_data(4)
    ddf = dd.from_pandas(df, npartitions=4)
    mem = mm.lmer("y ~ x + f + (1 | g) + (1 | h)", df)
    dsk = mm.lmer("y ~ x + f + (1 | g) + (1 | h)", ddf)
    fitted = dsk.fitted_dask().compute()
    np.testing.assert_allclose(fitted.to_numpy(), mem.fitted, rtol=1e-7)
    assert list(fitted.index) == list(mem.design.row_index)
    np.testing.assert_allclose(dsk.residuals_dask().compute().to_numpy(), mem.residuals, rtol=1e-6, atol=1e-9)
    pred = dsk.predict(ddf).compute()
    assert np.isnan(pred.loc[~df[["x", "f"]].notna().all(axis=1)]).all()
    np.testing.assert_allclose(pred.loc[mem.design.row_index].to_numpy(), mem.fitted, rtol=1e-7)
    new = df.dropna().head(5)
    np.testing.assert_allclose(dsk.predict(new), mem.predict(new), rtol=1e-8)
    for read in (lambda f: f.fitted, lambda f: f.resid, lambda f: f.anova(), lambda f: f.simulate(1), lambda f: f.confint("profile")):
        with pytest.raises(ModelError, match="rows"):
            read(dsk)
    assert dsk.confint("wald").shape == mem.confint("wald").shape


def test_exact_rlrt_from_cross_products(client):
    df = make_data(5)
    mem, dsk = fit_both("y ~ x + (1 | h)", df)
    a, b = exact_rlrt(mem, nsim=3000, seed=3), exact_rlrt(dsk, nsim=3000, seed=3)
    assert rel(a.statistic, b.statistic) < 1e-7
    assert a.p_value == b.p_value
    np.testing.assert_allclose(b.sample, a.sample, rtol=1e-6, atol=1e-9)


def test_refused_with_a_clear_error(client):
    ddf = dd.from_pandas(make_data(), npartitions=2)
    with pytest.raises(ModelError, match="moments"):
        mm.lmer("y ~ scale(x) + (1 | g)", ddf)
    with pytest.raises(ModelError, match="weights"):
        mm.lmer("y ~ x + (1 | g)", ddf, weights="x")
    with pytest.raises(DataError, match="unknown column"):
        mm.lmer("y ~ nope + (1 | g)", ddf)


def test_cli_fit_parquet_files(client, tmp_path, capsys):
    df = make_data(6).dropna()
    df["f"] = df["f"].astype(str)
    df["c"] = df["c"].astype(str)
    for i in range(3):
        df.iloc[i * len(df) // 3 : (i + 1) * len(df) // 3].to_parquet(tmp_path / f"part{i}.parquet")
    formula = "y ~ x + f + (1 | g) + (1 | h)"
    assert main(["fit", str(tmp_path / "*.parquet"), "--dask", "--formula", formula, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    mem = mm.lmer(formula, df)
    assert out["nobs"] == mem.nobs
    # θ to 1e-7 here: the in-memory fit itself, on these rows shuffled, moves θ by up to 3.8e-8 relative
    # (BOBYQA stops within xtol_abs = 1e-8 of the optimum, wherever rounding steers it)
    np.testing.assert_allclose(out["theta"], mem.theta, rtol=1e-7)
    np.testing.assert_allclose([r["estimate"] for r in out["fixed_effects"]], mem.beta, rtol=TOL)
    assert main(["fit", str(tmp_path / "none*.parquet"), "--dask", "--formula", formula]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mixedmodels: error: no file") and err.count("\n") == 1


def test_zz_and_partition_sums():
    from mixedmodels.engine.crossprod import CrossProducts, z_matrix

    df = make_data(7).dropna()
    design = mm.LinearMixedModel.from_formula("y ~ x + (x | g) + (1 | h)", df).design
    cp = CrossProducts.from_arrays(design.terms, design.X, design.y)
    Z = pd.concat([pd.DataFrame(z_matrix(t).toarray()) for t in design.terms], axis=1).to_numpy()
    np.testing.assert_allclose(cp.zz().toarray(), Z.T @ Z, rtol=1e-12, atol=1e-9)
