"""Correlation of a subject's observations across time points: observed, and implied by a fitted model.

The empirical matrix is R's ``cor(W, use = "pairwise.complete.obs")`` of ``W``, the subjects × time
points matrix of least-squares residuals (the response less its fixed-effects fit, so that group
differences and covariates do not pass for correlation). The implied one is the fitted model's
``V = ZGZ' + R`` for a subject observed at every time point (:mod:`..inference.implied`), as a
correlation. A random intercept implies one correlation at every lag (compound symmetry, the
assumption behind an unadjusted RM-ANOVA); a random slope or an AR(1) residual lets it decay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..exceptions import MixedModelsError

if TYPE_CHECKING:
    from ..results import LinearMixedModelResults
    from .layout import Layout


def pairwise_correlation(wide: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pearson correlations over the rows where both columns are observed, and those counts.

    R's ``cor(wide, use = "pairwise.complete.obs")``: each pair's means and SDs come from its own
    rows. NaN with fewer than two shared rows or a constant column.
    """
    W = wide.to_numpy(dtype=float)
    k = W.shape[1]
    C = np.full((k, k), np.nan)
    N = np.zeros((k, k), dtype=int)
    obs = ~np.isnan(W)
    for a in range(k):
        for b in range(a, k):
            both = obs[:, a] & obs[:, b]
            N[a, b] = N[b, a] = int(both.sum())
            if both.sum() < 2:
                continue
            x, y = W[both, a] - W[both, a].mean(), W[both, b] - W[both, b].mean()
            den = np.sqrt((x @ x) * (y @ y))
            if den > 0:
                C[a, b] = C[b, a] = float(x @ y / den)
    cols = list(wide.columns)
    return pd.DataFrame(C, index=cols, columns=cols), pd.DataFrame(N, index=cols, columns=cols)


def _subject_block(fit: "LinearMixedModelResults", layout: "Layout", subject: str) -> tuple[np.ndarray, np.ndarray]:
    ic = fit.implied_covariance(group=layout.subject, level=subject)
    pos = fit.design.row_index.get_indexer(ic.covariance.index)
    return ic.covariance.to_numpy(), layout.long["time"].to_numpy()[pos]


def implied_correlation(fit: "LinearMixedModelResults", layout: "Layout") -> tuple[pd.DataFrame | None, str | None, str | None]:
    """The fitted model's correlation between time points, from its implied covariance of one subject.

    Returns
    -------
    correlation : pandas.DataFrame or None
        ``K × K``, labelled by the time levels (None when the model gives no covariance by subject).
    subject : str or None
        The subject it was read from: the first observed at every time point. When no subject is
        complete, the covariances are averaged, pair by pair, over the subjects observed at both
        times (the same as any one subject's when the model's covariance does not depend on the group)
        and ``subject`` is None.
    note : str or None
        Why there is no matrix, or how it was assembled.
    """
    k = layout.n_times
    wide = layout.wide()
    complete = wide.index[wide.notna().all(axis=1)]
    try:
        if len(complete):
            V, codes = _subject_block(fit, layout, complete[0])
            order = np.argsort(codes)
            V = V[np.ix_(order, order)]
            sd = np.sqrt(np.diag(V))
            return pd.DataFrame(V / np.outer(sd, sd), index=layout.labels, columns=layout.labels), str(complete[0]), None
        total, count = np.zeros((k, k)), np.zeros((k, k))
        for s in wide.notna().sum(axis=1).sort_values(ascending=False, kind="stable").index:
            V, codes = _subject_block(fit, layout, s)
            total[np.ix_(codes, codes)] += V
            count[np.ix_(codes, codes)] += 1
            if (count > 0).all():
                break
    except MixedModelsError as exc:
        return None, None, f"no implied correlation: {exc}"
    with np.errstate(invalid="ignore", divide="ignore"):
        V = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        sd = np.sqrt(np.diag(V))
        C = V / np.outer(sd, sd)
    note = "no subject is observed at every time point: the implied covariances are averaged over the subjects observed at each pair"
    return pd.DataFrame(C, index=layout.labels, columns=layout.labels), None, note


def by_lag(matrices: dict[str, pd.DataFrame | None]) -> pd.DataFrame:
    """Mean correlation at each lag (time levels apart) of each matrix: the decay a random intercept cannot show."""
    rows = []
    k = next(m.shape[0] for m in matrices.values() if m is not None)
    for lag in range(1, k):
        row = {"lag": lag}
        for name, m in matrices.items():
            d = np.diagonal(m.to_numpy(), offset=lag) if m is not None else np.array([np.nan])
            row[name] = float(np.nanmean(d)) if np.isfinite(d).any() else float("nan")
        rows.append(row)
    return pd.DataFrame(rows).set_index("lag")
