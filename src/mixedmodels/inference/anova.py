"""t- and F-tests of fixed effects with Satterthwaite or Kenward–Roger df, and the Type III ANOVA table.

The tables have lmerTest's columns. Type III hypotheses are those of SAS, built as lmerTest
builds them (see :func:`type3_contrasts`), so that multi-df Satterthwaite df — which depend on
the basis of the hypothesis, not only on its span — agree with lmerTest's.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import formulaic

import numpy as np
import pandas as pd
from scipy import special

from ..exceptions import ModelError
from ..formula.design import _matrix
from ..formula.safety import evaluation_context

if TYPE_CHECKING:
    from ..results import LinearMixedModelResults

COEF_COLUMNS = ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]
ANOVA_COLUMNS = ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]


def coef_table(result: "LinearMixedModelResults", ddf: str | None = "satterthwaite") -> pd.DataFrame:
    """Fixed-effects table with df and p-values (lmerTest's ``coef(summary(m, ddf = ...))``).

    With ``ddf=None`` (or ``"none"``) the df and p-value columns are NaN, as lme4. For
    Kenward–Roger the standard errors come from the adjusted covariance, as in lmerTest.
    """
    table = result.fixed_effects.copy()
    p = result.nfixed
    if ddf is None or str(ddf).lower() == "none" or result.sigma == 0:  # σ = 0: a degenerate fit has no df
        table.insert(2, "df", np.nan)
        table["Pr(>|t|)"] = np.nan
        return table[COEF_COLUMNS]
    calc = result.ddf_calculator(ddf)
    eye = np.eye(p)
    se = np.sqrt([calc.contrast_variance(eye[i]) for i in range(p)])
    df = np.array([calc.contrast_df(eye[i]) for i in range(p)])
    t = result.beta / se
    out = pd.DataFrame(
        {"Estimate": result.beta, "Std. Error": se, "df": df, "t value": t, "Pr(>|t|)": 2 * special.stdtr(df, -np.abs(t))},
        index=table.index,
    )
    return out


def contest(result: "LinearMixedModelResults", L: np.ndarray, *, rhs: np.ndarray | None = None, ddf: str = "satterthwaite") -> pd.Series:
    """F-test of the linear hypothesis ``Lβ = rhs`` (lmerTest's ``contest``); a row of an ANOVA table."""
    L = np.atleast_2d(np.asarray(L, dtype=float))
    if L.shape[1] != result.nfixed:
        raise ModelError(f"the hypothesis matrix needs {result.nfixed} columns (one per fixed effect), got {L.shape[1]}")
    calc = result.ddf_calculator(ddf)
    res = calc.ftest(L, rhs)
    unscaled = res["F"] / res["scale"]
    ms = unscaled * result.sigma**2
    return pd.Series(
        {
            "Sum Sq": ms * res["ndf"],
            "Mean Sq": ms,
            "NumDF": res["ndf"],
            "DenDF": res["ddf"],
            "F value": res["F"],
            "Pr(>F)": float(special.fdtrc(res["ndf"], res["ddf"], res["F"])),
        }
    )


def _norm(name: str) -> str:
    """Column names without formulaic's level brackets: ``f[T.b]`` and ``f[b]`` → ``fb``."""
    return re.sub(r"\[(?:T\.)?([^\]]*)\]", r"\1", name).replace("Intercept", "(Intercept)").replace("`", "")


def _quoted(factor: str, frame: pd.DataFrame) -> str:
    """formulaic's expression of a factor, with a column name that is not an identifier (``a b``) quoted again."""
    return f"`{factor}`" if factor in frame.columns and not factor.isidentifier() else factor


def _term_info(spec) -> list[tuple[str, list[str], frozenset[str], frozenset[str]]]:
    """``(label, factor expressions, variables, numeric variables)`` of each non-intercept term."""
    kinds = {k: str(v[0]).lower() for k, v in spec.encoder_state.items()}
    out = []
    for term in spec.terms:
        names = [f.expr for f in term.factors]
        if names == ["1"]:
            continue
        numeric = frozenset(n for n in names if "categorical" not in kinds.get(n, "numerical"))
        out.append((str(term), names, frozenset(names), numeric))
    return out


def _type1_rows(result: "LinearMixedModelResults") -> np.ndarray:
    """Rows of ``t(L)`` for the unit-lower-triangular ``L`` of ``X'X = L D L'`` (lmerTest's Doolittle)."""
    X = result.design.X
    C = np.linalg.cholesky(X.T @ X)
    L = C / np.diag(C)[None, :]
    L[np.abs(L) < 1e-6] = 0.0
    return L.T


def type3_contrasts(result: "LinearMixedModelResults") -> dict[str, np.ndarray]:
    """Type III hypothesis matrices, one per model term (intercept excluded), as lmerTest builds them.

    For treatment coding (our default) this is lmerTest's ``extract_contrasts_type3``: the
    contrasts ``(X⁺ X_rd)'`` of the over-parameterised design ``X_rd`` (every level of every
    factor), each term's columns made orthogonal to those of the terms that contain it (SAS's
    containment: more variables, the same numeric ones), the rows of the model's coefficients
    kept. Models with a single term get Type I contrasts, as in lmerTest.
    """
    design = result.design
    if design.frame is None:
        raise ModelError("the model does not keep its data; Type III contrasts need it")
    spec = design.fixed_spec
    info = _term_info(spec)
    names = list(design.fixed_names)
    term_cols: dict[str, list[int]] = {}
    for term, idx in spec.term_indices.items():
        kept = [int(np.flatnonzero(design.kept_columns == i)[0]) for i in idx if i in design.kept_columns]
        if str(term) != "1":
            term_cols[str(term)] = kept
    if len(info) <= 1 or len(names) <= 1:
        rows = _type1_rows(result)
        return {label: rows[term_cols[label]] for label, *_ in info if term_cols.get(label)}
    ctx = evaluation_context()
    blocks, rd_names = [], []
    if "(Intercept)" in names:
        blocks.append(np.ones((result.nobs, 1)))
        rd_names.append("(Intercept)")
    frame = design.formulaic_frame(design.frame)
    for label, factors, _, _ in info:
        quoted = [_quoted(f, frame) for f in factors]
        mm = formulaic.model_matrix("0 + " + ":".join(quoted), frame, context=ctx, ensure_full_rank=False, na_action="ignore")
        blocks.append(np.asarray(mm, dtype=float))
        rd_names += [_norm(c) for c in mm.columns]
    rdX = np.hstack(blocks)
    L0 = (np.linalg.pinv(design.X) @ rdX).T  # rows: rd columns, cols: coefficients
    L0[np.abs(L0) < 1e-10] = 0.0
    contains = {
        a: [b for b, _, vb, nb in info if va < vb and na == nb] for a, _, va, na in info
    }
    order = sorted(range(len(info)), key=lambda i: -len(info[i][1]))
    for i in order:
        label = info[i][0]
        others = [c for b in contains[label] for c in term_cols.get(b, [])]
        if others and term_cols.get(label):
            A = L0[:, others]
            Y = L0[:, term_cols[label]]
            coef, *_ = np.linalg.lstsq(A, Y, rcond=None)
            R = Y - A @ coef
            R[np.abs(R) < 1e-10] = 0.0
            L0[:, term_cols[label]] = R
    try:
        keep = [rd_names.index(n.replace("`", "")) for n in names]
    except ValueError:  # a coding other than treatment contrasts: use the sum-coded hypotheses
        return _type3_sum_coded(result, info, term_cols)
    L = L0[keep]  # rows: coefficients (the model's order), cols: coefficients
    out: dict[str, np.ndarray] = {}
    for label, *_ in info:
        cols = term_cols.get(label, [])
        if not cols:
            continue
        M = L[:, cols].T
        M = M[np.abs(M).sum(axis=1) > 1e-8]
        if M.shape[0]:
            out[label] = M
    return out


def _type3_sum_coded(result, info, term_cols) -> dict[str, np.ndarray]:
    """Type III hypotheses as each term's coefficients under sum-to-zero coding, mapped by ``X_sum⁺ X``."""
    design = result.design
    spec = design.fixed_spec
    categorical = {str(f) for f in spec.factor_contrasts}
    frame = design.formulaic_frame(design.frame)
    parts = [
        ":".join(f"C({_quoted(n, frame)}, contr.sum)" if n in categorical else _quoted(n, frame) for n in factors)
        for _, factors, _, _ in info
    ]
    rhs = ("1" if "(Intercept)" in design.fixed_names else "0") + "".join(f" + {p}" for p in parts)
    mm = _matrix(rhs, frame, evaluation_context(), "the sum-coded fixed-effects formula")
    mapping = np.linalg.pinv(np.asarray(mm, dtype=float)) @ design.X
    sum_terms = [idx for t, idx in mm.model_spec.term_indices.items() if str(t) != "1"]
    out = {}
    for (label, *_), idx in zip(info, sum_terms):
        M = mapping[idx]
        M[np.abs(M) < 1e-10] = 0.0
        M = M[np.abs(M).sum(axis=1) > 1e-8]
        if M.shape[0]:
            out[label] = M
    return out


def _r_term_label(design, term: str) -> str:
    """A formulaic term (``C(Type, contr.sum):C(conc)``) as R prints it (``C(Type, sum):factor(conc)``)."""
    atoms = design.fixed_atoms
    return ":".join(atoms[f].label if f in atoms else f.replace("`", "") for f in term.split(":"))


def anova_table(result: "LinearMixedModelResults", ddf: str = "satterthwaite") -> pd.DataFrame:
    """Type III ANOVA table with F-tests (lmerTest's ``anova(m, type = 3, ddf = ...)``)."""
    design = result.design
    rows = {_r_term_label(design, label): contest(result, L, ddf=ddf) for label, L in type3_contrasts(result).items()}
    table = pd.DataFrame(rows).T if rows else pd.DataFrame(columns=ANOVA_COLUMNS)
    table.index.name = "term"
    return table[ANOVA_COLUMNS]
