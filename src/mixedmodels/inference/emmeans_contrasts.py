"""Contrast coefficients, labels, multiplicity adjustments and printed tables of emmeans 1.8 (see :mod:`.emmeans`).

Coefficients and labels are those of emmeans' ``pairwise.emmc``, ``revpairwise.emmc`` and
``trt.vs.ctrl.emmc``: levels that all look like numbers get their variable's name in front
(``Days2 - Days3``, emmeans' ``enhance.levels``), combinations of several factors are joined with
a space, and a level containing ``-``, ``+``, ``/`` or ``*`` is put in parentheses
(``(TRT-HD) - PBO``).

P-values are adjusted as emmeans' ``.adj.p.value``, each contrast with its own df:

* ``tukey``: ``ptukey(√2 |t|, k, df)`` upper tail, ``k`` the number of means in the family and
  the df of each contrast rounded as R's ``zapsmall`` rounds the whole df vector (7 significant
  digits of the largest df; a non-estimable contrast's df counts as ``Inf``, and then every df is
  rounded to a whole number, as in emmeans). Only for pairwise families; otherwise emmeans, and
  this module, switch to ``sidak`` with a note.
* ``dunnettx``: Tukey's approximation to Dunnett's distribution for ``m`` equally (0.5)
  correlated comparisons, ``1 − [w·ptukey(√2|t|, (1+√(1+8m))/2, df) + (1−w)·F(t²; 1, df)^m]``
  with ``w = (m−1)/m``.
* ``sidak``: ``1 − (1 − p)^m``; ``bonferroni``, ``holm``, ``hochberg``, ``BH``/``fdr``, ``BY``: R's
  ``p.adjust`` within each by-group (``m`` counting non-estimable contrasts too, as emmeans);
  ``none``.

``m`` is the number of contrasts in a by-group; with one contrast per group no adjustment is
made, as emmeans. The studentized range distribution is scipy's ``studentized_range``, which
agrees with R's ``ptukey`` to about 1e-9 absolute (R computes the upper tail as ``1 − cdf``, so
p-values below ~1e-9 agree only in magnitude).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from ..exceptions import ModelError
from .emmeans_grid import r_label

#: emmeans' ``parens`` option: levels matching this pattern are parenthesised in contrast labels.
PARENS = re.compile(r"-|\+|/|\*")
#: Adjustments supported, and R's ``p.adjust`` methods among them.
ADJUSTMENTS = ("none", "tukey", "sidak", "dunnettx", "bonferroni", "holm", "hochberg", "BH", "fdr", "BY")
P_ADJUST = ("bonferroni", "holm", "hochberg", "BH", "fdr", "BY", "none")
#: Default adjustment of each contrast method (emmeans' ``.emmc`` functions' ``adjust`` attribute).
DEFAULT_ADJUST = {"pairwise": "tukey", "revpairwise": "tukey", "trt.vs.ctrl": "dunnettx"}
_NUMBER = re.compile(r"\s*[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|0[xX][0-9a-fA-F]+|Inf|inf|NaN)\s*")


def looks_numeric(labels: Sequence[str]) -> bool:
    """emmeans' ``.is.num``: every label reads as a number with R's ``as.numeric``."""
    return all(_NUMBER.fullmatch(s) is not None for s in labels)


def contrast_levels(columns: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
    """Labels of the means in a contrast family: ``(variable, labels)`` columns joined by spaces.

    A column whose labels all look like numbers gets the variable's name in front; a joined label
    containing ``-``, ``+``, ``/`` or ``*`` is parenthesised (emmeans' ``enhance.levels`` and ``parens``).
    """
    if not columns:
        return []
    parts = [[name + s for s in labels] if looks_numeric(labels) else list(labels) for name, labels in columns]
    joined = [" ".join(p) for p in zip(*parts)]
    return [f"({s})" if PARENS.search(s) else s for s in joined]


def contrast_coefficients(
    method: str | Mapping[str, Sequence[float]], levels: Sequence[str], ref: int = 0
) -> tuple[list[str], np.ndarray, str, str]:
    """Coefficients of a contrast family over ``levels``.

    Parameters
    ----------
    method : str or mapping
        ``"pairwise"``, ``"revpairwise"``, ``"trt.vs.ctrl"`` or ``{name: coefficients}``.
    levels : sequence of str
        Labels of the means (:func:`contrast_levels`).
    ref : int
        Position of the control level for ``trt.vs.ctrl`` (emmeans' ``ref``, 0-based here).

    Returns
    -------
    names, C, type, default adjustment
        ``C`` is ``len(levels) × n_contrasts``; ``type`` is emmeans' ``estType``: ``"pairs"``,
        ``"contrast"`` (coefficients summing to 0) or ``"prediction"``.
    """
    k = len(levels)
    names: list[str] = []
    cols: list[np.ndarray] = []
    if isinstance(method, Mapping):
        for name, coef in method.items():
            c = np.asarray(coef, dtype=float).reshape(-1)
            if c.size != k:
                raise ModelError(f"contrast {name!r} has {c.size} coefficients; {k} needed (one per mean: {', '.join(levels)})")
            names.append(str(name))
            cols.append(c)
        C = np.column_stack(cols) if cols else np.zeros((k, 0))
        kind = "contrast" if np.all(np.abs(C.sum(axis=0)) < 1e-3) else "prediction"
        return names, C, kind, "none"
    if method in ("pairwise", "revpairwise"):
        pairs = [(i, j) for i in range(k - 1) for j in range(i + 1, k)] if method == "pairwise" else [
            (i, j) for i in range(1, k) for j in range(i)
        ]
        for i, j in pairs:
            c = np.zeros(k)
            c[i], c[j] = 1.0, -1.0
            names.append(f"{levels[i]} - {levels[j]}")
            cols.append(c)
        return names, (np.column_stack(cols) if cols else np.zeros((k, 0))), "pairs", "tukey"
    if method == "trt.vs.ctrl":
        if not 0 <= ref < k:
            raise ModelError(f"trt.vs.ctrl: reference level {ref} out of range (there are {k} levels)")
        for i in range(k):
            if i == ref:
                continue
            c = np.zeros(k)
            c[i], c[ref] = 1.0, -1.0
            names.append(f"{levels[i]} - {levels[ref]}")
            cols.append(c)
        return names, (np.column_stack(cols) if cols else np.zeros((k, 0))), "contrast", "dunnettx"
    raise ModelError(f"unknown contrast method {method!r}; use 'pairwise', 'revpairwise', 'trt.vs.ctrl' or a dict of coefficient vectors")


def zapsmall(x: np.ndarray, digits: int = 7) -> np.ndarray:
    """R's ``zapsmall(x)``: round to ``digits`` significant digits of the largest finite-or-infinite |x|."""
    x = np.asarray(x, dtype=float)
    ok = ~np.isnan(x)
    if not ok.any():
        return x
    mx = float(np.max(np.abs(x[ok])))
    if math.isinf(mx):
        d = 0  # R: digits - ceiling(log10(Inf)) = -Inf, so max(0, -Inf)
    else:
        d = max(0, digits - math.ceil(math.log10(mx))) if mx > 0 else digits
    return np.round(x, d)


def ptukey_upper(q: np.ndarray, nmeans: float, df: np.ndarray) -> np.ndarray:
    """``P(Q > q)`` of the studentized range of ``nmeans`` means with ``df`` df (R's ``ptukey(..., lower.tail = FALSE)``)."""
    q = np.asarray(q, dtype=float)
    df = np.broadcast_to(np.asarray(df, dtype=float), q.shape)
    out = np.full(q.shape, np.nan)
    ok = np.isfinite(q) & ~np.isnan(df)
    if ok.any():
        out[ok] = np.where(q[ok] <= 0, 1.0, stats.studentized_range.sf(np.maximum(q[ok], 1e-300), nmeans, df[ok]))
    return np.clip(out, 0.0, 1.0)


def pt_two_sided(t: np.ndarray, df: np.ndarray) -> np.ndarray:
    """``2 P(T_df > |t|)`` (normal for infinite df)."""
    return 2.0 * special.stdtr(df, -np.abs(t))


def pdunnettx(x: np.ndarray, m: int, df: np.ndarray) -> np.ndarray:
    """emmeans' ``.pdunnx``: approximate ``P(max |T_i| < x)`` for ``m`` comparisons with correlation 0.5."""
    w = (m - 1) / m
    tukey = 1.0 - ptukey_upper(math.sqrt(2.0) * np.asarray(x), (1.0 + math.sqrt(1.0 + 8.0 * m)) / 2.0, df)
    sidak = (1.0 - pt_two_sided(x, df)) ** m
    return w * tukey + (1.0 - w) * sidak


def p_adjust(p: np.ndarray, method: str, n: int) -> np.ndarray:
    """R's ``p.adjust(p, method, n)`` (NA p-values stay NA and are counted in ``n``)."""
    p = np.asarray(p, dtype=float)
    out = p.copy()
    ok = ~np.isnan(p)
    q = p[ok]
    lp = q.size
    if n <= 1 or lp == 0 or method == "none":
        return out
    if method == "bonferroni":
        r = np.minimum(1.0, n * q)
    elif method == "holm":
        o = np.argsort(q, kind="stable")
        i = np.arange(1, lp + 1)
        r = np.empty(lp)
        r[o] = np.minimum(1.0, np.maximum.accumulate((n - i + 1) * q[o]))
    elif method in ("hochberg", "BH", "fdr", "BY"):
        o = np.argsort(-q, kind="stable")
        i = np.arange(lp, 0, -1)
        if method == "hochberg":
            scaled = (n + 1 - i) * q[o]
        else:
            scale = sum(1.0 / j for j in range(1, n + 1)) if method == "BY" else 1.0
            scaled = scale * n / i * q[o]
        r = np.empty(lp)
        r[o] = np.minimum(1.0, np.minimum.accumulate(scaled))
    else:
        raise ModelError(f"unknown p-value adjustment {method!r}")
    out[ok] = r
    return out


def adjust_pvalues(
    t: np.ndarray,
    df: np.ndarray,
    adjust: str,
    family_size: int,
    groups: list[np.ndarray],
    est_type: str,
) -> tuple[np.ndarray, str, list[str]]:
    """emmeans' ``.adj.p.value`` for two-sided tests of contrasts.

    Parameters
    ----------
    t, df : numpy.ndarray
        t-ratios and df of every contrast (NaN for non-estimable ones; ``inf`` df: z-tests).
    adjust : str
        One of :data:`ADJUSTMENTS`.
    family_size : int
        Number of means compared in each by-group (Tukey's ``k``).
    groups : list of numpy.ndarray
        Row positions of each by-group (all of the same size).
    est_type : str
        ``"pairs"``, ``"contrast"`` or ``"prediction"``.

    Returns
    -------
    p-values, adjustment used, notes
    """
    if adjust not in ADJUSTMENTS:
        raise ModelError(f"unknown p-value adjustment {adjust!r}; use one of {', '.join(ADJUSTMENTS)}")
    t = np.asarray(t, dtype=float)
    DF = np.where(np.isnan(df), np.inf, np.asarray(df, dtype=float))
    n_contr = len(groups[0]) if groups else 0
    notes: list[str] = []
    if n_contr == 1:
        adjust = "none"
    if adjust == "tukey" and est_type != "pairs":
        notes.append('Note: adjust = "tukey" was changed to "sidak" because "tukey" is only appropriate for one set of pairwise comparisons')
        adjust = "sidak"
    unadj = pt_two_sided(t, DF)
    if adjust in P_ADJUST:
        method = "BH" if adjust == "fdr" else adjust
        p = np.empty_like(unadj)
        for rows in groups:
            p[rows] = p_adjust(unadj[rows], method, len(rows))
    elif adjust == "sidak":
        p = -np.expm1(n_contr * np.log1p(-unadj))
    elif adjust == "tukey":
        p = ptukey_upper(math.sqrt(2.0) * np.abs(t), family_size, zapsmall(DF))
    else:  # dunnettx
        p = 1.0 - pdunnettx(np.abs(t), n_contr, DF)
    p = np.where(np.isnan(t), np.nan, p)
    if adjust == "tukey":
        if family_size >= 3:
            notes.append(f"P value adjustment: tukey method for comparing a family of {family_size} estimates")
    elif adjust != "none":
        notes.append(f"P value adjustment: {adjust} method for {n_contr} tests")
    return p, adjust, notes


# ---------------------------------------------------------------------- printing
def _sig_decimals(values: np.ndarray, digits: int) -> int:
    """Decimals R's ``format(x, digits = digits)`` uses for a column: enough for ``digits`` significant digits of each value."""
    best = 0
    for v in values[np.isfinite(values)]:
        if v == 0:
            continue
        d = max(0, digits - 1 - math.floor(math.log10(abs(v))))
        text = f"{v:.{d}f}".rstrip("0")
        d = len(text.split(".")[1]) if "." in text else 0
        best = max(best, d)
    return min(best, 15)


def format_column(values: Sequence[Any], kind: str) -> list[str]:
    """Cells of a printed emmeans table: ``kind`` is ``"est"``, ``"se"``, ``"df"``, ``"t"`` or ``"p"``."""
    x = np.asarray(values, dtype=float)
    out = []
    if kind == "p":
        for v in x:
            out.append("nonEst" if np.isnan(v) else ("<.0001" if v < 1e-4 else f"{v:.4f}"))
        return out
    if kind == "t":
        return ["nonEst" if np.isnan(v) else f"{v:.3f}" for v in x]
    if kind == "df":
        finite = x[np.isfinite(x)]
        d = _sig_decimals(finite, 3)
        return ["nonEst" if np.isnan(v) else ("Inf" if np.isinf(v) else f"{v:.{d}f}") for v in x]
    d = _sig_decimals(x, 4 if kind == "est" else 3)
    return ["nonEst" if np.isnan(v) else f"{v:.{d}f}" for v in x]


def format_table(header: list[str], columns: list[list[str]], numeric: list[bool]) -> str:
    """Columns aligned as R prints a data frame without row names (text left, numbers right)."""
    widths = [max([len(h)] + [len(c) for c in col]) for h, col in zip(header, columns)]
    rows = [[h for h in header]] + [list(r) for r in zip(*columns)] if columns and columns[0] else [header]
    lines = []
    for r in rows:
        cells = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric)]
        lines.append(" " + " ".join(cells).rstrip())
    return "\n".join(lines)


def format_results(table: pd.DataFrame, by: Sequence[str], notes: Sequence[str], kind: str,
                   headers: Mapping[str, str] | None = None) -> str:
    """An emmeans or contrast table as emmeans prints it: one block per by-group, then the notes.

    ``headers`` renames printed value columns (``{"emmean": "prob"}`` for a GLMM's response scale).
    """
    asymp = bool(len(table)) and bool(np.all(np.isinf(table["df"].to_numpy(dtype=float)) | np.isnan(table["df"].to_numpy(dtype=float))))
    if kind == "emmeans":
        est, cl = "emmean", (["asymp.LCL", "asymp.UCL"] if asymp else ["lower.CL", "upper.CL"])
        value_cols = [(est, "est", est), ("SE", "se", "SE"), ("df", "df", "df"), ("lower.CL", "est", cl[0]), ("upper.CL", "est", cl[1])]
    else:
        value_cols = [("estimate", "est", "estimate"), ("SE", "se", "SE"), ("df", "df", "df"),
                      ("t.ratio", "t", "z.ratio" if asymp else "t.ratio"), ("p.value", "p", "p.value")]
    if headers:
        value_cols = [(c, k, headers.get(c, h)) for c, k, h in value_cols]
    label_cols = [c for c in table.columns if c not in by and c not in [v[0] for v in value_cols]]
    blocks = []
    if by:
        keys = table[list(by)].astype(str).agg(", ".join, axis=1) if len(table) else pd.Series([], dtype=str)
        order = list(dict.fromkeys(keys.tolist()))
        groups = [(k, np.flatnonzero(keys.to_numpy() == k)) for k in order]
    else:
        groups = [(None, np.arange(len(table)))]
    # numbers formatted over the whole table, so every block has the same decimals
    formatted = {c: format_column(table[c].to_numpy(dtype=float), k) for c, k, _ in value_cols}
    for key, rows in groups:
        header = label_cols + [h for _, _, h in value_cols]
        cols = [[r_label(v) for v in table[c].iloc[rows].tolist()] for c in label_cols]
        cols += [[formatted[c][i] for i in rows] for c, _, _ in value_cols]
        text = format_table(header, cols, [False] * len(label_cols) + [True] * len(value_cols))
        if key is not None:
            first = rows[0]
            title = ", ".join(f"{b} = {r_label(table[b].iloc[first])}" for b in by)
            text = f"{title}:\n{text}"
        blocks.append(text)
    return "\n\n".join(blocks) + "\n\n" + "\n".join(notes) + "\n"


def format_contrasts(table: pd.DataFrame) -> str:
    """A table from :meth:`EMMeans.contrasts` as emmeans prints it."""
    return format_results(table, table.attrs.get("by", []), table.attrs.get("notes", []), kind="contrasts")
