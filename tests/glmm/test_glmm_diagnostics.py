"""Binned residuals against performance 0.10.2 (tests/reference/glmm_inference.R) and the GLMM plots."""

from __future__ import annotations

import json
import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from glmm_refs import REFERENCE

import mixedmodels.datasets as ds
from mixedmodels import plots
from mixedmodels.exceptions import ModelError
from mixedmodels.glmm import glmer
from mixedmodels.plots.glmm import observed_fitted_table

REF = json.loads((REFERENCE / "glmm_inference.json").read_text())["binned"]
COLUMNS = ["xbar", "ybar", "n", "x.lo", "x.hi", "se", "ci_range", "CI_low", "CI_high"]


@pytest.fixture(scope="module")
def binary():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return glmer(REF["formula"], pd.read_csv(REFERENCE / "data" / REF["data"]), family="binomial")


@pytest.fixture(scope="module")
def cbpp():
    return glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", ds.load("cbpp"), family="binomial")


@pytest.mark.parametrize(("key", "term", "n_bins"), [("fitted", None, None), ("by_x", "x", 8)])
def test_binned_residuals_match_performance(binary, key, term, n_bins):
    ours = binary.binned_residuals(term, n_bins=n_bins)
    ref = pd.DataFrame(REF[key])
    assert len(ours) == len(ref)
    np.testing.assert_array_equal(ours["n"], ref["n"])
    for c in COLUMNS:
        np.testing.assert_allclose(ours[c].to_numpy(dtype=float), ref[c].to_numpy(dtype=float), rtol=1e-4, atol=1e-6, err_msg=c)
    assert list(ours["group"]) == list(ref["group"])
    if term is None:
        assert ours.attrs["resid_ok"] == pytest.approx(REF["resid_ok"])


def test_binned_residuals_errors(binary):
    with pytest.raises(ModelError, match="not a column"):
        binary.binned_residuals("nope")
    with pytest.raises(ModelError, match="two bins"):
        binary.binned_residuals(n_bins=1)


def test_observed_vs_fitted_table_is_the_herds_proportions(cbpp):
    d = ds.load("cbpp")
    t = observed_fitted_table(cbpp, "herd")
    sums = d.groupby("herd", observed=True)[["incidence", "size"]].sum()
    np.testing.assert_allclose(t["observed"], (sums["incidence"] / sums["size"]).to_numpy())
    assert t["n"].sum() == len(d)
    # the conditional fit follows the herds more closely than the population-level one
    assert np.abs(t["observed"] - t["conditional"]).sum() < np.abs(t["observed"] - t["population"]).sum()


def test_plots_draw(cbpp, binary):
    fig = plots.binned_residuals_plot(binary)
    ax = fig.axes[0]
    assert "of bins within" in ax.get_title()
    n_points = sum(len(line.get_xdata()) for line in ax.lines if line.get_marker() == "o")
    assert n_points == len(binary.binned_residuals())
    fig = plots.observed_vs_fitted(cbpp)
    assert fig.axes[0].get_title() == "Observed vs fitted by herd"
    assert len(plots.caterpillar(cbpp).axes) == 1
    with pytest.raises(ModelError, match="not a grouping factor"):
        plots.observed_vs_fitted(cbpp, "period")
