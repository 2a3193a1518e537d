"""Type III rows are named as lmerTest names them, whatever the coding or the column names."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

import mixedmodels as mm

CO2 = Path(__file__).parents[1] / "reference" / "data" / "CO2.csv"


@pytest.fixture(scope="module")
def co2():
    d = pd.read_csv(CO2)
    d["a b"] = d["Type"]
    d["class"] = d["conc"]
    return d


def fit(formula, data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer(formula, data)


def test_rows_named_as_r_and_coding_invariant(co2):
    base = fit("uptake ~ Type * Treatment + factor(conc) + (1 | Plant)", co2).anova()
    summed = fit("uptake ~ C(Type, sum) * Treatment + factor(conc) + (1 | Plant)", co2).anova()
    odd = fit("uptake ~ `a b` * Treatment + factor(class) + (1 | Plant)", co2).anova()
    assert list(base.index) == ["Type", "Treatment", "factor(conc)", "Type:Treatment"]
    assert list(summed.index) == ["C(Type, sum)", "Treatment", "factor(conc)", "C(Type, sum):Treatment"]
    assert list(odd.index) == ["`a b`", "Treatment", "factor(class)", "`a b`:Treatment"]
    for other in (summed, odd):
        assert other["F value"].to_numpy() == pytest.approx(base["F value"].to_numpy(), rel=1e-6)
        assert other["DenDF"].to_numpy() == pytest.approx(base["DenDF"].to_numpy(), rel=1e-5)
