"""lme4 formula syntax: splitting, expansion of ||, / and :, and malformed formulas."""

from __future__ import annotations

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
