"""Residual (R-side) covariance structures: the relative covariance ``C(θ)`` of one subject's errors.

A subject ``i`` with rows ordered by time has ``Var(ε_i) = σ² C_i(θ)``, ``C_i`` being the rows and columns
of the structure at the subject's observed times.  σ² is profiled out of the likelihood, so exactly one
scale is fixed:

* homogeneous structures (``iid``, ``ar1``, ``cs``, ``toep``, ``ad``, ``car1``) give a correlation matrix;
* heterogeneous ones (``diag``, ``us``, ``ar1h``, ``csh``, ``toeph``, ``adh``) give ``D R D`` with ``D`` the
  relative standard deviations of the time levels, the first level's fixed at 1 (as nlme's varIdent fixes
  its reference level), so σ is the first level's standard deviation.

Group-specific structures (mmrm's ``us(visit | arm / subject)``) have a separate covariance for each level
of the group.  Only the first group's scale is fixed: each later group ``g`` has one more parameter, the log
of its scale relative to the first group's (``C_g = exp(2 s_g) C(θ_g)``): the relative SD of its first time
level for a heterogeneous structure, of every level for a homogeneous one.  Parameters are stored group
after group: ``θ_0, (s_1, θ_1), (s_2, θ_2), …``.

Every parameter is unconstrained (any real vector gives a positive-definite ``C``): log relative SDs,
Fisher's z (tanh) of correlations and partial correlations, a logit for bounded ones (see
:mod:`.transforms`), so an optimizer needs no bounds.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pandas as pd

from .transforms import shrink_to_pd

if TYPE_CHECKING:
    from .binding import ResidualBinding


class ResidualStructure(ABC):
    """A family of relative residual covariance matrices, for given time levels and groups.

    Parameters
    ----------
    levels : sequence of str or int, optional
        Labels of the time levels in their order (discrete structures), or their number (labelled
        ``1 … T``).  Continuous-time structures (``car1``) and ``iid`` take none.
    time_name : str
        Name of the time variable, used in parameter names (``sd(visit2)``, ``cor(visit1,visit2)``).
    groups : sequence of str, optional
        Labels of the groups of a group-specific structure; none for one structure shared by all subjects.
    group_name : str
        Name of the group variable, used in parameter names (``arm=TRT: rho``).
    """

    #: Short name, as in specifications (``"us"``).
    kind: ClassVar[str] = ""
    #: What the structure is, for messages and reports.
    description: ClassVar[str] = ""
    #: Times are level indices 0 … T−1 (otherwise real numbers, or unused for ``iid``).
    discrete: ClassVar[bool] = True
    #: One standard deviation per time level (otherwise one for all).
    heterogeneous: ClassVar[bool] = False
    #: Most time levels allowed (the number of parameters grows with them), or None.
    max_levels: ClassVar[int | None] = None
    #: Fewest time levels for the correlation parameters to be identified.
    min_levels: ClassVar[int] = 1

    def __init__(
        self,
        levels: Sequence[str] | int | None = None,
        *,
        time_name: str = "time",
        groups: Sequence[str] | None = None,
        group_name: str = "group",
    ) -> None:
        if self.discrete:
            if levels is None:
                raise ValueError(f"{self.kind} needs the time levels")
            if isinstance(levels, (int, np.integer)):
                levels = [str(i + 1) for i in range(int(levels))]
            self.levels: tuple[str, ...] | None = tuple(str(v) for v in levels)
            if len(self.levels) < 1:
                raise ValueError(f"{self.kind} needs at least one time level")
        else:
            self.levels = None
        self.time_name = time_name
        self.groups: tuple[str, ...] | None = None if groups is None else tuple(str(g) for g in groups)
        if self.groups is not None and len(self.groups) < 1:
            raise ValueError("a group-specific structure needs at least one group")
        self.group_name = group_name

    # ------------------------------------------------------------------------------------------ sizes
    @property
    def n_levels(self) -> int:
        """Number of time levels ``T`` (0 for continuous time)."""
        return 0 if self.levels is None else len(self.levels)

    @property
    def n_groups(self) -> int:
        """Number of groups (1 without a group variable)."""
        return 1 if self.groups is None else len(self.groups)

    @property
    def n_var(self) -> int:
        """Variance parameters per group (log relative SDs of levels 2 … T)."""
        return self.n_levels - 1 if self.heterogeneous else 0

    @property
    @abstractmethod
    def n_corr(self) -> int:
        """Correlation parameters per group."""

    @property
    def n_core(self) -> int:
        """Parameters per group, without the group's scale."""
        return self.n_var + self.n_corr

    @property
    def npar(self) -> int:
        """Number of parameters: ``G · n_core + G − 1``."""
        return self.n_groups * self.n_core + self.n_groups - 1

    # ------------------------------------------------------------------------------------------ names
    def _level_name(self, k: int) -> str:
        assert self.levels is not None
        return f"{self.time_name}{self.levels[k]}"

    def _sd_names(self) -> list[str]:
        """Natural names of the standard deviations of one group."""
        if self.heterogeneous:
            return [f"sd({self._level_name(k)})" for k in range(self.n_levels)]
        return ["sd"]

    @abstractmethod
    def _corr_names(self) -> list[str]:
        """Names of the correlation parameters of one group (the natural quantity each one maps to)."""

    def _corr_natural_names(self) -> list[str]:
        """Names of the natural correlations reported by :meth:`natural` for one group."""
        return self._corr_names()

    def _group_label(self, g: int) -> str:
        assert self.groups is not None
        return f"{self.group_name}={self.groups[g]}"

    @property
    def names(self) -> list[str]:
        """Names of the parameters, each the natural quantity its slot maps to (``sd(visit2)``, ``rho``).

        A group's scale parameter is named after the SD it sets (``sd`` or ``sd(visit1)``); with groups,
        every name is prefixed by its group (``arm=TRT: sd(visit2)``).  For ``us`` and ``toep`` a
        correlation slot holds a partial correlation that maps to the named correlation together with the
        earlier slots (see the class).
        """
        out = []
        for g in range(self.n_groups):
            sds = self._sd_names()
            block = [sds[0]] if g > 0 else []
            if self.heterogeneous:
                block += sds[1:]
            block += self._corr_names()
            if self.groups is not None:
                block = [f"{self._group_label(g)}: {b}" for b in block]
            out += block
        return out

    # ------------------------------------------------------------------------------------ parameters
    def split(self, par: np.ndarray, group: int = 0) -> tuple[float, np.ndarray, np.ndarray]:
        """One group's log scale (0 for the first group), variance parameters and correlation parameters."""
        par = np.asarray(par, dtype=float)
        if par.shape != (self.npar,):
            raise ValueError(f"{self.kind} has {self.npar} parameters, got an array of shape {par.shape}")
        if not 0 <= group < self.n_groups:
            raise ValueError(f"group {group} out of range 0 … {self.n_groups - 1}")
        if group == 0:
            scale, start = 0.0, 0
        else:
            start = self.n_core + (group - 1) * (self.n_core + 1)
            scale, start = float(par[start]), start + 1
        core = par[start : start + self.n_core]
        return scale, core[: self.n_var], core[self.n_var :]

    def join(self, blocks: Sequence[tuple[float, np.ndarray, np.ndarray]]) -> np.ndarray:
        """The inverse of :meth:`split`: a parameter vector from every group's (scale, var, corr)."""
        out: list[float] = []
        for g, (scale, v, c) in enumerate(blocks):
            out += ([scale] if g > 0 else []) + list(np.atleast_1d(v)) + list(np.atleast_1d(c))
        return np.asarray(out, dtype=float)

    def relative_sd(self, par: np.ndarray, group: int = 0) -> np.ndarray:
        """Relative SD of every time level (length T; length 1 for homogeneous or continuous structures)."""
        scale, v, _ = self.split(par, group)
        rel = np.concatenate([[1.0], np.exp(v)]) if self.heterogeneous else np.ones(1)
        return np.exp(scale) * rel

    # -------------------------------------------------------------------------------------- matrices
    @abstractmethod
    def _corr_full(self, cpar: np.ndarray) -> np.ndarray:
        """The T × T correlation matrix over all levels (discrete structures)."""

    def cov_full(self, par: np.ndarray, group: int = 0) -> np.ndarray:
        """The T × T relative covariance over all time levels of one group (discrete structures)."""
        if not self.discrete:
            raise TypeError(f"{self.kind} has no covariance over levels: use cov() with times")
        _, _, c = self.split(par, group)
        sd = self.relative_sd(par, group)
        if sd.size == 1:
            return sd[0] ** 2 * self._corr_full(c)
        return self._corr_full(c) * np.outer(sd, sd)

    def cov(self, par: np.ndarray, times: np.ndarray, group: int = 0) -> np.ndarray:
        """Relative covariance ``C`` at the given times.

        Parameters
        ----------
        par : numpy.ndarray
            The ``npar`` unconstrained parameters.
        times : array_like
            Level indices 0 … T−1 (discrete structures) or times (``car1``), increasing: shape ``(k,)`` for
            one subject, or ``(m, k)`` for ``m`` subjects with ``k`` times each.
        group : int
            Group index (0 without groups).

        Returns
        -------
        numpy.ndarray
            ``k × k``, or ``m × k × k`` for 2-D ``times``.
        """
        full = self.cov_full(par, group)
        t = np.asarray(times, dtype=np.intp)
        return full[t[..., :, None], t[..., None, :]]

    def chol(self, par: np.ndarray, times: np.ndarray, group: int = 0) -> np.ndarray:
        """Lower Cholesky factor of :meth:`cov` (batched for 2-D ``times``); LinAlgError if not PD."""
        return np.linalg.cholesky(self.cov(par, times, group))

    def logdet(self, par: np.ndarray, times: np.ndarray, group: int = 0) -> float | np.ndarray:
        """``log |C|`` at the given times (one value per row of 2-D ``times``)."""
        return 2.0 * np.log(np.diagonal(self.chol(par, times, group), axis1=-2, axis2=-1)).sum(axis=-1)

    def factors(self, par: np.ndarray, binding: ResidualBinding) -> list[np.ndarray]:
        """Lower Cholesky factors of ``C`` for a bound data set, as the engine needs them.

        Discrete structures: one ``k × k`` factor per visit pattern of ``binding.patterns`` (the full
        matrix of each group computed once); continuous ones: one ``m × k × k`` stack per batch of
        ``binding.batches``.  Raises LinAlgError when a matrix is not numerically positive definite.
        """
        if self.discrete:
            full = [self.cov_full(par, g) for g in range(self.n_groups)]
            return [np.linalg.cholesky(full[p.group][np.ix_(p.times, p.times)]) for p in binding.patterns]
        return [self.chol(par, b.times, b.group) for b in binding.batches]

    # ---------------------------------------------------------------------------------- natural scale
    @abstractmethod
    def _corr_natural(self, cpar: np.ndarray) -> np.ndarray:
        """The natural correlations reported for one group (``_corr_natural_names`` order)."""

    def natural(self, par: np.ndarray, sigma: float = 1.0) -> pd.DataFrame:
        """Standard deviations and correlations on their natural scale, one row per quantity.

        Parameters
        ----------
        par : numpy.ndarray
            The unconstrained parameters.
        sigma : float
            The residual scale σ (the first group's first SD), so the SDs are absolute.

        Returns
        -------
        pandas.DataFrame
            Columns ``group`` (label, or ``""`` without groups), ``parameter`` (``sd(visit1)``, ``rho``,
            ``cor(visit1,visit2)``), ``value``.
        """
        rows = []
        for g in range(self.n_groups):
            label = "" if self.groups is None else self._group_label(g)
            _, _, c = self.split(par, g)
            for name, value in zip(self._sd_names(), sigma * self.relative_sd(par, g)):
                rows.append((label, name, float(value)))
            for name, value in zip(self._corr_natural_names(), self._corr_natural(c)):
                rows.append((label, name, float(value)))
        return pd.DataFrame(rows, columns=["group", "parameter", "value"])

    #: What a correlation parameter's natural value is: ``"cor"`` in (−1, 1), ``"unit"`` in (0, 1).
    corr_kind: ClassVar[str] = "cor"

    def natural_values(self, par: np.ndarray, sigma: float = 1.0) -> np.ndarray:
        """The values of :meth:`natural` as one array, without labels (for derivatives and profiles)."""
        out = []
        for g in range(self.n_groups):
            _, _, c = self.split(par, g)
            out.append(sigma * self.relative_sd(par, g))
            out.append(np.asarray(self._corr_natural(c), dtype=float))
        return np.concatenate(out)

    def natural_kinds(self) -> list[str]:
        """``"sd"`` or :attr:`corr_kind` for each value of :meth:`natural_values`."""
        return (["sd"] * len(self._sd_names()) + [self.corr_kind] * len(self._corr_natural_names())) * self.n_groups

    def natural_items(self, par: np.ndarray, sigma: float = 1.0) -> list[tuple[str, float]]:
        """``(label, value)`` of :meth:`natural`, labels prefixed by the group (``"arm=TRT: sd"``) when grouped."""
        nat = self.natural(par, sigma)
        grouped = nat["group"].astype(bool).any()
        labels = nat["group"] + ": " + nat["parameter"] if grouped else nat["parameter"]
        return [(str(a), float(v)) for a, v in zip(labels, nat["value"])]

    def covariance(
        self, par: np.ndarray, sigma: float = 1.0, group: int = 0, times: np.ndarray | None = None
    ) -> pd.DataFrame:
        """``σ² C`` over all time levels, or at ``times``, labelled (nlme's getVarCov for a complete subject)."""
        if times is None:
            if self.levels is None:
                raise TypeError(f"{self.kind} needs the times at which to give the covariance")
            labels = [self._level_name(k) for k in range(self.n_levels)]
            mat = self.cov_full(par, group)
        else:
            t = np.asarray(times)
            labels = [self._level_name(int(k)) for k in t] if self.discrete else [f"{self.time_name}={v:g}" for v in t]
            mat = self.cov(par, t, group)
        return pd.DataFrame(sigma**2 * mat, index=labels, columns=labels)

    # ------------------------------------------------------------------------------ from covariances
    @abstractmethod
    def _corr_params(self, corr: np.ndarray, times: np.ndarray | None) -> np.ndarray:
        """Correlation parameters of one group from its correlation matrix (the inverse map)."""

    def _corr_start(self) -> np.ndarray:
        """Correlation parameters when nothing is known (zero correlation where the family has it)."""
        return np.zeros(self.n_corr)

    def from_covariance(
        self, covs: np.ndarray | Sequence[np.ndarray], times: np.ndarray | None = None
    ) -> tuple[np.ndarray, float]:
        """Parameters and σ² of a natural covariance matrix per group (the inverse of ``σ² cov``).

        Parameters
        ----------
        covs : numpy.ndarray or sequence of numpy.ndarray
            One covariance matrix (T × T over all levels; ``k × k`` at ``times`` for ``car1``), or one per
            group.  A matrix outside the family is mapped to a member near it (SDs from its diagonal,
            correlations averaged over the entries the family ties together).
        times : numpy.ndarray, optional
            The times of the matrices' rows, for continuous-time structures.

        Returns
        -------
        (numpy.ndarray, float)
            The unconstrained parameters and σ².
        """
        covs = [np.asarray(covs, dtype=float)] if np.ndim(covs) == 2 else [np.asarray(c, float) for c in covs]
        if len(covs) != self.n_groups:
            raise ValueError(f"expected {self.n_groups} covariance matrices, got {len(covs)}")
        d0 = np.diag(covs[0])
        sigma2 = float(d0[0] if self.heterogeneous else d0.mean())
        blocks = []
        for cov in covs:
            sd = np.sqrt(np.diag(cov) / sigma2)
            corr = cov / sigma2 / np.outer(sd, sd)
            if self.heterogeneous:
                scale, v = float(np.log(sd[0])), np.log(sd[1:] / sd[0])
            else:
                scale, v = float(0.5 * np.log(np.mean(sd**2))), np.zeros(0)
            c = self._corr_params(corr, None if times is None else np.asarray(times, float)) if self.n_corr else []
            blocks.append((scale, v, np.asarray(c, dtype=float)))
        return self.join(blocks), sigma2

    def start(self, resid: np.ndarray | None = None, binding: ResidualBinding | None = None) -> np.ndarray:
        """Starting parameters.

        Without data: unit relative SDs, zero correlation (φ = 0.2 for ``car1``, nlme's default).  With
        residuals ``resid`` (e.g. from OLS, aligned with the bound frame's rows) and their
        :class:`~.binding.ResidualBinding`: SDs and correlations from the empirical (pairwise-complete)
        covariance of each group, shrunk towards zero correlation until positive definite.
        """
        if resid is None or binding is None:
            blocks = [(0.0, np.zeros(self.n_var), self._corr_start()) for _ in range(self.n_groups)]
            return self.join(blocks)
        from .binding import empirical_covariances

        covs = empirical_covariances(np.asarray(resid, dtype=float), binding)
        covs = [np.sqrt(np.diag(c))[:, None] * shrink_to_pd(_corr_of(c)) * np.sqrt(np.diag(c))[None, :]
                for c in covs]
        return self.from_covariance(covs)[0]

    def __repr__(self) -> str:
        groups = "" if self.groups is None else f", groups={list(self.groups)}"
        levels = "" if self.levels is None else f"levels={list(self.levels)}, "
        return f"{type(self).__name__}({levels}time_name={self.time_name!r}{groups})"


def _corr_of(cov: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.diag(cov))
    return cov / np.outer(sd, sd)
