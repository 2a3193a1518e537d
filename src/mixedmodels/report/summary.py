"""lme4-style summary of a fitted linear mixed model, as text and as HTML."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .format import abbreviate, coefmat_strings, fmt_column, format_pvalue, format_r, round_r, stars, table, zapsmall

if TYPE_CHECKING:
    from ..results import LinearMixedModelResults


#: Significant digits of lme4's ``print(summary(m))`` (``max(3, getOption("digits") - 3)``).
DIGITS = 4


def _correlation_strings(cov: pd.DataFrame) -> dict[tuple[str, str], str]:
    """A term's correlations rounded to 2 decimals in one layout, keyed by ``(var1, var2)`` (lme4's ``formatVC``)."""
    pairs = [(a, b) for a, b in zip(cov["var1"], cov["var2"])]
    values = [round_r(float(v), 2) for v in cov["sdcor"]]
    if not values:
        return {}
    # the diagonal 1.00 is part of R's formatted matrix, so it sets the width too
    text = format_r(values + [1.0], nsmall=2)[:-1]
    return dict(zip(pairs, text))


class Summary:
    """Summary of a fit: ``str(summary)`` is lme4's ``print(summary(m))`` layout."""

    def __init__(self, results: "LinearMixedModelResults", ddf: str | None = "satterthwaite") -> None:
        self.results = results
        # a degenerate fit (residual SD 0) has no df: lme4's table without them
        self.ddf = None if ddf is None or str(ddf).lower() == "none" or results.sigma == 0 else ddf

    @property
    def coefficients(self):
        """The fixed-effects table shown (with df and p-values unless ``ddf`` is None)."""
        return self.results.coef_table(self.ddf)

    # -------------------------------------------------------------- pieces
    def header(self) -> str:
        r = self.results
        kind = "REML" if r.reml else "maximum likelihood "
        if self.ddf is None:
            first = f"Linear mixed model fit by {kind} ['lmerMod']"
        else:
            method = r.ddf_calculator(self.ddf).method
            first = f"Linear mixed model fit by {kind.strip()}. t-tests use {method}'s method ['lmerModLmerTest']"
        lines = [first, f"Formula: {r.formula}"]
        if r.data_name:
            lines.append(f"   Data: {r.data_name}")
        return "\n".join(lines)

    def criterion(self) -> str:
        """REML criterion, or lme4's AIC/BIC/logLik/deviance/df.resid line (rounded to 1 decimal, 7 digits)."""
        r = self.results
        if r.reml:
            return f"REML criterion at convergence: {format_r([round_r(r.objective, 1)])[0]}"
        cells = format_r([round_r(v, 1) for v in (r.aic, r.bic, r.loglik, r.deviance)]) + [str(r.df_residual)]
        names = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
        width = max(len(c) for c in cells + names)  # R prints a named character vector with one width
        return "\n".join(" ".join(c.rjust(width) for c in line) for line in (names, cells))

    def scaled_residuals(self) -> str:
        """Quartiles of the scaled residuals, as lme4 prints them (``zapsmall`` then 4 digits)."""
        r = self.results
        with np.errstate(divide="ignore", invalid="ignore"):  # σ = 0 in a degenerate fit
            q = np.quantile(r.residuals / r.sigma, [0, 0.25, 0.5, 0.75, 1])
        cells = format_r(zapsmall(q.tolist(), DIGITS + 1), DIGITS)
        return "Scaled residuals: \n" + table([["Min", "1Q", "Median", "3Q", "Max"], cells], ["r"] * 5)

    def random_effects(self) -> str:
        """lme4's ``formatVC`` table: variances and SDs each in one R ``format(digits = 4)`` layout.

        Columns are left-aligned as R prints a character matrix; the correlations of each term are
        rounded to 2 decimals. A structured term shows its rows as lme4 2.x and glmmTMB print them:
        one SD for a homogeneous structure, no correlations for ``diag``, and the one correlation of
        ``cs`` or ``ar1`` tagged on its first row (``0.45 (cs)``).
        """
        r = self.results
        vc = r.varcorr
        var_rows = vc[vc["var2"].isna()]
        var_txt = format_r(var_rows["vcov"].tolist(), DIGITS)
        sd_txt = format_r(var_rows["sdcor"].tolist(), DIGITS)
        names = list(dict.fromkeys(vc["grp"]))
        tags = [t.structure.correlation_tag for t in r.terms] + [None]  # the last block is the residual
        blocks = [vc[vc["grp"] == name] for name in names]
        ncorr = max(
            [1 if tag else int(b["var2"].notna().any()) * (int(b["var2"].isna().sum()) - 1) for b, tag in zip(blocks, tags)],
            default=0,
        )
        rows = [["Groups", "Name", "Variance", "Std.Dev."] + (["Corr"] + [""] * (ncorr - 1) if ncorr else [])]
        i = 0
        for name, block, tag in zip(names, blocks, tags):
            diag = block[block["var2"].isna()]
            cov = block[block["var2"].notna()]
            cn = list(diag["var1"]) if name != "Residual" else [""]
            corr_txt = _correlation_strings(cov)
            for a, var1 in enumerate(cn):
                row = [name if a == 0 else "", var1, var_txt[i], sd_txt[i]]
                if tag:
                    corr = [f"{format_r([round_r(float(cov['sdcor'].iloc[0]), 2)], nsmall=2)[0]} ({tag})"] if a == 0 else []
                else:
                    corr = [corr_txt.get((cn[b], var1), "") for b in range(a)]
                if ncorr:
                    row += corr + [""] * (ncorr - len(corr))
                rows.append(row)
                i += 1
        body = table(rows, ["l"] * len(rows[0]), indent=1)
        groups = "; ".join(f"{g}, {n}" for g, n in r.ngroups.items())
        out = f"Random effects:\n{body}\nNumber of obs: {r.nobs}" + (f", groups:  {groups}" if groups else "")
        structure = r.residual_structure
        if structure is not None:  # laid out as mmrm's covariance summary
            binding = r.residual_binding
            items = structure.natural_items(r.rho, r.sigma)
            cells = format_r([v for _, v in items], DIGITS)
            lines = [f"  {a}  {b}" for (a, _), b in zip(items, cells)]
            out += (
                f"\n\nResidual covariance structure: {binding.spec} ({structure.description}), "
                f"{len(binding.subject_levels)} subjects, {len(binding.patterns)} visit patterns\n" + "\n".join(lines)
            )
        if r.variance_function is not None:  # as nlme prints a varFunc
            nat = r.variance_function.natural(r.delta)
            cells = format_r([v for _, v in nat], DIGITS)
            out += f"\n\nVariance function: {r.variance_function.spec}\n" + "\n".join(f"  {n}  {c}" for (n, _), c in zip(nat, cells))
        return out

    def fixed(self) -> str:
        """The fixed-effects table as ``printCoefmat`` prints it (digits 4).

        Estimates and standard errors share one layout and t values are rounded to 3 decimals, as
        in lme4; the df column (lmerTest) is formatted on its own with 4 significant digits,
        whereas lmerTest formats it together with the estimates (so at extreme scales of the
        response lmerTest prints ``1.700e+01`` where this prints ``17.00``).
        """
        r = self.results
        if r.fixed_effects.empty:
            return "No fixed effect coefficients"
        fe = self.coefficients
        coef_se = [fe["Estimate"].tolist(), fe["Std. Error"].tolist()]
        (est, se), tval = coefmat_strings(coef_se, fe["t value"].tolist(), DIGITS)
        cols = [est, se]
        head = ["", "Estimate", "Std. Error"]
        if self.ddf is not None:
            cols.append(fmt_column(fe["df"].tolist(), 4))
            head.append("df")
        cols.append(tval)
        head.append("t value")
        if self.ddf is not None:
            cols.append([format_pvalue(v) for v in fe["Pr(>|t|)"]])
            cols.append([stars(v) for v in fe["Pr(>|t|)"]])
            head += ["Pr(>|t|)", ""]
        rows = [head] + [[name] + [c[i] for c in cols] for i, name in enumerate(fe.index)]
        text = "Fixed effects:\n" + table(rows, ["l"] + ["r"] * (len(head) - 2) + (["l"] if self.ddf is not None else ["r"]))
        if self.ddf is not None:
            text += "\n---\nSignif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"
        return text

    def correlation(self) -> str:
        r = self.results
        p = r.nfixed
        if p < 2:
            return ""
        if p > 12:
            return (
                f"Correlation matrix not shown by default, as p = {p} > 12.\n"
                "Use print(summary, correlation=TRUE) or vcov() if you need it"
            )
        V = r.vcov.to_numpy()
        sd = np.sqrt(np.diag(V))
        with np.errstate(divide="ignore", invalid="ignore"):  # SEs of 0 in a degenerate fit
            C = V / np.outer(sd, sd)
        names = list(r.vcov.index)
        rows = [[""] + [abbreviate(n) for n in names[:-1]]]
        # R formats the matrix in one width and prints it left-aligned (a character matrix): a short
        # abbreviation ("Anger") is padded on the right
        width = max(len(f"{C[i, j]:.3f}") for i in range(1, p) for j in range(i))
        for i in range(1, p):
            rows.append([names[i]] + [f"{C[i, j]:.3f}".rjust(width) for j in range(i)] + [""] * (p - 1 - i))
        return "Correlation of Fixed Effects:\n" + table(rows, ["l"] * p)

    def notes(self) -> str:
        r = self.results
        lines = []
        if r.n_dropped:
            lines.append(f"{r.n_dropped} observations deleted due to missingness")
        lines += r.warnings[1 if r.n_dropped else 0 :]
        return "\n".join(lines)

    # -------------------------------------------------------------- renderings
    def __str__(self) -> str:
        parts = [self.header(), self.criterion(), self.scaled_residuals(), self.random_effects(), self.fixed(), self.correlation(), self.notes()]
        return "\n\n".join(p for p in parts if p) + "\n"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        r = self.results
        esc = html.escape

        def html_table(df, floatfmt="{:.4g}"):
            head = "".join(f"<th>{esc(str(c))}</th>" for c in [df.index.name or ""] + list(df.columns))
            body = ""
            for idx, row in df.iterrows():
                cells = "".join(
                    f"<td>{'' if v is None or (isinstance(v, float) and np.isnan(v)) else esc(floatfmt.format(v) if isinstance(v, float) else str(v))}</td>"
                    for v in row
                )
                body += f"<tr><th>{esc(str(idx))}</th>{cells}</tr>"
            return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

        vc = r.varcorr.set_index("grp")
        crit = f"REML criterion: {r.objective:.2f}" if r.reml else f"AIC {r.aic:.2f}, BIC {r.bic:.2f}, logLik {r.loglik:.2f}, deviance {r.deviance:.2f}"
        warn = "".join(f"<li>{esc(w)}</li>" for w in r.warnings)
        return (
            "<div class='mixedmodels-summary'>"
            f"<p><b>Linear mixed model fit by {r.method}</b><br><code>{esc(r.formula)}</code><br>"
            f"{r.nobs} observations; groups: {esc(', '.join(f'{g} ({n})' for g, n in r.ngroups.items()))}; {crit}</p>"
            f"<p><b>Random effects</b></p>{html_table(vc)}"
            f"<p><b>Fixed effects</b></p>{html_table(self.coefficients)}"
            + (f"<ul>{warn}</ul>" if warn else "")
            + "</div>"
        )
