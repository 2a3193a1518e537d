"""Exact restricted likelihood-ratio test for one variance component (RLRsim's ``exactRLRT``).

Under ``H₀: σ²_b = 0`` in ``y = Xβ + Zb + ε``, ``b ~ N(0, λσ²I)``, the RLRT statistic has the
spectral representation of Crainiceanu & Ruppert (2004, JRSS-B 66:165, Theorem 1): with ``μ_s``
the eigenvalues of ``Z'P₀Z`` (``P₀ = I − X(X'X)⁻¹X'``), independent ``w_s² ~ χ²₁`` (s ≤ K) and
``W ~ χ²_{n−p−K}``,

    RLRT = sup_{λ ≥ 0} (n − p) log(1 + N(λ)/D(λ)) − Σ_s log(1 + λμ_s),
    N(λ) = Σ_s λμ_s/(1 + λμ_s) w_s²,   D(λ) = Σ_s w_s²/(1 + λμ_s) + W.

The null distribution is simulated from this formula — no refitting — with RLRsim's λ grid
(0 and 199 log-spaced points from e⁻¹⁰ to e⁸, following the profile from λ = 0 to its first
maximum) and ``p = mean(RLRT_obs < RLRT*)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from ..engine.crossprod import z_matrix
from ..exceptions import ModelError

if TYPE_CHECKING:
    from ..results import LinearMixedModelResults


@dataclass(frozen=True)
class RLRTResult:
    """Outcome of the exact restricted likelihood-ratio test.

    Attributes
    ----------
    statistic : float
        ``2 (ℓ_R(alt) − ℓ_R(null))``, clipped at 0.
    p_value : float
        Share of the simulated null statistics above the observed one (1 when it is 0).
    nsim : int
        Simulated values (0 when the statistic is 0, as RLRsim).
    seed : int or None
    sample : numpy.ndarray
        The simulated null statistics.
    """

    statistic: float
    p_value: float
    nsim: int
    seed: int | None = None
    sample: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def to_dict(self) -> dict[str, Any]:
        """``{"statistic", "p_value", "nsim", "seed"}``."""
        return {"statistic": self.statistic, "p_value": self.p_value, "nsim": self.nsim, "seed": self.seed}

    def __str__(self) -> str:
        return (
            "Exact restricted likelihood-ratio test (simulated finite-sample null)\n"
            f"RLRT = {self.statistic:.4f}, p-value = {self.p_value:.4g} ({self.nsim} simulated values)"
        )


def lambda_grid(log_lo: float = -10.0, log_hi: float = 8.0, length: int = 200) -> np.ndarray:
    """RLRsim's grid: 0 and ``length − 1`` points evenly spaced on the log scale."""
    return np.r_[0.0, np.exp(np.linspace(log_lo, log_hi, length - 1))]


def null_eigenvalues(X: np.ndarray, Z: sp.spmatrix | np.ndarray) -> np.ndarray:
    """Eigenvalues of ``Z'P₀Z``, largest first, scaled to a maximum of 1 (RLRsim's ``mu``)."""
    Z = sp.csr_matrix(Z)
    ZtZ = (Z.T @ Z).toarray()
    ZtX = np.asarray(Z.T @ X)
    Q, R = np.linalg.qr(X)
    B = np.linalg.solve(R.T, ZtX.T)  # R'⁻¹ X'Z, so Z'X (X'X)⁻¹ X'Z = B'B
    M = ZtZ - B.T @ B
    mu = np.clip(np.linalg.eigvalsh((M + M.T) / 2)[::-1], 0.0, None)
    k = min(X.shape[0], Z.shape[1])
    mu = mu[:k]
    if mu[0] <= 0:
        raise ModelError("the random effect is confounded with the fixed effects (Z'P₀Z = 0)")
    return mu / mu[0]


def simulate_null(mu: np.ndarray, n: int, p: int, nsim: int, rng: np.random.Generator, grid: np.ndarray | None = None) -> np.ndarray:
    """``nsim`` draws of the RLRT under the null, for eigenvalues ``mu``, ``n`` rows and ``p`` fixed effects."""
    grid = lambda_grid() if grid is None else grid
    k = mu.size
    lm = np.outer(grid, mu)
    fN = lm / (1.0 + lm)
    fD = 1.0 / (1.0 + lm)
    slog = np.log1p(lm).sum(axis=1)
    df_rest = max(n - p - k, 0)
    out = np.empty(nsim)
    chunk = max(1, 2_000_000 // max(k, grid.size))
    for start in range(0, nsim, chunk):
        m = min(chunk, nsim - start)
        chi1 = rng.chisquare(1, size=(m, k))
        rest = rng.chisquare(df_rest, size=m) if df_rest > 0 else np.zeros(m)
        N = chi1 @ fN.T
        D = chi1 @ fD.T + rest[:, None]
        LR = (n - p) * np.log1p(N / D) - slog[None, :]
        # follow the profile from λ = 0 to its first maximum on the grid, as RLRsim does
        falls = np.diff(LR, axis=1) < 0
        first = np.where(falls.any(axis=1), falls.argmax(axis=1), LR.shape[1] - 1)
        out[start : start + m] = np.maximum(LR[np.arange(m), first], 0.0)
    return out


def _single_scalar_term(fit: "LinearMixedModelResults", what: str):
    terms = fit.model.terms
    if len(terms) != 1:
        raise ModelError(f"{what} must have exactly one random-effects term, it has {len(terms)}")
    if terms[0].p != 1:
        raise ModelError(
            f"the tested term ({' + '.join(terms[0].cnames)} | {terms[0].group}) has {terms[0].p} correlated effects; "
            "the exact RLRT tests one variance — use an uncorrelated term such as (0 + x | g)"
        )
    return terms[0]


def exact_rlrt(
    model_alt: "LinearMixedModelResults",
    model_null: "LinearMixedModelResults | None" = None,
    model_single: "LinearMixedModelResults | None" = None,
    *,
    nsim: int = 10000,
    seed: int | None = None,
) -> RLRTResult:
    """Exact RLRT that one variance component is zero (RLRsim's ``exactRLRT(m)`` / ``exactRLRT(m, mA, m0)``).

    Parameters
    ----------
    model_alt : LinearMixedModelResults
        REML fit under the alternative. With a single random-effects term (one variance) it is
        tested against the linear model without it.
    model_null : LinearMixedModelResults, optional
        With several terms: the REML fit without the tested term (same fixed effects).
    model_single : LinearMixedModelResults, optional
        With several terms: a fit whose only random-effects term is the tested one; its X and Z
        define the null distribution.
    nsim : int
        Simulated values.
    seed : int, optional
        Seed of the simulation.
    """
    if nsim < 1:
        raise ModelError(f"nsim must be at least 1, got {nsim}")
    fits = [f for f in (model_alt, model_null, model_single) if f is not None]
    if any(not f.reml for f in fits):
        raise ModelError("the exact RLRT needs REML fits; refit with REML=True")
    if (model_null is None) != (model_single is None):
        raise ModelError("give both model_null and model_single (the model with only the tested term), or neither")
    if model_null is None:
        term = _single_scalar_term(model_alt, "model_alt (without model_null and model_single)")
        single = model_alt
        null_loglik = -0.5 * model_alt.model.objective(np.zeros(model_alt.theta.size))
    else:
        term = _single_scalar_term(model_single, "model_single")
        single = model_single
        X = [f.model.design.X for f in fits]
        if any(x.shape != X[0].shape or not np.allclose(x, X[0]) for x in X[1:]):
            raise ModelError("the three models must have the same fixed effects and rows (REML-based inference)")
        if model_alt.npar - model_null.npar != 1:
            raise ModelError(
                f"model_alt has {model_alt.npar - model_null.npar} more parameters than model_null; "
                "the exact RLRT tests one variance (no covariances set to 0 under the null)"
            )
        null_loglik = model_null.loglik
    statistic = max(0.0, 2.0 * (model_alt.loglik - null_loglik))
    if statistic == 0.0:
        return RLRTResult(statistic=0.0, p_value=1.0, nsim=0, seed=seed)
    X = single.model.design.X
    mu = null_eigenvalues(X, z_matrix(term))
    sample = simulate_null(mu, X.shape[0], X.shape[1], nsim, np.random.default_rng(seed))
    return RLRTResult(statistic=float(statistic), p_value=float(np.mean(statistic < sample)), nsim=int(nsim), seed=seed, sample=sample)
