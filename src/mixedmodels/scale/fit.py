"""Fit a linear mixed model to a Dask DataFrame: two passes over the partitions, θ optimised on the driver.

1. A sample (the first partition with complete rows) tells which columns carry levels.
2. The first pass (:mod:`.plan`) reads those columns only and collects the level tables and one row per
   level of every factor; formulaic learns the encodings from those rows once (the frozen spec).
3. The second pass (:mod:`.passes`) evaluates each partition with the frozen spec and returns its
   cross-products, the ``R`` of its ``[X y]``, column moments and rows per level; a tree reduction
   (``split_every`` at a time, on the cluster) adds them up.
4. On the driver: levels without a complete row are dropped (lme4's ``drop.unused.levels``); the rank
   check reads ``R`` (R's pivoting rule), the scale check the column moments, the degenerate-response check
   ``R`` and the response's moments, the random-slope check the ``Z'Z`` blocks; the cross-products are cut
   to the kept columns and θ is optimised from them (:class:`.model.DaskLinearMixedModel`).

A factor level of the fixed effects seen only on rows with a missing value elsewhere (the first pass reads
only the level columns) would make an empty column: then both passes are run again, the first with every
column, as the in-memory fit finds levels on complete rows only.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import pandas as pd

from ..engine import CrossProducts
from ..exceptions import (
    DataError,
    DataWarning,
    ModelError,
    ScaleWarning,
)
from ..formula.coding import coerce_columns
from ..formula.design import RANK_TOLERANCE, Design, DesignNotes, lme4_term_order, no_rows_error, scale_message
from ..optimize import OptimizerControl
from ..terms import RandomEffectsTerm
from .model import DaskLinearMixedModel, _is_dask
from .passes import PartitionStats, second_pass, total
from .plan import FirstPass, FrozenSpec, Plan, first_pass, freeze, make_plan, merge_first, translate_formula

#: Partial results merged per node of the tree reductions.
SPLIT_EVERY = 8


def _shared(obj: Any) -> Any:
    """``obj`` for the partitions' tasks: scattered once to every worker under a distributed client, else a
    delayed literal (one graph key all tasks depend on)."""
    import dask

    try:
        from distributed import get_client

        client = get_client()
    except (ImportError, ValueError):
        return dask.delayed(obj, pure=False)
    return client.scatter(obj, broadcast=True, hash=False)


def _tree(items: list[Any], combine: Any, *extra: Any, split_every: int = SPLIT_EVERY) -> Any:
    """Tree reduction of delayed ``items``: ``combine(list, *extra)`` of ``split_every`` at a time, on the workers."""
    import dask

    if not items:
        raise DataError("the Dask DataFrame has no partitions")
    while True:
        items = [dask.delayed(combine)(items[i : i + split_every], *extra) for i in range(0, len(items), split_every)]
        if len(items) == 1:
            return items[0]


def _sample(ddf: Any, used: list[str]) -> pd.DataFrame:
    """Complete rows of the first partition that has some, coerced as the fit codes them."""
    from .plan import SAMPLE_ROWS

    cols = ddf[used]
    for i in range(cols.npartitions):
        part = cols.get_partition(i).dropna().head(SAMPLE_ROWS, npartitions=1)
        if len(part):
            return part
    raise DataError("no rows to fit: every row has a missing value in a variable the model uses")


def _run_first(ddf: Any, plan: Plan, strict: bool, split_every: int) -> FirstPass:
    import dask

    cols = plan.parts.used if strict else plan.level_columns
    shared = _shared(plan)
    items = [dask.delayed(_first_of)(p, shared, strict) for p in ddf[cols].to_delayed()]
    return dask.compute(_tree(items, merge_first, shared, split_every=split_every))[0]


def _first_of(part: pd.DataFrame, plan: Plan, strict: bool) -> FirstPass:
    if strict:  # levels of the rows complete in every column the model uses
        part = part.loc[part.notna().all(axis=1).to_numpy()]
    return first_pass(part, plan)


def _run_second(ddf: Any, spec: FrozenSpec, split_every: int) -> PartitionStats:
    import dask

    shared = _shared(spec)
    items = [dask.delayed(second_pass)(p, shared) for p in ddf[spec.parts.used].to_delayed()]
    return dask.compute(_tree(items, total, split_every=split_every))[0]


def _unused_levels(spec: FrozenSpec, stats: PartitionStats) -> list[str]:
    """Columns whose covering rows hold a value no complete row has."""
    out = []
    for c, counts in stats.level_counts.items():
        have = set(counts.index[counts.to_numpy() > 0].tolist())
        values = spec.cover[c]
        values = values.astype(object) if isinstance(values.dtype, pd.CategoricalDtype) else values
        if any(v not in have for v in pd.unique(values.to_numpy())):
            out.append(c)
    return out


# ---------------------------------------------------------------------------------------------- cross-product surgery
def drop_levels(cp: CrossProducts, k: int, keep: np.ndarray) -> CrossProducts:
    """``cp`` without the levels of term ``k`` where ``keep`` is False (levels without rows: zero blocks)."""
    p = cp.diag[k].shape[1]
    cols = np.repeat(keep, p)
    diag = list(cp.diag)
    diag[k] = cp.diag[k][keep]
    zx = list(cp.zx)
    zx[k] = np.ascontiguousarray(cp.zx[k][:, cols])
    off = {}
    for (a, b), block in cp.off.items():
        if a == k:
            block = block[cols]
        if b == k:
            block = block[:, cols]
        off[a, b] = block.tocsr() if hasattr(block, "tocsr") else np.ascontiguousarray(block)
    return CrossProducts(diag=tuple(diag), off=off, zx=tuple(zx), xx=cp.xx, n=cp.n)


def permute_terms(cp: CrossProducts, order: list[int]) -> CrossProducts:
    """``cp`` with its terms in ``order`` (``Z_k'Z_j`` for ``k > j`` in the new order, transposed where needed)."""
    off = {}
    for k in range(len(order)):
        for j in range(k):
            a, b = order[k], order[j]
            block = cp.off[a, b] if a > b else cp.off[b, a].T
            off[k, j] = block.tocsr() if hasattr(block, "tocsr") else np.ascontiguousarray(block)
    return CrossProducts(
        diag=tuple(cp.diag[i] for i in order), off=off, zx=tuple(cp.zx[i] for i in order), xx=cp.xx, n=cp.n
    )


def keep_columns(cp: CrossProducts, cols: np.ndarray) -> CrossProducts:
    """``cp`` with ``[X y]`` cut to the columns ``cols`` (positions, the response's last)."""
    return dataclasses.replace(
        cp, zx=tuple(np.ascontiguousarray(z[cols]) for z in cp.zx), xx=np.ascontiguousarray(cp.xx[np.ix_(cols, cols)])
    )


# ---------------------------------------------------------------------------------------------- the design's checks
def _slopes_vary(cp_diag: np.ndarray, cnames: tuple[str, ...], label: str) -> None:
    """A random slope next to a random intercept must vary within some group (from the ``Z'Z`` blocks:
    the within-level sum of squares ``Σz² − (Σz)²/n``, zero up to rounding where the slope is constant)."""
    if "(Intercept)" not in cnames:
        return
    i = cnames.index("(Intercept)")
    count = cp_diag[:, i, i]
    has = count > 0
    for j in range(len(cnames)):
        if j == i:
            continue
        ss = cp_diag[has, j, j]
        within = ss - cp_diag[has, i, j] ** 2 / count[has]
        if np.all(within <= 1e-10 * ss + 1e-300):
            raise ModelError(
                f"random slope {cnames[j]!r} in {label} is constant within every group, so it cannot be "
                "separated from the random intercept; drop it or make it a fixed effect"
            )


def _degenerate(stats: PartitionStats, name: str, p_kept: int) -> str | None:
    """:func:`~mixedmodels.formula.design.exact_response` from the response's range and the ``R`` of ``[X y]``."""
    if stats.ymax == stats.ymin:
        return (
            f"the response {name!r} is constant (all {stats.n} values are {stats.ymin:.6g}): the fit is degenerate, "
            "with residual SD 0 and every variance component 0"
        )
    if p_kept and abs(stats.R[-1, -1]) <= 1e-10 * np.sqrt(stats.m2[-1]):
        return (
            f"the fixed effects reproduce the response {name!r} exactly (residual sum of squares 0): the fit is "
            "degenerate, with residual SD 0 and every variance component 0"
        )
    return None


def assemble(
    spec: FrozenSpec, stats: PartitionStats, *, contrasts: dict[str, str] | None = None, warn: bool = True
) -> tuple[Design, CrossProducts, tuple, tuple]:
    """The row-less design, the cross-products of the kept columns, the level tables and the y shift."""
    parts = spec.parts
    n = stats.n
    n_dropped = stats.nrows - n
    if n == 0:
        raise no_rows_error(n_dropped)
    notes = DesignNotes(warn)
    note = notes.note
    notes.dropped_rows(n_dropped)
    for c in parts.used:
        if stats.empty_strings.get(c):
            notes.empty_strings(c, stats.empty_strings[c])
    for c in sorted(parts.sum_coded):
        if c not in parts.fixed.plain:
            notes.contrasts_ignored(c)
    cp = stats.cp
    p_full = len(spec.names)
    norms = np.sqrt(np.maximum(np.diag(cp.xx)[:p_full], 0.0))
    resid = np.abs(np.diag(stats.R))[:p_full]
    kept = np.flatnonzero((norms > 0) & (resid > RANK_TOLERANCE * norms)).astype(np.int64)
    dropped = tuple(spec.names[j] for j in range(p_full) if j not in set(kept.tolist()))
    notes.rank_deficient(dropped)
    cont = [j for j in kept if not stats.binary[j]]
    if cont:
        sd = np.sqrt(stats.m2[cont] / (n - 1)) if n > 1 else np.ones(len(cont))
        if msg := scale_message(sd):
            note(msg, ScaleWarning)
    degenerate = _degenerate(stats, parts.parsed.response, kept.size)
    if degenerate:
        note(degenerate, DataWarning)
    # terms: levels without a complete row dropped, the lme4 checks, lme4's order
    tables, terms = [], []
    for k, (rspec, cnames, structure, term_spec) in enumerate(zip(parts.parsed.random, spec.term_cnames, spec.structures, spec.term_specs)):
        table = spec.tables[tuple(rspec.group)]
        keep = stats.counts[k] > 0
        if not keep.all():
            cp = drop_levels(cp, k, keep)
            table = table.subset(keep)
        nlev, p = len(table.labels), len(cnames)
        if nlev < 2:
            raise ModelError(f"grouping factor {rspec.group_label!r} must have more than one level (it has {nlev})")
        if nlev >= n:
            raise ModelError(
                f"number of levels of grouping factor {rspec.group_label!r} ({nlev}) must be less than the number of observations ({n})"
            )
        if nlev * p >= n:
            raise ModelError(
                f"number of observations (={n}) <= number of random effects (={nlev * p}) for term "
                f"{rspec.label}; the random-effects parameters and the residual variance are probably unidentifiable"
            )
        _slopes_vary(cp.diag[k], cnames, rspec.label)
        tables.append(table)
        terms.append(RandomEffectsTerm(
            group=rspec.group_label, group_vars=rspec.group, levels=table.labels, refs=np.zeros(0, dtype=np.int64),
            z=np.zeros((0, p)), cnames=cnames, spec=term_spec, structure=structure,
        ))
    order = lme4_term_order([t.nlevels for t in terms])
    if order != list(range(len(terms))):
        cp = permute_terms(cp, order)
    cp = keep_columns(cp, np.r_[kept, p_full])
    intercept = spec.intercept
    y_shift = None if intercept is None else (int(np.flatnonzero(kept == intercept)[0]), spec.shift)
    design = Design(
        formula=parts.parsed,
        y=np.zeros(0),
        X=np.zeros((0, kept.size)),
        fixed_names=tuple(spec.names[j] for j in kept),
        dropped_columns=dropped,
        terms=tuple(terms[i] for i in order),
        n_dropped=n_dropped,
        row_index=pd.RangeIndex(0),
        fixed_spec=spec.specs.rhs,
        kept_columns=kept,
        response_name=parts.parsed.response,
        messages=tuple(notes.messages),
        frame=None,
        data_index=None,
        contrasts=dict(contrasts or {}),
        fixed_atoms=dict(parts.fixed.atoms),
        aliases=parts.aliases,
        degenerate=degenerate,
    )
    return design, cp, tuple(tables[i] for i in order), y_shift


# ---------------------------------------------------------------------------------------------- entry point
def dask_model(
    formula: str,
    ddf: Any,
    *,
    reml: bool = True,
    contrasts: dict[str, str] | None = None,
    control: OptimizerControl | None = None,
    data_name: str | None = None,
    split_every: int = SPLIT_EVERY,
    warn: bool = True,
) -> DaskLinearMixedModel:
    """Build the model of ``formula`` on the Dask DataFrame ``ddf`` (both passes; see the module docstring).

    Raises
    ------
    FormulaError, DataError, ModelError
        As the in-memory fit, and for what the Dask fit does not do (see :func:`mixedmodels.scale.lmer`).
    """
    if not _is_dask(ddf):
        raise DataError(f"expected a Dask DataFrame, got {type(ddf).__name__}")
    columns = [str(c) for c in ddf.columns]
    if len(set(columns)) != len(columns):
        dup = sorted({c for c in columns if columns.count(c) > 1})
        raise DataError(f"duplicated column names: {', '.join(dup)}")
    if list(ddf.columns) != columns:
        ddf = ddf.rename(columns=dict(zip(ddf.columns, columns)))
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = timings.get(name, 0.0) + now - clock
        clock = now

    parts = translate_formula(formula, columns, contrasts)
    sample = coerce_columns(_sample(ddf, parts.used), parts.group_vars)
    plan = make_plan(parts, sample, ddf._meta)
    lap("sample")
    spec, stats = None, None
    for strict in (False, True):
        first = _run_first(ddf, plan, strict, split_every)
        lap("first pass")
        spec = freeze(plan, first, sample)
        lap("level tables and encodings")
        stats = _run_second(ddf, spec, split_every)
        lap("second pass")
        if stats.n == 0 or not _unused_levels(spec, stats):
            break
    design, cp, tables, y_shift = assemble(spec, stats, contrasts=contrasts, warn=warn)
    response_columns = tuple(sorted(parts.response.used))
    model = DaskLinearMixedModel(
        design, cp, stats.n, y_shift, tables, response_spec=spec.specs.lhs, used_columns=tuple(parts.used),
        response_columns=response_columns, source=ddf, reml=reml, data_name=data_name, control=control,
    )
    lap("design checks")
    model.timings = timings
    return model
