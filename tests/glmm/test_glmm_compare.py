"""Likelihood-ratio tests between GLMMs with ``mm.compare``, against lme4's anova() of tightly converged
glmer fits (tests/reference/glmm_compare.json, made by tests/reference/glmm_compare.R)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

import mixedmodels as mm

REF = json.loads((Path(__file__).parents[1] / "reference" / "glmm_compare.json").read_text())


def test_compare_nested_glmms_as_lme4_anova():
    cbpp = mm.datasets.load("cbpp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g0 = mm.glmer("cbind(incidence, size - incidence) ~ 1 + (1 | herd)", cbpp, family="binomial")
        g1 = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial")
    table = mm.compare(g0, g1).table
    assert table["npar"].tolist() == REF["npar"]
    assert table["logLik"].to_numpy() == pytest.approx(REF["logLik"], abs=1e-4)
    assert table["AIC"].to_numpy() == pytest.approx(REF["AIC"], abs=2e-4)
    assert table["BIC"].to_numpy() == pytest.approx(REF["BIC"], abs=2e-4)
    assert table["Chisq"].iloc[1] == pytest.approx(REF["chisq"], rel=1e-4)
    assert table["Df"].iloc[1] == REF["df"]
    assert table["Pr(>Chisq)"].iloc[1] == pytest.approx(REF["p"], rel=1e-3)
