"""Column names of the model matrices as lme4 prints them.

formulaic names a column by its factor's (Python) expression and a suffix in brackets:
``f[T.b]`` (treatment contrast), ``f[b]`` (full indicator coding, as for the first factor without
an intercept), ``C(f, contr.sum)[S.a]`` (sum contrast), ``poly(x, 2)[1]`` (a column of a
multi-column transform, numbered from 0 for raw polynomials). R names the same columns ``fb``,
``fb``, ``C(f, contr.sum)1``, ``poly(x, 2)1``: the factor as R prints it (:class:`.safety.Atom`)
followed by the level, the number of the contrast, or the column number counted from 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .coding import label
from .safety import Atom


def _split_interaction(name: str) -> list[str]:
    """Split a column name at ``:`` outside parentheses, brackets and backticks."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(name):
        if ch == "`":
            quoted = not quoted
        elif quoted:
            continue
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == ":" and depth == 0:
            parts.append(name[start:i])
            start = i + 1
    parts.append(name[start:])
    return parts


def factor_levels(state: Any) -> list[Any]:
    """Levels of a categorical factor from formulaic's encoder state (empty for a numeric one)."""
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], Mapping):
        contrasts = state[1].get("contrasts")
        return list(getattr(contrasts, "levels", None) or state[1].get("categories") or [])
    return []


def _levels(state: Any) -> tuple[list[Any], bool]:
    """Levels of a categorical factor and whether it is sum-coded."""
    contrasts = state[1].get("contrasts") if factor_levels(state) else None
    return factor_levels(state), type(getattr(contrasts, "contrasts", None)).__name__ == "SumContrasts"


def _level_suffix(suffix: str, levels: list[Any], summed: bool) -> str:
    names = {str(v): label(v) for v in levels}
    if summed and suffix.startswith("S.") and suffix[2:] in names:
        return str(list(names).index(suffix[2:]) + 1)
    if suffix.startswith("T.") and suffix[2:] in names:
        return names[suffix[2:]]
    return names.get(suffix, suffix)


def r_column_names(columns: Iterable[str], encoder_state: Mapping[str, Any], atoms: Mapping[str, Atom]) -> list[str]:
    """lme4's names for formulaic's columns ``columns``.

    Parameters
    ----------
    columns : iterable of str
        formulaic's column names.
    encoder_state : mapping
        The model spec's ``encoder_state`` (factor expression → kind and levels).
    atoms : mapping
        Factor expression → :class:`.safety.Atom` (R's name of each factor).
    """
    exprs = sorted(set(encoder_state) | set(atoms), key=len, reverse=True)
    out = []
    for col in columns:
        if col == "Intercept":
            out.append("(Intercept)")
            continue
        pieces = []
        for part in _split_interaction(col):
            expr = next((e for e in exprs if part == e or (part.startswith(e + "[") and part.endswith("]"))), None)
            if expr is None:
                pieces.append(part.replace("`", ""))
                continue
            atom = atoms.get(expr, Atom(expr))
            suffix = part[len(expr) + 1 : -1] if part != expr else None
            levels, summed = _levels(encoder_state.get(expr))
            if suffix is None:
                pieces.append(atom.label + ("TRUE" if atom.logical else ""))
            elif levels:
                pieces.append(atom.label + _level_suffix(suffix, levels, summed))
            elif atom.raw_poly and suffix.isdigit():
                pieces.append(atom.label + str(int(suffix) + 1))
            else:
                pieces.append(atom.label + suffix)
        out.append(":".join(pieces))
    return out
