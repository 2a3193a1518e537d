"""Random-effects terms with a known covariance: ``(1 | id)`` with ``b ~ N(0, σ²θ² K)``.

The engine sees the term as an ordinary scalar term with model matrix ``Z L`` (``K = L L'``, chosen
by :func:`.kinship.kinship_root` so that ``L'Z'ZL`` is diagonal) and one parameter θ ≥ 0: its
spherical effects are ``u* ~ N(0, σ²I)``, ``b = θ L u*``. So the blocked factor keeps its
``"blockdiag"`` kind for the term itself (a diagonal block, whatever K), and only the blocks that
couple it to other terms and to ``[X y]`` are dense. Everything that reads effects by level — BLUPs,
fitted values, simulation, conditional variances — maps ``u*`` back through ``L``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from ..covariance.random import RandomUnstructured
from ..exceptions import DataError, ModelError
from ..terms import RandomEffectsTerm
from .kinship import Kinship, KinshipRoot, as_kinship, kinship_root

if TYPE_CHECKING:
    from ..formula.design import Design


class RandomKnown(RandomUnstructured):
    """One variance times a known relationship matrix: ``G = σ²θ² K`` (θ ≥ 0, lme4's scalar parameter)."""

    kind = "known"
    description = "known covariance (relationship matrix)"

    @property
    def model_class(self) -> str:
        return "known"


@dataclass(frozen=True, eq=False)
class KnownCovarianceTerm(RandomEffectsTerm):
    """A scalar random-effects term whose levels are related by a known ``K`` (see the module docstring).

    Attributes
    ----------
    kinship : Kinship
        ``K`` over the term's levels, in level order.
    root : KinshipRoot
        The square root ``L`` of ``K`` the engine uses.
    """

    kinship: Kinship | None = field(default=None, repr=False)
    root: KinshipRoot | None = field(default=None, repr=False)

    rotated: ClassVar[bool] = True

    @property
    def gram(self) -> np.ndarray:
        """``L'Z'ZL``'s diagonal (``q``): the term's own cross-product in the engine."""
        return self.root.padded_values()

    def rotate_right(self, A: np.ndarray) -> np.ndarray:
        """``A L`` for ``A`` with one column per level."""
        return self.root.right(np.asarray(A, dtype=float))

    def engine_z(self) -> np.ndarray:
        """``Z L``, dense ``n × q``."""
        return self.z[:, :1] * self.root.rows(self.refs)

    def effects(self, u: np.ndarray, lam: np.ndarray) -> np.ndarray:
        return (lam[0, 0] * self.root.left(u[..., 0]))[..., None]

    def lambda_t_columns(self, lam: np.ndarray, c0: int, c1: int) -> np.ndarray:
        return lam[0, 0] * self.root.rows(np.arange(c0, c1)).T

    def relationship_diagonal(self) -> np.ndarray:
        return self.kinship.diagonal()

    def relationship(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        K = self.kinship
        if K.matrix is not None:
            return K.matrix[np.ix_(np.asarray(a), np.asarray(b))]
        return K.factor[np.asarray(a)] @ K.factor[np.asarray(b)].T


def known_terms(terms) -> list[int]:
    """Positions of the known-covariance terms among ``terms``."""
    return [i for i, t in enumerate(terms) if t.rotated]


def bind_known_covariances(design: "Design", covariance: Mapping[str, object]) -> "Design":
    """``design`` with the terms grouped by each key of ``covariance`` given that known covariance.

    Every term on a named grouping factor gets its ``K`` (``(x || id)`` makes two terms, each with ``K``);
    ``K`` is restricted to the levels in the data, in level order.

    Raises
    ------
    DataError
        For a name that groups no term, ids missing from ``K``, or a ``K`` that is not a valid matrix.
    ModelError
        For a term with several columns (``(1 + x | id)``) or a ``K`` that is not positive semi-definite.
    """
    if not isinstance(covariance, Mapping):
        raise DataError(f"covariance must be a dict {{grouping factor: K}}, got {type(covariance).__name__}")
    groups = [t.group for t in design.terms]
    unknown = [str(k) for k in covariance if str(k) not in groups]
    if unknown:
        raise DataError(
            f"covariance names {', '.join(repr(u) for u in unknown)}, which groups no random-effects term "
            f"(terms are grouped by {', '.join(repr(g) for g in dict.fromkeys(groups)) or 'nothing'})"
        )
    given = {str(k): v for k, v in covariance.items()}
    cache: dict[str, Kinship] = {}
    terms = []
    for t in design.terms:
        if t.group not in given:
            terms.append(t)
            continue
        label = f"({' + '.join(t.cnames)} | {t.group})"
        if t.p != 1:
            raise ModelError(
                f"{label} has {t.p} columns; a known covariance applies to a term with one column, such as "
                f"(1 | {t.group}) or (0 + x | {t.group}); write (x || {t.group}) for independent terms each with K"
            )
        if t.group not in cache:
            cache[t.group] = as_kinship(given[t.group], t.group).subset(t.levels, what=f"grouping factor {t.group!r}")
        kin = cache[t.group]
        w = 1.0 if design.weights is None else design.weights
        counts = np.bincount(t.refs, w * t.z[:, 0] ** 2, minlength=t.nlevels)
        fields = {f.name: getattr(t, f.name) for f in dataclasses.fields(RandomEffectsTerm)}
        fields["structure"] = RandomKnown(tuple(t.cnames))
        terms.append(KnownCovarianceTerm(**fields, kinship=kin, root=kinship_root(kin, counts)))
    return dataclasses.replace(design, terms=tuple(terms))


def known_groups(covariance: object) -> frozenset[str]:
    """The grouping factors named by ``covariance=`` (a mapping ``{grouping factor: K}``).

    Raises
    ------
    DataError
        When ``covariance`` is not a mapping.
    """
    if not isinstance(covariance, Mapping):
        raise DataError(f"covariance must be a dict {{grouping factor: K}}, got {type(covariance).__name__}")
    return frozenset(str(k) for k in covariance)
