"""statsmodels- and lme4-style accessors of a fitted linear mixed model.

:class:`ResultsAccessors` is a mixin of :class:`~mixedmodels.results.LinearMixedModelResults`. It
adds the names a statsmodels user reaches for (``params``, ``bse``, ``tvalues``, ``pvalues``,
``conf_int()``, ``cov_params()``, ``llf``, ``scale``, ``fittedvalues``, ``resid``,
``random_effects``) and lme4's ``fixef()`` and ``coef()``, all as pandas objects labelled by
coefficient names, levels or the data's row labels. Everything is read from the fit; nothing here
refits or changes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.special import ndtri

from .exceptions import DataError
from .report.table import Table

if TYPE_CHECKING:
    from .terms import RandomEffectsTerm

class ResultsAccessors:
    """statsmodels-style and lme4-style accessors (a mixin of ``LinearMixedModelResults``).

    ==========================  ==========================  ===============================
    statsmodels ``MixedLM``     mixedmodels                 lme4 / lmerTest
    ==========================  ==========================  ===============================
    ``params``, ``fe_params``   ``params``, ``fixef()``     ``fixef(m)``
    ``bse``                     ``bse``                     ``sqrt(diag(vcov(m)))``
    ``tvalues``                 ``tvalues``                 ``coef(summary(m))[, "t value"]``
    ``pvalues`` (normal)        ``pvalues`` (Satterthwaite)  lmerTest's ``Pr(>|t|)``
    ``conf_int(alpha)``         ``conf_int(alpha)``         ``confint(m, "beta_", method = "Wald")``
    ``cov_params()``            ``cov_params()``            ``vcov(m)``
    ``llf``                     ``llf``                     ``logLik(m)``
    ``scale``                   ``scale``                   ``sigma(m)^2``
    ``fittedvalues``            ``fittedvalues``            ``fitted(m)``
    ``resid``                   ``resid``                   ``residuals(m)``
    ``random_effects``          ``random_effects``          ``ranef(m)[[1]]`` by level
    (none)                      ``coef()``                  ``coef(m)``
    ==========================  ==========================  ===============================

    Unlike statsmodels' MixedLM, ``params`` holds the fixed effects only (the variance parameters
    are in ``varcorr`` and ``theta``), and ``pvalues`` are t-test p-values with Satterthwaite's
    df (as lmerTest and ``summary()``), not normal ones.
    """

    # ------------------------------------------------------------------ fixed effects
    @property
    def params(self) -> pd.Series:
        """Fixed-effects estimates β̂, indexed by coefficient name (statsmodels' ``params``, lme4's ``fixef``)."""
        return self.fixed_effects["Estimate"].rename(None)

    def fixef(self) -> pd.Series:
        """Fixed-effects estimates, as lme4's ``fixef(m)`` (the same Series as :attr:`params`)."""
        return self.params

    @property
    def bse(self) -> pd.Series:
        """Standard errors of the fixed effects, ``sqrt(diag(vcov))`` (statsmodels' ``bse``)."""
        return self.fixed_effects["Std. Error"].rename(None)

    @property
    def tvalues(self) -> pd.Series:
        """Wald t statistics ``β̂ / SE`` of the fixed effects (statsmodels' ``tvalues``)."""
        return self.fixed_effects["t value"].rename(None)

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values of the fixed effects' t-tests with Satterthwaite's df.

        These are the p-values of ``summary()`` and ``coef_table()`` (lmerTest's default), not
        statsmodels' normal-approximation ones; ``coef_table("kenward-roger")["Pr(>|t|)"]`` gives
        Kenward–Roger's.
        """
        return self.coef_table("satterthwaite")["Pr(>|t|)"].rename(None)

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Wald confidence intervals of the fixed effects, ``β̂ ± z_{1-α/2} SE`` (statsmodels' ``conf_int``).

        Parameters
        ----------
        alpha : float
            1 minus the confidence level (0.05: 95% intervals).

        Returns
        -------
        pandas.DataFrame
            Columns ``0`` (lower) and ``1`` (upper) as statsmodels, one row per coefficient; the
            same numbers as lme4's ``confint(m, parm = "beta_", method = "Wald")``. Profile and
            bootstrap intervals, and intervals for the variance parameters: :meth:`confint`.
        """
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
        z = float(ndtri(1 - alpha / 2))  # the normal quantile (scipy.stats would double the import time)
        est, se = self.params, self.bse
        return Table({0: est - z * se, 1: est + z * se}, index=est.index)

    def cov_params(self) -> pd.DataFrame:
        """Covariance matrix of the fixed-effects estimates (statsmodels' ``cov_params()``, lme4's ``vcov``)."""
        return self.vcov.copy()

    # ------------------------------------------------------------------ likelihood and scale
    @property
    def llf(self) -> float:
        """Log-likelihood at the estimates, restricted for REML fits (statsmodels' ``llf``, lme4's ``logLik``)."""
        return self.loglik

    @property
    def scale(self) -> float:
        """Residual variance σ̂² (statsmodels' ``scale``, lme4's ``sigma(m)^2``)."""
        return self.sigma**2

    # ------------------------------------------------------------------ per observation
    def _by_row(self, values: np.ndarray) -> pd.Series:
        """``values`` (one per row used) labelled by row; under ``na_action="exclude"`` NaN at dropped rows."""
        design = self.design
        series = pd.Series(np.asarray(values, dtype=float), index=design.row_index)
        full = design.data_index
        if getattr(self.model, "na_action", "omit") != "exclude" or full is None or len(full) == len(series):
            return series
        if not full.is_unique:
            raise DataError(
                "na_action='exclude' aligns values with the data by row label, but the data's index has duplicate "
                "labels; give the data a unique index (data.reset_index(drop=True)) or use na_action='omit'"
            )
        return series.reindex(full)

    @property
    def fittedvalues(self) -> pd.Series:
        """Conditional fitted values ``Xβ̂ + Zb̂``, a Series labelled by row (statsmodels' ``fittedvalues``).

        With ``na_action="omit"`` (the default) the index holds the rows used; with
        ``na_action="exclude"`` it is the data's whole index with NaN at the rows dropped for
        missing values, so ``data["fit"] = fit.fittedvalues`` lines up (R's ``na.exclude``).
        The unlabelled array is :attr:`fitted`.
        """
        return self._by_row(self.fitted)

    @property
    def resid(self) -> pd.Series:
        """Conditional residuals ``y − Xβ̂ − Zb̂``, labelled as :attr:`fittedvalues` (statsmodels' ``resid``).

        The unlabelled array is :attr:`residuals`.
        """
        return self._by_row(self.residuals)

    # ------------------------------------------------------------------ random effects
    def _level_index(self, term: "RandomEffectsTerm") -> pd.Index:
        """Index of a term's levels in the grouping column's own type (integers stay integers).

        A grouping column that is a categorical gives a :class:`pandas.CategoricalIndex` of its
        (used) categories; interactions (``b:a``) and fits without their data keep the string labels.
        """
        cache = self.__dict__.setdefault("_level_index_cache", {})
        if term.group in cache:
            return cache[term.group]
        index = pd.Index(list(term.levels), name=term.group)
        frame = self.design.frame
        single = len(term.group_vars) == 1 and frame is not None and term.group_vars[0] in frame.columns
        if single and len(frame) == len(term.refs):
            column = frame[term.group_vars[0]]
            codes, first = np.unique(term.refs, return_index=True)  # the first row of every level
            if np.array_equal(codes, np.arange(term.nlevels)):
                values = column.iloc[first]
                if isinstance(column.dtype, pd.CategoricalDtype):
                    own = pd.CategoricalIndex(values, name=term.group).remove_unused_categories()
                else:
                    own = pd.Index(values.to_numpy(), dtype=column.dtype, name=term.group)
                if own.is_unique:
                    index = own
        cache[term.group] = index
        return index

    @property
    def random_effects(self) -> dict[Any, pd.Series]:
        """Conditional modes of the first grouping factor as statsmodels' ``random_effects``: ``{level: Series}``.

        Each Series holds that level's random effects, indexed by their names (``(Intercept)``,
        ``Days``). The first grouping factor is the first of :meth:`ranef` (lme4's order: most
        levels first); with several grouping factors, :meth:`ranef` has them all as DataFrames.
        Keys are the levels in the grouping column's own type.
        """
        ranef = self.ranef()
        frame = next(iter(ranef.values()))
        return {level: row.rename(None) for level, row in frame.iterrows()}

    def coef(self) -> dict[str, pd.DataFrame]:
        """Fixed plus random effects per level, as lme4's ``coef(m)``: one DataFrame per grouping factor.

        Rows are the factor's levels, columns every fixed effect, with each level's random
        effects added to the columns of the same name. As in lme4, a random effect without a
        fixed counterpart (``(Days | g)`` without ``Days`` among the fixed effects) is a column
        of its own, in front, whose fixed part is 0 — in the tables of every grouping factor.
        """
        fixed = self.params
        ranef = self.ranef()
        random_names = list(dict.fromkeys(c for frame in ranef.values() for c in frame.columns))
        missing = [c for c in random_names if c not in fixed.index]
        base = pd.concat([pd.Series(0.0, index=missing, dtype=float), fixed]) if missing else fixed
        out: dict[str, pd.DataFrame] = {}
        for group, frame in ranef.items():
            table = Table(np.tile(base.to_numpy(), (len(frame), 1)), index=frame.index, columns=list(base.index))
            for c in frame.columns:
                table[c] = table[c] + frame[c]
            out[group] = table
        return out
