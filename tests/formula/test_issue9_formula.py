"""Formula syntax, column types and names checked against lme4 1.1-31 (issue 9).

Reference values come from tests/reference/formula_reference.R (which writes
tests/reference/formula_reference.json and the CSV files under tests/reference/data/);
these tests never need R.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.exceptions import DataWarning
from mixedmodels.exceptions import MixedModelsWarning
from mixedmodels.formula.design import build_design
from mixedmodels.formula.rsyntax import deparse, parse_expression, r_number

REF_DIR = Path(__file__).resolve().parents[1] / "reference"
REF = json.loads((REF_DIR / "formula_reference.json").read_text(encoding="utf-8"))
MODELS = REF["models"]


def load(name: str) -> pd.DataFrame:
    """A data set as the R script fitted it."""
    if name == "cake":
        d = mm.datasets.load("cake")
        return d.assign(tc=(d["temp"] - 200) / 10)
    return pd.read_csv(REF_DIR / "data" / f"formula_{name}.csv")


def fit(formula: str, data: pd.DataFrame, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer(formula, data, **kwargs)


def assert_matches(result, key: str, *, theta: bool = True) -> None:
    """Names, fixed effects, θ and the criterion of ``result`` equal lme4's fit ``key``."""
    ref = MODELS[key]
    assert list(result.model.design.fixed_names) == ref["fixef"]["names"]
    assert result.theta_names == ref["theta"]["names"]
    np.testing.assert_allclose(result.beta, ref["fixef"]["values"], rtol=1e-5, atol=1e-6)
    if theta:
        np.testing.assert_allclose(result.theta, ref["theta"]["values"], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(result.sigma, ref["sigma"], rtol=1e-5)
    np.testing.assert_allclose(result.objective, ref["objective"], rtol=1e-8, atol=1e-6)
    assert list(result.varcorr["var1"].fillna("")) == ref["varcorr"]["var1"]


def reference_fit(key: str, data: pd.DataFrame | None = None, **kwargs):
    ref = MODELS[key]
    d = load(ref["data"]) if data is None else data
    if ref.get("rename"):
        d = d.rename(columns=ref["rename"])
    return fit(ref["formula"], d, REML=ref["reml"], **kwargs)


# ---- 1. R's operators inside I() and other transforms --------------------------------------------


def test_power_inside_I_on_integer_and_float_columns_matches_lme4():
    d = load("nlschools")
    assert d["SES"].dtype.kind == "i" and d["IQ"].dtype.kind == "f"
    assert_matches(reference_fit("power"), "power")


def test_r_operators_inside_functions_match_lme4():
    # %/% %% / unary minus, -SES^2 = -(SES^2), log(IQ^2), and a comparison named I(IQ > 12)TRUE
    assert_matches(reference_fit("operators"), "operators")


def test_crossing_to_degree_two_matches_lme4():
    assert_matches(reference_fit("crossing"), "crossing")


def test_power_values_and_precedence():
    y = np.random.default_rng(2).normal(size=12)
    d = pd.DataFrame({"y": y, "a": np.arange(1, 13), "b": np.tile([2, 3, 5], 4), "g": list("aabbccddeeff")})
    X = build_design("y ~ I(a^2) + I(a %% b * 2) + I(a * b %% 3) + I(2^-1 * a) + I(a %/% b) + (1 | g)", d, warn=False).X
    a, b = d["a"].to_numpy(), d["b"].to_numpy()
    expected = np.column_stack([np.ones(12), a**2, (a % b) * 2, a * (b % 3), 0.5 * a, a // b])
    np.testing.assert_array_equal(X, expected)
    np.testing.assert_array_equal(build_design("y ~ I(-a^2) + (1 | g)", d, warn=False).X[:, 1], -(a**2))
    # at the formula level x^2 is x crossed with itself, i.e. x (as in R)
    assert build_design("y ~ a^2 + (1 | g)", d, warn=False).fixed_names == ("(Intercept)", "a")


def test_arithmetic_between_terms_needs_I():
    d = pd.DataFrame({"y": np.arange(8.0), "x": np.arange(8.0), "g": list("aabbccdd")})
    with pytest.raises(mm.FormulaError, match=r"needs I\(\), as in I\(x > 2\)"):
        build_design("y ~ x > 2 + (1 | g)", d)


@pytest.mark.parametrize(
    "text, printed",
    [
        ("I(x^2)", "I(x^2)"),
        ("I(x %% 2)", "I(x%%2)"),
        ("log(x+1)", "log(x + 1)"),
        ("poly(x,2,raw=TRUE)", "poly(x, 2, raw = TRUE)"),
        ("I(-x^2/100)", "I(-x^2/100)"),
        ("`a b`", "`a b`"),
        ("`Größe`", "Größe"),
    ],
)
def test_deparse_prints_as_r(text, printed):
    assert deparse(parse_expression(text)) == printed


@pytest.mark.parametrize("text, printed", [("2.0", "2"), ("1e5", "1e+05"), ("100000", "1e+05"), ("0.001", "0.001"), ("1e-4", "1e-04"), ("123456", "123456"), (".5", "0.5")])
def test_numbers_print_as_r(text, printed):
    assert r_number(text) == printed


def test_operators_are_still_an_allow_list(tmp_path):
    d = pd.DataFrame({"y": np.random.default_rng(3).normal(size=8), "x": np.arange(8.0), "g": list("aabbccdd")})
    for formula in ("y ~ I(x^exec) + (1 | g)", "y ~ I(x %o% x) + (1 | g)", "y ~ I(x[1]) + (1 | g)", "y ~ I(x == 'a') + (1 | g)"):
        with pytest.raises(mm.MixedModelsError):
            build_design(formula, d)
    # a hostile column name pulled in by '.' is quoted, never evaluated
    target = tmp_path / "pwned"
    hostile = d.assign(**{f"__import__('os').system('touch {target}')": 1.0})
    with pytest.raises(mm.MixedModelsError):
        build_design("y ~ . + (1 | g)", hostile.assign(**{"a`b": 1.0}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        build_design("y ~ . + (1 | g)", hostile)
    assert not target.exists()


# ---- 2. every pandas dtype -----------------------------------------------------------------------

CONVERSIONS = {
    "numpy/object": lambda d: d.astype({c: object for c in d.columns if d[c].dtype.kind not in "biuf"}),
    "str": lambda d: d,
    "string[python]": lambda d: d.astype({c: "string" for c in ("Plant", "Type", "Treatment")}),
    "string[pyarrow]": lambda d: d.astype({c: "string[pyarrow]" for c in ("Plant", "Type", "Treatment")}),
    "convert_dtypes": lambda d: d.convert_dtypes(),
    "convert_dtypes(pyarrow)": lambda d: d.convert_dtypes(dtype_backend="pyarrow"),
    "category": lambda d: d.astype({c: "category" for c in ("Plant", "Type", "Treatment")}),
}


@pytest.mark.parametrize("conversion", list(CONVERSIONS))
def test_factors_and_grouping_of_every_dtype_match_lme4(conversion):
    d = CONVERSIONS[conversion](load("co2"))
    assert_matches(reference_fit("factors", d), "factors")


@pytest.mark.parametrize("conversion", ["numpy bool", "boolean", "bool[pyarrow]", "object"])
def test_boolean_predictors_are_named_like_r(conversion):
    d = load("co2")
    assert d["chilled"].dtype == bool
    d = {
        "numpy bool": d,
        "boolean": d.astype({"chilled": "boolean"}),
        "bool[pyarrow]": d.astype({"chilled": "bool[pyarrow]"}),
        "object": d.astype({"chilled": object}),
    }[conversion]
    assert_matches(reference_fit("logical", d), "logical")


def test_read_csv_with_the_pyarrow_backend():
    d = pd.read_csv(REF_DIR / "data" / "formula_co2.csv", dtype_backend="pyarrow")
    assert_matches(reference_fit("factors", d), "factors")
    n = pd.read_csv(REF_DIR / "data" / "formula_nlschools.csv", dtype_backend="pyarrow")
    assert_matches(reference_fit("power", n), "power")  # I(SES^2) on an int64[pyarrow] column


@pytest.mark.parametrize("conversion", ["convert_dtypes", "convert_dtypes(pyarrow)"])
def test_pd_na_is_missing_and_counted(conversion):
    d = load("co2")
    with_nan = d.astype({"conc": float, "chilled": object}).copy()
    with_nan.loc[[3, 10], "conc"] = np.nan
    with_nan.loc[[20], "Type"] = None
    with_nan.loc[[30], "Plant"] = None
    with_nan.loc[[40], "chilled"] = None
    nullable = CONVERSIONS[conversion](with_nan)
    assert nullable["conc"].isna().sum() == 2 and nullable.loc[40, "chilled"] is pd.NA
    base = fit("uptake ~ Type + chilled + log(conc) + (1 | Plant)", with_nan)
    other = fit("uptake ~ Type + chilled + log(conc) + (1 | Plant)", nullable)
    assert base.n_dropped == other.n_dropped == 5 and other.nobs == 79
    np.testing.assert_allclose(other.beta, base.beta, rtol=1e-10)
    assert list(other.model.design.fixed_names) == ["(Intercept)", "TypeQuebec", "chilledTRUE", "log(conc)"]


@pytest.mark.parametrize("dtype", ["Int64", "int64[pyarrow]", "string", "string[pyarrow]", "boolean", "category"])
def test_grouping_columns_of_nullable_and_arrow_dtypes(dtype):
    d = pd.DataFrame({"y": np.arange(12.0) ** 1.5, "x": np.tile([0.0, 1.0, 3.0], 4), "g": np.repeat([1, 0, 1, 0], 3)})
    g = d["g"].astype(bool) if dtype == "boolean" else (d["g"].astype(str) if "string" in dtype or dtype == "category" else d["g"])
    d = d.assign(g=g.astype(dtype))
    d.loc[0, "g"] = pd.NA
    design = build_design("y ~ x + (1 | g)", d, warn=False)
    assert design.n_dropped == 1
    assert list(design.terms[0].levels) == (["FALSE", "TRUE"] if dtype == "boolean" else ["0", "1"])


def test_dates_group_random_effects_but_are_not_predictors():
    d = pd.DataFrame(
        {"y": np.arange(12.0) ** 1.5, "x": np.tile([0.0, 1.0, 3.0], 4), "day": pd.to_datetime(np.repeat(["2024-03-02", "2024-01-05", "2024-02-01", "2024-01-20"], 3))}
    )
    for frame in (d, d.convert_dtypes(dtype_backend="pyarrow")):
        design = build_design("y ~ x + (1 | day)", frame, warn=False)
        assert list(design.terms[0].levels) == ["2024-01-05", "2024-01-20", "2024-02-01", "2024-03-02"]
        with pytest.raises(mm.DataError, match=r"column 'day' holds dates or times .*convert it to a number.*\.dt\.days"):
            build_design("y ~ day + (1 | x)", frame)


# ---- 3. predict() with a level not seen in fitting ----------------------------------------------


def test_predict_with_an_unseen_level_of_a_fixed_factor_is_an_error():
    assert "non-conformable" in REF["errors"]["predict_new_level"]  # lme4 stops too
    d = load("co2")
    result = fit("uptake ~ Type + log(conc) + (1 | Plant)", d)
    new = pd.DataFrame({"Type": ["Quebec", "Alaska"], "conc": [500, 500], "Plant": ["Qn1", "Qn1"]})
    with pytest.raises(mm.DataError, match=r"factor 'Type' has new level not seen in fitting: 'Alaska'"):
        result.predict(new)
    with pytest.raises(mm.DataError, match="'Alaska'"):
        result.predict(new, include_random=False)
    ok = result.predict(new.iloc[:1])
    assert np.isfinite(ok).all()


def test_predict_checks_factor_calls_and_accepts_other_dtypes():
    d = load("co2")
    result = fit("uptake ~ factor(conc) + Type + (1 | Plant)", d)
    with pytest.raises(mm.DataError, match=r"factor 'factor\(conc\)' has new level not seen in fitting: '123'"):
        result.predict(d.iloc[:2].assign(conc=[95, 123]))
    for conversion in ("convert_dtypes", "convert_dtypes(pyarrow)", "category"):
        np.testing.assert_allclose(result.predict(CONVERSIONS[conversion](d)), result.fitted, rtol=1e-10)


# ---- 4. names with spaces, dots and other letters --------------------------------------------------


def test_backticks_and_non_ascii_names_match_lme4():
    result = reference_fit("odd_names")
    assert_matches(result, "odd_names")
    assert result.model.terms[0].group == "Gruppe ID"


def test_non_ascii_names_without_backticks():
    d = load("co2").rename(columns={"conc": "Größe", "Plant": "Pflanzenkennung_ä", "uptake": "Aufnahme.µ"})
    result = fit("Aufnahme.µ ~ Type + log(Größe) + Größe + (1 + Größe | Pflanzenkennung_ä)", d)
    assert result.model.design.fixed_names == ("(Intercept)", "TypeQuebec", "log(Größe)", "Größe")
    assert result.theta_names[0] == "Pflanzenkennung_ä.(Intercept)"
    np.testing.assert_allclose(result.predict(d), result.fitted, rtol=1e-10)


@pytest.mark.parametrize("name", ["class", "x²", "µ", "my var (cm)", "1st"])
def test_names_python_cannot_take_still_work(name):
    d = pd.DataFrame({"y": np.arange(12.0) ** 1.5, name: np.tile([1.0, 2.0, 4.0], 4), "g": list("aabbccddeeff")})
    q = f"`{name}`"
    design = build_design(f"y ~ {q} + log({q}) + (0 + {q} | g)", d, warn=False)
    np.testing.assert_allclose(design.X[:, 2], np.log(d[name]))


# ---- 5. lme4's names and order ------------------------------------------------------------------


def test_poly_names_match_lme4():
    assert_matches(reference_fit("poly"), "poly")


def test_first_factor_without_intercept_gets_every_level():
    assert_matches(reference_fit("no_intercept"), "no_intercept")


@pytest.mark.parametrize("key", ["order_split", "order_double_bar", "order_kept"])
def test_terms_on_one_factor_come_in_lme4s_order(key):
    result = reference_fit(key)
    assert_matches(result, key)
    assert [(t.group, t.cnames) for t in result.model.terms][0] == ("recipe:replicate", ("(Intercept)",))


def test_nullable_and_numpy_booleans_share_names():
    d = pd.DataFrame({"y": np.arange(12.0) ** 1.5, "b": np.tile([True, False, True], 4), "g": list("aabbccddeeff")})
    names = {build_design("y ~ b + (1 | g)", d.astype({"b": t}), warn=False).fixed_names for t in (bool, "boolean", "bool[pyarrow]")}
    assert names == {("(Intercept)", "bTRUE")}


# ---- 6. clearer errors --------------------------------------------------------------------------


def test_constant_response_is_a_degenerate_singular_fit_as_lme4():
    lme4 = REF["constant_response"]
    assert lme4["REMLcrit"] == "-Inf" and lme4["sigma"] == 0  # lme4's fit is degenerate
    rng = np.random.default_rng(1)
    d = pd.DataFrame({"y": 5.0, "x": rng.normal(size=40), "g": np.tile(list("abcdefgh"), 5)})
    with pytest.warns(mm.SingularFitWarning), pytest.warns(DataWarning, match=r"the response 'y' is constant \(all 40 values are 5\)"):
        fit = mm.lmer("y ~ x + (1 | g)", d)
    assert fit.objective == -np.inf and fit.sigma == 0 and fit.singular
    assert fit.beta == pytest.approx([5.0, 0.0], abs=1e-12)
    assert np.all(fit.theta == 0) and np.all(fit.ranef()["g"].to_numpy() == 0)
    assert "REML criterion at convergence: -Inf" in str(fit.summary())  # no df: lme4's table
    assert fit.to_dict()["loglik"] is None  # JSON has no infinity
    with pytest.raises(mm.ModelError, match="degenerate"):
        fit.anova()
    with pytest.warns(DataWarning, match="reproduce the response 'y2' exactly"):
        exact = mm.lmer("y2 ~ x + (1 | g)", d.assign(y2=2 * d["x"] + 1))
    assert exact.sigma == pytest.approx(0.0, abs=1e-7) and exact.beta == pytest.approx([1.0, 2.0])


def test_numbers_with_a_stray_string_are_reported():
    d = load("co2").astype({"conc": object})
    d.loc[5, "conc"] = "n/a"
    d.loc[9, "conc"] = "1,5"
    with pytest.raises(mm.DataError, match=r"column 'conc' holds numbers except for 2 values: 'n/a' \(row 5\), '1,5' \(row 9\)"):
        mm.lmer("uptake ~ conc + (1 | Plant)", d)
    with pytest.raises(mm.DataError, match=r"'uptake' holds numbers except .*the response must be numeric"):
        mm.lmer("uptake ~ Type + (1 | Plant)", load("co2").astype({"uptake": object}).assign(uptake=lambda x: x["uptake"].where(x.index != 3, "?")))
    # asking for a factor is allowed
    assert build_design("uptake ~ factor(conc) + (1 | Plant)", d, warn=False).fixed_names[1].startswith("factor(conc)")
    assert build_design("uptake ~ conc + (1 | Plant)", d.astype({"conc": "category"}), warn=False).X.shape[1] == 9


def test_decimal_commas_are_reported():
    d = load("co2")
    d["conc"] = d["conc"].map(lambda v: f"{v / 1000:.3f}".replace(".", ","))
    with pytest.raises(mm.DataError, match="decimal comma"):
        mm.lmer("uptake ~ conc + (1 | Plant)", d)


# ---- 7. empty strings are a level -----------------------------------------------------------------


def test_empty_string_is_a_level_as_in_r():
    d = load("co2")
    d.loc[d["Plant"] == "Qn1", "Plant"] = ""
    with pytest.warns(MixedModelsWarning, match=r"7 empty strings \(\"\"\) in 'Plant' kept as a level"):
        result = mm.lmer("uptake ~ Type + log(conc) + (1 | Plant)", d)
    assert_matches(result, "empty_level")
    assert result.model.terms[0].nlevels == MODELS["empty_level"]["ngrps"]["Plant"] == 12
    assert any("empty strings" in m for m in result.model.design.messages)
    # the same for a predictor: "" is a level (the first, so the reference)
    p = build_design("uptake ~ Plant + (1 | Type)", d, warn=False)
    assert p.fixed_names[1] == "PlantMc1" and len(p.fixed_names) == 12


# ---- 8. factor(), y ~ ., contrasts --------------------------------------------------------------


def test_factor_call_matches_lme4():
    assert_matches(reference_fit("factor_call"), "factor_call")


def test_dot_expands_to_every_other_column_as_lme4():
    d = load("co2")[["uptake", "conc", "Treatment", "Plant"]]
    assert_matches(reference_fit("dot", d), "dot", theta=False)  # Plant fixed and random: θ is flat


def test_dot_is_only_for_the_fixed_part():
    d = load("co2")
    with pytest.raises(mm.FormulaError, match="only allowed in the fixed-effects part"):
        build_design("uptake ~ conc + (. | Plant)", d)
    assert "uptake" not in build_design("log(uptake) ~ . + (1 | Plant)", d[["uptake", "conc", "Plant"]], warn=False).fixed_names[1:]


@pytest.mark.parametrize("coding", ["sum", "contr.sum"])
def test_sum_contrasts_argument_matches_lme4(coding):
    assert_matches(reference_fit("sum_contrasts", contrasts={"Type": coding, "Treatment": coding}), "sum_contrasts")


def test_sum_contrasts_in_the_formula_match_lme4():
    assert_matches(reference_fit("sum_in_formula"), "sum_in_formula")
    d = load("co2")
    design = build_design("uptake ~ C(Type, contr = contr.sum) + (1 | Plant)", d, warn=False)
    assert design.fixed_names == ("(Intercept)", "C(Type, contr = contr.sum)1")


def test_contrasts_argument_errors():
    d = load("co2")
    with pytest.raises(mm.FormulaError, match="unknown coding 'helmert'"):
        build_design("uptake ~ Type + (1 | Plant)", d, contrasts={"Type": "helmert"})
    with pytest.raises(mm.DataError, match="unknown column 'Typ'"):
        build_design("uptake ~ Type + (1 | Plant)", d, contrasts={"Typ": "sum"})
    with pytest.raises(mm.DataError, match="contrasts apply only to factors"):
        build_design("uptake ~ conc + (1 | Plant)", d, contrasts={"conc": "sum"})
    with pytest.warns(MixedModelsWarning, match="contrasts for 'Treatment' ignored"):
        build_design("uptake ~ Type + (1 | Plant)", d, contrasts={"Treatment": "sum"})
    with pytest.raises(mm.FormulaError, match="unknown contrasts 'helmert'"):
        build_design("uptake ~ C(Type, helmert) + (1 | Plant)", d)
    with pytest.raises(mm.FormulaError, match="keyword argument 'levels' is not allowed"):
        build_design("uptake ~ C(Type, levels = 1) + (1 | Plant)", d)


def test_sum_contrasts_predict_and_anova():
    d = load("co2")
    result = fit("uptake ~ Type * Treatment + log(conc) + (1 | Plant)", d, contrasts={"Type": "sum", "Treatment": "sum"})
    np.testing.assert_allclose(result.predict(d), result.fitted, rtol=1e-10)
    table = result.anova()
    treatment = fit("uptake ~ Type * Treatment + log(conc) + (1 | Plant)", d).anova()
    np.testing.assert_allclose(table["F value"].to_numpy(), treatment["F value"].to_numpy(), rtol=1e-6)
