"""The naive analyses of repeated measures, computed as R's ``lm``, ``t.test`` and ``oneway.test`` compute them.

* :func:`ols` — least squares on the fixed effects, every row an independent observation (``lm``).
* :func:`two_sample` — Welch's and the pooled two-sample t-test (``t.test(x, y)``, ``var.equal = TRUE``).
* :func:`paired`, :func:`one_sample` — ``t.test(x, y, paired = TRUE)`` and ``t.test(x)``.
* :func:`oneway` — Welch's one-way ANOVA (``oneway.test``) and the classical F-test (``anova(lm(y ~ g))``).
* :func:`subject_slopes` — each subject's least-squares slope on time (the summary-measure approach).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from ..exceptions import DataError

if TYPE_CHECKING:
    from ..formula.design import Design
    from .layout import Layout


@dataclass(frozen=True)
class Test:
    """A test statistic with its df and two-sided p-value (``df2`` for F-tests; ``estimate`` for t-tests)."""

    statistic: float
    df: float
    p_value: float
    df2: float | None = None
    estimate: float | None = None

    def to_dict(self) -> dict:
        """JSON-ready: ``statistic``, ``df`` (``num_df``/``den_df`` for an F), ``p_value``, ``estimate``."""
        out = {"statistic": self.statistic}
        if self.df2 is None:
            out["df"] = self.df
        else:
            out.update(num_df=self.df, den_df=self.df2)
        out["p_value"] = self.p_value
        if self.estimate is not None:
            out["estimate"] = self.estimate
        return out


def _t(estimate: float, se: float, df: float) -> Test:
    stat = estimate / se if se > 0 else math.copysign(math.inf, estimate) if estimate else math.nan
    p = float(2.0 * stats.t.sf(abs(stat), df)) if math.isfinite(df) and df > 0 and not math.isnan(stat) else math.nan
    return Test(float(stat), float(df), p, estimate=float(estimate))


@dataclass(frozen=True)
class OLSResult:
    """Least squares ignoring the grouping: coefficients, naive SEs, residual SD and df."""

    table: pd.DataFrame
    sigma: float
    df_residual: int
    residuals: np.ndarray


def ols(design: "Design") -> OLSResult:
    """``lm`` on the fixed-effects columns of ``design`` (with its prior weights and offset, as ``lm`` takes them).

    Returns
    -------
    OLSResult
        ``table`` has ``estimate``, ``std_error``, ``t``, ``p_value`` per coefficient (lm's ``summary``).
    """
    X = np.asarray(design.X, dtype=float)
    y = np.asarray(design.y, dtype=float)
    if design.offset is not None:
        y = y - np.asarray(design.offset, dtype=float)
    w = np.ones(len(y)) if design.weights is None else np.asarray(design.weights, dtype=float)
    sw = np.sqrt(w)
    n, p = X.shape
    if n <= p:
        raise DataError(f"least squares needs more observations ({n}) than coefficients ({p})")
    Q, R = np.linalg.qr(X * sw[:, None])
    beta = np.linalg.solve(R, Q.T @ (y * sw))
    resid = y - X @ beta
    df = n - p
    sigma = math.sqrt(float(np.sum(w * resid**2)) / df)
    Rinv = np.linalg.inv(R)
    se = sigma * np.sqrt(np.sum(Rinv**2, axis=1))
    t = beta / se
    table = pd.DataFrame(
        {"estimate": beta, "std_error": se, "t": t, "p_value": 2.0 * stats.t.sf(np.abs(t), df)},
        index=pd.Index(list(design.fixed_names), name="term"),
    )
    return OLSResult(table, sigma, df, resid)


def two_sample(x: np.ndarray, y: np.ndarray) -> dict[str, Test]:
    """Welch's and the pooled t-test of ``mean(x) − mean(y)`` (R's ``t.test(x, y)``, ``var.equal = TRUE``)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    nx, ny = len(x), len(y)
    if nx < 2 or ny < 2:
        raise DataError(f"a two-sample t-test needs two observations per group (have {nx} and {ny})")
    d = float(np.mean(x) - np.mean(y))
    vx, vy = float(np.var(x, ddof=1)), float(np.var(y, ddof=1))
    sx, sy = vx / nx, vy / ny
    se_w = math.sqrt(sx + sy)
    df_w = (sx + sy) ** 2 / (sx**2 / (nx - 1) + sy**2 / (ny - 1)) if sx + sy > 0 else math.nan
    df_p = nx + ny - 2
    vp = ((nx - 1) * vx + (ny - 1) * vy) / df_p
    se_p = math.sqrt(vp * (1.0 / nx + 1.0 / ny))
    return {"welch": _t(d, se_w, df_w), "pooled": _t(d, se_p, df_p)}


def paired(x: np.ndarray, y: np.ndarray) -> Test:
    """The paired t-test of ``x − y`` (R's ``t.test(x, y, paired = TRUE)``)."""
    return one_sample(np.asarray(x, dtype=float) - np.asarray(y, dtype=float))


def one_sample(x: np.ndarray) -> Test:
    """The one-sample t-test of ``mean(x) = 0`` (R's ``t.test(x)``)."""
    x = np.asarray(x, dtype=float)
    if len(x) < 2:
        raise DataError(f"a one-sample t-test needs two observations (have {len(x)})")
    return _t(float(np.mean(x)), float(np.std(x, ddof=1)) / math.sqrt(len(x)), len(x) - 1.0)


def oneway(groups: Sequence[np.ndarray]) -> dict[str, Test]:
    """Welch's one-way ANOVA (R's ``oneway.test``) and the classical F-test (``var.equal = TRUE``)."""
    groups = [np.asarray(g, dtype=float) for g in groups]
    k = len(groups)
    n = np.array([len(g) for g in groups], dtype=float)
    if k < 2 or (n < 2).any():
        raise DataError("a one-way ANOVA needs at least two groups of at least two observations")
    m = np.array([g.mean() for g in groups])
    v = np.array([g.var(ddof=1) for g in groups])
    grand = float(np.sum(n * m) / n.sum())
    ss_between = float(np.sum(n * (m - grand) ** 2))
    ss_within = float(np.sum((n - 1) * v))
    df1, df2 = k - 1.0, float(n.sum() - k)
    f = (ss_between / df1) / (ss_within / df2)
    pooled = Test(f, df1, float(stats.f.sf(f, df1, df2)), df2=df2)
    w = n / v
    mw = float(np.sum(w * m) / w.sum())
    tmp = float(np.sum((1 - w / w.sum()) ** 2 / (n - 1))) / (k**2 - 1)
    fw = float(np.sum(w * (m - mw) ** 2)) / (df1 * (1 + 2 * (k - 2) * tmp))
    dfw = 1.0 / (3 * tmp)
    welch = Test(fw, df1, float(stats.f.sf(fw, df1, dfw)), df2=dfw)
    return {"welch": welch, "pooled": pooled}


def compare_groups(values: pd.Series, groups: pd.Series, levels: Sequence[str]) -> dict[str, Test]:
    """Welch's and the pooled test between the groups: a t-test of the second level minus the first for two, else F."""
    parts = [values[groups == lv].to_numpy() for lv in levels]
    if len(levels) == 2:
        return two_sample(parts[1], parts[0])
    return oneway(parts)


@dataclass(frozen=True)
class Slopes:
    """Each subject's least-squares slope of the response on time (subjects with two or more time points)."""

    slopes: pd.Series
    n_points: pd.Series
    n_dropped: int


def subject_slopes(layout: "Layout") -> Slopes:
    """The summary-measure slopes: per subject, ``lm(y ~ t)``'s slope over the subject's own time points.

    Time is the time value for numeric time and the visit number 1..K for a factor.
    """
    long = layout.long
    subjects = layout.subjects
    code = pd.Categorical(long["subject"], categories=subjects).codes
    x = layout.positions[long["time"].to_numpy()]
    y = long["y"].to_numpy()
    k = len(subjects)
    n = np.bincount(code, minlength=k).astype(float)
    xm = np.bincount(code, x, k) / n
    ym = np.bincount(code, y, k) / n
    xc = x - xm[code]
    sxx = np.bincount(code, xc * xc, k)
    sxy = np.bincount(code, xc * (y - ym[code]), k)
    ok = (n >= 2) & (sxx > 1e-12 * np.maximum(np.bincount(code, x * x, k), 1.0))
    index = pd.Index(subjects)[ok]
    return Slopes(pd.Series(sxy[ok] / sxx[ok], index=index), pd.Series(n[ok].astype(int), index=index), int((~ok).sum()))
