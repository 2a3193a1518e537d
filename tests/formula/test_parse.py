"""lme4 formula syntax: splitting, expansion of ||, / and :, and malformed formulas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.formula import RandomTermSpec, parse_formula


def terms(text):
    return [(t.expr, t.group) for t in parse_formula(text).random]


def test_fixed_and_random_parts():
    f = parse_formula("Reaction ~ Days + (Days | Subject)")
    assert f.response == "Reaction"
    assert f.fixed == "Days"
    assert f.random == (RandomTermSpec("Days", ("Subject",)),)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("y ~ x + (1 | g)", [("1", ("g",))]),
        ("y ~ x + (1 + x | g)", [("1 + x", ("g",))]),
        ("y ~ x + (0 + x | g)", [("0 + x", ("g",))]),
        ("y ~ (1 | g1) + (1 | g2)", [("1", ("g1",)), ("1", ("g2",))]),
        ("y ~ 1 + (1 | a/b)", [("1", ("a",)), ("1", ("b", "a"))]),
        ("y ~ 1 + (1 | a/b/c)", [("1", ("a",)), ("1", ("b", "a")), ("1", ("c", "b", "a"))]),
        ("y ~ 1 + (1 | a:b)", [("1", ("a", "b"))]),
        ("y ~ x + (x || g)", [("1", ("g",)), ("0 + x", ("g",))]),
        ("y ~ x + (0 + x + z || g)", [("0 + x", ("g",)), ("0 + z", ("g",))]),
        ("y ~ x + (1 | g) + (0 + x | g)", [("1", ("g",)), ("0 + x", ("g",))]),
    ],
)
def test_random_terms(text, expected):
    assert terms(text) == expected


def test_group_label_of_nested_term():
    assert parse_formula("y ~ (1 | batch/cask)").random[1].group_label == "cask:batch"


@pytest.mark.parametrize(
    "text, fixed",
    [
        ("y ~ x1 * f + (1 | g)", "x1 * f"),
        ("y ~ 0 + x + (1 | g)", "0 + x"),
        ("y ~ x - 1 + (1 | g)", "x - 1"),
        ("y ~ (1 | g)", "1"),
        ("y ~ (1 | g) - 1", "1 -1"),
    ],
)
def test_fixed_part(text, fixed):
    assert parse_formula(text).fixed.replace(" ", "") == fixed.replace(" ", "")


@pytest.mark.parametrize(
    "text, message",
    [
        ("y x + (1 | g)", "exactly one '~'"),
        ("y ~ x ~ z", "exactly one '~'"),
        ("y ~ x + (1 | g", "not closed"),
        ("y ~ x + 1 | g)", "position"),
        ("y ~ x + (1 | )", "no grouping factor"),
        ("y ~ x + ( | g)", "nothing before the bar"),
        ("y ~ x + 1 | g", "inside parentheses"),
        ("~ x", "no response"),
        ("y ~ ", "no predictors"),
        ("", "empty"),
        ("y ~ x + + z", "empty term"),
    ],
)
def test_malformed(text, message):
    with pytest.raises(mm.FormulaError, match=message):
        parse_formula(text)


@pytest.fixture(scope="module")
def small():
    return pd.DataFrame(
        {"y": [1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 6.0, 8.0], "x": range(8), "Days": range(8), "g": list("aabbccdd")}
    )


@pytest.mark.parametrize(
    "formula, message",
    [
        ('y ~ __import__("os") + (1 | g)', "unexpected character"),
        ("y ~ open(x) + (1 | g)", "function 'open' is not allowed"),
        ("y ~ x.__class__ + (1 | g)", "unknown column"),
        ("y ~ np.log(x) + (1 | g)", "not allowed"),
        ("y ~ x[0] + (1 | g)", "unexpected character"),
        ("y ~ exec(x) + (1 | g)", "not allowed"),
    ],
)
def test_formulas_never_execute_code(small, formula, message):
    with pytest.raises(mm.MixedModelsError, match=message):
        mm.LinearMixedModel.from_formula(formula, small)


def test_unknown_column_suggests_close_names(small):
    with pytest.raises(mm.DataError, match="did you mean 'Days'"):
        mm.LinearMixedModel.from_formula("y ~ Dayz + (1 | g)", small)
    with pytest.raises(mm.DataError, match="unknown column 'h'"):
        mm.LinearMixedModel.from_formula("y ~ x + (1 | h)", small)


def test_allowed_transforms(small):
    model = mm.LinearMixedModel.from_formula("log(y) ~ sqrt(x) + I(x ** 2) + (1 | g)", small)
    assert model.design.fixed_names == ("(Intercept)", "sqrt(x)", "I(x ** 2)")


# --- Random-effects columns after evaluation: what each piece of syntax means for the model ----------


@pytest.fixture(scope="module")
def two_factor():
    return pd.DataFrame(
        {
            "y": [1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 6.0, 8.0, 2.0, 3.0, 1.0, 5.0],
            "x": [0.1, 0.5, 0.3, 0.9, 1.2, 0.4, 0.8, 0.2, 0.7, 0.6, 1.1, 1.3],
            "z": [float(i % 5) for i in range(12)],
            "g": list("aabbccddaabb"),
            "h": list("xyxyxyxyxyxy"),
        }
    )


def columns(formula, data):
    model = mm.LinearMixedModel.from_formula(formula, data)
    return [(t.group, t.cnames, t.nlevels) for t in model.terms]


@pytest.mark.parametrize(
    "formula, expected",
    [
        ("y ~ 1 + (x | g)", [("g", ("(Intercept)", "x"), 4)]),  # a slope implies the intercept
        ("y ~ 1 + (1 + x | g)", [("g", ("(Intercept)", "x"), 4)]),
        ("y ~ 1 + (0 + x | g)", [("g", ("x",), 4)]),
        ("y ~ 1 + (x - 1 | g)", [("g", ("x",), 4)]),
        ("y ~ 1 + (x || g)", [("g", ("(Intercept)",), 4), ("g", ("x",), 4)]),
        ("y ~ 1 + (x + z || g)", [("g", ("(Intercept)",), 4), ("g", ("x",), 4), ("g", ("z",), 4)]),
        ("y ~ 1 + (1 | g) + (0 + x | g)", [("g", ("(Intercept)",), 4), ("g", ("x",), 4)]),
        # crossed factors; terms sorted by decreasing number of levels whatever the written order
        ("y ~ 1 + (1 | h) + (1 | g)", [("g", ("(Intercept)",), 4), ("h", ("(Intercept)",), 2)]),
        ("y ~ 1 + (1 | g:h)", [("g:h", ("(Intercept)",), 8)]),
        ("y ~ 1 + (1 | g/h)", [("h:g", ("(Intercept)",), 8), ("g", ("(Intercept)",), 4)]),
    ],
)
def test_random_term_columns(two_factor, formula, expected):
    assert columns(formula, two_factor) == expected


def test_theta_names_follow_lme4(two_factor):
    model = mm.LinearMixedModel.from_formula("y ~ x + (x | g) + (1 | h)", two_factor)
    assert model.theta_names == ["g.(Intercept)", "g.x.(Intercept)", "g.x", "h.(Intercept)"]
    assert list(model.lower_bounds) == [0.0, -np.inf, 0.0, 0.0]


def test_nested_factor_levels_are_interactions(two_factor):
    term = mm.LinearMixedModel.from_formula("y ~ 1 + (1 | g/h)", two_factor).terms[0]
    assert term.group == "h:g"
    assert sorted(term.levels) == sorted(f"{a}:{b}" for a in "xy" for b in "abcd")


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ 0 + x + (1 | g)",
        "y ~ x + 0 + (1 | g)",
        "y ~ x - 1 + (1 | g)",
        "y ~ -1 + x + (1 | g)",
        "y ~ (1 | g) + x - 1",
        "y ~ x + (1 | g) - 1",
    ],
)
def test_fixed_part_without_intercept(two_factor, formula):
    model = mm.LinearMixedModel.from_formula(formula, two_factor)
    assert model.design.fixed_names == ("x",)
    assert [t.cnames for t in model.terms] == [("(Intercept)",)]


def test_random_terms_are_removed_from_the_fixed_part():
    f = parse_formula("y ~ x + (1 | g) + z + (0 + x | h)")
    assert f.fixed.replace(" ", "") == "x+z"
    assert [(t.expr, t.group_label) for t in f.random] == [("1", "g"), ("0 + x", "h")]


def test_unbalanced_parenthesis_reports_its_position():
    with pytest.raises(mm.FormulaError, match=r"unexpected '\)' at position 14"):
        parse_formula("y ~ x + 1 | g)")
    with pytest.raises(mm.FormulaError, match=r"1 '\(' not closed"):
        parse_formula("y ~ x + (1 | g")


@pytest.mark.parametrize(
    "text, message",
    [
        ("y ~ x + (1 | g/)", "empty grouping factor"),
        ("y ~ x + (1 | /g)", "empty grouping factor"),
        ("y ~ x + (1 | g:)", "empty name"),
        ("y ~ x + (1 ||  )", "no grouping factor"),
        ("y ~ x + g | h", "inside parentheses"),
        ("y | g ~ x + (1 | g)", "inside parentheses|cannot contain"),
    ],
)
def test_more_malformed(text, message):
    with pytest.raises(mm.FormulaError, match=message):
        parse_formula(text)


# --- The safety check: formulas are data, never code ------------------------------------------------


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ x.mean() + (1 | g)",  # method call
        "y ~ I(x.__class__) + (1 | g)",  # attribute inside an allowed transform
        "y ~ x + (x.real | g)",  # attribute in a random-effects term
        "y ~ x + (1 | g.__class__)",  # attribute as grouping factor
        "y.__class__ ~ x + (1 | g)",  # attribute in the response
        'y ~ getattr(x, "real") + (1 | g)',
        "y ~ globals() + (1 | g)",
        "y ~ lambda: 1 + (1 | g)",
        "y ~ {x} + (1 | g)",
    ],
)
def test_attribute_access_and_calls_rejected(small, formula):
    with pytest.raises(mm.MixedModelsError):
        mm.LinearMixedModel.from_formula(formula, small)


def test_hostile_formula_does_not_run(small, tmp_path):
    target = tmp_path / "pwned"
    for formula in (
        f'y ~ __import__("os").system("touch {target}") + (1 | g)',
        f"__import__('os').system('touch {target}') ~ x + (1 | g)",
        f'y ~ I(__import__("os").system("touch {target}")) + (1 | g)',
        f'y ~ x + (1 | g) + open("{target}", "w")',
    ):
        with pytest.raises(mm.MixedModelsError):
            mm.LinearMixedModel.from_formula(formula, small)
    assert not target.exists()


def test_unknown_columns_anywhere(small):
    with pytest.raises(mm.DataError, match="unknown column 'yy'.*did you mean 'y'"):
        mm.LinearMixedModel.from_formula("yy ~ x + (1 | g)", small)
    with pytest.raises(mm.DataError, match="unknown column 'Dys'.*did you mean 'Days'"):
        mm.LinearMixedModel.from_formula("y ~ x + (Dys | g)", small)
    with pytest.raises(mm.DataError, match="unknown column 'gg'"):
        mm.LinearMixedModel.from_formula("y ~ x + (1 | gg/g)", small)
    with pytest.raises(mm.DataError, match="unknown column 'qwertyuiop'") as info:
        mm.LinearMixedModel.from_formula("y ~ qwertyuiop + (1 | g)", small)
    assert "did you mean" not in str(info.value)


@pytest.mark.parametrize("group", ["x + g", "1", "log(x)", "g * x"])
def test_grouping_factor_must_be_column_names(small, group):
    with pytest.raises(mm.FormulaError):
        mm.LinearMixedModel.from_formula(f"y ~ x + (1 | {group})", small)


def test_uncorrelated_term_without_columns():
    with pytest.raises(mm.FormulaError, match="has no columns"):
        parse_formula("y ~ x + (0 || g)")
