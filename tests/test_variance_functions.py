"""Variance functions (nlme's varIdent, varPower, varExp of a covariate) against nlme 3.1-162.

References: tests/reference/variance.json, made by tests/reference/variance.R on the trial data
tests/reference/data/residual_trial.csv.
"""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

HERE = Path(__file__).parent / "reference"
REF = json.loads((HERE / "variance.json").read_text())
FIXED = "y ~ arm * visit + base"
CASES = {
    "ident": (FIXED, None, "ident(arm)"),
    "power": (FIXED, None, "power(base)"),
    "exp": (FIXED, None, "exp(time)"),
    "ident_ar1": (FIXED, "ar1(visit | id)", "ident(arm)"),
    "ri_exp": (FIXED + " + (1 | id)", None, "exp(time)"),
    "power_fitted": (FIXED, None, "power()"),
    "ri_power_fitted": (FIXED + " + (1 | id)", None, "power()"),
}


@cache
def trial() -> pd.DataFrame:
    return pd.read_csv(HERE / "data" / "residual_trial.csv")


@cache
def fit(case: str, reml: bool) -> mm.LinearMixedModelResults:
    formula, residual, variance = CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer(formula, trial(), REML=reml, residual=residual, variance=variance)


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_nlme(case, method):
    ref, m = REF[case][method], fit(case, method == "REML")
    assert m.loglik >= ref["loglik"] - 1e-4
    assert m.loglik == pytest.approx(ref["loglik"], abs=1e-3)
    assert m.beta == pytest.approx(ref["beta"], rel=1e-3, abs=1e-3)
    assert m.sigma == pytest.approx(ref["sigma"], rel=1e-3)
    got = [v for _, v in m.model.variance.natural(m.delta)]
    assert got == pytest.approx(list(np.atleast_1d(ref["varpar"])), rel=1e-3, abs=1e-4)


def test_reported_in_summary_json_and_cli(capsys):
    m = fit("ident", True)
    assert "Variance function: ident(arm)" in str(m.summary())
    doc = m.to_dict()
    assert doc["variance"]["function"] == "ident(arm)"
    assert doc["variance"]["parameters"][0]["estimate"] == pytest.approx(np.atleast_1d(REF["ident"]["REML"]["varpar"])[0], rel=1e-3)
    from mixedmodels.cli import main

    data = str(HERE / "data" / "residual_trial.csv")
    assert main(["fit", data, "--formula", FIXED, "--variance", "power(base)", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["loglik"] == pytest.approx(REF["power"]["REML"]["loglik"], abs=1e-3)


def test_satterthwaite_and_kenward_roger_df_are_finite():
    m = fit("exp", True)
    df = m.coef_table()["df"].to_numpy()
    assert np.all(np.isfinite(df)) and np.all(df > 10)
    kr = m.coef_table("kenward-roger")  # δ enters V non-linearly: the second-order term is not zero
    first = m.coef_table("kenward-roger-linear")
    assert np.all(np.isfinite(kr["df"])) and not np.allclose(kr["Std. Error"], first["Std. Error"], rtol=1e-8)


@pytest.mark.parametrize(
    "variance, message",
    [("exp()", "needs a column"), ("cube(x)", "cannot read"), ("ident(nope)", "unknown column 'nope'"),
     ("power(arm)", "numeric column")],
)
def test_bad_variance_functions(variance, message):
    with pytest.raises(mm.MixedModelsError, match=message):
        mm.lmer(FIXED, trial(), variance=variance)


def test_save_and_load_keep_the_variance_function(tmp_path):
    m = fit("ident_ar1", True)
    back = mm.load(m.save(tmp_path / "v.json"))
    assert back.loglik == pytest.approx(m.loglik, abs=1e-10)
    assert str(back.model.variance_spec) == "ident(arm)" and str(back.model.residual_spec) == "ar1(visit | id)"


def test_power_of_the_fitted_values_is_a_fixed_point_and_survives_save_and_load(tmp_path):
    m = fit("ri_power_fitted", True)
    assert np.max(np.abs(m.fitted - m.model.variance.x) / np.abs(m.fitted)) < 1e-5  # nlme's fitted(.): Xβ + Zb
    back = mm.load(m.save(tmp_path / "p.json"))
    assert back.loglik == pytest.approx(m.loglik, abs=1e-10)
    assert str(back.model.variance_spec) == "power()"


def test_simulations_follow_the_variance_function():
    m = fit("ident", True)
    sims = m.simulate(3000, seed=5, include_random=False)
    resid_sd = (sims - m.fitted[:, None]).std(axis=1)
    arm = trial()["arm"].to_numpy()[m.design.row_index]
    ratio = resid_sd[arm == "TRT"].mean() / resid_sd[arm == "PBO"].mean()
    assert ratio == pytest.approx(np.atleast_1d(REF["ident"]["REML"]["varpar"])[0], rel=0.03)


def test_bootstrap_intervals_cover_the_structure_and_variance_parameters():
    m = fit("ident_ar1", True)
    ci = m.confint("boot", nsim=40, seed=1)
    for name, value in [("residual rho", m.model.residual_structure.natural(m.rho, m.sigma)["value"].iloc[-1]),
                        ("variance sd ratio (arm=TRT)", float(np.exp(m.delta[0])))]:
        lo, hi = ci.loc[name]
        assert lo < value < hi
    assert list(ci.index[-len(m.beta):]) == list(m.params.index)
