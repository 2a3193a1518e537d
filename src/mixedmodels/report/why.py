"""The "Why a mixed model?" section of the HTML report: the naive analyses beside the fit, and a sentence on each.

``fit.report(path, why=True)`` (or ``why={"time": "visit"}``, or a :class:`~mixedmodels.naive.NaiveComparison`)
puts this section first; ``mixedmodels why DATA --formula F --report FILE`` writes the same report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..naive import NaiveComparison

TITLES = {
    "ols": "Least squares ignoring the subjects",
    "ttest_last": "t-test at the last time point",
    "ttest_completers": "t-test among completers",
    "ttest_locf": "t-test on the last observation carried forward",
    "slopes": "Per-subject slopes",
    "rm_anova": "Repeated-measures ANOVA (complete cases)",
    "correlation": "Correlation across time points",
}


def lag_figure(c: "NaiveComparison") -> "Figure":
    """Mean correlation by lag: observed, implied by the fit, and a random intercept's constant."""
    from ..plots._common import new_figure

    lags = c.correlation["by_lag"]
    fig = new_figure(None, (5.5, 3.2))
    ax = fig.add_subplot()
    styles = {"empirical": ("o-", "observed"), "implied": ("s-", "fitted model"), "random_intercept": ("--", "random intercept")}
    for col, (style, label) in styles.items():
        if col in lags and np.isfinite(lags[col]).any():
            ax.plot(lags.index, lags[col], style, label=label)
    ax.set_xlabel(f"lag (levels of {c.layout.time} apart)")
    ax.set_ylabel("mean correlation")
    ax.set_ylim(min(0.0, float(np.nanmin(lags.to_numpy())) - 0.05), 1.0)
    ax.legend(frameon=False)
    return fig


def _tests_frame(c: "NaiveComparison", tests: list, mixed: dict | None) -> pd.DataFrame:
    rows = []
    for name, gt in tests:
        one = gt.extra.get("one_sample")
        for label, t in (("Welch", gt.welch), ("pooled", gt.pooled), ("paired", gt.paired), ("one-sample", one)):
            if t is None:
                continue
            se = t.estimate / t.statistic if t.estimate is not None and t.statistic else np.nan
            rows.append({"analysis": name, "test": label, "n": "/".join(map(str, gt.n_per_group.values())),
                         "estimate": t.estimate if t.estimate is not None else np.nan, "SE": se, "statistic": t.statistic,
                         "df": t.df if t.df2 is None else f"{t.df:.3g}, {t.df2:.4g}", "p": t.p_value})
    if mixed is not None:
        rows.append({"analysis": "mixed model, all rows", "test": "Satterthwaite", "n": str(c.summary["n_observations"]),
                     "estimate": mixed.get("estimate", np.nan), "SE": mixed.get("std_error", np.nan), "statistic": mixed["statistic"],
                     "df": mixed["df"] if "df" in mixed else f"{mixed['num_df']:.3g}, {mixed['den_df']:.4g}", "p": mixed["p_value"]})
    return pd.DataFrame(rows)


def why_section(c: "NaiveComparison") -> str:
    """The section as an HTML fragment (``<h2>`` and what follows)."""
    from .html import _esc, figure_html, frame_html

    s, lay = c.summary, c.layout
    sentences = c.sentences()
    items = "".join(f"<li><b>{_esc(TITLES[k])}.</b> {_esc(v)}</li>" for k, v in sentences.items())
    notes = "".join(f"<li class='muted'>{_esc(n)}</li>" for n in lay.notes)
    ols = c.ols[["estimate", "std_error", "mixed_estimate", "mixed_std_error", "se_ratio"]].rename(
        columns={"std_error": "SE (OLS)", "mixed_estimate": "mixed estimate", "mixed_std_error": "SE (mixed)", "se_ratio": "SE ratio"})
    a = c.rm_anova
    rm = frame_html(a.effects[["effect", "F", "num_df", "den_df", "p_value"]], index=False) if a.available else ""
    sph = frame_html(a.sphericity, index=False) if a.available and a.sphericity["gg_epsilon"].notna().any() else ""
    rm_notes = "".join(f"<li class='muted'>{_esc(n)}</li>" for n in a.notes if n not in lay.notes)
    cor = c.correlation
    implied = ""
    if cor["implied"] is not None:
        src = f"subject {cor['implied_subject']}" if cor["implied_subject"] else "averaged over subjects"
        implied = f"<h4>Implied by the fitted model ({_esc(src)})</h4>" + frame_html(cor["implied"], digits=2)
    parts = [
        "<h2>Why a mixed model? The naive analyses of these data</h2>",
        (f"<p>{s['n_observations']} rows of {s['n_subjects']} subjects (<code>{_esc(lay.subject)}</code>) at "
         f"{lay.n_times} time points (<code>{_esc(lay.time)}</code>); {s['n_complete_subjects']} subjects observed at every one.</p>"),
        f"<ul>{items}</ul>",
        f"<ul>{notes}</ul>" if notes else "",
        f"<h3>{TITLES['ols']}</h3>", frame_html(ols),
        (f"<p class='muted'>Design effect 1 + (m − 1)·ICC = {c.design_effect['value']:.3g} "
         f"(m = {c.design_effect['m']:.3g} rows per subject, ICC = {c.design_effect['icc']:.3g} from a random-intercept model).</p>"),
        "<h3>t-tests at the last time point</h3>",
        frame_html(_tests_frame(c, [("at the last time", c.ttest_last), ("completers", c.ttest_completers),
                                    ("last observation carried forward", c.ttest_locf)], c.ttest_last.mixed), index=False),
        f"<h3>{TITLES['slopes']} ({_esc(c.slopes.extra['time_unit'])})</h3>",
        frame_html(_tests_frame(c, [("slopes", c.slopes)], c.slopes.mixed), index=False),
        f"<h3>{TITLES['rm_anova']}</h3>",
        f"<p>{a.n_subjects_used} subjects used, {a.n_subjects_dropped} dropped ({a.n_rows_dropped} rows).</p>", rm, sph,
        f"<ul>{rm_notes}</ul>" if rm_notes else "",
        f"<h3>{TITLES['correlation']}</h3>",
        "<h4>Observed (least-squares residuals, pairwise complete)</h4>", frame_html(cor["empirical"], digits=2), implied,
        figure_html(lag_figure(c), "Mean correlation by lag: a random intercept (compound symmetry) is flat"),
    ]
    return "\n".join(p for p in parts if p)


def render_why_report(c: "NaiveComparison", title: str | None = None) -> str:
    """A self-contained HTML page: the model's coefficients and the naive analyses (any fit, marginal models too)."""
    from datetime import datetime, timezone

    from .. import __version__
    from .html import CSS, _esc, frame_html

    fit = c.fit
    title = title or f"Why a mixed model: {fit.formula}"
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        f"<p class='muted'>mixedmodels {__version__}; {stamp}; data: {_esc(fit.data_name or 'data frame')}</p>",
        why_section(c),
        f"<h2>The mixed model</h2><p><code>{_esc(fit.formula)}</code> fitted by {fit.method}.</p>",
        frame_html(fit.coef_table()),
        "</body></html>",
    ]
    return "\n".join(parts)


def write_why_report(c: "NaiveComparison", path: str) -> str:
    """Write :func:`render_why_report` to ``path``; returns the path."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(render_why_report(c))
    return path
