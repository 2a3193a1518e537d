"""Variance partition: intraclass correlations and Nakagawa–Schielzeth R², as R's ``performance``.

With ``σ²_f = var(Xβ̂)`` (the variance of the fixed-effect predictions), ``σ²_k`` the variance of
grouping factor k's random effects averaged over the observations (Johnson 2014:
``mean_i z_i' G_k z_i``, which is the variance itself for a random intercept) and ``σ²_ε`` the
residual variance (Nakagawa, Johnson & Schielzeth 2017)::

    ICC_adjusted    = Σσ²_k / (Σσ²_k + σ²_ε)
    ICC_conditional = Σσ²_k / (σ²_f + Σσ²_k + σ²_ε)
    R²_marginal     = σ²_f / (σ²_f + Σσ²_k + σ²_ε)
    R²_conditional  = (σ²_f + Σσ²_k) / (σ²_f + Σσ²_k + σ²_ε)

Per grouping factor the same ratios are reported with σ²_k alone in the numerator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .bootstrap import parametric_bootstrap

if TYPE_CHECKING:
    from ..results import LinearMixedModelResults


def _group_names(result: "LinearMixedModelResults") -> list[str]:
    from ..ranef import unique_group_names

    return unique_group_names([t.group for t in result.terms])


def variance_components(result: "LinearMixedModelResults") -> dict[str, Any]:
    """``{"fixed": σ²_f, "random": {factor: σ²_k}, "residual": σ²_ε}``.

    A term's random-effect variance is ``mean_i z_i' G z_i`` over the observations, with ``z_i``
    the term's columns (so a random slope's contribution depends on the covariate's values).
    """
    f = result.fitted_fixed
    constant = np.ptp(f) <= 1e-12 * max(1.0, float(np.max(np.abs(f))))
    fixed = 0.0 if constant or result.nobs < 2 else float(np.var(f, ddof=1))
    random: dict[str, float] = {}
    for name, t, cov in zip(_group_names(result), result.terms, result.covariances):
        G = cov.to_numpy()
        random[name] = float(np.mean(np.einsum("ni,ij,nj->n", t.z, G, t.z) * t.relationship_diagonal()[t.refs]))
    return {"fixed": fixed, "random": random, "residual": float(result.sigma**2)}


def _icc_values(result: "LinearMixedModelResults") -> np.ndarray:
    vc = variance_components(result)
    ran = np.array(list(vc["random"].values()))
    total_ran = ran.sum()
    adj_den = total_ran + vc["residual"]
    cond_den = vc["fixed"] + adj_den
    return np.r_[ran / adj_den, total_ran / adj_den, ran / cond_den, total_ran / cond_den]


def _ci_frame(B: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    B = B[~np.isnan(B).any(axis=1)]
    a = (1 - level) / 2
    return np.quantile(B, a, axis=0), np.quantile(B, 1 - a, axis=0)


def icc(
    result: "LinearMixedModelResults", *, ci: float | None = None, nsim: int = 500, seed: int | None = None, n_jobs: int = 1, progress: bool | None = None
) -> pd.DataFrame:
    """Intraclass correlations per grouping factor and in total (``performance::icc``).

    Parameters
    ----------
    result : LinearMixedModelResults
    ci : float, optional
        Confidence level of parametric-bootstrap percentile intervals (e.g. 0.95); none by default.
    nsim, seed, n_jobs, progress
        Bootstrap settings.

    Returns
    -------
    pandas.DataFrame
        Rows: one per grouping factor, then ``total``; columns ``adjusted`` and ``conditional``
        (and their ``_lower``/``_upper`` bounds when ``ci`` is given).
    """
    names = _group_names(result) + ["total"]
    k = len(names)
    values = _icc_values(result)
    out = pd.DataFrame({"adjusted": values[:k], "conditional": values[k:]}, index=pd.Index(names, name="group"))
    if ci is not None:
        B = parametric_bootstrap(result, _icc_values, nsim, seed=seed, n_jobs=n_jobs, progress=progress)
        lo, hi = _ci_frame(B, ci)
        out["adjusted_lower"], out["adjusted_upper"] = lo[:k], hi[:k]
        out["conditional_lower"], out["conditional_upper"] = lo[k:], hi[k:]
    return out


def _r2_values(result: "LinearMixedModelResults") -> np.ndarray:
    vc = variance_components(result)
    ran = sum(vc["random"].values())
    total = vc["fixed"] + ran + vc["residual"]
    return np.array([vc["fixed"] / total, (vc["fixed"] + ran) / total])


def r2(
    result: "LinearMixedModelResults", *, ci: float | None = None, nsim: int = 500, seed: int | None = None, n_jobs: int = 1, progress: bool | None = None
) -> dict[str, float]:
    """Nakagawa–Schielzeth marginal and conditional R² (``performance::r2_nakagawa``).

    With ``ci`` (e.g. 0.95), also ``marginal_lower``/``_upper`` and ``conditional_lower``/``_upper``
    from a parametric bootstrap.
    """
    m, c = _r2_values(result)
    out = {"marginal": float(m), "conditional": float(c)}
    if ci is not None:
        B = parametric_bootstrap(result, _r2_values, nsim, seed=seed, n_jobs=n_jobs, progress=progress)
        lo, hi = _ci_frame(B, ci)
        out.update(marginal_lower=float(lo[0]), marginal_upper=float(hi[0]), conditional_lower=float(lo[1]), conditional_upper=float(hi[1]))
    return out
