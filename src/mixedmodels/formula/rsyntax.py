"""R expression syntax in formulas: tokens, a parser with R's operator precedence, and R's printing.

A formula is R code, so ``I(x^2)`` means a power (not Python's XOR), ``x %% 2`` a remainder and
``-x^2`` is ``-(x^2)``. The parser here reads the subset of R that formulas use into a small tree;
:mod:`.safety` checks the tree against the allow-list and turns it into formulaic's Python, and
:func:`deparse` prints a node as R's ``deparse`` does, which is how lme4 names coefficients
(``I(x^2)``, ``log(x + 1)``, ``I(x%%2)``, ``poly(x, 2, raw = TRUE)``).

Operator precedence, tightest first (R's ``?Syntax``): ``^`` (right to left), unary ``-``/``+``,
``:``, ``%any%``, ``*``/``/``, ``+``/``-``, comparisons.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

from ..exceptions import FormulaError

TOKEN = re.compile(
    r"""(?P<space>\s+)
      |(?P<backtick>`[^`]*`)
      |(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?L?)
      |(?P<name>(?:[^\W\d]|\.(?!\d))[\w.]*)
      |(?P<op>%[^%\s]*%|\*\*|<=|>=|==|!=|[~+\-*/:^(),|=<>!])
    """,
    re.VERBOSE,
)

#: R's reserved words: never names of variables.
R_RESERVED = frozenset(
    "if else repeat while function for next break TRUE FALSE NULL Inf NaN NA NA_integer_ NA_real_ "
    "NA_character_ NA_complex_ in".split()
)

#: Binary operators: (left binding power, right binding power); right-associative ``^`` binds right first.
_INFIX = {
    "^": (111, 110),
    "**": (111, 110),
    ":": (90, 91),
    "*": (70, 71),
    "/": (70, 71),
    "+": (60, 61),
    "-": (60, 61),
    "<": (50, 51),
    ">": (50, 51),
    "<=": (50, 51),
    ">=": (50, 51),
    "==": (50, 51),
    "!=": (50, 51),
}
_SPECIAL_BP = (80, 81)  # %%, %/%, %in%
_UNARY_BP = 100
#: Operators R's deparse prints without spaces around them.
_TIGHT = frozenset({"^", ":", "/", "%%", "%/%"})


@dataclass(frozen=True)
class Token:
    """One token: its kind (``name``, ``backtick``, ``number``, ``op``), text and 0-based position."""

    kind: str
    text: str
    pos: int


@dataclass(frozen=True)
class Num:
    text: str


@dataclass(frozen=True)
class Name:
    """A variable; ``name`` is the column name without backticks."""

    name: str
    quoted: bool = False


@dataclass(frozen=True)
class Bool:
    value: bool
    text: str


@dataclass(frozen=True)
class Dot:
    """R's ``.`` in a formula: every other column of the data."""


@dataclass(frozen=True)
class Paren:
    inner: "Node"


@dataclass(frozen=True)
class Unary:
    op: str
    operand: "Node"


@dataclass(frozen=True)
class Binary:
    op: str
    left: "Node"
    right: "Node"


@dataclass(frozen=True)
class Arg:
    name: str | None
    value: "Node"


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Arg, ...]


Node = Num | Name | Bool | Dot | Paren | Unary | Binary | Call


def tokenize(text: str) -> list[Token]:
    """Tokens of ``text`` without white space.

    Raises
    ------
    FormulaError
        At the first character that starts no token (quotes, brackets, ``$``, ``@``, ``;``, ...).
    """
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if m is None:
            raise FormulaError(f"unexpected character {text[pos]!r} at position {pos + 1} in {text!r}")
        if m.lastgroup != "space":
            out.append(Token(m.lastgroup or "", m.group(), pos))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise FormulaError(f"incomplete expression at the end of {self.text!r}")
        self.i += 1
        return tok

    def fail(self, tok: Token, what: str) -> FormulaError:
        return FormulaError(f"{what} {tok.text!r} at position {tok.pos + 1} in {self.text!r}")

    def expect(self, text: str) -> None:
        tok = self.next()
        if tok.text != text or tok.kind != "op":
            raise self.fail(tok, f"expected {text!r}, found")

    def expression(self, min_bp: int = 0) -> Node:
        left = self.prefix()
        while (tok := self.peek()) is not None and tok.kind == "op":
            if tok.text in _INFIX:
                lbp, rbp = _INFIX[tok.text]
            elif tok.text.startswith("%"):
                lbp, rbp = _SPECIAL_BP
            else:
                break
            if lbp < min_bp:
                break
            self.i += 1
            left = Binary(tok.text, left, self.expression(rbp))
        return left

    def prefix(self) -> Node:
        tok = self.next()
        if tok.kind == "number":
            return Num(tok.text)
        if tok.kind == "backtick":
            return Name(tok.text[1:-1], quoted=True)
        if tok.kind == "name":
            nxt = self.peek()
            if nxt is not None and nxt.kind == "op" and nxt.text == "(":
                self.i += 1
                return Call(tok.text, self.arguments())
            if tok.text == ".":
                return Dot()
            if tok.text in ("TRUE", "True", "FALSE", "False"):
                return Bool(tok.text in ("TRUE", "True"), tok.text)
            return Name(tok.text)
        if tok.text == "(":
            inner = self.expression()
            self.expect(")")
            return Paren(inner)
        if tok.text in ("-", "+"):
            return Unary(tok.text, self.expression(_UNARY_BP))
        raise self.fail(tok, "unexpected")

    def arguments(self) -> tuple[Arg, ...]:
        args: list[Arg] = []
        tok = self.peek()
        if tok is not None and tok.text == ")":
            self.i += 1
            return ()
        while True:
            tok = self.peek()
            after = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
            name = None
            if tok is not None and tok.kind == "name" and after is not None and after.text == "=":
                name = tok.text
                self.i += 2
            args.append(Arg(name, self.expression()))
            tok = self.next()
            if tok.text == ")":
                return tuple(args)
            if tok.text != ",":
                raise self.fail(tok, "expected ',' or ')', found")


def parse_expression(text: str) -> Node:
    """Parse one side of a formula, or a random-effects term's left side, as R code.

    Parameters
    ----------
    text : str
        The expression, e.g. ``"x + I(x^2) + f"``.

    Returns
    -------
    Node

    Raises
    ------
    FormulaError
        For characters or constructs outside the subset formulas use.
    """
    parser = _Parser(text)
    if not parser.tokens:
        raise FormulaError(f"empty expression in {text!r}")
    node = parser.expression()
    tok = parser.peek()
    if tok is not None:
        raise parser.fail(tok, "unexpected")
    return node


def is_r_syntactic(name: str) -> bool:
    """Whether R prints ``name`` without backticks (a letter or a dot not followed by a digit first)."""
    return bool(re.fullmatch(r"(?:[^\W\d_]|\.(?!\d))[\w.]*|\.", name)) and name not in R_RESERVED


def is_python_name(name: str) -> bool:
    """Whether formulaic can take ``name`` without backticks."""
    return name.isascii() and name.isidentifier() and not keyword.iskeyword(name)


def r_number(text: str) -> str:
    """A number literal as R's ``deparse`` prints it (``2.0`` → ``2``, ``1e5`` → ``1e+05``)."""
    if text.endswith("L"):
        return str(int(float(text[:-1]))) + "L"
    value = float(text)
    if value == 0:
        return "0"
    for digits in range(1, 16):
        if float(f"{value:.{digits - 1}e}") == float(f"{value:.14e}"):
            break
    mantissa, exp = f"{value:.{digits - 1}e}".split("e")
    sci = f"{mantissa}e{int(exp):+03d}"
    decimals = max(0, digits - 1 - int(exp))
    fixed = f"{value:.{decimals}f}"
    return fixed if len(fixed) <= len(sci) else sci


def deparse(node: Node) -> str:
    """``node`` printed as R's ``deparse`` prints it (the names lme4 gives coefficients)."""
    if isinstance(node, Num):
        return r_number(node.text)
    if isinstance(node, Name):
        return node.name if is_r_syntactic(node.name) else f"`{node.name}`"
    if isinstance(node, Bool):
        return {"True": "TRUE", "False": "FALSE"}.get(node.text, node.text)
    if isinstance(node, Dot):
        return "."
    if isinstance(node, Paren):
        return f"({deparse(node.inner)})"
    if isinstance(node, Unary):
        return f"{node.op}{deparse(node.operand)}"
    if isinstance(node, Binary):
        op = node.op
        if op in _TIGHT:
            return f"{deparse(node.left)}{op}{deparse(node.right)}"
        return f"{deparse(node.left)} {op} {deparse(node.right)}"
    args = ", ".join((f"{a.name} = " if a.name else "") + deparse(a.value) for a in node.args)
    return f"{node.func}({args})"
