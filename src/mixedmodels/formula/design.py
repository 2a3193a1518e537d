"""Evaluate a parsed formula on data: response, fixed-effects matrix and random-effects terms.

This is the stage where rows with missing values are dropped (and counted), categorical
predictors are encoded with treatment contrasts through formulaic, linearly dependent fixed-effects
columns are dropped as lme4 does, and random-effects terms are sorted by decreasing number of
levels (lme4's ``mkReTrms`` order, which is also the order of θ).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg as sla
from formulaic import model_matrix

from ..exceptions import DataError, DroppedRowsWarning, FormulaError, ModelError, RankDeficiencyWarning, ScaleWarning
from ..terms import RandomEffectsTerm
from .parse import ParsedFormula, parse_formula
from .safety import evaluation_context, sanitize

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
        Random-effects terms sorted by decreasing number of levels.
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


def r_name(name: str) -> str:
    """Turn a formulaic column name into lme4's (``f[T.b]`` → ``fb``, ``Intercept`` → ``(Intercept)``)."""
    if name == "Intercept":
        return "(Intercept)"
    name = re.sub(r"\[T\.([^\]]*)\]", r"\1", name)
    return name.replace("`", "")


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


def coerce_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Booleans become factors with levels FALSE < TRUE (as R treats logical predictors)."""
    for c in frame.columns:
        if frame[c].dtype == bool:
            frame = frame.assign(**{c: pd.Categorical(np.where(frame[c], "TRUE", "FALSE"), categories=["FALSE", "TRUE"])})
    return frame


def group_labels(data: pd.DataFrame, group_vars: tuple[str, ...]) -> np.ndarray:
    """Level label of every row for the interaction of ``group_vars`` (``"a:A"``)."""
    cols = [np.array([_label(v) for v in data[g].to_numpy()], dtype=object) for g in group_vars]
    out = cols[0]
    for c in cols[1:]:
        out = out + ":" + c
    return out


def _as_factor_labels(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes (0-based) and level labels of a grouping variable, levels as lme4 orders them."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        cat = col.cat.remove_unused_categories()
        labels = np.array([_label(v) for v in cat.cat.categories], dtype=object)
        return cat.cat.codes.to_numpy(np.int64), labels
    uniq, codes = np.unique(col.to_numpy(), return_inverse=True)
    return codes.astype(np.int64), np.array([_label(v) for v in uniq], dtype=object)


def _label(v: Any) -> str:
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    if isinstance(v, (bool, np.bool_)):
        return "TRUE" if v else "FALSE"
    return str(v)


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


def scale_warning(X: np.ndarray, tol: float = 1e3) -> str | None:
    """lme4's ``checkScaleX``: non-binary columns whose SDs differ by more than ``tol`` (or are extreme)."""
    cont = [j for j in range(X.shape[1]) if not np.all(np.isin(X[:, j], (0.0, 1.0)))]
    if not cont:
        return None
    sd = X[:, cont].std(axis=0, ddof=1) if X.shape[0] > 1 else np.ones(len(cont))
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


def build_design(
    formula: str | ParsedFormula, data: pd.DataFrame, *, warn: bool = True, contrasts: dict[str, str] | None = None
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
        Contrast coding per factor, ``{"column": "sum" | "treatment"}`` (R's ``contrasts=`` argument).

    Returns
    -------
    Design
    """
    parsed = parse_formula(formula) if isinstance(formula, str) else formula
    data = _prepare(data)
    data_index = data.index
    cols = list(data.columns)
    response, used = sanitize(parsed.response, cols)
    fixed, used_fixed = sanitize(parsed.fixed, cols)
    used |= used_fixed
    term_exprs = []
    for spec in parsed.random:
        expr, used_term = sanitize(spec.expr, cols)
        for g in spec.group:
            if g not in data.columns:
                if not re.fullmatch(r"`?[A-Za-z_.][A-Za-z0-9_.]*`?", g):
                    raise FormulaError(
                        f"grouping factor {g!r} in '({spec.expr} | {spec.group_label})' must be a column name "
                        "(or columns joined by ':' or '/')"
                    )
                sanitize(g, cols)  # raises the unknown-column error with suggestions
        used |= used_term | set(spec.group)
        term_exprs.append(expr)

    frame = data[[c for c in cols if c in used]]
    complete = frame.notna().all(axis=1).to_numpy()
    n_dropped = int((~complete).sum())
    frame = frame.loc[complete]
    if len(frame) == 0:
        raise DataError(
            "no rows to fit" + (f": all {n_dropped} rows have a missing value in a variable the model uses" if n_dropped else ": the data are empty")
        )
    messages: list[str] = []

    def note(message: str, category: type[Warning]) -> None:
        messages.append(message)
        if warn:
            warnings.warn(message, category, stacklevel=4)

    if n_dropped:
        note(f"{n_dropped} rows with missing values dropped", DroppedRowsWarning)
    frame = coerce_columns(frame)
    ctx = evaluation_context()

    mm = _matrix(f"{response} ~ {fixed}", frame, ctx, "the fixed-effects formula")
    lhs = mm.lhs
    if lhs.shape[1] != 1 or (parsed.response in frame and not pd.api.types.is_numeric_dtype(frame[parsed.response])):
        raise DataError(f"the response {parsed.response!r} must be numeric")
    y = np.asarray(lhs, dtype=float).reshape(-1)
    if not np.all(np.isfinite(y)):
        raise DataError(f"the response {parsed.response!r} has {int((~np.isfinite(y)).sum())} infinite or undefined values")
    X_full = np.asarray(mm.rhs, dtype=float)
    if not np.all(np.isfinite(X_full)):
        raise DataError("the fixed-effects model matrix has infinite or undefined values")
    names_full = [r_name(c) for c in mm.rhs.columns]
    kept = independent_columns(X_full)
    dropped = tuple(names_full[j] for j in range(len(names_full)) if j not in set(kept.tolist()))
    if dropped:
        plural = "s" if len(dropped) > 1 else ""
        note(
            f"fixed-effect model matrix is rank deficient so dropping {len(dropped)} column{plural} / "
            f"coefficient{plural}: {', '.join(dropped)}",
            RankDeficiencyWarning,
        )
    if msg := scale_warning(X_full[:, kept]):
        note(msg, ScaleWarning)
    n = len(y)
    terms = []
    for spec, expr in zip(parsed.random, term_exprs):
        zm = _matrix(expr, frame, ctx, "the random-effects term")
        z = np.asarray(zm, dtype=float)
        if z.shape[1] == 0:
            raise FormulaError(f"random-effects term '({spec.expr} | {spec.group_label})' has no columns")
        if not np.all(np.isfinite(z)):
            raise DataError(f"random-effects term '({spec.expr} | {spec.group_label})' has infinite values")
        refs, levels = grouping_factor(frame, spec.group)
        if len(levels) < 2:
            raise ModelError(f"grouping factor {spec.group_label!r} must have more than one level (it has {len(levels)})")
        if len(levels) >= n:
            raise ModelError(
                f"number of levels of grouping factor {spec.group_label!r} ({len(levels)}) must be less than "
                f"the number of observations ({n})"
            )
        label = f"({spec.expr} | {spec.group_label})"
        if len(levels) * z.shape[1] >= n:
            raise ModelError(
                f"number of observations (={n}) <= number of random effects (={len(levels) * z.shape[1]}) for term "
                f"{label}; the random-effects parameters and the residual variance are probably unidentifiable"
            )
        _check_slopes_vary(z, refs, len(levels), [r_name(c) for c in zm.columns], label)
        terms.append(
            RandomEffectsTerm(
                group=spec.group_label,
                group_vars=spec.group,
                levels=levels,
                refs=refs,
                z=np.ascontiguousarray(z),
                cnames=tuple(r_name(c) for c in zm.columns),
                spec=zm.model_spec,
            )
        )
    order = sorted(range(len(terms)), key=lambda i: -terms[i].nlevels)
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
        messages=tuple(messages),
        frame=frame,
        data_index=data_index,
        contrasts=dict(contrasts or {}),
    )
