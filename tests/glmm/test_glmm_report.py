"""The HTML report of a GLMM fit: its sections hold the fit's own numbers."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd
from glmm_refs import REFERENCE

import mixedmodels.datasets as ds
from mixedmodels.glmm import glmer


def _sections(text: str) -> list[str]:
    return re.findall(r"<h[23]>([^<]*)", text)


def test_binomial_report(tmp_path):
    fit = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", ds.load("cbpp"), family="binomial",
                data_name="cbpp")
    path = fit.report(str(tmp_path / "r.html"))
    text = Path(path).read_text(encoding="utf-8")
    assert _sections(text) == ["Model", "Data", "Fixed effects", "Random effects", "ICC and Nakagawa's R² on the latent scale",
                               "Conditional and marginal effects", "period", "Fit diagnostics", "Plots"]
    assert f"{fit.icc()['ICC_adjusted']:.4g}" in text
    me = fit.marginal_effects("period")
    assert f"{me.ratios['marginal'].iloc[2]:.4g}" in text  # 1 / 4
    assert "odds ratio" in text and "data: cbpp" in text
    assert text.count("data:image/png;base64,") == 3  # caterpillar, binned residuals, observed vs fitted
    assert "http://" not in text and "https://" not in text


def test_negative_binomial_report_says_what_is_not_defined(tmp_path):
    d = pd.read_csv(REFERENCE / "data" / "glmm_nb.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = glmer("y ~ x + f + (1 | g)", d, family="nbinom2")
    text = Path(fit.report(str(tmp_path / "nb.html"))).read_text(encoding="utf-8")
    assert "latent-scale variances are defined here for binomial" in text
    assert "rate ratio" in text and "dispersion" in text
    assert "<h3>f" in text
