"""Random-effects terms: the grouping factor, the term's model matrix and its covariance factor.

A term ``(expr | g)`` with ``p`` columns and ``l`` levels contributes ``q = l * p`` random effects,
ordered level-major (all columns of level 1, then level 2, ...).  Its relative covariance factor is
``Λ = I_l ⊗ λ`` with ``λ`` a ``p × p`` lower-triangular matrix whose non-zeros are the term's slice of
θ in column-major order, as in lme4 (Bates et al. 2015, eq. 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)
class RandomEffectsTerm:
    """One random-effects term after its data have been evaluated.

    Attributes
    ----------
    group : str
        Name of the grouping factor (``"Subject"``, ``"cask:batch"``).
    group_vars : tuple of str
        Data columns whose interaction is the grouping factor.
    levels : numpy.ndarray
        Level labels (strings), in the order of the random effects.
    refs : numpy.ndarray
        Level index (0-based) of every observation.
    z : numpy.ndarray
        The term's model matrix, ``n × p``.
    cnames : tuple of str
        Column names of ``z`` as lme4 prints them.
    spec : Any
        formulaic model spec that rebuilds ``z`` for new data.
    level_codes : dict
        Mapping from each grouping variable to its level labels, used to map new data.
    """

    group: str
    group_vars: tuple[str, ...]
    levels: np.ndarray
    refs: np.ndarray
    z: np.ndarray
    cnames: tuple[str, ...]
    spec: Any = field(repr=False)

    @property
    def p(self) -> int:
        """Number of columns (random effects per level)."""
        return self.z.shape[1]

    @property
    def nlevels(self) -> int:
        """Number of levels of the grouping factor."""
        return len(self.levels)

    @property
    def q(self) -> int:
        """Number of random effects in the term."""
        return self.p * self.nlevels

    @property
    def ntheta(self) -> int:
        """Number of covariance parameters (lower triangle of λ)."""
        return self.p * (self.p + 1) // 2

    @cached_property
    def theta_rows_cols(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of λ filled by each θ element (lower triangle, column-major)."""
        cols, rows = np.triu_indices(self.p)
        return rows, cols

    @property
    def lower_bounds(self) -> np.ndarray:
        """0 for diagonal elements of λ, -inf for off-diagonal ones."""
        rows, cols = self.theta_rows_cols
        return np.where(rows == cols, 0.0, -np.inf)

    @property
    def theta_start(self) -> np.ndarray:
        """lme4's starting value: λ = identity."""
        rows, cols = self.theta_rows_cols
        return (rows == cols).astype(float)

    @property
    def theta_names(self) -> list[str]:
        """lme4's names for the θ elements (``Subject.Days.(Intercept)``)."""
        rows, cols = self.theta_rows_cols
        out = []
        for r, c in zip(rows, cols):
            if r == c:
                out.append(f"{self.group}.{self.cnames[r]}")
            else:
                out.append(f"{self.group}.{self.cnames[r]}.{self.cnames[c]}")
        return out

    def lambda_matrix(self, theta: np.ndarray) -> np.ndarray:
        """The ``p × p`` lower-triangular factor λ for this term's slice of θ."""
        lam = np.zeros((self.p, self.p))
        rows, cols = self.theta_rows_cols
        lam[rows, cols] = theta
        return lam
