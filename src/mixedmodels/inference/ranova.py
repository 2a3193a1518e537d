"""Likelihood-ratio tests for the random-effects terms of a model (lmerTest's ``ranova``).

Each random-effects term ``(expr | g)`` is reduced in turn, the model refitted by its own criterion
(REML or ML, as fitted) and compared with the full model. With ``reduce_terms=True`` (lmerTest's
default) a term whose left side has terms that can be dropped respecting marginality (R's
``drop.scope``) loses each of them in turn: ``(Days | Subject)`` becomes ``(1 | Subject)`` (row
``Days in (Days | Subject)``), ``(0 + Days | Subject)`` also becomes ``(1 | Subject)`` as in lmerTest,
and ``(x1 + x2 | g)`` gives ``(x2 | g)`` and ``(x1 | g)``; a term with nothing left to drop
(``(1 | g)``) is removed. With ``reduce_terms=False`` every term is removed whole. Removing the last
term leaves a linear model (lmerTest refits it with ``lm``). Terms of a structured covariance
(``cs(x | g)``) keep their structure when reduced.

The p-values are χ² on the difference in parameters, as lmerTest prints them; the χ̄² mixture
p-value of :func:`~mixedmodels.inference.compare.boundary_df` is added where the reduction removes one
variance (with its covariances), whose null value is on the boundary.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..exceptions import ModelError
from ..formula.parse import RandomTermSpec, parse_formula
from ..protocols import MixedFit
from ..report.serialize import json_number
from ..report.table import Table, as_table
from .compare import boundary_df, mixture_pvalue
from .reformulate import assemble, droppable, expression_terms, refit_formula, rhs_text

RANOVA_COLUMNS = ["npar", "logLik", "AIC", "LRT", "Df", "Pr(>Chisq)"]


def _term_text(spec: RandomTermSpec) -> str:
    """The term as lmerTest names it: ``(Days | Subject)``."""
    return spec.label


def reduced_formulas(fit: Any, reduce_terms: bool = True) -> dict[str, str]:
    """The formulas of the reduced models, keyed by lmerTest's row names (``"Days in (Days | Subject)"``).

    Parameters
    ----------
    fit : LinearMixedModelResults
        A fit with random-effects terms.
    reduce_terms : bool
        Reduce terms whose left side has droppable terms instead of removing them.
    """
    parsed = parse_formula(fit.design.formula.text)
    if not parsed.random:
        raise ModelError("the model has no random-effects terms to test")
    out: dict[str, str] = {}
    for i, spec in enumerate(parsed.random):
        others = list(parsed.random[:i]) + list(parsed.random[i + 1 :])
        intercept, terms = expression_terms(spec.expr)
        scope = droppable(terms) if reduce_terms else []
        if not scope:
            out[_term_text(spec)] = assemble(parsed, parsed.fixed, others)
            continue
        for drop in scope:
            rest = [t for t in terms if t is not drop]
            new_expr = "1" if not rest else rhs_text(intercept, rest)
            new = dataclasses.replace(spec, expr=new_expr)
            # a term the formula already has is not added twice (R's update() of the formula merges them)
            kept = others if any(o.label == new.label for o in others) else others[:i] + [new] + others[i:]
            out[f"{drop.label} in {_term_text(spec)}"] = assemble(parsed, parsed.fixed, kept)
    return out


@dataclass(frozen=True)
class RanovaTable:
    """Single-term deletions of random-effects terms (lmerTest's ``ranova``).

    Attributes
    ----------
    table : pandas.DataFrame
        Rows ``<none>`` (the model) and one per reduction; columns ``npar``, ``logLik``, ``AIC``,
        ``LRT``, ``Df``, ``Pr(>Chisq)`` (lmerTest's) and ``Pr(>Chisq) boundary`` (the χ̄² mixture
        p-value where the reduction removes one variance; NaN elsewhere).
    formulas : dict
        Row name → formula of the reduced model.
    models : dict
        Row name → the reduced fit (``"<none>"``: the model itself).
    formula : str
        The model's formula.
    method : str
        ``"REML"`` or ``"ML"``: the likelihoods compared.
    """

    table: pd.DataFrame
    formulas: dict[str, str]
    models: dict[str, Any]
    formula: str
    method: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready rows: ``{"formula", "method", "terms": [{"term", "formula", "npar", ...}]}``."""
        rows = []
        for name, row in self.table.iterrows():
            rows.append({
                "term": str(name), "formula": self.formulas.get(name, self.formula), "npar": int(row["npar"]),
                "loglik": json_number(row["logLik"]), "aic": json_number(row["AIC"]), "lrt": json_number(row["LRT"]),
                "df": None if not np.isfinite(row["Df"]) else int(row["Df"]), "p_value": json_number(row["Pr(>Chisq)"]),
                "p_value_boundary": json_number(row["Pr(>Chisq) boundary"]),
            })
        return {"formula": self.formula, "method": self.method, "terms": rows}

    def __str__(self) -> str:
        head = ["ANOVA-like table for random-effects: Single term deletions", "", "Model:", self.formula,
                f"({self.method} likelihoods)"]
        return "\n".join(head + [as_table(self.table).to_text(na_rep="")]) + "\n"

    __repr__ = __str__


def lr_row(full: Any, reduced: Any) -> dict[str, float]:
    """One row of an LRT table: the reduced model's npar, logLik, AIC and its test against ``full``."""
    lrt = 2.0 * (full.loglik - reduced.loglik)
    df = full.npar - reduced.npar
    p = float(stats.chi2.sf(lrt, df)) if df > 0 else np.nan
    k = boundary_df(reduced, full)
    pb = mixture_pvalue(max(lrt, 0.0), k) if k is not None and df == k + 1 else np.nan
    return {"npar": float(reduced.npar), "logLik": reduced.loglik, "AIC": reduced.aic, "LRT": lrt, "Df": float(df),
            "Pr(>Chisq)": p, "Pr(>Chisq) boundary": pb}


def none_row(fit: Any) -> dict[str, float]:
    """The ``<none>`` row: the model's npar, logLik and AIC."""
    return {"npar": float(fit.npar), "logLik": fit.loglik, "AIC": fit.aic, "LRT": np.nan, "Df": np.nan,
            "Pr(>Chisq)": np.nan, "Pr(>Chisq) boundary": np.nan}


def ranova(fit: Any, reduce_terms: bool = True) -> RanovaTable:
    """LRTs for reducing or removing each random-effects term (lmerTest's ``ranova(m, reduce.terms)``).

    Parameters
    ----------
    fit : LinearMixedModelResults
        A mixed model fitted by REML or ML; the reduced models are fitted by the same criterion to
        the same rows.
    reduce_terms : bool
        ``True`` (lmerTest's default): drop each droppable column term of a term's left side,
        keeping the rest (``(Days | Subject)`` → ``(1 | Subject)``); ``False``: remove each term whole.

    Returns
    -------
    RanovaTable
    """
    if not isinstance(fit, MixedFit) or not fit.terms:
        raise ModelError("ranova needs a mixed model with random-effects terms")
    formulas = reduced_formulas(fit, reduce_terms)
    rows = {"<none>": none_row(fit)}
    models: dict[str, Any] = {"<none>": fit}
    for name, formula in formulas.items():
        reduced = refit_formula(fit, formula)
        models[name] = reduced
        rows[name] = lr_row(fit, reduced)
    table = Table(pd.DataFrame.from_dict(rows, orient="index"))
    table.index.name = None
    return RanovaTable(table=table, formulas=formulas, models=models, formula=fit.formula, method=fit.method)
