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
