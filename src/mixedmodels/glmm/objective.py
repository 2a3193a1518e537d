"""glmer's deviance at the conditional modes: the Laplace approximation and adaptive Gauss–Hermite quadrature.

With ``L`` the factor of ``Λ'Z'WZΛ + I`` at the mode ``û`` (lme4's ``glmerLaplace``, ``glmResp::Laplace``)::

    Laplace (nAGQ ≤ 1):  d = log|L|² + ‖û‖² + aic(y, μ̂, w)

where ``aic`` is −2 × the conditional log-likelihood with the family's normalising constants (R's
``family()$aic``, binomial coefficients included), so that ``−d/2`` is glmer's ``logLik``.

Adaptive Gauss–Hermite quadrature (nAGQ > 1; lme4's ``glmerAGQ``) is for one scalar random-effects term,
whose levels are then independent given β: for level ``j`` with ``devc_j(u) = u² + Σ_{i∈j} devresᵢ(u)`` and
``s_j = 1/L_jj`` (the conditional SD of ``u_j``), nodes ``z_k`` and weights ``w_k`` of the rule for the
standard normal density (weights summing to 1)::

    d = Σ_j devc_j(û_j) + log|L|² − 2 Σ_j log Σ_k w_k exp(z_k²/2 − [devc_j(û_j + s_j z_k) − devc_j(û_j)]/2)

lme4 builds this from the deviance residuals, not from ``aic``, so its ``logLik`` for nAGQ > 1 leaves out
the normalising constants (cbpp: −92.03 with nAGQ = 1, −50.01 with nAGQ = 9); this module computes the same
quantity. With the one-node rule (``z = 0``, ``w = 1``) it is ``Σ devres + ‖û‖² + log|L|²``: the Laplace
deviance less ``aic − Σ devres``.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

from ..exceptions import ModelError
from .family import Family
from .pirls import Mode

#: Most quadrature points (lme4's ``GHrule`` takes orders below 101).
MAX_NAGQ = 100


@cache
def gh_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the ``n``-point Gauss–Hermite rule for the standard normal density (weights sum to 1),
    as lme4's ``GHrule(n)``."""
    if not 1 <= n <= MAX_NAGQ:
        raise ModelError(f"nAGQ must be between 0 and {MAX_NAGQ}, got {n}")
    z, w = hermegauss(n)
    w = w / math.sqrt(2.0 * math.pi)
    z = np.where(np.abs(z) < 1e-14, 0.0, z)
    return z, w


def laplace_deviance(mode: Mode, family: Family, y: np.ndarray, wt: np.ndarray, aic_constant: float | None = None) -> float:
    """``log|L|² + ‖û‖² + aic``: −2 × glmer's Laplace log-likelihood.

    ``aic_constant`` (``aic − Σ dev_variable``, see :meth:`Family.aic_constant`) saves evaluating ``aic``.
    """
    aic = family.aic(y, mode.mu, wt) if aic_constant is None else aic_constant + mode.devvar
    return mode.factor.logdet_z() + mode.sqr_u + aic


def agq_deviance(
    mode: Mode,
    family: Family,
    y: np.ndarray,
    wt: np.ndarray,
    *,
    z: np.ndarray,
    refs: np.ndarray,
    lam: float,
    nagq: int,
) -> float:
    """lme4's adaptive Gauss–Hermite deviance for one scalar random-effects term (see the module docstring).

    Parameters
    ----------
    mode : Mode
        The conditional modes at (θ, β), with the factor at them.
    z, refs : numpy.ndarray
        The term's one column and each row's level.
    lam : float
        The term's relative SD (θ).
    nagq : int
        Number of quadrature points.
    """
    nodes, weights = gh_rule(nagq)
    u = mode.u
    nl = u.size
    sd = 1.0 / mode.factor.Ldiag[0][:, 0, 0]
    zl = z * lam
    base = mode.eta - zl * u[refs]  # the linear predictor without the random effects
    const = np.bincount(refs, family.dev_constant(y, wt), minlength=nl)
    # every node at once: U[k, j] = û_j + z_k s_j, and the deviance residuals of each row at each node
    U = u[None, :] + nodes[:, None] * sd[None, :]
    mu = family.link.linkinv(base[None, :] + zl[None, :] * U[:, refs])
    dev = family.dev_variable(y[None, :], mu, wt[None, :])
    index = (np.arange(nodes.size)[:, None] * nl + refs[None, :]).ravel()
    devc = U**2 + const[None, :] + np.bincount(index, dev.ravel(), minlength=nodes.size * nl).reshape(nodes.size, nl)
    devc0 = u**2 + const + np.bincount(refs, family.dev_variable(y, family.link.linkinv(mode.eta), wt), minlength=nl)
    delta = np.where(nodes[:, None] == 0.0, 0.0, devc - devc0[None, :])
    terms = np.log(weights)[:, None] + 0.5 * nodes[:, None] ** 2 - 0.5 * delta
    top = terms.max(axis=0)
    log_mult = top + np.log(np.exp(terms - top).sum(axis=0))
    return float(devc0.sum() + mode.factor.logdet_z() - 2.0 * log_mult.sum())
