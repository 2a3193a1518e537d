"""Repeated-measures ANOVA on the complete cases, as afex's ``aov_ez`` (through car's ``Anova``) computes it.

The within-subject factor is time; the between-subject factors enter as a full factorial with
sum-to-zero contrasts. Subjects missing any time level are dropped, as afex drops them. The
analysis is car's multivariate linear model ``Y = XB + E`` on the subjects × times matrix ``Y``:

* for each between-subject term ``T`` (the intercept included) and each within-subject term
  ``P`` (the intercept column ``1/√K`` or an orthonormal basis of the time contrasts), the Type III
  hypothesis SSP is ``(LB̂P)' [L(X'X)⁻¹L']⁻¹ (LB̂P)`` with ``L`` selecting ``T``'s columns, and the
  error SSP ``P'EP``; the univariate test is ``F = (tr SSP / q·p) / (tr P'EP / ν·p)`` on
  ``(q·p, ν·p)`` df, ``ν = n − rank X`` (car's ``summary(Anova(...), multivariate = FALSE)``);
* Mauchly's test, the Greenhouse–Geisser ``ε = (Σλ/p)² / (Σλ²/p)`` (``λ`` the eigenvalues of
  ``P'EP``) and the Huynh–Feldt ``ε`` with Lecoutre's correction, ``((ν+1)pε_GG − 2) / (p(ν − pε_GG))``,
  capped at 1 in its p-value, exactly as car 3.1 computes them.

Where the error SSP is singular (fewer complete subjects than time levels), car reports no sphericity
test or correction, and neither does this (the rank uses a relative tolerance, car an absolute one).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats


if TYPE_CHECKING:
    from .layout import Layout

EFFECT_COLUMNS = ["effect", "F", "num_df", "den_df", "p_value", "sum_sq", "error_ss"]
SPHERICITY_COLUMNS = ["effect", "mauchly_W", "mauchly_p", "gg_epsilon", "p_gg", "hf_epsilon", "p_hf"]


@dataclass(frozen=True)
class RMAnova:
    """Univariate repeated-measures ANOVA (Type III, sum-to-zero contrasts) on the complete cases.

    Attributes
    ----------
    effects : pandas.DataFrame
        ``effect``, ``F``, ``num_df``, ``den_df``, ``p_value``, ``sum_sq``, ``error_ss`` (sphericity assumed).
    sphericity : pandas.DataFrame
        Per effect with time (when time has three or more levels): ``mauchly_W``, ``mauchly_p``,
        ``gg_epsilon``, ``p_gg``, ``hf_epsilon``, ``p_hf`` (NaN where the error SSP is singular).
    n_subjects_used, n_subjects_dropped, n_rows_dropped : int
    between : tuple of str
        Between-subject factors used.
    notes : tuple of str
        What was left out and why (an empty table says why it is empty).
    """

    effects: pd.DataFrame
    sphericity: pd.DataFrame
    n_subjects_used: int
    n_subjects_dropped: int
    n_rows_dropped: int
    between: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def available(self) -> bool:
        """Whether there was anything to test."""
        return len(self.effects) > 0


def _contr_sum(k: int) -> np.ndarray:
    return np.vstack([np.eye(k - 1), -np.ones((1, k - 1))])


def _orthonormal_within(k: int) -> np.ndarray:
    q, _ = np.linalg.qr(_contr_sum(k))
    return q


def between_design(subjects: pd.DataFrame, factors: list[str], levels: dict) -> tuple[np.ndarray, list[tuple[str, list[int]]]]:
    """Full-factorial model matrix with sum-to-zero contrasts, and each term's name and columns (intercept first)."""
    n = len(subjects)
    codes = {f: _contr_sum(len(levels[f]))[pd.Categorical(subjects[f], categories=levels[f]).codes] for f in factors}
    cols = [np.ones((n, 1))]
    terms = [("(Intercept)", [0])]
    start = 1
    for size in range(1, len(factors) + 1):
        for combo in itertools.combinations(factors, size):
            block = codes[combo[0]]
            for f in combo[1:]:
                block = np.einsum("ni,nj->nij", block, codes[f]).reshape(n, -1)
            cols.append(block)
            terms.append((":".join(combo), list(range(start, start + block.shape[1]))))
            start += block.shape[1]
    return np.hstack(cols), terms


def _mauchly(U: np.ndarray, k: int, df: float) -> tuple[float, float]:
    """car's Mauchly test of ``U = P'EP`` (``P`` orthonormal, so car's ``Psi`` is the identity)."""
    pp = U.shape[0]
    sign, logdet = np.linalg.slogdet(U)
    logW = logdet - pp * math.log(np.trace(U) / pp) if sign > 0 else -math.inf
    rho = 1 - (2 * pp**2 + pp + 2) / (6 * pp * df)
    # car writes 3 * p with p = nrow(P), the number of time levels, where Anderson's formula has pp
    w2 = (pp + 2) * (pp - 1) * (pp - 2) * (2 * pp**3 + 6 * pp**2 + 3 * k + 2) / (288 * (df * pp * rho) ** 2)
    z = -df * rho * logW
    f = pp * (pp + 1) / 2 - 1
    pr1, pr2 = stats.chi2.sf(z, f), stats.chi2.sf(z, f + 4)
    return math.exp(logW), float(pr1 + w2 * (pr2 - pr1))


def _empty(layout: "Layout", used: int, dropped: int, rows: int, between: tuple[str, ...], notes: list[str]) -> RMAnova:
    return RMAnova(pd.DataFrame(columns=EFFECT_COLUMNS), pd.DataFrame(columns=SPHERICITY_COLUMNS), used, dropped, rows, between, tuple(notes))


def rm_anova(layout: "Layout") -> RMAnova:
    """Repeated-measures ANOVA of the response on time (within) and the between-subject factors, complete cases only.

    Returns
    -------
    RMAnova
        With empty tables and a note when no subject is complete, a between-subject cell has no
        complete subject, or no error df remain.
    """
    wide = layout.wide()
    complete = wide.notna().all(axis=1).to_numpy()
    subj_table = layout.subject_table()
    n_all = len(wide)
    used = int(complete.sum())
    dropped = n_all - used
    rows_dropped = int(layout.long["subject"].isin(wide.index[~complete]).sum())
    notes = list(layout.notes)
    k = layout.n_times
    if used == 0:
        notes.append(f"no subject is observed at every level of {layout.time} ({k} levels): RM-ANOVA has no complete case")
        return _empty(layout, used, dropped, rows_dropped, layout.between, notes)
    Y = wide.to_numpy()[complete]
    subjects = subj_table.loc[wide.index[complete]]
    factors, levels = [], {}
    for b in layout.between:
        present = [lv for lv in layout.between_levels[b] if lv in set(subjects[b])]
        if len(present) < 2:
            notes.append(f"{b} has one level among the complete subjects: left out of the RM-ANOVA")
            continue
        factors.append(b)
        levels[b] = present
    X, terms = between_design(subjects, factors, levels)
    rank = np.linalg.matrix_rank(X)
    if rank < X.shape[1]:
        notes.append(f"some combination of {', '.join(factors)} has no complete subject (an empty cell): "
                     "the Type III tests are not defined")
        return _empty(layout, used, dropped, rows_dropped, tuple(factors), notes)
    nu = used - rank
    if nu < 1:
        notes.append(f"{used} complete subject(s) leave no error df for {X.shape[1]} between-subject cells: RM-ANOVA cannot be computed")
        return _empty(layout, used, dropped, rows_dropped, tuple(factors), notes)
    XtX_inv = np.linalg.inv(X.T @ X)
    B = XtX_inv @ X.T @ Y
    R = Y - X @ B
    E = R.T @ R
    within = [("", np.ones((k, 1)) / math.sqrt(k)), (layout.time, _orthonormal_within(k))]
    effects, spher = [], []
    for wname, P in within:
        p = P.shape[1]
        EP = P.T @ E @ P
        lam = np.linalg.eigvalsh(EP)
        singular = p >= 2 and (lam.min() <= math.sqrt(np.finfo(float).eps) * max(lam.max(), 0.0) or lam.min() <= 0)
        gg = hf = math.nan
        mauchly = (math.nan, math.nan)
        if p >= 2 and not singular:
            pos = lam[lam > 0]
            gg = float((pos.sum() / p) ** 2 / ((pos**2).sum() / p))
            hf = ((nu + 1) * p * gg - 2) / (p * (nu - p * gg))
            mauchly = _mauchly(EP, k, nu)
        for tname, cols in terms:
            if not wname and tname == "(Intercept)":
                continue
            L = B[cols] @ P
            H = L.T @ np.linalg.solve(XtX_inv[np.ix_(cols, cols)], L)
            ss, sse = float(np.trace(H)), float(np.trace(EP))
            q = len(cols)
            df1, df2 = q * p, nu * p
            F = (ss / df1) / (sse / df2)
            name = wname if tname == "(Intercept)" else tname if not wname else f"{tname}:{wname}"
            effects.append((name, F, float(df1), float(df2), float(stats.f.sf(F, df1, df2)), ss, sse))
            if p >= 2:
                p_gg = float(stats.f.sf(F, gg * df1, gg * df2)) if not singular else math.nan
                hfc = min(1.0, hf) if not singular else math.nan
                p_hf = float(stats.f.sf(F, hfc * df1, hfc * df2)) if not singular else math.nan
                spher.append((name, mauchly[0], mauchly[1], gg, p_gg, hf, p_hf))
    if spher and any(math.isnan(r[1]) for r in spher):
        notes.append(
            f"the error SSP of {used} complete subjects has rank below {k - 1}: no sphericity test or correction "
            f"(needs at least {k - 1 + rank} complete subjects)"
        )
    # between-subject effects first, then the within ones, as afex's table
    order = sorted(range(len(effects)), key=lambda i: (layout.time in effects[i][0].split(":"), i))
    table = pd.DataFrame([effects[i] for i in order], columns=EFFECT_COLUMNS)
    return RMAnova(table, pd.DataFrame(spher, columns=SPHERICITY_COLUMNS), used, dropped, rows_dropped, tuple(factors), tuple(notes))
