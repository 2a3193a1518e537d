"""Evaluate a parsed formula on data: response, fixed-effects matrix and random-effects terms.

This is the stage where rows with missing values are dropped (and counted), columns are given
R's types (:mod:`.coding`), categorical predictors are encoded with treatment contrasts (or sum
contrasts where asked for) through formulaic, columns get lme4's names (:mod:`.naming`), linearly
dependent fixed-effects columns are dropped as lme4 does, and random-effects terms are put in
lme4's ``mkReTrms`` order (which is also the order of θ).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg as sla
from formulaic import model_matrix

from ..covariance.random import random_structure
from ..exceptions import (
    DataError,
    DataWarning,
    DroppedRowsWarning,
    FormulaError,
    ModelError,
    RankDeficiencyWarning,
    ScaleWarning,
    warn_user,
)
from ..terms import RandomEffectsTerm
from .coding import check_predictor_types, coerce_columns, empty_strings, label, stray_text
from .naming import factor_levels, r_column_names
from .parse import ParsedFormula, parse_formula
from .safety import CONTRASTS, Atom, _unknown_column, evaluation_context, formulaic_aliases, translate
from .weights import OFFSET, WEIGHTS, as_row_vector, check_weights

__all__ = [
    "Design",
    "build_design",
    "check_new_levels",
    "coerce_columns",
    "group_labels",
    "grouping_factor",
    "independent_columns",
    "prepare_newdata",
]

#: Relative tolerance for a fixed-effects column to count as linearly dependent (lme4: 1e-7).
RANK_TOLERANCE = 1e-7


@dataclass(frozen=True, eq=False)
class Design:
    """Everything the engine needs, evaluated on the rows that are used.

    Attributes
    ----------
    formula : ParsedFormula
    y : numpy.ndarray
        Response, length ``n``.
    X : numpy.ndarray
        Fixed-effects model matrix ``n × p`` (full column rank).
    fixed_names : tuple of str
        Names of the columns of ``X`` as lme4 prints them.
    dropped_columns : tuple of str
        Columns removed as linearly dependent.
    terms : tuple of RandomEffectsTerm
        Random-effects terms in lme4's order (:func:`lme4_term_order`): by decreasing number of levels.
    n_dropped : int
        Rows dropped for missing values.
    row_index : pandas.Index
        Index labels of the rows used.
    fixed_spec : Any
        formulaic model spec that rebuilds the fixed-effects matrix for new data.
    kept_columns : numpy.ndarray
        Positions, in the formulaic matrix, of the columns kept in ``X``.
    response_name : str
        Name of the response.
    messages : tuple of str
        Notes on the data (dropped rows and columns, scale).
    frame : pandas.DataFrame
        The variables the model uses, on the rows used (for re-coding, plots and reports).
    data_index : pandas.Index or None
        Index labels of every row of the data as given, used rows and dropped ones
        (to pad fitted values and residuals back to the data, as R's ``na.exclude``).
    contrasts : dict
        Contrast coding asked for per factor (``{"x": "sum"}``); factors not named use treatment coding.
    fixed_atoms : dict
        formulaic's expression of each fixed-effects factor → its R name (:class:`.safety.Atom`).
    weights : numpy.ndarray or None
        Prior (precision) weights of the rows used, ``Var(εᵢ) = σ²/wᵢ``.
    offset : numpy.ndarray or None
        The offset of the rows used (``offset=`` plus the formula's ``offset()`` terms).
    offset_column : str or None
        The column ``offset=`` named (read again from new data by ``predict``).
    offset_array : bool
        ``offset=`` was given as a vector (which new data cannot supply).
    offset_argument : numpy.ndarray or None
        The part of :attr:`offset` given by ``offset=`` (without the formula's ``offset()`` terms).
    degenerate : str or None
        Why a fit is degenerate (a constant response, or one the fixed effects reproduce exactly), else None.
    aliases : dict
        Stand-in names under which formulaic sees columns it cannot evaluate by their own names
        (``class``, ``x²``, ``µ``; see :func:`.safety.formulaic_aliases`). Use
        :meth:`formulaic_frame` before evaluating ``fixed_spec`` or a term's ``spec`` on data.
    """

    formula: ParsedFormula
    y: np.ndarray
    X: np.ndarray
    fixed_names: tuple[str, ...]
    dropped_columns: tuple[str, ...]
    terms: tuple[RandomEffectsTerm, ...]
    n_dropped: int
    row_index: pd.Index
    fixed_spec: Any = field(repr=False)
    kept_columns: np.ndarray = field(repr=False)
    response_name: str = ""
    messages: tuple[str, ...] = ()
    frame: pd.DataFrame | None = field(default=None, repr=False)
    data_index: pd.Index | None = field(default=None, repr=False)
    contrasts: dict[str, str] = field(default_factory=dict)
    fixed_atoms: dict[str, Atom] = field(default_factory=dict, repr=False)
    aliases: dict[str, str] = field(default_factory=dict, repr=False)
    degenerate: str | None = None
    weights: np.ndarray | None = field(default=None, repr=False)
    offset: np.ndarray | None = field(default=None, repr=False)
    offset_column: str | None = None
    offset_array: bool = False
    offset_argument: np.ndarray | None = field(default=None, repr=False)

    def formulaic_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with its columns renamed as formulaic's model specs know them (:attr:`aliases`)."""
        return frame.rename(columns=self.aliases) if self.aliases else frame


def to_pandas(data: object) -> pd.DataFrame:
    """A pandas DataFrame from pandas, polars (DataFrame or LazyFrame) or pyarrow (Table or RecordBatch) data."""
    if isinstance(data, pd.DataFrame):
        return data
    module = type(data).__module__.split(".")[0]
    if module == "polars":
        if hasattr(data, "collect") and not hasattr(data, "to_pandas"):
            data = data.collect()
        return data.to_pandas()
    if module == "pyarrow" and hasattr(data, "to_pandas"):
        return data.to_pandas()
    return data  # type: ignore[return-value]


def _prepare(data: pd.DataFrame) -> pd.DataFrame:
    data = to_pandas(data)
    if not isinstance(data, pd.DataFrame):
        try:
            data = pd.DataFrame(data)
        except Exception as exc:  # noqa: BLE001 - anything pandas cannot take is a data error
            raise DataError(f"cannot use data of type {type(data).__name__}: {exc}") from None
    if data.columns.duplicated().any():
        dup = sorted(set(map(str, data.columns[data.columns.duplicated()])))
        raise DataError(f"duplicated column names: {', '.join(dup)}")
    data = data.rename(columns=str)
    return data


def group_labels(data: pd.DataFrame, group_vars: tuple[str, ...]) -> np.ndarray:
    """Level label of every row for the interaction of ``group_vars`` (``"a:A"``)."""
    cols = [np.array([label(v) for v in data[g].to_numpy()], dtype=object) for g in group_vars]
    out = cols[0]
    for c in cols[1:]:
        out = out + ":" + c
    return out


def _as_factor_labels(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes (0-based) and level labels of a grouping variable, levels as lme4 orders them."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        cat = col.cat.remove_unused_categories()
        labels = np.array([label(v) for v in cat.cat.categories], dtype=object)
        return cat.cat.codes.to_numpy(np.int64), labels
    codes, uniq = pd.factorize(col.to_numpy(), sort=True)  # hashing: faster than np.unique on strings
    return codes.astype(np.int64), np.array([label(v) for v in uniq], dtype=object)


def grouping_factor(data: pd.DataFrame, group_vars: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Level index of each row and level labels of the interaction of ``group_vars``."""
    parts = [_as_factor_labels(data[v]) for v in group_vars]
    if len(parts) == 1:
        return parts[0]
    codes = np.column_stack([c for c, _ in parts])
    uniq, refs = np.unique(codes, axis=0, return_inverse=True)
    labels = np.array([":".join(parts[j][1][u[j]] for j in range(len(parts))) for u in uniq], dtype=object)
    return refs.reshape(-1).astype(np.int64), labels


def independent_columns(X: np.ndarray, tol: float = RANK_TOLERANCE) -> np.ndarray:
    """Positions of the columns kept when later columns that depend on earlier ones are dropped.

    Like R's ``qr()`` (LINPACK ``dqrdc2``, limited pivoting): a column is dropped when the norm of
    its residual after projection on the columns kept so far is below ``tol`` times its own norm.
    """
    if X.shape[1] == 0:
        return np.zeros(0, dtype=np.int64)
    # Without pivoting, |R_jj| of X = QR is the norm of column j's residual after projection on
    # all earlier columns; dropped columns lie in the span of kept ones, so this is the same test.
    R = sla.qr(X, mode="r", check_finite=False)[0]
    norms = np.linalg.norm(X, axis=0)
    resid = np.zeros(X.shape[1])  # columns beyond the n-th have no pivot of their own
    diag = np.abs(np.diag(R))
    resid[: diag.size] = diag
    return np.flatnonzero((norms > 0) & (resid > tol * norms)).astype(np.int64)


def _check_slopes_vary(z: np.ndarray, refs: np.ndarray, nlev: int, names: list[str], label: str) -> None:
    """A random slope next to a random intercept needs its variable to vary within some group."""
    ones = np.all(z == 1.0, axis=0)
    if not ones.any():
        return
    counts = np.bincount(refs, minlength=nlev)
    for j in np.flatnonzero(~ones):
        mean = np.bincount(refs, z[:, j], minlength=nlev) / np.maximum(counts, 1)
        if np.allclose(z[:, j], mean[refs], rtol=1e-10, atol=1e-12 * max(1.0, float(np.abs(z[:, j]).max()))):
            raise ModelError(
                f"random slope {names[j]!r} in {label} is constant within every group, so it cannot be "
                "separated from the random intercept; drop it or make it a fixed effect"
            )


def _check_factor_columns(z: np.ndarray, zm: Any, tr: Any, label: str, kind: str) -> None:
    """A structure across the levels of a factor (``ar1``) needs the term's columns to be that factor's
    indicator columns: one factor, no intercept, no other variable (as glmmTMB's ``ar1``)."""
    factors = [expr for expr, state in zm.model_spec.encoder_state.items() if factor_levels(state)]
    example = f"{kind}(0 + visit | subject)"
    if len(tr.used) != 1 or len(factors) != 1:
        what = ", ".join(repr(c) for c in sorted(tr.used)) or "no variable"
        if len(tr.used) == 1 and not factors:
            raise ModelError(
                f"{label}: {kind}() needs the indicator columns of one factor, and {what} is numeric; "
                f"write factor({next(iter(tr.used))}) to treat it as one, as in {example}"
            )
        raise ModelError(f"{label}: {kind}() needs the indicator columns of one factor, as in {example}; the term uses {what}")
    ones = np.isin(z, (0.0, 1.0)).all() and np.all(z.sum(axis=1) == 1.0)
    if not ones or z.shape[1] != len(factor_levels(zm.model_spec.encoder_state[factors[0]])):
        raise ModelError(
            f"{label}: {kind}() needs one column per level of the factor, without an intercept: write the term as {example}"
        )


def scale_warning(X: np.ndarray, tol: float = 1e3) -> str | None:
    """lme4's ``checkScaleX``: non-binary columns whose SDs differ by more than ``tol`` (or are extreme)."""
    cont = [j for j in range(X.shape[1]) if not np.all(np.isin(X[:, j], (0.0, 1.0)))]
    if not cont:
        return None
    return scale_message(X[:, cont].std(axis=0, ddof=1) if X.shape[0] > 1 else np.ones(len(cont)), tol)


def scale_message(sd: np.ndarray, tol: float = 1e3) -> str | None:
    """:func:`scale_warning` from the SDs of the non-binary columns (as a fit on Dask data computes them)."""
    sd = sd[sd > 0]
    if sd.size == 0:
        return None
    logsd = np.abs(np.log(sd))
    logcomp = np.abs(np.log(sd[:, None] / sd[None, :]))
    if max(float(logsd.max()), float(logcomp.max())) > np.log(tol):
        return "Some predictor variables are on very different scales: consider rescaling (centring and scaling)"
    return None


def _matrix(expr: str, data: pd.DataFrame, context: dict[str, object], what: str):
    try:
        return model_matrix(expr, data, context=context, na_action="ignore")
    except Exception as exc:  # noqa: BLE001 - formulaic raises many types; report them uniformly
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FormulaError(f"cannot evaluate {what} {expr!r}: {msg}") from None


def prepare_newdata(design: Design, newdata: object) -> pd.DataFrame:
    """``newdata`` with the column types the fitting data were given (:func:`.coding.coerce_columns`)."""
    frame = _prepare(newdata)  # type: ignore[arg-type]
    return coerce_columns(frame, [g for t in design.terms for g in t.group_vars])


def offset_of(design: Design, frame: pd.DataFrame) -> np.ndarray | float:
    """The offset of new data ``frame`` (prepared by :func:`prepare_newdata`): the formula's ``offset()`` terms and
    the ``offset=`` column; 0 for a model without one."""
    if design.offset is None:
        return 0.0
    if design.offset_array:
        raise DataError("the model's offset was given as a vector, which new data cannot supply; give it as a column name")
    total = np.zeros(len(frame))
    if design.offset_column is not None:
        vec = as_row_vector(frame, design.offset_column, "offset")
        total = total + vec.to_numpy()
    cols = list(frame.columns)
    aliases = formulaic_aliases(cols)
    fframe = frame.rename(columns=aliases) if aliases else frame
    for expr in design.formula.offsets:
        tr = translate(f"I({expr})", cols, aliases=aliases)
        total = total + np.asarray(_matrix(f"0 + {tr.text}", fframe, evaluation_context(), "the offset"), dtype=float)[:, 0]
    return total


def check_new_levels(design: Design, frame: pd.DataFrame) -> None:
    """Raise if a factor of the fixed effects has, in ``frame``, a level it did not have in fitting.

    formulaic would code such a level as the reference level without a word; lme4 1.1-31 stops
    (with ``non-conformable arguments``).

    Raises
    ------
    DataError
        Naming the factor (as R prints it) and the new levels.
    """
    ctx = evaluation_context()
    frame = design.formulaic_frame(frame)
    for expr, state in design.fixed_spec.encoder_state.items():
        levels = factor_levels(state)
        if not levels:
            continue
        if expr in frame.columns:
            present = frame[expr].dropna().unique().tolist()
        else:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    mm = model_matrix("0 + " + expr, frame, context=ctx, ensure_full_rank=False, na_action="ignore")
                present = factor_levels(mm.model_spec.encoder_state.get(expr))
            except Exception:  # noqa: BLE001 - building the matrix itself reports the problem
                continue
        known = set(levels)
        new = [v for v in present if v not in known]
        if new:
            name = design.fixed_atoms.get(expr, Atom(expr)).label
            shown = ", ".join(repr(label(v)) for v in new[:5]) + (f" and {len(new) - 5} more" if len(new) > 5 else "")
            raise DataError(
                f"factor {name!r} has new level{'s' if len(new) > 1 else ''} not seen in fitting: {shown} "
                f"(fitted levels: {', '.join(label(v) for v in levels[:10])}{', ...' if len(levels) > 10 else ''})"
            )


def _sum_coded(contrasts: Mapping[str, str] | None, cols: list[str]) -> set[str]:
    """Columns ``contrasts`` asks to code with sum-to-zero contrasts (``{"x": "sum"}``)."""
    if not contrasts:
        return set()
    if not isinstance(contrasts, Mapping):
        raise FormulaError(f"contrasts must be a dict such as {{'x': 'sum'}}, got {type(contrasts).__name__}")
    out = set()
    for col, coding in contrasts.items():
        col = str(col)
        if col not in cols:
            raise _unknown_column(col, cols, "contrasts")
        if str(coding) not in CONTRASTS:
            raise FormulaError(
                f"contrasts for {col!r}: unknown coding {coding!r}; use 'sum' (contr.sum) or 'treatment' (contr.treatment)"
            )
        if CONTRASTS[str(coding)] == "contr.sum":
            out.add(col)
    return out


def lme4_term_order(nlevels: list[int]) -> list[int]:
    """lme4's ``mkReTrms`` order of random-effects terms.

    If the numbers of levels ever increase from one term to the next, the terms are put in
    ``rev(order(nl))`` order: decreasing number of levels, terms with as many levels in the
    reverse of the written order. Otherwise they keep the written order.
    """
    idx = list(range(len(nlevels)))
    if any(b > a for a, b in zip(nlevels, nlevels[1:])):
        return sorted(idx, key=lambda i: nlevels[i])[::-1]
    return idx


def exact_response(y: np.ndarray, X: np.ndarray, name: str) -> str | None:
    """Why the fit is degenerate when the response is constant or the fixed effects reproduce it exactly, else None.

    Then every θ gives a residual sum of squares of 0 and a criterion of −∞: lme4 returns such a
    fit with a residual SD of 0 (or of rounding noise) and θ wherever its optimizer stopped.
    """
    if np.ptp(y) == 0:
        return (
            f"the response {name!r} is constant (all {y.size} values are {y[0]:.6g}): the fit is degenerate, "
            "with residual SD 0 and every variance component 0"
        )
    if X.shape[1]:
        scale = np.linalg.norm(y - y.mean())
        try:  # the normal equations screen out the usual case cheaply; lstsq confirms an exact fit
            coef = np.linalg.solve(X.T @ X, X.T @ y)
            if np.linalg.norm(y - X @ coef) > 1e-6 * scale:
                return None
        except np.linalg.LinAlgError:
            pass
        coef = np.linalg.lstsq(X, y, rcond=None)[0]
        if np.linalg.norm(y - X @ coef) <= 1e-10 * scale:
            return (
                f"the fixed effects reproduce the response {name!r} exactly (residual sum of squares 0): the fit is "
                "degenerate, with residual SD 0 and every variance component 0"
            )
    return None


class DesignNotes:
    """The messages a design records, each emitted as a warning too when ``warn``; worded once for the
    in-memory design and the Dask one (:mod:`mixedmodels.scale`)."""

    def __init__(self, warn: bool) -> None:
        self.warn = warn
        self.messages: list[str] = []

    def note(self, message: str, category: type[Warning]) -> None:
        self.messages.append(message)
        if self.warn:
            warn_user(message, category)

    def dropped_rows(self, n_dropped: int) -> None:
        if n_dropped:
            self.note(f"{n_dropped} rows with missing values dropped", DroppedRowsWarning)

    def empty_strings(self, column: str, count: int) -> None:
        self.note(f"{count} empty strings (\"\") in {column!r} kept as a level of their own, as R does", DataWarning)

    def contrasts_ignored(self, column: str) -> None:
        self.note(f"contrasts for {column!r} ignored: {column!r} is not a variable of the fixed effects", DataWarning)

    def rank_deficient(self, dropped: tuple[str, ...]) -> None:
        if dropped:
            plural = "s" if len(dropped) > 1 else ""
            self.note(
                f"fixed-effect model matrix is rank deficient so dropping {len(dropped)} column{plural} / "
                f"coefficient{plural}: {', '.join(dropped)}",
                RankDeficiencyWarning,
            )


def no_rows_error(n_dropped: int) -> DataError:
    """The error for a design without a complete row."""
    return DataError(
        "no rows to fit" + (f": all {n_dropped} rows have a missing value in a variable the model uses" if n_dropped else ": the data are empty")
    )


def build_design(
    formula: str | ParsedFormula,
    data: pd.DataFrame,
    *,
    warn: bool = True,
    contrasts: dict[str, str] | None = None,
    weights: Any = None,
    offset: Any = None,
    extra_columns: tuple[str, ...] = (),
    allow_n: bool = False,
    known_groups: frozenset[str] = frozenset(),
) -> Design:
    """Evaluate ``formula`` on ``data``.

    Parameters
    ----------
    formula : str or ParsedFormula
        lme4-style formula.
    data : pandas.DataFrame
        The data.
    warn : bool
        Emit warnings for dropped rows and dropped columns.
    contrasts : dict, optional
        Contrast coding per factor of the fixed effects, ``{"column": "sum" | "treatment"}``
        (R's ``contrasts = list(x = "contr.sum")``; ``"contr.sum"`` and ``"contr.treatment"`` are
        accepted too). Treatment coding is the default.
    weights, offset : str or array-like, optional
        Prior (precision) weights and an offset, as a column name or one value per row
        (lme4's ``weights =`` and ``offset =``); ``offset(expr)`` terms of the formula add to the offset.
    extra_columns : tuple of str
        Columns the model needs besides the formula's (a residual structure's time, subject, group):
        kept in the frame, and rows missing them dropped.
    allow_n : bool
        Allow as many levels (and random effects) as observations: an observation-level random effect,
        which a GLMM can estimate (lme4's ``allow.n = TRUE`` in ``glFormula``); a linear mixed model cannot
        separate it from the residual.
    known_groups : frozenset of str
        Grouping factors that will be given a known covariance (:mod:`mixedmodels.genetics`): their terms may
        have as many levels as observations (one record per individual).

    Returns
    -------
    Design
    """
    parsed = parse_formula(formula) if isinstance(formula, str) else formula
    data = _prepare(data)
    data_index = data.index
    cols = list(data.columns)
    sum_coded = _sum_coded(contrasts, cols)
    aliases = formulaic_aliases(cols)
    response = translate(parsed.response, cols, aliases=aliases)
    dot = [c for c in cols if c not in response.used]
    fixed = translate(parsed.fixed, cols, dot=dot, aliases=aliases)
    term_trs = [translate(spec.expr, cols, aliases=aliases) for spec in parsed.random]
    group_vars = [g for spec in parsed.random for g in spec.group]
    for spec in parsed.random:
        for g in spec.group:
            if g not in data.columns:
                raise _unknown_column(g, cols, spec.label)
    offset_trs = [translate(f"I({expr})", cols, aliases=aliases) for expr in parsed.offsets]  # as a value, not a formula
    for c in extra_columns:
        if c not in data.columns:
            raise _unknown_column(c, cols, "the residual structure")
    used = response.used | fixed.used | set(group_vars) | set(extra_columns)
    for tr in term_trs + offset_trs:
        used |= tr.used

    frame = data[[c for c in cols if c in used]]
    vectors = {WEIGHTS: as_row_vector(data, weights, "weights"), OFFSET: as_row_vector(data, offset, "offset")}
    frame = frame.assign(**{k: v for k, v in vectors.items() if v is not None})
    complete = frame.notna().all(axis=1).to_numpy()
    n_dropped = int((~complete).sum())
    frame = frame.loc[complete]
    if len(frame) == 0:
        raise no_rows_error(n_dropped)
    notes = DesignNotes(warn)
    note = notes.note
    notes.dropped_rows(n_dropped)
    prior_weights = frame.pop(WEIGHTS).to_numpy() if WEIGHTS in frame else None
    offset_values = frame.pop(OFFSET).to_numpy() if OFFSET in frame else None
    if prior_weights is not None:
        check_weights(prior_weights)
    frame = coerce_columns(frame, group_vars)
    predictors = fixed.used.union(*(tr.used for tr in term_trs))
    check_predictor_types(frame, [c for c in frame.columns if c in predictors | response.used])
    for c in [c for c in frame.columns if c in response.plain | fixed.plain or any(c in tr.plain for tr in term_trs)]:
        if msg := stray_text(frame[c], c, response=c in response.used):
            raise DataError(msg)
    for c, k in empty_strings(frame, [c for c in frame.columns]).items():
        notes.empty_strings(c, k)
    for c in sorted(sum_coded):
        if c not in fixed.plain:
            notes.contrasts_ignored(c)
        elif pd.api.types.is_numeric_dtype(frame[c]):
            raise DataError(f"contrasts apply only to factors, and {c!r} is numeric; write factor({c}) to treat it as one")
    if sum_coded & fixed.plain:
        fixed = translate(parsed.fixed, cols, dot=dot, sum_coded=sum_coded, aliases=aliases)
    ctx = evaluation_context()
    fframe = frame.rename(columns=aliases) if aliases else frame

    mm = _matrix(f"{response.text} ~ {fixed.text}", fframe, ctx, "the fixed-effects formula")
    lhs = mm.lhs
    if lhs.shape[1] != 1 or (parsed.response in frame and not pd.api.types.is_numeric_dtype(frame[parsed.response])):
        raise DataError(f"the response {parsed.response!r} must be numeric")
    y = np.asarray(lhs, dtype=float).reshape(-1)
    if not np.all(np.isfinite(y)):
        raise DataError(f"the response {parsed.response!r} has {int((~np.isfinite(y)).sum())} infinite or undefined values")
    X_full = np.asarray(mm.rhs, dtype=float)
    if not np.all(np.isfinite(X_full)):
        raise DataError("the fixed-effects model matrix has infinite or undefined values")
    names_full = r_column_names(mm.rhs.columns, mm.rhs.model_spec.encoder_state, fixed.atoms)
    kept = independent_columns(X_full)
    dropped = tuple(names_full[j] for j in range(len(names_full)) if j not in set(kept.tolist()))
    notes.rank_deficient(dropped)
    if msg := scale_warning(X_full[:, kept]):
        note(msg, ScaleWarning)
    offset_argument = offset_values
    for expr, tr in zip(parsed.offsets, offset_trs):
        column = np.asarray(_matrix(f"0 + {tr.text}", fframe, ctx, "the offset"), dtype=float)
        if column.shape[1] != 1 or not np.all(np.isfinite(column)):
            raise DataError(f"offset({expr}) must be one finite number per row")
        offset_values = column[:, 0] if offset_values is None else offset_values + column[:, 0]
    y_model = y if offset_values is None else y - offset_values
    degenerate = exact_response(y_model, X_full[:, kept], parsed.response)
    if degenerate:
        note(degenerate, DataWarning)
    n = len(y)
    terms = []
    for spec, tr in zip(parsed.random, term_trs):
        zm = _matrix(tr.text, fframe, ctx, "the random-effects term")
        z = np.asarray(zm, dtype=float)
        if z.shape[1] == 0:
            raise FormulaError(f"random-effects term '{spec.label}' has no columns")
        if not np.all(np.isfinite(z)):
            raise DataError(f"random-effects term '{spec.label}' has infinite values")
        cnames = tuple(r_column_names(zm.columns, zm.model_spec.encoder_state, tr.atoms))
        structure = random_structure(spec.structure, cnames)
        if structure.needs_factor_columns:
            _check_factor_columns(z, zm, tr, spec.label, spec.structure)
        refs, levels = grouping_factor(frame, spec.group)
        if len(levels) < 2:
            raise ModelError(f"grouping factor {spec.group_label!r} must have more than one level (it has {len(levels)})")
        known = spec.group_label in known_groups
        if not known and (len(levels) > n or (len(levels) == n and not allow_n)):
            raise ModelError(
                f"number of levels of grouping factor {spec.group_label!r} ({len(levels)}) must be less than "
                f"{'or equal to ' if allow_n else ''}the number of observations ({n})"
            )
        term_label = spec.label
        if not known and (len(levels) * z.shape[1] > n or (len(levels) * z.shape[1] == n and not allow_n)):
            raise ModelError(
                f"number of observations (={n}) {'<' if allow_n else '<='} number of random effects (={len(levels) * z.shape[1]}) for term "
                f"{term_label}; the random-effects parameters and the residual variance are probably unidentifiable"
            )
        _check_slopes_vary(z, refs, len(levels), list(cnames), term_label)
        terms.append(
            RandomEffectsTerm(
                group=spec.group_label,
                group_vars=spec.group,
                levels=levels,
                refs=refs,
                z=np.ascontiguousarray(z),
                cnames=cnames,
                spec=zm.model_spec,
                structure=structure,
            )
        )
    order = lme4_term_order([t.nlevels for t in terms])
    return Design(
        formula=parsed,
        y=y,
        X=np.ascontiguousarray(X_full[:, kept]),
        fixed_names=tuple(names_full[j] for j in kept),
        dropped_columns=dropped,
        terms=tuple(terms[i] for i in order),
        n_dropped=n_dropped,
        row_index=frame.index,
        fixed_spec=mm.rhs.model_spec,
        kept_columns=kept,
        response_name=parsed.response,
        messages=tuple(notes.messages),
        frame=frame,
        data_index=data_index,
        contrasts=dict(contrasts or {}),
        fixed_atoms=dict(fixed.atoms),
        aliases=aliases,
        degenerate=degenerate,
        weights=prior_weights,
        offset=offset_values,
        offset_column=offset if isinstance(offset, str) else None,
        offset_array=offset is not None and not isinstance(offset, str),
        offset_argument=offset_argument,
    )
