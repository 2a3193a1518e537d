"""The fitted-model API beyond the lme4 reference numbers: display, fit record, data sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.engine import CrossProducts


@pytest.fixture(scope="module")
def sleep_fit():
    return mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"), data_name="sleepstudy")


def test_html_display(sleep_fit):
    html = sleep_fit._repr_html_()
    assert html.startswith("<div") and "<table>" in html and "Subject" in html and "Days" in html


def test_summary_layout(sleep_fit):
    text = str(sleep_fit.summary(ddf=None))
    lines = text.splitlines()
    assert lines[0] == "Linear mixed model fit by REML ['lmerMod']"
    assert lines[2] == "   Data: sleepstudy"
    assert any(line.startswith(" Subject  (Intercept)") for line in lines)
    assert "Correlation of Fixed Effects:" in text and "(Intr)" in text


def test_fit_record(sleep_fit):
    rec = sleep_fit.fit_record
    assert rec.optimizer == "nlopt LN_BOBYQA"
    assert rec.evaluations > 10 and rec.seconds > 0 and rec.return_code > 0
    assert rec.theta_start == (1.0, 0.0, 1.0)
    assert rec.max_scaled_gradient is not None and rec.max_scaled_gradient < 2e-3
    assert sleep_fit.converged and not sleep_fit.singular


def test_fitted_decomposes(sleep_fit):
    d = sleep_fit.model.design
    np.testing.assert_allclose(sleep_fit.fitted + sleep_fit.residuals, d.y)
    np.testing.assert_allclose(sleep_fit.fitted_fixed + sleep_fit.residuals_fixed, d.y)


def test_conditional_modes_sum_to_zero_like(sleep_fit):
    # BLUPs of a term with an intercept are shrunk towards zero; their mean is ~0
    re = sleep_fit.ranef()["Subject"]
    assert abs(re["(Intercept)"].mean()) < 1e-6 * re["(Intercept)"].abs().max() + 1e-8


def test_crossproducts_add_over_row_partitions():
    model = mm.LinearMixedModel.from_formula("diameter ~ 1 + (1 | plate) + (1 | sample)", mm.datasets.load("Penicillin"))
    d = model.design
    half = len(d.y) // 2

    def part(rows):
        terms = tuple(
            type(t)(t.group, t.group_vars, t.levels, t.refs[rows], t.z[rows], t.cnames, t.spec) for t in d.terms
        )
        return CrossProducts.from_arrays(terms, d.X[rows], d.y[rows])

    total = part(slice(0, half)) + part(slice(half, None))
    full = CrossProducts.from_arrays(d.terms, d.X, d.y)
    np.testing.assert_allclose(total.xx, full.xx)
    for a, b in zip(total.diag, full.diag):
        np.testing.assert_allclose(a, b)
    for key in full.off:
        a, b = total.off[key], full.off[key]
        np.testing.assert_allclose(getattr(a, "toarray", lambda: a)(), getattr(b, "toarray", lambda: b)())


def test_datasets():
    names = mm.datasets.list_datasets()
    assert {"sleepstudy", "Dyestuff", "Penicillin", "Pastes", "InstEval", "cake"} <= set(names)
    inst = mm.datasets.load("InstEval")
    assert len(inst) == 73421
    assert list(inst["dept"].cat.categories[:3]) == ["15", "5", "10"]  # lme4's level order
    with pytest.raises(mm.DataError, match="no bundled dataset"):
        mm.datasets.load("nope")


def test_predict_requires_grouping_columns(sleep_fit):
    with pytest.raises(mm.DataError, match="Subject"):
        sleep_fit.predict(pd.DataFrame({"Days": [1.0]}))
    np.testing.assert_allclose(
        sleep_fit.predict(pd.DataFrame({"Days": [1.0]}), include_random=False), sleep_fit.fe_params.sum()
    )


def test_large_mean_response_keeps_precision():
    """y and y + 1e8 give the same objective and shifted intercept: y is centred before cross-products."""
    data = mm.datasets.load("sleepstudy")
    base = mm.LinearMixedModel.from_formula("Reaction ~ Days + (Days | Subject)", data)
    shifted = mm.LinearMixedModel.from_formula(
        "Reaction ~ Days + (Days | Subject)", data.assign(Reaction=data["Reaction"] + 1e8)
    )
    theta = np.array([0.9, 0.02, 0.25])
    assert shifted.objective(theta) == pytest.approx(base.objective(theta), rel=1e-10)
    a, b = base.fit(), shifted.fit()
    assert b.beta[0] - 1e8 == pytest.approx(a.beta[0], rel=1e-9)
    np.testing.assert_allclose(b.ranef()["Subject"], a.ranef()["Subject"], rtol=1e-6, atol=1e-8)


def test_summary_with_satterthwaite(sleep_fit):
    lines = str(sleep_fit.summary()).splitlines()
    assert lines[0] == "Linear mixed model fit by REML. t-tests use Satterthwaite's method ['lmerModLmerTest']"
    head = next(i for i, line in enumerate(lines) if line.startswith("Fixed effects:"))
    assert lines[head + 1].split() == ["Estimate", "Std.", "Error", "df", "t", "value", "Pr(>|t|)"]
    assert lines[head + 2].split()[:4] == ["(Intercept)", "251.405", "6.825", "17.00"]
    assert lines[head + 3].split()[-2:] == ["3.26e-06", "***"]
