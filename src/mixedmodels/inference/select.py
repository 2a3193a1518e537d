"""Choosing among candidate random-effects and residual structures by information criteria and LRTs.

:func:`select` fits every candidate to the same rows and ranks them by AIC, AICc and BIC. When the
candidates share their fixed effects they are fitted by REML (their restricted likelihoods are
comparable, and REML estimates of variance components are less biased); when the fixed effects
differ they are fitted by ML, since restricted likelihoods of different fixed effects are not
comparable. The output says which. AICc is ``AIC + 2k(k + 1)/(n − k − 1)`` with ``k`` the number
of parameters (fixed effects, covariance parameters and σ, lme4's ``logLik`` df) and ``n`` the
number of observations, as MuMIn computes it for either criterion.

Every pair of candidates in which one is nested in the other is tested by the likelihood ratio. A
candidate is nested in another when its fixed-effects columns are among the other's and each of its
random-effects terms is a special case of a term of the other on the same grouping factor (columns
among the other term's, in an unstructured or diagonal covariance, or the same columns in a
structure that restricts the other's: ``homdiag`` ⊂ ``diag`` ⊂ ``cs`` ⊂ ``us``, ``ar1`` ⊂ ``hetar1``),
its residual structure is iid or restricts the other's (``ar1`` ⊂ ``toep`` ⊂ ``us``, ``cs`` ⊂ ``csh``,
...) and its variance function is none or the same. When the pair differs by one variance component
(with its covariances) on the boundary, the χ̄² mixture p-value is given too
(:func:`~mixedmodels.inference.compare.boundary_df`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..exceptions import ModelError
from ..report.serialize import json_number
from ..report.table import Table, as_table
from .compare import boundary_df, mixture_pvalue

#: Residual structures each structure is a special case of (same time and subject).
_RESIDUAL_NESTS = {
    "iid": {"us", "toep", "toeph", "ar1", "ar1h", "cs", "csh", "ad", "adh", "diag", "car1"},
    "cs": {"csh", "toep", "toeph", "us"},
    "ar1": {"ar1h", "toep", "toeph", "ad", "adh", "us"},
    "diag": {"csh", "toeph", "ar1h", "adh", "us"},
    "toep": {"toeph", "us"},
    "ar1h": {"toeph", "adh", "us"},
    "csh": {"us"},
    "toeph": {"us"},
    "ad": {"adh", "us"},
    "adh": {"us"},
}
#: Random-effects structures on the same columns that are special cases of another.
_RANDOM_NESTS = {
    "homdiag": {"diag", "homcs", "cs", "ar1", "hetar1", "us"},
    "diag": {"cs", "hetar1", "us"},
    "homcs": {"cs", "us"},
    "cs": {"us"},
    "ar1": {"hetar1", "us"},
    "hetar1": {"us"},
}


@dataclass(frozen=True)
class Candidate:
    """One candidate model: its random-effects terms (text, may be empty), residual structure and variance function."""

    fixed: str
    random: str
    residual: str | None = None
    variance: str | None = None

    @property
    def formula(self) -> str:
        """The model formula (fixed part plus random-effects terms)."""
        return self.fixed if not self.random else f"{self.fixed} + {self.random}"

    @property
    def label(self) -> str:
        """A readable name: the formula, with the residual structure and variance function if any."""
        parts = [self.formula]
        if self.residual:
            parts.append(f"residual: {self.residual}")
        if self.variance:
            parts.append(f"variance: {self.variance}")
        return "; ".join(parts)


def aicc(loglik: float, k: int, n: int) -> float:
    """``AIC + 2k(k + 1)/(n − k − 1)`` (infinite when ``n ≤ k + 1``)."""
    aic = -2.0 * loglik + 2.0 * k
    return aic + 2.0 * k * (k + 1) / (n - k - 1) if n > k + 1 else math.inf


def _candidates(fixed: str | Sequence[str], random: Sequence[Any] | None, residual: Sequence[str | None] | None) -> list[Candidate]:
    fixed_list = [fixed] if isinstance(fixed, str) else list(fixed)
    if not fixed_list:
        raise ModelError("give the fixed part, e.g. fixed='Reaction ~ Days'")
    for f in fixed_list:
        if "|" in f:
            raise ModelError(f"fixed={f!r} has a random-effects term; give those in random=[...]")
    random_list = [None] if random is None else list(random)
    residual_list = [None] if residual is None else list(residual)
    out = []
    for f in fixed_list:
        for r in random_list:
            if isinstance(r, Mapping):
                unknown = set(r) - {"random", "residual", "variance"}
                if unknown:
                    raise ModelError(f"a candidate may give random, residual and variance; got {', '.join(sorted(unknown))}")
                out.append(Candidate(f, (r.get("random") or "").strip(), r.get("residual"), r.get("variance")))
            else:
                for res in residual_list:
                    out.append(Candidate(f, (r or "").strip(), res))
    if len(out) < 2:
        raise ModelError("select needs at least two candidates")
    return out


def _fit(c: Candidate, data: pd.DataFrame, reml: bool, kwargs: dict) -> Any:
    from ..formula.parse import parse_formula
    from ..linear import LinearModelResults
    from ..model import LinearMixedModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kept in each fit's .warnings and shown in the table
        if not parse_formula(c.formula).random and c.residual is None and c.variance is None:
            if kwargs.get("weights") is not None:
                raise ModelError(f"candidate {c.label!r} has no random effects and cannot take prior weights")
            return LinearModelResults.from_formula(c.formula, data, reml=reml, data_name=kwargs.get("data_name"))
        model = LinearMixedModel.from_formula(c.formula, data, reml=reml, residual=c.residual, variance=c.variance, **kwargs)
        return model.fit(warn=False)


def _fixed_columns(fit: Any) -> frozenset[str]:
    return frozenset(fit.design.fixed_names)


def _term_key(t: Any) -> tuple[str, tuple[str, ...], str]:
    kind = "us" if t.p == 1 else t.structure.kind
    return t.group, tuple(t.cnames), kind


def _terms_nested(a: Any, b: Any) -> bool:
    """Every random-effects term of ``a`` is a special case of a term of ``b`` (see the module docstring)."""
    b_terms = [_term_key(t) for t in b.design.terms]
    used: dict[int, set[str]] = {}
    for group, cols, kind in (_term_key(t) for t in a.design.terms):
        for j, (g2, cols2, kind2) in enumerate(b_terms):
            taken = used.get(j, set())
            if g2 != group or not set(cols) <= set(cols2) or taken & set(cols):
                continue
            if set(cols) == set(cols2):  # the same columns: the same structure or a restriction of it
                fits = kind == kind2 or kind2 in _RANDOM_NESTS.get(kind, set())
            else:  # a block of b's term: b's covariance must allow any covariance of it (us) or none (diag)
                fits = kind2 == "us" or (kind2 == "diag" and (len(cols) == 1 or kind in ("diag", "homdiag")))
            if fits:
                used[j] = taken | set(cols)
                break
        else:
            return False
    return True


def _spec(fit: Any, name: str) -> Any:
    return getattr(getattr(fit, "model", None), name, None)


def _residual_nested(a: Any, b: Any) -> bool:
    ra, rb = _spec(a, "residual_spec"), _spec(b, "residual_spec")
    if ra is None:
        return True
    if rb is None:
        return False
    if ra == rb:
        return True
    same_rows = (ra.time, ra.subject, ra.group) == (rb.time, rb.subject, rb.group)
    return same_rows and rb.structure in _RESIDUAL_NESTS.get(ra.structure, set())


def nested(a: Any, b: Any) -> bool:
    """Whether fit ``a`` is a special case of fit ``b`` with fewer parameters (see the module docstring)."""
    if a.npar >= b.npar or not _fixed_columns(a) <= _fixed_columns(b):
        return False
    va, vb = _spec(a, "variance_spec"), _spec(b, "variance_spec")
    if va is not None and va != vb:
        return False
    return _terms_nested(a, b) and _residual_nested(a, b)


@dataclass(frozen=True)
class Selection:
    """Candidates ranked by an information criterion, with LRTs between nested pairs.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per candidate (best first by ``criterion``): random, residual, npar, logLik, AIC, dAIC,
        AICc, BIC, weight (Akaike weight), singular, converged, warnings.
    tests : pandas.DataFrame
        One row per nested pair: null, alt, Chisq, Df, Pr(>Chisq), Pr(>Chisq) boundary (χ̄², where it applies).
    fits : dict
        Candidate name → fitted model.
    method : str
        ``"REML"`` or ``"ML"``: the likelihood every candidate was fitted by.
    reason : str
        Why that criterion.
    criterion : str
        The criterion the table is ordered by.
    """

    table: pd.DataFrame
    tests: pd.DataFrame
    fits: dict
    method: str
    reason: str
    criterion: str

    @property
    def best(self) -> Any:
        """The fit ranked first."""
        return self.fits[self.table.index[0]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"method", "reason", "criterion", "candidates": [...], "tests": [...]}``."""
        cands = []
        for name, row in self.table.iterrows():
            cands.append({
                "name": str(name), "formula": self.fits[name].formula, "random": row["random"], "residual": row["residual"] or None,
                "npar": int(row["npar"]), "loglik": json_number(row["logLik"]), "aic": json_number(row["AIC"]),
                "delta_aic": json_number(row["dAIC"]), "aicc": json_number(row["AICc"]), "bic": json_number(row["BIC"]),
                "weight": json_number(row["weight"]), "singular": bool(row["singular"]), "converged": bool(row["converged"]),
                "warnings": [w for w in str(row["warnings"]).split("; ") if w],
            })
        tests = [{"null": r["null"], "alt": r["alt"], "chisq": json_number(r["Chisq"]), "df": int(r["Df"]),
                  "p_value": json_number(r["Pr(>Chisq)"]), "p_value_boundary": json_number(r["Pr(>Chisq) boundary"])}
                 for _, r in self.tests.iterrows()]
        return {"method": self.method, "reason": self.reason, "criterion": self.criterion, "candidates": cands, "tests": tests}

    def __str__(self) -> str:
        shown = self.table.drop(columns=["warnings"])
        lines = [f"Candidates fitted by {self.method} ({self.reason}), ordered by {self.criterion}:",
                 as_table(shown).to_text(na_rep="")]
        warned = [(k, w) for k, w in self.table["warnings"].items() if w]
        if warned:
            lines += ["", "Warnings:"] + [f"  {k}: {w}" for k, w in warned]
        if len(self.tests):
            lines += ["", f"Likelihood-ratio tests between nested candidates ({self.method}):", as_table(self.tests).to_text(na_rep="")]
        return "\n".join(lines) + "\n"

    __repr__ = __str__


def select(
    data: pd.DataFrame,
    fixed: str | Sequence[str],
    random: Sequence[Any] | None = None,
    *,
    residual: Sequence[str | None] | None = None,
    REML: bool = True,
    criterion: str = "AIC",
    names: Sequence[str] | None = None,
    data_name: str | None = None,
    weights: Any = None,
    contrasts: dict[str, str] | None = None,
    control: Any = None,
) -> Selection:
    """Fit candidate random-effects (and residual) structures and rank them (AIC, AICc, BIC, nested LRTs).

    Parameters
    ----------
    data : pandas.DataFrame
    fixed : str or sequence of str
        The fixed part with its response, ``"Reaction ~ Days"``; several to compare fixed effects too
        (then every candidate is fitted by ML).
    random : sequence, optional
        Candidate random-effects parts: ``"(1 | Subject)"``, ``"(Days | Subject)"``, ``""`` or None (no
        random effects), or dicts ``{"random": ..., "residual": ..., "variance": ...}`` for a candidate
        with its own residual structure or variance function. Default: no random effects only.
    residual : sequence of str or None, optional
        Residual structures crossed with every string candidate of ``random`` (None: iid residuals),
        ``[None, "ar1(visit | id)"]``.
    REML : bool
        Fit by REML when the candidates share their fixed effects (default); False: ML throughout.
    criterion : {"AIC", "AICc", "BIC"}
        The order of the table.
    names : sequence of str, optional
        Names of the candidates, in the order they are formed (fixed, then random, then residual).
    data_name, weights, contrasts, control
        As :func:`mixedmodels.lmer`.

    Returns
    -------
    Selection
    """
    if criterion not in ("AIC", "AICc", "BIC"):
        raise ModelError(f"criterion must be 'AIC', 'AICc' or 'BIC', got {criterion!r}")
    from ..optimize import OptimizerControl

    cands = _candidates(fixed, random, residual)
    labels = [c.label for c in cands] if names is None else [str(n) for n in names]
    if len(labels) != len(cands):
        raise ModelError(f"names has {len(labels)} entries for {len(cands)} candidates")
    if len(set(labels)) != len(labels):
        raise ModelError("the candidates' names are not distinct")
    same_fixed = len({c.fixed for c in cands}) == 1
    reml = bool(REML) and same_fixed
    if reml:
        reason = "the candidates share their fixed effects"
    elif REML:
        reason = "the candidates' fixed effects differ, so their restricted likelihoods are not comparable"
    else:
        reason = "asked for"
    kwargs = {"data_name": data_name, "weights": weights, "contrasts": contrasts, "control": OptimizerControl.make(control)}
    fits = {}
    for label, c in zip(labels, cands):
        fits[label] = _fit(c, data, reml, kwargs)
    nobs = {label: f.nobs for label, f in fits.items()}
    if len(set(nobs.values())) > 1:
        detail = ", ".join(f"{k}: {v}" for k, v in nobs.items())
        raise ModelError(f"the candidates use different rows (missing values in some of their variables): {detail}")
    rows = []
    for label, c in zip(labels, cands):
        f = fits[label]
        rows.append({
            "random": c.random or "(none)", "residual": c.residual or "", "npar": f.npar, "logLik": f.loglik,
            "AIC": f.aic, "AICc": aicc(f.loglik, f.npar, f.nobs), "BIC": f.bic,
            "singular": bool(getattr(f, "singular", False)), "converged": bool(getattr(f, "converged", True)),
            "warnings": "; ".join(w for w in getattr(f, "warnings", []) if not w.startswith("boundary")),
        })
    table = pd.DataFrame(rows, index=pd.Index(labels, name="model"))
    table.insert(5, "dAIC", table["AIC"] - table["AIC"].min())
    rel = np.exp(-0.5 * (table[criterion] - table[criterion].min()))
    table.insert(8, "weight", rel / rel.sum())
    table = table.sort_values(criterion, kind="stable")
    return Selection(table=Table(table), tests=_nested_tests(fits), fits=fits, method="REML" if reml else "ML",
                     reason=reason, criterion=criterion)


def _nested_tests(fits: dict) -> pd.DataFrame:
    rows = []
    for na, a in fits.items():
        for nb, b in fits.items():
            if na == nb or not nested(a, b):
                continue
            chisq = max(0.0, 2.0 * (b.loglik - a.loglik))
            df = b.npar - a.npar
            same_r = _spec(a, "residual_spec") == _spec(b, "residual_spec") and _spec(a, "variance_spec") == _spec(b, "variance_spec")
            k = boundary_df(a, b) if same_r else None
            pb = mixture_pvalue(chisq, k) if k is not None and df == k + 1 else np.nan
            rows.append({"null": na, "alt": nb, "Chisq": chisq, "Df": float(df), "Pr(>Chisq)": float(stats.chi2.sf(chisq, df)),
                         "Pr(>Chisq) boundary": pb})
    columns = ["null", "alt", "Chisq", "Df", "Pr(>Chisq)", "Pr(>Chisq) boundary"]
    return Table(pd.DataFrame(rows, columns=columns))


__all__ = ["Candidate", "Selection", "aicc", "nested", "select"]
