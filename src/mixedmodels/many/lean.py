"""The lean evaluator of :func:`~mixedmodels.many.fit_many`: one design, many responses.

For a model with random-effects terms ``Z = [Z_0 Z_1 … Z_{K-1}]`` (lme4's order, so ``Z_0'Z_0`` is
block diagonal by level) and ``R = [Z_1 … Z_{K-1} X y]``, the penalised system of the factor
(:mod:`mixedmodels.engine.factor`) is reduced by eliminating the first term in closed form::

    D_0(θ) = Λ_0'Z_0'Z_0Λ_0 + I              (one p_0 × p_0 block per level)
    M(θ)   = S'(R'R − R'Z_0Λ_0 D_0⁻¹ Λ_0'Z_0'R)S + diag(1 on the Z_1… columns),   S = blockdiag(Λ_1, …, I)

and ``M = LL'`` (one dense LAPACK Cholesky of order ``q_1 + … + p + 1``) gives every piece of the
criterion: ``log|L_θ|² = log|D_0| + 2 Σ log diag L`` over the random-effects columns, ``log|R_X|²``
over the X columns and ``r² = L[-1, -1]²``. The blocks that do not involve ``y`` are computed once
per design; per response only ``y'Z``, ``y'X`` and ``y'y`` change, and those come from one matrix
product over all responses (:meth:`SharedDesign.response_products`). The numbers are those of the
blocked factor; only the order of floating-point operations differs.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from ..covariance.random import SINGULAR_TOL, RandomUnstructured
from ..engine.crossprod import z_matrix
from ..engine.objective import criterion_value
from ..exceptions import ModelError
from ..model import LinearMixedModel
from ..terms import boundary_components


def _dense(block) -> np.ndarray:
    return block.toarray() if sp.issparse(block) else np.asarray(block)


def _scalar_term(term) -> bool:
    """A term whose λ is its one parameter (``(1 | g)``, ``(0 + x | g)``): the fast diagonal path."""
    if term.p != 1 or term.ntheta != 1:
        return False
    return bool(np.allclose(term.lambda_matrix(np.array([2.5])), [[2.5]]))


class SharedDesign:
    """Everything about a model that does not depend on the response, for the lean evaluator.

    Parameters
    ----------
    model : LinearMixedModel
        A model with iid residuals (prior weights and offsets allowed); its response is not used.
    """

    def __init__(self, model: LinearMixedModel) -> None:
        if not model.iid_residuals:
            raise ModelError("fit_many fits models with iid residuals (no residual structure or variance function)")
        self.model = model
        terms = model.engine_terms
        self.terms = model.terms
        X = model.engine_X
        self.n, self.p = X.shape
        cp = model.crossprods
        t0 = terms[0]
        self.q0, self.p0, self.l0 = t0.q, t0.p, t0.nlevels
        rest = terms[1:]
        self.qr = sum(t.q for t in rest)
        self.m = self.qr + self.p + 1
        qr, p, m = self.qr, self.p, self.m
        # R'Z_0 without its y row, and R'R without its y row and column
        a0 = np.empty((m - 1, self.q0))
        arr = np.zeros((m - 1, m - 1))
        offs = np.cumsum([0] + [t.q for t in rest])
        for k, t in enumerate(rest, start=1):
            s = slice(offs[k - 1], offs[k])
            a0[s] = _dense(cp.off[k, 0])
            rows = np.arange(t.nlevels)[:, None] * t.p + np.arange(t.p)[None, :]
            block = np.zeros((t.q, t.q))
            for lev in range(t.nlevels):
                block[np.ix_(rows[lev], rows[lev])] = cp.diag[k][lev]
            arr[s, s] = block
            for j in range(1, k):
                sj = slice(offs[j - 1], offs[j])
                arr[s, sj] = _dense(cp.off[k, j])
                arr[sj, s] = arr[s, sj].T
            arr[qr:, s] = cp.zx[k][:p]
            arr[s, qr:] = arr[qr:, s].T
        a0[qr:] = cp.zx[0][:p]
        arr[qr:, qr:] = cp.xx[:p, :p]
        self.a0_shared, self.arr_shared = a0, arr
        self.d0 = np.ascontiguousarray(cp.diag[0])  # (l0, p0, p0)
        self.d0_flat = self.d0[:, 0, 0].copy() if self.p0 == 1 else None
        self.scalar0 = _scalar_term(t0)
        self.scalar_rest = all(_scalar_term(t) for t in rest)
        self.rest_slices = [slice(offs[k], offs[k + 1]) for k in range(len(rest))]
        nth = np.cumsum([0] + [t.ntheta for t in self.terms])
        self.theta_slices = [slice(nth[k], nth[k + 1]) for k in range(len(self.terms))]
        # for scalar terms, the diagonal of S is θ_k repeated over its levels (1 for X and y)
        self.scale_index = np.concatenate(
            [np.full(t.q, k + 1) for k, t in enumerate(rest)] + [np.zeros(p + 1, dtype=int)]
        ).astype(int)
        self.z_eye = np.zeros((m, m))
        self.z_eye[np.arange(qr), np.arange(qr)] = 1.0
        # scalar terms only: term k's θ is element k, so θ with a 1 in place of element 0 gives S's diagonal
        self.simple = self.scalar0 and self.scalar_rest and sum(t.ntheta for t in self.terms) == len(self.terms)
        if self.simple:
            self._count_groups(a0)
            # the blocks of the lower triangle of S'MS: (term k, term j ≤ k) scaled by θ_k θ_j, (X and y, term k) by θ_k
            self.lower_blocks = [
                (self.rest_slices[k - 1], self.rest_slices[j - 1], k, j) for k in range(1, len(self.terms)) for j in range(1, k + 1)
            ] + [(slice(qr, m), self.rest_slices[k - 1], k, 0) for k in range(1, len(self.terms))]
        # which parameters are on the boundary: lme4's test (a variance at 0) when every term is lme4's unstructured
        # one, read directly; otherwise each structure's own test
        lower = model.lower_bounds
        if all(type(t.structure) is RandomUnstructured for t in self.terms):
            zero = lower == 0

            def boundary(theta: np.ndarray) -> np.ndarray:
                return np.flatnonzero(zero & (theta < SINGULAR_TOL))
        else:
            def boundary(theta: np.ndarray) -> np.ndarray:
                return boundary_components(self.terms, theta)
        self.boundary = boundary
        self.theta_start, self.lower_bounds = model.theta_start, lower
        self.logdet_r = model.logdet_r
        self.c_reml, self.c_ml = self.n - self.p, self.n
        self._z0 = z_matrix(t0).T.tocsr()
        self._zr = sp.vstack([z_matrix(t).T for t in rest]).tocsr() if rest else None
        self._x = X

    def _count_groups(self, a0: np.ndarray) -> None:
        """Levels of the first term with the same ``Z_0'Z_0`` entry (the same count, in a balanced design) share
        their weight in ``D_0⁻¹``, so ``R'Z_0Λ_0 D_0⁻¹ Λ_0'Z_0'R = Σ_u w_u P_u`` with ``P_u`` the sum of the
        levels' outer products: a product of length (number of distinct counts) per evaluation instead of
        one over the levels. Used when the distinct counts are few (``self.groups``)."""
        values, inverse = np.unique(self.d0_flat, return_inverse=True)
        self.d0_values = values
        self.d0_mult = np.bincount(inverse, minlength=values.size).astype(float)
        self.groups = values.size * self.m <= 2 * self.q0
        self.d0_one = float(values[0])
        if self.groups:
            G = np.zeros((self.q0, values.size))
            G[np.arange(self.q0), inverse] = 1.0
            self.level_groups = G
            self.p_shared = np.einsum("il,jl,lu->uij", a0, a0, G)

    # ------------------------------------------------------------------ responses
    def engine_responses(self, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Responses as the engine sees them (:meth:`LinearMixedModel.engine_y`, one column per response)
        and each one's centring shift (0 when X has no intercept)."""
        model = self.model
        d = model.design
        out = Y if d.offset is None else Y - d.offset[:, None]
        shift = np.zeros(out.shape[1])
        if model.y_shift is not None:
            shift = out.mean(axis=0)
            out = out - shift[None, :]
        if model.sqrt_weights is not None:
            out = out * model.sqrt_weights[:, None]
        return out, shift

    def response_products(self, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``Z_0'y``, ``[Z_1 … X]'y``, ``y'y`` and the centring shift for every column of ``Y`` (engine scale),
        by matrix products over all columns at once."""
        Yc, shift = self.engine_responses(np.asarray(Y, dtype=float))
        u0 = np.asarray(self._z0 @ Yc)
        ux = self._x.T @ Yc
        ur = ux if self._zr is None else np.vstack([np.asarray(self._zr @ Yc), ux])
        return u0, ur, np.einsum("ij,ij->j", Yc, Yc), shift

    def evaluator(self, u0: np.ndarray, ur: np.ndarray, yy: float, shift: float = 0.0) -> ResponseEvaluator:
        """The evaluator of one response from its column of :meth:`response_products`."""
        m = self.m
        a0 = np.empty((m, self.q0))
        a0[:-1] = self.a0_shared
        a0[-1] = u0
        arr = np.empty((m, m))
        arr[:-1, :-1] = self.arr_shared
        arr[-1, :-1] = arr[:-1, -1] = ur
        arr[-1, -1] = yy
        P = None
        if self.simple and self.groups:
            P = np.empty((self.d0_values.size, m, m))
            P[:, :-1, :-1] = self.p_shared
            P[:, -1, :] = ((a0 * u0[None, :]) @ self.level_groups).T
            P[:, :-1, -1] = P[:, -1, :-1]
            P = P.reshape(self.d0_values.size, m * m)
        return ResponseEvaluator(self, a0, arr, float(shift), P)


class ResponseEvaluator:
    """The criterion of one response as a function of θ, by the reduced factor (module docstring)."""

    def __init__(self, shared: SharedDesign, a0: np.ndarray, arr: np.ndarray, shift: float = 0.0,
                 P: np.ndarray | None = None) -> None:
        self.s = shared
        self.a0 = a0
        self.arr = arr
        self.P = P  # Σ over the levels of each distinct count of their outer products (SharedDesign._count_groups)
        self.P1 = P.reshape(shared.m, shared.m) if P is not None and P.shape[0] == 1 else None
        self.shift = shift  # mean(y − offset), added back to the intercept

    def _first_term(self, theta: np.ndarray) -> tuple[np.ndarray, float]:
        """``R'Z_0Λ_0 D_0⁻¹ Λ_0'Z_0'R`` and ``log|D_0|``."""
        s = self.s
        if s.scalar0:
            lam2 = theta[0] * theta[0]
            den = lam2 * s.d0_flat + 1.0
            w = lam2 / den
            return (self.a0 * w) @ self.a0.T, float(np.log(den).sum())
        t0 = s.terms[0]
        lam = t0.lambda_matrix(theta[s.theta_slices[0]])
        D = np.matmul(np.matmul(lam.T, s.d0), lam) + np.eye(s.p0)
        L0 = np.linalg.cholesky(D)
        logdet = 2.0 * float(np.log(np.diagonal(L0, axis1=1, axis2=2)).sum())
        W = np.matmul(np.matmul(lam, np.linalg.inv(D)), lam.T)  # λ D⁻¹ λ' per level
        A = self.a0.reshape(s.m, s.l0, s.p0)
        T = np.empty_like(A)
        for q in range(s.p0):  # T[:, l, q] = Σ_p A[:, l, p] W[l, p, q]: p0² products of m × l0 arrays
            T[:, :, q] = A[:, :, 0] * W[:, 0, q]
            for p in range(1, s.p0):
                T[:, :, q] += A[:, :, p] * W[:, p, q]
        return T.reshape(s.m, s.q0) @ self.a0.T, logdet

    def _scale_rest(self, M: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """``S'MS`` with ``S = blockdiag(Λ_1, …, Λ_{K-1}, I)``."""
        s = self.s
        if s.scalar_rest:
            ext = np.ones(len(s.terms))
            ext[1:] = theta[[sl.start for sl in s.theta_slices[1:]]]
            d = ext[s.scale_index]
            M *= d[:, None]
            M *= d[None, :]
            return M
        for k, sl in enumerate(s.rest_slices, start=1):
            t = s.terms[k]
            lam = t.lambda_matrix(theta[s.theta_slices[k]])
            rows = M[sl].reshape(t.nlevels, t.p, s.m)
            M[sl] = np.einsum("ab,lam->lbm", lam, rows).reshape(t.q, s.m)
            cols = M[:, sl].reshape(s.m, t.nlevels, t.p)
            M[:, sl] = np.einsum("mla,ab->mlb", cols, lam).reshape(s.m, t.q)
        return M

    def state(self, theta: np.ndarray) -> tuple[float, float, float, np.ndarray]:
        """The reduced factor at ``theta``: ``(log|L_θ|², log|R_X|², r², L)`` with ``L`` the lower factor of ``M``
        (its upper triangle holds stale values).

        Raises
        ------
        ModelError
            When the penalised system is not positive definite (as the blocked factor).
        """
        s = self.s
        if s.simple:  # the common case, written out: each call is a handful of array operations
            th = theta.tolist()
            lam2 = th[0] * th[0]
            if self.P1 is not None:  # one count for every level (a balanced first factor)
                lv = lam2 * s.d0_one
                M = self.arr - self.P1 * (lam2 / (lv + 1.0))
                logdet0 = s.l0 * math.log1p(lv)
            elif self.P is not None:
                lv = lam2 * s.d0_values
                M = self.arr - ((lam2 / (lv + 1.0)) @ self.P).reshape(s.m, s.m)
                logdet0 = float(s.d0_mult @ np.log1p(lv))
            else:
                den = lam2 * s.d0_flat + 1.0
                M = self.arr - (self.a0 * (lam2 / den)) @ self.a0.T
                logdet0 = float(np.log(den).sum())
            for rows, cols, k, j in s.lower_blocks:  # only the lower triangle: LAPACK reads no more
                M[rows, cols] *= th[k] * th[j] if j else th[k]
            M.reshape(-1)[: s.qr * (s.m + 1) : s.m + 1] += 1.0
            corner = M[-1, -1]
            L, info = lapack.dpotrf(M, lower=1, clean=0, overwrite_a=1)
            return self._finish(L, info, corner, logdet0, theta)
        theta = np.asarray(theta, dtype=float)
        schur, logdet0 = self._first_term(theta)
        M = self._scale_rest(self.arr - schur, theta)
        M += s.z_eye
        corner = M[-1, -1]
        L, info = lapack.dpotrf(M, lower=1, clean=0, overwrite_a=0)
        return self._finish(L, info, corner, logdet0, theta)

    def _finish(self, L: np.ndarray, info: int, corner: float, logdet0: float, theta: np.ndarray):
        s = self.s
        if info == s.m:  # only the last pivot (the residual sum of squares) vanished: X reproduces the response
            row = L[-1, :-1]
            r2 = max(float(corner - row @ row), 0.0)
            L[-1, -1] = np.sqrt(r2)
        elif info != 0:
            raise ModelError(f"the penalised system is not positive definite at theta={np.asarray(theta).tolist()}")
        else:
            r2 = float(L[-1, -1] ** 2)
        logd = np.log(L.diagonal()[:-1])
        qr = s.qr
        return logdet0 + 2.0 * float(logd[:qr].sum()), 2.0 * float(logd[qr:].sum()), r2, L

    def criterion(self, theta: np.ndarray, reml: bool, sigma: float | None = None) -> float:
        """REML criterion or ML deviance at ``theta`` (profiled over σ unless given), as ``criterion_at``."""
        logdet_z, logdet_x, r2, _ = self.state(theta)
        s = self.s
        if reml:
            return criterion_value(r2, logdet_z + logdet_x + s.logdet_r, s.c_reml, sigma)
        return criterion_value(r2, logdet_z + s.logdet_r, s.c_ml, sigma)

    def states(self, thetas: np.ndarray, reml: bool, need_u: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``r²``, the criterion's log-determinants and ``(R_X'R_X)⁻¹`` (unless not ``need_u``) at each row of
        ``thetas``, in one batch of array operations when every term is scalar (the points of a numerical derivative)."""
        s = self.s
        thetas = np.atleast_2d(np.asarray(thetas, dtype=float))
        N, p, qr = thetas.shape[0], s.p, s.qr
        if s.simple:
            lam2 = thetas[:, 0] ** 2
            if self.P is not None:
                lv = lam2[:, None] * s.d0_values[None, :]
                M = self.arr - ((lam2[:, None] / (lv + 1.0)) @ self.P).reshape(N, s.m, s.m)
                logdet0 = np.log1p(lv) @ s.d0_mult
            else:
                den = lam2[:, None] * s.d0_flat[None, :] + 1.0
                M = self.arr - np.matmul(self.a0[None] * (lam2[:, None] / den)[:, None, :], self.a0.T)
                logdet0 = np.log(den).sum(axis=1)
            d = thetas.copy()
            d[:, 0] = 1.0
            d = d[:, s.scale_index]
            M *= d[:, :, None] * d[:, None, :]
            M += s.z_eye
            try:
                L = np.linalg.cholesky(M)
            except np.linalg.LinAlgError:
                L = None
            if L is not None:
                logd = np.log(np.diagonal(L, axis1=1, axis2=2)[:, :-1])
                logdets = logdet0 + 2.0 * logd[:, :qr].sum(axis=1)
                if reml:
                    logdets += 2.0 * logd[:, qr:].sum(axis=1)
                U = None
                if need_u:
                    rinv = np.linalg.inv(L[:, qr : qr + p, qr : qr + p])
                    U = np.matmul(rinv.transpose(0, 2, 1), rinv)
                return L[:, -1, -1] ** 2, logdets + s.logdet_r, U
        r2 = np.empty(N)
        logdets = np.empty(N)
        U = np.empty((N, p, p))
        for i in range(N):
            logdet_z, logdet_x, r2[i], L = self.state(thetas[i])
            logdets[i] = logdet_z + (logdet_x if reml else 0.0) + s.logdet_r
            if need_u:
                rinv = np.linalg.inv(self.fixed_block(L)[:p, :p])
                U[i] = rinv.T @ rinv
        return r2, logdets, U if need_u else None

    def fixed_block(self, L: np.ndarray) -> np.ndarray:
        """The ``(p + 1) × (p + 1)`` lower factor of the X, y block (``R_X'`` and the y row) from :meth:`state`'s ``L``."""
        return np.tril(L[self.s.qr :, self.s.qr :])
