"""Binding a residual specification to data: subjects, times, groups, row order and visit patterns.

The engine whitens each subject's rows with the Cholesky factor of ``C`` at the subject's observed times;
subjects of one group that share their times (a *visit pattern*) share the factor.  :func:`bind` finds,
once per model, every row's subject, time and group codes, the row order (by subject, then time) and the
patterns with their subjects and rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from ..exceptions import DataError, ModelError
from .residual import ResidualStructure
from .residual_spec import ResidualSpec, parse_residual


@dataclass(frozen=True, eq=False)
class VisitPattern:
    """Subjects of one group observed at the same times.

    Attributes
    ----------
    group : int
        Group index.
    times : numpy.ndarray
        The ``k`` observed times, increasing: level indices (discrete structures; positions 0 … k−1 for
        ``iid``) or times (``car1``).
    subjects : numpy.ndarray
        Subject codes, shape ``(m,)``.
    rows : numpy.ndarray
        Positions (0-based, in the bound frame) of the subjects' rows in time order, shape ``(m, k)``:
        ``X[rows]`` is the ``m × k × p`` stack of the subjects' model matrices.
    """

    group: int
    times: np.ndarray
    subjects: np.ndarray
    rows: np.ndarray

    @property
    def size(self) -> int:
        """Number of times ``k``."""
        return len(self.times)

    @property
    def n_subjects(self) -> int:
        """Number of subjects with this pattern."""
        return len(self.subjects)

    @property
    def n_rows(self) -> int:
        """Number of rows (``n_subjects · size``)."""
        return self.rows.size


@dataclass(frozen=True, eq=False)
class SubjectBatch:
    """All subjects of one group with ``k`` times, whatever the times: for batched continuous-time factors.

    Attributes
    ----------
    group : int
        Group index.
    subjects : numpy.ndarray
        Subject codes, ``(m,)``.
    rows : numpy.ndarray
        Frame positions in time order, ``(m, k)``.
    times : numpy.ndarray
        Times (or level indices) of those rows, ``(m, k)``.
    """

    group: int
    subjects: np.ndarray
    rows: np.ndarray
    times: np.ndarray


@dataclass(frozen=True, eq=False)
class ResidualBinding:
    """A residual specification bound to a data frame.

    Attributes
    ----------
    spec : ResidualSpec
        The specification.
    subject : numpy.ndarray
        Subject code of every row (0 … n_subjects−1).
    subject_levels : numpy.ndarray
        Subject labels by code.
    time : numpy.ndarray
        Every row's level index (discrete structures; int), time (``car1``; float) or position within its
        subject (``iid``).
    time_levels : tuple of str or None
        Labels of the time levels (discrete structures): the categories of a categorical column (unused
        ones dropped), otherwise the sorted distinct values.
    group : numpy.ndarray
        Group code of every row (all 0 without a group).
    group_levels : tuple of str or None
        Group labels, or None without a group.
    order : numpy.ndarray
        Frame positions sorted by subject, then time: the row order of the block-diagonal ``R``.
    subject_group : numpy.ndarray
        Group code of every subject.
    subject_pattern : numpy.ndarray
        Index in :attr:`patterns` of every subject.
    patterns : tuple of VisitPattern
        Distinct (group, times) patterns, ordered by group, number of times, times.
    """

    spec: ResidualSpec
    subject: np.ndarray
    subject_levels: np.ndarray
    time: np.ndarray
    time_levels: tuple[str, ...] | None
    group: np.ndarray
    group_levels: tuple[str, ...] | None
    order: np.ndarray
    subject_group: np.ndarray
    subject_pattern: np.ndarray
    patterns: tuple[VisitPattern, ...]

    @property
    def n(self) -> int:
        """Number of rows."""
        return len(self.subject)

    @property
    def n_subjects(self) -> int:
        """Number of subjects."""
        return len(self.subject_levels)

    @property
    def n_groups(self) -> int:
        """Number of groups (1 without a group variable)."""
        return 1 if self.group_levels is None else len(self.group_levels)

    def structure(self) -> ResidualStructure:
        """The specification's structure for these time levels and groups."""
        cls = self.spec.structure_class
        return cls(self.time_levels if cls.discrete else None, time_name=self.spec.time or "time",
                   groups=self.group_levels, group_name=self.spec.group or "group")

    def pattern_table(self) -> pd.DataFrame:
        """One row per visit pattern: ``group``, ``times``, ``size``, ``n_subjects``, ``n_rows``."""
        rows = []
        for p in self.patterns:
            if self.time_levels is not None:
                times = ",".join(self.time_levels[int(t)] for t in p.times)
            else:
                times = ",".join(f"{t:g}" for t in p.times)
            group = "" if self.group_levels is None else self.group_levels[p.group]
            rows.append((group, times, p.size, p.n_subjects, p.n_rows))
        return pd.DataFrame(rows, columns=["group", "times", "size", "n_subjects", "n_rows"])

    @cached_property
    def batches(self) -> tuple[SubjectBatch, ...]:
        """Subjects grouped by (group, number of times), for batched factors when patterns are many."""
        out = []
        sizes = np.array([p.size for p in self.patterns])
        groups = np.array([p.group for p in self.patterns])
        for g, k in sorted(set(zip(groups.tolist(), sizes.tolist()))):
            sel = [p for p in self.patterns if p.group == g and p.size == k]
            out.append(SubjectBatch(
                group=g,
                subjects=np.concatenate([p.subjects for p in sel]),
                rows=np.concatenate([p.rows for p in sel]),
                times=np.concatenate([np.broadcast_to(p.times, (p.n_subjects, k)) for p in sel]),
            ))
        return tuple(out)


def _codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and labels: a categorical's categories (unused ones dropped), else sorted values."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        cats = values.cat.remove_unused_categories()
        return cats.cat.codes.to_numpy(np.int64), np.asarray(cats.cat.categories)
    try:
        codes, labels = pd.factorize(values, sort=True)
    except TypeError:  # values of mixed types that do not sort
        codes, labels = pd.factorize(values, sort=False)
    return codes.astype(np.int64), np.asarray(labels)


def _is_factor(values: pd.Series) -> bool:
    return (isinstance(values.dtype, pd.CategoricalDtype) or ptypes.is_object_dtype(values.dtype)
            or ptypes.is_string_dtype(values.dtype) or ptypes.is_bool_dtype(values.dtype))


def _time_codes(spec: ResidualSpec, values: pd.Series) -> tuple[np.ndarray, tuple[str, ...] | None]:
    cls = spec.structure_class
    col = spec.time
    if cls.discrete:
        if not _is_factor(values):
            raise DataError(
                f"{spec} needs a factor (categorical or string) time: column {col!r} is {values.dtype}; "
                f"convert it with frame[{col!r}].astype('category') (levels are taken in the categories' order)")
        codes, labels = _codes(values)
        levels = tuple(str(v) for v in labels)
        if cls.max_levels is not None and len(levels) > cls.max_levels:
            npar = cls(len(levels)).n_core
            raise ModelError(
                f"{spec}: column {col!r} has {len(levels)} levels; a {cls.description} covariance over them "
                f"would have {npar} parameters per group, and at most {cls.max_levels} levels are allowed. "
                f"Use a structure with fewer parameters (ar1, cs, car1 on a numeric time)")
        if len(levels) < cls.min_levels:
            raise ModelError(
                f"{spec}: column {col!r} has {len(levels)} level(s); {spec.structure} needs at least "
                f"{cls.min_levels} to estimate its correlation")
        return codes, levels
    if spec.structure == "car1":
        if not (ptypes.is_numeric_dtype(values.dtype) and not ptypes.is_bool_dtype(values.dtype)):
            raise DataError(f"{spec} needs a numeric time: column {col!r} is {values.dtype}")
        t = values.to_numpy(dtype=float)
        if not np.isfinite(t).all():
            raise DataError(f"{spec}: column {col!r} has infinite values")
        return t, None
    # iid: the time only orders rows within subjects
    if ptypes.is_numeric_dtype(values.dtype) and not ptypes.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype=float), None
    return _codes(values)[0], None


def bind(spec: str | ResidualSpec, frame: pd.DataFrame) -> ResidualBinding:
    """Bind a residual specification to a data frame (rows with missing values already dropped).

    Parameters
    ----------
    spec : str or ResidualSpec
        ``"us(visit | subject)"``, ``"ar1(visit | arm / subject)"``, ``"car1(time | subject)"``, …
    frame : pandas.DataFrame
        The model's rows.

    Returns
    -------
    ResidualBinding

    Raises
    ------
    DataError
        A named column is missing or has missing values; a discrete structure's time is not a factor; a
        ``car1`` time is not numeric; a subject has a time twice; a subject is in two groups.
    ModelError
        Too many time levels for ``us``, ``toep(h)``, ``ad(h)`` (more than 30), or too few (< 2) for a
        correlation.
    """
    if isinstance(spec, str):
        spec = parse_residual(spec)
    if not isinstance(frame, pd.DataFrame):
        if hasattr(frame, "to_pandas"):
            frame = frame.to_pandas()
        else:
            raise DataError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    n = len(frame)
    if n == 0:
        raise DataError("the data have no rows")
    for col in spec.columns:
        if col not in frame.columns:
            raise DataError(f"column {col!r} named in {spec} is not in the data")
        if frame[col].isna().any():
            raise DataError(f"column {col!r} named in {spec} has missing values; drop those rows first")

    if spec.subject is None:
        subject, subject_levels = np.arange(n, dtype=np.int64), np.arange(n)
    else:
        subject, subject_levels = _codes(frame[spec.subject])
    if spec.group is None:
        group, group_levels = np.zeros(n, dtype=np.int64), None
    else:
        group, glabels = _codes(frame[spec.group])
        group_levels = tuple(str(v) for v in glabels)
    n_subj = len(subject_levels)

    if spec.time is None:
        order = np.lexsort((np.arange(n), subject))
    else:
        time, time_levels = _time_codes(spec, frame[spec.time])
        order = np.lexsort((time, subject))
    s_sorted = subject[order]
    counts = np.bincount(subject, minlength=n_subj)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(n) - starts[s_sorted]
    if spec.time is None or (spec.structure == "iid"):
        time = np.empty(n, dtype=np.int64)
        time[order] = pos
        time_levels = None

    t_sorted = time[order]
    dup = (s_sorted[1:] == s_sorted[:-1]) & (t_sorted[1:] == t_sorted[:-1])
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        value = time_levels[int(t_sorted[i])] if time_levels is not None else t_sorted[i]
        raise DataError(f"column {spec.time!r} has a value twice within a subject ({spec.subject}="
                        f"{subject_levels[s_sorted[i]]!r} has {spec.time}={value!r} twice); "
                        f"{spec} needs one row per subject and time")

    g_sorted = group[order]
    gmin = np.minimum.reduceat(g_sorted, starts)
    gmax = np.maximum.reduceat(g_sorted, starts)
    if (gmin != gmax).any():
        s = int(np.flatnonzero(gmin != gmax)[0])
        assert group_levels is not None
        raise DataError(f"subject {subject_levels[s]!r} of column {spec.subject!r} is in groups "
                        f"{group_levels[gmin[s]]!r} and {group_levels[gmax[s]]!r} of column {spec.group!r}; "
                        f"each subject must be in one group")
    subject_group = gmin

    kmax = int(counts.max())
    t_pad = np.zeros((n_subj, kmax), dtype=time.dtype)
    t_pad[s_sorted, pos] = t_sorted
    r_pad = np.full((n_subj, kmax), -1, dtype=np.int64)
    r_pad[s_sorted, pos] = order
    key = np.column_stack([subject_group.astype(t_pad.dtype), counts.astype(t_pad.dtype), t_pad])
    uniq, inverse = np.unique(key, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    by_pattern = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=len(uniq)))[:-1]
    patterns = []
    for row, subs in zip(uniq, np.split(by_pattern, bounds)):
        k = int(row[1])
        patterns.append(VisitPattern(group=int(row[0]), times=row[2 : 2 + k].copy(), subjects=subs,
                                     rows=r_pad[subs, :k]))
    return ResidualBinding(spec=spec, subject=subject, subject_levels=subject_levels, time=time,
                           time_levels=time_levels, group=group, group_levels=group_levels, order=order,
                           subject_group=subject_group, subject_pattern=inverse.astype(np.int64),
                           patterns=tuple(patterns))


def empirical_covariances(resid: np.ndarray, binding: ResidualBinding) -> list[np.ndarray]:
    """Per group, the pairwise-complete empirical covariance of ``resid`` over time levels (not centred).

    ``resid`` is aligned with the bound frame's rows.  Discrete structures get a T × T matrix (a level
    never seen in a group gets the pooled variance, a pair never seen together zero covariance); others
    a 1 × 1 matrix, the group's mean square.
    """
    resid = np.asarray(resid, dtype=float)
    pooled = float(np.mean(resid**2)) or 1.0
    out = []
    if binding.time_levels is None:
        for g in range(binding.n_groups):
            r = resid[binding.group == g]
            out.append(np.array([[float(np.mean(r**2)) if r.size and np.any(r) else pooled]]))
        return out
    size = len(binding.time_levels)
    wide = np.zeros((binding.n_subjects, size))
    seen = np.zeros((binding.n_subjects, size))
    wide[binding.subject, binding.time] = resid
    seen[binding.subject, binding.time] = 1.0
    for g in range(binding.n_groups):
        w, s = wide[binding.subject_group == g], seen[binding.subject_group == g]
        num, cnt = w.T @ w, s.T @ s
        cov = np.where(cnt > 0, num / np.maximum(cnt, 1.0), 0.0)
        var = np.diag(cov).copy()
        var[(np.diag(cnt) == 0) | (var <= 0)] = pooled
        sd = np.sqrt(var)
        corr = np.clip(cov / np.outer(sd, sd), -0.95, 0.95)
        np.fill_diagonal(corr, 1.0)
        out.append(corr * np.outer(sd, sd))
    return out


def consecutive_pairs(binding: ResidualBinding) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame positions of consecutive rows of each subject (``a`` before ``b``) and their time distance."""
    order = binding.order
    same = binding.subject[order][1:] == binding.subject[order][:-1]
    a, b = order[:-1][same], order[1:][same]
    return a, b, np.abs(binding.time[b] - binding.time[a]).astype(float)
