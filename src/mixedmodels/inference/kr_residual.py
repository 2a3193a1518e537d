"""Kenward–Roger for marginal models with a residual covariance structure (MMRM), as SAS PROC MIXED's
``DDFM=KR`` and ``DDFM=KR(FIRSTORDER)``.

With ``Σ_i`` a subject's covariance and ``γ`` the covariance parameters (Kenward & Roger 1997)::

    Φ     = (Σ_i X_i'Σ_i⁻¹X_i)⁻¹
    P_r   = −Σ_i X_i'Σ_i⁻¹ (∂Σ_i/∂γ_r) Σ_i⁻¹X_i
    Q_rs  =  Σ_i X_i'Σ_i⁻¹ (∂Σ_i/∂γ_r) Σ_i⁻¹ (∂Σ_i/∂γ_s) Σ_i⁻¹X_i
    R_rs  =  Σ_i X_i'Σ_i⁻¹ (∂²Σ_i/∂γ_r∂γ_s) Σ_i⁻¹X_i
    Φ_A   = Φ + 2Φ [Σ_rs W_rs (Q_rs − P_r Φ P_s − ¼ R_rs)] Φ

with ``W`` the asymptotic covariance of γ̂ (twice the inverse Hessian of the REML criterion, as for
Satterthwaite's df, carried to γ by the Jacobian of our parameters). Without ``R`` (the first-order
method, mmrm's ``"Kenward-Roger-Linear"``) the result does not depend on the parameterisation; with
it, it does, and ``γ`` is SAS's parameterisation of each structure (:mod:`..covariance.kr_parameters`),
so ``UN``/``TOEP``/``CS`` have no ``R`` and ``AR(1)``, ``CSH``, ``TOEPH``, ``ANTE(1)`` do, as SAS computes
them. (mmrm's default ``"Kenward-Roger"`` uses its own parameterisation and differs from SAS by up to
1.5 % in standard errors on its own test data; see ``tests/reference/sas_kr.R``.) The df and F scaling
are pbkrtest's from ``Φ``, ``P`` and ``W`` and do not involve ``R``.

Subjects sharing a visit pattern share ``Σ_i``, so every sum is over patterns, read off the
pattern moments ``S[a, b] = Σ_i X_i[a]'X_i[b]`` of the whitening (no rows are touched). Derivatives
of ``Σ`` in γ and of γ in our parameters are central differences of ``T × T`` matrices.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..covariance import kr_parameters as sas
from ..exceptions import ModelError
from .ddf import KenwardRoger

if TYPE_CHECKING:
    from ..results import LinearMixedModelResults

#: Relative step of the central differences.
STEP = 1e-5


def covariance_in_gamma(gamma_of, varpar: np.ndarray, vcov_varpar: np.ndarray) -> np.ndarray:
    """``W`` in γ: Satterthwaite's covariance of our parameters carried by the Jacobian of ``gamma_of`` (central
    differences)."""
    J = np.empty((gamma_of(varpar).size, varpar.size))
    for k in range(varpar.size):
        e = np.zeros(varpar.size)
        e[k] = STEP * max(abs(varpar[k]), 1.0)
        J[:, k] = (gamma_of(varpar + e) - gamma_of(varpar - e)) / (2 * e[k])
    return J @ vcov_varpar @ J.T


def first_derivatives(blocks_of, x: np.ndarray) -> list[list[np.ndarray]]:
    """``∂B/∂x_r`` for each ``r`` of a function returning a list of matrices ``B`` (central differences)."""
    out = []
    for r in range(x.size):
        e = np.zeros(x.size)
        e[r] = STEP * max(abs(x[r]), 1.0)
        out.append([(a - b) / (2 * e[r]) for a, b in zip(blocks_of(x + e), blocks_of(x - e))])
    return out


def second_derivatives(blocks_of, x: np.ndarray, base: list[np.ndarray], tol: float) -> dict[tuple[int, int], list[np.ndarray]]:
    """``∂²B/∂x_r∂x_s`` (r ≤ s) by central differences, keeping only those larger than ``tol`` times the largest
    entry of ``base = B(x)`` (the others are zero: a structure linear in those parameters)."""
    h = 1e-4 * np.maximum(np.abs(x), 1.0)
    scale = max(float(np.abs(b).max()) for b in base)
    eye = np.eye(x.size)
    out = {}
    for r in range(x.size):
        for s in range(r, x.size):
            er, es = eye[r] * h[r], eye[s] * h[s]
            if r == s:
                val = [(a - 2 * b0 + c) / h[r] ** 2 for a, b0, c in zip(blocks_of(x + er), base, blocks_of(x - er))]
            else:
                val = [(a - b - c + d) / (4 * h[r] * h[s]) for a, b, c, d in
                       zip(blocks_of(x + er + es), blocks_of(x + er - es), blocks_of(x - er + es), blocks_of(x - er - es))]
            if max(float(np.abs(v).max()) for v in val) > tol * scale:
                out[r, s] = val
    return out


def adjusted_covariance(phi: np.ndarray, P: list[np.ndarray], Q: dict, W: np.ndarray, R: dict) -> np.ndarray:
    """Kenward & Roger's ``Φ_A = Φ + 2Φ [Σ_rs W_rs (Q_rs − P_r Φ P_s − ¼ R_rs)] Φ`` (``Q``, ``R`` keyed ``(r, s)``, r ≤ s;
    ``R`` holds only the non-zero second-derivative terms)."""
    m = len(P)
    U = np.zeros_like(phi)
    for r in range(m):
        for s in range(m):
            key = (min(r, s), max(r, s))
            q = Q[key] if r <= s else Q[key].T
            U += W[r, s] * (q - P[r] @ phi @ P[s] - 0.25 * R.get(key, 0.0))
    return phi + 2 * phi @ U @ phi


class KenwardRogerResidual(KenwardRoger):
    """Kenward–Roger df and adjusted covariance of a marginal model with a discrete-time residual structure.

    Parameters
    ----------
    result : LinearMixedModelResults
        A REML fit of a marginal model (no random effects, no variance function) with a factor time.
    first_order : bool
        Leave out the second-derivative term (SAS's ``KR(FIRSTORDER)``, mmrm's ``"Kenward-Roger-Linear"``).
    """

    method = "Kenward-Roger"

    def __init__(self, result: "LinearMixedModelResults", first_order: bool = False) -> None:
        if not result.reml:
            raise ModelError("Kenward-Roger's method is only available for REML fits; refit with REML or use Satterthwaite")
        model = result.model
        if model.terms or model.variance is not None or model.whitening is None or model.whitening.moments is None:
            raise ModelError(
                "Kenward-Roger df are available for residual structures of marginal models (no random effects, no "
                "variance function) with a factor time; use ddf='satterthwaite' here"
            )
        if not sas.supported(model.whitening.structure.kind):
            raise ModelError(f"Kenward-Roger df are not available for the {model.whitening.structure.kind} structure")
        self.result = result
        self.first_order = first_order
        self.method = "Kenward-Roger (first order)" if first_order else "Kenward-Roger"
        self.warnings: list[str] = []
        self.phi = result.vcov.to_numpy()
        self._compute()

    def _covs(self, varpar: np.ndarray) -> list[np.ndarray]:
        """Absolute covariance over all levels per group at our parameters ``(ρ, σ)``."""
        structure = self.result.model.whitening.structure
        return [varpar[-1] ** 2 * structure.cov_full(varpar[:-1], g) for g in range(structure.n_groups)]

    def _compute(self) -> None:
        res = self.result
        w = res.model.whitening
        structure = w.structure
        kind, T, G = structure.kind, structure.n_levels, structure.n_groups
        varpar = np.r_[res.rho, res.sigma]
        gamma = sas.to_gamma(kind, self._covs(varpar))
        m = gamma.size
        W = covariance_in_gamma(lambda v: sas.to_gamma(kind, self._covs(v)), varpar,
                                res.ddf_calculator("satterthwaite").vcov_varpar)

        def covs(g: np.ndarray) -> list[np.ndarray]:  # one T × T matrix per group
            return sas.from_gamma(kind, g, T, G)

        d1 = first_derivatives(covs, gamma)
        d2: dict[tuple[int, int], list[np.ndarray]] = {}
        if not self.first_order and kind not in sas.LINEAR:
            d2 = second_derivatives(covs, gamma, covs(gamma), 1e-8)
        full = covs(gamma)
        p = res.nfixed
        P = [np.zeros((p, p)) for _ in range(m)]
        Q = {(r, s): np.zeros((p, p)) for r in range(m) for s in range(r, m)}
        R = {key: np.zeros((p, p)) for key in d2}
        for unit, S in zip(w.units, w.moments):
            ix = np.ix_(unit.times, unit.times)
            Sinv = np.linalg.inv(full[unit.group][ix])
            dS = [d[unit.group][ix] for d in d1]
            A = [Sinv @ d @ Sinv for d in dS]  # Σ⁻¹ ∂Σ_r Σ⁻¹
            Sx = S[:, :, :p, :p]
            for r in range(m):
                if not np.any(dS[r]):
                    continue  # a parameter of another group
                P[r] -= np.einsum("ab,abij->ij", A[r], Sx)
                for s in range(r, m):
                    if np.any(dS[s]):
                        Q[r, s] += np.einsum("ab,abij->ij", A[r] @ dS[s] @ Sinv, Sx)
            for key, d in d2.items():
                R[key] += np.einsum("ab,abij->ij", Sinv @ d[unit.group][ix] @ Sinv, Sx)
        self.P = P
        self.W = W
        self.vcov_adjusted = adjusted_covariance(self.phi, P, Q, W, R)
