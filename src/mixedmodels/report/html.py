"""A self-contained HTML report of a fitted model: tables, diagnostics and plots in one file.

Everything is inline — CSS in a ``<style>`` element, figures as base64 PNG ``data:`` URIs — so the
file opens offline and loads nothing from the network.
"""

from __future__ import annotations

import base64
import html
import io
import math
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from ..results import LinearMixedModelResults

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
code{background:#f4f4f4;padding:.1em .3em;border-radius:3px}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}th{background:#f7f7f7}
td.l,th.l{text-align:left}.ok{color:#176b2c}.warn{color:#a15c00}.fig{margin:1em 0}
.fig img{max-width:100%;border:1px solid #eee}.muted{color:#666;font-size:.9em}
"""


def _esc(v: Any) -> str:
    return html.escape(str(v))


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(v):
            return ""
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
            return f"{v:.{digits - 1}e}"
        return f"{v:.{digits}g}"
    return _esc(v)


def frame_html(df: pd.DataFrame, *, index: bool = True, digits: int = 4) -> str:
    """A DataFrame as a plain HTML table (numbers right-aligned, labels left)."""
    head = ("<th class='l'>" + _esc(df.index.name or "") + "</th>" if index else "") + "".join(
        f"<th>{_esc(c)}</th>" for c in df.columns
    )
    rows = []
    for idx, row in df.iterrows():
        cells = "".join(
            f"<td class='l'>{_esc(v)}</td>" if isinstance(v, str) else f"<td>{_fmt(v, digits)}</td>" for v in row
        )
        rows.append("<tr>" + (f"<th class='l'>{_esc(idx)}</th>" if index else "") + cells + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def figure_html(fig: Any, caption: str) -> str:
    """A matplotlib Figure embedded as a base64 PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f"<div class='fig'><img alt='{_esc(caption)}' src='data:image/png;base64,{data}'><div class='muted'>{_esc(caption)}</div></div>"


def _data_summary(r: "LinearMixedModelResults") -> str:
    d = r.design
    rows = [("observations used", r.nobs), ("rows dropped for missing values", r.n_dropped)]
    rows += [(f"levels of {g}", n) for g, n in r.ngroups.items()]
    body = "".join(f"<tr><th class='l'>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
    y = d.y
    desc = f"response <code>{_esc(d.response_name)}</code>: mean {_fmt(float(np.mean(y)))}, SD {_fmt(float(np.std(y, ddof=1)))}, range {_fmt(float(y.min()))} to {_fmt(float(y.max()))}"
    return f"<table><tbody>{body}</tbody></table><p>{desc}</p>"


def _diagnostics(r: "LinearMixedModelResults") -> str:
    rec = r.fit_record
    items = [
        ("converged", r.converged),
        ("singular fit", r.singular),
        ("optimizer", f"{rec.optimizer}, {rec.evaluations} evaluations, {rec.seconds * 1e3:.1f} ms"),
        ("max scaled gradient", _fmt(rec.max_scaled_gradient) if rec.max_scaled_gradient is not None else "not computed"),
    ]
    body = "".join(
        f"<tr><th class='l'>{_esc(k)}</th><td class='l {'ok' if v is True or (k == 'singular fit' and v is False) else ''}'>{_esc(v)}</td></tr>"
        for k, v in items
    )
    warn = "".join(f"<li class='warn'>{_esc(w)}</li>" for w in r.warnings)
    return f"<table><tbody>{body}</tbody></table>" + (f"<ul>{warn}</ul>" if warn else "<p class='ok'>No warnings.</p>")


def _time_variable(r: "LinearMixedModelResults") -> str | None:
    """A numeric variable that is also a random slope: the natural x-axis of trajectory plots."""
    frame = r.design.frame
    for t in r.terms:
        for c in t.cnames:
            if c in frame.columns and pd.api.types.is_numeric_dtype(frame[c]):
                return c
    return None


def render_report(
    r: "LinearMixedModelResults", *, ddf: str | None = "satterthwaite", title: str | None = None, profile: bool = False,
    why: Any = False,
) -> str:
    """The whole report as one HTML string; ``profile=True`` adds profile intervals and zeta plots.

    ``why=True`` (or a dict of ``compare_naive`` arguments, or a ``NaiveComparison``) opens the report with the
    naive analyses beside the model (:mod:`.why`).
    """
    from .. import plots
    from ..inference.partition import icc

    title = title or f"Linear mixed model: {r.formula}"
    coef = r.coef_table(ddf)
    method = r.ddf_calculator(ddf).method if ddf else None
    vc = r.varcorr.rename(columns={"grp": "group", "var1": "term", "var2": "with", "vcov": "variance / cov", "sdcor": "SD / corr"})
    # ICC and the variance partition assume residuals σ²I; a residual structure reports its own covariance
    icc_html = f"<h3>Intraclass correlation</h3>{frame_html(icc(r))}" if r.iid_residuals and r.terms else ""
    figs = [figure_html(plots.residuals_vs_fitted(r), "Residuals against fitted values"),
            figure_html(plots.qq_residuals(r), "Normal QQ plot of the residuals")]
    if r.terms:
        figs.insert(0, figure_html(plots.caterpillar(r), "Conditional modes of the random effects with 95% intervals"))
        figs.append(figure_html(plots.qq_ranef(r), "Normal QQ plots of the conditional modes"))
        if r.iid_residuals:
            figs.append(figure_html(plots.variance_partition(r), "Share of variance by grouping factor and residual"))
    time_var = _time_variable(r)
    if time_var is not None:
        figs.insert(1, figure_html(plots.trajectories(r, time_var), f"Observed values, subject-specific and population fits over {time_var}"))
    profile_html = ""
    if profile:
        intervals, prof = r.profile(progress=False)
        profile_html = (
            "<h2>Profile-likelihood confidence intervals</h2>"
            + frame_html(intervals)
            + figure_html(plots.zeta_plot(prof), "Profile zeta: signed square root of the deviance change, with ±1.96 lines")
        )
    why_html = ""
    if why is not False and why is not None:
        from ..naive import NaiveComparison
        from .why import why_section

        why_html = why_section(why if isinstance(why, NaiveComparison) else r.compare_naive(**(why if isinstance(why, dict) else {})))
    crit = (
        f"REML criterion {r.objective:.2f}"
        if r.reml
        else f"logLik {r.loglik:.2f}, AIC {r.aic:.2f}, BIC {r.bic:.2f}"
    )
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    from .. import __version__

    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        f"<p class='muted'>mixedmodels {__version__}; {stamp}; data: {_esc(r.data_name or 'data frame')}</p>",
        why_html,
        f"<h2>Model</h2><p><code>{_esc(r.formula)}</code> fitted by {r.method}; {crit}; σ = {_fmt(r.sigma)}.</p>",
        f"<h2>Data</h2>{_data_summary(r)}",
        "<h2>Fixed effects</h2>",
        f"<p class='muted'>t-tests with {method}'s denominator degrees of freedom.</p>" if method else "",
        frame_html(coef),
        f"<h2>Random effects</h2>{frame_html(vc, index=False)}" if r.terms else "",
        icc_html,
        _residual_section(r),
        profile_html,
        f"<h2>Fit diagnostics</h2>{_diagnostics(r)}",
        "<h2>Plots</h2>",
        *figs,
        "</body></html>",
    ]
    return "\n".join(parts)


def _residual_section(r: "LinearMixedModelResults") -> str:
    """The residual structure (parameters, covariance and correlation over all times) and variance function."""
    out = ""
    s = r.residual_structure
    if s is not None:
        binding = r.residual_binding
        params = pd.DataFrame(s.natural_items(r.rho, r.sigma), columns=["parameter", "estimate"]).set_index("parameter")
        out += (f"<h2>Residual covariance</h2><p>{_esc(str(binding.spec))} ({_esc(s.description)}): "
                f"{len(binding.subject_levels)} subjects, {len(binding.patterns)} visit patterns.</p>" + frame_html(params))
        if s.discrete:
            for g in range(s.n_groups):
                cov = s.covariance(r.rho, r.sigma, group=g)
                sd = np.sqrt(np.diag(cov.to_numpy()))
                corr = cov / np.outer(sd, sd)
                label = "" if s.groups is None else f" ({_esc(s.group_name)} = {_esc(s.groups[g])})"
                out += f"<h3>Covariance{label}</h3>{frame_html(cov)}<h3>Correlation{label}</h3>{frame_html(corr)}"
    v = r.variance_function
    if v is not None:
        params = pd.DataFrame(v.natural(r.delta), columns=["parameter", "estimate"]).set_index("parameter")
        out += f"<h2>Variance function</h2><p>{_esc(str(v.spec))}</p>" + frame_html(params)
    return out


def write_report(r: "LinearMixedModelResults", path: str, **kwargs: Any) -> str:
    """Write :func:`render_report` to ``path``; returns the path."""
    text = render_report(r, **kwargs)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path
