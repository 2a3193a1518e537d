"""Binomial and count responses in every form R takes, and the errors for responses the family cannot take."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from glmm_refs import FITS, fit

import mixedmodels.datasets as ds
from mixedmodels.exceptions import DataError, FormulaError, ModelError
from mixedmodels.glmm import GeneralizedLinearMixedModel


def _binary() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 240
    g = rng.integers(0, 12, n)
    x = rng.normal(size=n)
    y = rng.binomial(1, 1 / (1 + np.exp(-(0.3 + 0.8 * x + rng.normal(0, 0.7, 12)[g]))))
    return pd.DataFrame({"y": y.astype(float), "x": x, "g": [f"g{v}" for v in g]})


def _deviance(formula: str, data: pd.DataFrame, **kw) -> tuple[float, np.ndarray]:
    model = GeneralizedLinearMixedModel.from_formula(formula, data, **kw)
    theta = np.full(model.n_theta, 0.8)
    beta = np.linspace(-0.3, 0.4, model.nfixed)
    return model.deviance(theta, beta), model.response.y


@pytest.mark.parametrize("kind", ["bool", "string", "categorical", "object_bool"])
def test_binary_response_forms_give_the_same_model(kind):
    d = _binary()
    ref, y0 = _deviance("y ~ x + (1 | g)", d)
    e = d.copy()
    if kind == "bool":
        e["y"] = d["y"] == 1
    elif kind == "string":
        e["y"] = np.where(d["y"] == 1, "yes", "no")  # sorted levels: "no" first, a failure (R's factor())
    elif kind == "categorical":
        e["y"] = pd.Categorical(np.where(d["y"] == 1, "Y", "N"), categories=["N", "Y"])
    else:
        e["y"] = pd.Series(list(d["y"] == 1), dtype=object)
    dev, y = _deviance("y ~ x + (1 | g)", e)
    assert dev == pytest.approx(ref, rel=1e-12)
    assert np.array_equal(y, y0)


def test_first_factor_level_is_the_failure_as_r():
    d = _binary()
    e = d.assign(y=pd.Categorical(np.where(d["y"] == 1, "Y", "N"), categories=["Y", "N"]))
    _, y = _deviance("y ~ x + (1 | g)", e)
    assert np.array_equal(y, 1.0 - d["y"].to_numpy())


def test_cbind_proportions_and_expressions_agree():
    cbpp = ds.load("cbpp")
    a, ya = _deviance("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    b, yb = _deviance("incidence/size ~ period + (1 | herd)", cbpp, weights="size")
    c, _ = _deviance("cbind(incidence, fails) ~ period + (1 | herd)", cbpp.assign(fails=cbpp["size"] - cbpp["incidence"]))
    d, _ = _deviance("prop ~ period + (1 | herd)", cbpp.assign(prop=cbpp["incidence"] / cbpp["size"]), weights="size")
    assert a == pytest.approx(b, rel=1e-12) and a == pytest.approx(c, rel=1e-12) and a == pytest.approx(d, rel=1e-12)
    assert np.allclose(ya, cbpp["incidence"] / cbpp["size"]) and np.allclose(yb, ya)
    # the proportion fit is the cbind fit (glmer gives the same numbers: FITS cbpp_laplace and cbpp_prop)
    assert fit("cbpp_prop").loglik == pytest.approx(fit("cbpp_laplace").loglik, abs=1e-8)
    assert FITS["cbpp_prop"]["tight"]["loglik"] == pytest.approx(FITS["cbpp_laplace"]["tight"]["loglik"], abs=1e-8)


def test_cbind_rows_missing_either_side_are_dropped_and_counted():
    cbpp = ds.load("cbpp").astype({"size": float})
    cbpp.loc[[0, 5], "size"] = np.nan
    with pytest.warns(UserWarning, match="2 rows with missing values dropped"):
        model = GeneralizedLinearMixedModel.from_formula("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    assert model.nobs == 54 and model.design.n_dropped == 2


@pytest.mark.parametrize(
    "frame_change, weights, match",
    [
        ({"y": [0.0, 2.0]}, None, r"must lie in \[0, 1\]"),
        ({"y": [0.5, 0.25]}, None, "has proportions .* but no weights"),
        ({"y": [0.5, 0.3]}, "w", "non-integer numbers of successes"),
    ],
)
def test_bad_binomial_responses(frame_change, weights, match):
    d = _binary()
    d["w"] = 4.0
    for i, v in enumerate(frame_change["y"]):
        d.loc[i, "y"] = v
    with pytest.raises(DataError, match=match):
        GeneralizedLinearMixedModel.from_formula("y ~ x + (1 | g)", d, weights=weights)


def test_bad_counts_and_cbind():
    d = _binary()
    with pytest.raises(DataError, match="non-negative counts"):
        GeneralizedLinearMixedModel.from_formula("y ~ x + (1 | g)", d.assign(y=d["y"] - 1), family="poisson")
    with pytest.raises(DataError, match="whole-number counts"):
        GeneralizedLinearMixedModel.from_formula("y ~ x + (1 | g)", d.assign(y=d["y"] + 0.5), family="poisson")
    with pytest.raises(DataError, match="failures must not be negative"):
        GeneralizedLinearMixedModel.from_formula("cbind(y, y - 1) ~ x + (1 | g)", d)
    with pytest.raises(DataError, match="successes must be whole numbers"):
        GeneralizedLinearMixedModel.from_formula("cbind(y + 0.5, 2 - y) ~ x + (1 | g)", d)
    with pytest.raises(ModelError, match="cbind.* needs the binomial family"):
        GeneralizedLinearMixedModel.from_formula("cbind(y, 1 - y) ~ x + (1 | g)", d, family="poisson")
    with pytest.raises(DataError, match="has 3 levels"):
        GeneralizedLinearMixedModel.from_formula("y ~ x + (1 | g)", d.assign(y=np.array(["a", "b", "c"] * 80)))
    with pytest.raises(DataError, match="not numeric"):
        GeneralizedLinearMixedModel.from_formula("y ~ x + (1 | g)", d.assign(y=np.where(d["y"] == 1, "a", "b")), family="poisson")
    with pytest.raises(ModelError, match="Response is constant"):
        GeneralizedLinearMixedModel.from_formula("y ~ x + (1 | g)", d.assign(y=1.0))
    with pytest.raises(FormulaError, match="two arguments"):
        GeneralizedLinearMixedModel.from_formula("cbind(y) ~ x + (1 | g)", d)
    with pytest.raises(FormulaError, match="not allowed"):
        GeneralizedLinearMixedModel.from_formula("cbind(y, system(y)) ~ x + (1 | g)", d)


def test_observation_level_random_effect_is_allowed():
    """As glmer (lme4's allow.n = TRUE), unlike lmer: one level per observation models overdispersion
    (the fit itself is checked against glmer and glmmTMB as grouseticks_olre in test_glmm_reference)."""
    m = fit("grouseticks_olre")
    assert m.ngroups["INDEX"] == m.nobs == 403
    with pytest.raises(ModelError, match="must be less than the number of observations"):
        import mixedmodels as mm

        mm.lmer("TICKS ~ YEAR + (1 | INDEX)", ds.load("grouseticks"))


def test_prior_weights_count_rows_as_r():
    """R's prior weights multiply each row's log-likelihood: weight 2 is the row written twice (same level)."""
    po = pd.read_csv(__import__("glmm_refs").REFERENCE / "data" / "glmm_poisson.csv")
    once, _ = _deviance("y ~ x + offset(log(exposure)) + (1 | g)", po, family="poisson", weights=np.full(len(po), 2.0))
    twice, _ = _deviance("y ~ x + offset(log(exposure)) + (1 | g)", pd.concat([po, po]), family="poisson")
    assert once == pytest.approx(twice, rel=1e-12)


def test_offset_argument_equals_formula_offset():
    po = pd.read_csv(__import__("glmm_refs").REFERENCE / "data" / "glmm_poisson.csv")
    a, _ = _deviance("y ~ x + offset(log(exposure)) + (1 + x | g)", po, family="poisson")
    b, _ = _deviance("y ~ x + (1 + x | g)", po.assign(le=np.log(po["exposure"])), family="poisson", offset="le")
    assert a == pytest.approx(b, rel=1e-12)
