"""Power by simulation: exactness of each test's p-values, independence from the number of processes,
and agreement with the exact power of the t-test a balanced random-slope design reduces to.

The comparison with simr's own power curve (1,000 simulations per size) is too slow for the suite;
it is in benchmarks/bench_power.py, with simr's numbers in benchmarks/power_simr.json.
"""

from __future__ import annotations

import math
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedmodels as mm
from mixedmodels.exceptions import ModelError
from mixedmodels.inference.power import (
    PowerModel,
    clopper_pearson,
    extend,
    make_lmer,
    power,
    simulate_model,
    tidy_sizes,
)
from mixedmodels.model import LinearMixedModel

SLEEP = "Reaction ~ Days + (Days | Subject)"


@cache
def _sleep():
    return mm.lmer(SLEEP, mm.datasets.load("sleepstudy"))


def _responses(pm: PowerModel, nsim: int, seed: int) -> tuple[LinearMixedModel, np.ndarray]:
    """The responses power() simulates without ``along`` (the same model, parameters and generator)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LinearMixedModel.from_formula(pm.formula, pm.data.reset_index(drop=True), reml=pm.reml)
    beta = np.array([pm.beta[n] for n in model.design.fixed_names])
    return model, simulate_model(model, beta, pm.params, pm.sigma, nsim, np.random.default_rng(seed))


def _refit(model: LinearMixedModel, y: np.ndarray, reml: bool = True):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.with_response(y).with_reml(reml).fit(warn=False)


def test_pvalues_do_not_depend_on_the_number_of_processes():
    one = power(_sleep(), "Days", 4.0, nsim=24, along="Subject", sizes=[5, 9], seed=11, progress=False)
    two = power(_sleep(), "Days", 4.0, nsim=24, along="Subject", sizes=[5, 9], seed=11, n_jobs=2, progress=False)
    assert np.array_equal(one.pvalues, two.pvalues, equal_nan=True)
    other = power(_sleep(), "Days", 4.0, nsim=24, along="Subject", sizes=[5, 9], seed=12, progress=False)
    assert not np.array_equal(one.pvalues, other.pvalues)
    assert list(one.table["size"]) == [5, 9] and list(one.table["nobs"]) == [50, 90]
    assert (one.table["successes"] == (one.pvalues < 0.05).sum(axis=1)).all()


def _balanced(m: int) -> pd.DataFrame:
    return pd.DataFrame({"Subject": np.repeat([f"s{i:02d}" for i in range(m)], 10), "Days": np.tile(np.arange(10.0), m)})


def test_kr_power_is_the_exact_power_of_the_slope_t_test():
    # Balanced design, unstructured (intercept, slope): the KR F-test of Days is the one-sample t-test of the
    # subjects' least-squares slopes (df m - 1) whenever the REML covariance is positive definite, so the
    # power is that of a noncentral t.
    m, beta, sd_slope, sigma = 12, 4.0, 6.0, 10.0
    pm = make_lmer("y ~ Days + (Days | Subject)", _balanced(m), {"(Intercept)": 250.0, "Days": beta},
                   [np.array([[25.0**2, 0.0], [0.0, sd_slope**2]])], sigma)
    nsim, seed = 300, 5
    curve = power(pm, "Days", nsim=nsim, seed=seed, progress=False)
    assert curve.test == "kr" and curve.table["failed"].iloc[0] == 0
    _, Y = _responses(pm, nsim, seed)
    days = np.arange(10.0) - 4.5
    slopes = (Y.reshape(m, 10, nsim) * days[None, :, None]).sum(axis=1) / (days @ days)
    t = slopes.mean(axis=0) / (slopes.std(axis=0, ddof=1) / math.sqrt(m))
    p_t = 2 * stats.t.sf(np.abs(t), m - 1)
    # equal up to where BOBYQA stops (median 5e-6 relative); a REML covariance on the boundary would differ more
    assert np.quantile(np.abs(curve.pvalues[0] - p_t) / p_t, 0.97) < 1e-4
    assert np.array_equal(curve.pvalues[0] < 0.05, p_t < 0.05)
    var = sd_slope**2 + sigma**2 / (days @ days)
    nc = beta / math.sqrt(var / m)
    crit = stats.t.ppf(0.975, m - 1)
    exact = float(stats.nct.sf(crit, m - 1, nc) + stats.nct.cdf(-crit, m - 1, nc))
    se = math.sqrt(exact * (1 - exact) / nsim)
    assert abs(curve.table["power"].iloc[0] - exact) < 3.5 * se


def test_each_test_is_the_test_of_a_refit():
    fit = _sleep()
    pm = PowerModel.from_fit(fit).with_effect(["Days"], 5.0)
    nsim, seed = 3, 2
    _, Y = _responses(pm, nsim, seed)
    curves = {t: power(fit, "Days", 5.0, nsim=nsim, seed=seed, test=t, progress=False) for t in ("kr", "satterthwaite", "z", "lr")}
    null = LinearMixedModel.from_formula("Reaction ~ 1 + (Days | Subject)", mm.datasets.load("sleepstudy"), reml=False)
    for j in range(nsim):
        refit = fit.refit(Y[:, j], warn=False)
        assert curves["kr"].pvalues[0, j] == pytest.approx(refit.coef_table("kenward-roger").loc["Days", "Pr(>|t|)"], rel=1e-6)
        assert curves["satterthwaite"].pvalues[0, j] == pytest.approx(refit.coef_table().loc["Days", "Pr(>|t|)"], rel=1e-6)
        z = refit.beta[1] / math.sqrt(refit.vcov.iloc[1, 1])
        assert curves["z"].pvalues[0, j] == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-6)
        full_ml = _refit(fit.model, Y[:, j], reml=False)
        null_ml = _refit(null, Y[:, j], reml=False)
        lrt = 2 * (full_ml.loglik - null_ml.loglik)
        assert curves["lr"].pvalues[0, j] == pytest.approx(stats.chi2.sf(lrt, 1), rel=1e-4)


def test_a_factor_is_tested_by_its_coefficients_with_the_lr_test():
    cake = mm.datasets.load("cake")
    fit = mm.lmer("angle ~ recipe + temp + (1 | replicate)", cake)
    curve = power(fit, "recipe", {"recipeB": 2.0}, nsim=8, seed=1, progress=False)
    assert curve.test == "lr" and curve.coefficients == ("recipeB", "recipeC")
    assert curve.value["recipeB"] == 2.0 and curve.value["recipeC"] == pytest.approx(fit.beta[2])
    kr = power(fit, "recipe", [1.0, 1.0], nsim=4, seed=1, test="kr", progress=False)
    assert kr.value == {"recipeB": 1.0, "recipeC": 1.0} and np.isfinite(kr.pvalues).all()


def test_extend_copies_levels_in_order():
    d = mm.datasets.load("sleepstudy")
    frame, rows, labels = extend(d, "Subject", 20)
    assert len(frame) == 200 and labels[:18] == [str(s) for s in d["Subject"].cat.categories] and labels[18] == "308.1"
    assert np.array_equal(frame["Days"].to_numpy(), d["Days"].to_numpy()[rows])
    assert list(frame["Subject"].cat.categories) == labels
    sub, rows5, labels5 = extend(d, "Subject", 5)
    assert len(sub) == 50 and labels5 == labels[:5] and np.array_equal(rows5, np.arange(50))
    assert tidy_sizes(18) == [3, 5, 6, 8, 10, 11, 13, 15, 16, 18] and tidy_sizes(6) == [3, 4, 5, 6] and tidy_sizes(2) == [2]
    with pytest.raises(ModelError, match="numeric"):
        extend(d, "Days", 12)


def test_extended_design_simulates_the_fitted_model():
    fit = _sleep()
    curve = power(fit, "Days", nsim=4, along="Subject", sizes=[30], seed=3, progress=False)
    assert curve.table["nobs"].iloc[0] == 300 and curve.value == {"Days": pytest.approx(fit.beta[1])}
    # the simulated responses have the model's moments: 4000 draws of the 180-row design
    pm = PowerModel.from_fit(fit)
    _, Y = _responses(pm, 4000, 1)
    day9 = Y[9::10].ravel()  # the last day of every subject
    G = fit.covariances[0].to_numpy()
    var9 = G[0, 0] + 81 * G[1, 1] + 18 * G[0, 1] + fit.sigma**2
    assert day9.mean() == pytest.approx(fit.beta[0] + 9 * fit.beta[1], abs=4 * math.sqrt(var9 / day9.size) * 3)
    assert day9.var() == pytest.approx(var9, rel=0.06)


def test_make_lmer_parameters():
    d = _balanced(6)
    G = np.array([[4.0, 1.0], [1.0, 2.0]])
    pm = make_lmer("y ~ Days + (Days | Subject)", d, [1.0, 0.5], [G], 2.0)
    model, _ = _responses(pm, 1, 0)
    lam = model.terms[0].lambda_matrix(pm.params)
    np.testing.assert_allclose(4.0 * lam @ lam.T, G, rtol=1e-12)
    assert pm.beta == {"(Intercept)": 1.0, "Days": 0.5}
    with pytest.raises(ModelError, match="fixef"):
        make_lmer("y ~ Days + (Days | Subject)", d, [1.0], [G], 2.0)
    with pytest.raises(ModelError, match="covariance"):
        make_lmer("y ~ Days + (Days | Subject)", d, [1.0, 0.5], [np.eye(3)], 2.0)
    with pytest.raises(ModelError, match="positive"):
        make_lmer("y ~ Days + (Days | Subject)", d, [1.0, 0.5], [np.array([[1.0, 2.0], [2.0, 1.0]])], 2.0)


def test_clopper_pearson_is_scipys_exact_interval():
    for x, n in [(0, 20), (7, 20), (20, 20), (431, 1000)]:
        ci = stats.binomtest(x, n).proportion_ci(0.95, method="exact")
        assert clopper_pearson(x, n) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_output_plot_and_errors(tmp_path):
    fit = _sleep()
    curve = power(fit, "Days", 3.0, nsim=6, along="Subject", sizes=[4, 8], seed=1, progress=False)
    d = curve.to_dict()
    assert d["test"] == "kr" and d["value"] == {"Days": 3.0} and [s["size"] for s in d["sizes"]] == [4, 8]
    assert "by number of levels of Subject" in str(curve)
    fig = curve.plot()
    fig.savefig(tmp_path / "power.png")
    assert len(fig.axes[0].lines) >= 2 and fig.axes[0].get_xlabel() == "number of levels of Subject"
    single = power(fit, "Days", nsim=2, seed=1, progress=False)
    with pytest.raises(ModelError, match="along"):
        single.plot()
    with pytest.raises(ModelError, match="neither a coefficient"):
        power(fit, "Nope", nsim=2)
    with pytest.raises(ModelError, match="sizes needs along"):
        power(fit, "Days", nsim=2, sizes=[3])
    with pytest.raises(ModelError, match="not a column"):
        power(fit, "Days", nsim=2, along="Nope")
    with pytest.raises(ModelError, match="test must be"):
        power(fit, "Days", nsim=2, test="wald")
    with pytest.raises(ModelError, match="REML"):
        power(fit.refit_ml(), "Days", nsim=2, test="kr")
    with pytest.raises(ModelError, match="coefficients"):
        power(fit, "Days", [1.0, 2.0], nsim=2)


@pytest.mark.parametrize("kind", ["iid", "residual", "variance"])
def test_simulation_is_the_fits_simulate(kind):
    # power() draws responses as LinearMixedModelResults.simulate does, for residual structures and variance functions too
    trial = pd.read_csv(Path(__file__).parents[1] / "reference" / "data" / "residual_trial.csv")
    kw = {"iid": {}, "residual": {"residual": "ar1(visit | id)"}, "variance": {"variance": "ident(arm)"}}[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mm.lmer("y ~ arm * visit + base + (1 | id)", trial, **kw)
    ours = simulate_model(fit.model, fit.beta, fit.theta, fit.sigma, 3, np.random.default_rng(4))
    np.testing.assert_allclose(ours, fit.simulate(3, seed=np.random.default_rng(4)), rtol=1e-12, atol=1e-9)
    curve = power(fit, "base", 0.5, nsim=4, seed=1, test="satterthwaite", progress=False)
    assert curve.table["failed"].iloc[0] == 0 and np.isfinite(curve.pvalues).all()
