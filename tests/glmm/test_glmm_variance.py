"""ICC and Nakagawa's R² of GLMM fits on the latent scale against performance 0.10.2 / insight 0.19.0
(tests/reference/glmm_inference.R, tight glmer fits)."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from glmm_refs import REFERENCE

import mixedmodels.datasets as ds
from mixedmodels.exceptions import ModelError
from mixedmodels.glmm import glmer

REF = json.loads((REFERENCE / "glmm_inference.json").read_text())
LATENT = REF["latent"]


def _data(name: str) -> pd.DataFrame:
    if name.endswith(".csv"):
        return pd.read_csv(REFERENCE / "data" / name)
    d = ds.load("cbpp")
    if name == "cbpp_obs":
        d = d.assign(obs=[str(i) for i in range(1, len(d) + 1)])
    return d


def _fit(case: str):
    c = LATENT[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return glmer(c["formula"], _data(c["data"]), family=c["family"], link=c["link"])


@pytest.mark.parametrize("case", sorted(LATENT))
def test_icc_and_r2_match_performance(case):
    ref = LATENT[case]
    fit = _fit(case)
    v = fit.latent_variances()
    # estimates agree with glmer's tight fits to ~1e-6; the Poisson null model is refitted (R: glmer's defaults)
    rtol = 2e-4
    np.testing.assert_allclose(v.fixed, ref["var_fixed"], rtol=rtol)
    np.testing.assert_allclose(v.random, ref["var_random"], rtol=rtol)
    np.testing.assert_allclose(v.distribution, ref["var_distribution"], rtol=rtol)
    np.testing.assert_allclose(v.dispersion, ref["var_dispersion"], rtol=rtol, atol=1e-12)
    icc, r2 = fit.icc(), fit.r2_nakagawa()
    for key in ("ICC_adjusted", "ICC_conditional", "ICC_unadjusted"):
        np.testing.assert_allclose(icc[key], ref["icc"][key], rtol=rtol, err_msg=key)
    for key in ("R2_conditional", "R2_marginal"):
        np.testing.assert_allclose(r2[key], ref["r2"][key], rtol=rtol, err_msg=key)


def test_logit_distribution_variance_and_singular_fit():
    fit = _fit("cbpp_logit")
    assert fit.latent_variances().distribution == pytest.approx(math.pi**2 / 3)
    d = pd.read_csv(REFERENCE / "data" / "glmm_singular.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sing = glmer("y ~ x + (1 | g)", d, family="binomial")
    ref = REF["latent_singular"]
    assert sing.singular and ref["is_singular"]
    # performance: NA ICC and conditional R², marginal R² without the random effects
    assert math.isnan(sing.icc()["ICC_adjusted"]) and math.isnan(sing.r2_nakagawa()["R2_conditional"])
    assert ref["r2"]["R2_conditional"] is None
    np.testing.assert_allclose(sing.latent_variances().fixed, ref["var_fixed"], rtol=1e-4)
    np.testing.assert_allclose(sing.r2_nakagawa()["R2_marginal"], ref["r2"]["R2_marginal"], rtol=1e-4)
    assert any("singular" in n for n in sing.latent_variances().notes)


def test_unsupported_family():
    d = pd.read_csv(REFERENCE / "data" / "glmm_nb.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = glmer("y ~ x + f + (1 | g)", d, family="nbinom2")
    with pytest.raises(ModelError, match="latent-scale variances"):
        fit.icc()
