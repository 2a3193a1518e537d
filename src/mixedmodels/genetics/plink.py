"""PLINK 1 binary genotypes (.bed/.bim/.fam, read with bed-reader in blocks of SNPs) and sample tables
(phenotypes and covariates, PLINK style: ``FID IID value …`` with an optional header).

Genotypes are counts of allele 1 (the .bim's fifth column), as GEMMA and PLINK's ``--recode A`` count
them, with NaN where missing. Nothing here holds more than one block of SNPs in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..exceptions import DataError

#: Values read as missing in phenotype and covariate files (PLINK's -9, R's NA).
MISSING = {"NA", "na", "NaN", "nan", ".", "-9", "-9.0", ""}


def _shown(values, k: int = 5) -> str:
    values = list(values)
    return ", ".join(str(v) for v in values[:k]) + (f" and {len(values) - k} more" if len(values) > k else "")


class PlinkGenotypes:
    """A PLINK 1 binary fileset ``PREFIX.bed``, ``.bim``, ``.fam``.

    Parameters
    ----------
    prefix : str or pathlib.Path
        The path without extension (a trailing ``.bed`` is accepted).
    num_threads : int, optional
        Threads bed-reader decodes with (its default: all cores).

    Raises
    ------
    DataError
        When a file is missing or unreadable.
    """

    def __init__(self, prefix: str | Path, *, num_threads: int | None = None) -> None:
        from bed_reader import open_bed

        prefix = str(prefix).removesuffix(".bed")
        missing = [f"{prefix}{ext}" for ext in (".bed", ".bim", ".fam") if not Path(f"{prefix}{ext}").is_file()]
        if missing:
            raise DataError(f"PLINK fileset {prefix!r}: no such file {', '.join(repr(m) for m in missing)}")
        self.prefix = prefix
        try:
            self._bed = open_bed(f"{prefix}.bed", count_A1=True, num_threads=num_threads)
            self.fid = np.asarray(self._bed.fid, dtype=str)
            self.iid = np.asarray(self._bed.iid, dtype=str)
            self.chromosome = np.asarray(self._bed.chromosome, dtype=str)
            self.sid = np.asarray(self._bed.sid, dtype=str)
            self.position = np.asarray(self._bed.bp_position, dtype=np.int64)
            self.allele_1 = np.asarray(self._bed.allele_1, dtype=str)
            self.allele_2 = np.asarray(self._bed.allele_2, dtype=str)
            self._pheno = np.asarray(self._bed.pheno, dtype=str)
        except Exception as exc:  # noqa: BLE001 - bed-reader raises several types for bad files
            raise DataError(f"cannot read PLINK fileset {prefix!r}: {exc}") from None
        self.num_threads = num_threads

    @property
    def n_samples(self) -> int:
        """Individuals in the .fam."""
        return self.iid.size

    @property
    def n_snps(self) -> int:
        """SNPs in the .bim."""
        return self.sid.size

    def fam_phenotype(self) -> np.ndarray:
        """The .fam's sixth column as numbers (NaN for ``NA`` and ``-9``)."""
        return np.array([np.nan if v in MISSING else float(v) for v in self._pheno])

    def read(self, snps: slice | np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Genotypes of ``rows`` (default all individuals) at ``snps``, ``individuals × SNPs`` float64 (Fortran order)."""
        index = (slice(None) if rows is None else np.asarray(rows), snps)
        try:
            return self._bed.read(index=index, dtype="float64", order="F", num_threads=self.num_threads)
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"cannot read genotypes from {self.prefix}.bed: {exc}") from None

    def close(self) -> None:
        """Release the .bed file."""
        self._bed.__exit__(None, None, None)


@dataclass(frozen=True)
class ArrayGenotypes:
    """Genotypes held in memory with the interface of :class:`PlinkGenotypes` (tests and small data).

    Attributes
    ----------
    values : numpy.ndarray
        ``individuals × SNPs`` allele counts, NaN where missing.
    iid : numpy.ndarray
        Individual ids.
    chromosome : numpy.ndarray
        Chromosome of each SNP.
    """

    values: np.ndarray
    iid: np.ndarray
    chromosome: np.ndarray

    @property
    def n_samples(self) -> int:
        return self.values.shape[0]

    @property
    def n_snps(self) -> int:
        return self.values.shape[1]

    def read(self, snps: slice | np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        block = self.values[:, snps]
        return np.asfortranarray(block if rows is None else block[np.asarray(rows)], dtype=float)


def _parse_value(token: str, column: str, what: str) -> float:
    if token in MISSING:
        return np.nan
    try:
        return float(token)
    except ValueError:
        raise DataError(f"{what} file: column {column!r} has the non-numeric value {token!r}; code it as a number") from None


def read_sample_table(path: str | Path, what: str) -> pd.DataFrame:
    """A PLINK-style phenotype or covariate file: whitespace-separated ``FID IID v1 v2 …``, with a header when its
    first two fields are ``FID IID`` (``#FID`` too); ``NA``, ``-9`` and ``.`` are missing.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``(FID, IID)``; one float column per value column.

    Raises
    ------
    DataError
        For a missing file, ragged rows, non-numeric values or duplicated individuals.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} file {str(path)!r} does not exist")
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    if not lines:
        raise DataError(f"{what} file {str(path)!r} is empty")
    header = [t.lstrip("#").upper() for t in lines[0][:2]] == ["FID", "IID"]
    names = lines[0][2:] if header else [f"{what}{k + 1}" for k in range(len(lines[0]) - 2)]
    body = lines[1:] if header else lines
    if not names:
        raise DataError(f"{what} file {str(path)!r} has no value columns after FID and IID")
    width = len(names) + 2
    bad = [i + 1 + header for i, row in enumerate(body) if len(row) != width]
    if bad:
        raise DataError(f"{what} file {str(path)!r}: line(s) {_shown(bad)} do not have {width} fields")
    index = pd.MultiIndex.from_tuples([(r[0], r[1]) for r in body], names=["FID", "IID"])
    if index.duplicated().any():
        raise DataError(f"{what} file {str(path)!r} lists individual(s) twice: {_shown(index[index.duplicated()].get_level_values(1))}")
    values = {name: [_parse_value(r[k + 2], name, what) for r in body] for k, name in enumerate(names)}
    return pd.DataFrame(values, index=index)


def align_samples(table: pd.DataFrame, fid: np.ndarray, iid: np.ndarray, what: str, source: str) -> pd.DataFrame:
    """``table`` in the order of the .fam (rows of absent individuals all missing).

    ``table`` is indexed by ``(FID, IID)`` or by IID alone.

    Raises
    ------
    DataError
        When ids of ``table`` are not in the .fam (named), or no id matches.
    """
    if isinstance(table.index, pd.MultiIndex):
        keys = list(zip(fid, iid))
        shown = [f"{a} {b}" for a, b in table.index]
    else:
        keys = list(iid)
        table = table.set_axis([str(v) for v in table.index], axis=0)
        shown = list(table.index)
    known = set(keys)
    absent = [s for s, k in zip(shown, table.index) if k not in known]
    if absent:
        raise DataError(f"{len(absent)} individual(s) of the {what} are not in {source}: {_shown(absent)}")
    return table.reindex(pd.Index(keys) if not isinstance(table.index, pd.MultiIndex) else pd.MultiIndex.from_tuples(keys))
