"""Binned residuals of a GLMM fit, as R's performance ``binned_residuals`` (Gelman and Hill's binned plot).

The rows are sorted by the fitted mean (or by a covariate, ``term``) and cut into ``n_bins`` bins of
about equal size (default ``round(√n)``; R's ``cut`` at the sorted values ``floor(n i / n_bins)``,
intervals closed on the right, tied breaks merged). In each bin: the mean fitted value ``xbar``, the mean
response residual ``ybar`` (``y − μ̂``, ``y`` the proportion for binomial counts), its range and the
interval ``ybar ± 1.96 sd / √n``; a bin is ``"yes"`` (consistent with the model) when
``|ybar| ≤ 1.96 sd / √n``. About 95% of bins should be.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.special import ndtri

from ..exceptions import ModelError
from ..report.table import Table

if TYPE_CHECKING:
    from .results import GeneralizedLinearMixedModelResults


def binned_residuals(fit: GeneralizedLinearMixedModelResults, term: str | None = None,
                     n_bins: int | None = None) -> pd.DataFrame:
    """Binned response residuals of ``fit`` (performance's ``binned_residuals(m, term, n_bins)``).

    Parameters
    ----------
    fit : GeneralizedLinearMixedModelResults
    term : str, optional
        A numeric data column to bin by instead of the fitted means.
    n_bins : int, optional
        Default ``round(√n)``.

    Returns
    -------
    pandas.DataFrame
        ``xbar``, ``ybar``, ``n``, ``x.lo``, ``x.hi``, ``se`` (1.96 × the bin's SE), ``ci_range`` (the SE),
        ``CI_low``, ``CI_high``, ``group`` (``"yes"``/``"no"``); bins with fewer than two rows are dropped.
        ``attrs["resid_ok"]`` is the share of ``"yes"`` bins.
    """
    fv = fit.fitted
    if term is None:
        pred = fv
    else:
        frame = fit.design.frame
        if frame is None or term not in frame.columns:
            raise ModelError(f"{term!r} is not a column of the data the model used")
        pred = pd.to_numeric(frame[term], errors="coerce").to_numpy(dtype=float)
        if np.isnan(pred).any():
            raise ModelError(f"{term!r} is not numeric")
    y = fit.model.response.y - fv
    n = pred.size
    nb = round(np.sqrt(n)) if n_bins is None else int(n_bins)
    if nb < 2:
        raise ModelError("binned residuals need at least two bins")
    idx = np.floor(n * np.arange(1, nb) / nb).astype(int)  # R's 1-based positions in the sorted values
    breaks = np.unique(np.concatenate([[-np.inf], np.sort(pred)[idx - 1], [np.inf]]))
    bins = np.searchsorted(breaks, pred, side="left")  # (b[j-1], b[j]] -> j
    z = float(ndtri(0.975))
    rows = []
    for j in range(1, nb + 1):
        items = bins == j
        k = int(items.sum())
        if k < 2:
            continue  # R's complete.cases drops empty bins and the NA sd of one row
        sd = float(np.std(y[items], ddof=1))
        xbar, ybar = float(pred[items].mean()), float(y[items].mean())
        rows.append({"xbar": xbar, "ybar": ybar, "n": k, "x.lo": float(pred[items].min()),
                     "x.hi": float(pred[items].max()), "se": z * sd / np.sqrt(k), "ci_range": sd / np.sqrt(k)})
    out = Table(rows)
    out["CI_low"] = out["ybar"] - z * out["ci_range"]
    out["CI_high"] = out["ybar"] + z * out["ci_range"]
    out["group"] = np.where(np.abs(out["ybar"]) > np.abs(out["se"]), "no", "yes")
    out.attrs["resid_ok"] = float(np.mean(out["group"] == "yes"))
    out.attrs["term"] = term
    return out
