"""The Dask fit's second pass: each partition's cross-products and the moments the design checks read.

Every partition is evaluated with the frozen spec (:class:`.plan.FrozenSpec`): rows with a missing
value dropped and counted, ``[Z X y]`` built, and :class:`PartitionStats` returned — the
cross-products (:class:`~mixedmodels.engine.crossprod.CrossProducts`, additive over rows), the
triangular factor ``R`` of ``[X y] = QR`` (merged as a tall-skinny QR: ``R`` of ``[R₁; R₂]``), each
column's mean and centred sum of squares (Chan's pairwise update), whether each column is binary, the
response's range and the rows per level. All of it is a sum over rows, so ``a + b`` merges two
partitions and a tree reduction gives the whole data's.
"""

from __future__ import annotations

import functools
import operator
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..engine.crossprod import CrossProducts
from ..exceptions import DataError
from ..formula.coding import coerce_columns
from ..formula.safety import evaluation_context
from ..terms import RandomEffectsTerm
from .plan import FrozenSpec

#: Rows per block of the partition's QR (LAPACK is fastest on tall blocks that fit in cache).
QR_BLOCK = 65536


def _blocked_r(A: np.ndarray) -> np.ndarray:
    """The ``k × k`` ``R`` of a tall ``A`` (``k`` columns) by blocks, merged as a tall-skinny QR."""
    k = A.shape[1]
    blocks = [np.linalg.qr(A[i : i + QR_BLOCK], mode="r") for i in range(0, A.shape[0], QR_BLOCK)]
    R = np.linalg.qr(np.vstack(blocks), mode="r") if len(blocks) > 1 else blocks[0]
    return R if R.shape[0] == k else np.vstack([R, np.zeros((k - R.shape[0], k))])


def _tsqr(R1: np.ndarray, R2: np.ndarray) -> np.ndarray:
    """The ``R`` of ``[A₁; A₂]`` from those of ``A₁`` and ``A₂`` (signs aside, as R's ``qr`` reads them)."""
    k = R1.shape[1]
    R = np.linalg.qr(np.vstack([R1, R2]), mode="r")[:k]
    return R if R.shape[0] == k else np.vstack([R, np.zeros((k - R.shape[0], k))])


@dataclass
class PartitionStats:
    """A second pass over some rows (see the module docstring).

    Attributes
    ----------
    nrows : int
        Rows read, complete or not.
    n : int
        Complete rows (the observations).
    cp : CrossProducts or None
        Of ``[Z X y − shift]``, X with every column formulaic makes (before the rank check); None without rows.
    R : numpy.ndarray
        Upper-triangular factor of ``[X y]`` (``R'R = [X y]'[X y]``).
    mean, m2 : numpy.ndarray
        Mean and centred sum of squares of each column of ``[X y]``.
    binary : numpy.ndarray
        Whether each column of X holds only 0 and 1.
    ymin, ymax : float
    counts : tuple of numpy.ndarray
        Complete rows per level of each random-effects term (written order).
    level_counts : dict
        Complete rows per value of each column that carries a factor's levels.
    empty_strings : dict
        Empty strings per text column, in complete rows.
    """

    nrows: int
    n: int
    cp: CrossProducts | None
    R: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    binary: np.ndarray
    ymin: float
    ymax: float
    counts: tuple[np.ndarray, ...]
    level_counts: dict[str, pd.Series]
    empty_strings: dict[str, int]

    def __add__(self, other: PartitionStats) -> PartitionStats:
        if other.n == 0 or self.n == 0:
            a, b = (self, other) if other.n == 0 else (other, self)
            return PartitionStats(
                a.nrows + b.nrows, a.n, a.cp, a.R, a.mean, a.m2, a.binary, a.ymin, a.ymax,
                tuple(x + y for x, y in zip(a.counts, b.counts)), _add_counts(a.level_counts, b.level_counts),
                _add_empty(a.empty_strings, b.empty_strings),
            )
        n = self.n + other.n
        delta = other.mean - self.mean
        return PartitionStats(
            nrows=self.nrows + other.nrows,
            n=n,
            cp=self.cp + other.cp,
            R=_tsqr(self.R, other.R),
            mean=self.mean + delta * (other.n / n),
            m2=self.m2 + other.m2 + delta**2 * (self.n * other.n / n),
            binary=self.binary & other.binary,
            ymin=min(self.ymin, other.ymin),
            ymax=max(self.ymax, other.ymax),
            counts=tuple(x + y for x, y in zip(self.counts, other.counts)),
            level_counts=_add_counts(self.level_counts, other.level_counts),
            empty_strings=_add_empty(self.empty_strings, other.empty_strings),
        )


def _add_counts(a: dict[str, pd.Series], b: dict[str, pd.Series]) -> dict[str, pd.Series]:
    return {c: s.add(b[c], fill_value=0) for c, s in a.items()}


def _add_empty(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {c: a.get(c, 0) + b.get(c, 0) for c in dict.fromkeys([*a, *b])}


def total(parts: list[PartitionStats]) -> PartitionStats:
    """The sum of a few partitions' statistics (one node of the tree reduction)."""
    return functools.reduce(operator.add, parts)


def _empty(spec: FrozenSpec, nrows: int, k: int) -> PartitionStats:
    counts = tuple(np.zeros(len(spec.tables[tuple(s.group)].labels), dtype=np.int64) for s in spec.parts.parsed.random)
    level = {c: pd.Series(dtype=np.int64) for c in _level_columns(spec)}
    return PartitionStats(nrows, 0, None, np.zeros((k, k)), np.zeros(k), np.zeros(k), np.ones(k - 1, dtype=bool),
                          np.inf, -np.inf, counts, level, {})


def _level_columns(spec: FrozenSpec) -> list[str]:
    """Columns that carry a factor of the model matrices (each of their levels must have a complete row)."""
    return list(spec.factor_columns)


def design_arrays(frame: pd.DataFrame, spec: FrozenSpec) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """``(y, X, z per term, refs per term)`` of a partition's complete, coerced rows, with the frozen encodings.

    Raises
    ------
    DataError
        For a level the first pass did not see, and for infinite values.
    """
    from formulaic.errors import DataMismatchWarning

    parts = spec.parts
    ctx = evaluation_context()
    fframe = frame.rename(columns=parts.aliases) if parts.aliases else frame
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DataMismatchWarning)
            mm = spec.specs.get_model_matrix(fframe, context=ctx, na_action="ignore")
            zs = [np.asarray(ts.get_model_matrix(fframe, context=ctx, na_action="ignore"), dtype=float) for ts in spec.term_specs]
    except DataMismatchWarning as exc:
        raise DataError(
            f"a partition has a factor level the first pass did not find ({str(exc).splitlines()[0]}); "
            "a factor made by a comparison of several columns cannot be covered on Dask data: add it as a column"
        ) from None
    y = np.asarray(mm.lhs, dtype=float).reshape(-1)
    if not np.all(np.isfinite(y)):
        raise DataError(f"the response {parts.parsed.response!r} has {int((~np.isfinite(y)).sum())} infinite or undefined values")
    X = np.asarray(mm.rhs, dtype=float)
    if not np.all(np.isfinite(X)):
        raise DataError("the fixed-effects model matrix has infinite or undefined values")
    for z, rspec in zip(zs, parts.parsed.random):
        if not np.all(np.isfinite(z)):
            raise DataError(f"random-effects term '{rspec.label}' has infinite values")
    refs = [spec.tables[tuple(s.group)].refs(frame) for s in parts.parsed.random]
    return y, X, zs, refs


def second_pass(part: pd.DataFrame, spec: FrozenSpec) -> PartitionStats:
    """The second pass over one partition (see the module docstring)."""
    parts = spec.parts
    part = part[parts.used]
    nrows = len(part)
    k = len(spec.names) + 1
    part = part.loc[part.notna().all(axis=1).to_numpy()]
    if not len(part):
        return _empty(spec, nrows, k)
    frame = coerce_columns(part, parts.group_vars)
    y, X, zs, refs = design_arrays(frame, spec)
    terms = tuple(
        RandomEffectsTerm(group=s.group_label, group_vars=s.group, levels=spec.tables[tuple(s.group)].labels, refs=r,
                          z=np.ascontiguousarray(z), cnames=c, spec=None)
        for s, z, r, c in zip(parts.parsed.random, zs, refs, spec.term_cnames)
    )
    yc = y - spec.shift
    cp = CrossProducts.from_arrays(terms, X, yc)
    XY = np.column_stack([X, yc])
    R = _blocked_r(XY)
    # moments of [X y]: sums of squares from the cross-products (y's about the shift, which is near its mean)
    n = len(y)
    mean = XY.sum(axis=0) / n
    m2 = np.maximum(np.diag(cp.xx) - n * mean**2, 0.0)
    mean[-1] += spec.shift
    binary = np.all((X == 0.0) | (X == 1.0), axis=0)
    counts = tuple(np.bincount(r, minlength=t.nlevels) for r, t in zip(refs, terms))
    level = {}
    for c in _level_columns(spec):
        vc = frame[c].value_counts(sort=False)
        vc = vc[vc > 0]
        level[c] = pd.Series(vc.to_numpy(dtype=np.int64), index=pd.Index(vc.index.to_numpy(dtype=object), dtype=object))
    empty = {}
    for c in frame.columns:
        s = frame[c]
        if s.dtype == object or (isinstance(s.dtype, pd.CategoricalDtype) and "" in set(s.cat.categories)):
            empty[c] = int((s.astype(object) == "").sum())
    return PartitionStats(nrows, len(y), cp, R, mean, m2, binary, float(y.min()), float(y.max()), counts, level, empty)
