"""Naive analyses beside the mixed model (mixedmodels.naive) against R: stats (lm, t.test, oneway.test), afex 1.2 / car 3.1
(RM-ANOVA, Mauchly, Greenhouse–Geisser, Huynh–Feldt), lme4/lmerTest/mmrm (implied correlation, ICC, the mixed model's
answers). References: tests/reference/why.R → why.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.exceptions import DataError
from mixedmodels.naive import compare_naive
from mixedmodels.naive.layout import resolve_layout
from mixedmodels.naive.rmanova import rm_anova

HERE = Path(__file__).parent
REF = json.loads((HERE / "reference" / "why.json").read_text())
DATA = HERE / "reference" / "data"
CLOSED = 1e-6  # closed-form statistics
FITTED = 1e-4  # anything read off a fitted mixed model


def _fit(name: str):
    if name == "sleepstudy":
        return mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    if name == "sleep_missing":
        return mm.lmer("Reaction ~ Days + (Days | Subject)", pd.read_csv(DATA / "sleepstudy_missing20.csv"))
    if name == "trial":
        return mm.lmer("y ~ arm * visit + base", pd.read_csv(DATA / "residual_trial.csv"), residual="us(visit | id)")
    return mm.lmer("y ~ dose * week + sex + (week | id)", pd.read_csv(DATA / "why_two_between.csv"))


@pytest.fixture(scope="module", params=["sleepstudy", "sleep_missing", "trial", "two_between"])
def case(request):
    return request.param, compare_naive(_fit(request.param)), REF[request.param]


def _close(actual, expected, rtol, atol=0.0):
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), rtol=rtol, atol=atol)


def _check_test(t, ref, rtol=CLOSED):
    _close(t.statistic, ref["statistic"], rtol)
    if "df" in ref:
        _close(t.df, ref["df"], rtol)
    else:
        _close([t.df, t.df2], [ref["num_df"], ref["den_df"]], rtol)
    _close(t.p_value, ref["p_value"], rtol)


def test_ols(case):
    _, c, ref = case
    _close(c.ols["estimate"], ref["ols"]["estimate"], CLOSED)
    _close(c.ols["std_error"], ref["ols"]["std_error"], CLOSED)
    _close(c.ols["mixed_std_error"], ref["mixed_se"], FITTED)


def test_design_effect(case):
    _, c, ref = case
    _close(c.design_effect["icc"], ref["icc"], FITTED)
    m = len(c.layout.long) / ref["n_subjects"]
    _close(c.design_effect["value"], 1 + (m - 1) * ref["icc"], FITTED)


@pytest.mark.parametrize("which", ["ttest_last", "ttest_completers", "ttest_locf"])
def test_ttests(case, which):
    _, c, ref = case
    t, r = getattr(c, which), ref[which]
    assert list(t.n_per_group.values()) == r["n"]
    _check_test(t.welch, r["welch"])
    _check_test(t.pooled, r["pooled"])
    if "estimate" in r["welch"]:
        _close(t.welch.estimate, r["welch"]["estimate"], CLOSED)
    if "paired" in r:
        _check_test(t.paired, r["paired"])
        assert t.extra["n_paired"] == r["paired"]["n"]


def test_slopes(case):
    _, c, ref = case
    s, r = c.slopes, ref["slopes"]
    assert s.extra["n_subjects_used"] == r["n_used"] and s.extra["n_subjects_dropped"] == r["n_dropped"]
    if "one_sample" in r:
        _check_test(s.extra["one_sample"], r["one_sample"])
        _close(s.extra["one_sample"].estimate, r["one_sample"]["estimate"], CLOSED)
    else:
        _check_test(s.welch, r["welch"])
        _check_test(s.pooled, r["pooled"])


def test_mixed_counterparts(case):
    # a small p-value magnifies the fit's own tolerance (F to 1e-5 moves p = 1.5e-5 by 1.4e-4): p on the log scale
    _, c, ref = case
    for got, r in ((c.ttest_last.mixed, ref["mixed_last"]), (c.slopes.mixed, ref["mixed_slope"])):
        for key, value in r.items():
            if key == "p_value":
                _close(np.log(got[key]), np.log(value), FITTED)
            else:
                _close(got[key], value, FITTED)


def test_rm_anova(case):
    _, c, ref = case
    a, r = c.rm_anova, ref["rm_anova"]
    assert a.n_subjects_used == r["n_subjects_used"] and a.n_subjects_dropped == r["n_subjects_dropped"]
    eff = pd.DataFrame({k: np.atleast_1d(v) for k, v in r["effects"].items()})
    assert list(a.effects["effect"]) == list(eff["effect"])
    for col in ("F", "num_df", "den_df", "p_value"):
        _close(a.effects[col], eff[col], CLOSED)
    if r["sphericity"] is None:
        assert a.sphericity["mauchly_W"].isna().all()
        assert any("sphericity" in n for n in a.notes)
    else:
        sph = pd.DataFrame({k: np.atleast_1d(v) for k, v in r["sphericity"].items()})
        assert list(a.sphericity["effect"]) == list(sph["effect"])
        for col in ("mauchly_W", "mauchly_p", "gg_epsilon", "p_gg", "hf_epsilon", "p_hf"):
            _close(a.sphericity[col], sph[col], CLOSED)


def test_correlations(case):
    _, c, ref = case
    emp = np.array(ref["empirical"], dtype=float)
    _close(c.correlation["empirical"].to_numpy(), emp, CLOSED)
    _close(c.correlation["implied"].to_numpy(), np.array(ref["implied"], dtype=float), FITTED)
    off = c.correlation["random_intercept"].to_numpy()[~np.eye(len(emp), dtype=bool)]
    _close(off, ref["icc"], FITTED)


def test_json_keys_and_values(case):
    _, c, ref = case
    d = json.loads(json.dumps(c.to_dict(), allow_nan=False))
    assert {"term", "estimate", "std_error"} <= set(d["ols"]["coefficients"][0])
    last = d["ttest_last"]
    assert last["time"] == ref["times"][-1]
    assert set(last["welch"]) >= ({"statistic", "df", "p_value"} if "df" in ref["ttest_last"]["welch"] else {"statistic", "num_df", "den_df", "p_value"})
    assert list(last["n_per_group"].values()) == ref["ttest_last"]["n"]
    rm = d["rm_anova"]
    assert {"n_subjects_used", "n_subjects_dropped", "effects", "sphericity"} <= set(rm)
    assert all({"effect", "F", "num_df", "den_df", "p_value"} <= set(e) for e in rm["effects"])
    assert all({"effect", "mauchly_W", "mauchly_p", "gg_epsilon", "p_gg", "hf_epsilon", "p_hf"} <= set(s) for s in rm["sphericity"])
    _close(np.array(d["correlation"]["empirical"], dtype=float), np.array(ref["empirical"], dtype=float), CLOSED)
    assert len(d["correlation"]["implied"]) == len(ref["times"])
    assert set(d["sentences"]) == {"ols", "ttest_last", "ttest_completers", "ttest_locf", "slopes", "rm_anova", "correlation"}


def test_layout_found_from_the_fit():
    lay = compare_naive(_fit("trial")).layout
    assert (lay.subject, lay.time, lay.between) == ("id", "visit", ("arm",))
    assert any("base" in n for n in lay.notes)
    lay = compare_naive(_fit("two_between")).layout
    assert (lay.subject, lay.time, lay.between) == ("id", "week", ("dose", "sex"))
    np.testing.assert_array_equal(lay.positions, [0, 2, 4, 8])


def test_sleepstudy_missing_file_is_the_documented_sample():
    ss = mm.datasets.load("sleepstudy")
    expected = ss.sample(frac=0.8, random_state=1).sort_index().reset_index(drop=True)
    got = pd.read_csv(DATA / "sleepstudy_missing20.csv")
    np.testing.assert_allclose(got["Reaction"], expected["Reaction"])
    np.testing.assert_array_equal(got["Subject"].astype(str), expected["Subject"].astype(str))


def test_one_row_per_subject_explains():
    ss = mm.datasets.load("sleepstudy")
    one = ss[ss["Days"] == 0]
    with pytest.raises(DataError, match="no repeated measures"):
        mm.why("Reaction ~ 1 + (1 | Subject)", one)


def test_rm_anova_without_complete_subject_says_so():
    ss = mm.datasets.load("sleepstudy")
    codes = ss["Subject"].cat.codes.to_numpy()
    gappy = ss[ss["Days"].to_numpy() != codes % 10]  # each subject misses one day, every pair of days is seen
    fit = mm.lmer("Reaction ~ Days + (Days | Subject)", gappy)
    a = rm_anova(resolve_layout(fit))
    assert a.n_subjects_used == 0 and not a.available and a.n_subjects_dropped == 18
    assert any("no subject is observed at every level of Days" in n for n in a.notes)
    c = compare_naive(fit)
    assert "cannot be computed" in c.sentences()["rm_anova"]
    assert c.correlation["implied_subject"] is None
    # assembled pair by pair over subjects; this model's covariance is every subject's, so it is the new-subject one
    whole = fit.implied_covariance(newdata=pd.DataFrame({"Days": np.arange(10.0)})).correlation.to_numpy()
    np.testing.assert_allclose(c.correlation["implied"].to_numpy(), whole, rtol=1e-12)
    d = c.to_dict()
    assert d["rm_anova"]["effects"] == [] and d["rm_anova"]["n_subjects_used"] == 0


def test_two_rows_at_one_time_is_an_error():
    ss = mm.datasets.load("sleepstudy")
    dup = pd.concat([ss, ss.iloc[[0]]], ignore_index=True)
    with pytest.raises(DataError, match="more than one row at Days = 0"):
        compare_naive(mm.lmer("Reaction ~ Days + (Days | Subject)", dup))


# ---------------------------------------------------------------------- command line and reports
def _cli(capsys, *argv):
    from mixedmodels.cli import main

    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_json_has_the_issue_names(capsys):
    code, out, _ = _cli(capsys, "why", str(DATA / "residual_trial.csv"), "--formula", "y ~ arm * visit + base",
                        "--residual", "us(visit | id)", "--subject", "id", "--time", "visit", "--json")
    assert code == 0
    d = json.loads(out)
    ref = REF["trial"]
    assert [c["term"] for c in d["ols"]["coefficients"]] == ref["ols"]["terms"]
    _close([c["std_error"] for c in d["ols"]["coefficients"]], ref["ols"]["std_error"], CLOSED)
    t = d["ttest_last"]
    assert t["time"] == "V5" and t["n_per_group"] == {"PBO": 33, "TRT": 42}
    for key in ("welch", "pooled"):
        _close([t[key]["statistic"], t[key]["df"], t[key]["p_value"]],
               [ref["ttest_last"][key][k] for k in ("statistic", "df", "p_value")], CLOSED)
    rm = d["rm_anova"]
    assert (rm["n_subjects_used"], rm["n_subjects_dropped"]) == (66, 34)
    assert [e["effect"] for e in rm["effects"]] == ["arm", "visit", "arm:visit"]
    _close([s["hf_epsilon"] for s in rm["sphericity"]], ref["rm_anova"]["sphericity"]["hf_epsilon"], CLOSED)
    assert np.array(d["correlation"]["empirical"]).shape == (5, 5) and np.array(d["correlation"]["implied"]).shape == (5, 5)
    assert "slopes" in d and "n_subjects_used" in d["slopes"]


def test_cli_text_and_report(capsys, tmp_path):
    html = tmp_path / "why.html"
    code, out, _ = _cli(capsys, "why", "sleepstudy", "--formula", "Reaction ~ Days + (Days | Subject)", "--report", str(html))
    assert code == 0 and "Repeated-measures ANOVA" in out and "What each naive analysis gets wrong here:" in out
    page = html.read_text()
    assert "Why a mixed model?" in page and "Mauchly" in page and "data:image/png;base64," in page


@pytest.mark.parametrize("argv, message", [
    (["why", "{one}", "--formula", "Reaction ~ 1 + (1 | Subject)"], "no repeated measures"),
    (["why", "sleepstudy", "--formula", "Reaction ~ Days"], "needs random effects"),
    (["why", "sleepstudy", "--formula", "Reaction ~ Days + (Days | Subject)", "--time", "nope"], "time column 'nope' is not in the data"),
])
def test_cli_errors_one_line_exit_2(capsys, tmp_path, argv, message):
    one = tmp_path / "one.csv"
    ss = mm.datasets.load("sleepstudy")
    ss[ss["Days"] == 0].to_csv(one, index=False)
    code, _, err = _cli(capsys, *[a.format(one=one) for a in argv])
    assert code == 2 and message in err and err.count("\n") == 1


def test_fit_report_with_why_section(tmp_path):
    fit = _fit("sleepstudy")
    path = fit.report(str(tmp_path / "r.html"), why=True)
    page = Path(path).read_text()
    assert page.index("Why a mixed model?") < page.index("<h2>Model</h2>")
    assert "Greenhouse" in page


def test_time_not_in_the_model_needs_data():
    ss = mm.datasets.load("sleepstudy")
    fit = mm.lmer("Reaction ~ 1 + (1 | Subject)", ss)
    with pytest.raises(mm.ModelError, match="no variable of the model varies within subjects"):
        compare_naive(fit)
    c = compare_naive(fit, time="Days", data=ss)
    assert c.layout.time == "Days" and c.rm_anova.n_subjects_used == 18
    _close(c.rm_anova.effects["F"].iloc[0], REF["sleepstudy"]["rm_anova"]["effects"]["F"], CLOSED)


def test_guide_opens_with_why_and_its_numbers_are_printed(capsys):
    """docs/guide.md opens with "Why not a t-test?"; its code prints its output block, and every decimal in its prose is in it."""
    import re

    text = (HERE.parent / "docs" / "guide.md").read_text()
    first = re.search(r"^## .*$", text, re.M).group(0)
    assert first == "## Why not a t-test?"
    section = text[text.index(first): text.index("\n## ", text.index(first) + 1)]
    code, shown = re.search(r"```python\n(.*?)```\n\n```\n(.*?)```", section, re.DOTALL).groups()
    exec(compile(code, "guide", "exec"), {})
    printed = capsys.readouterr().out
    assert printed.rstrip("\n") == shown.rstrip("\n")
    prose = section[section.index("Reading it"): section.index("From the shell")]
    numbers = re.findall(r"(?<![\w.])\d+\.\d+(?!\d)", prose)
    assert numbers and all(n in printed for n in numbers), [n for n in numbers if n not in printed]


def test_rm_anova_empty_between_cell_and_missing_level_are_notes():
    tb = pd.read_csv(DATA / "why_two_between.csv")
    gap = tb[~((tb["dose"] == "d2") & (tb["sex"] == "M") & (tb["week"] == 8))]
    c = compare_naive(mm.lmer("y ~ dose * week + sex + (week | id)", gap))
    assert not c.rm_anova.available and c.rm_anova.n_subjects_used > 0
    assert any("empty cell" in n for n in c.rm_anova.notes)
    assert "cannot be computed" in c.sentences()["rm_anova"] and "empty cell" in str(c)
    tr = pd.read_csv(DATA / "residual_trial.csv")
    one_arm = tr[~((tr["arm"] == "TRT") & (tr["visit"] == "V5"))]
    with pytest.warns(mm.RankDeficiencyWarning):
        c = compare_naive(mm.lmer("y ~ arm * visit + base", one_arm, residual="us(visit | id)"))
    assert c.ttest_last.mixed is None and "fewer than two levels" in str(c)
    json.dumps(c.to_dict(), allow_nan=False)
    assert c.ttest_last.welch is None and "fewer than two levels of arm" in c.ttest_last.note
    assert c.rm_anova.between == () and any("arm has one level among the complete subjects" in n for n in c.rm_anova.notes)
    assert c.rm_anova.effects["effect"].tolist() == ["visit"]
    assert "cannot be computed" in c.sentences()["ttest_last"]
