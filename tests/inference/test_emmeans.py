"""Least-squares means and their contrasts against R's emmeans 1.8.4-1 (tests/reference/emmeans.R).

Tolerances. The linear functions behind every mean and contrast (emmeans' ``@linfct``) are
compared exactly (1e-10): with R's β and covariance they reproduce R's estimates and SEs to
1e-9, which is checked too. End to end, estimates agree to 1e-6 relative; SEs to the relative
disagreement of our fit's ``vcov`` with lme4's (at least 1e-6: the fits' θ differ by the
optimizers' tolerances, ~1e-5 relative in the worst case here); Kenward–Roger and Satterthwaite
df to 1e-4. P-value adjustments are checked on R's own t-ratios and df to 1e-6 relative (Tukey and dunnettx
also 1e-9 absolute: the studentized range distribution is scipy's, and R's ``ptukey`` integrates
to about 1e-9 and takes the upper tail as ``1 − cdf``); end to end,
p-values get 3e-4 relative, since a t-ratio off by δ (relative) moves p by about ``t² δ`` relative.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.cli import main
from mixedmodels.exceptions import MixedModelsWarning, ModelError
from mixedmodels.inference.emmeans import EMMeans, emmeans, fit_view, format_contrasts, parse_specs
from mixedmodels.inference.emmeans_contrasts import adjust_pvalues, contrast_levels, p_adjust, zapsmall

REF_DIR = Path(__file__).parents[1] / "reference"
REF = json.loads((REF_DIR / "emmeans.json").read_text())
TRIAL = REF_DIR / "data" / "emmeans_trial.csv"
TRIAL_FORMULA = "chg ~ arm * visit + base + female + (1 | subject)"


def _data(case: dict) -> pd.DataFrame:
    data = pd.read_csv(TRIAL) if case["data"] == "emmeans_trial.csv" else mm.datasets.load(case["data"])
    return data.query(case["subset"]) if case.get("subset") else data


@pytest.fixture(scope="module")
def fits() -> dict:
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, case in REF["cases"].items():
            out[name] = mm.lmer(case["formula"], _data(case), REML=case["REML"], weights=case.get("weights"))
    return out


def _num(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _df(table: dict) -> np.ndarray:
    df = _num(table["df"])
    return np.full(df.shape, np.inf) if table.get("df_infinite") else df


def _kwargs(entry: dict) -> dict:
    args = entry["args"] if isinstance(entry["args"], dict) else {}
    rename = {"lmer.df": "ddf", "weights": "weights", "level": "level"}
    return {rename[k]: v for k, v in args.items()}


def _close(actual, expected, rtol: float, atol: float = 0.0, what: str = "") -> None:
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=f"{what}: non-estimable rows differ")
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def _se_rtol(fit, case: dict) -> float:
    """Relative disagreement of our vcov with lme4's (SEs inherit it), at least 1e-6."""
    ours, theirs = np.diag(fit.vcov.to_numpy()), np.diag(np.array(case["vcov"], dtype=float))
    return max(1e-6, float(np.max(np.abs(ours - theirs) / theirs)))


EMM_CASES = [(name, i) for name, case in REF["cases"].items() for i in range(len(case["emmeans"]))]
CONTRAST_CASES = [
    (name, i, j) for name, case in REF["cases"].items() for i, e in enumerate(case["emmeans"]) for j in range(len(e["contrasts"]))
]


def _emm(fits, name: str, i: int) -> EMMeans:
    entry = REF["cases"][name]["emmeans"][i]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return emmeans(fits[name], entry["specs"], entry["by"], **_kwargs(entry))


@pytest.mark.parametrize("name,i", EMM_CASES)
def test_means_match_emmeans(fits, name, i):
    case = REF["cases"][name]
    entry = case["emmeans"][i]
    emm = _emm(fits, name, i)
    ref = entry["table"]
    # the reference grid and its averaging: exactly emmeans' linear functions
    assert list(emm.linfct.columns) == entry["columns"]
    np.testing.assert_allclose(emm.linfct.to_numpy(), np.array(entry["linfct"], dtype=float), atol=1e-10)
    factors = list(np.atleast_1d(entry["specs"])) + list(np.atleast_1d(entry["by"] or []))
    assert list(emm.table.columns) == factors + ["emmean", "SE", "df", "lower.CL", "upper.CL"]
    for f in factors:
        assert [mm_label(v) for v in emm.table[f]] == list(np.atleast_1d(ref[f]))
    se_rtol = _se_rtol(fits[name], case)
    scale = np.nanmax(np.abs(_num(ref["emmean"])))
    _close(emm.table["emmean"], _num(ref["emmean"]), 1e-6, 1e-9 * scale, "emmean")
    _close(emm.table["SE"], _num(ref["SE"]), se_rtol, 0, "SE")
    _close(emm.table["df"], _df(ref), 1e-4, 0, "df")
    lower = ref.get("lower.CL", ref.get("asymp.LCL"))
    upper = ref.get("upper.CL", ref.get("asymp.UCL"))
    _close(emm.table["lower.CL"], _num(lower), 1e-5, 10 * se_rtol * scale, "lower.CL")
    _close(emm.table["upper.CL"], _num(upper), 1e-5, 10 * se_rtol * scale, "upper.CL")


def mm_label(value) -> str:
    from mixedmodels.inference.emmeans_grid import r_label

    return r_label(value)


@pytest.mark.parametrize("name,i", EMM_CASES)
def test_means_are_exact_functions_of_beta_and_vcov(fits, name, i):
    """R's means and SEs from R's β and (adjusted) covariance through our linear functions."""
    case = REF["cases"][name]
    entry = case["emmeans"][i]
    emm = _emm(fits, name, i)
    view = fit_view(fits[name])
    L = emm.linfct.to_numpy()[:, view.kept_columns]
    ddf = _kwargs(entry).get("ddf", "kenward-roger" if case["REML"] else "satterthwaite")
    V = np.array(case["vcov_adj"] if ddf == "kenward-roger" else case["vcov"], dtype=float)
    est = L @ np.array(case["fixef"], dtype=float) + view.offset  # emmeans adds the mean offset
    se = np.sqrt(np.einsum("ij,jk,ik->i", L, V, L))
    ok = ~np.isnan(_num(entry["table"]["emmean"]))
    np.testing.assert_allclose(est[ok], _num(entry["table"]["emmean"])[ok], rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(se[ok], _num(entry["table"]["SE"])[ok], rtol=1e-9)


@pytest.mark.parametrize("name,i,j", CONTRAST_CASES)
def test_contrasts_match_emmeans(fits, name, i, j):
    case = REF["cases"][name]
    entry = case["emmeans"][i]
    spec = entry["contrasts"][j]
    emm = _emm(fits, name, i)
    method = spec["coefficients"] if spec["method"] == "custom" else spec["method"]
    table = emm.contrasts(method, spec["adjust"])
    ref = spec["table"]
    assert list(table["contrast"]) == list(np.atleast_1d(ref["contrast"]))
    for b in np.atleast_1d(entry["by"] or []):
        assert [mm_label(v) for v in table[b]] == ref[b]
    assert table.attrs["adjust"] == spec["adjust_used"]
    np.testing.assert_allclose(table.attrs["linfct"].to_numpy(), np.array(spec["linfct"], dtype=float), atol=1e-10)
    scale = np.nanmax(np.abs(_num(entry["table"]["emmean"])))
    se_rtol = _se_rtol(fits[name], case)
    _close(table["estimate"], _num(ref["estimate"]), 1e-6, 1e-9 * scale, "estimate")
    _close(table["SE"], _num(ref["SE"]), se_rtol, 0, "SE")
    _close(table["df"], _df(ref), 1e-4, 0, "df")
    _close(table["t.ratio"], _num(ref.get("t.ratio", ref.get("z.ratio"))), 2 * se_rtol, 1e-8, "t.ratio")
    _close(table["p.value"], _num(ref["p.value"]), 3e-4, 1e-12, "p.value")


@pytest.mark.parametrize("name,i,j", CONTRAST_CASES)
def test_adjustments_on_emmeans_own_t_and_df(name, i, j):
    """Each adjustment, given R's t-ratios and df, gives R's p-values (the per-contrast-df rules included)."""
    entry = REF["cases"][name]["emmeans"][i]
    spec = entry["contrasts"][j]
    ref = spec["table"]
    by = list(np.atleast_1d(entry["by"] or []))
    n_groups = len(set(zip(*[ref[b] for b in by]))) if by else 1
    family_size = len(entry["table"]["emmean"]) // n_groups
    m = len(ref["estimate"]) // n_groups
    family = [np.arange(g * m, (g + 1) * m) for g in range(n_groups)]
    kind = "pairs" if spec["method"] in ("pairwise", "revpairwise") else "contrast"
    default = {"pairwise": "tukey", "revpairwise": "tukey", "trt.vs.ctrl": "dunnettx"}.get(spec["method"], "none")
    t = _num(ref.get("t.ratio", ref.get("z.ratio")))
    p, used, _ = adjust_pvalues(t, _df(ref), spec["adjust"] or default, family_size, family, kind)
    assert used == spec["adjust_used"]
    # R's ptukey integrates to ~1e-9 absolute and takes the upper tail as 1 - cdf
    atol = 1e-9 if used in ("tukey", "dunnettx") else 1e-13
    _close(p, _num(ref["p.value"]), 1e-6, atol, "p.value")


# ---------------------------------------------------------------------- behaviour
def test_tukey_rounds_df_as_emmeans_when_a_contrast_is_not_estimable():
    """emmeans passes zapsmall(df) to ptukey with NA df set to Inf first: every df becomes whole."""
    assert list(zapsmall(np.array([142.55, np.inf]))) == [143.0, np.inf]
    assert list(zapsmall(np.array([142.5512345, 9.0]))) == [142.5512, 9.0]
    ref = REF["cases"]["trial_rd"]["emmeans"][0]["contrasts"][0]["table"]
    t, df = _num(ref["t.ratio"]), _num(ref["df"])
    family = [np.arange(g * 3, g * 3 + 3) for g in range(4)]
    p, _, _ = adjust_pvalues(t, df, "tukey", 3, family, "pairs")
    np.testing.assert_allclose(p, _num(ref["p.value"]), rtol=1e-6)
    unrounded, _, _ = adjust_pvalues(t[:9], df[:9], "tukey", 3, family[:3], "pairs")
    assert np.max(np.abs(unrounded - _num(ref["p.value"])[:9]) / unrounded) > 1e-5


def test_rank_deficient_cells_are_not_estimable(fits):
    emm = emmeans(fits["trial_rd"], "arm", by="visit")
    missing = emm.table[emm.table["emmean"].isna()]
    assert [(str(a), str(v)) for a, v in zip(missing["arm"], missing["visit"])] == [("TRT-HD", "W12")]
    assert "nonEst" in str(emm)
    pairs = emm.contrasts("pairwise")
    assert pairs["estimate"].isna().sum() == 2 and pairs["p.value"].isna().sum() == 2


def test_ml_fit_defaults_to_satterthwaite_with_a_warning(fits):
    with pytest.warns(MixedModelsWarning, match="Satterthwaite"):
        emm = emmeans(fits["trial_ml"], "arm", by="visit")
    assert emm.ddf == "satterthwaite"
    assert any("REML" in n for n in emm.notes)
    ref = REF["cases"]["trial_ml"]["emmeans"][0]["table"]
    np.testing.assert_allclose(emm.table["df"], _num(ref["df"]), rtol=1e-4)
    with pytest.raises(ModelError, match="REML"):
        emmeans(fits["trial_ml"], "arm", ddf="kenward-roger")


def test_specs_forms_are_equivalent(fits):
    fit = fits["trial"]
    base = fit.emmeans("arm", by="visit").table
    for specs, by in [("arm | visit", None), ("~ arm | visit", None), (["arm"], ["visit"]), ("arm", "visit")]:
        pd.testing.assert_frame_equal(fit.emmeans(specs, by=by).table, base)
    both = fit.emmeans("arm:visit").table
    pd.testing.assert_frame_equal(both, fit.emmeans(["arm", "visit"]).table)
    np.testing.assert_allclose(both["emmean"], base["emmean"])
    assert parse_specs("arm * visit | female") == (["arm", "visit"], ["female"])


def test_numeric_weights_and_options(fits):
    fit = fits["trial"]
    equal = fit.emmeans("arm", ddf="asymptotic")
    flat = fit.emmeans("arm", ddf="asymptotic", weights=[1.0] * 8)  # 4 visits x 2 values of female
    np.testing.assert_allclose(flat.table["emmean"], equal.table["emmean"], rtol=1e-12)
    assert "visit, female" in str(equal)
    with pytest.raises(ModelError, match="8 numbers needed"):
        fit.emmeans("arm", weights=[1.0, 2.0])
    with pytest.raises(ModelError, match="unknown weights"):
        fit.emmeans("arm", weights="balanced")
    with pytest.raises(ModelError, match="unknown ddf"):
        fit.emmeans("arm", ddf="containment")
    with pytest.raises(ModelError, match="level"):
        fit.emmeans("arm", level=95)


def test_contrast_options(fits):
    emm = fits["trial"].emmeans("arm | visit")
    ctrl = emm.contrasts("trt.vs.ctrl", ref="TRT-HD")
    assert list(ctrl["contrast"][:2]) == ["PBO - (TRT-HD)", "TRT - (TRT-HD)"]
    assert list(emm.contrasts("trt.vs.ctrl", ref=2)["contrast"][:2]) == list(ctrl["contrast"][:2])
    sided = emm.contrasts("trt.vs.ctrl", adjust="tukey")
    assert sided.attrs["adjust"] == "sidak" and any("changed" in n for n in sided.attrs["notes"])
    with pytest.raises(ModelError, match="3 needed"):
        emm.contrasts({"bad": [1, -1]})
    with pytest.raises(ModelError, match="unknown contrast method"):
        emm.contrasts("consec")
    with pytest.raises(ModelError, match="unknown p-value adjustment"):
        emm.contrasts("pairwise", adjust="scheffe")
    with pytest.raises(ModelError, match="not one of the levels"):
        emm.contrasts("trt.vs.ctrl", ref="XYZ")
    text = format_contrasts(emm.contrasts("revpairwise"))
    assert "visit = W12:" in text and "(TRT-HD) - PBO" in text and "tukey method for comparing a family of 3" in text


def test_unknown_variables_are_errors(fits):
    fit = fits["trial"]
    with pytest.raises(ModelError, match="'dose' is not a variable of the model's fixed effects"):
        fit.emmeans("dose")
    with pytest.raises(ModelError, match="'subject' is not a variable"):
        fit.emmeans("arm", by="subject")
    with pytest.raises(ModelError, match="both in specs and in by"):
        fit.emmeans("arm | arm")
    with pytest.raises(ModelError, match="not supported"):
        fit.emmeans("pairwise ~ arm")


def test_labels_and_p_adjust_helpers():
    assert contrast_levels([("Days", ["2", "3"])]) == ["Days2", "Days3"]
    assert contrast_levels([("arm", ["PBO", "TRT-HD"]), ("visit", ["W02", "W02"])]) == ["PBO W02", "(TRT-HD W02)"]
    p = np.array([0.01, 0.04, np.nan, 0.03])
    # R 4.2: p.adjust(c(0.01, 0.04, NA, 0.03), method, n = 4)
    expected = {
        "holm": [0.04, 0.09, np.nan, 0.09],
        "BH": [0.04, 0.053333333333333330, np.nan, 0.053333333333333330],
        "hochberg": [0.04, 0.08, np.nan, 0.08],
        "BY": [0.083333333333333343, 0.111111111111111133, np.nan, 0.111111111111111133],
        "bonferroni": [0.04, 0.16, np.nan, 0.12],
    }
    for method, values in expected.items():
        np.testing.assert_allclose(p_adjust(p, method, 4), values, rtol=1e-14, err_msg=method)


def test_nesting_structures(fits):
    """emmeans' nesting detection: noted where the means agree with emmeans', an error where they would not."""
    data = pd.read_csv(TRIAL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nested = mm.lmer("chg ~ visit + visit:arm + base + female + (1 | subject)", data)
    emm = nested.emmeans("visit")  # the same model as arm * visit, whose visit means emmeans gives
    ref = next(e for e in REF["cases"]["trial"]["emmeans"] if e["specs"] == "visit" and not e["by"])
    np.testing.assert_allclose(emm.table["emmean"], ref["table"]["emmean"], rtol=1e-6)
    assert "NOTE: A nesting structure was detected in the fitted model: arm %in% visit" in emm.notes
    with pytest.raises(ModelError, match="arm is nested in visit"):
        nested.emmeans("arm")  # emmeans would add visit to the table
    data["site"] = data["subject"].str[-1]
    data["country"] = np.where(data["site"].isin(list("01234")), "A", "B")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_site = mm.lmer("chg ~ arm + country + site + (1 | subject)", data)
    with pytest.raises(ModelError, match="site %in% country"):
        by_site.emmeans("arm")


def test_means_do_not_depend_on_the_parameterisation(fits):
    """Sum contrasts and scale(base) give the same model, so the same means (scale's centre kept)."""
    data = pd.read_csv(TRIAL)
    base = fits["trial"].emmeans("arm | visit").table
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summed = mm.lmer(TRIAL_FORMULA, data, contrasts={"arm": "sum", "visit": "sum"})
        scaled = mm.lmer(TRIAL_FORMULA.replace("base", "scale(base)"), data)
    for other in (summed, scaled):
        table = other.emmeans("arm | visit").table
        np.testing.assert_allclose(table["emmean"], base["emmean"], rtol=1e-6)
        np.testing.assert_allclose(table["df"], base["df"], rtol=1e-4)


def test_offset_argument_and_offset_term_agree():
    data = pd.read_csv(TRIAL).assign(logexpo=lambda d: np.log(d["expo"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        term = mm.lmer("chg ~ arm + visit + offset(log(expo)) + (1 | subject)", data)
        argument = mm.lmer("chg ~ arm + visit + (1 | subject)", data, offset="logexpo")
    a, b = term.emmeans("arm"), argument.emmeans("arm")
    np.testing.assert_allclose(a.table["emmean"], b.table["emmean"], rtol=1e-8)
    used = data.dropna(subset=["chg"])
    shift = a.table["emmean"] - (a.linfct.to_numpy()[:, fit_view(term).kept_columns] @ term.beta)
    np.testing.assert_allclose(shift, np.log(used["expo"]).mean(), rtol=1e-12)
    custom = a.contrasts({"sum": [1, 1, 1], "diff": [-1, 1, 0]})
    np.testing.assert_allclose(custom["estimate"], [a.table["emmean"].sum(), a.table["emmean"][1] - a.table["emmean"][0]])


def test_covariate_transform_is_evaluated_at_the_mean_of_the_variable(fits):
    emm = fits["cake_log"].emmeans("recipe")
    # log(temp) at log(mean(temp)) = log(200), not at the mean of log(temp)
    grid = emm._grid
    assert grid.variable("temp").kind == "covariate" and grid.variable("temp").values == [200.0]


# ---------------------------------------------------------------------- command line
def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_matches_emmeans(capsys):
    code, out, err = _cli(capsys, "emmeans", str(TRIAL), "--formula", TRIAL_FORMULA, "--specs", "arm | visit",
                          "--contrast", "revpairwise", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert set(res) == {"emmeans", "contrasts"}
    assert list(res["emmeans"][0]) == ["arm", "visit", "emmean", "se", "df", "lower", "upper"]
    assert list(res["contrasts"][0]) == ["contrast", "visit", "estimate", "se", "df", "t_ratio", "p_value"]
    entry = REF["cases"]["trial"]["emmeans"][0]
    assert [r["arm"] for r in res["emmeans"][:3]] == ["PBO", "TRT", "TRT-HD"]
    np.testing.assert_allclose([r["emmean"] for r in res["emmeans"]], entry["table"]["emmean"], rtol=1e-6)
    np.testing.assert_allclose([r["df"] for r in res["emmeans"]], entry["table"]["df"], rtol=1e-4)
    ref = entry["contrasts"][1]["table"]
    assert entry["contrasts"][1]["method"] == "revpairwise"
    assert [r["contrast"] for r in res["contrasts"]] == ref["contrast"]
    assert res["contrasts"][0]["contrast"] == "TRT - PBO" and res["contrasts"][0]["visit"] == "W02"
    np.testing.assert_allclose([r["p_value"] for r in res["contrasts"]], ref["p.value"], rtol=3e-4)


def test_cli_text_and_options(capsys):
    code, out, _ = _cli(capsys, "emmeans", str(TRIAL), "--formula", TRIAL_FORMULA, "--specs", "arm",
                        "--contrast", "trt.vs.ctrl", "--ddf", "asymptotic", "--level", "0.9")
    assert code == 0
    assert "asymp.LCL" in out and "z.ratio" in out and "Confidence level used: 0.9" in out
    assert "dunnettx method for 2 tests" in out and "TRT - PBO" in out


def test_cli_errors_are_one_line(capsys):
    code, out, err = _cli(capsys, "emmeans", str(TRIAL), "--formula", TRIAL_FORMULA, "--specs", "dose")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "'dose' is not a variable" in err
    code, _, err = _cli(capsys, "emmeans", str(TRIAL), "--formula", "chg ~ arm", "--specs", "arm")
    assert code == 2 and "random-effects" in err
