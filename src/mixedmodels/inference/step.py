"""Backward elimination of random and fixed terms (lmerTest's ``step``) and its ``drop1``.

First the random-effects terms: :func:`~mixedmodels.inference.ranova.ranova` is run and, while some
reduction has a p-value above ``alpha_random``, the one with the largest p-value is made and
ranova run again on the reduced model. Then the fixed-effects terms: :func:`drop1` tests each term
that can be dropped respecting marginality (no other term contains it) with an F-test of its
coefficients (Satterthwaite's or Kenward–Roger's df) and, while some p-value is above
``alpha_fixed``, the term with the largest one is removed and the model refitted. The tables are
lmerTest's: the eliminated rows numbered in order, then the last table's rows with ``Eliminated`` 0.

``drop1``'s hypothesis for a term is lmerTest's: its own coefficients are zero (the identity rows of
its columns), or the Type I contrasts when the model has a single term. When the random reduction
removes every random effect, the fixed terms of the linear model are tested with the F-test of
their coefficients (lmerTest calls ``drop1.lm``, whose F-test is the same).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from ..exceptions import ModelError
from ..formula.parse import parse_formula
from ..protocols import MixedFit
from ..report.serialize import json_number
from ..report.table import Table, as_table
from .anova import ANOVA_COLUMNS, _r_term_label, _term_info, contest, type3_contrasts
from .ranova import RANOVA_COLUMNS, ranova
from .reformulate import assemble, refit_formula

_DDF = {"satterthwaite": "Satterthwaite", "kenward-roger": "Kenward-Roger"}


def _fixed_terms(fit: Any) -> tuple[bool, list[tuple[str, str, frozenset[str], list[int]]]]:
    """The intercept flag and each fixed term as ``(formulaic label, R label, factors, columns of X)``."""
    design = fit.design
    spec = design.fixed_spec
    intercept = "(Intercept)" in design.fixed_names
    cols: dict[str, list[int]] = {}
    for term, idx in spec.term_indices.items():
        cols[str(term)] = [int(np.flatnonzero(design.kept_columns == i)[0]) for i in idx if i in design.kept_columns]
    out = [(label, _r_term_label(design, label), factors, cols.get(label, [])) for label, _, factors, _ in _term_info(spec)]
    return intercept, out


def _lm_ftest(fit: Any, L: np.ndarray) -> pd.Series:
    """F-test of ``Lβ = 0`` in a linear model (``drop1.lm``'s test for a term's coefficients)."""
    X = fit.design.X
    n, p = X.shape
    Lb = L @ fit.beta
    C = L @ np.linalg.inv(X.T @ X) @ L.T
    ss = float(Lb @ np.linalg.solve(C, Lb))
    q = L.shape[0]
    s2 = fit.rss / (n - p)
    F = ss / q / s2
    return pd.Series({"Sum Sq": ss, "Mean Sq": ss / q, "NumDF": float(q), "DenDF": float(n - p), "F value": F,
                      "Pr(>F)": float(special.fdtrc(q, n - p, F))})


def drop1(fit: Any, ddf: str = "satterthwaite") -> pd.DataFrame:
    """F-tests for dropping each marginal fixed term (lmerTest's ``drop1(m, ddf)``).

    Parameters
    ----------
    fit : LinearMixedModelResults or LinearModelResults
    ddf : {"satterthwaite", "kenward-roger"}

    Returns
    -------
    pandas.DataFrame
        One row per term that no other term contains, indexed by its R label, with the columns of
        lmerTest's table: Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F).
    """
    design = fit.design
    if design.dropped_columns:
        raise ModelError(
            "drop1 and step need a full-rank fixed-effects design; columns "
            f"{', '.join(design.dropped_columns)} were dropped as linearly dependent (remove them from the formula)"
        )
    _, terms = _fixed_terms(fit)
    marginal = [t for t in terms if not any(t[2] < u[2] for u in terms)]
    if fit.nfixed <= 1 or len(terms) <= 1:
        hypotheses = {_r_term_label(design, k): v for k, v in type3_contrasts(fit).items()} if isinstance(fit, MixedFit) else None
        if hypotheses is None:  # a linear model: the Type I rows of its single term
            from .anova import _type1_rows

            rows = _type1_rows(fit)
            hypotheses = {r: rows[c] for _, r, _, c in marginal if c}
    else:
        eye = np.eye(fit.nfixed)
        hypotheses = {r: eye[c] for _, r, _, c in marginal if c}
    out = {}
    for name, L in hypotheses.items():
        out[name] = contest(fit, L, ddf=ddf) if isinstance(fit, MixedFit) else _lm_ftest(fit, L)
    table = pd.DataFrame(out).T if out else pd.DataFrame(columns=ANOVA_COLUMNS)
    return Table(table[ANOVA_COLUMNS].astype(float))


def _without_fixed_term(fit: Any, term: str) -> str:
    """The fit's formula without the fixed term whose R label is ``term`` (random terms and offsets kept)."""
    parsed = parse_formula(fit.design.formula.text)
    intercept, terms = _fixed_terms(fit)
    rest = [r for _, r, _, _ in terms if r != term]
    if not rest:
        fixed = "1" if intercept else "0"
    else:
        fixed = " + ".join(rest) if intercept else "0 + " + " + ".join(rest)
    return assemble(parsed, fixed, parsed.random)


@dataclass(frozen=True)
class StepResult:
    """Backward elimination of random and fixed terms (lmerTest's ``step``).

    Attributes
    ----------
    random : pandas.DataFrame
        lmerTest's random-effects table: ``<none>`` (the model as given), the eliminated reductions
        numbered by ``Eliminated``, then the last ranova's rows with ``Eliminated`` 0.
    fixed : pandas.DataFrame
        The eliminated fixed terms numbered in order, then the final model's drop1 rows (``Eliminated`` 0).
    model : fitted model
        The model found (lmerTest's ``get_model``).
    ddf : str
        Satterthwaite or Kenward–Roger.
    method : str
        REML or ML: the likelihoods of the random-effects tests.
    """

    random: pd.DataFrame
    fixed: pd.DataFrame
    model: Any
    ddf: str
    method: str

    @property
    def formula(self) -> str:
        """The formula of the model found."""
        return self.model.formula

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"random": [...], "fixed": [...], "formula", "ddf", "method"}``."""

        def rows(table: pd.DataFrame) -> list[dict[str, Any]]:
            out = []
            for name, row in table.iterrows():
                item: dict[str, Any] = {"term": str(name)}
                for col, value in row.items():
                    key = {"Pr(>Chisq)": "p_value", "Pr(>F)": "p_value", "Pr(>Chisq) boundary": "p_value_boundary",
                           "F value": "f_value", "Sum Sq": "sum_sq", "Mean Sq": "mean_sq", "NumDF": "num_df",
                           "DenDF": "den_df", "logLik": "loglik"}.get(str(col), str(col).lower())
                    item[key] = json_number(value)
                    if key in ("eliminated", "npar", "df", "num_df") and item[key] is not None:
                        item[key] = int(item[key])
                out.append(item)
            return out

        return {"random": rows(self.random), "fixed": rows(self.fixed), "formula": self.formula,
                "ddf": self.ddf, "method": self.method}

    def __str__(self) -> str:
        parts = ["Backward reduced random-effect table:", f"({self.method} likelihoods)",
                 as_table(self.random).to_text(na_rep=""), "",
                 "Backward reduced fixed-effect table:", f"Degrees of freedom method: {self.ddf}",
                 as_table(self.fixed).to_text(na_rep=""), "", "Model found:", self.formula]
        return "\n".join(parts) + "\n"

    __repr__ = __str__


def _reduce_random(fit: Any, alpha: float) -> tuple[pd.DataFrame, Any]:
    table = ranova(fit)
    eliminated = [("<none>", {**table.table.iloc[0].to_dict(), "Eliminated": np.nan})]
    model = fit
    last = table.table.iloc[1:]
    while True:
        p = last["Pr(>Chisq)"].to_numpy(dtype=float)
        above = np.isfinite(p) & (p > alpha)
        if not above.any():
            break
        name = last.index[int(np.nanargmax(np.where(above, p, -np.inf)))]
        eliminated.append((name, {**last.loc[name].to_dict(), "Eliminated": float(len(eliminated))}))
        model = table.models[name]
        if not isinstance(model, MixedFit) or not model.terms:
            last = last.iloc[0:0]
            break
        table = ranova(model)
        last = table.table.iloc[1:]
    rows = [(name, row) for name, row in eliminated] + [(name, {**row.to_dict(), "Eliminated": 0.0}) for name, row in last.iterrows()]
    columns = ["Eliminated"] + RANOVA_COLUMNS + ["Pr(>Chisq) boundary"]
    frame = pd.DataFrame([r for _, r in rows], index=[n for n, _ in rows])[columns]
    return Table(frame), model


def _reduce_fixed(fit: Any, ddf: str, alpha: float, keep: Sequence[str]) -> tuple[pd.DataFrame, Any]:
    _, terms = _fixed_terms(fit)
    labels = {r for _, r, _, _ in terms}
    unknown = [k for k in keep if k not in labels]
    if unknown:
        raise ModelError(f"keep names {', '.join(unknown)}, not terms of the model; its terms are {', '.join(sorted(labels))}")
    model = fit
    aov = drop1(model, ddf)
    eliminated: list[tuple[str, dict]] = []
    while True:
        consider = [t for t in aov.index if t not in keep]
        p = aov.loc[consider, "Pr(>F)"].to_numpy(dtype=float) if consider else np.zeros(0)
        above = np.isfinite(p) & (p > alpha)
        if not above.any():
            break
        name = consider[int(np.nanargmax(np.where(above, p, -np.inf)))]
        eliminated.append((name, {**aov.loc[name].to_dict(), "Eliminated": float(len(eliminated) + 1)}))
        model = refit_formula(model, _without_fixed_term(model, name))
        aov = drop1(model, ddf)
    rows = eliminated + [(name, {**row.to_dict(), "Eliminated": 0.0}) for name, row in aov.iterrows()]
    columns = ["Eliminated"] + ANOVA_COLUMNS
    frame = pd.DataFrame([r for _, r in rows], index=[n for n, _ in rows], columns=columns) if rows else pd.DataFrame(columns=columns)
    return Table(frame), model


def step(
    fit: Any,
    ddf: str = "satterthwaite",
    *,
    alpha_random: float = 0.1,
    alpha_fixed: float = 0.05,
    reduce_random: bool = True,
    reduce_fixed: bool = True,
    keep: Sequence[str] = (),
) -> StepResult:
    """Backward elimination of random then fixed terms, as lmerTest's ``step(m, ddf, alpha.random, alpha.fixed, ...)``.

    Parameters
    ----------
    fit : LinearMixedModelResults
        The full model.
    ddf : {"satterthwaite", "kenward-roger"}
        df of the fixed-effects F-tests.
    alpha_random, alpha_fixed : float
        Terms whose p-value exceeds these are eliminated (lmerTest's defaults 0.1 and 0.05).
    reduce_random, reduce_fixed : bool
        Reduce that part (False: only test it).
    keep : sequence of str
        Fixed terms never eliminated (R labels, ``"Gender"``, ``"Product:Information"``).

    Returns
    -------
    StepResult
    """
    key = str(ddf).lower()
    if key not in _DDF:
        raise ModelError(f"ddf must be 'satterthwaite' or 'kenward-roger', got {ddf!r}")
    if not isinstance(fit, MixedFit) or not fit.terms:
        raise ModelError("step needs a mixed model with random-effects terms")
    if key == "kenward-roger" and not fit.reml:
        raise ModelError("Kenward-Roger's df need a REML fit")
    random_table, model = _reduce_random(fit, alpha_random if reduce_random else 1.0)
    fixed_table, model = _reduce_fixed(model, key, alpha_fixed if reduce_fixed else 1.0, tuple(keep))
    return StepResult(random=random_table, fixed=fixed_table, model=model, ddf=_DDF[key], method=fit.method)


__all__ = ["StepResult", "drop1", "step"]
