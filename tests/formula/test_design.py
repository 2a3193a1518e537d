"""Evaluating formulas on data: contrasts, factor levels, missing rows, dependent columns."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.formula.design import build_design, independent_columns


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(1)
    n = 40
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "f": rng.choice(["b", "a", "c"], size=n),
            "flag": rng.choice([True, False], size=n),
            "cat": pd.Categorical(rng.choice(["lo", "hi"], size=n), categories=["lo", "hi"]),
            "g": np.repeat(np.arange(10, 0, -1), 4),  # integer grouping column
        }
    )


def test_treatment_contrasts_with_r_reference_levels(frame):
    d = build_design("y ~ x * f + flag + cat + (1 | g)", frame)
    assert d.fixed_names == ("(Intercept)", "x", "fb", "fc", "flagTRUE", "cathi", "x:fb", "x:fc")


def test_integer_grouping_column_is_a_factor(frame):
    (term,) = build_design("y ~ x + (1 | g)", frame).terms
    assert term.nlevels == 10
    assert list(term.levels) == [str(i) for i in range(1, 11)]


def test_no_intercept_forms(frame):
    assert build_design("y ~ 0 + x + (1 | g)", frame).fixed_names == ("x",)
    assert build_design("y ~ x - 1 + (1 | g)", frame).fixed_names == ("x",)


def test_terms_sorted_by_number_of_levels(frame):
    f = frame.assign(h=np.tile([1, 2], 20))
    d = build_design("y ~ 1 + (1 | h) + (1 | g)", f)
    assert [t.group for t in d.terms] == ["g", "h"]


def test_missing_rows_dropped_counted_and_reported(frame):
    f = frame.copy()
    f.loc[[0, 5, 7], "x"] = np.nan
    f.loc[9, "y"] = np.nan
    f["unused"] = np.nan  # columns the model does not use do not matter
    with pytest.warns(mm.exceptions.DroppedRowsWarning, match="4 rows"):
        fit = mm.lmer("y ~ x + (1 | g)", f)
    assert fit.nobs == 36 and fit.n_dropped == 4
    assert "4 observations deleted due to missingness" in str(fit.summary())
    assert fit.to_dict()["n_dropped"] == 4


def test_every_row_missing_is_an_error(frame):
    f = frame.assign(x=np.nan)
    with pytest.raises(mm.DataError, match="no rows"):
        build_design("y ~ x + (1 | g)", f)


def test_dependent_columns_dropped_like_r():
    X = np.column_stack([np.ones(6), np.arange(6.0), 2 * np.arange(6.0), np.r_[1, 0, 1, 0, 1, 1.0]])
    assert independent_columns(X).tolist() == [0, 1, 3]


def test_grouping_factor_with_one_level(frame):
    with pytest.raises(mm.ModelError, match="more than one level"):
        build_design("y ~ x + (1 | k)", frame.assign(k="same"))


def test_as_many_levels_as_observations(frame):
    with pytest.raises(mm.ModelError, match="less than the number of observations"):
        build_design("y ~ x + (1 | id)", frame.assign(id=np.arange(len(frame))))


def test_non_numeric_response(frame):
    with pytest.raises(mm.DataError, match="numeric"):
        build_design("f ~ x + (1 | g)", frame)


def test_model_without_random_effects_is_refused(frame):
    with pytest.raises(mm.ModelError, match="no random-effects terms"):
        mm.LinearMixedModel.from_formula("y ~ x", frame)


def test_interaction_grouping_levels_and_predict(frame):
    f = frame.assign(h=np.tile(["p", "q"], 20))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mm.lmer("y ~ x + (1 | g:h)", f)
    (term,) = fit.model.terms
    assert term.group == "g:h" and term.levels[0] == "1:p"
    # predictions for the training rows reproduce the fitted values
    np.testing.assert_allclose(fit.predict(f), fit.fitted, rtol=1e-10, atol=1e-12)
