"""Known relationship matrices: input forms, checks, alignment to a grouping factor's levels, and the
square root the engine uses.

A term ``(1 | id)`` with a known covariance ``K`` has random effects ``b ~ N(0, σ²_g K)``. With any
``L`` such that ``K = L L'``, ``b = σ_g L u`` with ``u`` iid, so the term is an ordinary scalar term
whose model matrix is ``Z L``. We choose ``L`` so that the term's own cross-product ``L'Z'ZL`` is
diagonal: with ``C = Z'Z = diag(c)`` (``c_l`` the sum of ``z²`` over the rows of level ``l``),

    C^{1/2} K C^{1/2} = W diag(s) W'   (eigendecomposition)   ⇒   L = C^{-1/2} W diag(√s),   L'CL = diag(s).

For one record per individual (``C = I``) this is the eigendecomposition FaST-LMM rotates by (Lippert
et al. 2011). A low-rank ``K = F F'`` (standardised genotypes with fewer SNPs than individuals) is
decomposed by the thin SVD of ``C^{1/2} F`` instead: ``s`` has ``rank ≤ m`` entries and ``L``'s other
columns are 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.linalg as sla

from ..exceptions import DataError, ModelError

#: Relative asymmetry ``max|K − K'| / max|K|`` accepted as rounding.
SYMMETRY_TOL = 1e-8
#: Negative eigenvalues down to this fraction of the largest are rounding (set to 0); below, K is not PSD.
PSD_TOL = 1e-6
#: Eigenvalues below this fraction of the largest (and GEMMA's absolute 1e-10) are set to 0.
ZERO_EIGENVALUE = 1e-10


def _label(v: object) -> str:
    from ..formula.coding import label

    return label(v)


def _shown(values: Sequence[str], k: int = 5) -> str:
    head = ", ".join(repr(v) for v in list(values)[:k])
    return head + (f" and {len(values) - k} more" if len(values) > k else "")


@dataclass(frozen=True, eq=False)
class Kinship:
    """A known relationship (covariance) matrix over individuals.

    Give the matrix ``K`` itself, or a factor ``F`` with ``K = F F'`` (``ids`` × ``m``; standardised
    genotypes scaled by ``1/√m``), which the engine decomposes by a thin SVD when ``m`` is smaller
    than the number of individuals.

    Attributes
    ----------
    ids : tuple of str
        Individual identifiers, in the order of the rows (and columns) of ``K``.
    matrix : numpy.ndarray or None
        ``K``, symmetric positive semi-definite.
    factor : numpy.ndarray or None
        ``F`` with ``K = F F'``.
    n_snps : int or None
        Number of SNPs a genomic relationship matrix was built from (reports only).
    """

    ids: tuple[str, ...]
    matrix: np.ndarray | None = field(default=None, repr=False)
    factor: np.ndarray | None = field(default=None, repr=False)
    n_snps: int | None = None

    def __post_init__(self) -> None:
        ids = tuple(_label(v) for v in self.ids)
        object.__setattr__(self, "ids", ids)
        if (self.matrix is None) == (self.factor is None):
            raise DataError("a Kinship needs exactly one of matrix (K) or factor (F with K = F F')")
        if len(set(ids)) != len(ids):
            dup = pd.Index(ids)[pd.Index(ids).duplicated()].unique().tolist()
            raise DataError(f"the relationship matrix has duplicated ids: {_shown(dup)}")
        q = len(ids)
        if self.matrix is not None:
            K = np.asarray(self.matrix, dtype=float)
            if K.ndim != 2 or K.shape[0] != K.shape[1]:
                raise DataError(f"the relationship matrix must be square, got shape {K.shape}")
            if K.shape[0] != q:
                raise DataError(f"the relationship matrix is {K.shape[0]} × {K.shape[1]} but has {q} ids")
            if not np.all(np.isfinite(K)):
                raise DataError(f"the relationship matrix has {int((~np.isfinite(K)).sum())} missing or infinite entries")
            scale = max(float(np.max(np.abs(K))), 1e-300)
            asym = float(np.max(np.abs(K - K.T))) if q else 0.0
            if asym > SYMMETRY_TOL * scale:
                i, j = np.unravel_index(int(np.argmax(np.abs(K - K.T))), K.shape)
                raise DataError(
                    f"the relationship matrix is not symmetric: K[{ids[i]!r}, {ids[j]!r}] = {K[i, j]:.6g} but "
                    f"K[{ids[j]!r}, {ids[i]!r}] = {K[j, i]:.6g}"
                )
            object.__setattr__(self, "matrix", (K + K.T) / 2.0)
        else:
            F = np.asarray(self.factor, dtype=float)
            if F.ndim != 2 or F.shape[0] != q:
                raise DataError(f"the relationship factor must have one row per id ({q}), got shape {F.shape}")
            if not np.all(np.isfinite(F)):
                raise DataError("the relationship factor has missing or infinite entries")
            object.__setattr__(self, "factor", F)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> "Kinship":
        """``K`` from a DataFrame whose index and columns are the same ids, in the same order."""
        rows = [_label(v) for v in frame.index]
        cols = [_label(v) for v in frame.columns]
        if rows != cols:
            if sorted(rows) == sorted(cols) and len(set(rows)) == len(rows):
                frame = frame.loc[:, [frame.columns[cols.index(r)] for r in rows]]
            else:
                extra = sorted(set(rows) ^ set(cols))
                raise DataError(f"the relationship matrix's index and columns differ: {_shown(extra)}")
        return cls(tuple(rows), matrix=frame.to_numpy(dtype=float))

    @property
    def size(self) -> int:
        """Number of individuals."""
        return len(self.ids)

    def dense(self) -> np.ndarray:
        """``K`` as a dense matrix (formed from the factor when given as one)."""
        return self.matrix if self.matrix is not None else self.factor @ self.factor.T

    def diagonal(self) -> np.ndarray:
        """``diag(K)``."""
        if self.matrix is not None:
            return np.diag(self.matrix).copy()
        return np.einsum("ij,ij->i", self.factor, self.factor)

    def subset(self, ids: Sequence[object], *, what: str = "the data") -> "Kinship":
        """The relationship among ``ids`` (in that order).

        Raises
        ------
        DataError
            Naming the ids that are not in the matrix.
        """
        want = [_label(v) for v in ids]
        pos = {v: i for i, v in enumerate(self.ids)}
        missing = [v for v in want if v not in pos]
        if missing:
            raise DataError(
                f"{len(missing)} individual(s) of {what} are not in the relationship matrix: {_shown(missing)}"
            )
        idx = np.fromiter((pos[v] for v in want), dtype=np.int64, count=len(want))
        if self.matrix is not None:
            return Kinship(tuple(want), matrix=self.matrix[np.ix_(idx, idx)], n_snps=self.n_snps)
        return Kinship(tuple(want), factor=self.factor[idx], n_snps=self.n_snps)


def as_kinship(value: object, group: str) -> Kinship:
    """A :class:`Kinship` from what ``covariance=`` accepts: a Kinship, a square DataFrame labelled by id on
    both axes, or a pair ``(array, ids)``.

    Raises
    ------
    DataError
        For any other form.
    """
    if isinstance(value, Kinship):
        return value
    if isinstance(value, pd.DataFrame):
        return Kinship.from_frame(value)
    if isinstance(value, tuple) and len(value) == 2:
        matrix, ids = value
        return Kinship(tuple(ids), matrix=np.asarray(matrix, dtype=float))
    raise DataError(
        f"covariance for {group!r} must be a pandas DataFrame indexed by id on both axes, a pair (matrix, ids) or "
        f"a mixedmodels.genetics.Kinship, got {type(value).__name__}"
    )


@dataclass(frozen=True, eq=False)
class KinshipRoot:
    """``L = C^{-1/2} W diag(√s)`` with ``L'CL = diag(s)`` (module docstring), kept as its parts.

    Attributes
    ----------
    basis : numpy.ndarray
        ``W``, ``q × r`` orthonormal columns.
    values : numpy.ndarray
        ``s``, ``r`` eigenvalues (0 where K is singular), decreasing.
    scale : numpy.ndarray
        ``√c``, ``q``.
    """

    basis: np.ndarray
    values: np.ndarray
    scale: np.ndarray

    @property
    def q(self) -> int:
        """Number of levels."""
        return self.basis.shape[0]

    @property
    def rank(self) -> int:
        """Columns of ``W`` (at most ``q``)."""
        return self.basis.shape[1]

    def padded_values(self) -> np.ndarray:
        """``s`` padded with zeros to ``q`` entries: the diagonal of ``L'CL``."""
        return np.r_[self.values, np.zeros(self.q - self.rank)]

    def right(self, A: np.ndarray) -> np.ndarray:
        """``A L`` for ``A`` of ``q`` columns (``… × q``), padded with zero columns to ``q``."""
        out = np.zeros(A.shape[:-1] + (self.q,))
        out[..., : self.rank] = ((A / self.scale) @ self.basis) * np.sqrt(self.values)
        return out

    def left(self, V: np.ndarray) -> np.ndarray:
        """``L v`` for each row ``v`` of ``V`` (``… × q``), as rows."""
        return ((V[..., : self.rank] * np.sqrt(self.values)) @ self.basis.T) / self.scale

    def rows(self, index: np.ndarray) -> np.ndarray:
        """Rows ``index`` of ``L`` (``len(index) × q``)."""
        out = np.zeros((len(index), self.q))
        out[:, : self.rank] = self.basis[index] * np.sqrt(self.values) / self.scale[index, None]
        return out


def kinship_root(kin: Kinship, counts: np.ndarray) -> KinshipRoot:
    """The square root of ``K`` that makes the term's cross-product diagonal (module docstring).

    Parameters
    ----------
    kin : Kinship
        ``K`` over the term's levels, in level order.
    counts : numpy.ndarray
        ``c_l``: the sum of ``z²`` (times prior weights) over the rows of each level.

    Raises
    ------
    ModelError
        When ``K`` is not positive semi-definite or a level has no information (``c_l = 0``).
    """
    counts = np.asarray(counts, dtype=float)
    if np.any(counts <= 0):
        bad = [kin.ids[i] for i in np.flatnonzero(counts <= 0)]
        raise ModelError(f"individual(s) {_shown(bad)} have only zero values of the term's variable")
    scale = np.sqrt(counts)
    if kin.factor is not None:
        U, sv, _ = sla.svd(kin.factor * scale[:, None], full_matrices=False, check_finite=False)
        values = sv**2
    else:
        values, U = sla.eigh(kin.matrix * scale[:, None] * scale[None, :], check_finite=False)
        values, U = values[::-1], U[:, ::-1]
        top = max(float(values[0]) if values.size else 0.0, 0.0)
        if values.size and values[-1] < -PSD_TOL * max(top, 1e-300):
            raise ModelError(
                f"the relationship matrix is not positive semi-definite: its smallest eigenvalue is {values[-1]:.4g} "
                f"(largest {top:.4g})"
            )
    top = float(values[0]) if values.size else 0.0
    values = np.where(values < max(ZERO_EIGENVALUE * top, ZERO_EIGENVALUE), 0.0, values)
    return KinshipRoot(basis=np.ascontiguousarray(U), values=values, scale=scale)
