"""The mixed model's answer to each naive analysis's question, as a linear function of β.

Predictions are averaged, with equal weights, over emmeans' reference grid (other factors at each
level, numeric covariates at their means), with time set to a scheduled value and the compared
factor to a level. The naive question "difference at the last time" becomes ``L = x̄(level, last) −
x̄(first level, last)``; "mean per-subject slope" becomes the least-squares slope through the
model's mean profile at the scheduled times, ``Σ_k c_k x̄(t_k)`` with ``c_k = (t_k − t̄) / Σ(t − t̄)²``
(the coefficient of time when the model is linear in time). Tests are lmerTest's ``contest`` with
Satterthwaite's df.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

from ..inference.emmeans import fit_view
from ..inference.emmeans_grid import r_label, reference_grid

if TYPE_CHECKING:
    from ..results import LinearMixedModelResults
    from .layout import Layout


class ModelContrasts:
    """Builds and tests the mixed model's counterparts of the naive comparisons.

    Parameters
    ----------
    fit : LinearMixedModelResults
    layout : Layout
    """

    def __init__(self, fit: "LinearMixedModelResults", layout: "Layout") -> None:
        self.fit = fit
        self.layout = layout
        self.view = fit_view(fit)
        self.grid = reference_grid(self.view)

    def mean_row(self, time_code: int, factor: str | None = None, level: str | None = None) -> np.ndarray:
        """Average fixed-effects row (all columns, dropped ones included) at a time level and a level of ``factor``."""
        frame = self.grid.frame
        lay = self.layout
        if factor is not None:
            frame = frame[[r_label(v) == level for v in frame[factor]]]
        if lay.time in frame.columns:
            var = self.grid.variable(lay.time)
            value = lay.levels[time_code]
            if var.kind == "covariate":
                frame = frame.assign(**{lay.time: value})
            else:
                frame = frame[[r_label(v) == r_label(value) for v in frame[lay.time]]]
        X = self.view.model_matrix(frame.reset_index(drop=True))
        return X.mean(axis=0)

    def slope_row(self, factor: str | None = None, level: str | None = None) -> np.ndarray:
        """The least-squares slope through the model's mean profile at the scheduled times."""
        t = self.layout.positions
        c = (t - t.mean()) / float(((t - t.mean()) ** 2).sum())
        return sum(ck * self.mean_row(k, factor, level) for k, ck in enumerate(c))

    def test(self, rows: np.ndarray) -> dict | None:
        """Estimate, SE and Satterthwaite t-test of one row; F-test of several. None if not estimable or identically 0."""
        rows = np.atleast_2d(rows)
        if not all(self.grid.estimable(r) for r in rows):
            return None
        L = rows[:, self.view.kept_columns]
        if not np.any(np.abs(L) > 1e-12):  # the model has no term for the question (time not in the formula)
            return None
        try:
            res = self.fit.contest(L)
            df1, df2 = float(res["NumDF"]), float(res["DenDF"])
        except Exception:  # noqa: BLE001 - a df the calculator cannot give leaves the estimate
            df1, df2 = float(L.shape[0]), math.nan
        beta, V = self.view.beta, self.view.vcov
        if L.shape[0] == 1:
            est = float(L[0] @ beta)
            se = math.sqrt(float(L[0] @ V @ L[0]))
            t = est / se
            p = float(2 * stats.t.sf(abs(t), df2)) if math.isfinite(df2) else math.nan
            return {"estimate": est, "std_error": se, "statistic": t, "df": df2, "p_value": p}
        return {"statistic": float(res["F value"]), "num_df": df1, "den_df": df2, "p_value": float(res["Pr(>F)"])}

    def group_difference(self, factor: str, levels: list[str], time_code: int) -> dict | None:
        """Levels against the first at one time: ``second − first`` for two levels, an F-test for more."""
        base = self.mean_row(time_code, factor, levels[0])
        return self.test(np.array([self.mean_row(time_code, factor, lv) - base for lv in levels[1:]]))

    def time_difference(self, later: int, earlier: int) -> dict | None:
        """The mean at one time minus the mean at another."""
        return self.test(self.mean_row(later) - self.mean_row(earlier))

    def slope(self, factor: str | None = None, levels: list[str] | None = None) -> dict | None:
        """The mean slope (no factor), or the slopes' differences from the first level's."""
        if factor is None:
            return self.test(self.slope_row())
        base = self.slope_row(factor, levels[0])
        return self.test(np.array([self.slope_row(factor, lv) - base for lv in levels[1:]]))
