"""The one criterion: the REML criterion or ML deviance of a linear mixed model, read off the factor.

With ``L`` the blocked factor at θ, ``r²`` the penalised residual sum of squares (the squared last
diagonal element of ``L``), ``n`` observations, ``p`` fixed effects, ``c = n − p`` (REML) or ``n``
(ML), and ``log|R₀|`` the log-determinant of the relative residual covariance ``R = σ² R₀``
(``−Σ log wᵢ`` for prior weights, 0 for iid residuals; Bates et al. 2015, eqs. 34, 41)::

    profiled over σ:  d(θ)    = log|L_θ|² [+ log|R_X|²] + log|R₀| + c (1 + log(2π r² / c))
    at a given σ:     d(θ, σ) = log|L_θ|² [+ log|R_X|²] + log|R₀| + r²/σ² + c log(2πσ²)

Every caller — the fit (``LinearMixedModel.criterion_at``), the results, Satterthwaite's df and the
profile — computes the criterion through :func:`criterion` (or :func:`criterion_value` from its pieces).
"""

from __future__ import annotations

import math

from .factor import BlockedCholesky


def criterion_value(r2: float, logdets: float, c: int, sigma: float | None = None) -> float:
    """The criterion from its pieces: ``r²``, the sum of log-determinants, ``c`` and optionally σ."""
    if sigma is not None:
        s2 = sigma**2
        return float(logdets + r2 / s2 + c * math.log(2.0 * math.pi * s2))
    if r2 <= 0.0:  # a response reproduced exactly by the fixed effects: a degenerate fit
        return -math.inf
    return float(logdets + c * (1.0 + math.log(2.0 * math.pi * r2 / c)))


def criterion(
    f: BlockedCholesky, *, reml: bool, n: int, p: int, sigma: float | None = None, logdet_r: float = 0.0
) -> float:
    """REML criterion (``reml``) or ML deviance at an updated factor, profiled over σ unless ``sigma`` is given."""
    logdets = f.logdet_z() + (f.logdet_x() if reml else 0.0) + logdet_r
    return criterion_value(f.pwrss(), logdets, n - p if reml else n, sigma)
