"""Check that a formula only names data columns and a documented set of transforms.

formulaic evaluates formula terms as Python expressions; a formula typed on the command line or
read from a file must never run arbitrary code.  Every formula is tokenised here first: only column
names, numbers, formula operators and the transforms in :data:`ALLOWED_FUNCTIONS` pass.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

import numpy as np

from ..exceptions import DataError, FormulaError

#: Transforms a formula may use, with the function formulaic evaluates them with
#: (``None``: formulaic's own stateful transform of that name).
ALLOWED_FUNCTIONS: dict[str, object] = {
    "log": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "log1p": np.log1p,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "scale": None,
    "center": None,
    "poly": None,
    "I": None,
    "C": None,
}
#: Keyword arguments allowed inside those transforms.
ALLOWED_KEYWORDS = frozenset({"degree", "raw", "ddof", "contr", "levels"})

_TOKEN = re.compile(
    r"""(?P<space>\s+)
      |(?P<backtick>`[^`]*`)
      |(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      |(?P<name>[A-Za-z_][A-Za-z0-9_.]*)
      |(?P<op>\*\*|[~+\-*/:^(),|=])
    """,
    re.VERBOSE,
)


def evaluation_context() -> dict[str, object]:
    """The functions formulaic may call, beyond its own transforms."""
    return {k: v for k, v in ALLOWED_FUNCTIONS.items() if v is not None}


def _unknown_column(name: str, columns: Iterable[str], where: str) -> DataError:
    close = difflib.get_close_matches(name, list(columns), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return DataError(f"unknown column {name!r} in {where!r}{hint}")


def sanitize(expr: str, columns: Iterable[str]) -> tuple[str, set[str]]:
    """Validate ``expr`` and quote column names for formulaic.

    Parameters
    ----------
    expr : str
        A formula or part of one.
    columns : iterable of str
        Column names of the data.

    Returns
    -------
    text : str
        ``expr`` with column names that are not plain identifiers wrapped in backticks.
    used : set of str
        The columns ``expr`` refers to.

    Raises
    ------
    FormulaError
        If ``expr`` contains anything other than names, numbers, operators and allowed transforms.
    DataError
        If it names a column that is not in the data.
    """
    cols = set(columns)
    out: list[str] = []
    used: set[str] = set()
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(expr)]
    if sum(len(t[1]) for t in tokens) != len(expr):
        pos = 0
        for m in _TOKEN.finditer(expr):
            if m.start() != pos:
                break
            pos = m.end()
        raise FormulaError(f"unexpected character {expr[pos]!r} at position {pos + 1} in {expr!r}")
    for i, (kind, text) in enumerate(tokens):
        if kind == "backtick":
            name = text[1:-1]
            if name not in cols:
                raise _unknown_column(name, cols, expr)
            used.add(name)
        elif kind == "name":
            nxt = _next_significant(tokens, i)
            if nxt == "(":
                if text not in ALLOWED_FUNCTIONS:
                    raise FormulaError(
                        f"function {text!r} is not allowed in a formula ({expr!r}); allowed: "
                        + ", ".join(sorted(ALLOWED_FUNCTIONS))
                    )
            elif nxt == "=":
                if text not in ALLOWED_KEYWORDS:
                    raise FormulaError(f"keyword argument {text!r} is not allowed in {expr!r}")
            elif text in cols:
                used.add(text)
                if not text.isidentifier():
                    text = f"`{text}`"
            elif text in ("True", "False"):
                pass
            else:
                raise _unknown_column(text, cols, expr)
        out.append(text)
    return "".join(out), used


def _next_significant(tokens: list[tuple[str | None, str]], i: int) -> str | None:
    for kind, text in tokens[i + 1 :]:
        if kind != "space":
            return text
    return None
