"""Comparison of nested models: information criteria, likelihood-ratio tests and the χ̄² boundary p-value.

As lme4's ``anova(m0, m1, ...)``: models are ordered by their number of parameters and each is
tested against the one before it. When two models differ only by a variance component whose null
value is on the boundary of the parameter space, the LRT statistic follows a mixture of χ²
distributions (Self & Liang 1987; Stram & Lee 1994): 50:50 χ²₀:χ²₁ for one added variance, and
50:50 χ²_k:χ²_{k+1} when a random effect is added together with its covariances with the k
effects already in its term.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..exceptions import ModelError
from ..report.table import Table, as_table


def _design(m: Any):
    """The design of a mixed model's or a linear model's fit."""
    return m.design


def _fixed_key(m: Any) -> tuple[str, ...]:
    return tuple(sorted(_design(m).fixed_names))


def _re_blocks(m: Any) -> list[tuple[str, tuple[str, ...], str]]:
    """Random-effects terms as ``(grouping factor, column names, covariance class)``; structures allowing the same
    covariances share a class (:attr:`RandomCovariance.model_class`: any one-column term is ``us``)."""
    return [(t.group, tuple(t.cnames), t.structure.model_class) for t in _design(m).terms]


#: Covariance classes in which one more column adds a variance and its covariances with the term's other
#: columns (``us``) or only a variance (``diag``, ``cs``: the correlation is shared), with the ``k`` covariances
#: added as a function of the null term's number of columns.
_ADDED_COVARIANCES = {"us": lambda p: p, "diag": lambda p: 0, "cs": lambda p: 0}


def boundary_df(null: Any, alt: Any) -> int | None:
    """``k`` when ``alt`` adds one variance (and its covariances with ``k`` effects) to ``null``, else None.

    The fixed effects must be the same; the LRT then has the 50:50 χ²_k:χ²_{k+1} null distribution.
    A term of a structure gains ``k`` = its number of columns for ``us``, 0 for ``diag`` and ``cs``
    (a new variance only; ``cs`` shares its correlation); other structures (homogeneous variances, AR(1)
    across levels) do not nest this way and get no boundary p-value.
    """
    if _fixed_key(null) != _fixed_key(alt):
        return None
    a, b = _re_blocks(null), _re_blocks(alt)
    remaining = list(b)
    for blk in a:
        if blk in remaining:
            remaining.remove(blk)
        else:
            break
    else:
        # every null term is in alt: alt must add exactly one scalar term
        if len(remaining) == 1 and len(remaining[0][1]) == 1:
            return 0
        return None
    # one null term is extended by one column in alt; all other terms identical
    unmatched_null = [blk for blk in a if blk not in b]
    unmatched_alt = [blk for blk in b if blk not in a]
    if len(unmatched_null) == 1 and len(unmatched_alt) == 1:
        (g0, c0, s0), (g1, c1, s1) = unmatched_null[0], unmatched_alt[0]
        # a one-column null term is of every class; a two-column cs is unstructured
        same_class = s0 == s1 or (s0 == "us" and (len(c0) == 1 or (len(c0) == 2 and s1 == "cs")))
        if g0 == g1 and set(c0) < set(c1) and len(c1) == len(c0) + 1 and s1 in _ADDED_COVARIANCES and same_class:
            return _ADDED_COVARIANCES[s1](len(c0))
    return None


def mixture_pvalue(chisq: float, k: int) -> float:
    """``P(X ≥ chisq)`` for the 50:50 mixture of χ²_k and χ²_{k+1} (χ²₀ is a point mass at 0)."""
    upper = stats.chi2.sf(chisq, k + 1)
    lower = (1.0 if chisq <= 0 else 0.0) if k == 0 else stats.chi2.sf(chisq, k)
    return float(0.5 * lower + 0.5 * upper)


@dataclass(frozen=True)
class Comparison:
    """Table of compared models and the tests between consecutive ones.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per model (ordered by parameters), indexed by the models' names: npar, AIC, BIC,
        logLik, deviance, Chisq, Df, Pr(>Chisq), Pr(>Chisq) boundary — lme4's ``anova`` columns
        plus the mixture p-value. A :class:`~mixedmodels.report.table.Table`: it prints in full
        and shows Df as integers.
    models : tuple
        The fits compared (after any refit by ML), in table order.
    refitted : bool
        Whether any REML fit was refitted by ML (False when the fits were already ML fits or
        were compared by REML).
    """

    table: pd.DataFrame
    models: tuple
    refitted: bool

    @property
    def names(self) -> list[str]:
        """The models' names, in table order."""
        return [str(n) for n in self.table.index]

    def to_dict(self) -> dict[str, Any]:
        """``{"models": [...], "tests": [...], "refitted_ml": bool}``; ``tests[i]`` compares ``models[i]`` with ``models[i+1]``."""

        def num(v):
            return None if v is None or not np.isfinite(v) else float(v)

        models = [
            {
                "name": name,
                "formula": m.formula,
                "method": m.method,
                "npar": int(row["npar"]),
                "loglik": num(row["logLik"]),
                "aic": num(row["AIC"]),
                "bic": num(row["BIC"]),
                "deviance": num(row["deviance"]),
                "warnings": [str(w) for w in getattr(m, "warnings", [])],
            }
            for name, m, (_, row) in zip(self.names, self.models, self.table.iterrows())
        ]
        tests = [
            {
                "chisq": num(row["Chisq"]),
                "df": int(row["Df"]),
                "p_value": num(row["Pr(>Chisq)"]),
                "p_value_boundary": num(row["Pr(>Chisq) boundary"]),
            }
            for _, row in self.table.iloc[1:].iterrows()
        ]
        return {"models": models, "tests": tests, "refitted_ml": self.refitted}

    def _data_name(self) -> str | None:
        names = {getattr(getattr(m, "model", m), "data_name", None) for m in self.models}
        return names.pop() if len(names) == 1 else None

    def __str__(self) -> str:
        lines = []
        if self.refitted:
            lines.append("refitting model(s) with ML (instead of REML)")
        if data := self._data_name():
            lines.append(f"Data: {data}")
        if any(name != m.formula for name, m in zip(self.names, self.models)):
            lines += ["Models:"] + [f"{name}: {m.formula}" for name, m in zip(self.names, self.models)]
        return "\n".join(lines + [as_table(self.table).to_text(na_rep="")]) + "\n"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        shown = as_table(self.table).copy()
        shown.insert(0, "formula", [m.formula for m in self.models])
        note = "<p>refitting model(s) with ML (instead of REML)</p>" if self.refitted else ""
        return "<div class='mixedmodels-compare'>" + note + shown.to_html_table(na_rep="") + "</div>"


def _caller_names(fits: Sequence[Any], frame: Any) -> list[str | None]:
    """The variable each fit is bound to in the calling frame (locals, then globals), if exactly one.

    Names starting with ``_`` (IPython's output history) are ignored; a fit bound to several
    names, or to none (an expression, ``*fits``), gets None.
    """
    out: list[str | None] = []
    scopes = [frame.f_locals, frame.f_globals] if frame is not None else []
    for fit in fits:
        name = None
        for scope in scopes:
            hits = [k for k, v in list(scope.items()) if v is fit and not k.startswith("_")]
            if hits:
                name = hits[0] if len(hits) == 1 else None
                break
        out.append(name)
    return out


def _model_names(count: int, given: Sequence[str | None]) -> list[str]:
    """``given`` where known, ``model<i>`` elsewhere; all generic if that leaves duplicates."""
    names = [str(n) if n else f"model{i + 1}" for i, n in enumerate(given)]
    if len(set(names)) != len(names):
        names = [f"model{i + 1}" for i in range(count)]
    return names


def compare(*fits: Any, refit: bool | None = None, names: Sequence[str] | None = None, **named_fits: Any) -> Comparison:
    """Compare nested fits fitted to the same rows (lme4's ``anova(m0, m1, ...)``).

    Parameters
    ----------
    *fits : LinearMixedModelResults or LinearModelResults
        Two or more models; a linear model (no random effects) may be the null.
    refit : bool, optional
        Refit REML fits by maximum likelihood. Default (None): only when the fixed effects
        differ, because REML likelihoods are then not comparable — so models that differ only in
        their random effects are compared by REML as fitted, whereas lme4's ``anova`` refits
        with ML by default. ``True`` always refits (lme4's default); ``False`` never.
    names : sequence of str, optional
        Names of the models, in the order given (positional, then keyword).
    **named_fits : LinearMixedModelResults or LinearModelResults
        Models passed by keyword are named by it: ``compare(null=m0, alt=m1)``.

    Returns
    -------
    Comparison

    Notes
    -----
    Without ``names`` or keywords, a model is named by the variable it is bound to where
    ``compare`` is called (``compare(m0, m1)`` gives ``m0`` and ``m1``, as lme4 names models by
    its arguments); one that is not bound to exactly one variable is named ``model<i>``.
    """
    if names is None:
        frame = inspect.currentframe()
        try:
            given: list[str | None] = _caller_names(fits, frame.f_back if frame is not None else None)
        finally:
            del frame
        given += list(named_fits)
    else:
        given = list(names)
        if len(given) != len(fits) + len(named_fits):
            raise ModelError(f"names has {len(given)} entries for {len(fits) + len(named_fits)} models")
    fits = tuple(fits) + tuple(named_fits.values())
    if len(fits) < 2:
        raise ModelError("compare needs at least two models")
    labels = _model_names(len(fits), given)
    nobs = {f.nobs for f in fits}
    if len(nobs) != 1:
        raise ModelError(f"all models must be fitted to the same rows; they use {sorted(nobs)} observations")
    ys = [_design(f).y for f in fits]
    if any(not np.array_equal(ys[0], y) for y in ys[1:]):
        raise ModelError("all models must be fitted to the same response and rows")
    differ = len({_fixed_key(f) for f in fits}) > 1
    do_refit = differ if refit is None else bool(refit)
    refitted = do_refit and any(f.reml for f in fits)
    if do_refit:
        fits = tuple(f.refit_ml() for f in fits)
    elif len({f.method for f in fits}) > 1:
        raise ModelError("some models are fitted by REML and some by ML; refit them by the same method")
    order = sorted(range(len(fits)), key=lambda i: fits[i].npar)
    fits = tuple(fits[i] for i in order)
    labels = [labels[i] for i in order]
    rows = []
    for i, f in enumerate(fits):
        row = {"npar": f.npar, "AIC": f.aic, "BIC": f.bic, "logLik": f.loglik, "deviance": -2 * f.loglik}
        if i == 0:
            row.update({"Chisq": np.nan, "Df": np.nan, "Pr(>Chisq)": np.nan, "Pr(>Chisq) boundary": np.nan})
        else:
            prev = fits[i - 1]
            chisq = 2 * max(0.0, f.loglik - prev.loglik)
            df = f.npar - prev.npar
            p = float(stats.chi2.sf(chisq, df)) if df > 0 else np.nan
            k = boundary_df(prev, f)
            pb = mixture_pvalue(chisq, k) if k is not None and df == k + 1 else np.nan
            row.update({"Chisq": chisq, "Df": float(df), "Pr(>Chisq)": p, "Pr(>Chisq) boundary": pb})
        rows.append(row)
    table = Table(rows, index=pd.Index(labels, name="model"))
    return Comparison(table=table, models=fits, refitted=refitted)


@dataclass(frozen=True)
class BootstrapLRT:
    """Parametric-bootstrap likelihood-ratio test of a null model against an alternative.

    Attributes
    ----------
    statistic : float
        Observed LRT statistic ``2 (ℓ_alt − ℓ_null)`` (ML log-likelihoods).
    p_value : float
        ``(1 + #{LRT* ≥ LRT}) / (1 + nsim_used)`` (pbkrtest's ``PBmodcomp``).
    p_value_chisq : float
        The asymptotic χ² p-value, for reference.
    df : int
        Difference in the number of parameters.
    nsim : int
        Simulations requested.
    nsim_used : int
        Simulations whose refits succeeded.
    reference : numpy.ndarray
        The simulated statistics.
    """

    statistic: float
    p_value: float
    p_value_chisq: float
    df: int
    nsim: int
    nsim_used: int
    reference: np.ndarray = dataclasses.field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the reference sample)."""
        return {
            "statistic": self.statistic,
            "df": self.df,
            "p_value": self.p_value,
            "p_value_chisq": self.p_value_chisq,
            "nsim": self.nsim,
            "nsim_used": self.nsim_used,
        }


def _lrt(null: Any, alt: Any) -> float:
    return 2.0 * (alt.loglik - null.loglik)


def bootstrap_lrt(
    null: Any, alt: Any, nsim: int = 1000, *, seed: int | None = None, n_jobs: int = 1, progress: bool | None = None
) -> BootstrapLRT:
    """Parametric-bootstrap LRT (pbkrtest's ``PBmodcomp``): simulate from the ML null fit, refit both.

    Parameters
    ----------
    null, alt : fitted models
        Nested models fitted to the same rows (refitted by ML here).
    nsim : int
        Number of simulated data sets.
    seed : int, optional
        Seed; the same seed gives the same p-value whatever ``n_jobs``.
    n_jobs : int
        Processes for the refits (``-1``: all cores).
    progress : bool, optional
        Progress bar (default: when standard error is a terminal).
    """
    from .bootstrap import bootstrap_refits

    if null.nobs != alt.nobs:
        raise ModelError("the two models must be fitted to the same rows")
    null_ml, alt_ml = null.refit_ml(), alt.refit_ml()
    if null_ml.npar > alt_ml.npar:
        null_ml, alt_ml = alt_ml, null_ml
    df = alt_ml.npar - null_ml.npar
    if df <= 0:
        raise ModelError("the alternative model must have more parameters than the null")
    observed = _lrt(null_ml, alt_ml)
    ref = bootstrap_refits(null_ml, [null_ml, alt_ml], _lrt, nsim, seed=seed, n_jobs=n_jobs, progress=progress, desc="bootstrap LRT")[:, 0]
    ref = ref[np.isfinite(ref)]
    refpos = ref[ref >= 0]
    p = (1 + int(np.sum(refpos >= observed))) / (1 + refpos.size)
    return BootstrapLRT(
        statistic=float(observed),
        p_value=float(p),
        p_value_chisq=float(stats.chi2.sf(max(observed, 0.0), df)),
        df=int(df),
        nsim=int(nsim),
        nsim_used=int(refpos.size),
        reference=ref,
    )
