"""Per-SNP tests of ``y = Wα + xβ + g + ε``, ``g ~ N(0, σ²_g K)``, ``ε ~ N(0, σ²_e I)``, vectorised over SNPs.

With ``K = U diag(s) U'`` and ``λ = σ²_g/σ²_e`` (GEMMA's λ), the rotated data ``U'[W x y]`` have independent
rows of variance ``σ²_e (1 + λ s_i)``; write ``h = 1/(1 + λ s)`` and ``M_k = X' diag(h^k) X``,
``b_k = X' diag(h^k) y``, ``y_k = y' diag(h^k) y`` for ``X = [W x]`` (``p`` columns; Zhou & Stephens 2012,
supplement, in Gram form instead of GEMMA's recursions). With ``β̂ = M_1⁻¹b_1``, ``P = H⁻¹ − H⁻¹X M_1⁻¹X'H⁻¹``:

    a_1 = y'Py = y_1 − b_1'β̂,   a_2 = y'P²y = y_2 − 2β̂'b_2 + β̂'M_2β̂,
    a_3 = y'P³y = (y_3 − 2β̂'b_3 + β̂'M_3β̂) − v'M_1⁻¹v,  v = b_2 − M_2β̂,
    tr P = Σh − tr(M_1⁻¹M_2),   tr P² = Σh² − 2 tr(M_1⁻¹M_3) + tr((M_1⁻¹M_2)²).

GEMMA's log-likelihoods (``df = n − p``; ``log|X'X|`` makes the REML one invariant to the scale of X)::

    ℓ(λ)   = n/2 (log n − log 2π − 1) − ½ Σ log(1 + λs) − n/2 log a_1
    ℓ_R(λ) = df/2 (log df − log 2π − 1) − ½ Σ log(1 + λs) − ½ (log|M_1| − log|X'X|) − df/2 log a_1

and their derivatives in ``t = log λ`` (using ``∂P/∂λ = −(P − P²)/λ``)::

    g_R = λ ∂ℓ_R/∂λ = ½ (tr P − df a_2/a_1),     g_L = ½ (Σh − n a_2/a_1)
    ∂g_R/∂t = ½ (tr P² − tr P − df D),   ∂g_L/∂t = ½ (Σh² − Σh − n D),   D = (a_2(a_1 − a_2) − 2a_1(a_2 − a_3))/a_1²

λ is searched as GEMMA's CalcLambda: its sign changes on 11 points from 10⁻⁵ to 10⁵ (10 regions), a root of
``g`` in each region where it falls through 0 (a safeguarded Newton iteration in ``t``), and the
best of those maxima and the two ends (Newton's iteration starts at the null model's λ where it can and stops
after a step below 1e-5, leaving an error of about 1e-10). Tests (GEMMA's ``-lmm 1``…``-lmm 4``): Wald ``F = β̂²/se²``,
``se² = a_1/df (M_1⁻¹)_xx`` on (1, n − c − 1) df at the REML λ; likelihood ratio ``2(ℓ(λ̂_ML) − ℓ₀)`` on χ²₁;
score ``F = n P_xy²/(P_yy P_xx)`` on (1, n − c − 1) df at the null model's ML λ (projections on ``W``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import chdtrc, fdtrc

#: GEMMA's search range and regions for λ, and its zero threshold for eigenvalues.
L_MIN, L_MAX, N_REGION = 1e-5, 1e5, 10
EIGEN_ZERO = 1e-10
#: Newton iterations; a Newton step below ``NEWTON_STEP`` in log λ ends the iteration (the error after it is of
#: the order of its square), a bracket narrower than ``BRACKET_TOL`` too.
MAX_NEWTON, NEWTON_STEP, BRACKET_TOL = 60, 1e-5, 1e-10
_LOG2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class Moments:
    """Weighted cross-products of ``[W x y]`` for ``m`` problems: ``A[k − 1]`` is ``(m, p + 1, p + 1)`` with
    weights ``h^k``; ``sums[k − 1] = Σh^k``; ``logdet = Σ log(1 + λs)``."""

    A: list[np.ndarray]
    sums: list[np.ndarray]
    logdet: np.ndarray


@dataclass(frozen=True)
class Criteria:
    """What each problem's likelihoods and derivatives need (module docstring), arrays of length ``m``."""

    beta: np.ndarray
    minv: np.ndarray
    a1: np.ndarray
    a2: np.ndarray | None
    a3: np.ndarray | None
    trp: np.ndarray | None
    trpp: np.ndarray | None
    logdet_m: np.ndarray


def criteria(mo: Moments, p: int) -> Criteria:
    """``β̂, M_1⁻¹, a_1, a_2, a_3, tr P, tr P², log|M_1|`` from :class:`Moments` with ``p`` fixed columns."""
    A1 = mo.A[0]
    M1, b1, y1 = A1[:, :p, :p], A1[:, :p, p], A1[:, p, p]
    minv = np.linalg.inv(M1)
    beta = np.einsum("mij,mj->mi", minv, b1)
    a1 = y1 - np.einsum("mi,mi->m", b1, beta)
    logdet_m = np.linalg.slogdet(M1)[1]
    if len(mo.A) == 1:  # first moments only: β̂, a_1 and the likelihoods
        return Criteria(beta=beta, minv=minv, a1=a1, a2=None, a3=None, trp=None, trpp=None, logdet_m=logdet_m)
    A2 = mo.A[1]
    M2, b2, y2 = A2[:, :p, :p], A2[:, :p, p], A2[:, p, p]
    M2b = np.einsum("mij,mj->mi", M2, beta)
    a2 = y2 - 2.0 * np.einsum("mi,mi->m", beta, b2) + np.einsum("mi,mi->m", beta, M2b)
    T2 = minv @ M2
    trp = mo.sums[0] - np.trace(T2, axis1=1, axis2=2)
    a3 = trpp = None
    if len(mo.A) > 2:
        A3 = mo.A[2]
        M3, b3, y3 = A3[:, :p, :p], A3[:, :p, p], A3[:, p, p]
        v = b2 - M2b
        a3 = (y3 - 2.0 * np.einsum("mi,mi->m", beta, b3) + np.einsum("mi,mij,mj->m", beta, M3, beta)
              - np.einsum("mi,mij,mj->m", v, minv, v))
        trpp = mo.sums[1] - 2.0 * np.trace(minv @ M3, axis1=1, axis2=2) + np.einsum("mij,mji->m", T2, T2)
    return Criteria(beta=beta, minv=minv, a1=a1, a2=a2, a3=a3, trp=trp, trpp=trpp, logdet_m=logdet_m)


def loglik(c: Criteria, mo: Moments, n: int, p: int, reml: bool, logdet_xtx: np.ndarray | float) -> np.ndarray:
    """GEMMA's ML (``reml=False``) or REML log-likelihood (module docstring)."""
    a1 = np.maximum(c.a1, 1e-300)
    if reml:
        df = n - p
        return (0.5 * df * (math.log(df) - _LOG2PI - 1.0) - 0.5 * mo.logdet - 0.5 * (c.logdet_m - logdet_xtx)
                - 0.5 * df * np.log(a1))
    return 0.5 * n * (math.log(n) - _LOG2PI - 1.0) - 0.5 * mo.logdet - 0.5 * n * np.log(a1)


def slope(c: Criteria, mo: Moments, n: int, p: int, reml: bool) -> np.ndarray:
    """``g = λ ∂ℓ/∂λ`` (module docstring)."""
    if reml:
        return 0.5 * (c.trp - (n - p) * c.a2 / c.a1)
    return 0.5 * (mo.sums[0] - n * c.a2 / c.a1)


def curvature(c: Criteria, mo: Moments, n: int, p: int, reml: bool) -> np.ndarray:
    """``∂g/∂(log λ)`` (module docstring); needs the third moments."""
    D = (c.a2 * (c.a1 - c.a2) - 2.0 * c.a1 * (c.a2 - c.a3)) / c.a1**2
    if reml:
        return 0.5 * (c.trpp - c.trp - (n - p) * D)
    return 0.5 * (mo.sums[1] - mo.sums[0] - n * D)


class RotatedData:
    """``U'W``, ``U'y`` and the eigenvalues of ``K``: the null model's data in the eigenbasis, and the moments of
    ``[W x y]`` for blocks of rotated SNPs ``U'x`` (module docstring).

    Parameters
    ----------
    values : numpy.ndarray
        Eigenvalues of ``K`` (those below 1e-10 are set to 0, as GEMMA does).
    Wt, yt : numpy.ndarray
        ``U'W`` (``n × c``) and ``U'y``.
    """

    def __init__(self, values: np.ndarray, Wt: np.ndarray, yt: np.ndarray) -> None:
        self.s = np.where(values < EIGEN_ZERO, 0.0, values)
        self.Wt = np.ascontiguousarray(Wt)
        self.yt = np.asarray(yt, dtype=float)
        self.n, self.c = Wt.shape
        iu = np.triu_indices(self.c + 1)
        WY = np.column_stack([self.Wt, self.yt])
        self._pairs = iu
        self._Q = np.asfortranarray(WY[:, iu[0]] * WY[:, iu[1]])  # n × (c+1)(c+2)/2 products of [W y] columns
        self.logdet_wtw = float(np.linalg.slogdet(self.Wt.T @ self.Wt)[1])

    def _common(self, weights: np.ndarray) -> np.ndarray:
        """``(m, c + 1, c + 1)`` Gram of ``[W y]`` for weight columns ``weights`` (``n × m``)."""
        vals = self._Q.T @ weights  # (pairs × m)
        out = np.empty((weights.shape[1], self.c + 1, self.c + 1))
        i, j = self._pairs
        out[:, i, j] = vals.T
        out[:, j, i] = vals.T
        return out

    def null_moments(self, lam: np.ndarray, kmax: int = 2) -> Moments:
        """Moments of ``[W y]`` (``p = c``) for each λ in ``lam``."""
        lam = np.atleast_1d(np.asarray(lam, dtype=float))
        H = 1.0 / (1.0 + np.outer(self.s, lam))
        A, sums, Hk = [], [], np.ones_like(H)
        for _ in range(kmax):
            Hk = Hk * H
            A.append(self._common(Hk))
            sums.append(Hk.sum(axis=0))
        return Moments(A=A, sums=sums, logdet=np.log1p(np.outer(self.s, lam)).sum(axis=0))

    def snp_moments_shared(self, lam: float, Xt: np.ndarray, X2: np.ndarray, kmax: int = 2) -> Moments:
        """Moments of ``[W x_j y]`` (``p = c + 1``; ``x`` second to last) for every column ``x_j`` of ``Xt`` at one λ.
        ``X2`` is ``Xt²`` elementwise."""
        m = Xt.shape[1]
        h = 1.0 / (1.0 + lam * self.s)
        A, sums, hk = [], [], np.ones(self.n)
        c = self.c
        for _ in range(kmax):
            hk = hk * h
            common = self._common(hk[:, None])[0]
            B = np.column_stack([self.Wt * hk[:, None], self.yt * hk])  # n × (c + 1)
            xwy = Xt.T @ B  # m × (c + 1)
            xx = X2.T @ hk
            out = np.empty((m, c + 2, c + 2))
            out[:, :c, :c] = common[:c, :c]
            out[:, :c, c + 1] = out[:, c + 1, :c] = common[:c, c]
            out[:, c + 1, c + 1] = common[c, c]
            out[:, c, :c] = out[:, :c, c] = xwy[:, :c]
            out[:, c, c + 1] = out[:, c + 1, c] = xwy[:, c]
            out[:, c, c] = xx
            A.append(out)
            sums.append(np.full(m, hk.sum()))
        return Moments(A=A, sums=sums, logdet=np.full(m, np.log1p(lam * self.s).sum()))

    def snp_moments_each(self, lam: np.ndarray, Xt: np.ndarray, kmax: int = 3) -> Moments:
        """Moments of ``[W x_j y]`` with a λ of its own for each column of ``Xt``."""
        H = 1.0 / (1.0 + np.outer(self.s, lam))
        m, c = Xt.shape[1], self.c
        A, sums, Hk = [], [], np.ones_like(H)
        for _ in range(kmax):
            Hk = Hk * H
            common = self._common(Hk)
            HX = Hk * Xt
            xw = HX.T @ self.Wt
            xy = HX.T @ self.yt
            xx = np.einsum("ij,ij->j", HX, Xt)
            out = np.empty((m, c + 2, c + 2))
            out[:, :c, :c] = common[:, :c, :c]
            out[:, :c, c + 1] = out[:, c + 1, :c] = common[:, :c, c]
            out[:, c + 1, c + 1] = common[:, c, c]
            out[:, c, :c] = out[:, :c, c] = xw
            out[:, c, c + 1] = out[:, c + 1, c] = xy
            out[:, c, c] = xx
            A.append(out)
            sums.append(Hk.sum(axis=0))
        return Moments(A=A, sums=sums, logdet=np.log1p(np.outer(self.s, lam)).sum(axis=0))


def lambda_grid() -> np.ndarray:
    """GEMMA's 11 points ``λ_i = 10⁻⁵ · 10^i`` bounding its 10 search regions."""
    return np.geomspace(L_MIN, L_MAX, N_REGION + 1)


def search_lambda(
    grid_slopes: np.ndarray,
    grid_logliks: np.ndarray,
    evaluate,
    start: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """GEMMA's CalcLambda for ``m`` problems at once: λ̂ and ℓ(λ̂).

    Parameters
    ----------
    grid_slopes, grid_logliks : numpy.ndarray
        ``g`` and ``ℓ`` at the 11 grid points (``11 × m``).
    evaluate : callable
        ``evaluate(problems, lam) -> (g, ∂g/∂t, ℓ)`` for problem indices ``problems`` at their own ``lam``.
    start : float, optional
        A λ to start Newton's iteration from in the regions that contain it (the null model's: a SNP moves
        λ little, so two or three steps reach 1e-10); elsewhere it starts by regula falsi.
    """
    grid = lambda_grid()
    t_grid = np.log(grid)
    m = grid_slopes.shape[1]
    g_lo, g_hi = grid_slopes[:-1], grid_slopes[1:]
    down = (g_lo >= 0) & (g_hi <= 0) & ~((g_lo == 0) & (g_hi == 0))  # a maximum inside [λ_i, λ_i+1]
    region, prob = np.nonzero(down)
    lo, hi = t_grid[region].copy(), t_grid[region + 1].copy()
    glo, ghi = g_lo[region, prob], g_hi[region, prob]
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(glo - ghi > 0, lo + glo / (glo - ghi) * (hi - lo), 0.5 * (lo + hi))
    if start is not None:
        ts = math.log(start)
        t = np.where((lo < ts) & (ts < hi), ts, t)
    t = np.clip(t, lo, hi)
    value = np.full(prob.size, -np.inf)
    active = np.arange(prob.size)
    for _ in range(MAX_NEWTON):
        if active.size == 0:
            break
        g, dg, ll = evaluate(prob[active], np.exp(t[active]))
        value[active] = ll
        up = g > 0
        lo[active] = np.where(up, t[active], lo[active])
        hi[active] = np.where(up, hi[active], t[active])
        with np.errstate(invalid="ignore", divide="ignore"):
            step = np.where(dg < 0, t[active] - g / dg, np.nan)
        bad = ~((step > lo[active]) & (step < hi[active]))
        new = np.where(g == 0, t[active], np.where(bad, 0.5 * (lo[active] + hi[active]), step))
        moved = np.abs(new - t[active])
        t[active] = new
        done = (~bad & (moved < NEWTON_STEP)) | (g == 0) | (hi[active] - lo[active] < BRACKET_TOL)
        active = active[~done]
    if active.size:  # out of iterations: the last point's value
        g, dg, ll = evaluate(prob[active], np.exp(t[active]))
        value[active] = ll
    best_lam = np.where(grid_logliks[0] >= grid_logliks[-1], grid[0], grid[-1])
    best = np.maximum(grid_logliks[0], grid_logliks[-1])
    # per problem, the best root (ties: the first region, as GEMMA), then the ends only when strictly better
    lam_root = np.full(m, np.nan)
    val_root = np.full(m, -np.inf)
    order = np.lexsort((region, -value, prob))
    first = order[np.r_[True, prob[order][1:] != prob[order][:-1]]] if order.size else order
    val_root[prob[first]], lam_root[prob[first]] = value[first], np.exp(t[first])
    has = np.isfinite(val_root)
    ends_better = best > val_root
    lam = np.where(has & ~ends_better, lam_root, best_lam)
    val = np.where(has & ~ends_better, val_root, best)
    return lam, val


def f_sf(F: np.ndarray, df: int) -> np.ndarray:
    """``P(F(1, df) > F)``."""
    return fdtrc(1, df, F)


def chi2_sf(x: np.ndarray) -> np.ndarray:
    """``P(χ²₁ > x)``."""
    return chdtrc(1, np.maximum(x, 0.0))
