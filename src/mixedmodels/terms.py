"""Random-effects terms: the grouping factor, the term's model matrix and its covariance factor.

A term ``(expr | g)`` with ``p`` columns and ``l`` levels contributes ``q = l * p`` random effects,
ordered level-major (all columns of level 1, then level 2, ...).  Its relative covariance factor is
``Λ = I_l ⊗ λ`` with ``λ`` a ``p × p`` lower-triangular matrix given by the term's slice of θ through
its covariance structure (:mod:`.covariance.random`; lme4's unstructured λ by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .covariance.random import RandomCovariance, RandomUnstructured


@dataclass(frozen=True, eq=False)
class RandomEffectsTerm:
    """One random-effects term after its data have been evaluated.

    Attributes
    ----------
    group : str
        Name of the grouping factor (``"Subject"``, ``"cask:batch"``).
    group_vars : tuple of str
        Data columns whose interaction is the grouping factor.
    levels : numpy.ndarray
        Level labels (strings), in the order of the random effects.
    refs : numpy.ndarray
        Level index (0-based) of every observation.
    z : numpy.ndarray
        The term's model matrix, ``n × p``.
    cnames : tuple of str
        Column names of ``z`` as lme4 prints them.
    spec : Any
        formulaic model spec that rebuilds ``z`` for new data.
    structure : RandomCovariance
        How the term's covariance is parameterised (default: lme4's unstructured λ).
    """

    group: str
    group_vars: tuple[str, ...]
    levels: np.ndarray
    refs: np.ndarray
    z: np.ndarray
    cnames: tuple[str, ...]
    spec: Any = field(repr=False)
    structure: RandomCovariance | None = field(default=None, repr=False)

    #: The engine sees ``Z L`` for a known covariance ``K = L L'`` (:mod:`mixedmodels.genetics.terms`).
    rotated: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.structure is None:  # lme4's unstructured covariance
            object.__setattr__(self, "structure", RandomUnstructured(tuple(self.cnames)))

    @property
    def p(self) -> int:
        """Number of columns (random effects per level)."""
        return self.z.shape[1]

    @property
    def nlevels(self) -> int:
        """Number of levels of the grouping factor."""
        return len(self.levels)

    @property
    def q(self) -> int:
        """Number of random effects in the term."""
        return self.p * self.nlevels

    @property
    def ntheta(self) -> int:
        """Number of covariance parameters of the term's structure."""
        return self.structure.npar

    @property
    def lower_bounds(self) -> np.ndarray:
        """Lower bounds of the term's parameters (lme4: 0 for diagonal elements of λ, -inf otherwise)."""
        return self.structure.lower()

    @property
    def theta_start(self) -> np.ndarray:
        """lme4's starting value: λ = identity."""
        return self.structure.start()

    @property
    def theta_names(self) -> list[str]:
        """lme4's names for the parameters (``Subject.Days.(Intercept)``)."""
        return self.structure.names(self.group)

    def lambda_matrix(self, theta: np.ndarray) -> np.ndarray:
        """The ``p × p`` lower-triangular factor λ for this term's slice of θ."""
        return self.structure.lam(theta)

    def effects(self, u: np.ndarray, lam: np.ndarray) -> np.ndarray:
        """Random effects ``b = Λu`` by level, ``(…, nlevels, p)``, from spherical ``u`` of the same shape."""
        return u @ lam.T

    def lambda_t_columns(self, lam: np.ndarray, c0: int, c1: int) -> np.ndarray:
        """Columns ``c0:c1`` (whole levels) of the term's ``Λ'``, ``q × (c1 − c0)``."""
        p, nl = self.p, (c1 - c0) // self.p
        E = np.zeros((self.q, c1 - c0))
        for a in range(p):
            for c in range(p):
                E[c0 + a + p * np.arange(nl), c + p * np.arange(nl)] = lam[c, a]
        return E

    def relationship_diagonal(self) -> np.ndarray:
        """How each level's effects scale ``σ²λλ'`` (1: levels are independent and alike)."""
        return np.ones(self.nlevels)

    def relationship(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Relationship between levels ``a`` and ``b`` (1 for the same level, else 0), ``len(a) × len(b)``."""
        return (np.asarray(a)[:, None] == np.asarray(b)[None, :]).astype(float)


def boundary_components(terms: tuple[RandomEffectsTerm, ...], theta: np.ndarray) -> np.ndarray:
    """Indices of the entries of θ on the boundary of their term's structure: a variance at 0 (lme4's
    ``isSingular``) or a structure's correlation at one of its bounds (lme4 2.x). Entries after the terms'
    (residual-structure and variance-function parameters) are never on a boundary."""
    theta = np.asarray(theta, dtype=float)
    out: list[np.ndarray] = []
    start = 0
    for t in terms:
        out.append(start + t.structure.on_boundary(theta[start : start + t.ntheta]))
        start += t.ntheta
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, dtype=np.int64)
