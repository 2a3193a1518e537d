"""What a :class:`~.compare.NaiveComparison` prints: sentences, the text table and the JSON object."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..report.format import table
from ..report.serialize import json_number
from .classical import Test

if TYPE_CHECKING:
    from .compare import GroupTest, NaiveComparison


def g(x: float | None, digits: int = 3) -> str:
    """A number with ``digits`` significant digits (no exponent for everyday magnitudes)."""
    if x is None or not math.isfinite(x):
        return "NA"
    if x == 0:
        return "0"
    mag = math.floor(math.log10(abs(x)))
    if mag >= 6 or mag < -4:
        return f"{x:.{digits - 1}e}"
    return f"{x:.{max(digits - 1 - mag, 0)}f}"


def dfs(x: float | None) -> str:
    """Degrees of freedom: whole numbers as integers, others to three significant digits."""
    if x is not None and math.isfinite(x) and float(x).is_integer():
        return str(int(x))
    return g(x)


def pv(p: float | None) -> str:
    """A p-value: two significant digits (``9.0e-21`` below 0.0001)."""
    if p is None or not math.isfinite(p):
        return "NA"
    if p < 1e-300:
        return "< 1e-300"
    return f"{p:.1e}" if p < 1e-4 else g(p, 2)


def _peq(p: float | None) -> str:
    s = pv(p)
    return f"p {s}" if s.startswith("<") else f"p = {s}"


def _lag_ends(c: "NaiveComparison", column: str) -> tuple[float, float]:
    lags = c.correlation["by_lag"]
    return float(lags[column].iloc[0]), float(lags[column].iloc[-1])


def _ols_sentence(c: "NaiveComparison") -> str:
    t = c.ols
    d = c.design_effect
    n, s = c.summary["n_observations"], c.summary["n_subjects"]
    ratio = t["se_ratio"]
    hi, lo = ratio.idxmax(), ratio.idxmin()
    wrong = []
    if ratio[hi] > 1.05:
        wrong.append(f"{g(ratio[hi])} times too small for {hi} ({g(t.at[hi, 'std_error'])} against the mixed model's "
                     f"{g(t.at[hi, 'mixed_std_error'])}), overstating the evidence,")
    if ratio[lo] < 1 / 1.05:
        wrong.append(f"{g(1 / ratio[lo])} times too large for {lo} ({g(t.at[lo, 'std_error'])} against "
                     f"{g(t.at[lo, 'mixed_std_error'])})")
    what = ("its SEs are " + " and ".join(wrong)).rstrip(",") if wrong else "its SEs happen to be within 5% of the mixed model's here"
    m = f"{d['m']:.3g} rows per subject" + ("" if d["balanced"] else f" on average ({d['min_size']}–{d['max_size']})")
    return (f"OLS treats the {n} rows of {s} subjects as independent: {what}; with {m} and ICC {g(d['icc'])} the design "
            f"effect 1 + (m − 1)·ICC is {g(d['value'])}, about {g(d['effective_n'])} independent observations' worth, not {n}.")


def _est(x: Any) -> str:
    """``estimate (SE se, p = p)`` of a naive test or a mixed-model answer; an F-test as ``F = f (p = p)``."""
    if x is None:
        return "no estimate"
    if isinstance(x, Test):
        if x.estimate is None:
            return f"F = {g(x.statistic)} ({_peq(x.p_value)})"
        se = x.estimate / x.statistic if x.statistic else math.nan
        return f"{g(x.estimate)} (SE {g(se)}, {_peq(x.p_value)})"
    if "estimate" in x:
        return f"{g(x['estimate'])} (SE {g(x['std_error'])}, {_peq(x['p_value'])})"
    return f"F = {g(x['statistic'])} ({_peq(x['p_value'])})"


def _se(t: Test | None) -> str:
    return g(t.estimate / t.statistic) if t is not None and t.estimate is not None and t.statistic else "NA"


def _ttest_sentences(c: "NaiveComparison") -> dict[str, str]:
    lay, s = c.layout, c.summary
    n, ns = s["n_observations"], s["n_subjects"]
    last, first = lay.labels[-1], lay.labels[0]
    tl, tc, tf = c.ttest_last, c.ttest_completers, c.ttest_locf
    used = sum(tl.n_per_group.values())
    out = {}
    if tl.welch is None:
        out["ttest_last"] = f"The t-test at {lay.time} = {last} cannot be computed here ({tl.note})."
    elif tl.factor is not None:
        comp = f"t-test of {tl.groups[-1]} − {tl.groups[0]}" if len(tl.groups) == 2 else f"one-way ANOVA of {tl.factor}"
        missing = f" and the {ns - used} subjects not observed there" if ns > used else ""
        out["ttest_last"] = (
            f"The {comp} at {lay.time} = {last} uses {used} of the {n} rows, ignoring every earlier visit{missing}: "
            f"Welch gives {_est(tl.welch)}, while the mixed model, from all the rows, gives {_est(tl.mixed)}."
        )
    else:
        m = tl.mixed
        pair = f", a paired test of the {tl.extra['n_paired']} subjects seen at both {_se(tl.paired)}" if tl.paired else ""
        mixed = f" and the mixed model, from all the rows, {g(m['std_error'])}" if m is not None and "std_error" in m else ""
        est = [g(tl.welch.estimate)] + ([g(tl.paired.estimate)] if tl.paired else []) + ([g(m["estimate"])] if mixed else [])
        out["ttest_last"] = (
            f"The two-sample t-test of {lay.time} = {last} against {lay.time} = {first} uses {used} of the {n} rows and treats a "
            f"subject's two measurements as independent: its SE is {_se(tl.welch)} (Welch){pair}{mixed} (differences {', '.join(est)})."
        )
    nc = tc.extra["n_subjects"]
    at_last = tf.extra["last_observed_at"].get(last, 0)
    if nc == ns:
        out["ttest_completers"] = f"All {ns} subjects are observed at every time point, so the completers' t-test is the one above."
    elif nc == at_last:
        out["ttest_completers"] = (f"The {nc} subjects observed at {lay.time} = {last} are exactly the completers, so the "
                                   "completers' test is the one above, with its reliance on dropping out having nothing to do with the outcome.")
    else:
        out["ttest_completers"] = (
            f"Restricted to the {nc} of {ns} subjects observed at every time point, the test at {lay.time} = {last} gives "
            f"{_est(tc.welch)} rather than {_est(tl.welch)}, and the mixed model {_est(tc.mixed)}: completers are a fair "
            "sample only if dropping out has nothing to do with the outcome."
        )
    early = ns - tf.extra["last_observed_at"].get(last, 0)
    if early == 0:
        out["ttest_locf"] = "Every subject is observed at the last time point, so carrying the last observation forward changes nothing here."
    else:
        out["ttest_locf"] = (
            f"Carrying each subject's last observation forward counts {early} of the {ns} subjects' values from before "
            f"{lay.time} = {last} as if measured there: {_est(tf.welch)}, while the mixed model at {lay.time} = {last} gives {_est(tf.mixed)}."
        )
    return out


def _slopes_sentence(c: "NaiveComparison") -> str:
    sl, lay = c.slopes, c.layout
    e = sl.extra
    naive = _est(e.get("one_sample") if sl.factor is None else sl.welch)
    if sl.factor is None:
        what = "mean slope"
    else:
        f_test = sl.welch is not None and sl.welch.estimate is None
        what = f"the one-way ANOVA of the slopes by {sl.factor} gives" if f_test else f"difference in slope ({sl.groups[-1]} − {sl.groups[0]})"
    if sl.mixed is None:
        return (f"The per-subject slopes ({naive}) have no counterpart in the mixed model, which has no {lay.time} term "
                "in its fixed effects.")
    if e["n_points_min"] == lay.n_times and not e["n_subjects_dropped"]:
        return (f"With every subject at all {lay.n_times} time points the per-subject slopes agree with the mixed model: "
                f"{what} {naive} against {_est(sl.mixed)}; it is missing visits that would make them weight a slope from two "
                f"points like one from {lay.n_times}.")
    drop = f" and drop {e['n_subjects_dropped']} subject(s) with fewer than two" if e["n_subjects_dropped"] else ""
    return (f"Per-subject slopes weight a slope from {e['n_points_min']} time points like one from {e['n_points_max']}{drop}: "
            f"{what} {naive}{'' if naive.startswith('F') else ' ' + e['time_unit']}, where the mixed model gives {_est(sl.mixed)}.")


def _rm_sentence(c: "NaiveComparison") -> str:
    a, s, lay = c.rm_anova, c.summary, c.layout
    n, ns = s["n_observations"], s["n_subjects"]
    if not a.available:
        return (f"RM-ANOVA needs subjects observed at every time point and has {a.n_subjects_used} of {ns} here: "
                f"it cannot be computed, while the mixed model uses all {n} rows.")
    kept = f"keeps {a.n_subjects_used} of {ns} subjects ({a.n_rows_dropped} of {n} rows dropped)" if a.n_subjects_dropped else f"uses all {ns} subjects"
    row = a.effects[a.effects["effect"] == lay.time].iloc[0]
    main = f"F for {lay.time} = {g(row['F'])} ({_peq(row['p_value'])})"
    sp = a.sphericity[a.sphericity["effect"] == lay.time]
    if sp.empty:
        return f"RM-ANOVA {kept}: {main}."
    sp = sp.iloc[0]
    if not math.isfinite(sp["mauchly_W"]):
        e1, ek = _lag_ends(c, "empirical")
        return (f"RM-ANOVA {kept}, too few to test sphericity, and its {main} assumes the same correlation at every lag, "
                f"where the observed correlation goes from {g(e1, 2)} at lag 1 to {g(ek, 2)} at lag {lay.n_times - 1}.")
    verdict = "rejects" if sp["mauchly_p"] < 0.05 else "does not reject"
    return (f"RM-ANOVA {kept} and assumes sphericity, which Mauchly's test {verdict} (W = {g(sp['mauchly_W'])}, {_peq(sp['mauchly_p'])}); "
            f"Greenhouse–Geisser's ε = {g(sp['gg_epsilon'])} (1 under sphericity) turns its {main} into {_peq(sp['p_gg'])}.")


def _correlation_sentence(c: "NaiveComparison") -> str:
    lay = c.layout
    e1, ek = _lag_ends(c, "empirical")
    verb = "falls" if ek < e1 else "goes"
    out = f"The observed correlation of a subject's residuals {verb} from {g(e1, 2)} at lag 1 to {g(ek, 2)} at lag {lay.n_times - 1}"
    if c.correlation["random_intercept"] is not None:
        r1, _ = _lag_ends(c, "random_intercept")
        out += f"; a random intercept (compound symmetry, as RM-ANOVA assumes) implies {g(r1, 2)} at every lag"
    if c.correlation["implied"] is not None:
        i1, ik = _lag_ends(c, "implied")
        out += f", the fitted model {g(i1, 2)} to {g(ik, 2)}"
    return out + "."


def sentences(c: "NaiveComparison") -> dict[str, str]:
    """One sentence per analysis, keyed as the JSON: ``ols``, ``ttest_last``, ``ttest_completers``, ``ttest_locf``,
    ``slopes``, ``rm_anova``, ``correlation``."""
    out = {"ols": _ols_sentence(c)}
    out.update(_ttest_sentences(c))
    out["slopes"] = _slopes_sentence(c)
    out["rm_anova"] = _rm_sentence(c)
    out["correlation"] = _correlation_sentence(c)
    return out


# ---------------------------------------------------------------------- JSON
def _matrix(m: pd.DataFrame | None) -> list | None:
    return None if m is None else [[json_number(v) for v in row] for row in m.to_numpy()]


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: (json_number(v) if not isinstance(v, str) else v) for k, v in row.items()} for row in frame.to_dict("records")]


def to_dict(c: "NaiveComparison") -> dict[str, Any]:
    """The ``why --json`` object (see :meth:`.NaiveComparison.to_dict`)."""
    a = c.rm_anova
    t = c.ols
    coefs = [
        {"term": str(term), "estimate": json_number(r["estimate"]), "std_error": json_number(r["std_error"]),
         "t_value": json_number(r["t"]), "p_value": json_number(r["p_value"]), "mixed_estimate": json_number(r["mixed_estimate"]),
         "mixed_std_error": json_number(r["mixed_std_error"]), "se_ratio": json_number(r["se_ratio"])}
        for term, r in t.iterrows()
    ]
    ttest = {}
    for key in ("ttest_last", "ttest_completers", "ttest_locf"):
        gt = getattr(c, key)
        ttest[key] = {"time": c.layout.labels[-1] if key != "ttest_locf" else "last observed", **gt.to_dict()}
    cor = c.correlation
    return {
        "data": c.summary,
        "formula": c.fit.formula,
        "ols": {"coefficients": coefs, "sigma": json_number(c._ols.sigma), "df_residual": c._ols.df_residual,
                "design_effect": {k: (json_number(v) if isinstance(v, float) else v) for k, v in c.design_effect.items()}},
        **ttest,
        "slopes": c.slopes.to_dict(),
        "rm_anova": {"n_subjects_used": a.n_subjects_used, "n_subjects_dropped": a.n_subjects_dropped, "n_rows_dropped": a.n_rows_dropped,
                     "between": list(a.between), "within": c.layout.time,
                     "effects": _records(a.effects[["effect", "F", "num_df", "den_df", "p_value"]]),
                     "sphericity": _records(a.sphericity), "notes": list(a.notes)},
        "correlation": {"times": cor["times"], "empirical": _matrix(cor["empirical"]), "implied": _matrix(cor["implied"]),
                        "random_intercept": _matrix(cor["random_intercept"]), "n_pairs": cor["n_pairs"].to_numpy().tolist(),
                        "by_lag": [{"lag": int(lag), **{k: json_number(v) for k, v in row.items()}} for lag, row in cor["by_lag"].iterrows()],
                        "implied_subject": cor["implied_subject"], "notes": cor["notes"]},
        "sentences": sentences(c),
    }


# ---------------------------------------------------------------------- text
def _test_rows(name: str, gt: "GroupTest") -> list[list[str]]:
    rows = []
    n = "/".join(str(v) for v in gt.n_per_group.values())
    for label, t in (("Welch", gt.welch), ("pooled", gt.pooled), ("paired", gt.paired)):
        if t is None:
            continue
        df = dfs(t.df) if t.df2 is None else f"{dfs(t.df)}, {dfs(t.df2)}"
        est = g(t.estimate) if t.estimate is not None else ""
        se = g(t.estimate / t.statistic) if t.estimate is not None and t.statistic else ""
        rows.append([name, label, n if label != "paired" else str(gt.extra.get("n_paired", "")), est, se, g(t.statistic), df, pv(t.p_value)])
    if gt.welch is None and gt.note:
        rows.append([name, "—", n, "", "", "", "", gt.note])
    return rows


def _mixed_row(name: str, m: dict | None, n: int) -> list[str]:
    if m is None:
        return [name, "mixed", str(n), "", "", "", "", "not estimable"]
    if "estimate" in m:
        return [name, "mixed", str(n), g(m["estimate"]), g(m["std_error"]), g(m["statistic"]), dfs(m["df"]), pv(m["p_value"])]
    return [name, "mixed", str(n), "", "", g(m["statistic"]), f"{dfs(m['num_df'])}, {dfs(m['den_df'])}", pv(m["p_value"])]


def _matrix_text(m: pd.DataFrame) -> str:
    rows = [[""] + [str(x) for x in m.columns]]
    rows += [[str(i)] + [f"{v:.2f}" if math.isfinite(v) else "." for v in row] for i, row in zip(m.index, m.to_numpy())]
    return table(rows, ["l"] + ["r"] * m.shape[1], indent=2)


def format_text(c: "NaiveComparison") -> str:
    """The text table of every analysis, then the sentences."""
    s, lay, d = c.summary, c.layout, c.design_effect
    times = f"{lay.labels[0]} … {lay.labels[-1]}" if lay.n_times > 3 else ", ".join(lay.labels)
    between = f"; between subjects: {', '.join(lay.between)}" if lay.between else ""
    out = [f"Naive analyses beside the mixed model {c.fit.formula}",
           (f"{s['n_observations']} rows, {s['n_subjects']} subjects ({lay.subject}), {lay.n_times} time points ({lay.time}: {times}), "
            f"{s['n_complete_subjects']} subjects observed at every one{between}")]
    out += [f"note: {x}" for x in lay.notes]
    rows = [["term", "estimate", "SE (OLS)", "mixed est.", "SE (mixed)", "SE ratio"]]
    rows += [[str(t), g(r["estimate"], 4), g(r["std_error"]), g(r["mixed_estimate"], 4), g(r["mixed_std_error"]), g(r["se_ratio"])]
             for t, r in c.ols.iterrows()]
    out += ["", "1. Least squares ignoring the subjects (lm)", table(rows, ["l"] + ["r"] * 5, indent=2),
            f"  design effect 1 + (m − 1)·ICC = 1 + ({d['m']:.3g} − 1)·{g(d['icc'])} = {g(d['value'])}"
            + ("" if d["balanced"] else f" (m is the mean of {d['min_size']}–{d['max_size']} rows per subject)")]
    tl = c.ttest_last
    what = (f"{tl.groups[-1]} − {tl.groups[0]}" if len(tl.groups) == 2 else f"levels of {tl.factor}") if tl.factor else f"{lay.time} {lay.labels[-1]} − {lay.labels[0]}"
    rows = [["analysis", "test", "n", "estimate", "SE", "statistic", "df", "p"]]
    rows += _test_rows(f"at {lay.time} = {lay.labels[-1]}", tl) + _test_rows("completers", c.ttest_completers)
    rows += _test_rows("last observed", c.ttest_locf) + [_mixed_row("all rows", tl.mixed, s["n_observations"])]
    out += ["", f"2. t-tests at the last time point ({what}; t.test)", table(rows, ["l", "l"] + ["r"] * 6, indent=2)]
    sl = c.slopes
    rows = [["analysis", "test", "n", "estimate", "SE", "statistic", "df", "p"]]
    if sl.factor is None and sl.extra.get("one_sample") is not None:
        t = sl.extra["one_sample"]
        rows.append(["mean slope", "one-sample", str(sl.extra["n_subjects_used"]), g(t.estimate), g(t.estimate / t.statistic) if t.statistic else "",
                     g(t.statistic), dfs(t.df), pv(t.p_value)])
    rows += _test_rows("slopes", sl) if sl.factor else []
    rows.append(_mixed_row("all rows", sl.mixed, s["n_observations"]))
    out += ["", f"3. Per-subject slopes {sl.extra['time_unit']} ({sl.extra['n_subjects_used']} subjects, {sl.extra['n_subjects_dropped']} dropped)",
            table(rows, ["l", "l"] + ["r"] * 6, indent=2)]
    a = c.rm_anova
    out += ["", (f"4. Repeated-measures ANOVA on complete cases (afex aov_ez): {a.n_subjects_used} subjects used, "
                 f"{a.n_subjects_dropped} dropped ({a.n_rows_dropped} rows)")]
    if a.available:
        rows = [["effect", "F", "num df", "den df", "p"]] + [[r["effect"], g(r["F"], 4), dfs(r["num_df"]), dfs(r["den_df"]), pv(r["p_value"])]
                                                             for _, r in a.effects.iterrows()]
        out.append(table(rows, ["l", "r", "r", "r", "r"], indent=2))
        if len(a.sphericity) and a.sphericity["gg_epsilon"].notna().any():
            rows = [["effect", "Mauchly W", "p", "GG eps", "p[GG]", "HF eps", "p[HF]"]]
            rows += [[r["effect"], g(r["mauchly_W"]), pv(r["mauchly_p"]), g(r["gg_epsilon"]), pv(r["p_gg"]), g(r["hf_epsilon"]), pv(r["p_hf"])]
                     for _, r in a.sphericity.iterrows()]
            out.append(table(rows, ["l"] + ["r"] * 6, indent=2))
    out += [f"  note: {x}" for x in a.notes if x not in lay.notes]
    cor = c.correlation
    out += ["", "5. Correlation across time points", "  observed (least-squares residuals, pairwise complete):", _matrix_text(cor["empirical"])]
    if cor["implied"] is not None:
        src = f"subject {cor['implied_subject']}" if cor["implied_subject"] else "averaged over subjects"
        out += [f"  implied by the fitted model ({src}):", _matrix_text(cor["implied"])]
    lags = cor["by_lag"]
    rows = [["lag", *lags.columns]] + [[str(lag), *[g(v, 2) for v in row]] for lag, row in lags.iterrows()]
    out += ["  mean correlation by lag:", table(rows, ["r"] * (1 + lags.shape[1]), indent=2)]
    out += [f"  note: {x}" for x in cor["notes"]]
    out += ["", "What each naive analysis gets wrong here:"] + [f"- {v}" for v in sentences(c).values()]
    return "\n".join(out) + "\n"
