"""The exact restricted LRT against RLRsim's exactRLRT (tests/reference/rlrt.R)."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels.cli import main
from mixedmodels.exceptions import ModelError
from mixedmodels.inference.rlrt import exact_rlrt, null_eigenvalues, simulate_null

REF = json.loads((Path(__file__).parents[1] / "reference" / "rlrt.json").read_text())["cases"]
NSIM = 10000


def _fit(dataset, formula, reml=True):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer(formula, mm.datasets.load(dataset), REML=reml)


@pytest.fixture(scope="module")
def results():
    out = {}
    for key, c in REF.items():
        if "formula" in c:
            out[key] = exact_rlrt(_fit(c["dataset"], c["formula"]), nsim=NSIM, seed=1)
        else:
            fits = [_fit(c["dataset"], c[k]) for k in ("alt", "null", "single")]
            out[key] = exact_rlrt(*fits, nsim=NSIM, seed=1)
    return out


def _mc_tol(p: float, n: int) -> float:
    return 4 * math.sqrt(max(p * (1 - p), 1e-4) / n) + 1e-3


@pytest.mark.parametrize("key", [k for k in REF if k != "dyestuff2"])
def test_statistic_and_pvalue(results, key):
    ref = REF[key]
    res = results[key]
    assert res.statistic == pytest.approx(ref["statistic"], rel=1e-5, abs=1e-4)
    assert abs(res.p_value - ref["p_value"]) < _mc_tol(ref["p_value"], NSIM)
    # the simulated null: its point mass at zero and upper quantiles agree with RLRsim's
    assert abs(np.mean(res.sample == 0) - ref["mass_at_zero"]) < _mc_tol(ref["mass_at_zero"], NSIM)
    q = np.quantile(res.sample, [0.9, 0.95])
    np.testing.assert_allclose(q, ref["quantiles"][1:3], rtol=0.06)


def test_zero_statistic_needs_no_simulation(results):
    # Dyestuff2's variance estimate is 0: the statistic is 0 (RLRsim gets 6e-14 from rounding and simulates)
    res = results["dyestuff2"]
    assert res.statistic == pytest.approx(REF["dyestuff2"]["statistic"], abs=1e-8)
    assert res.p_value == 1.0 and res.nsim == 0


def test_seed_reproducible():
    fit = _fit("Dyestuff", "Yield ~ 1 + (1 | Batch)")
    a, b = exact_rlrt(fit, nsim=2000, seed=9), exact_rlrt(fit, nsim=2000, seed=9)
    assert a.p_value == b.p_value and np.array_equal(a.sample, b.sample)
    assert set(a.to_dict()) >= {"statistic", "p_value", "nsim"}


def test_balanced_oneway_null_matches_closed_form():
    # one-way balanced ANOVA: mu has K equal values, and P(RLRT = 0) = P(F ≤ 1) (Crainiceanu & Ruppert 2004, eq. 9)
    from scipy import stats

    K, m = 6, 5
    X = np.ones((K * m, 1))
    Z = np.kron(np.eye(K), np.ones((m, 1)))
    mu = null_eigenvalues(X, Z)
    np.testing.assert_allclose(mu[: K - 1], 1.0, rtol=1e-12)
    sample = simulate_null(mu, K * m, 1, 40000, np.random.default_rng(3))
    # F = [chi2_{K-1}/(K-1)] / [chi2_{n-K}/(n-K)]; the profile is flat at 0 when the between-group mean square is ≤ within
    expected = stats.f.cdf(1.0, K - 1, K * m - K)
    assert abs(np.mean(sample == 0) - expected) < 0.01


def test_errors():
    ss = mm.datasets.load("sleepstudy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vector = mm.lmer("Reaction ~ Days + (Days | Subject)", ss)
        ml = mm.lmer("Reaction ~ Days + (1 | Subject)", ss, REML=False)
        two = mm.lmer("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", ss)
        one = mm.lmer("Reaction ~ Days + (1 | Subject)", ss)
    with pytest.raises(ModelError, match="correlated effects"):
        exact_rlrt(vector)
    with pytest.raises(ModelError, match="REML"):
        exact_rlrt(ml)
    with pytest.raises(ModelError, match="exactly one random-effects term"):
        exact_rlrt(two)
    with pytest.raises(ModelError, match="give both"):
        exact_rlrt(two, one)
    with pytest.raises(ModelError, match="more parameters"):
        exact_rlrt(two, two, one)


def test_cli_rlrt_json(capsys):
    code = main(["rlrt", "Dyestuff", "--formula", "Yield ~ 1 + (1 | Batch)", "--nsim", "5000", "--seed", "1", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    d = json.loads(out)
    assert d["statistic"] == pytest.approx(REF["dyestuff"]["statistic"], rel=1e-5)
    assert abs(d["p_value"] - REF["dyestuff"]["p_value"]) < _mc_tol(REF["dyestuff"]["p_value"], 5000) and d["nsim"] == 5000
    code = main(["rlrt", "sleepstudy", "--formula", "Reaction ~ Days + (1|Subject) + (0+Days|Subject)"])
    assert code == 2 and "exactly one random-effects term" in capsys.readouterr().err
