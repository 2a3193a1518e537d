"""Genomic relationship matrices from genotypes, as GEMMA computes them (Zhou & Stephens 2012).

For the ``m`` SNPs that pass the filters, with ``x_j`` the allele-1 counts of SNP ``j`` (missing values
replaced by the SNP's mean, as GEMMA does), ``x̄_j`` their mean and ``v_j`` their variance (dividing by
``n``, after imputation)::

    centred       (GEMMA -gk 1):  K = (1/m) Σ_j (x_j − x̄_j)(x_j − x̄_j)'
    standardised  (GEMMA -gk 2, GCTA's GRM without its diagonal correction):
                                  K = (1/m) Σ_j (x_j − x̄_j)(x_j − x̄_j)' / v_j

A SNP is used when at most a fraction ``miss`` of its genotypes is missing, its allele frequency is within
``[maf, 1 − maf]`` and it is polymorphic (GEMMA's defaults 0.05 and 0.01). The sums are accumulated over
blocks of SNPs with a symmetric rank-k update, so only one block of genotypes is ever in memory. A
leave-one-chromosome-out GRM for chromosome ``c`` is ``(S − S_c)/(m − m_c)`` with ``S`` the sum over every
SNP and ``S_c`` over those of ``c``. GEMMA filters over the individuals with a phenotype; here every
individual of the genotypes counts (the same SNPs when all have one).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.linalg import blas

from ..engine.threads import engine_threads
from ..exceptions import DataError
from .kinship import Kinship
from .plink import ArrayGenotypes, PlinkGenotypes

#: SNPs per block read and accumulated.
CHUNK = 2048
_METHODS = {"centred": "centred", "centered": "centred", "standardised": "standardised", "standardized": "standardised"}


@dataclass(frozen=True)
class SnpFilter:
    """Which SNPs are used (GEMMA's defaults): missing fraction at most ``miss``, allele frequency in ``[maf, 1 − maf]``,
    polymorphic."""

    maf: float = 0.01
    miss: float = 0.05

    def __post_init__(self) -> None:
        if not (0.0 <= self.maf < 0.5 and 0.0 <= self.miss <= 1.0):
            raise DataError(f"maf must be in [0, 0.5) and miss in [0, 1], got maf={self.maf}, miss={self.miss}")


@dataclass(frozen=True)
class SnpSummary:
    """Per-SNP counts of one block: missing genotypes, allele-1 frequency (over the non-missing), mean, whether used."""

    n_miss: np.ndarray
    af: np.ndarray
    mean: np.ndarray
    keep: np.ndarray


def summarise(X: np.ndarray, qc: SnpFilter) -> SnpSummary:
    """Missing counts, allele frequencies and GEMMA's filters for a block ``X`` (individuals × SNPs, NaN missing)."""
    n = X.shape[0]
    observed = ~np.isnan(X)
    n_obs = observed.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n_obs > 0, np.nansum(X, axis=0) / np.maximum(n_obs, 1), np.nan)
        lo, hi = np.nanmin(np.where(observed, X, np.inf), axis=0), np.nanmax(np.where(observed, X, -np.inf), axis=0)
    af = mean / 2.0
    n_miss = n - n_obs
    keep = (n_obs > 0) & (n_miss <= qc.miss * n) & (af >= qc.maf) & (af <= 1.0 - qc.maf) & (hi > lo)
    return SnpSummary(n_miss=n_miss, af=af, mean=mean, keep=keep)


def scaled_block(X: np.ndarray, mean: np.ndarray, method: str) -> np.ndarray:
    """``X`` with missing values set to the mean, centred, and for ``"standardised"`` divided by the SD (÷ n)."""
    Xc = np.where(np.isnan(X), 0.0, X - mean)
    if method == "standardised":
        sd = np.sqrt(np.mean(Xc * Xc, axis=0))
        Xc = Xc / np.where(sd > 0, sd, 1.0)
    return np.asfortranarray(Xc)


def _source(genotypes: object, ids: Iterable[object] | None = None):
    if isinstance(genotypes, (PlinkGenotypes, ArrayGenotypes)):
        return genotypes
    if isinstance(genotypes, (str, Path)):
        return PlinkGenotypes(genotypes)
    X = np.asarray(genotypes, dtype=float)
    if X.ndim != 2:
        raise DataError(f"genotypes must be a matrix (individuals × SNPs), got shape {X.shape}")
    iid = np.array([str(v) for v in (range(X.shape[0]) if ids is None else ids)])
    if iid.size != X.shape[0]:
        raise DataError(f"{iid.size} ids for {X.shape[0]} rows of genotypes")
    return ArrayGenotypes(X, iid, np.full(X.shape[1], "1"))


def _method(method: str) -> str:
    key = _METHODS.get(str(method).lower())
    if key is None:
        raise DataError(f"unknown GRM method {method!r}; use 'centred' (GEMMA -gk 1) or 'standardised' (-gk 2)")
    return key


def scaled_genotypes(source, snps: np.ndarray, method: str, qc: SnpFilter, chunk: int = CHUNK) -> np.ndarray:
    """The centred (or standardised) genotypes ``x̃_j`` of the SNPs ``snps`` that pass ``qc``, ``n × m``: the factor
    ``F`` of ``K = F F'/m`` (meant for fewer SNPs than individuals)."""
    blocks = []
    for a in range(0, snps.size, chunk):
        X = source.read(snps[a : a + chunk])
        summary = summarise(X, qc)
        if summary.keep.any():
            blocks.append(scaled_block(X[:, summary.keep], summary.mean[summary.keep], method))
    return np.hstack(blocks) if blocks else np.zeros((source.n_samples, 0))


def relationship_sum(source, snps: np.ndarray, method: str, qc: SnpFilter, chunk: int = CHUNK) -> tuple[np.ndarray, int]:
    """``S = Σ_j x̃_j x̃_j'`` over the SNPs ``snps`` that pass ``qc``, and how many did (module docstring)."""
    n = source.n_samples
    S = np.zeros((n, n), order="F")
    used = 0
    for a in range(0, snps.size, chunk):
        X = source.read(snps[a : a + chunk])
        summary = summarise(X, qc)
        if not summary.keep.any():
            continue
        Xc = scaled_block(X[:, summary.keep], summary.mean[summary.keep], method)
        S = blas.dsyrk(1.0, Xc, beta=1.0, c=S, trans=0, lower=1, overwrite_c=1)  # S += Xc Xc', lower triangle
        used += int(summary.keep.sum())
    return S, used


def _symmetric(S: np.ndarray) -> np.ndarray:
    return np.tril(S) + np.tril(S, -1).T


def _ids(source) -> tuple[str, ...]:
    iid = [str(v) for v in source.iid]
    if len(set(iid)) != len(iid):
        raise DataError("individual ids (IID) are not unique across families; a GRM needs unique ids")
    return tuple(iid)


@engine_threads
def grm(
    genotypes: object,
    *,
    method: str = "centred",
    maf: float = 0.01,
    miss: float = 0.05,
    exclude_chromosomes: Iterable[str] = (),
    ids: Iterable[object] | None = None,
    chunk_size: int = CHUNK,
    factor: bool = False,
) -> Kinship:
    """A genomic relationship matrix (module docstring).

    Parameters
    ----------
    genotypes : str, pathlib.Path, PlinkGenotypes or numpy.ndarray
        A PLINK fileset prefix, or allele counts ``individuals × SNPs`` with NaN where missing.
    method : {"centred", "standardised"}
        GEMMA's ``-gk 1`` or ``-gk 2``.
    maf, miss : float
        SNP filters (GEMMA's defaults).
    exclude_chromosomes : iterable of str
        Chromosomes left out (one for a LOCO GRM).
    ids : iterable, optional
        Individual ids of an array (default 0, 1, …); a fileset's are its IIDs.
    chunk_size : int
        SNPs read at a time.
    factor : bool
        Keep the scaled genotypes ``F`` (``K = FF'``) instead of forming ``K``: with fewer SNPs than
        individuals a fit decomposes ``K`` by a thin SVD of ``F`` (FaST-LMM's low-rank case).

    Returns
    -------
    Kinship
        ``K`` labelled by individual id, with the number of SNPs used.
    """
    source = _source(genotypes, ids)
    key = _method(method)
    drop = {str(c) for c in exclude_chromosomes}
    snps = np.flatnonzero(~np.isin(source.chromosome.astype(str), list(drop)))
    if factor:
        F = scaled_genotypes(source, snps, key, SnpFilter(maf, miss), chunk_size)
        if F.shape[1] == 0:
            raise DataError("no SNP passes the filters (maf, miss, polymorphic): the GRM is undefined")
        return Kinship(_ids(source), factor=F / np.sqrt(F.shape[1]), n_snps=F.shape[1])
    S, used = relationship_sum(source, snps, key, SnpFilter(maf, miss), chunk_size)
    if used == 0:
        raise DataError("no SNP passes the filters (maf, miss, polymorphic): the GRM is undefined")
    return Kinship(_ids(source), matrix=_symmetric(S) / used, n_snps=used)


@engine_threads
def grm_loco(genotypes: object, **kwargs) -> dict[str, Kinship]:
    """One GRM per chromosome, each without that chromosome's SNPs (``(S − S_c)/(m − m_c)``); holds one n × n matrix
    per chromosome. Keyword arguments as :func:`grm`."""
    source = _source(genotypes, kwargs.pop("ids", None))
    key = _method(kwargs.pop("method", "centred"))
    qc = SnpFilter(kwargs.pop("maf", 0.01), kwargs.pop("miss", 0.05))
    chunk = kwargs.pop("chunk_size", CHUNK)
    if kwargs:
        raise TypeError(f"unexpected arguments: {', '.join(kwargs)}")
    chrom = source.chromosome.astype(str)
    parts = {c: relationship_sum(source, np.flatnonzero(chrom == c), key, qc, chunk) for c in dict.fromkeys(chrom)}
    total = sum(S for S, _ in parts.values())
    m = sum(u for _, u in parts.values())
    out = {}
    for c, (S, used) in parts.items():
        if m - used == 0:
            raise DataError(f"no SNP outside chromosome {c} passes the filters: its LOCO GRM is undefined")
        out[c] = Kinship(_ids(source), matrix=_symmetric(total - S) / (m - used), n_snps=m - used)
    return out


def write_kinship(kin: Kinship, path: str | Path) -> Path:
    """Write ``K`` as GEMMA writes its ``.cXX.txt``: tab-separated rows, 10 significant digits, no ids."""
    path = Path(path)
    K = kin.dense()
    path.write_text("".join("\t".join(f"{v:.10g}" for v in row) + "\n" for row in K))
    return path


def read_kinship(path: str | Path, ids: Iterable[object]) -> Kinship:
    """A GEMMA-format relationship matrix (``.cXX.txt``/``.sXX.txt``: whitespace-separated, rows in the order of
    ``ids``, the individuals of the .fam).

    Raises
    ------
    DataError
        For a missing file, non-numeric entries or a size other than ``len(ids)``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"kinship file {str(path)!r} does not exist")
    ids = tuple(str(v) for v in ids)
    try:
        K = np.loadtxt(path, ndmin=2)
    except ValueError as exc:
        raise DataError(f"kinship file {str(path)!r} is not a numeric matrix: {exc}") from None
    if K.shape != (len(ids), len(ids)):
        raise DataError(f"kinship file {str(path)!r} is {K.shape[0]} × {K.shape[1]} but the .fam has {len(ids)} individuals")
    return Kinship(ids, matrix=K)
