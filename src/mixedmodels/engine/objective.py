"""The profiled deviance (ML) and REML criterion as functions of θ alone.

With ``L`` the blocked factor at θ, ``r²`` the penalised residual sum of squares (the squared last
diagonal element of ``L``), ``n`` observations and ``p`` fixed effects (Bates et al. 2015, eqs. 34, 41)::

    ML:   d(θ)   = log|L_θ|² + n (1 + log(2π r² / n))
    REML: d_R(θ) = log|L_θ|² + log|R_X|² + (n − p)(1 + log(2π r² / (n − p)))
"""

from __future__ import annotations

import math

import numpy as np

from .factor import BlockedCholesky


class Objective:
    """Callable ``θ ↦`` ML deviance or REML criterion, counting its evaluations.

    Parameters
    ----------
    factor : BlockedCholesky
        Factor updated in place at each evaluation.
    reml : bool
        REML criterion instead of the ML deviance.
    """

    def __init__(self, factor: BlockedCholesky, reml: bool) -> None:
        self.factor = factor
        self.reml = reml
        self.n = factor.cp.n
        self.p = factor.r - 1
        self.evaluations = 0

    def __call__(self, theta: np.ndarray) -> float:
        self.evaluations += 1
        return self.value_at_factor(self.factor.update(np.asarray(theta, dtype=float)))

    def value_at_factor(self, f: BlockedCholesky) -> float:
        """The objective read off an already updated factor."""
        r2 = f.pwrss()
        if r2 <= 0.0:  # a response reproduced exactly by the fixed effects: a degenerate fit
            return -math.inf
        if self.reml:
            dof = self.n - self.p
            return f.logdet_z() + f.logdet_x() + dof * (1.0 + math.log(2.0 * math.pi * r2 / dof))
        return f.logdet_z() + self.n * (1.0 + math.log(2.0 * math.pi * r2 / self.n))
