"""Column types as R sees them: every pandas dtype mapped to a number, a factor or a clear error.

* numbers of any backend (numpy, nullable ``Int64``/``Float64``, pyarrow) become numpy ``float64``
  or, without missing values, ``int64``;
* booleans of any backend (numpy ``bool``, nullable ``boolean``, pyarrow) become factors with
  levels ``FALSE < TRUE``, as R treats logical predictors (coefficient ``xTRUE``);
* strings of any backend (``object``, ``str``, ``string``, pyarrow) become ``object`` columns of
  Python strings (factors, levels in sorted order); ``""`` is a level, as in R;
* pandas categoricals stay factors (their category order is the level order), unused levels
  dropped as lme4's ``drop.unused.levels``;
* dates and times are factors when they group random effects (levels in time order) and an
  error as predictors, where R would silently use seconds or days since 1970.

Missing values (``NaN``, ``None``, ``pd.NA``, ``NaT``) are found before this, by ``notna``.
"""

from __future__ import annotations

import decimal
import numbers
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import DataError
from .rsyntax import is_r_syntactic

_NUMBER = re.compile(r"\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*")
_DECIMAL_COMMA = re.compile(r"\s*[-+]?\d+,\d+\s*")


def column_kind(s: pd.Series) -> str:
    """``"number"``, ``"bool"``, ``"string"``, ``"category"``, ``"time"`` or ``"other"``."""
    dt = s.dtype
    if isinstance(dt, pd.CategoricalDtype):
        return "category"
    if pd.api.types.is_bool_dtype(dt):
        return "bool"
    if pd.api.types.is_datetime64_any_dtype(dt) or pd.api.types.is_timedelta64_dtype(dt) or isinstance(dt, pd.PeriodDtype):
        return "time"
    if isinstance(dt, pd.ArrowDtype):
        import pyarrow as pa

        if pa.types.is_temporal(dt.pyarrow_dtype):
            return "time"
        if pa.types.is_dictionary(dt.pyarrow_dtype):
            return "category"
    if pd.api.types.is_complex_dtype(dt):
        return "other"
    if pd.api.types.is_numeric_dtype(dt):
        return "number"
    if pd.api.types.is_string_dtype(dt) and dt != object:
        return "string"
    if dt == object:
        values = [v for v in s.to_numpy() if not _missing(v)]
        if all(isinstance(v, str) for v in values):
            return "string"
        if all(isinstance(v, (bool, np.bool_)) for v in values):
            return "bool"
        if all(isinstance(v, (numbers.Real, decimal.Decimal)) and not isinstance(v, (bool, np.bool_)) for v in values):
            return "number"
        if any(isinstance(v, (pd.Timestamp, pd.Timedelta, pd.Period, np.datetime64)) or hasattr(v, "isoformat") for v in values):
            return "time"
        return "string"
    return "other"


def _missing(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def label(v: Any) -> str:
    """A level label as R prints it (``2.0`` → ``"2"``, ``True`` → ``"TRUE"``)."""
    if isinstance(v, (bool, np.bool_)):
        return "TRUE" if v else "FALSE"
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _as_numbers(s: pd.Series) -> pd.Series:
    """numpy ``int64`` for whole numbers without missing values (exact for large ids), else ``float64``."""
    if isinstance(s.dtype, np.dtype) and s.dtype.kind in "iuf":
        if s.dtype.kind == "f" or (s.dtype.kind == "u" and len(s) and s.max() >= 2**63):
            return s.astype(float)
        return s.astype(np.int64)
    if not s.isna().any() and (pd.api.types.is_integer_dtype(s.dtype) or s.dtype == object):
        values = s.to_numpy(dtype=object)
        if all(isinstance(v, numbers.Integral) and -(2**63) <= v < 2**63 for v in values):
            return pd.Series(np.asarray(values.tolist(), dtype=np.int64), index=s.index)
    return pd.Series(s.to_numpy(dtype=float, na_value=np.nan), index=s.index)


def _as_bool_factor(s: pd.Series) -> pd.Series:
    values = [None if _missing(v) else ("TRUE" if v else "FALSE") for v in s.to_numpy(dtype=object)]
    return pd.Series(pd.Categorical(values, categories=["FALSE", "TRUE"]), index=s.index)


def _as_strings(s: pd.Series) -> pd.Series:
    if s.dtype != object:  # a string dtype: every value is a str or missing
        return pd.Series(s.to_numpy(dtype=object, na_value=np.nan), index=s.index, dtype=object)
    values = np.array([np.nan if _missing(v) else label(v) for v in s.to_numpy(dtype=object)], dtype=object)
    return pd.Series(values, index=s.index, dtype=object)


def _as_category(s: pd.Series) -> pd.Series:
    if not isinstance(s.dtype, pd.CategoricalDtype):  # pyarrow dictionary
        s = s.astype(object).astype("category")
    cats = list(s.cat.categories)
    labels = [label(c) if isinstance(c, (bool, np.bool_)) else c for c in cats]
    cat = pd.Categorical.from_codes(s.cat.codes.to_numpy(), categories=pd.Index(labels, dtype=object), ordered=s.cat.ordered)
    return pd.Series(cat, index=s.index).cat.remove_unused_categories()


def _as_time_factor(s: pd.Series) -> pd.Series:
    """Levels in time order, labelled as pandas prints the column (``2024-01-05`` for whole days)."""
    if isinstance(s.dtype, pd.ArrowDtype):
        try:
            s = s.astype(s.dtype.numpy_dtype)
        except (TypeError, ValueError):
            s = s.astype(object)
    order = sorted(set(s[s.notna()].tolist()))
    names = pd.Series(order, dtype=s.dtype).astype(str).tolist()
    codes = {v: i for i, v in enumerate(order)}
    values = [None if _missing(v) else names[codes[v]] for v in s.tolist()]
    return pd.Series(pd.Categorical(values, categories=pd.Index(names, dtype=object)), index=s.index)


def coerce_columns(frame: pd.DataFrame, group_vars: Iterable[str] = ()) -> pd.DataFrame:
    """Columns of ``frame`` in the types formulaic and the grouping code expect (see the module docstring).

    Parameters
    ----------
    frame : pandas.DataFrame
        The data (rows already chosen).
    group_vars : iterable of str
        Columns that group random effects: dates and times in them become factors.

    Returns
    -------
    pandas.DataFrame
        A new frame; columns of other types (dates as predictors) are left as they are, for
        :func:`check_predictor_types` to report.
    """
    groups = set(group_vars)
    out = {}
    for c in frame.columns:
        s = frame[c]
        kind = column_kind(s)
        if kind == "number":
            s = _as_numbers(s)
        elif kind == "bool":
            s = _as_bool_factor(s)
        elif kind == "string":
            s = _as_strings(s)
        elif kind == "category":
            s = _as_category(s)
        elif kind == "time" and c in groups:
            s = _as_time_factor(s)
        out[c] = s
    return pd.DataFrame(out, index=frame.index)


def check_predictor_types(frame: pd.DataFrame, columns: Iterable[str]) -> None:
    """Dates, times and other types that are neither numbers nor factors cannot be predictors.

    Raises
    ------
    DataError
        Naming the column, its type and how to convert it.
    """
    for c in columns:
        kind = column_kind(frame[c])
        if kind == "time":
            raise DataError(
                f"column {c!r} holds dates or times ({frame[c].dtype}), which cannot be a predictor as they stand: "
                f"convert it to a number, e.g. days since the first date, (data[{c!r}] - data[{c!r}].min()).dt.days, "
                f"or to strings (data[{c!r}].astype(str)) to use it as a factor"
            )
        if kind == "other":
            raise DataError(
                f"column {c!r} has type {frame[c].dtype}, which is neither a number nor a factor; "
                "convert it to numbers or strings"
            )


def stray_text(s: pd.Series, name: str, *, response: bool = False) -> str | None:
    """A message if string column ``s`` holds numbers except a few values, else ``None``.

    A column read from a file with one ``"n/a"`` or ``"1,5"`` among its numbers is read as
    text, and R (and formulaic) would make it a factor with a level per distinct number.
    """
    if s.dtype != object:
        return None
    values = pd.Series([v for v in s.to_numpy() if isinstance(v, str)], dtype=object)
    if values.empty:
        return None
    # classify each distinct string once (a factor column repeats a few labels over many rows)
    codes, uniq = pd.factorize(values)
    num_u = np.array([bool(_NUMBER.fullmatch(v)) for v in uniq], dtype=bool)
    comma_u = np.array([bool(_DECIMAL_COMMA.fullmatch(v)) for v in uniq], dtype=bool)
    is_num = num_u[codes]
    is_comma = ~is_num & comma_u[codes]
    n_num, n_comma = int(is_num.sum()), int(is_comma.sum())
    if n_comma > n_num and n_comma + n_num > len(values) / 2:
        examples = ", ".join(repr(v) for v in list(dict.fromkeys(values[is_comma]))[:3])
        return (
            f"column {name!r} holds numbers written with a decimal comma ({examples}); read the file with "
            f"decimal=',' or convert the column: pd.to_numeric(data[{name!r}].str.replace(',', '.'))"
        )
    bad = values[~is_num]
    if n_num == 0 or bad.empty or bad.nunique() > 5 or len(bad) >= n_num:
        return None
    rows: dict[str, list[Any]] = {}
    for idx, v in zip(s.index, s.to_numpy()):
        if isinstance(v, str) and not _NUMBER.fullmatch(v):
            rows.setdefault(v, []).append(idx)
    shown = ", ".join(
        f"{v!r} (row {r[0]})" if len(r) == 1 else f"{v!r} ({len(r)} rows, first {r[0]})" for v, r in rows.items()
    )
    quoted = name if is_r_syntactic(name) else f"`{name}`"
    what = (
        "the response must be numeric"
        if response
        else f"as text it would become a factor with {s.nunique()} levels; to use it as a factor, write "
        f"factor({quoted}) or make the column a pandas Categorical"
    )
    return (
        f"column {name!r} holds numbers except for {len(bad)} value{'s' if len(bad) > 1 else ''}: {shown}; "
        f"{what}. Fix those values, or make them missing with pd.to_numeric(data[{name!r}], errors='coerce')"
    )


def empty_strings(frame: pd.DataFrame, columns: Iterable[str]) -> dict[str, int]:
    """Number of empty strings in each string or factor column that has any."""
    out = {}
    for c in columns:
        s = frame[c]
        if s.dtype == object or isinstance(s.dtype, pd.CategoricalDtype):
            k = int((s.astype(object) == "").sum())
            if k:
                out[c] = k
    return out
