"""Covariance structures of random-effects terms (G-side): the map between parameters and λ.

A term ``(expr | g)`` with ``p`` columns has random effects ``b_l ~ N(0, σ² λλ')`` per level ``l``;
its relative covariance factor is ``Λ = I ⊗ λ``. A structure owns everything that depends on how
λ is parameterised: the parameters' start, bounds and names, λ itself, the SD/correlation scale
used by profiles and reports, which parameters sit on the boundary, and the linear covariance
parameters Kenward–Roger differentiates by. Everything else in the engine sees only λ.

:class:`RandomUnstructured` is lme4's: θ is the lower triangle of λ in column-major order, the
diagonal bounded below by 0 (Bates et al. 2015, eq. 4).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from functools import cached_property

import numpy as np

#: Parameters with a lower bound of 0 below this are "on the boundary" (lme4's isSingular tol).
SINGULAR_TOL = 1e-4


def _robust_chol(R: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a correlation matrix that may be singular (pivots clamped at 0)."""
    p = R.shape[0]
    L = np.zeros_like(R)
    for j in range(p):
        L[j, j] = math.sqrt(max(R[j, j] - L[j, :j] @ L[j, :j], 0.0))
        for i in range(j + 1, p):
            L[i, j] = (R[i, j] - L[i, :j] @ L[j, :j]) / L[j, j] if L[j, j] > 0 else 0.0
    return L


class RandomCovariance(ABC):
    """How one random-effects term's covariance ``σ² λλ'`` is parameterised.

    Parameters
    ----------
    cnames : tuple of str
        Names of the term's columns, as lme4 prints them.
    """

    def __init__(self, cnames: tuple[str, ...]) -> None:
        self.cnames = tuple(cnames)
        self.p = len(self.cnames)

    @property
    @abstractmethod
    def npar(self) -> int:
        """Number of parameters."""

    @abstractmethod
    def lam(self, par: np.ndarray) -> np.ndarray:
        """The ``p × p`` factor λ (lower triangular) at ``par``."""

    @abstractmethod
    def start(self) -> np.ndarray:
        """lme4's start: the parameters of λ = I."""

    @abstractmethod
    def lower(self) -> np.ndarray:
        """Lower bounds of the parameters."""

    @abstractmethod
    def names(self, group: str) -> list[str]:
        """lme4's names of the parameters (``Subject.Days.(Intercept)``)."""

    @abstractmethod
    def phi_kinds(self) -> list[str]:
        """``"sd"`` or ``"cor"`` for each value of :meth:`to_phi` (lme4's profile scale)."""

    @abstractmethod
    def phi_labels(self, group: str) -> list[str]:
        """Readable labels of the :meth:`to_phi` values (``sd((Intercept)|Subject)``)."""

    @abstractmethod
    def to_phi(self, par: np.ndarray, sigma: float) -> np.ndarray:
        """Standard deviations and correlations (lme4's ``.sig01, …``) at ``par``."""

    @abstractmethod
    def from_phi(self, phi: np.ndarray, sigma: float) -> np.ndarray:
        """Parameters for SDs/correlations ``phi`` (the inverse of :meth:`to_phi`)."""

    @abstractmethod
    def linear_parameters(self) -> list[tuple[int, int]]:
        """The covariance's linear parameters as ``(a, b)`` element pairs of the ``p × p`` matrix, ``a ≥ b``:
        ``G = Σ_r γ_r E_r`` with ``E_r`` the symmetric indicator of ``(a, b)`` (Kenward–Roger's basis)."""

    def covariance(self, par: np.ndarray, sigma: float) -> np.ndarray:
        """``σ² λλ'``."""
        lam = self.lam(par)
        return sigma**2 * lam @ lam.T

    def on_boundary(self, par: np.ndarray) -> np.ndarray:
        """Indices of parameters bounded below by 0 and (numerically) at it."""
        return np.flatnonzero((self.lower() == 0) & (np.asarray(par) < SINGULAR_TOL))


class RandomUnstructured(RandomCovariance):
    """lme4's general covariance: θ = the lower triangle of λ, column by column."""

    @cached_property
    def rows_cols(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of λ filled by each parameter (lower triangle, column-major)."""
        cols, rows = np.triu_indices(self.p)
        return rows, cols

    @property
    def npar(self) -> int:
        return self.p * (self.p + 1) // 2

    def lam(self, par: np.ndarray) -> np.ndarray:
        lam = np.zeros((self.p, self.p))
        rows, cols = self.rows_cols
        lam[rows, cols] = par
        return lam

    def start(self) -> np.ndarray:
        rows, cols = self.rows_cols
        return (rows == cols).astype(float)

    def lower(self) -> np.ndarray:
        rows, cols = self.rows_cols
        return np.where(rows == cols, 0.0, -np.inf)

    def names(self, group: str) -> list[str]:
        rows, cols = self.rows_cols
        return [
            f"{group}.{self.cnames[r]}" if r == c else f"{group}.{self.cnames[r]}.{self.cnames[c]}" for r, c in zip(rows, cols)
        ]

    def phi_kinds(self) -> list[str]:
        rows, cols = self.rows_cols
        return ["sd" if r == c else "cor" for r, c in zip(rows, cols)]

    def phi_labels(self, group: str) -> list[str]:
        rows, cols = self.rows_cols
        return [
            f"sd({self.cnames[r]}|{group})" if r == c else f"cor({self.cnames[c]},{self.cnames[r]}|{group})"
            for r, c in zip(rows, cols)
        ]

    def to_phi(self, par: np.ndarray, sigma: float) -> np.ndarray:
        cov = self.covariance(par, sigma)
        sd = np.sqrt(np.diag(cov))
        rows, cols = self.rows_cols
        return np.array(
            [sd[r] if r == c else (cov[r, c] / (sd[r] * sd[c]) if sd[r] > 0 and sd[c] > 0 else 0.0) for r, c in zip(rows, cols)]
        )

    def from_phi(self, phi: np.ndarray, sigma: float) -> np.ndarray:
        rows, cols = self.rows_cols
        sd = np.zeros(self.p)
        R = np.eye(self.p)
        for k, (r, c) in enumerate(zip(rows, cols)):
            if r == c:
                sd[r] = phi[k]
            else:
                R[r, c] = R[c, r] = phi[k]
        lam = (sd[:, None] * _robust_chol(R)) / sigma
        return lam[rows, cols]

    def linear_parameters(self) -> list[tuple[int, int]]:
        rows, cols = self.rows_cols
        return list(zip(rows.tolist(), cols.tolist()))
