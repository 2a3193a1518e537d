"""The covariance parameters in which Kenward–Roger's second-derivative term is computed: SAS's.

Kenward & Roger's adjusted covariance (1997, eq. 2) has a term in ``∂²Σ/∂γ_r∂γ_s`` and so depends
on how the covariance is parameterised. SAS PROC MIXED (``DDFM=KR``), the reference of clinical
trials, parameterises each REPEATED structure by the variances and correlations of its type, so a
structure linear in its parameters has no such term (``UN``, ``TOEP``, ``CS``, ``UN(1)``) and the
others do (``AR(1)``, ``ARH(1)``, ``CSH``, ``TOEPH``, ``ANTE(1)``). These are those parameters, per group
of a group-specific structure, read off and put back into the absolute ``T × T`` covariance:

========  ========================  ==========================================================
kind      SAS type                  γ per group
========  ========================  ==========================================================
us        UN                        ``Σ_ij``, i ≥ j (column-major lower triangle)
toep      TOEP                      ``Σ_{1,1+k}``, k = 0 … T−1 (the covariance at lag k)
cs        CS                        ``Σ_12`` (the common covariance), ``Σ_11 − Σ_12``
diag      UN(1)                     ``Σ_ii``
iid       VC                        ``Σ_11``
ar1       AR(1)                     ``Σ_11``, ``ρ``
ar1h      ARH(1)                    ``Σ_ii``, ``ρ``
csh       CSH                       ``Σ_ii``, ``ρ``
toeph     TOEPH                     ``Σ_ii``, ``ρ_k`` (lag k = 1 … T−1)
ad        (ANTE(1), one variance)   ``Σ_11``, ``ρ_{k,k+1}``
adh       ANTE(1)                   ``Σ_ii``, ``ρ_{k,k+1}``
========  ========================  ==========================================================
"""

from __future__ import annotations

import numpy as np

#: Structures whose covariance is linear in SAS's parameters (no second-derivative term).
LINEAR = frozenset({"us", "toep", "cs", "diag", "iid"})


def _count(kind: str, T: int) -> int:
    return {
        "us": T * (T + 1) // 2, "toep": T, "cs": 2, "diag": T, "iid": 1, "ar1": 2, "ar1h": T + 1, "csh": T + 1,
        "toeph": 2 * T - 1, "ad": T, "adh": 2 * T - 1,
    }[kind]


def supported(kind: str) -> bool:
    """Whether a structure has SAS's parameters here (the discrete-time structures)."""
    return kind in LINEAR or kind in ("ar1", "ar1h", "csh", "toeph", "ad", "adh")


def to_gamma(kind: str, covs: list[np.ndarray]) -> np.ndarray:
    """SAS's parameters of the absolute covariance over all levels, group after group."""
    out: list[float] = []
    for S in covs:
        T = S.shape[0]
        var = np.diag(S)
        sd = np.sqrt(var)
        R = S / np.outer(sd, sd)
        if kind == "us":
            out += [S[i, j] for j in range(T) for i in range(j, T)]
        elif kind == "toep":
            out += list(S[0, :])
        elif kind == "cs":
            out += [S[1, 0] if T > 1 else 0.0, S[0, 0] - (S[1, 0] if T > 1 else 0.0)]
        elif kind == "diag":
            out += list(var)
        elif kind == "iid":
            out += [var[0]]
        elif kind == "ar1":
            out += [var[0], R[1, 0]]
        elif kind in ("ar1h", "csh"):
            out += list(var) + [R[1, 0]]
        elif kind == "toeph":
            out += list(var) + [R[k, 0] for k in range(1, T)]
        elif kind in ("ad", "adh"):
            out += ([var[0]] if kind == "ad" else list(var)) + [R[k + 1, k] for k in range(T - 1)]
        else:
            raise ValueError(f"no SAS parameterisation for {kind}")
    return np.asarray(out, dtype=float)


def from_gamma(kind: str, gamma: np.ndarray, T: int, n_groups: int) -> list[np.ndarray]:
    """The absolute ``T × T`` covariance of each group from SAS's parameters (inverse of :func:`to_gamma`)."""
    size = _count(kind, T)
    gamma = np.asarray(gamma, dtype=float)
    if gamma.shape != (size * n_groups,):
        raise ValueError(f"{kind} over {T} levels and {n_groups} groups has {size * n_groups} parameters, got {gamma.size}")
    lag = np.abs(np.subtract.outer(np.arange(T), np.arange(T)))
    out = []
    for g in range(n_groups):
        c = gamma[g * size:(g + 1) * size]
        if kind == "us":
            S = np.zeros((T, T))
            rows, cols = np.triu_indices(T)  # column-major lower triangle = row-major upper of the transpose
            S[cols, rows] = c
            S = np.tril(S) + np.tril(S, -1).T
        elif kind == "toep":
            S = c[lag]
        elif kind == "cs":
            S = np.full((T, T), c[0]) + c[1] * np.eye(T)
        elif kind == "diag":
            S = np.diag(c)
        elif kind == "iid":
            S = c[0] * np.eye(T)
        else:
            var = np.full(T, c[0]) if kind in ("ar1", "ad") else c[:T]
            rho = c[1:] if kind in ("ar1", "ad") else c[T:]
            if kind in ("ar1", "ar1h"):
                R = rho[0] ** lag
            elif kind == "csh":
                R = np.where(lag == 0, 1.0, rho[0])
            elif kind == "toeph":
                R = np.r_[1.0, rho][lag]
            else:  # ante-dependence: ρ_{ij} = Π_{k=j}^{i−1} ρ_k
                R = np.eye(T)
                for i in range(T):
                    for j in range(i):
                        R[i, j] = R[j, i] = np.prod(rho[j:i])
            sd = np.sqrt(var)
            S = R * np.outer(sd, sd)
        out.append(S)
    return out
