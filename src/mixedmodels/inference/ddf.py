"""Denominator degrees of freedom for tests of fixed effects: Satterthwaite and Kenward–Roger.

Satterthwaite follows lmerTest (Kuznetsova, Brockhoff & Christensen 2017): with the variance
parameters ``φ = (θ, σ)``, ``A = 2 H⁻¹`` the asymptotic covariance of φ̂ from the Hessian ``H``
of the deviance in φ, and ``g = ∂(l'C(φ)l)/∂φ`` for ``C(φ) = σ²(R_X'R_X)⁻¹``::

    ν = 2 (l' C l)² / (g' A g)

Kenward–Roger follows pbkrtest (Halekoh & Højsgaard 2014; Kenward & Roger 1997) with the linear
covariance parameterisation ``V = Σ_r γ_r G_r`` (the variances and covariances of each term and
σ²). Every quantity it needs — ``tr(V⁻¹G_rV⁻¹G_s)``, ``X'V⁻¹G_rV⁻¹X``, ``X'V⁻¹G_rV⁻¹G_sV⁻¹X`` —
is written through the Woodbury identity ``V⁻¹ = σ⁻²(I − J T J')`` with ``J = [Z X]`` and
``T = Λ(Λ'Z'ZΛ + I)⁻¹Λ'``, so it costs operations on ``(q+p)``-square matrices built from the
cross-products ``K = J'J``, never an ``n × n`` matrix. With ``S_k = J'(I − JTJ')^k J = (I − KT)^k K``::

    J'V⁻¹J = σ⁻² S_1,  J'V⁻²J = σ⁻⁴ S_2,  J'V⁻³J = σ⁻⁶ S_3,  tr(V⁻²) = σ⁻⁴ (n − 2 tr TK + tr (TK)²)
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from ..exceptions import ModelError
from ..engine.objective import criterion_value
from ..engine.threads import blas_policy
from .numdiff import D_HESSIAN, hessian, jacobian

if TYPE_CHECKING:
    from ..results import LinearMixedModelResults

#: Eigenvalues of the deviance Hessian below this are treated as zero (lmerTest's tol).
HESSIAN_TOL = 1e-8


class Satterthwaite:
    """Satterthwaite's approximation for a fitted model (REML or ML, as the fit).

    Parameters
    ----------
    result : LinearMixedModelResults
    """

    method = "Satterthwaite"

    def __init__(self, result: "LinearMixedModelResults") -> None:
        self.result = result
        self.vcov_beta = result.vcov.to_numpy()
        model = result.model
        if model.iid_residuals:  # a factor of its own, updated in place at each stencil point
            factor = result.factor.with_crossproducts(model.crossprods)
            self._state = lambda theta: (factor.update(theta), model.logdet_r)
        else:  # the residual parameters change the (whitened) cross-products too
            self._state = model.state
        self.varpar = np.r_[result.theta, result.sigma]
        self.warnings: list[str] = []
        self._cache: dict[bytes, tuple[float, float, np.ndarray]] = {}

    def deviance(self, varpar: np.ndarray) -> float:
        """The deviance (REML or ML) at ``(θ, σ)`` without profiling σ out (lmerTest's ``devfun_vp``)::

            d(θ, σ) = r²(θ)/σ² + c log(2πσ²) + log|L_θ|² [+ log|R_X|² for REML],  c = n (ML) or n − p (REML)
        """
        r2, logdets, _ = self._at_theta(varpar[:-1])
        return criterion_value(r2, logdets, self._c, sigma=float(varpar[-1]))

    @property
    def _c(self) -> int:
        return self.result.nobs - (self.result.nfixed if self.result.reml else 0)

    def _at_theta(self, theta: np.ndarray) -> tuple[float, float, np.ndarray]:
        """``(r², log-determinants, (R_X'R_X)⁻¹)`` at θ, cached: the derivatives below share their points."""
        key = np.asarray(theta, dtype=float).tobytes()
        hit = self._cache.get(key)
        if hit is None:
            f, logdet_r = self._state(np.asarray(theta, dtype=float))
            p = self.result.nfixed
            rinv = sla.solve_triangular(f.LXX[:p, :p], np.eye(p), lower=True)
            logdets = f.logdet_z() + (f.logdet_x() if self.result.reml else 0.0) + logdet_r
            hit = self._cache[key] = (f.pwrss(), logdets, rinv.T @ rinv)
        return hit

    @cached_property
    def _derivatives(self) -> tuple[np.ndarray, np.ndarray]:
        """Hessian of the deviance in ``(θ, σ)`` and ``∂C/∂(θ, σ)``.

        σ enters the deviance and ``C = σ²U(θ)`` in closed form, so only derivatives in θ are
        numerical (Richardson extrapolation, all from one stencil of factor evaluations)::

            ∂²d/∂θ∂σ = −2 (∂r²/∂θ)/σ³,   ∂²d/∂σ² = 6 r²/σ⁴ − 2c/σ²,   ∂C/∂σ = 2σU
        """
        theta, sigma = self.result.theta, self.result.sigma
        k = theta.size
        r2, _, U = self._at_theta(theta)
        H = np.empty((k + 1, k + 1))
        jac = np.empty((k + 1,) + U.shape)
        with blas_policy():
            if k:
                H[:k, :k] = hessian(lambda th: self.deviance(np.r_[th, sigma]), theta)
                # first derivatives of r² and U from the same points as the Hessian's diagonal
                J = jacobian(lambda th: np.r_[self._at_theta(th)[0], self._at_theta(th)[2].reshape(-1)], theta, d=D_HESSIAN)
                H[:k, k] = H[k, :k] = -2.0 * J[0] / sigma**3
                jac[:k] = np.moveaxis(sigma**2 * J[1:].reshape(U.shape + (k,)), -1, 0)
        H[k, k] = 6.0 * r2 / sigma**4 - 2.0 * self._c / sigma**2
        jac[k] = 2.0 * sigma * U
        return H, jac

    @cached_property
    def vcov_varpar(self) -> np.ndarray:
        """Asymptotic covariance of ``(θ̂, σ̂)``: twice the pseudo-inverse of the deviance Hessian."""
        H = self._derivatives[0]
        values, vectors = np.linalg.eigh(H)
        neg = values < -HESSIAN_TOL
        zero = np.abs(values) <= HESSIAN_TOL
        if neg.any():
            self.warnings.append(f"Model failed to converge with {int(neg.sum())} negative eigenvalue(s): " + " ".join(f"{v:.1e}" for v in values[neg]))
        if zero.any():
            self.warnings.append(f"Model may not have converged with {int(zero.sum())} eigenvalue(s) close to zero: " + " ".join(f"{v:.1e}" for v in values[zero]))
        pos = values > HESSIAN_TOL
        return 2.0 * (vectors[:, pos] / values[pos]) @ vectors[:, pos].T

    @cached_property
    def jacobian(self) -> np.ndarray:
        """``∂C(φ)/∂φ`` as an array ``(len(φ), p, p)``."""
        return self._derivatives[1]

    def contrast_df(self, l: np.ndarray) -> float:
        """Denominator df for the 1-df contrast ``l'β``."""
        l = np.asarray(l, dtype=float)
        var = l @ self.vcov_beta @ l
        grad = np.einsum("i,kij,j->k", l, self.jacobian, l)
        return float(2.0 * var**2 / (grad @ self.vcov_varpar @ grad))

    def contrast_variance(self, l: np.ndarray) -> float:
        """``l' C l``, the variance of the estimated contrast."""
        l = np.asarray(l, dtype=float)
        return float(l @ self.vcov_beta @ l)

    def ftest(self, L: np.ndarray, rhs: np.ndarray | None = None) -> dict[str, float]:
        """F-test of ``Lβ = rhs`` (lmerTest's ``contestMD``): ``F``, ``ndf``, ``ddf``."""
        L, beta = _hypothesis(self.result, L, rhs)
        d, P = np.linalg.eigh(L @ self.vcov_beta @ L.T)
        order = np.argsort(d)[::-1]
        d, P = d[order], P[:, order]
        pos = d > max(np.sqrt(np.finfo(float).eps) * d[0], 0.0)
        q = int(pos.sum())
        if q == 0:
            raise ModelError("the hypothesis matrix has no estimable rows")
        PtL = (P.T @ L)[:q]
        F = float(np.sum((PtL @ beta) ** 2 / d[:q]) / q)
        nu = np.array([self.contrast_df(row) for row in PtL])
        return {"F": F, "ndf": float(q), "ddf": _combine_df(nu), "scale": 1.0}


def _hypothesis(result: "LinearMixedModelResults", L: np.ndarray, rhs: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """``L`` as a matrix and β̂ shifted so that ``Lβ = rhs`` becomes ``Lβ = 0`` (``β − L⁺ rhs``)."""
    L = np.atleast_2d(np.asarray(L, dtype=float))
    beta = result.beta
    if rhs is not None and np.any(rhs):
        beta = beta - np.linalg.pinv(L) @ np.asarray(rhs, dtype=float)
    return L, beta


def _combine_df(nu: np.ndarray) -> float:
    """Denominator df of an F built from q independent t statistics (lmerTest's ``get_Fstat_ddf``)."""
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < 1e-8):
        return float(np.mean(nu))
    if np.any(nu <= 2):
        return 2.0
    E = float(np.sum(nu / (nu - 2)))
    return 2 * E / (E - nu.size)


class KenwardRoger:
    """Kenward–Roger's adjusted covariance and denominator df for a REML fit (as pbkrtest).

    Parameters
    ----------
    result : LinearMixedModelResults
        A REML fit (the method is defined for REML, as in lmerTest and pbkrtest).
    """

    method = "Kenward-Roger"

    def __init__(self, result: "LinearMixedModelResults") -> None:
        if not result.reml:
            raise ModelError("Kenward-Roger's method is only available for REML fits; refit with REML or use Satterthwaite")
        for t in result.terms:
            if t.structure.linear_basis() is None:
                raise ModelError(
                    f"Kenward-Roger's method needs covariances linear in their parameters, and the {t.structure.description} "
                    f"covariance of the random effects ({' + '.join(t.cnames)} | {t.group}) is not; use Satterthwaite"
                )
        self.result = result
        self.warnings: list[str] = []
        self.phi = result.vcov.to_numpy()
        self._compute()

    # ------------------------------------------------------------------ the adjusted covariance
    def _parameters(self) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """Each γ_r as index arrays ``(rows, cols)`` of the ones of ``E_r`` on the Z columns (``G_r = Z E_r Z'``);
        None is σ². A parameter of a structured term may set several elements (a shared variance)."""
        out: list[tuple[np.ndarray, np.ndarray] | None] = []
        offset = 0
        for t in self.result.terms:
            base = offset + t.p * np.arange(t.nlevels)
            for elements in t.structure.linear_basis():
                rows, cols = [], []
                for a, b in elements:
                    ia, ib = base + a, base + b
                    rows += [ia] if a == b else [ia, ib]
                    cols += [ib] if a == b else [ib, ia]
                out.append((np.concatenate(rows), np.concatenate(cols)))
            offset += t.q
        out.append(None)
        return out

    def _compute(self) -> None:
        res = self.result
        terms = res.terms
        # the cross-products of the engine's rows (scaled by √w: the residual covariance is σ²I there)
        cp = res.model.crossprods
        n, p = res.nobs, res.nfixed
        KZZ = cp.zz()
        KZX = np.vstack([zx[:p].T for zx in cp.zx])
        KXX = cp.xx[:p, :p]
        Lam = sp.block_diag([sp.kron(sp.identity(t.nlevels), lam) for t, lam in zip(terms, res.lambdas)], format="csr")
        q = KZZ.shape[0]
        C = (Lam.T @ KZZ @ Lam).toarray() + np.eye(q)
        W = sla.cho_solve(sla.cho_factor(C, lower=True), Lam.T.toarray())
        T = np.asarray(Lam @ W)
        AZ = np.asarray(KZZ @ T)  # K_ZZ T
        AX = KZX.T @ T  # K_XZ T
        SZZ = KZZ.toarray() - np.asarray((KZZ.T @ AZ.T).T)
        SZX = KZX - AZ @ KZX
        SXX = KXX - AX @ KZX
        S2ZX = SZX - AZ @ SZX
        S2XX = SXX - AX @ SZX
        S3XX = S2XX - AX @ S2ZX
        kzz = KZZ.tocoo()
        trTK = float(np.sum(T[kzz.col, kzz.row] * kzz.data))
        trTKTK = float(np.sum(AZ * AZ.T))
        s2 = res.sigma**2
        params = self._parameters()
        m = len(params)
        Ktr = np.empty((m, m))
        P: list[np.ndarray] = []
        Q: dict[tuple[int, int], np.ndarray] = {}
        for r, er in enumerate(params):
            if er is None:
                P.append(-S2XX / s2**2)
            else:
                P.append(-(SZX[er[0]].T @ SZX[er[1]]) / s2**2)
            for s in range(r, m):
                es = params[s]
                if er is not None and es is not None:
                    block = SZZ[np.ix_(er[1], es[0])]
                    Ktr[r, s] = np.sum(block * SZZ[np.ix_(es[1], er[0])].T) / s2**2
                    Q[r, s] = SZX[er[0]].T @ block @ SZX[es[1]] / s2**3
                elif er is not None:  # s is the residual
                    i, j = er
                    s2zz = SZZ[j, i] - np.einsum("ij,ij->i", AZ[j], SZZ[i])
                    Ktr[r, s] = np.sum(s2zz) / s2**2
                    Q[r, s] = SZX[er[0]].T @ S2ZX[er[1]] / s2**3
                else:
                    Ktr[r, s] = (n - 2 * trTK + trTKTK) / s2**2
                    Q[r, s] = S3XX / s2**3
                Ktr[s, r] = Ktr[r, s]
        phi = self.phi
        IE2 = np.empty((m, m))
        for r in range(m):
            for s in range(r, m):
                IE2[r, s] = IE2[s, r] = Ktr[r, s] - 2 * np.sum(phi * Q[r, s]) + np.sum((phi @ P[r]) * (P[s] @ phi))
        eig = np.linalg.eigvalsh(IE2)
        Wm = 2 * (np.linalg.inv(IE2) if np.min(np.abs(eig)) > 1e-10 else np.linalg.pinv(IE2))
        Wm = (Wm + Wm.T) / 2
        U = np.zeros((p, p))
        for r in range(m):
            for s in range(r + 1, m):
                U += Wm[r, s] * (Q[r, s] - P[r] @ phi @ P[s])
        U = U + U.T
        for r in range(m):
            U += Wm[r, r] * (Q[r, r] - P[r] @ phi @ P[r])
        self.P = P
        self.W = Wm
        self.vcov_adjusted = phi + 2 * phi @ U @ phi

    # ------------------------------------------------------------------ tests
    def _a1a2(self, L: np.ndarray) -> tuple[float, float]:
        phi = self.phi
        Theta = L.T @ np.linalg.solve(L @ phi @ L.T, L)
        TP = Theta @ phi
        u = [TP @ Pr @ phi for Pr in self.P]
        A1 = A2 = 0.0
        m = len(u)
        for i in range(m):
            for j in range(i, m):
                e = 1.0 if i == j else 2.0
                A1 += e * self.W[i, j] * np.trace(u[i]) * np.trace(u[j])
                A2 += e * self.W[i, j] * np.sum(u[i] * u[j].T)
        return A1, A2

    def _ddf_scale(self, L: np.ndarray) -> tuple[float, float]:
        """``(ddf, F scaling)`` of pbkrtest's ``.KR_adjust``."""
        q = float(np.linalg.matrix_rank(L))
        A1, A2 = self._a1a2(L)
        B = (A1 + 6 * A2) / (2 * q)
        g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
        denom = 3 * q + 2 * (1 - g)
        c1, c2, c3 = g / denom, (q - g) / denom, (q + 2 - g) / denom
        V0 = 1 + c1 * B
        V1 = 1 - c2 * B
        V2 = 1 - c3 * B
        V0 = 0.0 if abs(V0) < 1e-10 else V0
        ratio = 1.0 if abs(1 - A2 / q) < 1e-14 and abs(V1) < 1e-14 else (1 - A2 / q) / V1
        rho = ratio**2 * V0 / (q * V2)
        df2 = 4 + (q + 2) / (q * rho - 1)
        scale = 1.0 if abs(df2 - 2) < 1e-2 else df2 * (1 - A2 / q) / (df2 - 2)
        return float(df2), float(scale)

    def contrast_df(self, l: np.ndarray) -> float:
        """Denominator df for the contrast ``l'β`` (pbkrtest's ``Lb_ddf``)."""
        return self._ddf_scale(np.atleast_2d(np.asarray(l, dtype=float)))[0]

    def contrast_variance(self, l: np.ndarray) -> float:
        """``l' Φ_A l`` with the adjusted covariance."""
        l = np.asarray(l, dtype=float)
        return float(l @ self.vcov_adjusted @ l)

    def ftest(self, L: np.ndarray, rhs: np.ndarray | None = None) -> dict[str, float]:
        """Scaled F-test of ``Lβ = rhs`` (pbkrtest's ``KRmodcomp``): ``F``, ``ndf``, ``ddf``, ``scale``."""
        L, beta = _hypothesis(self.result, L, rhs)
        Lb = L @ beta
        q = np.linalg.matrix_rank(L)
        wald = float(Lb @ np.linalg.solve(L @ self.vcov_adjusted @ L.T, Lb))
        ddf, scale = self._ddf_scale(L)
        return {"F": scale * wald / q, "ndf": float(q), "ddf": ddf, "scale": scale}


DDF_METHODS = {"satterthwaite": Satterthwaite, "kenward-roger": KenwardRoger, "kenward-roger-linear": KenwardRoger}

_ALIASES = {"kr": "kenward-roger", "kenwardroger": "kenward-roger", "sat": "satterthwaite", "kr-linear": "kenward-roger-linear",
            "kr1": "kenward-roger-linear", "kenward-roger(firstorder)": "kenward-roger-linear",
            "kenward-roger-firstorder": "kenward-roger-linear"}


def ddf_method(result: "LinearMixedModelResults", method: str):
    """The df calculator named ``method`` (case-insensitive).

    ``"satterthwaite"``; ``"kenward-roger"`` (pbkrtest's for lme4's models; SAS's ``DDFM=KR`` for a
    residual structure); ``"kenward-roger-linear"`` (without the second-derivative term: SAS's
    ``KR(FIRSTORDER)``, mmrm's ``"Kenward-Roger-Linear"``; the same as ``"kenward-roger"`` for lme4's
    models, whose covariance is linear in its variances and covariances).
    """
    key = method.lower().replace("_", "-").replace(" ", "-")
    key = _ALIASES.get(key, key)
    if key not in DDF_METHODS:
        raise ModelError(f"unknown ddf method {method!r}; use 'satterthwaite', 'kenward-roger', 'kenward-roger-linear' or 'none'")
    if result.sigma == 0:
        raise ModelError("the fit is degenerate (residual SD 0: the fixed effects reproduce the response), so it has no df or tests")
    if key.startswith("kenward-roger") and not result.model.iid_residuals:
        from .kr_general import KenwardRogerGeneral
        from .kr_residual import KenwardRogerResidual

        model, first = result.model, key == "kenward-roger-linear"
        marginal = not model.terms and model.variance is None and model.whitening.moments is not None
        return KenwardRogerResidual(result, first) if marginal else KenwardRogerGeneral(result, first)
    return DDF_METHODS[key](result)
