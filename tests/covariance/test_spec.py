"""Parsing residual covariance specifications (mmrm's syntax) and taking them out of model formulas."""

from __future__ import annotations

import pytest

from mixedmodels.covariance import ResidualSpec, extract_residual, parse_residual
from mixedmodels.exceptions import FormulaError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("us(visit | subject)", ResidualSpec("us", "visit", "subject")),
        ("ar1(visit | arm / subject)", ResidualSpec("ar1", "visit", "subject", "arm")),
        ("  car1( time|id )  ", ResidualSpec("car1", "time", "id")),
        ("sp_exp(time | id)", ResidualSpec("car1", "time", "id")),
        ("UN(visit | id)", ResidualSpec("us", "visit", "id")),
        ("arh1(visit|id)", ResidualSpec("ar1h", "visit", "id")),
        ("toeph(AVISIT | ARMCD/USUBJID)", ResidualSpec("toeph", "AVISIT", "USUBJID", "ARMCD")),
        ("csh(`visit week` | `subject.id`)", ResidualSpec("csh", "visit week", "subject.id")),
        ("iid", ResidualSpec("iid", None, None)),
        ("iid(id)", ResidualSpec("iid", None, "id")),
        ("iid(arm / id)", ResidualSpec("iid", None, "id", "arm")),
        ("diag(visit | id)", ResidualSpec("diag", "visit", "id")),
    ],
)
def test_parse(text, expected):
    assert parse_residual(text) == expected


@pytest.mark.parametrize("kind", ["us", "toep", "toeph", "ar1", "ar1h", "cs", "csh", "ad", "adh", "diag", "car1"])
def test_every_structure_parses_and_prints_back(kind):
    spec = parse_residual(f"{kind}(visit | arm / id)")
    assert spec.structure == kind
    assert parse_residual(str(spec)) == spec
    assert str(spec) == f"{kind}(visit | arm / id)"
    assert spec.columns == ("visit", "arm", "id")


def test_print_quotes_names():
    spec = ResidualSpec("us", "visit week", "id")
    assert str(spec) == "us(`visit week` | id)"
    assert parse_residual(str(spec)) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("foo(visit | id)", "unknown residual covariance structure 'foo'; known: us"),
        ("us(visit)", "no '|'"),
        ("us(visit | id | x)", "more than one '|'"),
        ("us(visit | a / b / id)", "one grouping variable"),
        ("us", "needs its variables"),
        ("us()", "needs its variables"),
        ("sp_exp(x, y | id)", "one time variable"),
        ("us(visit + 1 | id)", "time must be a column name"),
        ("us(visit | id + 1)", "subject must be a column name"),
        ("us(visit | visit)", "different columns"),
        ("us(visit | id", "cannot read"),
        ("3us(visit | id)", "cannot read"),
    ],
)
def test_malformed_specifications(text, message):
    with pytest.raises(FormulaError, match=message.replace("(", r"\(").replace("|", r"\|")):
        parse_residual(text)


def test_not_a_string():
    with pytest.raises(FormulaError, match="string"):
        parse_residual(3)  # type: ignore[arg-type]


def test_spec_validation():
    with pytest.raises(FormulaError, match="needs a time"):
        ResidualSpec("us", None, "id")
    with pytest.raises(FormulaError, match="unknown"):
        ResidualSpec("bogus", "t", "id")


def test_extract_residual_from_an_mmrm_formula():
    rest, spec = extract_residual("FEV1 ~ RACE + SEX + ARMCD * AVISIT + us(AVISIT | USUBJID)")
    assert rest == "FEV1 ~ RACE + SEX + ARMCD * AVISIT"
    assert spec == ResidualSpec("us", "AVISIT", "USUBJID")
    rest, spec = extract_residual("y ~ log(x) + sp_exp(time | arm / id) + (1 | site)")
    assert rest == "y ~ log(x) + (1 | site)" and spec == ResidualSpec("car1", "time", "id", "arm")
    assert extract_residual("y ~ x + (1 | g)") == ("y ~ x + (1 | g)", None)
    assert extract_residual("y ~ cs(visit | id)")[0] == "y ~ 1"
    with pytest.raises(FormulaError, match="more than one"):
        extract_residual("y ~ ar1(v | id) + cs(v | id)")
