"""Check that a formula only names data columns and a documented set of transforms, and translate it.

formulaic evaluates formula terms as Python expressions; a formula typed on the command line or
read from a file must never run arbitrary code.  Every formula is parsed here first as R code
(:mod:`.rsyntax`): only column names, numbers, ``TRUE``/``FALSE``, formula operators and the
transforms in :data:`ALLOWED_FUNCTIONS` pass.  The tree is then written out for formulaic with R's
meaning kept: inside a function ``^`` is a power (``**``), ``%%`` a remainder (``%``), ``%/%``
an integer division (``//``), with parentheses wherever Python's precedence differs from R's;
``factor(x)`` and ``C(x, sum)`` become formulaic's ``C(x)`` and ``C(x, contr.sum)``.  Each factor keeps the name R prints for it (:class:`Atom`).
"""

from __future__ import annotations

import difflib
import keyword
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..exceptions import DataError, FormulaError
from .rsyntax import Arg, Binary, Bool, Call, Dot, Name, Node, Num, Paren, Unary, deparse, is_python_name, parse_expression

#: Transforms a formula may use, with the function formulaic evaluates them with
#: (``None``: formulaic's own stateful transform of that name, or translated: ``factor`` is ``C``).
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
    "factor": None,
}
#: Keyword arguments each transform accepts (R's names).
ALLOWED_KEYWORDS: dict[str, frozenset[str]] = {
    "poly": frozenset({"degree", "raw"}),
    "scale": frozenset({"ddof"}),
    "C": frozenset({"contr"}),
}
#: Most positional arguments each transform takes.
_POSITIONAL = {"poly": 2, "C": 2}
#: Contrasts ``C(x, ...)`` accepts, as written in R, and formulaic's name for them.
CONTRASTS = {
    "sum": "contr.sum",
    "contr.sum": "contr.sum",
    "treatment": "contr.treatment",
    "contr.treatment": "contr.treatment",
}
_PY_OPERATORS = {"^": "**", "**": "**", "%%": "%", "%/%": "//", "*": "*", "/": "/", "+": "+", "-": "-"}
_COMPARISONS = frozenset({"<", ">", "<=", ">=", "==", "!="})
_FORMULA_OPERATORS = {"+": "+", "-": "-", "*": "*", "/": "/", ":": ":", "^": "**", "**": "**", "%in%": "%in%"}


@dataclass(frozen=True)
class Atom:
    """How R names the columns of one factor of the formula.

    Attributes
    ----------
    label : str
        The factor as R prints it (``I(x^2)``, ``factor(x)``, ```a b```).
    raw_poly : bool
        ``poly(..., raw = TRUE)``: formulaic numbers its columns from 0, R from 1.
    logical : bool
        A comparison (``I(x > 2)``): R makes it a factor and names its column ``I(x > 2)TRUE``.
    """

    label: str
    raw_poly: bool = False
    logical: bool = False


@dataclass
class Translation:
    """A formula part checked and written for formulaic.

    Attributes
    ----------
    text : str
        The formulaic formula.
    used : set of str
        Columns it refers to.
    plain : set of str
        Columns used other than as the variable of ``factor()`` or ``C()``.
    atoms : dict
        formulaic's expression of each factor → :class:`Atom`.
    """

    text: str
    used: set[str] = field(default_factory=set)
    plain: set[str] = field(default_factory=set)
    atoms: dict[str, Atom] = field(default_factory=dict)


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
    tr = translate(expr, columns)
    return tr.text, tr.used


def translate(
    expr: str,
    columns: Iterable[str],
    *,
    dot: Sequence[str] | None = None,
    sum_coded: Iterable[str] = (),
    aliases: Mapping[str, str] | None = None,
) -> Translation:
    """Check ``expr`` against the allow-list and write it for formulaic with R's meaning.

    Parameters
    ----------
    expr : str
        A formula side or a random-effects term's left side, in R syntax.
    columns : iterable of str
        Column names of the data.
    dot : sequence of str, optional
        The columns R's ``.`` stands for; ``None`` where ``.`` is not allowed.
    sum_coded : iterable of str
        Columns to code with sum-to-zero contrasts where they appear as a plain variable
        (``lmer(..., contrasts = list(x = "contr.sum"))``).
    aliases : mapping, optional
        Names formulaic sees instead of column names it cannot evaluate (:func:`formulaic_aliases`).

    Returns
    -------
    Translation

    Raises
    ------
    FormulaError
        If ``expr`` contains anything other than names, numbers, operators and allowed transforms.
    DataError
        If it names a column that is not in the data.
    """
    return _Translator(expr, set(columns), dot, frozenset(sum_coded), dict(aliases or {})).run()


def formulaic_aliases(columns: Iterable[str]) -> dict[str, str]:
    """Plain stand-in names for the columns formulaic cannot evaluate even in backticks.

    formulaic evaluates factors as Python: a backticked name becomes an identifier made of its
    word characters, which fails for Python keywords (``class``), characters Python does not take
    in names (``x²``) and names Python rewrites (NFKC: ``µ`` becomes ``μ``, ``ﬁ`` becomes ``fi``).
    """
    cols = list(columns)
    taken = set(cols)
    out = {}
    for c in cols:
        base = c if c.isidentifier() else "".join(ch if re.match(r"\w", ch) else "_" for ch in c)
        if base[:1].isdigit():
            base = "_" + base
        if base.isidentifier() and not keyword.iskeyword(base) and unicodedata.normalize("NFKC", base) == base:
            continue
        i = len(out)
        while f"_col{i}_" in taken:
            i += 1
        out[c] = f"_col{i}_"
        taken.add(out[c])
    return out


@lru_cache(maxsize=4096)
def formulaic_expr(code: str) -> str:
    """The expression formulaic names the factor written as ``code`` by (its own normalisation)."""
    from formulaic import Formula

    try:
        terms = list(Formula(code))
    except Exception as exc:  # noqa: BLE001 - formulaic's parser raises several types
        raise FormulaError(f"cannot read {code!r}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    for term in terms:
        factors = [f.expr for f in term.factors]
        if factors != ["1"]:
            return ":".join(factors)
    return code


def _is_op(node: Node) -> bool:
    return isinstance(node, (Unary, Binary))


class _Translator:
    def __init__(
        self, expr: str, columns: set[str], dot: Sequence[str] | None, sum_coded: frozenset[str], aliases: dict[str, str]
    ) -> None:
        self.expr = expr
        self.columns = columns
        self.dot = dot
        self.sum_coded = sum_coded
        self.aliases = aliases
        self.out = Translation(text="")

    def run(self) -> Translation:
        self.out.text = self.formula(parse_expression(self.expr))
        return self.out

    def column(self, name: str, *, plain: bool = True) -> str:
        """``name`` checked and written for formulaic (backticked unless a plain identifier)."""
        if name not in self.columns:
            raise _unknown_column(name, self.columns, self.expr)
        if "`" in name:
            raise DataError(f"column name {name!r} contains a backtick, which a formula cannot quote; rename it")
        self.out.used.add(name)
        if plain:
            self.out.plain.add(name)
        name = self.aliases.get(name, name)
        return name if is_python_name(name) else f"`{name}`"

    # -- the formula level: formulaic's operators between factors ------------------------------------
    def formula(self, node: Node) -> str:
        if isinstance(node, Binary):
            if node.op not in _FORMULA_OPERATORS:
                raise FormulaError(
                    f"operator {node.op!r} between terms of {self.expr!r}: inside a formula, arithmetic needs I(), "
                    f"as in I({deparse(node)})"
                )
            return f"{self.formula(node.left)} {_FORMULA_OPERATORS[node.op]} {self.formula(node.right)}"
        if isinstance(node, Unary):
            return f"{node.op}{self.formula(node.operand)}"
        if isinstance(node, Paren):
            return f"({self.formula(node.inner)})"
        if isinstance(node, Num):
            return node.text
        if isinstance(node, Dot):
            if self.dot is None:
                raise FormulaError(f"'.' (all other columns) is only allowed in the fixed-effects part, not in {self.expr!r}")
            if not self.dot:
                raise FormulaError(f"'.' in {self.expr!r} stands for no column: the data have no other columns")
            return "(" + " + ".join(self.formula(Name(c)) for c in self.dot) + ")"
        if isinstance(node, Name):
            code = self.column(node.name)
            if node.name in self.sum_coded:
                code = f"C({code}, contr.sum)"
                self.out.atoms[formulaic_expr(code)] = Atom(deparse(node))
            else:
                self.out.atoms[code.strip("`")] = Atom(deparse(node))
            return code
        if isinstance(node, Bool):
            raise FormulaError(f"{node.text} cannot be a term of a formula ({self.expr!r})")
        code = self.code(node)
        inner = node.args[0].value if node.func == "I" and node.args else None
        while isinstance(inner, Paren):
            inner = inner.inner
        self.out.atoms[formulaic_expr(code)] = Atom(
            deparse(node),
            raw_poly=node.func == "poly" and any(a.name == "raw" and _true(a.value) for a in node.args),
            logical=isinstance(inner, Binary) and inner.op in _COMPARISONS,
        )
        return code

    # -- inside a function: Python code with R's meaning ---------------------------------------------
    def code(self, node: Node, *, plain: bool = True) -> str:
        if isinstance(node, Num):
            return node.text.rstrip("L")
        if isinstance(node, Name):
            return self.column(node.name, plain=plain)
        if isinstance(node, Bool):
            return str(node.value)
        if isinstance(node, Paren):
            return f"({self.code(node.inner)})"
        if isinstance(node, Unary):
            return f"{node.op}{self.operand(node.operand)}"
        if isinstance(node, Binary):
            if node.op in _COMPARISONS:
                op = node.op
            elif node.op in _PY_OPERATORS:
                op = _PY_OPERATORS[node.op]
            else:
                raise FormulaError(f"operator {node.op!r} is not allowed inside a function in {self.expr!r}")
            return f"{self.operand(node.left)} {op} {self.operand(node.right)}"
        if isinstance(node, Dot):
            raise FormulaError(f"'.' cannot be used inside a function in {self.expr!r}")
        return self.call(node)

    def operand(self, node: Node) -> str:
        text = self.code(node)
        return f"({text})" if _is_op(node) else text

    def call(self, node: Call) -> str:
        func = node.func
        if func not in ALLOWED_FUNCTIONS:
            raise FormulaError(
                f"function {func!r} is not allowed in a formula ({self.expr!r}); allowed: " + ", ".join(sorted(ALLOWED_FUNCTIONS))
            )
        positional = [a for a in node.args if a.name is None]
        named = [a for a in node.args if a.name is not None]
        allowed = ALLOWED_KEYWORDS.get(func, frozenset())
        for a in named:
            if a.name not in allowed:
                hint = f"; {func}() takes {', '.join(sorted(allowed))}" if allowed else f"; {func}() takes no keyword arguments"
                raise FormulaError(f"keyword argument {a.name!r} is not allowed in {self.expr!r}{hint}")
        most = _POSITIONAL.get(func, 1)
        if not positional or len(positional) > most:
            raise FormulaError(
                f"{func}() takes {'one argument' if most == 1 else f'1 to {most} arguments'} "
                f"(got {len(positional)} in {deparse(node)!r} in {self.expr!r})"
            )
        if func in ("C", "factor"):
            return self.factor_call(node, positional, named)
        args = [self.code(a.value) for a in positional]
        for a in named:
            args.append(f"{a.name}={self.keyword_value(a)}")
        return f"{func}({', '.join(args)})"

    def keyword_value(self, arg: Arg) -> str:
        value = arg.value
        if isinstance(value, Name) and value.name in ("T", "F") and value.name not in self.columns:
            return str(value.name == "T")
        if isinstance(value, (Num, Bool)) or (isinstance(value, Unary) and isinstance(value.operand, Num)):
            return self.code(value)
        raise FormulaError(f"keyword argument {arg.name!r} must be a number or TRUE/FALSE in {self.expr!r}")

    def factor_call(self, node: Call, positional: list[Arg], named: list[Arg]) -> str:
        """``factor(x)``, ``C(x)``, ``C(x, sum)``, ``C(x, contr = contr.sum)`` as formulaic's ``C``."""
        target = positional[0].value
        if isinstance(target, Call) and target.func == "factor" and node.func == "C":
            if len(target.args) != 1 or target.args[0].name is not None:
                raise FormulaError(f"factor() takes one argument (in {self.expr!r})")
            target = target.args[0].value
        inner = self.code(target, plain=not isinstance(target, Name))
        contrast = None  # formulaic's default, treatment contrasts: C(x) as R's factor(x)
        given = positional[1:] + named
        if given:
            value = given[0].value
            key = value.name if isinstance(value, Name) else deparse(value)
            if key not in CONTRASTS:
                raise FormulaError(
                    f"unknown contrasts {key!r} in {deparse(node)!r}: use sum (contr.sum) or treatment (contr.treatment)"
                )
            contrast = CONTRASTS[key]
        return f"C({inner}, {contrast})" if contrast else f"C({inner})"


def _true(node: Node) -> bool:
    return (isinstance(node, Bool) and node.value) or (isinstance(node, Name) and node.name == "T")
