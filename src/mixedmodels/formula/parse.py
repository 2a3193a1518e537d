"""Parse an lme4-style formula into a response, a fixed-effects part and random-effects terms.

The fixed part and each term's left side are kept as text for :mod:`.safety` to check and
translate; random-effects terms ``(expr | group)`` are recognised here and expanded as lme4 does:

* ``(x || g)``      -> ``(1 | g) + (0 + x | g)``  (uncorrelated)
* ``(1 | a/b)``     -> ``(1 | a) + (1 | b:a)``     (nested)
* ``(1 | a:b)``     -> one term grouped by the interaction of ``a`` and ``b``

A term may name its covariance structure as lme4 2.x and glmmTMB do: ``us(x | g)`` (the default),
``diag(x | g)``, ``cs(x | g)``, ``ar1(0 + f | g)``, the homogeneous ``homdiag``/``homcs`` and the
heterogeneous ``hetar1``, or lme4 2.x's ``diag(x | g, hom = TRUE)``, ``cs(x | g, hom = TRUE)`` and
``ar1(0 + f | g, hom = FALSE)``. Only a call whose first argument holds a ``|`` is a structure, so a
column named ``diag`` stays an ordinary variable.

Names in backticks (```Gruppe ID```) may hold any character but a backtick; the grouping
variables are kept without their backticks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from ..exceptions import FormulaError

#: A column name that needs no backticks (letters in any script, digits, ``.`` and ``_``).
_NAME = re.compile(r"(?:[^\W\d]|\.(?!\d))[\w.]*")
#: A function call's name and its opening parenthesis at the start of a term.
_CALL = re.compile(r"((?:[^\W\d]|\.(?!\d))[\w.]*)\s*\(")
#: Covariance structures a random-effects term may name, with the structure ``hom = TRUE`` and
#: ``hom = FALSE`` give (None: the name takes no ``hom``); the first is the name's default.
STRUCTURE_NAMES: dict[str, tuple[str, str | None, str | None]] = {
    "us": ("us", None, None),
    "diag": ("diag", "homdiag", "diag"),
    "homdiag": ("homdiag", None, None),
    "cs": ("cs", "homcs", "cs"),
    "homcs": ("homcs", None, None),
    "ar1": ("ar1", "ar1", "hetar1"),
    "hetar1": ("hetar1", None, None),
}
_LOGICAL = {"TRUE": True, "T": True, "FALSE": False, "F": False}


@dataclass(frozen=True)
class RandomTermSpec:
    """One random-effects term ``(expr | group)`` after expansion.

    Attributes
    ----------
    expr : str
        Right-hand side of the term's own model matrix, e.g. ``"1 + Days"``.
    group : tuple of str
        Column names (without backticks) whose interaction is the grouping factor, in lme4's
        naming order.
    structure : str
        The covariance structure: ``"us"`` (lme4's default), ``"diag"``, ``"homdiag"``, ``"cs"``,
        ``"homcs"``, ``"ar1"`` or ``"hetar1"`` (:data:`STRUCTURE_NAMES` maps the names written to these).
    """

    expr: str
    group: tuple[str, ...]
    structure: str = "us"

    @property
    def group_label(self) -> str:
        """Name of the grouping factor as lme4 prints it (``"cask:batch"``)."""
        return ":".join(self.group)

    @property
    def label(self) -> str:
        """The term as written in a formula (``"(1 + Days | Subject)"``, ``"cs(1 + Days | Subject)"``)."""
        inner = f"({self.expr} | {self.group_label})"
        return inner if self.structure == "us" else f"{self.structure}{inner}"


@dataclass(frozen=True)
class ParsedFormula:
    """A formula split into its parts.

    Attributes
    ----------
    text : str
        The formula as given.
    response : str
        Left-hand side expression.
    fixed : str
        Right-hand side without the random-effects terms (``"1"`` if nothing is left).
    random : tuple of RandomTermSpec
        Expanded random-effects terms in the order written.
    offsets : tuple of str
        Expressions of ``offset(expr)`` terms (known parts of the linear predictor, coefficient 1).
    """

    text: str
    response: str
    fixed: str
    random: tuple[RandomTermSpec, ...]
    offsets: tuple[str, ...] = ()


def _scan(text: str) -> Iterator[tuple[int, str, int]]:
    """``(position, character, depth)`` of each character outside backtick-quoted names."""
    depth, quoted = 0, False
    for pos, ch in enumerate(text):
        if ch == "`":
            quoted = not quoted
            continue
        if quoted:
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        yield pos, ch, depth


def _check_parentheses(text: str) -> None:
    depth = 0
    for pos, ch, depth in _scan(text):
        if ch == ")" and depth < 0:
            raise FormulaError(f"unbalanced parentheses: unexpected ')' at position {pos + 1} in {text!r}")
    if text.count("`") % 2:
        raise FormulaError(f"unbalanced backticks: a '`' is not closed in {text!r}")
    if depth:
        raise FormulaError(f"unbalanced parentheses: {depth} '(' not closed in {text!r}")


def _split_top(text: str, sep: str) -> list[str]:
    """Split ``text`` on ``sep`` where it occurs outside parentheses and backticks."""
    parts, start, skip_to = [], 0, 0
    for i, ch, depth in _scan(text):
        if i < skip_to or ch in "()":
            continue
        if depth == 0 and text.startswith(sep, i):
            parts.append(text[start:i])
            start = skip_to = i + len(sep)
    parts.append(text[start:])
    return parts


def _find_bar(inner: str) -> tuple[int, int] | None:
    """Position and width of the top-level ``|`` or ``||`` in a parenthesised term."""
    for i, ch, depth in _scan(inner):
        if ch == "|" and depth == 0:
            return (i, 2) if inner[i + 1 : i + 2] == "|" else (i, 1)
    return None


def _group_name(part: str, group: str, text: str) -> str:
    """A column name in a grouping factor, without its backticks."""
    if len(part) > 1 and part[0] == part[-1] == "`":
        return part[1:-1]
    if not _NAME.fullmatch(part):
        raise FormulaError(
            f"grouping factor {group!r} in {text!r} must be a column name (or columns joined by ':' or '/'); "
            "put names with spaces or symbols in backticks, as in (1 | `my group`)"
        )
    return part


def _expand_group(group: str, text: str) -> list[tuple[str, ...]]:
    """Expand ``a/b/c`` into ``[(a,), (b, a), (c, b, a)]``; ``a:b`` stays one factor."""
    nest = [g.strip() for g in _split_top(group, "/")]
    if any(not g for g in nest):
        raise FormulaError(f"empty grouping factor in '{group}' in {text!r}")
    out: list[tuple[str, ...]] = []
    prefix: tuple[str, ...] = ()
    for level in nest:
        parts = tuple(p.strip() for p in _split_top(level, ":"))
        if any(not p for p in parts):
            raise FormulaError(f"empty name in grouping factor '{group}' in {text!r}")
        prefix = tuple(_group_name(p, group, text) for p in parts) + prefix
        out.append(prefix)
    return out


def _uncorrelated(expr: str) -> list[str]:
    """Split the left side of ``(expr || g)`` into one expression per column."""
    pieces = [p.strip() for p in _split_top(expr, "+")]
    intercept = True
    rest: list[str] = []
    for p in pieces:
        if p in ("0", "-1"):
            intercept = False
        elif p == "1":
            continue
        elif p.endswith("- 1") or p.endswith("-1"):
            intercept = False
            rest.append(p.rsplit("-", 1)[0].strip())
        elif p:
            rest.append(p)
    return (["1"] if intercept else []) + [f"0 + {p}" for p in rest]


def _random_term(inner: str, text: str, structure: str = "us") -> list[RandomTermSpec] | None:
    bar = _find_bar(inner)
    if bar is None:
        return None
    pos, width = bar
    lhs, group = inner[:pos].strip(), inner[pos + width :].strip()
    if not lhs:
        raise FormulaError(f"random-effects term '({inner})' has nothing before the bar in {text!r}")
    if not group:
        raise FormulaError(f"random-effects term '({inner})' has no grouping factor after the bar in {text!r}")
    exprs = _uncorrelated(lhs) if width == 2 else [lhs]
    if not exprs:
        raise FormulaError(f"random-effects term '({inner})' has no columns (no intercept and no variables)")
    return [RandomTermSpec(expr=e, group=g, structure=structure) for g in _expand_group(group, text) for e in exprs]


def _call_end(piece: str) -> int:
    """Position of the parenthesis closing the call that opens ``piece``."""
    return next(i for i, ch, depth in _scan(piece) if ch == ")" and depth == 0)


def _structured_term(name: str, args: str, text: str) -> list[RandomTermSpec] | None:
    """The terms of ``name(expr | g, ...)``; None when the call's first argument has no bar (an ordinary function)."""
    parts = _split_top(args, ",")
    first = parts[0].strip()
    call = f"{name}({args})"
    if _find_bar(first) is None:
        if any(_find_bar(p) is not None for p in parts[1:]):
            raise FormulaError(f"in {call!r}, the random-effects term 'expr | group' must be the first argument")
        return None
    if name not in STRUCTURE_NAMES:
        known = ", ".join(STRUCTURE_NAMES)
        raise FormulaError(f"unknown covariance structure {name!r} in {call!r} (in {text!r}); use one of: {known}")
    if _find_bar(first)[1] == 2:
        raise FormulaError(
            f"'||' inside {name}() in {text!r}: the structure sets the correlations; write {name}(expr | group)"
        )
    structure, when_hom, when_het = STRUCTURE_NAMES[name]
    for arg in (p.strip() for p in parts[1:]):
        key, eq, value = arg.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key:
            raise FormulaError(f"{name}() takes one term and named arguments; got {arg!r} in {call!r}")
        if key != "hom" or when_hom is None:
            takes = "hom = TRUE or FALSE" if when_hom is not None else "no arguments besides the term"
            raise FormulaError(f"unknown argument {key!r} of {name}() in {call!r}: {name}() takes {takes}")
        if value not in _LOGICAL:
            raise FormulaError(f"{name}(..., hom = {value}) in {call!r}: hom must be TRUE or FALSE")
        structure = when_hom if _LOGICAL[value] else when_het
    return _random_term(first, text, structure)


def parse_formula(text: str) -> ParsedFormula:
    """Split an lme4 formula such as ``"y ~ x + (1 + x | g)"`` into its parts.

    Parameters
    ----------
    text : str
        The formula.

    Returns
    -------
    ParsedFormula

    Raises
    ------
    FormulaError
        If the formula has no ``~``, unbalanced parentheses or an incomplete bar term.
    """
    if not isinstance(text, str) or not text.strip():
        raise FormulaError("the formula is empty")
    _check_parentheses(text)
    sides = _split_top(text, "~")
    if len(sides) != 2:
        raise FormulaError(
            f"a formula needs exactly one '~' between response and predictors, got {len(sides) - 1} in {text!r}"
        )
    response, rhs = sides[0].strip(), sides[1].strip()
    if not response:
        raise FormulaError(f"no response before '~' in {text!r}")
    if not rhs:
        raise FormulaError(f"no predictors after '~' in {text!r}")

    fixed_parts: list[str] = []
    random: list[RandomTermSpec] = []
    offsets: list[str] = []
    for piece in _split_top(rhs, "+"):
        piece = piece.strip()
        if not piece:
            raise FormulaError(f"empty term ('+' with nothing beside it) in {text!r}")
        # A piece may be "(1|g) - 1" or "cs(x|g) - 1": peel bar terms off its front.
        while True:
            if piece.startswith("("):
                end = next(i for i, ch, depth in _scan(piece) if depth == 0)
                terms = _random_term(piece[1:end], text)
            elif (call := _CALL.match(piece)) is not None:
                end = _call_end(piece)
                terms = _structured_term(call.group(1), piece[call.end() : end], text)
            else:
                break
            if terms is None:
                break
            random.extend(terms)
            piece = piece[end + 1 :].strip()
        if piece:
            if any(ch == "|" for _, ch, _ in _scan(piece)):
                raise FormulaError(f"a '|' must be inside parentheses, as in '(1 | g)': {piece!r} in {text!r}")
            if piece.startswith("offset(") and piece.endswith(")") and next(
                i for i, ch, depth in _scan(piece) if ch == ")" and depth == 0
            ) == len(piece) - 1:
                inner = piece[len("offset(") : -1].strip()
                if not inner:
                    raise FormulaError(f"offset() needs an expression, as in offset(log(exposure)), in {text!r}")
                offsets.append(inner)
                continue
            fixed_parts.append(piece)
    fixed = ""
    for part in fixed_parts:
        fixed = part if not fixed else (f"{fixed} {part}" if part.startswith("-") else f"{fixed} + {part}")
    if not fixed or fixed.startswith("-"):
        fixed = f"1 {fixed}".strip()
    if any(ch == "|" for _, ch, _ in _scan(response)):
        raise FormulaError(f"the response {response!r} cannot contain '|'")
    return ParsedFormula(text=text, response=response, fixed=fixed, random=tuple(random), offsets=tuple(offsets))
