"""Named checks of GLMM fits (lme4's messages where lme4 has them) and the reads of a results object."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from glmm_refs import FITS, data, fit

import mixedmodels.datasets as ds
from mixedmodels.exceptions import ConvergenceWarning, DataError, ModelError, SingularFitWarning
from mixedmodels.glmm import GeneralizedLinearMixedModel, glmer
from mixedmodels.glmm.checks import SeparationWarning, hessian_messages
from mixedmodels.glmm.pirls import PirlsError

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def test_quadrature_needs_one_scalar_term():
    va = ds.load("VerbAgg")
    with pytest.raises(ModelError, match="nAGQ > 1 is only available for models with a single, scalar random-effects term"):
        GeneralizedLinearMixedModel.from_formula("r2 ~ Anger + (1 | id) + (1 | item)", va, nAGQ=5)
    po = data("glmm_poisson.csv")
    with pytest.raises(ModelError, match="single, scalar"):
        GeneralizedLinearMixedModel.from_formula("y ~ x + (1 + x | g)", po, family="poisson", nAGQ=2)
    with pytest.raises(ModelError, match="between 0 and 100"):
        GeneralizedLinearMixedModel.from_formula(CBPP, ds.load("cbpp"), nAGQ=101)
    with pytest.raises(ModelError, match="no random-effects terms"):
        GeneralizedLinearMixedModel.from_formula("cbind(incidence, size - incidence) ~ period", ds.load("cbpp"))
    with pytest.raises(ModelError, match="link 'log' is not available for the binomial"):
        GeneralizedLinearMixedModel.from_formula(CBPP, ds.load("cbpp"), link="log")
    with pytest.raises(ModelError, match="unknown family"):
        GeneralizedLinearMixedModel.from_formula(CBPP, ds.load("cbpp"), family="tweedie")


def test_pirls_failure_is_named():
    with pytest.raises(PirlsError, match=r"PIRLS did not converge in 1 iterations at theta=\[1.0\]"):
        glmer(CBPP, ds.load("cbpp"), control={"pirls_maxit": 1})


def test_convergence_warnings_as_lme4():
    with pytest.warns(ConvergenceWarning) as record:
        m = glmer(CBPP, ds.load("cbpp"), control={"maxfun": 12})
    messages = [str(w.message) for w in record]
    assert any("convergence code 5 from bobyqa" in msg and "NLOPT_MAXEVAL_REACHED" in msg for msg in messages)
    assert any(msg.startswith("Model failed to converge with max|grad|") for msg in messages)
    assert not m.converged


def test_warning_categories():
    with pytest.warns(SingularFitWarning, match="boundary"):
        glmer("y ~ x + (1 | g)", data("glmm_singular.csv"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        glmer("y ~ x + trt + (1 | g)", data("glmm_separation.csv"))
    kinds = {(w.category, str(w.message).split(":")[0]) for w in caught}
    assert any(c is SeparationWarning and "trtC" in str(w.message) for w in caught for c in [w.category])
    assert (ConvergenceWarning, "unable to evaluate scaled gradient") in kinds
    assert any(c is ConvergenceWarning and m.startswith("variance-covariance matrix computed") for c, m in kinds)


def test_hessian_messages_follow_lme4():
    assert hessian_messages(np.diag([2.0, -1.0])) == ["Model failed to converge: degenerate Hessian with 1 negative eigenvalues"]
    assert hessian_messages(np.diag([2.0, 1e-9]), kind="fixed-effect")[0].startswith("fixed-effect Hessian is numerically singular")
    assert hessian_messages(np.diag([2e7, 1.0]))[0].startswith("Model is nearly unidentifiable: very large eigenvalue")
    assert hessian_messages(np.diag([2.0, 1.0])) == []


def test_start_values():
    cbpp = ds.load("cbpp")
    ref = fit("cbpp_laplace")
    m = glmer(CBPP, cbpp, start={"theta": [0.5], "fixef": [-1.0, -1.0, -1.0, -1.0]})
    assert m.loglik == pytest.approx(ref.loglik, abs=1e-6)
    assert glmer(CBPP, cbpp, start=[0.3], control={"nagq0_init": False}).loglik == pytest.approx(ref.loglik, abs=1e-6)
    with pytest.raises(ModelError, match="1 theta elements"):
        glmer(CBPP, cbpp, start=[0.3, 0.2])
    with pytest.raises(ModelError, match="bad name"):
        glmer(CBPP, cbpp, start={"beta": [0.0]})
    with pytest.raises(ModelError, match="4 elements"):
        glmer(CBPP, cbpp, start={"fixef": [0.0]})
    with pytest.raises(ModelError, match="unknown control setting"):
        glmer(CBPP, cbpp, control={"tolPwrss": 1e-7})


def test_nagq0_is_stage_one():
    ref, m = FITS["cbpp_agq0"]["tight"], fit("cbpp_agq0")
    assert m.model.nagq == 0 and m.outcome.hessian is None
    assert m.loglik == pytest.approx(ref["loglik"], abs=1e-4)
    # stage 1 gives β from the joint modes; the Laplace fit differs in the third digit
    assert m.beta == pytest.approx(np.array(ref["beta"]), rel=1e-4)
    assert not np.allclose(m.beta, fit("cbpp_laplace").beta, rtol=1e-3)


def test_fitted_values_residuals_and_predictions():
    m = fit("cbpp_laplace")
    r = m.model.response
    assert np.allclose(m.fitted, m.predict(type="response")) and np.allclose(m.linear_predictor, m.predict())
    assert np.allclose(m.predict(re_form="~0"), m.design.X @ m.beta)
    assert np.allclose(m.fitted_fixed, m.predict(type="response", re_form="~0"))
    assert np.allclose(m.resid_of("response"), r.y - m.fitted)
    assert m.deviance == pytest.approx(np.sum(m.resid_of("deviance") ** 2))
    assert np.allclose(m.predict(data("cbpp")), m.linear_predictor)  # new data equal to the old: the fit
    assert list(m.fittedvalues.index) == list(data("cbpp").index)
    with pytest.raises(ModelError, match="unknown residual type"):
        m.resid_of("partial")
    with pytest.raises(ModelError, match="type must be"):
        m.predict(type="probability")
    with pytest.raises(ModelError, match="re_form"):
        m.predict(re_form="~(1|herd)")
    with pytest.raises(DataError, match="new level"):
        m.predict(pd.DataFrame({"period": ["9"], "herd": ["1"]}))


def test_simulate():
    m = fit("cbpp_laplace")
    a, b = m.simulate(5, seed=42), m.simulate(5, seed=42)
    assert a.shape == (56, 5) and np.array_equal(a, b)
    trials = m.model.response.wt
    assert np.allclose(a * trials[:, None], np.round(a * trials[:, None]))  # proportions of the trials
    many = m.simulate(4000, seed=1, use_u=True)
    # given the modes, the mean proportion is the fitted mean: 4000 draws put it within 4 SEs
    se = np.sqrt(m.fitted * (1 - m.fitted) / trials / 4000)
    assert np.all(np.abs(many.mean(axis=1) - m.fitted) < 4 * se + 1e-12)
    counts = fit("poisson_offset").simulate(3, seed=3)
    assert np.all(counts == np.round(counts)) and np.all(counts >= 0)


def test_tables_and_dictionary():
    m = fit("verbagg")
    table = m.coef_table()
    assert list(table.columns) == ["Estimate", "Std. Error", "z value", "Pr(>|z|)"]
    assert list(m.ranef()) == ["id", "item"] and m.ngroups == {"id": 316, "item": 24}
    assert list(m.varcorr["grp"]) == ["id", "item"]
    ci = m.conf_int()
    assert np.all(ci[0] < m.params) and np.all(m.params < ci[1])
    out = m.to_dict()
    json.dumps(out)
    assert out["family"] == "binomial" and out["nAGQ"] == 1 and len(out["fixed_effects"]) == 6
    assert m.coef()["item"].shape == (24, 6)
    with pytest.raises(ModelError, match="z"):
        m.coef_table("satterthwaite")
