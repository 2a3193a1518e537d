"""The unstructured MMRM's criterion with its analytic gradient, for a quasi-Newton fit.

A marginal model (no random effects) with an unstructured covariance over a factor time is the
primary analysis of most trials. Its criterion needs no rows per evaluation (the per-pattern
moments of :class:`.residual.Whitening`), and its gradient costs about as much as the criterion
itself when the covariance is parameterised, as mmrm does, by its Cholesky factor: per group
``C_g = L_g L_g'`` with ``L_g`` lower triangular, log diagonal (the first group's ``L[0, 0] = 1``, σ
being profiled). With the moments ``S_u[a, b] = Σ_i A_i[a]'A_i[b]`` of ``A = [X y]`` for the ``m_u``
subjects of visit pattern ``u`` and ``Ω_u = C_u⁻¹``::

    M      = Σ_u Σ_ab Ω_u[a, b] S_u[a, b]                 ([X y]'R₀⁻¹[X y])
    f      = c log r² + Σ_u m_u log|C_u| [+ log|M_XX|] + const,   r² = M_yy − M_yX M_XX⁻¹ M_Xy
    ∂f/∂C_u = m_u Ω_u − Ω_u H_u Ω_u,   H_u[a, b] = (c / r²) e'S_u[a, b] e [+ tr(M_XX⁻¹ S_u[a, b]_XX)]

with ``e = (−β̂, 1)`` (β̂ minimises r², so its change does not enter) and ``c = n − p`` (REML) or
``n``. The pattern gradients add into ``K_g = ∂f/∂C_g`` over all levels and ``∂f/∂L_g = 2 K_g L_g``.
"""

from __future__ import annotations

import math
import time

import numpy as np
import nlopt

from ..optimize import FitRecord, convergence_warnings
from .residual import Whitening

#: Relative tolerances of the quasi-Newton iterations on the criterion and on the parameters.
FTOL_REL = 1e-12
XTOL_REL = 1e-8

_CODES = {1: "NLOPT_SUCCESS", 2: "NLOPT_STOPVAL_REACHED", 3: "NLOPT_FTOL_REACHED", 4: "NLOPT_XTOL_REACHED",
          5: "NLOPT_MAXEVAL_REACHED", 6: "NLOPT_MAXTIME_REACHED"}


class UnstructuredMarginal:
    """Criterion and gradient of a marginal ``us`` model in the Cholesky parameterisation.

    Parameters
    ----------
    whitening : Whitening
        The model's whitening, with per-pattern moments (no random effects, a factor time).
    n, p : int
        Observations and fixed effects.
    reml : bool
    logdet_r : float
        ``log|R₀|`` of prior weights (a constant).
    """

    def __init__(self, whitening: Whitening, n: int, p: int, reml: bool, logdet_r: float = 0.0) -> None:
        self.w = whitening
        self.structure = whitening.structure
        self.T = self.structure.n_levels
        self.G = self.structure.n_groups
        self.n, self.p, self.reml = n, p, reml
        self.c = n - p if reml else n
        self.logdet_r = logdet_r
        self._rows, self._cols = np.tril_indices(self.T)
        c = whitening.A.shape[1]
        # the moments as (k², c²) and (k², p²) matrices: every contraction below is one product
        self._flat = [S.reshape(S.shape[0] ** 2, c * c) for S in whitening.moments]
        self._flat_x = [np.ascontiguousarray(S[:, :, :p, :p]).reshape(S.shape[0] ** 2, p * p) for S in whitening.moments]
        # each pattern's entries in the groups' stacked T × T matrices, raveled (no index grids per evaluation)
        T = self.T
        self._index = [(u.group * T * T + u.times[:, None] * T + u.times[None, :]).ravel() for u in whitening.units]
        self._counts = [float(u.rows.shape[0]) for u in whitening.units]
        self._diag = self._rows == self._cols

    # ---------------------------------------------------------------- parameters
    @property
    def size(self) -> int:
        """Number of parameters: ``T(T+1)/2`` per group, less the first group's ``L[0, 0]``."""
        return self.G * self._rows.size - 1

    def factors(self, x: np.ndarray) -> list[np.ndarray]:
        """``L_g`` of every group from the parameter vector."""
        full = np.r_[0.0, x]  # the first group's log L[0, 0] is fixed at 0
        out = []
        k = self._rows.size
        for g in range(self.G):
            v = full[g * k:(g + 1) * k]
            L = np.zeros((self.T, self.T))
            L[self._rows, self._cols] = np.where(self._diag, np.exp(v), v)
            out.append(L)
        return out

    def from_params(self, rho: np.ndarray) -> np.ndarray:
        """The Cholesky parameters of the structure's parameters ρ (same covariance)."""
        out = []
        for g in range(self.G):
            L = np.linalg.cholesky(self.structure.cov_full(rho, g))
            out.append(np.where(self._diag, np.log(np.diag(L)[self._rows]), L[self._rows, self._cols]))
        return np.concatenate(out)[1:]

    def to_params(self, x: np.ndarray) -> np.ndarray:
        """The structure's parameters ρ of the Cholesky parameters (same covariance)."""
        covs = [L @ L.T for L in self.factors(x)]
        return self.structure.from_covariance(covs)[0]

    # ---------------------------------------------------------------- criterion
    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """The criterion (REML or ML, σ profiled; as :func:`..engine.objective.criterion`) and its gradient."""
        Ls = self.factors(x)
        covs = np.stack([L @ L.T for L in Ls]).ravel()
        p = self.p
        c_ = self.w.A.shape[1]
        flat_m = np.zeros(c_ * c_)
        logdet = 0.0
        omegas = []
        for idx, S, m in zip(self._index, self._flat, self._counts):
            k = int(math.isqrt(idx.size))
            Lc = np.linalg.cholesky(covs[idx].reshape(k, k))
            Li = np.linalg.inv(Lc)
            Om = Li.T @ Li
            omegas.append(Om)
            flat_m += Om.reshape(-1) @ S
            logdet += m * 2.0 * float(np.log(np.diagonal(Lc)).sum())
        M = flat_m.reshape(c_, c_)
        M = (M + M.T) / 2.0
        Lx = np.linalg.cholesky(M[:p, :p])
        Lxi = np.linalg.inv(Lx)
        Minv = Lxi.T @ Lxi
        beta = Minv @ M[:p, p]
        r2 = float(M[p, p] - M[:p, p] @ beta)
        value = self.logdet_r + logdet + self.c * (1.0 + math.log(2.0 * math.pi * r2 / self.c))
        if self.reml:
            value += 2.0 * float(np.log(np.diagonal(Lx)).sum())
        e = np.r_[-beta, 1.0]
        K = np.zeros(self.G * self.T * self.T)
        ee = np.outer(e, e).reshape(-1) * (self.c / r2)
        mx = Minv.reshape(-1)
        for idx, S, Sx, Om, m in zip(self._index, self._flat, self._flat_x, omegas, self._counts):
            k = Om.shape[0]
            H = S @ ee
            if self.reml:
                H += Sx @ mx
            OmH = Om @ H.reshape(k, k)
            K[idx] += (m * Om - OmH @ Om).reshape(-1)
        K = K.reshape(self.G, self.T, self.T)
        grads = []
        for L, Kg in zip(Ls, K):
            GL = (Kg + Kg.T) @ L
            gv = GL[self._rows, self._cols]
            gv = np.where(self._diag, gv * L[self._rows, self._cols], gv)
            grads.append(gv)
        return value, np.concatenate(grads)[1:]

    # ---------------------------------------------------------------- fit
    def fit(self, rho0: np.ndarray, *, check: bool = True, maxeval: int = 10000) -> tuple[np.ndarray, FitRecord]:
        """Minimise from ρ0 by limited-memory BFGS (nlopt's LD_LBFGS) with the analytic gradient; the
        structure's ρ̂ and a fit record.

        The convergence check (lme4's scaled gradient and Hessian definiteness) uses the analytic
        gradient and a Hessian of forward differences of it.
        """
        x0 = self.from_params(rho0)
        best = [math.inf, x0.copy()]
        count = [0]

        def objective(x: np.ndarray, grad: np.ndarray) -> float:
            count[0] += 1
            try:
                value, g = self.value_and_grad(x)
            except np.linalg.LinAlgError:  # a covariance not numerically positive definite: step back
                if grad.size:
                    grad[:] = 0.0
                return 1e300
            if grad.size:
                grad[:] = g
            if value < best[0]:
                best[0], best[1] = value, x.copy()
            return value

        opt = nlopt.opt(nlopt.LD_LBFGS, x0.size)
        opt.set_min_objective(objective)
        opt.set_ftol_rel(FTOL_REL)
        opt.set_xtol_rel(XTOL_REL)
        opt.set_maxeval(maxeval)
        t0 = time.perf_counter()
        code, message = 1, "converged"
        try:
            opt.optimize(x0)
            code = opt.last_optimize_result()
            message = _CODES.get(code, str(code))
        except nlopt.RoundoffLimited:  # the best point is as good as the arithmetic allows
            code, message = 1, "converged (roundoff limited)"
        seconds = time.perf_counter() - t0
        x = best[1]
        msgs: list[str] = []
        grad = None
        worst = None
        if check:
            _, g = self.value_and_grad(x)
            H = np.empty((x.size, x.size))
            for i in range(x.size):
                h = 1e-6 * max(abs(x[i]), 1.0)
                e = np.zeros(x.size)
                e[i] = h
                H[i] = (self.value_and_grad(x + e)[1] - g) / h
            H = (H + H.T) / 2.0
            extra, worst = convergence_warnings(g, H, np.arange(x.size))
            msgs.extend(extra)
            grad = tuple(float(v) for v in g)
        if code == 5:  # NLOPT_MAXEVAL_REACHED
            msgs.append(f"L-BFGS stopped after {maxeval} evaluations")
        record = FitRecord(
            optimizer="nlopt LD_LBFGS (analytic gradient, Cholesky parameters)",
            evaluations=count[0],
            seconds=seconds,
            return_code=code,
            message=message,
            theta_start=tuple(float(v) for v in rho0),
            gradient=grad,
            max_scaled_gradient=worst,
            warnings=tuple(msgs),
        )
        return self.to_params(x), record
