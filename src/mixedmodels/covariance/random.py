"""Covariance structures of random-effects terms (G-side): the map between parameters and λ.

A term ``(expr | g)`` with ``p`` columns has random effects ``b_l ~ N(0, σ² λλ')`` per level ``l``;
its relative covariance factor is ``Λ = I ⊗ λ``. A structure owns everything that depends on how
λ is parameterised: the parameters' start, bounds and names, λ itself, the SD/correlation scale
used by profiles and reports, which parameters sit on the boundary, the rows of VarCorr, and the
linear covariance parameters Kenward–Roger differentiates by. Everything else in the engine sees only λ.

:class:`RandomUnstructured` is lme4's: θ is the lower triangle of λ in column-major order, the
diagonal bounded below by 0 (Bates et al. 2015, eq. 4). The structured covariances of lme4 2.x and
glmmTMB (:class:`RandomStructured`: ``diag``, ``homdiag``, ``cs``, ``homcs``, ``ar1``, ``hetar1``)
are ``G = σ² D R(ρ) D`` with ``D`` the relative standard deviations (one per column, or one shared)
and ``R`` a correlation matrix of one parameter; λ is ``D`` times the Cholesky factor of ``R``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from functools import cached_property
from typing import ClassVar

import numpy as np

from ..exceptions import ModelError

#: Parameters with a lower bound of 0 below this are "on the boundary" (lme4's isSingular tol); a
#: correlation this close to one of its bounds is on the boundary too (lme4 2.x's test).
SINGULAR_TOL = 1e-4

#: One row of VarCorr: ``(var1, var2, variance or covariance, SD or correlation)``; ``var2`` is None for a variance.
VarCorrRow = tuple[str, "str | None", float, float]


def _robust_chol(R: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a correlation matrix that may be singular (pivots clamped at 0)."""
    p = R.shape[0]
    L = np.zeros_like(R)
    for j in range(p):
        L[j, j] = math.sqrt(max(R[j, j] - L[j, :j] @ L[j, :j], 0.0))
        for i in range(j + 1, p):
            L[i, j] = (R[i, j] - L[i, :j] @ L[j, :j]) / L[j, j] if L[j, j] > 0 else 0.0
    return L


class RandomCovariance(ABC):
    """How one random-effects term's covariance ``σ² λλ'`` is parameterised.

    Parameters
    ----------
    cnames : tuple of str
        Names of the term's columns, as lme4 prints them.
    """

    #: The structure's name in a formula (``cs`` in ``cs(x | g)``).
    kind: ClassVar[str] = "us"
    #: Readable name, for messages.
    description: ClassVar[str] = "unstructured"
    #: The structure's columns must be the indicator columns of one factor (``ar1``).
    needs_factor_columns: ClassVar[bool] = False

    def __init__(self, cnames: tuple[str, ...]) -> None:
        self.cnames = tuple(cnames)
        self.p = len(self.cnames)

    @property
    @abstractmethod
    def npar(self) -> int:
        """Number of parameters."""

    @abstractmethod
    def lam(self, par: np.ndarray) -> np.ndarray:
        """The ``p × p`` factor λ (lower triangular) at ``par``."""

    @abstractmethod
    def start(self) -> np.ndarray:
        """lme4's start: the parameters of λ = I."""

    @abstractmethod
    def lower(self) -> np.ndarray:
        """Lower bounds of the parameters."""

    @abstractmethod
    def names(self, group: str) -> list[str]:
        """lme4's names of the parameters (``Subject.Days.(Intercept)``)."""

    @abstractmethod
    def phi_kinds(self) -> list[str]:
        """``"sd"`` or ``"cor"`` for each value of :meth:`to_phi` (lme4's profile scale)."""

    @abstractmethod
    def phi_labels(self, group: str) -> list[str]:
        """Readable labels of the :meth:`to_phi` values (``sd((Intercept)|Subject)``)."""

    @abstractmethod
    def to_phi(self, par: np.ndarray, sigma: float) -> np.ndarray:
        """Standard deviations and correlations (lme4's ``.sig01, …``) at ``par``."""

    @abstractmethod
    def from_phi(self, phi: np.ndarray, sigma: float) -> np.ndarray:
        """Parameters for SDs/correlations ``phi`` (the inverse of :meth:`to_phi`)."""

    @abstractmethod
    def linear_basis(self) -> list[list[tuple[int, int]]] | None:
        """The covariance's linear parameters (Kenward–Roger's basis), or None if it has none.

        ``G = Σ_r γ_r E_r`` with ``E_r`` the symmetric 0/1 matrix with ones at the listed ``(a, b)``
        elements (``a ≥ b``) and their transposes (one element for lme4's variances and covariances,
        all diagonal elements for a shared variance). None when the structure's covariances do not
        form a linear space (a heterogeneous compound symmetry, an AR(1) of three or more columns).
        """

    def linear_parameters(self) -> list[tuple[int, int]]:
        """The linear parameters as single elements ``(a, b)`` of ``G`` (``γ_r = G[a, b]``), for structures whose
        every linear parameter is one variance or covariance (``us``, ``diag``, two-column ``cs``).

        Raises
        ------
        ModelError
            When a parameter sets several elements (a shared variance) or the structure is not linear.
        """
        basis = self.linear_basis()
        if basis is None or any(len(elements) != 1 for elements in basis):
            raise ModelError(
                f"Kenward-Roger's method is not available here for the {self.description} covariance of the random "
                f"effects ({' + '.join(self.cnames)}); use Satterthwaite"
            )
        return [elements[0] for elements in basis]

    def phi_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of the :meth:`to_phi` values (SDs ``[0, ∞)``, correlations ``[-1, 1]``)."""
        cor = np.array([k == "cor" for k in self.phi_kinds()], dtype=bool)
        return np.where(cor, -1.0, 0.0), np.where(cor, 1.0, np.inf)

    def covariance(self, par: np.ndarray, sigma: float) -> np.ndarray:
        """``σ² λλ'``."""
        lam = self.lam(par)
        return sigma**2 * lam @ lam.T

    def on_boundary(self, par: np.ndarray) -> np.ndarray:
        """Indices of parameters bounded below by 0 and (numerically) at it."""
        return np.flatnonzero((self.lower() == 0) & (np.asarray(par) < SINGULAR_TOL))

    def varcorr_rows(self, par: np.ndarray, sigma: float) -> list[VarCorrRow]:
        """VarCorr's rows (lme4's ``as.data.frame(VarCorr(m))``): every variance, then every covariance with its
        correlation (NaN where an SD is 0), column by column."""
        S = self.covariance(par, sigma)
        sd = np.sqrt(np.diag(S))
        rows: list[VarCorrRow] = [(self.cnames[i], None, S[i, i], sd[i]) for i in range(self.p)]
        for j in range(self.p):
            for i in range(j + 1, self.p):
                corr = S[i, j] / (sd[i] * sd[j]) if sd[i] > 0 and sd[j] > 0 else float("nan")
                rows.append((self.cnames[j], self.cnames[i], S[i, j], corr))
        return rows

    @property
    def correlation_tag(self) -> str | None:
        """The tag a summary prints after the one correlation of a structure that has one (``0.45 (cs)``)."""
        return None

    @property
    def model_class(self) -> str:
        """A name shared by structures that allow the same covariances (one column: any structure is one
        variance; two columns: ``cs``, ``hetar1`` and ``us`` all are), for comparing models."""
        return "us" if self.p == 1 else self.kind


class RandomUnstructured(RandomCovariance):
    """lme4's general covariance: θ = the lower triangle of λ, column by column."""

    @cached_property
    def rows_cols(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of λ filled by each parameter (lower triangle, column-major)."""
        cols, rows = np.triu_indices(self.p)
        return rows, cols

    @property
    def npar(self) -> int:
        return self.p * (self.p + 1) // 2

    def lam(self, par: np.ndarray) -> np.ndarray:
        lam = np.zeros((self.p, self.p))
        rows, cols = self.rows_cols
        lam[rows, cols] = par
        return lam

    def start(self) -> np.ndarray:
        rows, cols = self.rows_cols
        return (rows == cols).astype(float)

    def lower(self) -> np.ndarray:
        rows, cols = self.rows_cols
        return np.where(rows == cols, 0.0, -np.inf)

    def names(self, group: str) -> list[str]:
        rows, cols = self.rows_cols
        return [
            f"{group}.{self.cnames[r]}" if r == c else f"{group}.{self.cnames[r]}.{self.cnames[c]}" for r, c in zip(rows, cols)
        ]

    def phi_kinds(self) -> list[str]:
        rows, cols = self.rows_cols
        return ["sd" if r == c else "cor" for r, c in zip(rows, cols)]

    def phi_labels(self, group: str) -> list[str]:
        rows, cols = self.rows_cols
        return [
            f"sd({self.cnames[r]}|{group})" if r == c else f"cor({self.cnames[c]},{self.cnames[r]}|{group})"
            for r, c in zip(rows, cols)
        ]

    def to_phi(self, par: np.ndarray, sigma: float) -> np.ndarray:
        cov = self.covariance(par, sigma)
        sd = np.sqrt(np.diag(cov))
        rows, cols = self.rows_cols
        return np.array(
            [sd[r] if r == c else (cov[r, c] / (sd[r] * sd[c]) if sd[r] > 0 and sd[c] > 0 else 0.0) for r, c in zip(rows, cols)]
        )

    def from_phi(self, phi: np.ndarray, sigma: float) -> np.ndarray:
        rows, cols = self.rows_cols
        sd = np.zeros(self.p)
        R = np.eye(self.p)
        for k, (r, c) in enumerate(zip(rows, cols)):
            if r == c:
                sd[r] = phi[k]
            else:
                R[r, c] = R[c, r] = phi[k]
        lam = (sd[:, None] * _robust_chol(R)) / sigma
        return lam[rows, cols]

    def linear_basis(self) -> list[list[tuple[int, int]]]:
        rows, cols = self.rows_cols
        return [[(r, c)] for r, c in zip(rows.tolist(), cols.tolist())]


def _cs_factor(rho: float, p: int) -> np.ndarray:
    """Lower Cholesky factor of the compound-symmetry correlation matrix ``(1 − ρ) I + ρ J`` (``p × p``).

    After eliminating ``j`` columns the remainder is again compound symmetric, with diagonal
    ``(1 − ρ)(1 + jρ)/(1 + (j − 1)ρ)`` and off-diagonal ``ρ(1 − ρ)/(1 + (j − 1)ρ)``; so column ``j`` has
    ``L_jj = √((1 − ρ)(1 + jρ)/(1 + (j − 1)ρ))`` and, below it, ``ρ √(1 − ρ) / √((1 + (j − 1)ρ)(1 + jρ))``
    (``L_00 = 1``, ``L_i0 = ρ``). Both stay finite at the bounds ``ρ = 1`` and ``ρ = −1/(p − 1)``.
    """
    L = np.zeros((p, p))
    L[0, 0] = 1.0
    L[1:, 0] = rho
    for j in range(1, p):
        prev, cur = 1.0 + (j - 1) * rho, max(1.0 + j * rho, 0.0)
        L[j, j] = math.sqrt(max((1.0 - rho) * cur / prev, 0.0))
        if j + 1 < p:
            L[j + 1 :, j] = rho * math.sqrt(max(1.0 - rho, 0.0)) / math.sqrt(prev * cur) if cur > 0 else 0.0
    return L


def _ar1_factor(rho: float, p: int) -> np.ndarray:
    """Lower Cholesky factor of the AR(1) correlation matrix ``ρ^|i − j|``: ``L_i0 = ρ^i``, ``L_ij = ρ^(i−j) √(1 − ρ²)``."""
    i, j = np.tril_indices(p)
    L = np.zeros((p, p))
    L[i, j] = np.power(rho, i - j) * np.where(j == 0, 1.0, math.sqrt(max(1.0 - rho * rho, 0.0)))
    return L


class RandomStructured(RandomCovariance):
    """``G = σ² D R(ρ) D``: relative SDs ``D`` (one per column, or one shared) and a one-parameter correlation.

    The parameters are the relative SDs (bounded below by 0, as λ's diagonal in lme4), then, for a
    correlated structure with more than one column, an unconstrained ``t`` with ``ρ`` mapped onto its
    range ``(lo, hi)`` by ``ρ = lo + (hi − lo)(1 + tanh t)/2`` (for AR(1), ``ρ = tanh t``). An
    unconstrained ``t`` keeps BOBYQA within bounds it knows (lower bounds only) and the numerical
    derivatives of Satterthwaite's method defined near ``|ρ| = 1``; ``ρ`` itself is reported on its
    natural scale (profiles, VarCorr, JSON), and ``ρ`` within :data:`SINGULAR_TOL` of a bound is a
    boundary (singular) fit, as in lme4 2.x.
    """

    #: One SD shared by all columns.
    homogeneous: ClassVar[bool] = False
    #: The correlation family: None (independent), ``"cs"`` or ``"ar1"``.
    family: ClassVar[str | None] = None

    @property
    def n_sd(self) -> int:
        """Number of SD parameters."""
        return 1 if self.homogeneous else self.p

    @property
    def has_rho(self) -> bool:
        """The structure has a correlation parameter (a correlated family with two or more columns)."""
        return self.family is not None and self.p > 1

    @property
    def npar(self) -> int:
        return self.n_sd + int(self.has_rho)

    def rho_bounds(self) -> tuple[float, float]:
        """The range of ρ: ``[−1/(p − 1), 1]`` for compound symmetry (positive definiteness), ``[−1, 1]`` for AR(1)."""
        return (-1.0 / (self.p - 1), 1.0) if self.family == "cs" else (-1.0, 1.0)

    def rho(self, par: np.ndarray) -> float:
        """The correlation at ``par`` (0 without one)."""
        if not self.has_rho:
            return 0.0
        lo, hi = self.rho_bounds()
        return lo + (hi - lo) * (1.0 + math.tanh(float(par[-1]))) / 2.0

    def rho_parameter(self, rho: float) -> float:
        """The unconstrained ``t`` of a correlation ``ρ`` (±∞ at the bounds)."""
        lo, hi = self.rho_bounds()
        u = 2.0 * (float(rho) - lo) / (hi - lo) - 1.0
        if u >= 1.0:
            return math.inf
        if u <= -1.0:
            return -math.inf
        return math.atanh(u)

    def sds(self, par: np.ndarray) -> np.ndarray:
        """Relative SD of every column."""
        return np.broadcast_to(np.asarray(par[: self.n_sd], dtype=float), (self.p,))

    def lam(self, par: np.ndarray) -> np.ndarray:
        sd = self.sds(par)
        if not self.has_rho:
            return np.diag(sd)
        factor = _cs_factor if self.family == "cs" else _ar1_factor
        return sd[:, None] * factor(self.rho(par), self.p)

    def start(self) -> np.ndarray:
        return np.r_[np.ones(self.n_sd), [self.rho_parameter(0.0)] if self.has_rho else []]

    def lower(self) -> np.ndarray:
        return np.r_[np.zeros(self.n_sd), [-np.inf] if self.has_rho else []]

    def _sd_names(self) -> list[str]:
        return ["*"] if self.homogeneous else list(self.cnames)

    def names(self, group: str) -> list[str]:
        return [f"{group}.{c}" for c in self._sd_names()] + ([f"{group}.rho"] if self.has_rho else [])

    def phi_kinds(self) -> list[str]:
        return ["sd"] * self.n_sd + (["cor"] if self.has_rho else [])

    def phi_labels(self, group: str) -> list[str]:
        return [f"sd({c}|{group})" for c in self._sd_names()] + ([f"cor({self.family}|{group})"] if self.has_rho else [])

    def phi_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lower, upper = super().phi_bounds()
        if self.has_rho:
            lower[-1], upper[-1] = self.rho_bounds()
        return lower, upper

    def to_phi(self, par: np.ndarray, sigma: float) -> np.ndarray:
        par = np.asarray(par, dtype=float)
        return np.r_[sigma * np.abs(par[: self.n_sd]), [self.rho(par)] if self.has_rho else []]

    def from_phi(self, phi: np.ndarray, sigma: float) -> np.ndarray:
        phi = np.asarray(phi, dtype=float)
        return np.r_[phi[: self.n_sd] / sigma, [self.rho_parameter(phi[-1])] if self.has_rho else []]

    def on_boundary(self, par: np.ndarray) -> np.ndarray:
        par = np.asarray(par, dtype=float)
        out = np.flatnonzero(par[: self.n_sd] < SINGULAR_TOL).tolist()
        if self.has_rho:
            lo, hi = self.rho_bounds()
            rho = self.rho(par)
            if min(rho - lo, hi - rho) < SINGULAR_TOL:
                out.append(self.npar - 1)
        return np.asarray(out, dtype=np.int64)

    def linear_basis(self) -> list[list[tuple[int, int]]] | None:
        p = self.p
        diagonal = [(j, j) for j in range(p)]
        below = [(a, b) for b in range(p) for a in range(b + 1, p)]
        if not self.has_rho:  # diagonal: each variance, or one shared
            return [diagonal] if self.homogeneous else [[e] for e in diagonal]
        if p == 2 and not self.homogeneous:  # two SDs and a correlation: every 2 × 2 covariance
            return [[(0, 0)], [(1, 1)], [(1, 0)]]
        if self.homogeneous and (self.family == "cs" or p == 2):  # s²(1 − ρ) I + s²ρ J
            return [diagonal, below]
        return None

    def varcorr_rows(self, par: np.ndarray, sigma: float) -> list[VarCorrRow]:
        """One variance per SD parameter (the first column's name for a shared one, as lme4 and glmmTMB print it)
        and, with a correlation, one row of the first two columns' covariance and ``ρ``."""
        S = self.covariance(par, sigma)
        rows: list[VarCorrRow] = [(self.cnames[i], None, S[i, i], math.sqrt(S[i, i])) for i in range(self.n_sd)]
        if self.has_rho:
            rows.append((self.cnames[0], self.cnames[1], S[1, 0], self.rho(par)))
        return rows

    @property
    def correlation_tag(self) -> str | None:
        return self.family if self.has_rho else None

    @property
    def model_class(self) -> str:
        if self.p == 1:
            return "us"
        if self.p == 2 and self.has_rho:  # a 2 × 2 cs or hetar1 is unstructured; a 2 × 2 ar1 is homcs
            return "homcs" if self.homogeneous else "us"
        return self.kind


class RandomDiagonal(RandomStructured):
    """``diag``: independent effects with their own variances (lme4 2.x ``diag(x | g)``, glmmTMB ``diag``)."""

    kind = "diag"
    description = "diagonal"


class RandomHomDiagonal(RandomStructured):
    """``homdiag``: independent effects with one variance (lme4 2.x ``diag(x | g, hom = TRUE)``)."""

    kind = "homdiag"
    description = "homogeneous diagonal"
    homogeneous = True


class RandomCompoundSymmetry(RandomStructured):
    """``cs``: own variances, one common correlation (glmmTMB ``cs``, lme4 2.x ``cs(x | g)``)."""

    kind = "cs"
    description = "heterogeneous compound symmetry"
    family = "cs"


class RandomHomCompoundSymmetry(RandomStructured):
    """``homcs``: one variance and one common correlation (lme4 2.x ``cs(x | g, hom = TRUE)``)."""

    kind = "homcs"
    description = "compound symmetry"
    homogeneous = True
    family = "cs"


class RandomAR1(RandomStructured):
    """``ar1``: one variance, correlation ``ρ^|i − j|`` between the levels ``i, j`` of a factor (glmmTMB ``ar1``)."""

    kind = "ar1"
    description = "AR(1)"
    homogeneous = True
    family = "ar1"
    needs_factor_columns = True


class RandomHetAR1(RandomStructured):
    """``hetar1``: an AR(1) correlation with a variance per level (lme4 2.x ``ar1(0 + f | g, hom = FALSE)``)."""

    kind = "hetar1"
    description = "heterogeneous AR(1)"
    family = "ar1"
    needs_factor_columns = True


#: Structures by their name in a formula.
RANDOM_STRUCTURES: dict[str, type[RandomCovariance]] = {
    cls.kind: cls
    for cls in (
        RandomUnstructured, RandomDiagonal, RandomHomDiagonal, RandomCompoundSymmetry, RandomHomCompoundSymmetry,
        RandomAR1, RandomHetAR1,
    )
}


def random_structure(kind: str, cnames: tuple[str, ...]) -> RandomCovariance:
    """The structure named ``kind`` (a key of :data:`RANDOM_STRUCTURES`) for a term with columns ``cnames``."""
    return RANDOM_STRUCTURES[kind](tuple(cnames))
