"""compare(): model names, the refit note, integer Df and formulas in its displays (lme4's anova(m0, m1))."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.exceptions import ModelError

REF = json.loads((Path(__file__).parent / "reference" / "results_reference.json").read_text())["compare"]
F0, F1 = REF["formulas"]


@pytest.fixture(scope="module")
def sleep():
    return mm.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def reml_fits(sleep):
    return mm.lmer(F0, sleep), mm.lmer(F1, sleep)


@pytest.fixture(scope="module")
def ml_fits(sleep):
    return mm.lmer(F0, sleep, REML=False), mm.lmer(F1, sleep, REML=False)


def test_ml_fits_are_not_refitted(ml_fits):
    m0, m1 = ml_fits
    for refit in (None, True):
        comp = mm.compare(m0, m1, refit=refit)
        assert comp.refitted is False and comp.to_dict()["refitted_ml"] is False
        assert "refitting" not in str(comp) and "refitting" not in comp._repr_html_()
        assert comp.models[0] is m0 and comp.models[1] is m1
    assert REF["ml_fits"]["messages"] == []  # lme4 says nothing either


def test_reml_fits_refitted_say_so(reml_fits):
    r0, r1 = reml_fits
    comp = mm.compare(r0, r1, refit=True)
    assert comp.refitted is True and comp.to_dict()["refitted_ml"] is True
    assert str(comp).splitlines()[0] == REF["reml_fits"]["messages"][0]
    assert all(m.method == "ML" for m in comp.models)
    # the default keeps REML when only the random effects differ
    kept = mm.compare(r0, r1)
    assert kept.refitted is False and "refitting" not in str(kept)
    assert all(m.method == "REML" for m in kept.models)


def test_models_are_named_by_their_variables(ml_fits):
    m0, m1 = ml_fits
    comp = mm.compare(m0, m1)
    assert comp.names == REF["ml_fits"]["rownames"] == ["m0", "m1"]
    assert list(comp.table.index) == ["m0", "m1"]
    assert "m0: " + F0 in str(comp) and "m1: " + F1 in str(comp)
    assert [m["name"] for m in comp.to_dict()["models"]] == ["m0", "m1"]
    # order by parameters, names follow their models
    assert mm.compare(m1, m0).names == ["m0", "m1"]


def test_models_named_in_a_function_and_by_keyword(ml_fits):
    def inner(fits):
        null, alt = fits
        return mm.compare(null, alt)

    assert inner(ml_fits).names == ["null", "alt"]
    assert mm.compare(small=ml_fits[0], big=ml_fits[1]).names == ["small", "big"]
    assert mm.compare(*ml_fits, names=["A", "B"]).names == ["A", "B"]
    with pytest.raises(ModelError, match="names"):
        mm.compare(*ml_fits, names=["A"])


def test_unbound_models_get_generic_names(ml_fits):
    fits = list(ml_fits)
    assert mm.compare(*fits).names == ["model1", "model2"]
    same = ml_fits[0]
    other = same  # two names for one object: ambiguous, not guessed
    assert mm.compare(same, ml_fits[1]).names[0] == "model1"
    del other


def test_df_is_an_integer_and_html_shows_formulas(reml_fits):
    r0, r1 = reml_fits
    comp = mm.compare(r0, r1)
    html = comp._repr_html_()
    assert F0 in html.replace("&amp;", "&") and F1 in html
    cells = re.findall(r"<td>([^<]*)</td>", html)
    assert str(REF["reml_fits"]["df"][1]) in cells and "2.0" not in cells
    lines = str(comp).splitlines()
    header = next(line for line in lines if "npar" in line)
    assert lines[-1].split()[header.split().index("Df") + 1] == "2"  # the row name comes first
    assert comp.table["Df"].iloc[1] == 2 and pd.isna(comp.table["Df"].iloc[0])
    assert comp.to_dict()["tests"][0]["df"] == 2


def test_compare_table_prints_in_full(reml_fits):
    r0, r1 = reml_fits
    table = mm.compare(r0, r1).table
    with pd.option_context("display.width", 60):
        text = repr(table)
    assert "..." not in text and "Pr(>Chisq) boundary" in text


def test_readme_states_the_refit_rule():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("## Comparing models") : readme.index("## Formulas")]
    assert "refit=True" in section and "REML" in section and "random effects" in section


def test_linear_model_null_is_named(sleep):
    from mixedmodels.linear import LinearModelResults

    lm0 = LinearModelResults.from_formula("Reaction ~ Days", sleep, reml=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.lmer(F0, sleep)
    assert mm.compare(lm0, m).names == ["lm0", "m"]
