"""Exact restricted likelihood-ratio test for one variance component (RLRsim's ``exactRLRT``).

Under ``H₀: σ²_b = 0`` in ``y = Xβ + Zb + ε``, ``b ~ N(0, λσ²I)``, ``ε ~ N(0, σ²I)``, the RLRT
statistic has the spectral representation of Crainiceanu & Ruppert (2004, JRSS-B 66:165,
Theorem 1). With ``μ_1 ≥ … ≥ μ_K`` the eigenvalues of ``Z'P₀Z`` (``P₀ = I − X(X'X)⁻¹X'``, the
residual projection of the fixed effects), independent ``w_s² ~ χ²₁`` (``s ≤ K``) and
``W ~ χ²_{n−p−K}``::

    RLRT = sup_{λ ≥ 0} (n − p) log(1 + N(λ)/D(λ)) − Σ_s log(1 + λμ_s),
    N(λ) = Σ_s λμ_s/(1 + λμ_s) w_s²,   D(λ) = Σ_s w_s²/(1 + λμ_s) + W.

The null distribution is simulated from this formula, without refitting: for all draws at once
the profile is evaluated on RLRsim's λ grid (0 and 199 points evenly spaced in log λ from e⁻¹⁰ to
e⁸, for μ scaled to a maximum of 1) and, as RLRsim does, followed from λ = 0 up to its first
maximum on the grid. That maximum is then refined by a vectorised golden-section search between
its grid neighbours (RLRsim stops at the grid, which is up to ~4e-3 below the supremum; the effect
on p-values is far below Monte-Carlo error). The p-value is ``mean(RLRT_obs < RLRT*)``.

Only the q × q matrix ``Z'P₀Z`` is formed (from the sparse ``Z'Z`` and a thin QR of X); no n × n
matrix is.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from functools import partial
from numbers import Integral
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from ..engine.crossprod import z_matrix
from ..engine.threads import engine_threads
from ..exceptions import ConvergenceWarning, ModelError

if TYPE_CHECKING:
    from ..engine.crossprod import CrossProducts
    from ..results import LinearMixedModelResults
    from ..terms import RandomEffectsTerm

#: RLRsim's defaults for the λ grid (``log.grid.lo``, ``log.grid.hi``, ``gridlength``).
LOG_GRID_LO, LOG_GRID_HI, GRID_LENGTH = -10.0, 8.0, 200
#: An observed statistic below this multiple of the REML criterion is rounding error and counts as 0.
ZERO_TOLERANCE = 1e-10
#: Draws per block of random numbers (times K) and rows × grid points per evaluation chunk.
_DRAW_BLOCK, _EVAL_BLOCK = 1 << 20, 1 << 20
#: Golden-section steps refining a grid maximum (the bracket, ~20% of λ wide, shrinks by 0.618 each).
_GOLDEN_STEPS = 30


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
        Simulated values (0 when the statistic is 0: no simulation is needed, as in RLRsim).
    seed : int or None
        Seed of the simulation.
    sample : numpy.ndarray
        The simulated null statistics (empty when the statistic is 0).
    """

    statistic: float
    p_value: float
    nsim: int
    seed: int | None = None
    sample: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """``{"statistic", "p_value", "nsim", "seed"}`` as plain Python values."""
        return {"statistic": self.statistic, "p_value": self.p_value, "nsim": self.nsim, "seed": self.seed}

    def __str__(self) -> str:
        return (
            "Exact restricted likelihood-ratio test (simulated finite-sample null)\n"
            f"RLRT = {self.statistic:.4f}, p-value = {self.p_value:.4g} ({self.nsim} simulated values)"
        )


def lambda_grid(log_lo: float = LOG_GRID_LO, log_hi: float = LOG_GRID_HI, length: int = GRID_LENGTH) -> np.ndarray:
    """RLRsim's grid of λ: 0, then ``length − 1`` points evenly spaced in log λ on ``[log_lo, log_hi]``."""
    if length < 2:
        raise ModelError(f"the λ grid needs at least 2 points, got {length}")
    return np.r_[0.0, np.exp(np.linspace(log_lo, log_hi, length - 1))]


def _null_spectrum(X: np.ndarray, Z: sp.spmatrix | np.ndarray) -> tuple[np.ndarray, int]:
    """Eigenvalues of ``Z'P₀Z`` (largest first, scaled to a maximum of 1) and the rank of X."""
    X = np.asarray(X, dtype=float)
    n = X.shape[0]
    if X.shape[1]:
        Q, R, _ = sla.qr(X, mode="economic", pivoting=True)
        d = np.abs(np.diag(R))
        rank = int(np.sum(d > d[0] * max(X.shape) * np.finfo(float).eps)) if d.size and d[0] > 0 else 0
        Q = Q[:, :rank]
    else:
        Q, rank = np.zeros((n, 0)), 0
    Z = sp.csc_matrix(Z, dtype=float)
    if Z.shape[0] != n:
        raise ModelError(f"Z has {Z.shape[0]} rows, X has {n}")
    B = np.asarray(Z.T @ Q).T  # Q'Z, so that Z'P₀Z = Z'Z − (Q'Z)'(Q'Z)
    return _scaled_spectrum((Z.T @ Z).toarray() - B.T @ B, n, rank)


def _null_spectrum_crossprods(cp: "CrossProducts", p: int) -> tuple[np.ndarray, int]:
    """:func:`_null_spectrum` of a one-term model from its cross-products (a fit that keeps no rows, on Dask data):
    ``Z'P₀Z = Z'Z − W'W`` with ``W = L⁻¹X'Z`` and ``X'X = LL'`` (X has full rank after the design's rank check)."""
    M = cp.zz().toarray()
    if p:
        L = np.linalg.cholesky(cp.xx[:p, :p])
        W = sla.solve_triangular(L, cp.zx[0][:p], lower=True)
        M = M - W.T @ W
    return _scaled_spectrum(M, cp.n, p)


def _scaled_spectrum(M: np.ndarray, n: int, rank: int) -> tuple[np.ndarray, int]:
    """Eigenvalues of ``M = Z'P₀Z``, largest first, scaled to a maximum of 1 (rounding error of zeros set to 0)."""
    mu = np.linalg.eigvalsh((M + M.T) / 2.0)[::-1]
    if mu.size == 0 or mu[0] <= 0:
        raise ModelError("the tested random effect lies in the span of the fixed effects (Z'P₀Z = 0)")
    mu = mu[: max(min(M.shape[1], n - rank), 1)] / mu[0]
    mu[mu < mu.size * np.finfo(float).eps] = 0.0  # rounding error of exact zeros
    return mu, rank


def null_eigenvalues(X: np.ndarray, Z: sp.spmatrix | np.ndarray) -> np.ndarray:
    """Eigenvalues ``μ`` of ``Z'P₀Z``, largest first, scaled to a maximum of 1 (RLRsim's ``mu``).

    Parameters
    ----------
    X : numpy.ndarray
        ``n × p`` fixed-effects matrix.
    Z : scipy.sparse matrix or numpy.ndarray
        ``n × q`` model matrix of the tested random effect.

    Returns
    -------
    numpy.ndarray
        ``K = min(q, n − rank(X))`` eigenvalues; those beyond the rank of ``P₀Z`` are 0.
    """
    return _null_spectrum(X, Z)[0]


def _profile(lam: np.ndarray, mu: np.ndarray, chi1: np.ndarray, rest: np.ndarray, n0: int) -> np.ndarray:
    """The restricted LR profile of each draw (row of ``chi1``) at its own ``λ``."""
    onep = 1.0 + lam[:, None] * mu[None, :]
    D = np.einsum("ij,ij->i", chi1, 1.0 / onep) + rest
    total = chi1.sum(axis=1) + rest  # N + D
    return n0 * np.log(total / D) - np.log(onep).sum(axis=1)


def _golden_max(
    lo: np.ndarray, hi: np.ndarray, f: Callable[[np.ndarray], np.ndarray], iterations: int = _GOLDEN_STEPS
) -> np.ndarray:
    """Largest value of ``f`` found by golden-section search on ``[lo, hi]`` (vectorised over rows)."""
    r = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = lo.copy(), hi.copy()
    c, d = b - r * (b - a), a + r * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(iterations):
        left = fc >= fd  # the maximum lies in [a, d]
        b = np.where(left, d, b)
        a = np.where(left, a, c)
        c_new, d_new = b - r * (b - a), a + r * (b - a)
        x = np.where(left, c_new, d_new)
        fx = f(x)
        fd, fc = np.where(left, fc, fx), np.where(left, fx, fd)
        c, d = np.where(left, c_new, d), np.where(left, c, d_new)
    return np.maximum(fc, fd)


def null_statistics(
    mu: np.ndarray,
    n: int,
    p: int,
    chi1: np.ndarray,
    rest: np.ndarray,
    grid: np.ndarray | None = None,
    *,
    refine: bool = True,
) -> np.ndarray:
    """RLRT values under the null for given chi-square draws (the deterministic half of the simulation).

    Parameters
    ----------
    mu : numpy.ndarray
        The ``K`` eigenvalues of ``Z'P₀Z`` (see :func:`null_eigenvalues`).
    n, p : int
        Observations and rank of X.
    chi1 : numpy.ndarray
        ``m × K`` draws of ``w_s² ~ χ²₁``.
    rest : numpy.ndarray
        ``m`` draws of ``W ~ χ²_{n−p−K}`` (zeros when ``n − p − K = 0``).
    grid : numpy.ndarray, optional
        Increasing λ values starting at 0 (default :func:`lambda_grid`).
    refine : bool
        Refine each maximum found inside the grid by golden-section search between its neighbours
        (the grid alone, RLRsim's procedure, is up to ~4e-3 below the supremum).

    Returns
    -------
    numpy.ndarray
        ``m`` statistics: the restricted LR profile followed along the grid from λ = 0 while it does
        not decrease (RLRsim's rule), its first maximum optionally refined, clipped at 0.
    """
    grid = lambda_grid() if grid is None else np.asarray(grid, dtype=float)
    mu = np.asarray(mu, dtype=float)
    chi1 = np.asarray(chi1, dtype=float).reshape(-1, mu.size)
    rest = np.asarray(rest, dtype=float).reshape(-1)
    lm = np.outer(grid, mu)  # g × K
    fN, fD = (lm / (1.0 + lm)).T, (1.0 / (1.0 + lm)).T
    penalty = np.log1p(lm).sum(axis=1)
    m = chi1.shape[0]
    out = np.empty(m)
    step = max(1, _EVAL_BLOCK // grid.size)
    for a in range(0, m, step):
        b = min(a + step, m)
        N = chi1[a:b] @ fN
        D = chi1[a:b] @ fD + rest[a:b, None]
        LR = (n - p) * np.log1p(N / D) - penalty
        falls = np.diff(LR, axis=1) < 0
        first = np.where(falls.any(axis=1), falls.argmax(axis=1), grid.size - 1)
        best = LR[np.arange(b - a), first]
        inner = np.flatnonzero((first > 0) & (first < grid.size - 1))
        if refine and inner.size:
            i = first[inner]
            profile = partial(_profile, mu=mu, chi1=chi1[inner + a], rest=rest[inner + a], n0=n - p)
            best[inner] = np.maximum(best[inner], _golden_max(grid[i - 1], grid[i + 1], profile))
        out[a:b] = best
    return np.maximum(out, 0.0)


def simulate_null(
    mu: np.ndarray,
    n: int,
    p: int,
    nsim: int,
    rng: np.random.Generator,
    grid: np.ndarray | None = None,
    *,
    refine: bool = True,
) -> np.ndarray:
    """``nsim`` draws of the RLRT under the null, for eigenvalues ``mu``, ``n`` rows and ``p`` fixed effects.

    The random numbers are drawn in blocks whose size depends only on ``K``, so one seed gives the same
    draws whatever the grid (see :func:`null_statistics` for ``grid`` and ``refine``).
    """
    mu = np.asarray(mu, dtype=float)
    k = mu.size
    df_rest = max(n - p - k, 0)
    out = np.empty(nsim)
    block = max(1, _DRAW_BLOCK // max(k, 1))
    for a in range(0, nsim, block):
        m = min(block, nsim - a)
        chi1 = rng.chisquare(1, size=(m, k))
        rest = rng.chisquare(df_rest, size=m) if df_rest > 0 else np.zeros(m)
        out[a : a + m] = null_statistics(mu, n, p, chi1, rest, grid, refine=refine)
    return out


def _term_key(term: "RandomEffectsTerm") -> tuple[str, tuple[str, ...]]:
    return term.group, tuple(term.cnames)


def _term_label(term: "RandomEffectsTerm") -> str:
    return f"({' + '.join(term.cnames)} | {term.group})"


def _check_fit(fit: Any, name: str) -> None:
    from ..protocols import MixedFit

    if not isinstance(fit, MixedFit):
        raise ModelError(
            f"{name} must be a fitted linear mixed model (LinearMixedModelResults), got {type(fit).__name__}"
        )
    if not fit.reml:
        raise ModelError(f"the exact RLRT needs REML fits; {name} was fitted by ML (refit with REML=True)")
    if fit.design.weights is not None or fit.design.offset is not None:
        raise ModelError(f"the exact RLRT does not take prior weights or offsets yet ({name} has them); use mm.bootstrap_lrt")


def _single_scalar_term(fit: "LinearMixedModelResults", what: str) -> "RandomEffectsTerm":
    terms = fit.terms
    if len(terms) != 1:
        raise ModelError(f"{what} must have exactly one random-effects term, it has {len(terms)}")
    if terms[0].p != 1:
        raise ModelError(
            f"the tested term {_term_label(terms[0])} has {terms[0].p} correlated effects; "
            "the exact RLRT tests one variance — use an uncorrelated term such as (0 + x | g)"
        )
    return terms[0]


def _check_nested(
    alt: "LinearMixedModelResults",
    null: "LinearMixedModelResults",
    single: "LinearMixedModelResults",
    term: "RandomEffectsTerm",
) -> None:
    """The three fits share rows, response and fixed effects; alt's terms are null's plus the tested one."""
    fits = {"model_alt": alt, "model_null": null, "model_single": single}
    X0, y0 = alt.design.X, alt.design.y
    for name, f in fits.items():
        X, y = f.design.X, f.design.y
        if f.nobs != alt.nobs or y.shape != y0.shape or not np.array_equal(y, y0):
            raise ModelError(f"{name} is not fitted to the same observations and response as model_alt")
        if X.shape != X0.shape or not np.allclose(X, X0, rtol=1e-12, atol=0.0):
            raise ModelError(
                f"{name} has other fixed effects than model_alt; REML-based inference needs identical fixed effects"
            )
    extra = alt.npar - null.npar
    if extra != 1:
        raise ModelError(
            f"model_alt has {extra} more parameters than model_null; the exact RLRT tests one variance "
            "(no covariances set to 0 under the null)"
        )
    keys_alt = [_term_key(t) for t in alt.terms]
    keys_null = [_term_key(t) for t in null.terms]
    tested = _term_key(term)
    if tested not in keys_alt:
        raise ModelError(f"the tested term {_term_label(term)} of model_single is not a term of model_alt")
    if tested in keys_null:
        raise ModelError(f"the tested term {_term_label(term)} of model_single is also a term of model_null")
    keys_alt.remove(tested)
    if sorted(keys_alt) != sorted(keys_null):
        raise ModelError("model_null must be model_alt without the tested term (its other random-effects terms differ)")


@engine_threads
def exact_rlrt(
    model_alt: "LinearMixedModelResults",
    model_null: "LinearMixedModelResults | None" = None,
    model_single: "LinearMixedModelResults | None" = None,
    *,
    nsim: int = 10000,
    seed: int | None = None,
    log_grid: int = GRID_LENGTH,
) -> RLRTResult:
    """Exact RLRT that one variance component is zero (RLRsim's ``exactRLRT(m)`` / ``exactRLRT(m, mA, m0)``).

    Parameters
    ----------
    model_alt : LinearMixedModelResults
        REML fit under the alternative. Alone, it must have one random-effects term with one
        variance (such as ``(1 | g)`` or ``(0 + x | g)``), tested against the linear model without it.
    model_null : LinearMixedModelResults, optional
        With several terms: the REML fit without the tested term (same data and fixed effects).
    model_single : LinearMixedModelResults, optional
        With several terms: the REML fit whose only random-effects term is the tested one; its X and Z
        define the null distribution (RLRsim's ``m``).
    nsim : int
        Values simulated from the null distribution.
    seed : int, optional
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same p-value.
    log_grid : int
        Points of the λ grid (0, then ``log_grid − 1`` log-spaced values; RLRsim's ``gridlength``).

    Returns
    -------
    RLRTResult

    Raises
    ------
    ModelError
        For ML fits, a tested term with several (correlated) effects, or models that are not nested
        as described above.

    Notes
    -----
    The statistic is ``2 (ℓ_R(alt) − ℓ_R(null))`` clipped at 0; with one term ``ℓ_R(null)`` is the
    restricted log-likelihood of the linear model (``θ = 0``), R's ``logLik(lm(...), REML = TRUE)``.
    A statistic within rounding error of 0 (below ``1e-10 ×`` the REML criterion) counts as 0 and
    gets ``p = 1`` without simulation; RLRsim simulates when rounding leaves it at, say, 6e-14.
    """
    if not isinstance(nsim, Integral) or isinstance(nsim, bool) or nsim < 1:
        raise ModelError(f"nsim must be a positive integer, got {nsim!r}")
    if not isinstance(log_grid, Integral) or isinstance(log_grid, bool) or log_grid < 2:
        raise ModelError(f"log_grid must be an integer of at least 2, got {log_grid!r}")
    nsim, log_grid = int(nsim), int(log_grid)
    for name, f in (("model_alt", model_alt), ("model_null", model_null), ("model_single", model_single)):
        if f is not None:
            _check_fit(f, name)
    if (model_null is None) != (model_single is None):
        raise ModelError("give both model_null and model_single (the model with only the tested term), or neither")
    if model_null is None:
        term = _single_scalar_term(model_alt, "model_alt (without model_null and model_single)")
        single = model_alt
        null_loglik = -0.5 * model_alt.model.objective(np.zeros(model_alt.theta.size))
    else:
        term = _single_scalar_term(model_single, "model_single")
        _check_nested(model_alt, model_null, model_single, term)
        single = model_single
        null_loglik = model_null.loglik
    raw = 2.0 * (model_alt.loglik - null_loglik)
    if not math.isfinite(raw):
        raise ModelError("the restricted log-likelihoods are not finite")
    scale = max(1.0, abs(2.0 * null_loglik))
    if raw < -1e-6 * scale:
        warnings.warn(
            f"the alternative's restricted log-likelihood is below the null's (2Δ = {raw:.3g}); "
            "the alternative fit may not have converged",
            ConvergenceWarning,
            stacklevel=2,
        )
    if raw <= ZERO_TOLERANCE * scale:
        return RLRTResult(statistic=0.0, p_value=1.0, nsim=0, seed=seed)
    X = single.design.X
    if X.shape[0] == single.nobs:
        mu, rank = _null_spectrum(X, z_matrix(term))
    else:  # a fit that keeps no rows (on Dask data): from its cross-products
        mu, rank = _null_spectrum_crossprods(single.model.crossprods, single.nfixed)
    grid = lambda_grid(LOG_GRID_LO, LOG_GRID_HI, log_grid)
    sample = simulate_null(mu, single.nobs, rank, nsim, np.random.default_rng(seed), grid)
    return RLRTResult(statistic=float(raw), p_value=float(np.mean(raw < sample)), nsim=nsim, seed=seed, sample=sample)
