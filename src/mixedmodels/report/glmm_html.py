"""A self-contained HTML report of a GLMM fit: estimates on both scales, conditional and marginal effects,
latent-scale ICC and R², diagnostics and plots (inline CSS and base64 figures, as :mod:`.html`)."""

from __future__ import annotations

import html as _html
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..exceptions import ModelError
from ..glmm.marginal import EXPLANATION
from .html import CSS, figure_html, frame_html

if TYPE_CHECKING:
    from ..glmm.results import GeneralizedLinearMixedModelResults

#: Factors with more levels than this get no marginal-effects table (it has one row per pair of levels).
MAX_MARGINAL_LEVELS = 8


def _esc(v: Any) -> str:
    return _html.escape(str(v))


def _ratio_table(r: GeneralizedLinearMixedModelResults) -> str:
    """exp(β) with Wald intervals when the link makes them odds or rate ratios."""
    link = r.family.link.name
    if link not in ("logit", "log"):
        return ""
    fe = r.fixed_effects
    est, se = fe["Estimate"].to_numpy(), fe["Std. Error"].to_numpy()
    name = "odds ratio" if link == "logit" else "rate ratio"
    table = pd.DataFrame({name: np.exp(est), "2.5 %": np.exp(est - 1.959964 * se), "97.5 %": np.exp(est + 1.959964 * se)},
                         index=fe.index)
    return (f"<p class='muted'>Conditional {name}s exp(β) with Wald 95% intervals: they compare units with the same "
            f"random effects.</p>" + frame_html(table.iloc[1:] if fe.index[0] == "(Intercept)" else table))


def _marginal_sections(r: GeneralizedLinearMixedModelResults) -> str:
    from ..inference.emmeans import fit_view

    view = fit_view(r)
    out = []
    for name, levels in view.factor_levels.items():
        if not 2 <= len(levels) <= MAX_MARGINAL_LEVELS:
            continue
        try:
            me = r.marginal_effects(name)
        except ModelError as exc:
            out.append(f"<p class='muted'>{_esc(name)}: {_esc(exc)}</p>")
            continue
        means = me.means.set_index(name)[["conditional", "conditional.LCL", "conditional.UCL", "marginal", "marginal.LCL", "marginal.UCL"]]
        out.append(f"<h3>{_esc(name)}</h3>" + frame_html(means) + frame_html(me.table, index=False))
    if not out:
        return ""
    return ("<h2>Conditional and marginal effects</h2><p>Conditional means are those of a unit whose random effects "
            "are 0; marginal (population-averaged) means average over the random effects.</p>"
            f"<p class='muted'>{_esc(EXPLANATION)}</p>" + "".join(out))


def _latent_section(r: GeneralizedLinearMixedModelResults) -> str:
    try:
        v = r.latent_variances()
    except ModelError as exc:
        return f"<h3>ICC and R²</h3><p class='muted'>{_esc(exc)}</p>"
    rows = {"variance of the fixed effects": v.fixed, "random-effects variance": v.random,
            "distribution-specific variance": v.distribution, "observation-level (dispersion) variance": v.dispersion}
    rows.update(v.icc())
    rows.update(v.r2())
    table = pd.DataFrame({"value": list(rows.values())}, index=list(rows))
    notes = "".join(f"<li class='warn'>{_esc(n)}</li>" for n in v.notes)
    return ("<h3>ICC and Nakagawa's R² on the latent scale</h3>" + frame_html(table) + (f"<ul>{notes}</ul>" if notes else ""))


def render_glmm_report(r: GeneralizedLinearMixedModelResults, *, title: str | None = None) -> str:
    """The whole GLMM report as one HTML string."""
    from .. import __version__, plots

    fam = f"{r.family.name} ({r.family.link.name} link)"
    title = title or f"Generalised linear mixed model: {r.formula}"
    vc = r.varcorr.rename(columns={"grp": "group", "var1": "term", "var2": "with", "vcov": "variance / cov", "sdcor": "SD / corr"})
    y = r.model.response.y
    groups = "".join(f"<tr><th class='l'>levels of {_esc(g)}</th><td>{n}</td></tr>" for g, n in r.ngroups.items())
    data = (f"<table><tbody><tr><th class='l'>observations used</th><td>{r.nobs}</td></tr>{groups}</tbody></table>"
            f"<p>response <code>{_esc(r.design.response_name)}</code>: mean {float(np.mean(y)):.4g}, "
            f"range {float(np.min(y)):.4g} to {float(np.max(y)):.4g}</p>")
    warn = "".join(f"<li class='warn'>{_esc(w)}</li>" for w in r.warnings)
    diag = (f"<p>converged: {r.converged}; singular fit: {r.singular}; {r.evaluations} deviance evaluations.</p>"
            + (f"<ul>{warn}</ul>" if warn else "<p class='ok'>No warnings.</p>"))
    figs = [figure_html(plots.caterpillar(r), "Conditional modes of the random effects with 95% intervals"),
            figure_html(plots.binned_residuals_plot(r), "Binned response residuals against fitted means, ±1.96 SE")]
    for g in dict.fromkeys(t.group for t in r.terms):
        if r.ngroups[g] < r.nobs:  # an observation-level term has nothing to aggregate
            figs.append(figure_html(plots.observed_vs_fitted(r, g), f"Observed against fitted means by {g}"))
    disp = "" if r.dispersion is None else f"; dispersion {r.dispersion:.4g}"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        f"<p class='muted'>mixedmodels {__version__}; {stamp}; data: {_esc(r.model.data_name or 'data frame')}</p>",
        (f"<h2>Model</h2><p><code>{_esc(r.formula)}</code>, {_esc(fam)}, fitted by {r.method}; "
         f"logLik {r.loglik:.2f}, AIC {r.aic:.2f}, BIC {r.bic:.2f}{disp}.</p>"),
        f"<h2>Data</h2>{data}",
        "<h2>Fixed effects</h2><p class='muted'>Wald z tests, on the link scale.</p>",
        frame_html(r.fixed_effects),
        _ratio_table(r),
        f"<h2>Random effects</h2>{frame_html(vc, index=False)}",
        _latent_section(r),
        _marginal_sections(r),
        f"<h2>Fit diagnostics</h2>{diag}",
        "<h2>Plots</h2>",
        *figs,
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)


def write_glmm_report(r: GeneralizedLinearMixedModelResults, path: str, **kwargs: Any) -> str:
    """Write :func:`render_glmm_report` to ``path``; returns the path."""
    text = render_glmm_report(r, **kwargs)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path
