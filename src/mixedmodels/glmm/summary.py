"""glmer's printed summary: the LMM summary's random-effects and correlation tables, with GLMM headers and z tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..report.format import coefmat_strings, format_r, round_r, stars, table, zapsmall
from ..report.summary import DIGITS, Summary

if TYPE_CHECKING:
    from .results import GeneralizedLinearMixedModelResults


class GlmmSummary(Summary):
    """``str(summary)`` is lme4's ``print(summary(glmer_fit))`` layout."""

    def __init__(self, results: GeneralizedLinearMixedModelResults) -> None:
        super().__init__(results, ddf=None)

    @property
    def coefficients(self):
        return self.results.fixed_effects

    def header(self) -> str:
        r = self.results
        nagq = r.model.nagq
        how = "Laplace\n  Approximation" if nagq == 1 else f"Adaptive\n  Gauss-Hermite Quadrature, nAGQ = {nagq}"
        lines = [f"Generalized linear mixed model fit by maximum likelihood ({how}) [glmerMod]"]
        lines.append(f" Family: {r.family.label}")
        lines.append(f"Formula: {r.formula}")
        if r.model.data_name:
            lines.append(f"   Data: {r.model.data_name}")
        return "\n".join(lines)

    def criterion(self) -> str:
        r = self.results
        cells = format_r([round_r(v, 1) for v in (r.aic, r.bic, r.loglik, r.objective)]) + [str(r.df_residual)]
        names = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
        width = max(len(c) for c in cells + names)
        return "\n".join(" ".join(c.rjust(width) for c in line) for line in (names, cells))

    def scaled_residuals(self) -> str:
        """Quartiles of the Pearson residuals (lme4: ``residuals(m, "pearson", scaled = TRUE)``)."""
        q = np.quantile(self.results.resid_of("pearson"), [0, 0.25, 0.5, 0.75, 1])
        cells = format_r(zapsmall(q.tolist(), DIGITS + 1), DIGITS)
        return "Scaled residuals: \n" + table([["Min", "1Q", "Median", "3Q", "Max"], cells], ["r"] * 5)

    def random_effects(self) -> str:
        text = super().random_effects()
        r = self.results
        if r.dispersion is not None:
            text += f"\n\nDispersion parameter for {r.family.name} family (): {format_r([r.dispersion], 3)[0].strip()}"
        return text

    def fixed(self) -> str:
        """The coefficient table as ``printCoefmat`` prints glmer's (z values, p-values and stars)."""
        r = self.results
        if r.fixed_effects.empty:
            return "No fixed effect coefficients"
        fe = self.coefficients
        (est, se), zval = coefmat_strings([fe["Estimate"].tolist(), fe["Std. Error"].tolist()], fe["z value"].tolist(), DIGITS)
        pv = _pvalue_column(fe["Pr(>|z|)"].tolist())
        head = ["", "Estimate", "Std. Error", "z value", "Pr(>|z|)", ""]
        rows = [head] + [[name, est[i], se[i], zval[i], pv[i], stars(fe["Pr(>|z|)"].iloc[i])] for i, name in enumerate(fe.index)]
        text = "Fixed effects:\n" + table(rows, ["l", "r", "r", "r", "r", "l"])
        return text + "\n---\nSignif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"

    def notes(self) -> str:
        r = self.results
        lines = []
        if r.n_dropped:
            lines.append(f"{r.n_dropped} observations deleted due to missingness")
        lines += [m for m in r.warnings if not m.startswith(f"{r.n_dropped} rows with missing")]
        return "\n".join(lines)


def _pvalue_column(ps: list[float], digits: int = 3) -> list[str]:
    """p-values as R 4.2's ``format.pval(pv, digits = 3)`` in ``printCoefmat``.

    Values with a decimal exponent of at least −4 share one fixed layout, smaller ones another (each
    through ``format(digits = 3)``); values below machine epsilon print as ``< 2e-16``.
    """
    eps = float(np.finfo(float).eps)
    out = ["NA" if p is None or not np.isfinite(p) else "" for p in ps]
    idx = [i for i, p in enumerate(ps) if out[i] == "" and p >= eps]
    expo = {i: np.floor(np.log10(ps[i])) if ps[i] > 0 else -50 for i in idx}
    for group in ([i for i in idx if expo[i] >= -3 or (expo[i] == -4 and digits > 1)],
                  [i for i in idx if not (expo[i] >= -3 or (expo[i] == -4 and digits > 1))]):
        if group:
            for i, text in zip(group, format_r([ps[i] for i in group], digits)):
                out[i] = text.strip()
    tiny = [i for i, p in enumerate(ps) if out[i] == ""]
    if tiny:
        d = max(1, digits - 2)
        sep = " "
        if idx:
            nc = max(len(out[i]) for i in idx)
            if d > 1 and d + 6 > nc:
                d = max(1, nc - 7)
            sep = "" if d == 1 and nc <= 6 else " "
        elif d == 1:
            sep = ""
        for i in tiny:
            out[i] = f"<{sep}{format_r([eps], d)[0].strip()}"
    return out
