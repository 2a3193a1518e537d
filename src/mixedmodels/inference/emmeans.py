"""Least-squares means (estimated marginal means) and their contrasts, as R's emmeans 1.8 for lmer fits.

Usage
-----
::

    emm = fit.emmeans("arm", by="visit")        # also "arm | visit", ["arm", "visit"], "arm:visit"
    emm.table                                   # arm, visit, emmean, SE, df, lower.CL, upper.CL
    emm.contrasts("pairwise")                   # Tukey-adjusted p-values, one family per visit
    emm.contrasts("revpairwise")                # "TRT - PBO" rather than "PBO - TRT"
    emm.contrasts("trt.vs.ctrl")                # each level against the first, Dunnett (dunnettx)
    emm.contrasts({"TRT vs PBO": [-1, 1, 0]}, adjust="holm")
    print(emm)                                  # printed as emmeans prints

========================================================  ===================================================
R (emmeans 1.8, lme4, pbkrtest, lmerTest)                 mixedmodels
========================================================  ===================================================
``emmeans(m, "arm", by = "visit")``                       ``fit.emmeans("arm", by="visit")``
``emmeans(m, ~ arm | visit, lmer.df = "satterthwaite")``  ``fit.emmeans("arm | visit", ddf="satterthwaite")``
``emmeans(m, "arm", lmer.df = "asymptotic")``             ``fit.emmeans("arm", ddf="asymptotic")``
``emmeans(m, "arm", weights = "proportional")``           ``fit.emmeans("arm", weights="proportional")``
``confint(emmeans(m, "arm"), level = 0.9)``               ``fit.emmeans("arm", level=0.9).table``
``pairs(emm)``, ``contrast(emm, "pairwise")``             ``emm.contrasts("pairwise")``
``contrast(emm, "trt.vs.ctrl", adjust = "holm")``         ``emm.contrasts("trt.vs.ctrl", adjust="holm")``
``contrast(emm, list(a = c(-1, 1, 0)))``                  ``emm.contrasts({"a": [-1, 1, 0]})``
========================================================  ===================================================

From the shell: ``mixedmodels emmeans DATA --formula F --specs "arm | visit" [--contrast pairwise|
revpairwise|trt.vs.ctrl] [--adjust M] [--ddf kenward-roger|satterthwaite|asymptotic] [--weights W]
[--level 0.95] [--json]``.

What is computed
----------------
*Reference grid* (emmeans' ``ref_grid`` with its defaults): every variable of the fixed effects
is a dimension — factors with their levels; numbers used as factors (``factor(x)``) with their
distinct values; numbers with at most two distinct values (a 0/1 covariate) with both values
(``cov.keep = "2"``); other numbers at their mean over the rows used (``cov.reduce = mean``; the
mean of ``x``, not of ``log(x)``). The fixed-effects rows of the grid are built by the model's own
formula, so ``log(x)``, ``poly(x, 2)`` and ``scale(x)`` are evaluated at the grid's values with the
fitted data's parameters.

*Marginal means* average the grid's predictions over the variables not asked for: with equal
weights (emmeans' default), ``weights="proportional"`` (the frequencies of the combinations
averaged over), ``"outer"`` (products of each variable's frequencies), ``"cells"`` (each mean
weights its own cells by their frequencies: the mean of the fitted values) or ``"flat"``. Means
whose linear function is not estimable in a rank-deficient model (an empty cell of an interaction)
are NaN (emmeans' ``nonEst``); contrasts are checked for estimability in their own right.

*Standard errors and df*: by default, for REML fits, Kenward–Roger (emmeans' default
``lmer.df = "kenward-roger"``): SEs from pbkrtest's adjusted covariance of β and KR df for each
mean and contrast. ``ddf="satterthwaite"``: the unadjusted covariance and lmerTest's Satterthwaite
df; ``ddf="asymptotic"``: z-tests and intervals (df infinite). Confidence limits use ``t`` quantiles
with each row's df. P-values of contrasts are two-sided and adjusted within each by-group
(``pairwise``/``revpairwise``: Tukey; ``trt.vs.ctrl``: ``dunnettx``; custom: none; see
:mod:`.emmeans_contrasts` for how each adjustment uses the per-contrast df).

Differences from emmeans
------------------------
* ML fits: pbkrtest refits an ML model by REML to get Kenward–Roger's adjusted covariance (so R's
  default SEs and df of an ML fit come from another fit). Kenward–Roger is defined here for REML
  fits only: for an ML fit the default is Satterthwaite (with a warning and a note), and
  ``ddf="kenward-roger"`` is an error. R's numbers for an ML fit are ``lmer.df = "satterthwaite"``.
* emmeans falls back from Kenward–Roger to Satterthwaite, and then to asymptotic df, above 3000
  observations (``pbkrtest.limit``, ``lmerTest.limit``, for R's memory use); the df here stay
  Kenward–Roger at any size. For R's numbers on a large fit, ask for ``ddf="asymptotic"``.
* The data frames have fixed column names: ``lower.CL``/``upper.CL`` and ``t.ratio`` also for
  asymptotic results (emmeans prints ``asymp.LCL``, ``z.ratio``; the printed text here does too).
* Prior weights (``weights=``): pbkrtest's Kenward–Roger ignores them, so R's default SEs and df
  of a weighted fit are not those of the weighted model; here they are. Satterthwaite (lmerTest
  uses the weighted deviance) agrees with R. As in emmeans, the frequencies behind
  ``weights="proportional"`` and the like count rows, not prior weights.
* Offsets (``offset()`` terms, ``offset=``): the mean offset of the rows used is added to every
  mean, as emmeans adds its ``.offset.`` covariate at its mean.
* Nesting (emmeans detects it from the data and the terms, e.g. ``visit + visit:arm`` makes arm
  nested in visit): noted as emmeans notes it; results are emmeans' where every combination of a
  nested factor and its containers has data and the nested factor is not asked for without its
  containers; otherwise an error (emmeans then adds the containers to the table, or averages over
  the existing nests only).
* ``at=``, ``cov.reduce=`` other than the mean, response transformations (``type = "response"``),
  the ``mvt`` and ``scheffe`` adjustments and confidence intervals for contrasts are not implemented.

Every fit exposing ``beta``, ``vcov``, ``model.design`` and ``ddf_calculator`` can be used: all reads
of the fit are in :func:`fit_view`.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from ..exceptions import MixedModelsWarning, ModelError, warn_user
from ..report.table import Table
from .emmeans_contrasts import (
    adjust_pvalues,
    contrast_coefficients,
    contrast_levels,
    format_contrasts,
    format_results,
    zapsmall,
)
from .emmeans_grid import RG_LIMIT, ReferenceGrid, check_nesting, marginal_linfct, r_label, reference_grid

__all__ = ["EMMeans", "FitView", "emmeans", "fit_view", "format_contrasts"]

DDF_METHODS = ("kenward-roger", "kenward-roger-linear", "satterthwaite", "asymptotic")
_DDF_ALIASES = {"kr": "kenward-roger", "kenward_roger": "kenward-roger", "kenwardroger": "kenward-roger",
                "sat": "satterthwaite", "asymp": "asymptotic", "z": "asymptotic", "inf": "asymptotic",
                "kr-linear": "kenward-roger-linear", "kenward_roger_linear": "kenward-roger-linear"}


# ---------------------------------------------------------------------- the one reader of a fit
@dataclass(frozen=True)
class FitView:
    """What least-squares means need from a fit (see :func:`fit_view`).

    Attributes
    ----------
    beta, vcov : numpy.ndarray
        Estimates of the kept fixed effects and their covariance.
    frame : pandas.DataFrame
        The fixed-effects variables on the rows used.
    variables : list of str
        Those variables (data column names), in the data's order.
    coerced : frozenset of str
        Numeric variables the formula uses as factors (``factor(x)``).
    factor_levels : dict
        Levels of each factor variable as the model codes it.
    term_variables : list of frozenset
        Variables of each fixed-effects term but the intercept.
    kept_columns : numpy.ndarray
        Positions of the kept columns among the full model-matrix columns.
    column_names : list of str
        Names of all full model-matrix columns (dropped ones included), lme4 style.
    model_matrix : callable
        Data frame of the variables → full fixed-effects matrix (all columns).
    reml : bool
    ddf_calculator : callable
        Method name → object with ``contrast_df(l)`` and ``contrast_variance(l)``.
    offset : float
        Mean offset of the rows used (0 without one), added to every mean as emmeans does.
    kr_available : bool
        Kenward–Roger is defined for this fit (a REML fit without a residual covariance structure).
    """

    beta: np.ndarray
    vcov: np.ndarray
    frame: pd.DataFrame
    variables: list[str]
    coerced: frozenset[str]
    factor_levels: dict[str, list]
    term_variables: list[frozenset[str]]
    kept_columns: np.ndarray
    column_names: list[str]
    model_matrix: Callable[[pd.DataFrame], np.ndarray]
    reml: bool
    ddf_calculator: Callable[[str], Any]
    offset: float = 0.0
    kr_available: bool = True


def fit_view(fit: Any) -> FitView:
    """Everything :func:`emmeans` reads from ``fit``: β, its covariance, the design and the df calculators.

    Raises
    ------
    ModelError
        If ``fit`` is not a mixed-model fit or does not keep its data.
    """
    from ..formula.naming import factor_levels
    from ..formula.safety import evaluation_context
    from ..glmm.results import GeneralizedLinearMixedModelResults
    from ..protocols import MixedFit

    glmm = isinstance(fit, GeneralizedLinearMixedModelResults)
    if not (glmm or isinstance(fit, MixedFit)):
        raise ModelError("least-squares means need a linear mixed model fit (a formula with a random-effects term such as (1 | g))")
    design = fit.design
    if design.frame is None:
        raise ModelError("the fit does not keep its data, which least-squares means need (refit it from the data)")
    spec = design.fixed_spec
    aliases = dict(getattr(design, "aliases", None) or {})
    original = {v: k for k, v in aliases.items()}
    data_vars = set(spec.variables_by_source.get("data", set()))
    variables = [c for c in design.frame.columns if aliases.get(c, c) in data_vars]
    coerced: set[str] = set()
    for factor, fvars in spec.factor_variables.items():
        state = spec.encoder_state.get(str(factor))
        if state is not None and "categorical" in str(state[0]).lower() and str(factor).startswith("C("):
            coerced |= {original.get(v, v) for v in fvars if v in data_vars}
    levels = {c: factor_levels(spec.encoder_state.get(aliases.get(c, c))) for c in variables}
    terms = [  # in the formula's order (R's term coding looks at preceding terms)
        frozenset(original.get(v, v) for v in spec.term_variables.get(term, ()) if v in data_vars)
        for term in spec.terms
        if str(term) != "1"
    ]
    kept = np.asarray(design.kept_columns, dtype=np.int64)
    n_full = len(spec.column_names)
    dropped = iter(getattr(design, "dropped_columns", ()))
    where = {int(j): i for i, j in enumerate(kept)}
    names = [design.fixed_names[where[j]] if j in where else next(dropped, f"column {j + 1}") for j in range(n_full)]
    offset = getattr(design, "offset", None)
    context = evaluation_context()
    to_formulaic = getattr(design, "formulaic_frame", lambda f: f)

    def model_matrix(frame: pd.DataFrame) -> np.ndarray:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mm = spec.get_model_matrix(to_formulaic(frame), context=context, na_action="ignore")
        except Exception as exc:  # noqa: BLE001 - formulaic raises many types
            raise ModelError(f"cannot build the fixed-effects rows of the reference grid: {str(exc).splitlines()[0]}") from None
        return np.asarray(mm, dtype=float)

    return FitView(
        beta=np.asarray(fit.beta, dtype=float),
        vcov=np.asarray(fit.vcov, dtype=float),
        frame=design.frame[variables],
        variables=variables,
        coerced=frozenset(coerced),
        factor_levels={c: v for c, v in levels.items() if v},
        term_variables=terms,
        kept_columns=kept,
        column_names=names,
        model_matrix=model_matrix,
        reml=bool(fit.reml),
        kr_available=bool(fit.reml) and fit.iid_residuals,
        ddf_calculator=_no_ddf if glmm else fit.ddf_calculator,  # a GLMM's tests are asymptotic z
        offset=0.0 if offset is None else math.fsum(np.asarray(offset, dtype=float)) / len(offset),
    )


def _no_ddf(method: str) -> Any:
    raise ModelError(f"{method} df do not apply to a GLMM: its means are tested with asymptotic z")


# ---------------------------------------------------------------------- specs
def _names(spec: str | Sequence[str] | None) -> list[str]:
    if spec is None:
        return []
    if isinstance(spec, str):
        return [s for s in (p.strip().strip("`") for p in re.split(r"[:*+]", spec)) if s]
    return [str(s) for s in spec]


def parse_specs(specs: str | Sequence[str], by: str | Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """``(specs, by)`` from ``"arm"``, ``"arm | visit"``, ``"~ arm:visit"``, ``["arm", "visit"]`` and ``by``."""
    by_names = _names(by)
    if isinstance(specs, str):
        text = specs.strip()
        if "~" in text:
            lhs, _, text = text.partition("~")
            if lhs.strip():
                raise ModelError(
                    f"specs {specs!r}: a contrast method before '~' is not supported; "
                    "ask for it with .contrasts(), e.g. fit.emmeans('arm | visit').contrasts('pairwise')"
                )
        main, bar, rest = text.partition("|")
        spec_names = _names(main)
        if bar:
            by_names = _names(rest) + [b for b in by_names if b not in _names(rest)]
    else:
        spec_names = _names(list(specs))
    if not spec_names:
        raise ModelError(f"specs {specs!r} names no variable")
    both = [b for b in by_names if b in spec_names]
    if both:
        raise ModelError(f"{', '.join(both)} given both in specs and in by")
    for group in (spec_names, by_names):
        dup = sorted({n for n in group if group.count(n) > 1})
        if dup:
            raise ModelError(f"{', '.join(dup)} named twice in specs/by")
    return spec_names, by_names


def _normalise_ddf(ddf: str | None, reml: bool, kr_available: bool = True) -> tuple[str, list[str]]:
    if ddf is None:
        if reml and kr_available:
            return "kenward-roger", []
        if reml:  # a residual covariance structure: Satterthwaite, mmrm's default method
            return "satterthwaite", ["Note: Satterthwaite df, mmrm's default for a residual structure (ddf='kenward-roger' for KR)"]
        msg = ("Kenward-Roger df are defined here for REML fits only; this ML fit uses Satterthwaite df "
               "(emmeans' default for an ML fit refits it by REML through pbkrtest)")
        warn_user(msg, MixedModelsWarning)
        return "satterthwaite", ["Note: " + msg]
    key = str(ddf).strip().lower().replace(" ", "-")
    key = _DDF_ALIASES.get(key, key)
    if key not in DDF_METHODS:
        raise ModelError(f"unknown ddf method {ddf!r}; use 'kenward-roger', 'kenward-roger-linear', 'satterthwaite' or 'asymptotic'")
    if key.startswith("kenward-roger") and not reml:
        raise ModelError(
            "Kenward-Roger df need a REML fit (emmeans, through pbkrtest, would refit this ML model by REML); "
            "fit with REML=True, or use ddf='satterthwaite' or 'asymptotic'"
        )
    return key, []


# ---------------------------------------------------------------------- results
class EMMeans:
    """Estimated marginal means of a fit (emmeans' ``emmGrid`` from ``emmeans()``).

    Attributes
    ----------
    table : pandas.DataFrame
        One column per factor in specs and by (specs first, the first varying fastest), then
        ``emmean``, ``SE``, ``df``, ``lower.CL``, ``upper.CL``. NaN marks non-estimable means.
    linfct : pandas.DataFrame
        The linear function of the full fixed-effects coefficients behind each mean (emmeans'
        ``@linfct``; columns dropped as dependent included).
    specs, by : list of str
    ddf : str
        ``"kenward-roger"``, ``"satterthwaite"`` or ``"asymptotic"``.
    level : float
    notes : list of str
        emmeans' messages under the table.
    """

    def __init__(self, view: FitView, grid: ReferenceGrid, specs: list[str], by: list[str], *,
                 ddf: str, level: float, weights: str | Sequence[float], notes: list[str]) -> None:
        self._view, self._grid = view, grid
        self.specs, self.by, self.ddf, self.level = specs, by, ddf, level
        self._calc = None if ddf == "asymptotic" else view.ddf_calculator(ddf)
        factors = specs + by
        marginal = marginal_linfct(grid, factors, weights)
        self._marginal = marginal
        self._emm_notes = list(notes)
        self.notes = self._notes(extra=[f"Confidence level used: {level:g}"])
        est, se, df = self._estimate(marginal.linfct)
        est = est + view.offset  # emmeans' .offset. (the mean offset; weights sum to 1)
        crit = special.stdtrit(df, 1.0 - (1.0 - level) / 2.0)
        data: dict[str, Any] = {}
        combos = np.unravel_index(np.arange(marginal.linfct.shape[0]), [len(v) for v in marginal.levels], order="F")
        for i, name in enumerate(factors):
            data[name] = self._factor_column(name, combos[i])
        data.update({"emmean": est, "SE": se, "df": df, "lower.CL": est - crit * se, "upper.CL": est + crit * se})
        self.table = Table(data)
        self.linfct = pd.DataFrame(marginal.linfct, columns=view.column_names)

    def _factor_column(self, name: str, codes: np.ndarray) -> pd.Series:
        var = self._grid.variable(name)
        if var.kind == "covariate":
            return pd.Series(np.asarray(var.values, dtype=float)[codes])
        return pd.Series(pd.Categorical.from_codes(codes, categories=pd.Index(var.values, dtype=object if var.kind == "factor" else None)))

    def _notes(self, extra: list[str]) -> list[str]:
        out = []
        if self._marginal.averaged_over:
            out.append("Results are averaged over the levels of: " + ", ".join(self._marginal.averaged_over))
        out.append(f"Degrees-of-freedom method: {self.ddf}")
        out += extra + self._emm_notes
        facs = set(self.specs + self.by)
        if any(facs <= t and len(t) > len(facs) for t in self._grid.term_variables):
            out.append("NOTE: Results may be misleading due to involvement in interactions")
        return out

    # ------------------------------------------------------------------ estimation
    def _estimate(self, L: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Estimate, SE and df of each row of ``L`` (full columns), NaN where not estimable (emmeans' ``.est.se.df``)."""
        view, calc = self._view, self._calc
        kept = view.kept_columns
        n = L.shape[0]
        est, se, df = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        for i, x in enumerate(L):
            if np.isnan(x).any() or not self._grid.estimable(x):
                continue
            xa = x[kept]
            est[i] = float(xa @ view.beta)
            xz = np.where(zapsmall(xa) != 0, xa, 0.0)  # emmeans' .qf.non0
            if not xz.any():
                se[i], df[i] = 0.0, np.nan
                continue
            var = float(xz @ view.vcov @ xz) if calc is None else float(calc.contrast_variance(xz))
            if var < 0:
                warnings.warn("Negative variance estimate obtained!", MixedModelsWarning, stacklevel=3)
                continue
            se[i] = np.sqrt(var)
            df[i] = np.inf if calc is None else float(calc.contrast_df(xa))
        return est, se, df

    # ------------------------------------------------------------------ contrasts
    def _groups(self) -> list[np.ndarray]:
        """Rows of the table in each by-group, in order (specs vary fastest, so each group is a block)."""
        n = self.table.shape[0]
        size = int(np.prod([len(self._grid.variable(s).values) for s in self.specs]))
        return [np.arange(start, start + size) for start in range(0, n, size)]

    def contrasts(
        self, method: str | Mapping[str, Sequence[float]] = "pairwise", adjust: str | None = None, *, ref: int | str = 0
    ) -> pd.DataFrame:
        """Contrasts of the means within each by-group (emmeans' ``contrast(emm, method, adjust = ...)``).

        Parameters
        ----------
        method : str or dict
            ``"pairwise"`` (``A - B``, ``A - C``, ``B - C``), ``"revpairwise"`` (``B - A``, ``C - A``,
            ``C - B``), ``"trt.vs.ctrl"`` (each level minus the control ``ref``), or a dict of
            coefficient vectors over the means of a by-group, ``{"TRT - PBO": [-1, 1, 0]}``.
        adjust : str, optional
            ``"tukey"``, ``"dunnettx"``, ``"sidak"``, ``"bonferroni"``, ``"holm"``, ``"hochberg"``,
            ``"BH"``/``"fdr"``, ``"BY"`` or ``"none"``. Default as emmeans: Tukey for (rev)pairwise,
            dunnettx for trt.vs.ctrl, none for a dict. Tukey for other than pairwise differences
            becomes Sidak (with a note), and a single contrast per group is never adjusted.
        ref : int or str
            Control level of ``trt.vs.ctrl``: 0-based position among the means of a group, or its label.

        Returns
        -------
        pandas.DataFrame
            Columns ``contrast``, the by-factors, ``estimate``, ``SE``, ``df``, ``t.ratio``,
            ``p.value``; ``attrs["notes"]`` holds emmeans' messages and ``attrs["adjust"]`` the
            adjustment used.
        """
        groups = self._groups()
        first = groups[0]
        columns = [(s, [r_label(v) for v in self.table[s].iloc[first].tolist()]) for s in self.specs]
        levels = contrast_levels(columns)
        if isinstance(ref, str):
            raw = [" ".join(c[1][i] for c in columns) for i in range(len(first))]
            if ref in levels:
                ref = levels.index(ref)
            elif ref in raw:
                ref = raw.index(ref)
            else:
                raise ModelError(f"trt.vs.ctrl: reference {ref!r} is not one of the levels {', '.join(raw)}")
        names, C, est_type, default_adjust = contrast_coefficients(method, levels, int(ref))
        adjust = default_adjust if adjust is None else adjust
        L = self._marginal.linfct
        na_rows = np.isnan(L).any(axis=1)
        rows, labels, by_rows = [], [], []
        for g in groups:
            Lg = np.where(np.isnan(L[g]), 0.0, L[g])
            M = C.T @ Lg
            flagged = (np.abs(C[na_rows[g]]) > 0).any(axis=0)
            M[flagged] = np.nan
            rows.append(M)
            labels += names
            by_rows += [g[0]] * len(names)
        Lc = np.vstack(rows) if rows else np.zeros((0, L.shape[1]))
        est, se, df = self._estimate(Lc)
        est = est + self._view.offset * np.tile(C.sum(axis=0), len(groups))  # C' .offset.: 0 for true contrasts
        with np.errstate(invalid="ignore", divide="ignore"):
            t = est / se
        m = len(names)
        fam = [np.arange(i * m, (i + 1) * m) for i in range(len(groups))]
        p, used, adj_notes = adjust_pvalues(t, df, adjust, len(first), fam, est_type)
        data: dict[str, Any] = {"contrast": pd.Series(labels, dtype=object)}
        for b in self.by:
            data[b] = self.table[b].iloc[by_rows].reset_index(drop=True)
        data.update({"estimate": est, "SE": se, "df": df, "t.ratio": t, "p.value": p})
        out = Table(data)
        out.attrs.update({
            "notes": self._notes(extra=adj_notes), "adjust": used, "by": list(self.by), "ddf": self.ddf,
            "linfct": pd.DataFrame(Lc, columns=self._view.column_names),
        })
        return out

    # ------------------------------------------------------------------ output
    def __str__(self) -> str:
        return format_results(self.table, self.by, self.notes, kind="emmeans")

    def __repr__(self) -> str:
        return str(self)


# ---------------------------------------------------------------------- entry point
def emmeans(
    fit: Any,
    specs: str | Sequence[str],
    by: str | Sequence[str] | None = None,
    *,
    ddf: str | None = None,
    weights: str | Sequence[float] = "equal",
    level: float = 0.95,
    rg_limit: int = RG_LIMIT,
) -> EMMeans:
    """Estimated marginal means of ``fit`` over the factors ``specs`` (emmeans' ``emmeans(m, specs, by)``).

    Parameters
    ----------
    fit : LinearMixedModelResults
    specs : str or sequence of str
        Factors (or covariates) whose means are wanted: ``"arm"``, ``["arm", "visit"]``,
        ``"arm:visit"``, or ``"arm | visit"`` (by-groups after the bar).
    by : str or sequence of str, optional
        Factors whose levels form separate groups (contrasts are computed within each).
    ddf : str, optional
        ``"kenward-roger"`` (default for REML fits, as emmeans), ``"satterthwaite"`` (default for
        ML fits here, with a warning) or ``"asymptotic"``.
    weights : str or sequence of float
        Weights when averaging over other factors: ``"equal"`` (default), ``"proportional"``,
        ``"outer"``, ``"cells"``, ``"flat"``, or numbers (one per combination averaged over).
    level : float
        Confidence level of the intervals.
    rg_limit : int
        Largest reference grid built (emmeans' ``rg.limit``).

    Returns
    -------
    EMMeans

    Raises
    ------
    ModelError
        For a name in specs/by that is not a variable of the fixed effects, an unknown ddf or
        weights, Kenward–Roger on an ML fit, or a reference grid above ``rg_limit`` rows.
    """
    if not 0 < level < 1:
        raise ModelError(f"level must be between 0 and 1, got {level}")
    view = fit_view(fit)
    spec_names, by_names = parse_specs(specs, by)
    known = view.variables
    for name in spec_names + by_names:
        if name not in known:
            raise ModelError(
                f"{name!r} is not a variable of the model's fixed effects"
                + (f" (they are: {', '.join(known)})" if known else " (the model has none)")
            )
    method, notes = _normalise_ddf(ddf, view.reml, view.kr_available)
    grid = reference_grid(view, rg_limit)
    notes += check_nesting(grid, spec_names + by_names)
    return EMMeans(view, grid, spec_names, by_names, ddf=method, level=level, weights=weights, notes=notes)
