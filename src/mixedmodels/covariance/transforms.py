"""Maps between unconstrained reals and correlation parameters that keep a matrix positive definite.

* ``tanh`` / ``arctanh`` (Fisher's z) for a correlation in (−1, 1);
* :func:`bounded` / :func:`unbounded` for a correlation in (lower, 1) (compound symmetry);
* partial autocorrelations ↔ autocorrelations (Durbin–Levinson) for Toeplitz matrices: every vector of
  partial autocorrelations in (−1, 1)^m gives a positive-definite Toeplitz correlation matrix of order
  m + 1 and back (Barndorff-Nielsen & Schou 1973; the map nlme's corARMA uses for its AR part);
* canonical partial correlations (CPCs) ↔ the Cholesky factor of a correlation matrix (Lewandowski,
  Kurowicka & Joe 2009): every CPC vector in (−1, 1)^{T(T−1)/2} gives a positive-definite correlation
  matrix and back.  The CPCs of the first column are the correlations with the first level.
"""

from __future__ import annotations

import numpy as np


def logistic(z: float | np.ndarray) -> float | np.ndarray:
    """``1 / (1 + exp(−z))``, without overflow for large ``|z|``."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=float)))


def logit(p: float | np.ndarray) -> float | np.ndarray:
    """The inverse of :func:`logistic`."""
    p = np.asarray(p, dtype=float)
    return np.log(p) - np.log1p(-p)


def bounded(z: float, lower: float) -> float:
    """A value in ``(lower, 1)``: ``lower + (1 − lower) · logistic(z)``."""
    return float(lower + (1.0 - lower) * logistic(z))


def unbounded(rho: float, lower: float) -> float:
    """The inverse of :func:`bounded`."""
    return float(logit((rho - lower) / (1.0 - lower)))


def pacf_to_acf(pacf: np.ndarray) -> np.ndarray:
    """Autocorrelations ``ρ_1 … ρ_m`` of the stationary process with partial autocorrelations ``pacf``.

    Durbin–Levinson: with ``φ_k`` the AR(k) coefficients, ``ρ_k = Σ_{j<k} φ_{k−1,j} ρ_{k−j} +
    π_k (1 − Σ_{j<k} φ_{k−1,j} ρ_j)`` and ``φ_{k,j} = φ_{k−1,j} − π_k φ_{k−1,k−j}``, ``φ_{k,k} = π_k``.
    """
    pacf = np.asarray(pacf, dtype=float)
    m = pacf.size
    rho = np.empty(m)
    phi = np.empty(0)
    for k in range(m):
        past = rho[:k]
        p = pacf[k]
        rho[k] = phi @ past[::-1] + p * (1.0 - phi @ past)
        phi = np.append(phi - p * phi[::-1], p)
    return rho


def acf_to_pacf(acf: np.ndarray) -> np.ndarray:
    """The inverse of :func:`pacf_to_acf` (the same recursion solved for ``π_k``)."""
    acf = np.asarray(acf, dtype=float)
    m = acf.size
    pacf = np.empty(m)
    phi = np.empty(0)
    for k in range(m):
        past = acf[:k]
        p = (acf[k] - phi @ past[::-1]) / (1.0 - phi @ past)
        pacf[k] = p
        phi = np.append(phi - p * phi[::-1], p)
    return pacf


def toeplitz_corr(acf: np.ndarray, size: int) -> np.ndarray:
    """The ``size × size`` Toeplitz matrix with unit diagonal and ``acf[k−1]`` on the k-th off-diagonals."""
    r = np.concatenate([[1.0], np.asarray(acf, dtype=float)])[:size]
    idx = np.abs(np.subtract.outer(np.arange(size), np.arange(size)))
    return r[idx]


def lower_pairs(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the strict lower triangle in column-major order: (2,1), (3,1), …, (3,2), …"""
    cols, rows = np.triu_indices(size, 1)
    return rows, cols


def cpc_to_chol(cpc: np.ndarray, size: int) -> np.ndarray:
    """Lower Cholesky factor ``W`` of the correlation matrix with canonical partial correlations ``cpc``.

    ``W[i, j] = z_ij · sqrt(1 − Σ_{k<j} W[i, k]²)`` for ``j < i`` and ``W[i, i]`` makes row ``i`` a unit
    vector (Lewandowski et al. 2009, section 2.4); ``cpc`` is in :func:`lower_pairs` order.
    """
    z = np.zeros((size, size))
    rows, cols = lower_pairs(size)
    z[rows, cols] = cpc
    w = np.zeros((size, size))
    rem = np.ones(size)
    for j in range(size):
        w[j, j] = np.sqrt(rem[j])
        w[j + 1 :, j] = z[j + 1 :, j] * np.sqrt(rem[j + 1 :])
        rem[j + 1 :] = np.maximum(rem[j + 1 :] - w[j + 1 :, j] ** 2, 0.0)
    return w


def corr_to_cpc(corr: np.ndarray) -> np.ndarray:
    """The inverse of :func:`cpc_to_chol`: canonical partial correlations of a correlation matrix."""
    size = corr.shape[0]
    w = np.linalg.cholesky(corr)
    z = np.zeros((size, size))
    rem = np.ones(size)
    for j in range(size - 1):
        z[j + 1 :, j] = w[j + 1 :, j] / np.sqrt(rem[j + 1 :])
        rem[j + 1 :] -= w[j + 1 :, j] ** 2
    rows, cols = lower_pairs(size)
    return z[rows, cols]


def shrink_to_pd(corr: np.ndarray, min_eigenvalue: float = 0.05) -> np.ndarray:
    """``(1 − λ) R + λ I`` with the smallest ``λ ∈ [0, 1]`` whose smallest eigenvalue is ``min_eigenvalue``."""
    low = float(np.linalg.eigvalsh(corr)[0]) if corr.size else 1.0
    if low >= min_eigenvalue:
        return corr
    lam = (min_eigenvalue - low) / (1.0 - low)
    return (1.0 - lam) * corr + lam * np.eye(corr.shape[0])
