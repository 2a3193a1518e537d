"""Kenward–Roger for marginal models with a residual covariance structure (MMRM), as mmrm's
``vcov = "Kenward-Roger-Linear"``.

With ``Σ_i = σ² C_i(ρ)`` and the covariance parameters ``γ = (ρ, σ)`` (Kenward & Roger 1997)::

    Φ     = (Σ_i X_i'Σ_i⁻¹X_i)⁻¹
    P_r   = −Σ_i X_i'Σ_i⁻¹ (∂Σ_i/∂γ_r) Σ_i⁻¹X_i
    Q_rs  =  Σ_i X_i'Σ_i⁻¹ (∂Σ_i/∂γ_r) Σ_i⁻¹ (∂Σ_i/∂γ_s) Σ_i⁻¹X_i
    Φ_A   = Φ + 2Φ [Σ_rs W_rs (Q_rs − P_r Φ P_s)] Φ

with ``W`` the asymptotic covariance of γ̂ (twice the inverse Hessian of the REML criterion, as for
Satterthwaite's df). Without the second-derivative term ``R_rs`` this adjustment does not depend on
how the structure is parameterised (``P`` and ``Q`` transform with the Jacobian, ``W`` with its
inverse), which is why it is the one computed here: mmrm's default ``"Kenward-Roger"`` adds ``R``
in mmrm's own parameterisation, and SAS's in SAS's. The df and F scaling are pbkrtest's (mmrm's
``h_kr_df``) from ``Φ``, ``P`` and ``W``; for one contrast they equal Satterthwaite's.

Subjects sharing a visit pattern share ``Σ_i``, so every sum is over patterns, read off the
pattern moments ``S[a, b] = Σ_i X_i[a]'X_i[b]`` of the whitening (no rows are touched); ``∂C/∂ρ`` is
a central difference of the structure's ``T × T`` matrix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..exceptions import ModelError
from .ddf import KenwardRoger

if TYPE_CHECKING:
    from ..results import LinearMixedModelResults

#: Step of the central differences of C(ρ) in the (unconstrained) residual parameters.
STEP = 1e-5


class KenwardRogerResidual(KenwardRoger):
    """Kenward–Roger df and adjusted covariance of a marginal model with a discrete-time residual structure."""

    method = "Kenward-Roger"

    def __init__(self, result: "LinearMixedModelResults") -> None:
        if not result.reml:
            raise ModelError("Kenward-Roger's method is only available for REML fits; refit with REML or use Satterthwaite")
        model = result.model
        if model.terms or model.variance is not None or model.whitening is None or model.whitening._moments is None:
            raise ModelError(
                "Kenward-Roger df are available for residual structures of marginal models (no random effects, no "
                "variance function) with a factor time; use ddf='satterthwaite' here"
            )
        self.result = result
        self.warnings: list[str] = []
        self.phi = result.vcov.to_numpy()
        self._compute()

    def _compute(self) -> None:
        res = self.result
        w = res.model.whitening
        structure, rho, sigma = w.structure, res.rho, res.sigma
        p = res.nfixed
        npar = rho.size
        groups = range(structure.n_groups)
        full = [structure.cov_full(rho, g) for g in groups]
        deriv = []  # ∂C/∂ρ_r per group, central differences
        for r in range(npar):
            e = np.zeros(npar)
            e[r] = STEP
            deriv.append([(structure.cov_full(rho + e, g) - structure.cov_full(rho - e, g)) / (2 * STEP) for g in groups])
        m = npar + 1  # γ = (ρ, σ)
        P = [np.zeros((p, p)) for _ in range(m)]
        Q = {(r, s): np.zeros((p, p)) for r in range(m) for s in range(r, m)}
        for unit, S in zip(w.units, w._moments):
            ix = np.ix_(unit.times, unit.times)
            C = full[unit.group][ix]
            Sinv = np.linalg.inv(sigma**2 * C)
            dS = [sigma**2 * deriv[r][unit.group][ix] for r in range(npar)] + [2.0 * sigma * C]
            A = [Sinv @ d @ Sinv for d in dS]  # Σ⁻¹ ∂Σ_r Σ⁻¹
            Sx = S[:, :, :p, :p]
            for r in range(m):
                P[r] -= np.einsum("ab,abij->ij", A[r], Sx)
                for s in range(r, m):
                    Q[r, s] += np.einsum("ab,abij->ij", A[r] @ dS[s] @ Sinv, Sx)
        W = self.result.ddf_calculator("satterthwaite").vcov_varpar
        phi = self.phi
        U = np.zeros((p, p))
        for r in range(m):
            for s in range(m):
                q = Q[min(r, s), max(r, s)]
                q = q if r <= s else q.T
                U += W[r, s] * (q - P[r] @ phi @ P[s])
        self.P = P
        self.W = W
        self.vcov_adjusted = phi + 2 * phi @ U @ phi
