"""The FaST-LMM path: one known-covariance term, one record per individual (Lippert et al. 2011).

With ``Z`` a permutation (one record per level, ``z = 1``), no prior weights and iid residuals, the
marginal covariance is ``σ²(I + θ²K)``; with ``K = U diag(s) U'`` (decomposed once when the term is
built, :func:`.kinship.kinship_root`) the rotated data ``Ã = U'[X y]`` have independent rows of
variance ``σ²(1 + θ²s_i)``. The weighted cross-products ``Ã' diag(1/(1 + θ²s)) Ã`` cost ``O(n p²)``
per evaluation and give lme4's criterion exactly (Bates et al. 2015, eqs. 34 and 41, with
``|L_θ|² = Π(1 + θ²s_i)``, ``R_X'R_X = X'V₀⁻¹X`` and ``r² = y'P y``). A low-rank ``K = FF'`` with
``r`` nonzero eigenvalues (``U`` is ``n × r``) adds the rest of the space with weight 1:
``A'A − Ã'Ã`` (FaST-LMM's ``(I − UU')`` term).

The one parameter is found by Brent's method: a grid of θ from 0 to 10⁴ (λ = θ² = σ²_g/σ² up to 10⁸)
locates the lowest local minimum (:func:`_best_local_minimum`), then ``fminbound`` refines it (in log θ,
or in θ next to 0) and θ = 0 is kept when it is no worse (a singular fit). The fit's results are then
read off the general engine at θ̂.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.linalg as sla
from scipy.optimize import minimize_scalar

from ..engine.objective import criterion_value
from ..optimize import SINGULAR_TOL, FitRecord

if TYPE_CHECKING:
    from ..model import LinearMixedModel

#: Grid of θ locating the minimum (0, then log-spaced); λ = θ² spans 1e-8 … 1e8.
THETA_GRID = np.r_[0.0, np.logspace(-4.0, 4.0, 33)]
#: Brent's absolute tolerance on log θ (or on θ next to the boundary).
XATOL = 1e-10
#: Name in the fit record.
OPTIMIZER = "FaST-LMM spectral path (Brent on log theta)"


@dataclass(frozen=True, eq=False)
class Spectrum:
    """Data rotated by the eigenvectors of ``K``: enough for every criterion of ``y ~ N(Xβ, σ²(I + λK))``.

    Attributes
    ----------
    values : numpy.ndarray
        The ``r`` eigenvalues of ``K`` kept (0 where singular).
    rotated : numpy.ndarray
        ``U'[X y]``, ``r × (p + 1)``.
    rest : numpy.ndarray
        ``[X y]'(I − UU')[X y]``, the part of the space with eigenvalue 0 (zeros when ``r = n``).
    n : int
        Observations.
    """

    values: np.ndarray
    rotated: np.ndarray
    rest: np.ndarray
    n: int

    @classmethod
    def from_basis(cls, basis: np.ndarray, values: np.ndarray, A: np.ndarray) -> "Spectrum":
        """Rotate ``A = [X y]`` (rows in the order of ``basis``'s rows)."""
        rotated = basis.T @ A
        rest = A.T @ A - rotated.T @ rotated if basis.shape[1] < A.shape[0] else np.zeros((A.shape[1],) * 2)
        return cls(values=np.asarray(values, dtype=float), rotated=rotated, rest=rest, n=A.shape[0])

    def gram(self, lam: float) -> np.ndarray:
        """``[X y]' (I + λK)⁻¹ [X y]``."""
        h = 1.0 / (1.0 + lam * self.values)
        return self.rotated.T @ (h[:, None] * self.rotated) + self.rest

    def logdet(self, lam: float) -> float:
        """``log|I + λK|``."""
        return float(np.sum(np.log1p(lam * self.values)))

    def criterion(self, theta: float, reml: bool) -> float:
        """lme4's REML criterion or ML deviance at ``θ`` (λ = θ²), σ profiled out."""
        lam = float(theta) ** 2
        G = self.gram(lam)
        p = G.shape[0] - 1
        logdets = self.logdet(lam)
        if p:
            R = sla.cholesky(G[:p, :p], lower=True, check_finite=False)
            w = sla.solve_triangular(R, G[:p, p], lower=True, check_finite=False)
            r2 = float(G[p, p] - w @ w)
            if reml:
                logdets += 2.0 * float(np.sum(np.log(np.diag(R))))
        else:
            r2 = float(G[0, 0])
        return criterion_value(r2, logdets, self.n - p if reml else self.n)


class SpectralPath:
    """Fits θ of a one-term known-covariance model through its :class:`Spectrum` (module docstring)."""

    def __init__(self, model: "LinearMixedModel") -> None:
        term = model.terms[0]
        A = np.column_stack([model.engine_X, model.engine_y(model.design.y)])
        by_level = np.empty_like(A)
        by_level[term.refs] = A
        root = term.root
        self.spectrum = Spectrum.from_basis(root.basis, root.values, by_level)
        self.reml = model.reml

    def objective(self, theta: float) -> float:
        """The model's criterion at θ."""
        return self.spectrum.criterion(theta, self.reml)

    def fit(self, x0: np.ndarray) -> tuple[np.ndarray, float, FitRecord]:
        """θ̂, the criterion there and the fit record."""
        t0 = time.perf_counter()
        evals = 0

        def f(theta: float) -> float:
            nonlocal evals
            evals += 1
            return self.objective(theta)

        values = np.array([f(t) for t in THETA_GRID])
        k = _best_local_minimum(values)
        best_theta, best = float(THETA_GRID[k]), float(values[k])
        if k <= 1:  # next to the boundary: search θ itself on [0, θ_{k+1}]
            res = minimize_scalar(f, bounds=(0.0, float(THETA_GRID[k + 1])), method="bounded", options={"xatol": XATOL})
            cand = float(res.x)
        else:
            hi = math.log(THETA_GRID[k + 1]) if k + 1 < THETA_GRID.size else math.log(THETA_GRID[k]) + 6.0
            res = minimize_scalar(
                lambda t: f(math.exp(t)), bounds=(math.log(THETA_GRID[k - 1]), hi), method="bounded", options={"xatol": XATOL}
            )
            cand = math.exp(float(res.x))
        value = f(cand)
        if value < best:
            best_theta, best = cand, value
        warnings: tuple[str, ...] = ("boundary (singular) fit: see help('isSingular')",) if best_theta < SINGULAR_TOL else ()
        if k == THETA_GRID.size - 1:
            warnings += ((f"the criterion decreases up to theta = {best_theta:.3g}: the residual variance is "
                          "(nearly) 0 relative to the known-covariance term"),)
        record = FitRecord(
            optimizer=OPTIMIZER, evaluations=evals, seconds=time.perf_counter() - t0, return_code=1,
            message="converged", theta_start=tuple(float(v) for v in x0), warnings=warnings,
        )
        return np.array([best_theta]), best, record


def _best_local_minimum(values: np.ndarray) -> int:
    """The grid point of the lowest local minimum, the end at θ = 0 included; the top end only when the criterion
    falls all the way there. An ML criterion can decrease without bound as θ → ∞ when an eigenvector of K with
    eigenvalue 0 lies in the span of X (the intercept and a centred GRM: σ → 0 fits that direction exactly);
    the interior minimum is then the one the general engine, started at θ = 1, finds."""
    inner = [i for i in range(values.size - 1) if (i == 0 or values[i] <= values[i - 1]) and values[i] <= values[i + 1]]
    if not inner:
        return values.size - 1
    return min(inner, key=lambda i: values[i])


def spectral_path(model: "LinearMixedModel") -> SpectralPath | None:
    """The fast path for ``model`` when it applies: one known-covariance term with ``z = 1`` and one record per
    level, no prior weights, iid residuals and BOBYQA asked for (Nelder–Mead keeps the general engine)."""
    terms = model.terms
    if len(terms) != 1 or not terms[0].rotated or not model.iid_residuals or model.design.weights is not None:
        return None
    if model.control.optimizer != "bobyqa" or model.design.degenerate:
        return None
    t = terms[0]
    if t.p != 1 or not np.all(t.z == 1.0) or np.any(np.bincount(t.refs, minlength=t.nlevels) != 1):
        return None
    return SpectralPath(model)
