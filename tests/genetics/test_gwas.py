"""The association scan against dense brute-force likelihoods, its inputs, outputs and errors, and the CLI."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sla
from scipy import optimize, stats

from mixedmodels.cli import main
from mixedmodels.engine.threads import single_threaded_blas
from mixedmodels.exceptions import DataError
from mixedmodels.genetics import Kinship, grm, gwas, read_kinship, write_kinship
from mixedmodels.genetics.gwas import double_centre
from mixedmodels.genetics.plink import PlinkGenotypes, read_sample_table

DATA = Path(__file__).parents[1] / "reference" / "data" / "gwas"


@pytest.fixture(scope="module")
def inputs():
    pheno = read_sample_table(DATA / "sim.pheno", "phenotype")
    covar = read_sample_table(DATA / "sim.covar", "covariates")
    y = pheno["y"].to_numpy()
    ok = np.isfinite(y)
    W = np.column_stack([np.ones(ok.sum()), covar.to_numpy()[ok]])
    K = double_centre(grm(DATA / "sim").matrix[np.ix_(ok, ok)])
    geno = PlinkGenotypes(DATA / "sim")
    return y[ok], W, K, geno, np.flatnonzero(ok)


def _dense(y, X, K, lam, reml):
    """GEMMA's log-likelihoods at λ by dense algebra: V = λK + I."""
    n, p = X.shape
    with single_threaded_blas():
        C = sla.cho_factor(lam * K + np.eye(n), lower=True)
        ViX, Viy = sla.cho_solve(C, X), sla.cho_solve(C, y)
    M = X.T @ ViX
    beta = np.linalg.solve(M, X.T @ Viy)
    a1 = y @ Viy - (X.T @ Viy) @ beta
    logdet = 2.0 * np.sum(np.log(np.diag(C[0])))
    if reml:
        df = n - p
        value = (0.5 * df * (math.log(df) - math.log(2 * math.pi) - 1) - 0.5 * logdet
                 - 0.5 * (np.linalg.slogdet(M)[1] - np.linalg.slogdet(X.T @ X)[1]) - 0.5 * df * math.log(a1))
    else:
        value = 0.5 * n * (math.log(n) - math.log(2 * math.pi) - 1) - 0.5 * logdet - 0.5 * n * math.log(a1)
    return value, beta, a1, np.linalg.inv(M)


def test_exact_scan_is_the_dense_optimum(inputs) -> None:
    y, W, K, geno, rows = inputs
    result = gwas(DATA / "sim", DATA / "sim.pheno", DATA / "sim.covar", exact=True)
    table = result.table
    for j in (0, 182, 837, 1499):  # three ordinary SNPs and a causal one
        x = geno.read(np.array([j]), rows)[:, 0]
        x = np.where(np.isnan(x), np.nanmean(x), x)
        X = np.column_stack([W, x])
        row = table.iloc[j]
        for col, reml in (("l_remle", True), ("l_mle", False)):
            best = optimize.minimize_scalar(lambda t, X=X, reml=reml: -_dense(y, X, K, math.exp(t), reml)[0],
                                            bounds=(-5, 5), method="bounded", options={"xatol": 1e-10})
            assert row[col] == pytest.approx(math.exp(best.x), rel=1e-6)
        _, beta, a1, Minv = _dense(y, X, K, row["l_remle"], True)
        se = math.sqrt(a1 / (len(y) - X.shape[1]) * Minv[-1, -1])
        assert row["beta"] == pytest.approx(beta[-1], rel=1e-8)
        assert row["se"] == pytest.approx(se, rel=1e-8)
        assert row["p_wald"] == pytest.approx(stats.f.sf((beta[-1] / se) ** 2, 1, len(y) - X.shape[1]), rel=1e-7)
        logl = _dense(y, X, K, row["l_mle"], False)[0]
        assert row["logl_H1"] == pytest.approx(logl, abs=1e-8)
        assert row["p_lrt"] == pytest.approx(stats.chi2.sf(2 * (logl - result.null["all"].logl_mle), 1), rel=1e-7)


def test_default_scan_at_the_null_variance_ratio(inputs) -> None:
    y, W, K, geno, rows = inputs
    result = gwas(DATA / "sim", DATA / "sim.pheno", DATA / "sim.covar")
    lam0 = result.null["all"].lambda_remle
    assert result.null["all"].lambda_remle == pytest.approx(
        math.exp(optimize.minimize_scalar(lambda t: -_dense(y, W, K, math.exp(t), True)[0], bounds=(-5, 5),
                                          method="bounded", options={"xatol": 1e-11}).x), rel=1e-6)
    n = len(y)
    for j in (3, 566, 1807):
        x = geno.read(np.array([j]), rows)[:, 0]
        x = np.where(np.isnan(x), np.nanmean(x), x)
        X = np.column_stack([W, x])
        _, beta, a1, Minv = _dense(y, X, K, lam0, True)
        a0 = _dense(y, W, K, lam0, True)[2]
        se = math.sqrt(a1 / (n - X.shape[1]) * Minv[-1, -1])
        row = result.table.iloc[j]
        assert row["beta"] == pytest.approx(beta[-1], rel=1e-8)
        assert row["se"] == pytest.approx(se, rel=1e-8)
        assert row["p_lrt"] == pytest.approx(stats.chi2.sf(n * math.log(a0 / a1), 1), rel=1e-7)
        assert row["l_remle"] == lam0 and np.isnan(row["l_mle"])


def test_inputs_in_other_forms_give_the_same_scan(tmp_path: Path) -> None:
    base = gwas(DATA / "sim", DATA / "sim.pheno", DATA / "sim.covar").table
    pheno = pd.read_csv(DATA / "sim.pheno", sep=r"\s+").set_index("IID")["y"]
    covar = pd.read_csv(DATA / "sim.covar", sep=r"\s+")
    other = gwas(DATA / "sim", pheno, covar, chunk_size=37).table
    pd.testing.assert_frame_equal(base, other)
    fam = gwas(DATA / "sim", None, DATA / "sim.covar").table  # the .fam's phenotype is the same y
    pd.testing.assert_frame_equal(base, fam)
    path = write_kinship(grm(DATA / "sim"), tmp_path / "k.cXX.txt")
    given = gwas(DATA / "sim", DATA / "sim.pheno", DATA / "sim.covar", kinship=path).table
    assert given["p_wald"].to_numpy() == pytest.approx(base["p_wald"].to_numpy(), rel=1e-6, nan_ok=True)


def test_outputs(tmp_path: Path) -> None:
    tsv, pq = tmp_path / "r.tsv", tmp_path / "r.parquet"
    res = gwas(DATA / "sim", DATA / "sim.pheno", DATA / "sim.covar", out=tsv, chunk_size=300)
    gwas(DATA / "sim", DATA / "sim.pheno", DATA / "sim.covar", out=pq, chunk_size=300)
    a = pd.read_csv(tsv, sep="\t", dtype={"chr": str})
    b = pd.read_parquet(pq)
    assert list(a.columns) == list(b.columns) == list(res.table.columns)
    assert len(a) == len(b) == 2000
    assert a["p_wald"].to_numpy() == pytest.approx(b["p_wald"].to_numpy(), rel=1e-9, nan_ok=True)
    pd.testing.assert_frame_equal(b, res.table)


def test_grm_of_an_array_equals_the_fileset(tmp_path: Path) -> None:
    geno = PlinkGenotypes(DATA / "sim")
    a = grm(geno.read(slice(None)), ids=geno.iid, method="standardised")
    b = grm(DATA / "sim", method="standardised", chunk_size=333)
    assert a.ids == b.ids == tuple(geno.iid) and a.n_snps == b.n_snps
    assert a.matrix == pytest.approx(b.matrix, rel=1e-12, abs=1e-14)
    with single_threaded_blas():
        assert np.linalg.eigvalsh(a.matrix)[0] > -1e-10
    k = read_kinship(write_kinship(a, tmp_path / "k.txt"), geno.iid)
    assert k.matrix == pytest.approx(a.matrix, rel=1e-9, abs=1e-12)


# ---------------------------------------------------------------------------------------------- errors
def test_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        gwas(tmp_path / "none", DATA / "sim.pheno")
    bad = tmp_path / "bad.pheno"
    bad.write_text("FID IID y\nfam001 fam001_1 1.0\nfamX famX_9 2.0\n")
    with pytest.raises(DataError, match=r"1 individual\(s\) of the phenotype are not in .*sim.fam: famX famX_9"):
        gwas(DATA / "sim", bad)
    text = tmp_path / "text.covar"
    text.write_text("FID IID sex\nfam001 fam001_1 M\n")
    with pytest.raises(DataError, match="column 'sex' has the non-numeric value 'M'"):
        gwas(DATA / "sim", DATA / "sim.pheno", text)
    small = tmp_path / "k.txt"
    np.savetxt(small, np.eye(3))
    with pytest.raises(DataError, match="is 3 × 3 but the .fam has 500 individuals"):
        gwas(DATA / "sim", DATA / "sim.pheno", kinship=small)
    with pytest.raises(DataError, match="give no kinship"):
        gwas(DATA / "sim", DATA / "sim.pheno", kinship=small, loco=True)
    with pytest.raises(DataError, match="use a .tsv"):
        gwas(DATA / "sim", DATA / "sim.pheno", out=tmp_path / "r.csv")
    with pytest.raises(DataError, match="has no column 'z'"):
        gwas(DATA / "sim", DATA / "sim.pheno", pheno_name="z")
    few = tmp_path / "few.pheno"
    few.write_text("fam001 fam001_1 1.0\nfam001 fam001_2 2.0\n")
    with pytest.raises(DataError, match="only 2 individuals"):
        gwas(DATA / "sim", few)
    ragged = tmp_path / "ragged.pheno"
    ragged.write_text("FID IID y\nfam001 fam001_1\n")
    with pytest.raises(DataError, match="do not have 3 fields"):
        gwas(DATA / "sim", ragged)


def test_cli(tmp_path: Path, capsys) -> None:
    out = tmp_path / "res.tsv"
    code = main(["gwas", "--bfile", str(DATA / "sim"), "--pheno", str(DATA / "sim.pheno"), "--covar",
                 str(DATA / "sim.covar"), "--exact", "--out", str(out)])
    assert code == 0
    assert "480 individuals, 1961 SNPs tested" in capsys.readouterr().out
    table = pd.read_csv(out, sep="\t")
    assert table.columns[:7].tolist() == ["chr", "rs", "ps", "n_miss", "allele1", "allele0", "af"]
    assert (tmp_path / "res.log.json").is_file()
    code = main(["gwas", "--bfile", str(tmp_path / "missing"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("mixedmodels: error: PLINK fileset")
    code = main(["gwas", "--bfile", str(DATA / "sim"), "--out", str(tmp_path / "no" / "dir.tsv")])
    assert code == 2 and "does not exist" in capsys.readouterr().err
    kfile = tmp_path / "k.cXX.txt"
    assert main(["grm", "--bfile", str(DATA / "sim"), "--method", "standardised", "--out", str(kfile)]) == 0
    assert read_kinship(kfile, PlinkGenotypes(DATA / "sim").iid).matrix == pytest.approx(
        grm(DATA / "sim", method="standardised").matrix, abs=1e-9)


def test_missing_genotype_fileset_member(tmp_path: Path) -> None:
    for ext in (".bed", ".bim"):
        shutil.copy(DATA / f"sim{ext}", tmp_path / f"x{ext}")
    with pytest.raises(DataError, match=r"no such file '.*x\.fam'"):
        gwas(tmp_path / "x", DATA / "sim.pheno")


def test_kinship_object_for_the_scan() -> None:
    K = grm(DATA / "sim")
    a = gwas(DATA / "sim", DATA / "sim.pheno", kinship=K).table
    b = gwas(DATA / "sim", DATA / "sim.pheno").table
    pd.testing.assert_frame_equal(a, b)
    partial = Kinship(K.ids[:-1], matrix=K.matrix[:-1, :-1])
    with pytest.raises(DataError, match="not in the relationship matrix: 'fam100_5'"):
        gwas(DATA / "sim", DATA / "sim.pheno", kinship=partial)


def test_lambda_search_takes_the_best_maximum_or_end() -> None:
    """GEMMA's CalcLambda on known curves: two maxima (the higher one wins), a rising curve (the upper end), and a
    maximum lower than an end."""
    from mixedmodels.genetics.scan import lambda_grid, search_lambda

    curves = [
        lambda t: -((t - 0.5) ** 2) * ((t - 6.0) ** 2) / 40 + 0.02 * t,  # maxima near t = 0.5 and t = 6
        lambda t: 0.3 * t,  # increasing: λ = 1e5
        lambda t: -np.cos(t) - 0.25 * t,  # maxima at t ≈ π − 0.25…; the lower end is higher still
    ]
    t_grid = np.log(lambda_grid())
    h = 1e-5

    def slope(f, t):
        return (f(t + h) - f(t - h)) / (2 * h)

    g = np.column_stack([slope(f, t_grid) for f in curves])
    ll = np.column_stack([f(t_grid) for f in curves])

    def evaluate(problems, lam):
        t = np.log(lam)
        gs = np.array([slope(curves[j], ti) for j, ti in zip(problems, t)])
        dg = np.array([(slope(curves[j], ti + 1e-4) - slope(curves[j], ti - 1e-4)) / 2e-4 for j, ti in zip(problems, t)])
        return gs, dg, np.array([curves[j](ti) for j, ti in zip(problems, t)])

    lam, val = search_lambda(g, ll, evaluate)
    fine = np.linspace(t_grid[0], t_grid[-1], 200001)
    for j, f in enumerate(curves):
        best = fine[np.argmax(f(fine))]
        assert np.log(lam[j]) == pytest.approx(best, abs=1e-3)
        assert val[j] == pytest.approx(f(fine).max(), abs=1e-6)


def test_low_rank_grm_takes_the_svd_path() -> None:
    """A GRM of 300 SNPs for 480 individuals as its factor: the same fit as the matrix, by a thin SVD."""
    import mixedmodels as mm

    data = read_sample_table(DATA / "sim.pheno", "p").join(read_sample_table(DATA / "sim.covar", "c")).dropna()
    data = data.reset_index()
    geno = PlinkGenotypes(DATA / "sim")
    keep = np.isin(geno.iid, data["IID"])
    from mixedmodels.genetics.plink import ArrayGenotypes

    sub = ArrayGenotypes(geno.read(slice(0, 300))[keep], geno.iid[keep], np.full(300, "1"))
    low = grm(sub, factor=True)
    full = grm(sub)
    assert low.factor.shape[1] == low.n_snps < 480
    assert low.dense() == pytest.approx(full.matrix, rel=1e-10, abs=1e-12)
    a = mm.lmer("y ~ sex + age + (1 | IID)", data, covariance={"IID": low})
    b = mm.lmer("y ~ sex + age + (1 | IID)", data, covariance={"IID": full})
    assert a.terms[0].root.rank == low.n_snps and a.fit_record.optimizer.startswith("FaST-LMM")
    assert a.objective == pytest.approx(b.objective, rel=1e-10)
    assert a.theta == pytest.approx(b.theta, rel=1e-6)
