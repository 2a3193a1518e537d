"""The residual covariance structures, each a :class:`~.residual.ResidualStructure`.

Correlations ``R`` over time levels ``i > j`` (0-based level indices, not positions within a subject, so a
missed visit keeps its place; as mmrm and nlme's ``form = ~ visit_number | subject``):

========  ===============================================  ============================================
kind      correlation                                      parameters per group (after the scale)
========  ===============================================  ============================================
iid       I                                                none
diag      I                                                log SD ratios of levels 2 … T
ar1       ρ^(i−j)                                          z = atanh ρ
ar1h      ρ^(i−j)                                          log SD ratios, atanh ρ
cs        ρ                                                logit((ρ − l) / (1 − l)), l = −1/(T−1)
csh       ρ                                                log SD ratios, the same for ρ
toep      ρ_(i−j)                                          atanh of the partial autocorrelations π_1…π_{T−1}
toeph     ρ_(i−j)                                          log SD ratios, the same
ad        ρ_j ρ_{j+1} ⋯ ρ_{i−1}                            atanh ρ_1 … atanh ρ_{T−1}
adh       ρ_j ρ_{j+1} ⋯ ρ_{i−1}                            log SD ratios, the same
us        any                                              log SD ratios, atanh of the canonical partial
                                                           correlations (column-major lower triangle)
car1      φ^|t_i − t_j| (real times)                       logit φ, φ in (0, 1)
========  ===============================================  ============================================

``ar1`` is nlme's corAR1 and mmrm's ar1; ``cs`` nlme's corCompSymm (whose lower bound −1/(T−1) keeps it
positive definite for subjects with up to T times); ``toep`` spans the same correlations as nlme's
corARMA(p = T−1) and mmrm's toep; ``ad`` is mmrm's ad (SAS's ANTE(1)); ``car1`` is nlme's corCAR1 and
mmrm's sp_exp in one dimension; ``us`` is nlme's corSymm + varIdent and mmrm's us; a heterogeneous
``h`` structure is its homogeneous one with nlme's varIdent(~ 1 | time).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from .residual import ResidualStructure
from .transforms import (
    acf_to_pacf,
    bounded,
    corr_to_cpc,
    cpc_to_chol,
    logistic,
    logit,
    lower_pairs,
    pacf_to_acf,
    toeplitz_corr,
    unbounded,
)

if TYPE_CHECKING:
    from .binding import ResidualBinding


class _Uncorrelated(ResidualStructure):
    """Structures without correlation parameters (``C`` diagonal)."""

    @property
    def n_corr(self) -> int:
        return 0

    def _corr_names(self) -> list[str]:
        return []

    def _corr_natural(self, cpar: np.ndarray) -> np.ndarray:
        return np.zeros(0)

    def _corr_params(self, corr: np.ndarray, times: np.ndarray | None) -> np.ndarray:
        return np.zeros(0)


class IID(_Uncorrelated):
    """Independent errors of equal variance, ``C = I`` (the default; one scale per group if grouped)."""

    kind = "iid"
    description = "independent, equal variances"
    discrete = False

    def _corr_full(self, cpar: np.ndarray) -> np.ndarray:
        raise TypeError("iid has no time levels")

    def cov(self, par: np.ndarray, times: np.ndarray, group: int = 0) -> np.ndarray:
        scale, _, _ = self.split(par, group)
        t = np.asarray(times)
        eye = np.eye(t.shape[-1])
        return np.exp(2.0 * scale) * np.broadcast_to(eye, t.shape + (t.shape[-1],)).copy()


class Diagonal(_Uncorrelated):
    """Independent errors with one variance per time level (nlme's varIdent(~ 1 | time) alone)."""

    kind = "diag"
    description = "independent, heterogeneous variances"
    heterogeneous = True

    def _corr_full(self, cpar: np.ndarray) -> np.ndarray:
        return np.eye(self.n_levels)


class AR1(ResidualStructure):
    """First-order autoregressive correlation over level indices, ``ρ^|i−j|``, ``ρ = tanh z``."""

    kind = "ar1"
    description = "first-order autoregressive"
    min_levels = 2

    @property
    def n_corr(self) -> int:
        return 1

    def _corr_names(self) -> list[str]:
        return ["rho"]

    def _rho(self, cpar: np.ndarray) -> float:
        return float(np.tanh(cpar[0]))

    def _corr_full(self, cpar: np.ndarray) -> np.ndarray:
        lag = np.abs(np.subtract.outer(np.arange(self.n_levels), np.arange(self.n_levels)))
        return self._rho(cpar) ** lag

    def _corr_natural(self, cpar: np.ndarray) -> np.ndarray:
        return np.array([self._rho(cpar)])

    def _corr_params(self, corr: np.ndarray, times: np.ndarray | None) -> np.ndarray:
        return np.array([np.arctanh(np.mean(np.diagonal(corr, -1)))])


class AR1H(AR1):
    """Heterogeneous first-order autoregressive: ``D R D`` with ``R`` as :class:`AR1`."""

    kind = "ar1h"
    description = "heterogeneous first-order autoregressive"
    heterogeneous = True


class CS(ResidualStructure):
    """Compound symmetry: constant correlation ``ρ ∈ (−1/(T−1), 1)`` (nlme's corCompSymm)."""

    kind = "cs"
    description = "compound symmetry"
    min_levels = 2

    @property
    def n_corr(self) -> int:
        return 1

    @property
    def lower(self) -> float:
        """Lower bound of ρ: −1/(T−1), the smallest ρ for which T × T is positive definite."""
        return -1.0 / max(self.n_levels - 1, 1)

    def _corr_names(self) -> list[str]:
        return ["rho"]

    def _rho(self, cpar: np.ndarray) -> float:
        return bounded(cpar[0], self.lower)

    def _corr_full(self, cpar: np.ndarray) -> np.ndarray:
        rho = self._rho(cpar)
        return np.full((self.n_levels, self.n_levels), rho) + (1.0 - rho) * np.eye(self.n_levels)

    def _corr_natural(self, cpar: np.ndarray) -> np.ndarray:
        return np.array([self._rho(cpar)])

    def _corr_params(self, corr: np.ndarray, times: np.ndarray | None) -> np.ndarray:
        rows, cols = lower_pairs(corr.shape[0])
        return np.array([unbounded(float(np.mean(corr[rows, cols])), self.lower)])

    def _corr_start(self) -> np.ndarray:
        return np.array([unbounded(0.0, self.lower)])


class CSH(CS):
    """Heterogeneous compound symmetry: ``D R D`` with ``R`` as :class:`CS`."""

    kind = "csh"
    description = "heterogeneous compound symmetry"
    heterogeneous = True


class Toeplitz(ResidualStructure):
    """Toeplitz (banded) correlation ``ρ_|i−j|``, parameterised by partial autocorrelations ``tanh z_k``.

    Every parameter vector gives a positive-definite matrix; the correlations are those of a stationary
    AR(T−1) process, so the family equals nlme's corARMA(p = T−1) and mmrm's toep (which parameterises
    ``ρ_k`` directly and can leave the positive-definite set).
    """

    kind = "toep"
    description = "Toeplitz"
    min_levels = 2
    max_levels = 30

    @property
    def n_corr(self) -> int:
        return self.n_levels - 1

    def _corr_names(self) -> list[str]:
        return [f"rho(lag{k})" for k in range(1, self.n_levels)]

    def _corr_full(self, cpar: np.ndarray) -> np.ndarray:
        return toeplitz_corr(pacf_to_acf(np.tanh(cpar)), self.n_levels)

    def _corr_natural(self, cpar: np.ndarray) -> np.ndarray:
        return pacf_to_acf(np.tanh(cpar))

    def _corr_params(self, corr: np.ndarray, times: np.ndarray | None) -> np.ndarray:
        acf = np.array([np.mean(np.diagonal(corr, -k)) for k in range(1, corr.shape[0])])
        pacf = acf_to_pacf(acf)
        # diagonal means of a correlation matrix that is not Toeplitz need not be positive definite:
        # shrink them towards 0 (Toeplitz(λρ) = λ Toeplitz(ρ) + (1 − λ) I) until they are
        while not np.all(np.abs(pacf) < 0.999):
            acf = 0.9 * acf
            pacf = acf_to_pacf(acf)
        return np.arctanh(pacf)


class ToeplitzH(Toeplitz):
    """Heterogeneous Toeplitz: ``D R D`` with ``R`` as :class:`Toeplitz` (mmrm's toeph, SAS's TOEPH)."""

    kind = "toeph"
    description = "heterogeneous Toeplitz"
    heterogeneous = True


class AnteDependence(ResidualStructure):
    """First-order ante-dependence: ``corr(i, j) = ρ_j ρ_{j+1} ⋯ ρ_{i−1}`` for ``i > j``, ``ρ_k = tanh z_k``.

    Consecutive levels have their own correlation; positive definite whenever every ``|ρ_k| < 1``.
    """

    kind = "ad"
    description = "ante-dependence"
    min_levels = 2
    max_levels = 30

    @property
    def n_corr(self) -> int:
        return self.n_levels - 1

    def _corr_names(self) -> list[str]:
        return [f"cor({self._level_name(k)},{self._level_name(k + 1)})" for k in range(self.n_levels - 1)]

    def _corr_full(self, cpar: np.ndarray) -> np.ndarray:
        rho = np.tanh(cpar)
        size = self.n_levels
        out = np.eye(size)
        for j in range(size - 1):
            out[j + 1 :, j] = np.cumprod(rho[j:])
        return np.tril(out) + np.tril(out, -1).T

    def _corr_natural(self, cpar: np.ndarray) -> np.ndarray:
        return np.tanh(cpar)

    def _corr_params(self, corr: np.ndarray, times: np.ndarray | None) -> np.ndarray:
        return np.arctanh(np.diagonal(corr, -1))


class AnteDependenceH(AnteDependence):
    """Heterogeneous ante-dependence: ``D R D`` with ``R`` as :class:`AnteDependence` (mmrm's adh)."""

    kind = "adh"
    description = "heterogeneous ante-dependence"
    heterogeneous = True


class Unstructured(ResidualStructure):
    """Unstructured covariance: every variance (relative to the first level's) and correlation free.

    The correlation matrix is ``W W'`` with ``W`` built from canonical partial correlations ``tanh z``
    (:func:`~.transforms.cpc_to_chol`); the slots for pairs ``(visit1, ·)`` are the correlations themselves,
    later ones partial correlations given the earlier levels.  ``T(T+1)/2 − 1`` parameters per group.
    """

    kind = "us"
    description = "unstructured"
    heterogeneous = True
    max_levels = 30

    @property
    def n_corr(self) -> int:
        return self.n_levels * (self.n_levels - 1) // 2

    def _corr_names(self) -> list[str]:
        rows, cols = lower_pairs(self.n_levels)
        return [f"cor({self._level_name(c)},{self._level_name(r)})" for r, c in zip(rows, cols)]

    def corr_chol(self, cpar: np.ndarray) -> np.ndarray:
        """Lower Cholesky factor of the T × T correlation matrix."""
        return cpc_to_chol(np.tanh(cpar), self.n_levels)

    def _corr_full(self, cpar: np.ndarray) -> np.ndarray:
        w = self.corr_chol(cpar)
        corr = w @ w.T
        np.fill_diagonal(corr, 1.0)
        return corr

    def _corr_natural(self, cpar: np.ndarray) -> np.ndarray:
        rows, cols = lower_pairs(self.n_levels)
        return self._corr_full(cpar)[rows, cols]

    def _corr_params(self, corr: np.ndarray, times: np.ndarray | None) -> np.ndarray:
        return np.arctanh(corr_to_cpc(corr))


class CAR1(ResidualStructure):
    """Continuous-time AR(1): ``corr = φ^|t_i − t_j|`` on a numeric time, ``φ = logistic(z) ∈ (0, 1)``.

    nlme's corCAR1 and mmrm's sp_exp with one coordinate.  ``φ`` is the correlation at unit distance, so
    it depends on the time unit.
    """

    kind = "car1"
    description = "continuous-time first-order autoregressive"
    discrete = False
    corr_kind = "unit"

    #: nlme's default φ for corCAR1.
    phi_start: ClassVar[float] = 0.2

    @property
    def n_corr(self) -> int:
        return 1

    def _corr_names(self) -> list[str]:
        return ["phi"]

    def _corr_full(self, cpar: np.ndarray) -> np.ndarray:
        raise TypeError("car1 has no time levels: use cov() with times")

    def _corr_natural(self, cpar: np.ndarray) -> np.ndarray:
        return np.array([float(logistic(cpar[0]))])

    def cov(self, par: np.ndarray, times: np.ndarray, group: int = 0) -> np.ndarray:
        scale, _, c = self.split(par, group)
        t = np.asarray(times, dtype=float)
        dist = np.abs(t[..., :, None] - t[..., None, :])
        log_phi = -np.logaddexp(0.0, -c[0])  # log logistic(z), stable for large |z|
        return np.exp(2.0 * scale + dist * log_phi)

    def _corr_params(self, corr: np.ndarray, times: np.ndarray | None) -> np.ndarray:
        if times is None:
            raise ValueError("car1 needs the times of the covariance matrix's rows")
        rows, cols = lower_pairs(corr.shape[0])
        dist = np.abs(times[rows] - times[cols])
        ok = (dist > 0) & (corr[rows, cols] > 0)
        if not ok.any():
            return self._corr_start()
        log_phi = np.mean(np.log(corr[rows, cols][ok]) / dist[ok])
        return np.array([float(logit(min(max(np.exp(log_phi), 1e-6), 1 - 1e-6)))])

    def _corr_start(self) -> np.ndarray:
        return np.array([float(logit(self.phi_start))])

    def start(self, resid: np.ndarray | None = None, binding: ResidualBinding | None = None) -> np.ndarray:
        """Starting parameters: group scales from mean squares; φ from the lag-one correlation of
        consecutive residuals, ``r^(1/d)`` with ``d`` their median distance (nlme's 0.2 without data)."""
        if resid is None or binding is None:
            return super().start()
        from .binding import consecutive_pairs, empirical_covariances

        resid = np.asarray(resid, dtype=float)
        covs = empirical_covariances(resid, binding)
        a, b, dist = consecutive_pairs(binding)
        blocks = []
        for g in range(self.n_groups):
            sel = (binding.group[a] == g) & (dist > 0)
            phi = self.phi_start
            if sel.any():
                ra, rb = resid[a[sel]], resid[b[sel]]
                denom = np.sqrt(np.sum(ra**2) * np.sum(rb**2))
                r = float(np.sum(ra * rb) / denom) if denom > 0 else 0.0
                if r > 0:
                    phi = float(np.clip(min(r, 0.95) ** (1.0 / np.median(dist[sel])), 1e-3, 0.999))
            scale = 0.5 * float(np.log(covs[g][0, 0] / covs[0][0, 0]))
            blocks.append((scale, np.zeros(0), np.array([float(logit(phi))])))
        return self.join(blocks)


#: Every structure by its kind.
STRUCTURES: dict[str, type[ResidualStructure]] = {
    cls.kind: cls
    for cls in (IID, Diagonal, AR1, AR1H, CS, CSH, Toeplitz, ToeplitzH, AnteDependence, AnteDependenceH,
                Unstructured, CAR1)
}

#: Other names accepted in specifications: mmrm's sp_exp; SAS's UN, ARH(1), ANTE(1), SP(POW) without brackets.
ALIASES: dict[str, str] = {"sp_exp": "car1", "un": "us", "arh1": "ar1h", "ante1": "ad", "sp_pow": "car1"}
