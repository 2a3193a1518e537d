"""Named checks of a GLMM fit: separation, the Hessian, and the warnings they raise.

Separation (Albert & Anderson 1984; the linear program of Konis 2007, as R's ``detectseparation``): the
fixed effects separate the data when some direction ``d`` of β moves every linear predictor towards the
outcome observed, ``x'd ≥ 0`` where only successes were seen, ``x'd ≤ 0`` where only failures (or, for
counts, zeros) were seen, and ``x'd = 0`` where both were, with ``x'd ≠ 0`` somewhere. Then the likelihood
keeps increasing along ``d`` — random effects do not stop it — and the coefficients moving along ``d``
run off to ±∞ (complete separation when every row is constrained one way, quasi-complete otherwise).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

from ..exceptions import ConvergenceWarning
from .family import Binomial


class SeparationWarning(ConvergenceWarning):
    """Some fixed effects are not estimable: the data are (quasi-)completely separated along them."""


def separated_coefficients(X: np.ndarray, y: np.ndarray, wt: np.ndarray, family, names: list[str]) -> dict[str, int]:
    """Coefficients that run off to ±∞ because the data are separated, with the sign of their direction.

    Parameters
    ----------
    X : numpy.ndarray
        Fixed-effects matrix.
    y, wt : numpy.ndarray
        The response (proportions for the binomial) and prior weights (trials).
    family : Family
    names : list of str
        Coefficient names.

    Returns
    -------
    dict
        ``{name: +1 or -1}`` for each coefficient along the direction of separation (empty when none).
    """
    used = wt > 0
    Xu, yu = X[used], y[used]
    if isinstance(family, Binomial):
        up, down = yu >= 1.0, yu <= 0.0
    else:  # counts: a zero lets the mean go to 0; a positive count pins it
        up, down = np.zeros(yu.size, dtype=bool), yu <= 0.0
    mixed = ~(up | down)
    if not (up.any() or down.any()) or Xu.shape[1] == 0:
        return {}
    scale = np.maximum(np.abs(Xu).max(axis=0), 1e-300)
    Xs = Xu / scale
    c = -(Xs[up].sum(axis=0) - Xs[down].sum(axis=0))
    A_ub = np.vstack([-Xs[up], Xs[down]])
    A_eq = Xs[mixed] if mixed.any() else None
    res = linprog(
        c, A_ub=A_ub, b_ub=np.zeros(A_ub.shape[0]), A_eq=A_eq, b_eq=None if A_eq is None else np.zeros(A_eq.shape[0]),
        bounds=[(-1.0, 1.0)] * Xs.shape[1], method="highs",
    )
    if res.status != 0 or -res.fun <= 1e-6 * max(1.0, float(np.abs(Xs).sum(axis=1).max())):
        return {}
    d = res.x
    return {names[j]: int(np.sign(d[j])) for j in np.flatnonzero(np.abs(d) > 1e-6)}


def separation_message(coefs: dict[str, int]) -> str:
    """The warning for separated coefficients."""
    shown = ", ".join(f"{name} ({'+' if s > 0 else '-'}Inf)" for name, s in coefs.items())
    return (
        f"the data are (quasi-)completely separated along the fixed effect{'s' if len(coefs) > 1 else ''} {shown}: "
        "their maximum-likelihood estimates are infinite, and the reported values and standard errors are "
        "arbitrary (those of where the optimizer stopped); drop or merge the separated levels, or use a penalised fit"
    )


def gradient_messages(grad: np.ndarray, hess: np.ndarray, tol: float = 2e-3) -> list[str]:
    """lme4's ``checkConv`` gradient test: the scaled gradient ``H⁻¹g`` (through ``chol(H)``), componentwise the
    smaller of it and the raw gradient, must stay below ``tol``."""
    try:
        scaled = np.linalg.solve(np.linalg.cholesky(hess).T, grad)
    except np.linalg.LinAlgError:
        return ["unable to evaluate scaled gradient"]
    if not np.all(np.isfinite(scaled)):
        return ["unable to evaluate scaled gradient"]
    mingrad = np.minimum(np.abs(scaled), np.abs(grad))
    worst = float(np.max(mingrad))
    if worst > tol:
        return [f"Model failed to converge with max|grad| = {worst:.6g} (tol = {tol:g}, component {int(np.argmax(mingrad)) + 1})"]
    return []


def hessian_messages(H: np.ndarray, tol: float = 1e-6, kind: str = "") -> list[str]:
    """lme4's ``checkHess``: negative, zero or extreme eigenvalues of a Hessian, in lme4's words."""
    kind = f"{kind} " if kind else ""
    try:
        ev = np.linalg.eigvalsh(H)
    except np.linalg.LinAlgError:
        return ["Problem with Hessian check (infinite or missing values?)"]
    if not np.all(np.isfinite(ev)):
        return ["Problem with Hessian check (infinite or missing values?)"]
    negative = int(np.sum(ev < -tol))
    if negative:
        return [f"Model failed to converge: degenerate {kind}Hessian with {negative} negative eigenvalues"]
    try:
        np.linalg.cholesky(H)
        chol_ok = True
    except np.linalg.LinAlgError:
        chol_ok = False
    if np.any(np.abs(ev) < tol) or not chol_ok:
        return [f"{kind}Hessian is numerically singular: parameters are not uniquely determined".strip()]
    out = []
    if ev.max() * tol > 1:
        out.append("Model is nearly unidentifiable: very large eigenvalue - Rescale variables?")
    if ev.min() / ev.max() < tol:
        out.append("Model is nearly unidentifiable: large eigenvalue ratio - Rescale variables?")
    return out
