"""Genome-wide association scan with a linear mixed model, GEMMA's ``-lmm`` on PLINK genotypes.

For each segment (the whole genome, or each chromosome with its leave-one-chromosome-out GRM) the GRM of
the analysed individuals is centred (as GEMMA does) and eigendecomposed once, the null model ``y = Wα + g + ε`` is fitted by REML and ML
(GEMMA's λ search, :mod:`.scan`), and the SNPs are read in blocks (bed-reader), filtered as GEMMA filters
them (over the analysed individuals), mean-imputed, centred, rotated by ``U'`` (one matrix product per
block) and tested:

* default: at the null model's variance ratio (EMMAX, GCTA-fastGWA): Wald and likelihood-ratio tests at the
  REML λ₀, so a block costs its rotation plus ``O(n p)`` per SNP;
* ``exact=True``: λ re-estimated for every SNP by REML (Wald) and by ML (likelihood ratio), GEMMA's
  ``-lmm 4``, vectorised over the SNPs of a block.

The score test is at the null model's ML λ in both modes (as GEMMA's). Filtered SNPs (missing fraction above
``miss``, allele frequency outside ``[maf, 1 − maf]``, monomorphic, or ``r² > r2`` with the covariates) are
kept in the output with their counts and missing statistics, where GEMMA leaves them out.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg as sla

from ..engine.threads import engine_threads
from ..exceptions import DataError
from .grm import SnpFilter, _method, _symmetric, relationship_sum, summarise
from .kinship import Kinship, as_kinship
from .plink import PlinkGenotypes, align_samples, read_sample_table
from .scan import (
    RotatedData,
    chi2_sf,
    criteria,
    curvature,
    f_sf,
    lambda_grid,
    loglik,
    search_lambda,
    slope,
)

#: Columns of the output, as GEMMA's ``.assoc.txt`` of ``-lmm 4``.
COLUMNS = ["chr", "rs", "ps", "n_miss", "allele1", "allele0", "af", "beta", "se", "logl_H1", "l_remle", "l_mle",
           "p_wald", "p_lrt", "p_score"]
#: SNPs per block of the scan.
SCAN_CHUNK = 1024


@dataclass(frozen=True)
class NullModel:
    """The null model of a segment, as GEMMA's log reports it (REML estimates unless named ML).

    Attributes
    ----------
    lambda_remle, lambda_mle : float
        ``σ²_g/σ²_e`` by REML and ML.
    logl_remle, logl_mle : float
        GEMMA's REML and ML log-likelihoods at those.
    vg, ve : float
        ``σ²_g`` and ``σ²_e`` (REML).
    pve, se_pve : float
        Proportion of variance explained, ``tr(K)/n · λ/(tr(K)/n · λ + 1)``, and its SE.
    beta, se_beta : list of float
        Covariate effects (intercept first) and SEs.
    n : int
        Analysed individuals.
    """

    lambda_remle: float
    lambda_mle: float
    logl_remle: float
    logl_mle: float
    vg: float
    ve: float
    pve: float
    se_pve: float
    beta: list[float]
    se_beta: list[float]
    n: int


@dataclass
class GwasResult:
    """A scan: the table (GEMMA's columns), the null model of each segment, and what was done.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per SNP of the .bim (of the tested chromosomes), columns :data:`COLUMNS`.
    null : dict of str to NullModel
        ``"all"``, or one entry per chromosome with ``loco=True``.
    info : dict
        Individuals analysed, SNPs tested and filtered, mode, GRM, seconds.
    """

    table: pd.DataFrame
    null: dict[str, NullModel]
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Null models and run information as plain Python values (the CLI's log)."""
        return {"null": {k: asdict(v) for k, v in self.null.items()}, "info": self.info}


# ------------------------------------------------------------------------------------------------- inputs
def _table(value: object, what: str, source: str, geno: PlinkGenotypes) -> pd.DataFrame | None:
    if value is None:
        return None
    if isinstance(value, (str, Path)):
        frame = read_sample_table(value, what)
    elif isinstance(value, pd.Series):
        frame = value.to_frame()
    elif isinstance(value, pd.DataFrame):
        frame = value
        if {"FID", "IID"} <= set(frame.columns):
            frame = frame.set_index(["FID", "IID"])
        elif "IID" in frame.columns:
            frame = frame.set_index("IID")
        frame = frame.apply(pd.to_numeric, errors="raise")
    else:
        raise DataError(f"{what} must be a file name or a pandas DataFrame/Series, got {type(value).__name__}")
    if isinstance(frame.index, pd.MultiIndex):
        frame.index = pd.MultiIndex.from_tuples([(str(a), str(b)) for a, b in frame.index], names=["FID", "IID"])
    return align_samples(frame.astype(float), geno.fid, geno.iid, what, source)


def _phenotype(geno: PlinkGenotypes, pheno: object, name: str | None) -> tuple[np.ndarray, str]:
    table = _table(pheno, "phenotype", f"{geno.prefix}.fam", geno)
    if table is None:
        if name is not None:
            raise DataError("pheno_name needs a phenotype file")
        return geno.fam_phenotype(), "fam"
    col = table.columns[0] if name is None else name
    if col not in table.columns:
        raise DataError(f"the phenotype file has no column {col!r}; columns: {', '.join(map(str, table.columns))}")
    return table[col].to_numpy(dtype=float), str(col)


def _kinship_for(kinship: object, geno: PlinkGenotypes) -> Kinship:
    if isinstance(kinship, (str, Path)):
        from .grm import read_kinship

        return read_kinship(kinship, geno.iid)
    return as_kinship(kinship, "the scan")


def double_centre(K: np.ndarray) -> np.ndarray:
    """``(I − 11'/n) K (I − 11'/n)`` (GEMMA's ``CenterMatrix``)."""
    r = K.mean(axis=1)
    return K - r[:, None] - r[None, :] + r.mean()


# ------------------------------------------------------------------------------------------------- null model
def _evaluate_null(rd: RotatedData, reml: bool):
    n, c = rd.n, rd.c

    def evaluate(problems: np.ndarray, lam: np.ndarray):
        mo = rd.null_moments(lam, kmax=3)
        cr = criteria(mo, c)
        return slope(cr, mo, n, c, reml), curvature(cr, mo, n, c, reml), loglik(cr, mo, n, c, reml, rd.logdet_wtw)

    return evaluate


def fit_null(rd: RotatedData) -> NullModel:
    """GEMMA's null model: λ by REML and by ML, vg, ve, β and pve at the REML λ (``CalcLmmVgVeBeta``, ``CalcPve``)."""
    n, c = rd.n, rd.c
    grid = lambda_grid()
    mo = rd.null_moments(grid, kmax=2)
    cr = criteria(mo, c)
    out = {}
    for reml in (True, False):
        g = slope(cr, mo, n, c, reml)[:, None]
        ll = loglik(cr, mo, n, c, reml, rd.logdet_wtw)[:, None]
        lam = search_lambda(g, ll, _evaluate_null(rd, reml))[0]
        mo1 = rd.null_moments(lam, kmax=1)  # ℓ at the last Newton iterate (the search has it at the one before)
        out[reml] = (float(lam[0]), float(loglik(criteria(mo1, c), mo1, n, c, reml, rd.logdet_wtw)[0]))
    lam = out[True][0]
    mo1 = rd.null_moments(np.array([lam]), kmax=3)
    c1 = criteria(mo1, c)
    ve = float(c1.a1[0] / (n - c))
    vg = ve * lam
    se_beta = np.sqrt(ve * np.diag(c1.minv[0]))
    g = slope(c1, mo1, n, c, True)[0]
    d2 = (curvature(c1, mo1, n, c, True)[0] - g) / lam**2  # ∂²ℓ_R/∂λ² from g = λℓ'
    trace_g = float(np.mean(rd.s))
    pve = trace_g * lam / (trace_g * lam + 1.0)
    se_pve = trace_g / (trace_g * lam + 1.0) ** 2 * math.sqrt(-1.0 / d2) if d2 < 0 else math.nan
    return NullModel(
        lambda_remle=lam, lambda_mle=out[False][0], logl_remle=out[True][1], logl_mle=out[False][1], vg=vg, ve=ve,
        pve=pve, se_pve=se_pve, beta=c1.beta[0].tolist(), se_beta=se_beta.tolist(), n=n,
    )


# ------------------------------------------------------------------------------------------------- tests
def _schur(mo, c: int):
    """``P_xx``, ``P_xy``, ``P_yy`` (projections on W) from the moments of ``[W x y]`` at one λ."""
    A = mo.A[0]
    M = A[0, :c, :c]
    wx, wy = A[:, :c, c], A[0, :c, c + 1]
    Minv = np.linalg.inv(M)
    pyy = A[0, c + 1, c + 1] - wy @ Minv @ wy
    pxx = A[:, c, c] - np.einsum("mi,ij,mj->m", wx, Minv, wx)
    pxy = A[:, c, c + 1] - wx @ (Minv @ wy)
    return pxx, pxy, pyy


def _test_block(rd: RotatedData, Xt: np.ndarray, null: NullModel, exact: bool) -> dict[str, np.ndarray]:
    n, c = rd.n, rd.c
    p = c + 1
    df = n - p
    X2 = Xt * Xt
    m = Xt.shape[1]
    out: dict[str, np.ndarray] = {}
    pxx, pxy, pyy = _schur(rd.snp_moments_shared(null.lambda_mle, Xt, X2, kmax=1), c)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["p_score"] = f_sf(n * pxy**2 / (pyy * pxx), df)
    if not exact:
        lam0 = null.lambda_remle
        mo = rd.snp_moments_shared(lam0, Xt, X2, kmax=1)
        pxx, pxy, pyy = _schur(mo, c)
        with np.errstate(invalid="ignore", divide="ignore"):
            beta = pxy / pxx
            a1 = pyy - pxy * beta
            se = np.sqrt(a1 / (df * pxx))
            out["p_wald"] = f_sf((beta / se) ** 2, df)
            out["p_lrt"] = chi2_sf(n * np.log(pyy / a1))
            out["logl_H1"] = 0.5 * n * (math.log(n) - math.log(2 * math.pi) - 1.0) - 0.5 * mo.logdet - 0.5 * n * np.log(a1)
        out.update(beta=beta, se=se, l_remle=np.full(m, lam0), l_mle=np.full(m, np.nan))
        return out
    # log|X'X| of [W x]: the Schur complement of W at λ = 0
    pxx0 = _schur(rd.snp_moments_shared(0.0, Xt, X2, kmax=1), c)[0]
    logdet_xtx = rd.logdet_wtw + np.log(pxx0)
    grid = lambda_grid()
    g = {True: np.empty((grid.size, m)), False: np.empty((grid.size, m))}
    ll = {True: np.empty((grid.size, m)), False: np.empty((grid.size, m))}
    for i, lam in enumerate(grid):
        mo = rd.snp_moments_shared(float(lam), Xt, X2, kmax=2)
        cr = criteria(mo, p)
        for reml in (True, False):
            g[reml][i] = slope(cr, mo, n, p, reml)
            ll[reml][i] = loglik(cr, mo, n, p, reml, logdet_xtx)
    lam_hat = {}
    for reml in (True, False):

        def evaluate(problems: np.ndarray, lam: np.ndarray, reml: bool = reml):
            # row-major columns: elementwise products with the (row-major) weights run twice as fast
            cols = Xt if problems.size == m and np.array_equal(problems, np.arange(m)) else np.ascontiguousarray(Xt[:, problems])
            mo = rd.snp_moments_each(lam, cols, kmax=3)
            cr = criteria(mo, p)
            return (slope(cr, mo, n, p, reml), curvature(cr, mo, n, p, reml),
                    loglik(cr, mo, n, p, reml, logdet_xtx[problems]))

        lam_hat[reml] = search_lambda(g[reml], ll[reml], evaluate, null.lambda_remle if reml else null.lambda_mle)
    lam_r, lam_m = lam_hat[True][0], lam_hat[False][0]
    cr = criteria(rd.snp_moments_each(lam_r, Xt, kmax=1), p)
    beta = cr.beta[:, c]
    se = np.sqrt(cr.a1 / df * cr.minv[:, c, c])
    mo = rd.snp_moments_each(lam_m, Xt, kmax=1)  # ℓ at the last Newton iterate (the search has it at the one before)
    logl_h1 = loglik(criteria(mo, p), mo, n, p, False, logdet_xtx)
    out.update(
        beta=beta, se=se, l_remle=lam_r, l_mle=lam_m, logl_H1=logl_h1,
        p_wald=f_sf((beta / se) ** 2, df), p_lrt=chi2_sf(2.0 * (logl_h1 - null.logl_mle)),
    )
    return out


def _r2_filter(W: np.ndarray, X: np.ndarray, level: float) -> np.ndarray:
    """GEMMA's collinearity filter: True where ``x'W(W'W)⁻¹W'x / x'x > level`` (only with covariates besides the
    intercept), on the mean-imputed, uncentred genotypes."""
    if W.shape[1] == 1:
        return np.zeros(X.shape[1], dtype=bool)
    Q = np.linalg.qr(W)[0]
    proj = Q.T @ X
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.einsum("ij,ij->j", proj, proj) / np.einsum("ij,ij->j", X, X) > level


class _Writer:
    """Appends blocks of rows to a TSV or Parquet file."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = None if path is None else Path(path)
        self._pq = None
        self._first = True
        if self.path is not None and self.path.suffix not in (".tsv", ".txt", ".parquet"):
            raise DataError(f"output {str(self.path)!r}: use a .tsv (or .txt) or .parquet file name")

    def write(self, frame: pd.DataFrame) -> None:
        if self.path is None:
            return
        if self.path.suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._pq is None:
                self._pq = pq.ParquetWriter(str(self.path), table.schema)
            self._pq.write_table(table)
        else:
            frame.to_csv(self.path, sep="\t", index=False, na_rep="NA", mode="w" if self._first else "a",
                         header=self._first, float_format="%.10g")
        self._first = False

    def close(self) -> None:
        if self._pq is not None:
            self._pq.close()


# ------------------------------------------------------------------------------------------------- the scan
@engine_threads
def gwas(
    bfile: str | Path,
    pheno: object = None,
    covar: object = None,
    kinship: object = None,
    *,
    pheno_name: str | None = None,
    loco: bool = False,
    exact: bool = False,
    grm_method: str = "centred",
    maf: float = 0.01,
    miss: float = 0.05,
    r2: float = 0.9999,
    chunk_size: int = SCAN_CHUNK,
    out: str | Path | None = None,
    num_threads: int | None = None,
    center_kinship: bool = True,
) -> GwasResult:
    """Test every SNP of a PLINK fileset for association under a linear mixed model (module docstring).

    Parameters
    ----------
    bfile : str or pathlib.Path
        PLINK prefix (``PREFIX.bed``, ``.bim``, ``.fam``).
    pheno : str, pathlib.Path, pandas.DataFrame or pandas.Series, optional
        Phenotypes: a PLINK-style file (``FID IID y …``, header optional, ``NA``/``-9`` missing) or a table
        indexed by (FID, IID) or IID. Default: the .fam's sixth column (as GEMMA).
    covar : same types, optional
        Covariates; an intercept is always added (GEMMA's ``-c`` file needs its own column of 1s).
    kinship : str, pathlib.Path, Kinship or pandas.DataFrame, optional
        The GRM: a GEMMA ``.cXX.txt`` (rows in .fam order), or labelled by IID. Default: built from the
        genotypes (``grm_method``), GEMMA's ``-gk``.
    pheno_name : str, optional
        Column of the phenotype file (default the first).
    loco : bool
        Leave-one-chromosome-out: each chromosome's SNPs are tested with a GRM of the other chromosomes.
    exact : bool
        Re-estimate λ for every SNP (GEMMA's ``-lmm 4``) instead of using the null model's.
    grm_method : {"centred", "standardised"}
        GRM built from the genotypes (GEMMA's ``-gk 1``, ``-gk 2``).
    maf, miss, r2 : float
        SNP filters (GEMMA's defaults), over the analysed individuals.
    chunk_size : int
        SNPs per block.
    out : str or pathlib.Path, optional
        Also write the table, ``.tsv`` (tab-separated, ``NA`` missing) or ``.parquet``, block by block.
    num_threads : int, optional
        bed-reader's decoding threads.
    center_kinship : bool
        Centre the GRM of the analysed individuals, ``(I − 11'/n) K (I − 11'/n)``, as GEMMA's ``-lmm`` does
        (its ``CenterMatrix``) before the eigendecomposition.

    Returns
    -------
    GwasResult

    Raises
    ------
    DataError
        Missing files, ids in the phenotype or covariate file that are not in the .fam, a kinship of the wrong
        size, too few individuals.
    """
    t0 = time.perf_counter()
    writer = _Writer(out)
    geno = PlinkGenotypes(bfile, num_threads=num_threads)
    qc = SnpFilter(maf, miss)
    y, pheno_col = _phenotype(geno, pheno, pheno_name)
    cov_table = _table(covar, "covariates", f"{geno.prefix}.fam", geno)
    W = np.ones((geno.n_samples, 1))
    cov_names = ["intercept"]
    if cov_table is not None:
        W = np.column_stack([W, cov_table.to_numpy(dtype=float)])
        cov_names += [str(c) for c in cov_table.columns]
    rows = np.flatnonzero(np.isfinite(y) & np.all(np.isfinite(W), axis=1))
    c = W.shape[1]
    if rows.size < c + 3:
        raise DataError(f"only {rows.size} individuals have the phenotype and every covariate; need at least {c + 3}")
    W, y = W[rows], y[rows]
    if np.linalg.matrix_rank(W) < c:
        raise DataError("the covariates are linearly dependent (with the intercept) among the analysed individuals")
    chrom = geno.chromosome.astype(str)
    if loco:
        if kinship is not None:
            raise DataError("loco builds its GRMs from the genotypes; give no kinship with it")
        segments = list(dict.fromkeys(chrom))
    else:
        segments = ["all"]
    key = _method(grm_method)
    whole = None
    if kinship is None:
        S, m_all = relationship_sum(geno, np.arange(geno.n_snps), key, SnpFilter(maf, miss))
        if m_all == 0:
            raise DataError("no SNP passes the filters: the GRM is undefined")
        whole = (S, m_all)
    else:
        kin = _kinship_for(kinship, geno).subset(geno.iid[rows], what="the analysed individuals")
    nulls: dict[str, NullModel] = {}
    frames, n_tested, n_filtered = [], 0, 0
    for seg in segments:
        snps = np.arange(geno.n_snps) if seg == "all" else np.flatnonzero(chrom == seg)
        if kinship is None:
            S, m_used = whole
            if seg != "all":
                Sc, mc = relationship_sum(geno, snps, key, SnpFilter(maf, miss))
                S, m_used = S - Sc, m_used - mc
                if m_used == 0:
                    raise DataError(f"no SNP outside chromosome {seg} passes the filters: its LOCO GRM is undefined")
            K = _symmetric(S)[np.ix_(rows, rows)] / m_used
        else:
            K = kin.dense()
        if center_kinship:
            K = double_centre(K)
        values, U = sla.eigh(K, check_finite=False)
        U = np.asfortranarray(U)
        rd = RotatedData(values, U.T @ W, U.T @ y)
        null = nulls[seg] = fit_null(rd)
        for a in range(0, snps.size, chunk_size):
            idx = snps[a : a + chunk_size]
            X = geno.read(idx, rows)
            s = summarise(X, qc)
            Xi = np.where(np.isnan(X), s.mean, X)
            keep = s.keep & ~_r2_filter(W, np.where(s.keep, Xi, 1.0), r2)
            res = {k: np.full(idx.size, np.nan) for k in COLUMNS[7:]}
            if keep.any():
                Xt = np.ascontiguousarray(U.T @ np.asfortranarray(Xi[:, keep] - s.mean[keep]))
                for k, v in _test_block(rd, Xt, null, exact).items():
                    res[k][keep] = v
            frame = pd.DataFrame({
                "chr": chrom[idx], "rs": geno.sid[idx], "ps": geno.position[idx], "n_miss": s.n_miss.astype(np.int64),
                "allele1": geno.allele_1[idx], "allele0": geno.allele_2[idx], "af": s.af, **res,
            }, columns=COLUMNS)
            writer.write(frame)
            frames.append(frame)
            n_tested += int(keep.sum())
            n_filtered += int((~keep).sum())
    writer.close()
    geno.close()
    table = pd.concat(frames, ignore_index=True)
    info = {
        "bfile": geno.prefix, "phenotype": pheno_col, "covariates": cov_names, "n_analysed": int(rows.size),
        "n_samples": geno.n_samples, "snps_tested": n_tested, "snps_filtered": n_filtered,
        "mode": "exact (lambda per SNP, GEMMA -lmm 4)" if exact else "null variance ratio (EMMAX)",
        "kinship": "given" if kinship is not None else f"{key} GRM" + (" (LOCO)" if loco else ""),
        "seconds": time.perf_counter() - t0,
    }
    return GwasResult(table=table, null=nulls, info=info)
