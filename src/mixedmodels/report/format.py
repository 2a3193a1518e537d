"""Number formatting close to R's print methods."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np


def decimals_for(values: Sequence[float], digits: int, *, use_max: bool = False) -> int:
    """Decimals so that the smallest (or largest) non-zero magnitude shows ``digits`` significant digits."""
    mags = [abs(v) for v in values if v is not None and np.isfinite(v) and v != 0]
    if not mags:
        return 0
    ref = max(mags) if use_max else min(mags)
    return int(min(max(digits - 1 - math.floor(math.log10(ref)), 0), 7))


def fmt_column(values: Sequence[float], digits: int, *, use_max: bool = False) -> list[str]:
    """Format numbers with a common number of decimals."""
    dec = decimals_for(values, digits, use_max=use_max)
    return ["" if v is None else ("NaN" if not np.isfinite(v) else f"{v:.{dec}f}") for v in values]


def fmt_sig(v: float, digits: int) -> str:
    """One number with ``digits`` significant digits (R's ``format(x, digits=)``)."""
    if v == 0 or not np.isfinite(v):
        return str(v)
    dec = max(digits - 1 - math.floor(math.log10(abs(v))), 0)
    return f"{v:.{dec}f}"


#: Largest power of ten R's ``scientific()`` tabulates (``KP_MAX`` in R's format.c).
_KP_MAX = 22


def round_r(x: float, digits: float) -> float:
    """R's ``round(x, digits)``; a non-integer ``digits`` is rounded to the nearest integer first."""
    if not math.isfinite(x):
        return x
    return round(x, int(math.floor(digits + 0.5)))


def zapsmall(values: Sequence[float], digits: int) -> list[float]:
    """R's ``zapsmall``: round to ``digits`` significant digits of the largest magnitude."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return list(values)
    mx = max(finite)
    d = max(0.0, digits - math.log10(mx)) if mx > 0 else digits
    return [round_r(v, d) for v in values]


def _scientific(x: float, digits: int) -> tuple[bool, int, int, bool]:
    """R's ``scientific()``: sign, decimal exponent, significant digits needed (≤ ``digits``), rounding widens."""
    if x == 0:
        return False, 0, 1, False
    r = abs(x)
    mantissa, exponent = f"{r:.{digits - 1}e}".split("e")
    kpower = int(exponent)
    nsig = max(1, len(mantissa.replace(".", "").rstrip("0")))
    rgt = min(max(digits - kpower, 0), _KP_MAX)
    widens = 0 < kpower <= _KP_MAX and r < 10.0**kpower - 0.5 / 10.0**rgt
    return x < 0, kpower, nsig, widens


def format_r(values: Sequence[float | None], digits: int = 7, nsmall: int = 0) -> list[str]:
    """R's ``format(x, digits = digits, nsmall = nsmall)`` of a numeric vector.

    One layout for all elements, as R's ``formatReal``: fixed notation with enough decimals that
    every element shows ``digits`` significant digits (trailing zeros of the rounded values do not
    count), unless scientific notation is narrower. Elements are right-aligned to a common width;
    missing values print as ``NA``, ``NaN``, ``Inf``, ``-Inf``.

    Parameters
    ----------
    values : sequence of float
        Numbers (None is R's ``NA``).
    digits : int
        Significant digits (R's ``digits``; summaries of fits use 4).
    nsmall : int
        Minimum number of decimals in fixed notation.

    Returns
    -------
    list of str

    Examples
    --------
    >>> format_r([612.0989, 35.07172, 654.941], 4)
    ['612.10', ' 35.07', '654.94']
    >>> format_r([6.121e-22, 3.507e-23], 4)
    ['6.121e-22', '3.507e-23']
    """
    neg = 0
    rgt = mxsl = mxns = mxe = -(10**9)
    mne = 10**9
    mxl = -(10**9)
    any_finite = False
    for v in values:
        if v is None or not math.isfinite(v):
            continue
        any_finite = True
        is_neg, kpower, nsig, widens = _scientific(float(v), digits)
        left = kpower + 1 - (1 if widens else 0)
        sleft = int(is_neg) + (1 if left <= 0 else left)
        neg = max(neg, int(is_neg))
        rgt = max(rgt, nsig - left)
        mxl = max(mxl, left)
        mxsl = max(mxsl, sleft)
        mxns = max(mxns, nsig)
        mxe = max(mxe, kpower)
        mne = min(mne, kpower)
    fixed, d = True, 0
    if any_finite:
        if mxl < 0:
            mxsl = 1 + neg
        rgt = max(rgt, 0)
        width_fixed = mxsl + rgt + (rgt != 0)
        e = 2 if (mxe >= 100 or mne <= -99) else 1
        d = mxns - 1
        width_sci = neg + (d > 0) + d + 4 + e
        if width_fixed <= width_sci:
            d = max(rgt, nsmall)
            fixed = True
        else:
            fixed = False
    out = []
    for v in values:
        if v is None:
            out.append("NA")
        elif math.isnan(v):
            out.append("NaN")
        elif math.isinf(v):
            out.append("Inf" if v > 0 else "-Inf")
        else:
            x = float(v) + 0.0  # R prints no negative zero
            out.append(f"{x:.{d}f}" if fixed else f"{x:#.{d}e}" if d > 0 else f"{x:.0e}")
    width = max((len(s) for s in out), default=0)
    return [s.rjust(width) for s in out]


def coefmat_strings(
    coef_se: Sequence[Sequence[float]], tvalues: Sequence[float], digits: int = 4
) -> tuple[list[list[str]], list[str]]:
    """Estimate/standard-error columns and t values formatted as R's ``printCoefmat``.

    The estimate and standard-error columns share one layout: rounded to ``digits`` minus the
    number of integer digits of the smallest magnitude (at least one decimal), then
    ``format(digits = digits)``; t values are rounded to ``digits - 1`` decimals (at most 5). A
    non-zero number that would print as zero is shown alone with ``digits - 1`` digits.

    Parameters
    ----------
    coef_se : sequence of columns
        The columns formatted together (lme4: Estimate and Std. Error).
    tvalues : sequence of float
        The test statistics.
    digits : int
        R's ``digits`` (lme4's summary: 4).

    Returns
    -------
    (list of columns of str, list of str)
    """
    cols = [list(map(float, c)) for c in coef_se]
    flat = [v for c in cols for v in c]
    mags = [abs(v) for v in flat if math.isfinite(v) and v != 0]
    if mags:
        digmin_low = 1 + math.floor(math.log10(min(mags)))
        decimals = max(1, digits - digmin_low)
    else:
        decimals = max(1, digits - 1)
    strings = format_r([round_r(v, decimals) if math.isfinite(v) else v for v in flat], digits)
    for i, v in enumerate(flat):  # printCoefmat's "not both zero" repair
        if math.isfinite(v) and v != 0 and float(strings[i]) == 0:
            strings[i] = format_r([v], max(1, digits - 1))[0]
    n = len(cols[0]) if cols else 0
    out_cols = [strings[k * n : (k + 1) * n] for k in range(len(cols))]
    dig_tst = max(1, min(5, digits - 1))
    tstr = format_r([round_r(float(t), dig_tst) for t in tvalues], digits)
    return out_cols, tstr


def abbreviate(name: str, minlength: int = 6) -> str:
    """R's ``abbreviate``: drop lower-case vowels, then lower-case letters, from the right."""
    if len(name) <= minlength:
        return name
    chars = list(name)
    for pattern in ("[aeiou]", "[a-z]"):
        i = len(chars) - 1
        while len(chars) > minlength and i > 0:
            if re.fullmatch(pattern, chars[i]) and not (i > 0 and chars[i - 1] in " ("):
                del chars[i]
            i -= 1
    return "".join(chars[: max(minlength, 0)] if len(chars) > minlength else chars)


def table(rows: list[list[str]], align: list[str], indent: int = 0) -> str:
    """Plain-text table; ``align`` holds ``'l'`` or ``'r'`` per column."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(align))]
    out = []
    for r in rows:
        cells = [c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(r, widths, align)]
        out.append(" " * indent + " ".join(cells).rstrip())
    return "\n".join(out)


def format_pvalue(p: float) -> str:
    """A p-value as R's ``format.pval`` prints it in coefficient tables (``< 2e-16`` below machine precision)."""
    if p is None or not np.isfinite(p):
        return "NA"
    if p < 2.2e-16:
        return "< 2e-16"
    return f"{p:.2e}" if p < 1e-4 else f"{p:.5f}".rstrip("0").rstrip(".") if p < 1 else "1"


def stars(p: float) -> str:
    """R's significance stars."""
    if p is None or not np.isfinite(p):
        return ""
    for cut, mark in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, ".")):
        if p < cut:
            return mark
    return ""
