"""Specifications of residual covariance structures: ``us(visit | subject)``, ``ar1(visit | arm / subject)``.

The syntax is mmrm's, so mmrm formulas can be pasted::

    structure(time | subject)            one structure for all subjects
    structure(time | group / subject)    a separate structure for each level of group

``structure`` is a kind of :data:`~.structures.STRUCTURES` (``us toep toeph ar1 ar1h cs csh ad adh diag car1
iid``) or an alias (mmrm's ``sp_exp`` and SAS's ``un arh1 ante1 sp_pow``).  Names may be back-quoted
(`` `visit week` ``).  ``iid`` needs no time: ``iid(subject)``, ``iid(arm / subject)`` or just ``iid``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..exceptions import FormulaError
from .residual import ResidualStructure
from .structures import ALIASES, STRUCTURES

_NAME = r"(?:`[^`]+`|[A-Za-z_.][A-Za-z0-9_.]*)"
_CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$", re.DOTALL)
_SYNTAX = "structure(time | subject) or structure(time | group / subject)"


@dataclass(frozen=True)
class ResidualSpec:
    """A parsed residual covariance specification.

    Attributes
    ----------
    structure : str
        Canonical kind (``"car1"`` for ``sp_exp``).
    time : str or None
        Time column (None only for ``iid``).
    subject : str or None
        Subject column: rows of one subject are correlated (None only for a bare ``iid``: every row its own
        subject).
    group : str or None
        Column whose levels get separate structures, or None.
    """

    structure: str
    time: str | None
    subject: str | None
    group: str | None = None

    def __post_init__(self) -> None:
        if self.structure not in STRUCTURES:
            raise FormulaError(_unknown(self.structure))
        if self.time is None and self.structure != "iid":
            raise FormulaError(f"{self.structure} needs a time variable: {_SYNTAX}")
        if self.subject is None and (self.time is not None or self.group is not None):
            raise FormulaError(f"a residual structure with a time or group variable needs a subject: {_SYNTAX}")

    @property
    def structure_class(self) -> type[ResidualStructure]:
        """The :class:`~.residual.ResidualStructure` subclass of this kind."""
        return STRUCTURES[self.structure]

    @property
    def columns(self) -> tuple[str, ...]:
        """The data columns the specification names."""
        return tuple(c for c in (self.time, self.group, self.subject) if c is not None)

    def __str__(self) -> str:
        if self.subject is None:
            return self.structure
        rhs = _quote(self.subject) if self.group is None else f"{_quote(self.group)} / {_quote(self.subject)}"
        lhs = "" if self.time is None else f"{_quote(self.time)} | "
        return f"{self.structure}({lhs}{rhs})"


def _quote(name: str) -> str:
    return name if re.fullmatch(_NAME, name) and not name.startswith("`") else f"`{name}`"


def _unquote(name: str) -> str:
    return name[1:-1] if name.startswith("`") else name


_ORDER = ("us", "toep", "toeph", "ar1", "ar1h", "cs", "csh", "ad", "adh", "diag", "car1", "iid")


def _unknown(name: str) -> str:
    known = ", ".join(k for k in _ORDER if k in STRUCTURES)
    aliases = ", ".join(f"{a} = {k}" for a, k in ALIASES.items())
    return f"unknown residual covariance structure {name!r}; known: {known} (aliases: {aliases})"


def _variable(text: str, role: str, spec: str) -> str:
    text = text.strip()
    if "," in text and role == "time":
        raise FormulaError(f"{spec!r}: one time variable only (several coordinates are not supported)")
    if not re.fullmatch(_NAME, text):
        raise FormulaError(f"{spec!r}: {role} must be a column name, got {text!r}; expected {_SYNTAX}")
    return _unquote(text)


def parse_residual(text: str) -> ResidualSpec:
    """Parse a residual covariance specification such as ``"us(visit | arm / subject)"``.

    Raises
    ------
    FormulaError
        For an unknown structure or a malformed specification.
    """
    if not isinstance(text, str):
        raise FormulaError(f"a residual structure is given as a string, got {type(text).__name__}")
    m = _CALL.match(text)
    if m is None:
        raise FormulaError(f"cannot read residual structure {text!r}; expected {_SYNTAX}")
    name, inner = m.group(1), m.group(2)
    kind = ALIASES.get(name.lower(), name.lower())
    if kind not in STRUCTURES:
        raise FormulaError(_unknown(name))
    if inner is None or not inner.strip():
        if kind == "iid":
            return ResidualSpec("iid", None, None)
        raise FormulaError(f"{text!r}: {name} needs its variables; expected {_SYNTAX}")
    parts = inner.split("|")
    if len(parts) > 2:
        raise FormulaError(f"{text!r}: more than one '|'; expected {_SYNTAX}")
    if len(parts) == 1 and kind != "iid":
        raise FormulaError(f"{text!r}: no '|' between time and subject; expected {_SYNTAX}")
    time = _variable(parts[0], "time", text) if len(parts) == 2 else None
    rhs = parts[-1].split("/")
    if len(rhs) > 2:
        raise FormulaError(f"{text!r}: one grouping variable only (group / subject); expected {_SYNTAX}")
    subject = _variable(rhs[-1], "subject", text)
    group = _variable(rhs[0], "group", text) if len(rhs) == 2 else None
    named = [c for c in (time, group, subject) if c is not None]
    if len(set(named)) < len(named):
        raise FormulaError(f"{text!r}: time, group and subject must be different columns")
    return ResidualSpec(kind, time, subject, group)


def _split_top(text: str, sep: str) -> list[str]:
    """Split at ``sep`` outside brackets and back-quotes."""
    out, depth, quoted, cur = [], 0, False, []
    for ch in text:
        if ch == "`":
            quoted = not quoted
        elif not quoted and ch in "([{":
            depth += 1
        elif not quoted and ch in ")]}":
            depth -= 1
        if ch == sep and depth == 0 and not quoted:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def extract_residual(formula: str) -> tuple[str, ResidualSpec | None]:
    """Take a residual structure term out of a model formula, as mmrm writes it.

    ``"y ~ arm * visit + us(visit | subject)"`` → ``("y ~ arm * visit", ResidualSpec("us", "visit",
    "subject"))``.  A formula without such a term comes back unchanged with None.  A term counts when it
    is a call, at the top level of the right-hand side, of a structure name or alias.

    Raises
    ------
    FormulaError
        For more than one residual term, or a malformed one.
    """
    sides = _split_top(formula, "~")
    if len(sides) != 2:
        return formula, None
    lhs, rhs = sides
    kept, found = [], []
    for term in _split_top(rhs, "+"):
        m = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(", term)
        name = m.group(1).lower() if m else ""
        if m and (name in STRUCTURES or name in ALIASES):
            found.append(term.strip())
        else:
            kept.append(term.strip())
    if not found:
        return formula, None
    if len(found) > 1:
        raise FormulaError(f"more than one residual covariance structure: {', '.join(found)}")
    rest = " + ".join(kept) if kept else "1"
    return f"{lhs.strip()} ~ {rest}", parse_residual(found[0])
