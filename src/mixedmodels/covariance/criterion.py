"""Brute-force likelihood criteria for testing: dense ``V``, and a per-pattern marginal (GLS) version.

For ``y ~ N(Xβ, V)``, ``V = Z G Z' + R``, at the GLS estimate ``β̂`` and ``r = y − Xβ̂`` (n rows, p columns
of full rank)::

    ML:    −2 ℓ   = n log 2π + log|V| + r'V⁻¹r
    REML:  −2 ℓ_R = (n − p) log 2π + log|V| + log|X'V⁻¹X| + r'V⁻¹r

exactly nlme's logLik for gls (glsEstimate: ``N (log N − 1 − log 2π)/2 + ll`` with ``N = n − p`` under REML
and ``ll`` the log-determinant terms, which is the above at σ̂² = r'C⁻¹r/N) and mmrm's (src/mmrm.cpp):
there is no ``log|X'X|`` term.  σ² profiled out (``V = σ² V0``, σ̂² = r'V0⁻¹r/N):

    −2 ℓ = N (1 + log(2π σ̂²)) + log|V0| [+ log|X'V0⁻¹X| for REML].
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg as sla

from .binding import ResidualBinding
from .residual import ResidualStructure

_LOG_2PI = math.log(2.0 * math.pi)


def _marginal(y: np.ndarray, X: np.ndarray, Z: np.ndarray | None, G: np.ndarray | None,
              R: np.ndarray | None) -> np.ndarray:
    n = len(y)
    V = np.eye(n) if R is None else np.array(R, dtype=float, copy=True)
    if Z is not None:
        if G is None:
            raise ValueError("Z given without G")
        Z = np.asarray(Z, dtype=float)
        V += Z @ np.asarray(G, dtype=float) @ Z.T
    return V


def _gls(y: np.ndarray, X: np.ndarray, V: np.ndarray) -> tuple[float, float, float, np.ndarray]:
    """log|V|, log|X'V⁻¹X|, r'V⁻¹r and β̂."""
    c = sla.cho_factor(V, lower=True)
    vx, vy = sla.cho_solve(c, X), sla.cho_solve(c, y)
    xvx = X.T @ vx
    beta = np.linalg.solve(xvx, X.T @ vy)
    r = y - X @ beta
    return 2.0 * float(np.log(np.diag(c[0])).sum()), float(np.linalg.slogdet(xvx)[1]), float(r @ sla.cho_solve(c, r)), beta


def dense_criterion(
    y: np.ndarray,
    X: np.ndarray,
    Z: np.ndarray | None = None,
    G: np.ndarray | None = None,
    R: np.ndarray | None = None,
    reml: bool = False,
) -> float:
    """−2 × the ML or REML log-likelihood at ``V = Z G Z' + R`` (module docstring), dense.

    Parameters
    ----------
    y : numpy.ndarray
        Response, ``(n,)``.
    X : numpy.ndarray
        Fixed-effects model matrix, ``n × p`` of full column rank.
    Z, G : numpy.ndarray, optional
        Random-effects model matrix ``n × q`` and covariance ``q × q`` (absolute); None for a marginal
        model.
    R : numpy.ndarray, optional
        Residual covariance ``n × n`` (absolute, σ² included); None for the identity.
    reml : bool
        The REML criterion instead of the ML one.
    """
    y, X = np.asarray(y, dtype=float), np.asarray(X, dtype=float)
    n, p = X.shape
    logdet_v, logdet_x, quad, _ = _gls(y, X, _marginal(y, X, Z, G, R))
    if reml:
        return (n - p) * _LOG_2PI + logdet_v + logdet_x + quad
    return n * _LOG_2PI + logdet_v + quad


def profiled_dense_criterion(
    y: np.ndarray,
    X: np.ndarray,
    C: np.ndarray | None = None,
    Z: np.ndarray | None = None,
    G: np.ndarray | None = None,
    reml: bool = False,
) -> tuple[float, float]:
    """The criterion at ``V = σ² (Z G Z' + C)`` minimised over σ², and that σ̂².

    ``C`` and ``G`` are relative to σ² (``C`` a structure's block-diagonal relative covariance, e.g. from
    :func:`residual_matrix` with ``sigma2=1``).  Returns ``(criterion, σ̂²)``.
    """
    y, X = np.asarray(y, dtype=float), np.asarray(X, dtype=float)
    n, p = X.shape
    logdet_v, logdet_x, quad, _ = _gls(y, X, _marginal(y, X, Z, G, C))
    dof = n - p if reml else n
    sigma2 = quad / dof
    value = dof * (1.0 + _LOG_2PI + math.log(sigma2)) + logdet_v + (logdet_x if reml else 0.0)
    return value, sigma2


def residual_matrix(structure: ResidualStructure, par: np.ndarray, binding: ResidualBinding,
                    sigma2: float = 1.0) -> np.ndarray:
    """The block-diagonal ``n × n`` residual covariance ``σ² C`` in the bound frame's row order."""
    out = np.zeros((binding.n, binding.n))
    for p in binding.patterns:
        out[p.rows[:, :, None], p.rows[:, None, :]] = sigma2 * structure.cov(par, p.times, p.group)
    return out


def marginal_criterion(structure: ResidualStructure, par: np.ndarray, binding: ResidualBinding, y: np.ndarray,
                       X: np.ndarray, reml: bool = False) -> tuple[float, float, np.ndarray]:
    """The profiled criterion of the marginal model ``V = σ² C`` by per-pattern whitening (no dense ``V``).

    For each visit pattern (discrete structures) or each batch of subjects with ``k`` times (continuous),
    ``L = chol(C)`` whitens the subjects' rows, ``L⁻¹ X_i`` and ``L⁻¹ y_i``, and the cross-products add up:
    the computation the engine does, written plainly.  Returns ``(criterion, σ̂², β̂)``; ``inf`` if a
    ``C`` is not positive definite.
    """
    y, X = np.asarray(y, dtype=float), np.asarray(X, dtype=float)
    n, p = X.shape
    xy = np.column_stack([X, y])
    cross = np.zeros((p + 1, p + 1))
    logdet = 0.0
    try:
        factors = structure.factors(par, binding)
    except np.linalg.LinAlgError:
        return math.inf, math.nan, np.full(p, np.nan)
    units = binding.patterns if structure.discrete else binding.batches
    for unit, L in zip(units, factors):
        if structure.discrete:  # one factor for the pattern's m subjects: solve for all at once
            m, k = unit.rows.shape
            w = sla.solve_triangular(L, xy[unit.rows].transpose(1, 0, 2).reshape(k, m * (p + 1)), lower=True)
            w = w.reshape(k * m, p + 1)
            logdet += m * 2.0 * float(np.log(np.diag(L)).sum())
        else:
            w = np.linalg.solve(L, xy[unit.rows]).reshape(-1, p + 1)
            logdet += 2.0 * float(np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum())
        cross += w.T @ w
    xtx, xty, yty = cross[:p, :p], cross[:p, p], cross[p, p]
    beta = np.linalg.solve(xtx, xty)
    dof = n - p if reml else n
    sigma2 = float(yty - xty @ beta) / dof
    value = dof * (1.0 + _LOG_2PI + math.log(sigma2)) + logdet
    if reml:
        value += float(np.linalg.slogdet(xtx)[1])
    return value, sigma2, beta
