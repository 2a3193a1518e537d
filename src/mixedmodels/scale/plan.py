"""The Dask fit's first pass: level tables and the frozen design spec.

A formula is evaluated on a Dask DataFrame in two passes. The first (this module) reads only the
columns that carry levels — the grouping variables and the variables of every factor of the fixed
effects and of the random-effects terms — and collects, per partition:

* the distinct values (combinations, for ``a:b`` groupings) of each grouping factor;
* a few covering rows: one row for each level of each factor, from which formulaic learns the
  levels and encodings once (:class:`FrozenSpec`), exactly as it would from the whole data;
* the text columns' value counts (for :func:`~mixedmodels.formula.coding.stray_text`'s check).

The partial results are merged by a tree reduction. Levels are sorted as the in-memory fit sorts
them (:func:`~mixedmodels.formula.design.grouping_factor`): numbers and strings in sorted order,
categoricals in their category order. The second pass (:mod:`.passes`) evaluates every partition
with the frozen spec.
"""

from __future__ import annotations

import functools
import operator
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..covariance.random import random_structure
from ..exceptions import DataError, FormulaError, ModelError
from ..formula.coding import _DECIMAL_COMMA, _NUMBER, check_predictor_types, coerce_columns, column_kind
from ..formula.design import _check_factor_columns, _matrix, _sum_coded, grouping_factor
from ..formula.naming import factor_levels, r_column_names
from ..formula.parse import ParsedFormula, parse_formula
from ..formula.safety import Translation, _unknown_column, evaluation_context, formulaic_aliases, translate

#: Rows of the response's sample used for the centring shift (the first complete rows of the data).
SAMPLE_ROWS = 100_000


@dataclass
class FormulaParts:
    """A formula translated against the Dask DataFrame's columns (as :func:`~mixedmodels.formula.design.build_design` does)."""

    parsed: ParsedFormula
    columns: list[str]
    aliases: dict[str, str]
    response: Translation
    fixed: Translation
    terms: list[Translation]
    group_vars: tuple[str, ...]
    used: list[str]
    sum_coded: set[str]

    @property
    def plain(self) -> set[str]:
        """Columns used other than as the variable of ``factor()``/``C()`` (checked for stray text)."""
        return set(self.response.plain | self.fixed.plain).union(*(t.plain for t in self.terms))


def translate_formula(formula: str | ParsedFormula, columns: list[str], contrasts: dict[str, str] | None) -> FormulaParts:
    """Check and translate ``formula`` for the columns of a Dask DataFrame.

    Raises
    ------
    FormulaError, DataError
        As the in-memory fit does, and for what the Dask fit cannot do (``offset()`` terms).
    """
    parsed = parse_formula(formula) if isinstance(formula, str) else formula
    if parsed.offsets:
        raise ModelError("offset() terms are not available on Dask data yet; fit y minus the offset as the response")
    sum_coded = _sum_coded(contrasts, columns)
    aliases = formulaic_aliases(columns)
    response = translate(parsed.response, columns, aliases=aliases)
    dot = [c for c in columns if c not in response.used]
    fixed = translate(parsed.fixed, columns, dot=dot, sum_coded=sum_coded & set(columns), aliases=aliases)
    terms = [translate(spec.expr, columns, aliases=aliases) for spec in parsed.random]
    group_vars: list[str] = []
    for spec in parsed.random:
        for g in spec.group:
            if g not in columns:
                raise _unknown_column(g, columns, spec.label)
            if g not in group_vars:
                group_vars.append(g)
    used_set = response.used | fixed.used | set(group_vars)
    for tr in terms:
        used_set |= tr.used
    used = [c for c in columns if c in used_set]
    return FormulaParts(parsed, columns, aliases, response, fixed, terms, tuple(group_vars), used, sum_coded)


def _values(s: pd.Series) -> np.ndarray:
    """A coerced column's values as keys of its level table (a categorical's category values)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        return np.asarray(s.astype(object))
    return s.to_numpy()


def _formulaic_name(parts: FormulaParts, column: str) -> str:
    return parts.aliases.get(column, column)


@dataclass
class Plan:
    """What the first pass computes: the columns it reads and the factors it covers.

    Attributes
    ----------
    parts : FormulaParts
    level_columns : list of str
        Columns read by the first pass.
    factors : list of tuple
        Each factor of the model matrices as ``(expression, its data columns, plain)``; ``plain``: the
        factor's value is its single column's (``f``, ``C(f)``, ``factor(x)``), else an expression of them.
    groupings : list of tuple of str
        The distinct grouping variable tuples of the random-effects terms.
    text_columns : list of str
        String columns whose values are checked for numbers written as text.
    category_order : dict
        Column → its categories in order, for categorical columns with known categories.
    categorical : set of str
        Level columns that are categoricals (their values are collected as the category values).
    """

    parts: FormulaParts
    level_columns: list[str]
    factors: list[tuple[str, tuple[str, ...], bool]]
    groupings: list[tuple[str, ...]]
    text_columns: list[str]
    category_order: dict[str, list[Any]]
    categorical: set[str]


def _factor_columns(parts: FormulaParts, spec: Any) -> list[tuple[str, tuple[str, ...], bool]]:
    """The categorical factors of a formulaic model spec with their data columns."""
    inverse = {v: k for k, v in parts.aliases.items()}
    by_expr = {str(f): vs for f, vs in spec.factor_variables.items()}
    out = []
    for expr, state in spec.encoder_state.items():
        if not factor_levels(state):
            continue
        cols = tuple(sorted(inverse.get(v, v) for v in by_expr.get(expr, ()) if inverse.get(v, v) in parts.columns))
        plain = len(cols) == 1 and (expr == _formulaic_name(parts, cols[0]) or expr.startswith("C("))
        out.append((expr, cols, plain))
    return out


def make_plan(parts: FormulaParts, sample: pd.DataFrame, meta: pd.DataFrame) -> Plan:
    """The first pass's plan, from the complete rows of a sample of the data and the DataFrame's ``meta``."""
    check_predictor_types(sample, [c for c in sample.columns if c in parts.fixed.used.union(parts.response.used, *(t.used for t in parts.terms))])
    for c in parts.group_vars:
        if column_kind(meta[c]) == "time":
            raise DataError(
                f"grouping column {c!r} holds dates or times; on Dask data convert it to strings or integers first "
                f"(ddf[{c!r}] = ddf[{c!r}].astype(str))"
            )
    for c in sorted(parts.sum_coded):
        if c in parts.fixed.plain and pd.api.types.is_numeric_dtype(sample[c]):
            raise DataError(f"contrasts apply only to factors, and {c!r} is numeric; write factor({c}) to treat it as one")
    ctx = evaluation_context()
    fsample = sample.rename(columns=parts.aliases) if parts.aliases else sample
    specs = [_matrix(f"{parts.response.text} ~ {parts.fixed.text}", fsample, ctx, "the fixed-effects formula").rhs.model_spec]
    specs += [_matrix(tr.text, fsample, ctx, "the random-effects term").model_spec for tr in parts.terms]
    factors: list[tuple[str, tuple[str, ...], bool]] = []
    for spec in specs:
        for f in _factor_columns(parts, spec):
            if f not in factors:
                factors.append(f)
    level_columns = [c for c in parts.used if c in parts.group_vars or any(c in cols for _, cols, _ in factors)]
    groupings = list(dict.fromkeys(tuple(spec.group) for spec in parts.parsed.random))
    text_columns = [c for c in parts.used if c in parts.plain and c in level_columns and sample[c].dtype == object]
    order = {}
    for c in level_columns:
        dt = meta[c].dtype
        if pd.api.types.is_bool_dtype(dt):
            order[c] = ["FALSE", "TRUE"]
        elif isinstance(dt, pd.CategoricalDtype) and dt.categories is not None and "__UNKNOWN_CATEGORIES__" not in list(dt.categories):
            order[c] = [v for v in dt.categories]
    categorical = {c for c in level_columns if isinstance(sample[c].dtype, pd.CategoricalDtype)}
    return Plan(parts, level_columns, factors, groupings, text_columns, order, categorical)


# ---------------------------------------------------------------------------------------------- first pass
@dataclass
class FirstPass:
    """The first pass over some partitions; ``a + b`` merges two (see the module docstring)."""

    combos: dict[tuple[str, ...], pd.DataFrame]
    cover: pd.DataFrame
    text_counts: dict[str, pd.Series]
    nrows: int

    def __add__(self, other: FirstPass) -> FirstPass:
        combos = {k: _distinct(pd.concat([v, other.combos[k]], ignore_index=True)) for k, v in self.combos.items()}
        counts = {c: s.add(other.text_counts[c], fill_value=0) for c, s in self.text_counts.items()}
        return FirstPass(combos, pd.concat([self.cover, other.cover], ignore_index=True), counts, self.nrows + other.nrows)


def merge_first(parts: list[FirstPass], plan: Plan) -> FirstPass:
    """The sum of a few partitions' first passes, keeping one covering row per level (a node of the tree reduction)."""
    out = functools.reduce(operator.add, parts)
    out.cover = covering_rows(out.cover, plan).reset_index(drop=True)
    return out


def _plain_values(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``frame``'s columns with categoricals as their values (concat of partitions keeps them comparable)."""
    return pd.DataFrame({c: _values(frame[c]) for c in columns}, index=frame.index)


def _distinct(frame: pd.DataFrame) -> pd.DataFrame:
    """The distinct rows of ``frame`` (of one column: by hashing its values, faster than ``drop_duplicates``)."""
    if frame.shape[1] == 1:
        c = frame.columns[0]
        return pd.DataFrame({c: pd.unique(frame[c].to_numpy())})
    return frame.drop_duplicates(ignore_index=True)


def covering_rows(frame: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """A few rows of ``frame`` with every level of every factor among them (first occurrences)."""
    keep = np.zeros(len(frame), dtype=bool)
    keep[:1] = True  # at least one row, for a model without factors
    ctx = evaluation_context()
    parts = plan.parts
    for expr, cols, plain in plan.factors:
        if not cols:
            continue
        if plain:
            first = ~frame[list(cols)].duplicated().to_numpy()
        else:  # an expression of its columns (I(x > 2)): the rows of its levels' first occurrences
            fframe = frame.rename(columns=parts.aliases) if parts.aliases else frame
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mm = _matrix("0 + " + expr, fframe, ctx, "a factor")
            codes = np.asarray(mm, dtype=float).argmax(axis=1)
            first = np.zeros(len(frame), dtype=bool)
            first[np.unique(codes, return_index=True)[1]] = True
        keep |= first
    return frame.loc[keep]


def first_pass(part: pd.DataFrame, plan: Plan) -> FirstPass:
    """The first pass over one partition (the plan's level columns)."""
    cols = plan.level_columns
    part = part[cols]
    nrows = len(part)
    part = part.loc[part.notna().all(axis=1).to_numpy()]
    frame = coerce_columns(part, plan.parts.group_vars)
    combos = {g: _distinct(_plain_values(frame, list(g))) for g in plan.groupings}
    cover = _plain_values(covering_rows(frame, plan), cols)
    counts = {c: frame[c].value_counts() for c in plan.text_columns}
    return FirstPass(combos, cover.reset_index(drop=True), counts, nrows)


# ---------------------------------------------------------------------------------------------- level tables
@dataclass
class LevelTable:
    """The levels of one grouping factor and how rows find theirs.

    Attributes
    ----------
    group_vars : tuple of str
    labels : numpy.ndarray
        Level labels as the in-memory fit gives them (``"a:A"`` for interactions).
    values : list of pandas.Index
        Per grouping variable, its distinct values in level order.
    keys : pandas.Index or None
        For an interaction, the combined code of each level (``Σ code_v × stride_v``).
    strides : numpy.ndarray
    """

    group_vars: tuple[str, ...]
    labels: np.ndarray
    values: list[pd.Index]
    keys: pd.Index | None
    strides: np.ndarray

    def refs(self, frame: pd.DataFrame, unknown: bool = False) -> np.ndarray:
        """The level of each row of a coerced partition (``unknown``: −1 for a value not in the table).

        Raises
        ------
        DataError
            For a value not in the table, unless ``unknown`` (in fitting: the data changed between the passes).
        """
        codes = []
        for v, index in zip(self.group_vars, self.values):
            c = index.get_indexer(_values(frame[v]))
            if unknown:
                codes.append(c.astype(np.int64))
                continue
            if np.any(c < 0):
                bad = pd.unique(_values(frame[v])[c < 0])[:3]
                raise DataError(f"grouping column {v!r} has values the first pass did not see ({', '.join(map(str, bad))}); did the data change?")
            codes.append(c.astype(np.int64))
        if self.keys is None:
            return codes[0]
        key = sum(c * s for c, s in zip(codes, self.strides))
        out = self.keys.get_indexer(key).astype(np.int64)
        out[np.any(np.column_stack(codes) < 0, axis=1)] = -1
        if not unknown and np.any(out < 0):
            raise DataError(f"the grouping {':'.join(self.group_vars)} has combinations the first pass did not see; did the data change?")
        return out

    def subset(self, keep: np.ndarray) -> LevelTable:
        """The table without the levels where ``keep`` is False (levels without a complete row)."""
        if self.keys is None:
            return LevelTable(self.group_vars, self.labels[keep], [self.values[0][keep]], None, self.strides)
        return LevelTable(self.group_vars, self.labels[keep], self.values, self.keys[keep], self.strides)


def _ordered_index(values: pd.Series, order: list[Any] | None) -> pd.Index:
    """Distinct ``values`` in level order: a categorical's category order, else sorted (as ``pd.factorize(sort=True)``)."""
    uniq = pd.unique(values.to_numpy())
    if order is not None:
        present = set(uniq.tolist())
        return pd.Index([v for v in order if v in present], dtype=object)
    return pd.Index(pd.factorize(uniq, sort=True)[1])


def level_table(group_vars: tuple[str, ...], combos: pd.DataFrame, plan: Plan) -> LevelTable:
    """The level table of a grouping factor from its distinct value combinations."""
    values = [_ordered_index(combos[v], plan.category_order.get(v)) for v in group_vars]
    if len(group_vars) == 1:
        labels = grouping_factor(pd.DataFrame({group_vars[0]: pd.Categorical(values[0], categories=values[0])}), group_vars)[1]
        return LevelTable(group_vars, labels, values, None, np.ones(1, dtype=np.int64))
    sizes = np.array([len(v) for v in values], dtype=np.int64)
    strides = np.r_[np.cumprod(sizes[::-1])[::-1][1:], 1].astype(np.int64)
    if float(np.prod(sizes.astype(float))) >= 2.0**62:
        raise ModelError(f"the interaction {':'.join(group_vars)} has too many possible levels to index")
    codes = np.column_stack([idx.get_indexer(combos[v].to_numpy()) for v, idx in zip(group_vars, values)]).astype(np.int64)
    keys = np.sort(codes @ strides)  # lexicographic in the variables' codes, as np.unique(codes, axis=0)
    rows = np.column_stack([(keys // s) % n for s, n in zip(strides, sizes)])
    labels = np.array([":".join(str(_label(values[j][r[j]])) for j in range(len(group_vars))) for r in rows], dtype=object)
    return LevelTable(group_vars, labels, values, pd.Index(keys), strides)


def _label(v: Any) -> str:
    from ..formula.coding import label

    return label(v)


# ---------------------------------------------------------------------------------------------- the frozen spec
@dataclass
class FrozenSpec:
    """The design's encodings, fixed once from the covering rows: what every partition is evaluated with.

    Attributes
    ----------
    parts : FormulaParts
    specs : formulaic.ModelSpecs
        ``response ~ fixed`` (its ``rhs`` gives every column of X before the rank check).
    term_specs : list
        formulaic model spec of each random-effects term's columns, in the order written.
    names : list of str
        lme4's names of the columns of X.
    term_cnames : list of tuple of str
    structures : list of RandomCovariance
        Each term's covariance structure.
    factor_columns : tuple of str
        Columns that carry the levels of a factor of the model matrices.
    tables : dict
        Grouping variables → :class:`LevelTable`.
    shift : float
        Subtracted from the response before the cross-products (a mean of its first rows) when X has
        an intercept, else 0: it lies in X's span, so only the intercept's estimate moves, and it is added back.
    cover : pandas.DataFrame
        The covering rows (the levels of every factor).
    """

    parts: FormulaParts
    specs: Any
    term_specs: list[Any]
    names: list[str]
    term_cnames: list[tuple[str, ...]]
    structures: list[Any]
    factor_columns: tuple[str, ...]
    tables: dict[tuple[str, ...], LevelTable]
    shift: float
    cover: pd.DataFrame = field(repr=False)

    @property
    def intercept(self) -> int | None:
        """Position of the intercept among the columns of X, if any."""
        return self.names.index("(Intercept)") if "(Intercept)" in self.names else None


def _check_stateless(spec: Any, what: str) -> None:
    stateful = [k for k, v in (spec.transform_state or {}).items() if v]
    if stateful:
        raise ModelError(
            f"{', '.join(stateful)} in {what} depends on the whole data's moments, which the Dask fit does not compute "
            "before its pass over the rows; add the transformed column to the Dask DataFrame first "
            "(e.g. ddf['x_c'] = (ddf.x - ddf.x.mean()) / ddf.x.std())"
        )


def freeze(plan: Plan, first: FirstPass, sample: pd.DataFrame) -> FrozenSpec:
    """The frozen spec and level tables from the merged first pass.

    Raises
    ------
    DataError
        For text columns holding numbers except a few values, and for a data set without complete rows.
    """
    parts = plan.parts
    for c in plan.text_columns:
        if msg := _stray(first.text_counts[c], c, c in parts.response.used):
            raise DataError(msg)
    tables = {g: level_table(g, first.combos[g], plan) for g in plan.groupings}
    cover = _cover_frame(plan, first.cover, sample)
    ctx = evaluation_context()
    fcover = cover.rename(columns=parts.aliases) if parts.aliases else cover
    mm = _matrix(f"{parts.response.text} ~ {parts.fixed.text}", fcover, ctx, "the fixed-effects formula")
    if mm.lhs.shape[1] != 1 or (parts.parsed.response in cover and not pd.api.types.is_numeric_dtype(cover[parts.parsed.response])):
        raise DataError(f"the response {parts.parsed.response!r} must be numeric")
    _check_stateless(mm.lhs.model_spec, "the response")
    _check_stateless(mm.rhs.model_spec, "the fixed effects")
    names = r_column_names(mm.rhs.columns, mm.rhs.model_spec.encoder_state, parts.fixed.atoms)
    term_specs, cnames, structures = [], [], []
    for spec, tr in zip(parts.parsed.random, parts.terms):
        zm = _matrix(tr.text, fcover, ctx, "the random-effects term")
        if zm.shape[1] == 0:
            raise FormulaError(f"random-effects term '{spec.label}' has no columns")
        _check_stateless(zm.model_spec, f"the random-effects term {spec.label}")
        term_specs.append(zm.model_spec)
        cnames.append(tuple(r_column_names(zm.columns, zm.model_spec.encoder_state, tr.atoms)))
        structures.append(random_structure(spec.structure, cnames[-1]))
        if structures[-1].needs_factor_columns:
            _check_factor_columns(np.asarray(zm, dtype=float), zm, tr, spec.label, spec.structure)
    shift = 0.0
    if "(Intercept)" in names:
        fsample = sample.rename(columns=parts.aliases) if parts.aliases else sample
        y = np.asarray(mm.model_spec.lhs.get_model_matrix(fsample.iloc[:SAMPLE_ROWS], context=ctx, na_action="ignore"), dtype=float)
        y = y[np.isfinite(y)]
        shift = float(y.mean()) if y.size else 0.0
    factor_columns = tuple(dict.fromkeys(c for _, cols, _ in plan.factors for c in cols))
    return FrozenSpec(parts, mm.model_spec, term_specs, names, cnames, structures, factor_columns, tables, shift, cover)


def _stray(counts: pd.Series, name: str, response: bool) -> str | None:
    """:func:`~mixedmodels.formula.coding.stray_text`'s rule on a text column's value counts: numbers except
    a few values (at most 5 distinct, fewer rows than the numbers), or numbers with a decimal comma."""
    strings = counts[[isinstance(v, str) for v in counts.index]]
    if strings.empty:
        return None
    values = strings.index.to_numpy(dtype=object)
    k = strings.to_numpy(dtype=np.int64)
    num = np.array([bool(_NUMBER.fullmatch(v)) for v in values])
    comma = ~num & np.array([bool(_DECIMAL_COMMA.fullmatch(v)) for v in values])
    n_num, n_comma = int(k[num].sum()), int(k[comma].sum())
    if n_comma > n_num and n_comma + n_num > k.sum() / 2:
        examples = ", ".join(repr(v) for v in values[comma][:3])
        return (
            f"column {name!r} holds numbers written with a decimal comma ({examples}); convert the column: "
            f"ddf[{name!r}] = dd.to_numeric(ddf[{name!r}].str.replace(',', '.'))"
        )
    bad = ~num
    if n_num == 0 or not bad.any() or bad.sum() > 5 or k[bad].sum() >= n_num:
        return None
    shown = ", ".join(f"{v!r} ({c} row{'s' if c > 1 else ''})" for v, c in zip(values[bad], k[bad]))
    what = "the response must be numeric" if response else f"as text it would become a factor with {len(values)} levels"
    return (
        f"column {name!r} holds numbers except for {int(k[bad].sum())} values: {shown}; {what}. Fix those values, "
        f"or make them missing with ddf[{name!r}] = dd.to_numeric(ddf[{name!r}], errors='coerce')"
    )


def _cover_frame(plan: Plan, rows: pd.DataFrame, sample: pd.DataFrame) -> pd.DataFrame:
    """The covering rows as a data frame formulaic can learn the encodings from.

    Columns the first pass did not read take a value from the sample's first complete row; categorical
    columns get their global category order.
    """
    parts = plan.parts
    rows = covering_rows(coerce_columns(rows, parts.group_vars), plan) if len(rows) else rows
    if not len(rows):
        raise DataError("no rows to fit: every row has a missing value in a variable the model uses")
    filler = sample.iloc[0]
    out = {}
    for c in parts.used:
        if c in rows.columns:
            col = rows[c].reset_index(drop=True)
            if c in plan.category_order or c in plan.categorical:
                levels = _ordered_index(col, plan.category_order.get(c))
                col = pd.Series(pd.Categorical(col.to_numpy(dtype=object), categories=levels))
            out[c] = col
        else:
            out[c] = pd.Series([filler[c]] * len(rows), dtype=sample[c].dtype)
    return pd.DataFrame(out)
