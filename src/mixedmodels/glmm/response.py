"""The response of a GLMM as R's families read it, checked.

Binomial responses come in four forms, as in R:

* 0/1 numbers, ``True``/``False``, or a two-level factor, string or categorical column (the first level
  is a failure: R's ``y != levels(y)[1]``; strings take R's ``factor()`` order, sorted);
* proportions with ``weights=`` the numbers of trials;
* ``cbind(successes, failures)`` on the left-hand side, as lme4 writes it; each argument is a column
  or an arithmetic expression of columns (``size - incidence``), checked against the formula allow-list.

Poisson and negative binomial responses are non-negative integer counts. Whatever R rejects or only
warns about (values outside {0, 1} without trials, proportions without weights, negative or fractional
counts, fractional numbers of successes, a constant response) is a :class:`DataError` naming the problem.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
from formulaic import model_matrix

from ..exceptions import DataError, FormulaError, ModelError
from ..formula.parse import ParsedFormula
from ..formula.rsyntax import Binary, Call, Paren, Unary, deparse, parse_expression
from ..formula.safety import evaluation_context, formulaic_aliases, translate
from .family import Binomial, Family

#: Names of the hidden columns holding the two sides of ``cbind(successes, failures)``.
SUCCESSES, FAILURES = "(successes)", "(failures)"
#: Tolerance for a count to be an integer (R's binomial warns above 1e-3 for ``weights * y``).
_INTEGER_TOL = 1e-7


@dataclass(frozen=True)
class ResponseSpec:
    """How the left-hand side was read before the design is built.

    Attributes
    ----------
    text : str
        The response as written (``cbind(incidence, size - incidence)``).
    kind : {"cbind", "factor", "numeric"}
    levels : tuple of str
        For a factor response: ``(failure, success)`` labels.
    """

    text: str
    kind: str
    levels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Response:
    """The response as the model uses it.

    Attributes
    ----------
    y : numpy.ndarray
        The response (the proportion of successes for the binomial).
    wt : numpy.ndarray
        Prior weights (the numbers of trials for the binomial).
    spec : ResponseSpec
    """

    y: np.ndarray
    wt: np.ndarray
    spec: ResponseSpec


def _evaluate(expr: str, data: pd.DataFrame) -> np.ndarray:
    """One side of ``cbind`` on the data (NaN where a column is missing), through the formula allow-list."""
    cols = list(data.columns)
    aliases = formulaic_aliases(cols)
    tr = translate(f"I({expr})", cols, aliases=aliases)
    frame = data[sorted(tr.used)]
    if aliases:
        frame = frame.rename(columns=aliases)
    for c in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]):
            raise DataError(f"cbind({expr}, ...): column {c!r} must hold counts (numbers)")
    try:
        mm = model_matrix(f"0 + {tr.text}", frame.astype(float), context=evaluation_context(), na_action="ignore")
    except Exception as exc:  # noqa: BLE001 - formulaic raises many types
        raise FormulaError(f"cannot evaluate {expr!r} in the response: {str(exc).splitlines()[0]}") from None
    values = np.asarray(mm, dtype=float)
    if values.shape[1] != 1:
        raise FormulaError(f"{expr!r} in cbind() must give one number per row")
    return values[:, 0]


def _factor_codes(column: pd.Series, name: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """0/1 codes of a factor-like response (first level a failure, as R) and its two levels."""
    present = column.dropna()
    if isinstance(column.dtype, pd.CategoricalDtype):
        levels = list(column.cat.categories)  # R: the first level, even when unused
    else:
        levels = sorted(present.unique().tolist(), key=str)
    used = [lv for lv in levels if lv in set(present.tolist())]
    if len(used) > 2:
        shown = ", ".join(map(str, used[:6]))
        raise DataError(
            f"the response {name!r} has {len(used)} levels ({shown}); a binomial response needs two "
            "(the first a failure): recode it, e.g. as 0/1"
        )
    codes = np.where(column.isna(), np.nan, (column != levels[0]).to_numpy(dtype=float))
    return codes, tuple(str(v) for v in levels[:2])


def prepare_response(
    parsed: ParsedFormula, data: pd.DataFrame, family: Family
) -> tuple[ParsedFormula, pd.DataFrame, tuple[str, ...], ResponseSpec]:
    """The formula, data and extra columns to build the design from, and how the response was read.

    ``cbind(s, f)`` becomes two hidden columns (the successes the design's response, the failures an extra
    column so that rows missing either are dropped); a factor, string or boolean response becomes 0/1.
    """
    text = parsed.response
    node = parse_expression(text)
    if isinstance(node, Call) and node.func == "cbind":
        if not isinstance(family, Binomial):
            raise ModelError(f"a cbind(successes, failures) response needs the binomial family, not {family.name}")
        args = [a for a in node.args]
        if len(args) != 2 or any(a.name is not None for a in args):
            raise FormulaError(f"cbind() in the response takes two arguments, successes and failures: {text!r}")
        if "." in _fixed_tokens(parsed.fixed):
            raise FormulaError("'.' in the predictors with a cbind() response: write the predictors out")
        taken = set(data.columns)
        if SUCCESSES in taken or FAILURES in taken:
            raise DataError(f"the data may not have columns named {SUCCESSES!r} or {FAILURES!r} with a cbind() response")
        s = _evaluate(deparse(args[0].value), data)
        f = _evaluate(deparse(args[1].value), data)
        new = data.assign(**{SUCCESSES: s, FAILURES: f})
        return dataclasses.replace(parsed, response=f"`{SUCCESSES}`"), new, (FAILURES,), ResponseSpec(text, "cbind")
    if isinstance(node, (Binary, Unary, Paren)):
        # arithmetic on the left-hand side (R's incidence/size): a value, not formula operators
        return dataclasses.replace(parsed, response=f"I({text})"), data, (), ResponseSpec(text, "numeric")
    name = node.name if hasattr(node, "name") and not isinstance(node, Call) else None
    if name is not None and name in data.columns:
        column = data[name]
        is_bool = pd.api.types.is_bool_dtype(column) or (
            column.dtype == object and column.dropna().map(type).isin([bool, np.bool_]).all() and column.notna().any()
        )
        if not pd.api.types.is_numeric_dtype(column) or is_bool or isinstance(column.dtype, pd.CategoricalDtype):
            if not isinstance(family, Binomial):
                raise DataError(f"the response {name!r} is not numeric; the {family.name} family needs counts")
            if is_bool:
                codes, levels = np.where(column.isna(), np.nan, column.astype(float)), ("FALSE", "TRUE")
            else:
                codes, levels = _factor_codes(column, name)
            return parsed, data.assign(**{name: codes}), (), ResponseSpec(text, "factor", levels)
    return parsed, data, (), ResponseSpec(text, "numeric")


def _fixed_tokens(fixed: str) -> set[str]:
    from ..formula.rsyntax import tokenize

    return {t.text for t in tokenize(fixed) if t.kind in ("name", "op")}


def _integer(x: np.ndarray) -> np.ndarray:
    return np.abs(x - np.round(x)) <= _INTEGER_TOL * np.maximum(1.0, np.abs(x))


def _rows(mask: np.ndarray, values: np.ndarray) -> str:
    idx = np.flatnonzero(mask)
    shown = ", ".join(f"{values[i]:g}" for i in idx[:3])
    return f"{idx.size} value{'s' if idx.size > 1 else ''} ({shown}{', ...' if idx.size > 3 else ''})"


def finish_response(
    spec: ResponseSpec, y_design: np.ndarray, frame: pd.DataFrame, weights: np.ndarray | None, family: Family
) -> Response:
    """The response and prior weights on the rows used, checked for the family.

    Raises
    ------
    DataError
        For a response the family cannot take (see the module docstring).
    """
    name = spec.text
    prior = np.ones_like(y_design) if weights is None else np.asarray(weights, dtype=float)
    if spec.kind == "cbind":
        s, f = y_design, frame[FAILURES].to_numpy(dtype=float)
        for label, v in (("successes", s), ("failures", f)):
            if np.any(v < 0):
                raise DataError(f"{name}: the {label} must not be negative; {_rows(v < 0, v)} are")
            if not np.all(_integer(v)):
                raise DataError(f"{name}: the {label} must be whole numbers; {_rows(~_integer(v), v)} are not")
        n = s + f
        y = np.divide(s, n, out=np.zeros_like(s), where=n > 0)
        wt = prior * n
        if np.all(n == 0):
            raise DataError(f"{name}: every row has no trials")
    elif isinstance(family, Binomial):
        y = np.asarray(y_design, dtype=float)
        bad = (y < 0) | (y > 1)
        if bad.any():
            raise DataError(
                f"the binomial response {name!r} must lie in [0, 1] (0/1 outcomes, or proportions with weights= the "
                f"numbers of trials); {_rows(bad, y)} do not. For counts of successes write cbind(successes, failures)"
            )
        if weights is None:
            frac = ~np.isin(y, (0.0, 1.0))
            if frac.any():
                raise DataError(
                    f"the binomial response {name!r} has proportions ({_rows(frac, y)}) but no weights: give the numbers "
                    "of trials as weights=, or write cbind(successes, failures)"
                )
        else:
            succ = y * prior
            if not np.all(np.abs(succ - np.round(succ)) <= 1e-3):
                bad = np.abs(succ - np.round(succ)) > 1e-3
                raise DataError(
                    f"non-integer numbers of successes: weights * {name} must be whole numbers of successes "
                    f"(R warns 'non-integer #successes in a binomial glm!'); {_rows(bad, succ)} are not"
                )
        wt = prior
    else:
        y = np.asarray(y_design, dtype=float)
        if np.any(y < 0):
            raise DataError(f"the {family.name} response {name!r} must be non-negative counts; {_rows(y < 0, y)} are negative")
        if not np.all(_integer(y)):
            raise DataError(
                f"the {family.name} response {name!r} must be whole-number counts (R warns about non-integer x); "
                f"{_rows(~_integer(y), y)} are not"
            )
        wt = prior
    used = wt > 0
    if np.unique(y[used]).size < 2:
        raise ModelError(f"Response is constant: every used value of {name!r} is {y[used][0]:g} (lme4 stops here too)")
    return Response(y=y, wt=wt, spec=spec)
