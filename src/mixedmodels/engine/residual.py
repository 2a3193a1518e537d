"""Whitening by a residual covariance structure: the cross-products of ``[Z X y]`` at each ρ.

With ``R = σ² C(ρ)`` block diagonal by subject (rows of a subject ordered by time), the model
``y = Xβ + Zb + ε`` is, after multiplying each subject's rows by ``L_i⁻¹`` (``C_i = L_i L_i'``), a model
with iid residuals: the penalised least squares of the engine apply unchanged to the whitened
``[Z X y]``, and the criterion gains ``log|C| = Σ_i 2 Σ log diag L_i`` (Pinheiro & Bates 2000, §5.1;
nlme's ``lme`` with a ``correlation``). Subjects of a group observed at the same times share ``L``
(one triangular solve for all of them); car1's irregular times give a factor per subject, solved in
batches of subjects with the same number of times.

Whitening mixes a subject's rows, so a random-effects term keeps its structure (one level per row)
only if its grouping factor is constant within each subject — a subject or anything it is nested
in (a site, a centre). Terms crossed with the subjects (items) are refused.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.linalg as sla

from ..covariance.binding import ResidualBinding
from ..covariance.residual import ResidualStructure
from ..exceptions import ModelError
from .crossprod import CrossProducts


class Whitening:
    """Cross-products of the whitened engine arrays at residual parameters ρ.

    Parameters
    ----------
    structure : ResidualStructure
    binding : ResidualBinding
        Subjects, times and visit patterns of the model's rows.
    terms : tuple of RandomEffectsTerm
        The engine's terms (columns already scaled by any prior weights).
    X, y : numpy.ndarray
        The engine's fixed-effects matrix and response.
    """

    def __init__(self, structure: ResidualStructure, binding: ResidualBinding, terms: tuple, X: np.ndarray, y: np.ndarray) -> None:
        self.structure = structure
        self.binding = binding
        self.terms = terms
        self.units = binding.patterns if structure.discrete else binding.batches
        for t in terms:
            for unit in self.units:
                refs = t.refs[unit.rows]
                if np.any(refs != refs[:, :1]):
                    raise ModelError(
                        f"the random-effects term ({' + '.join(t.cnames)} | {t.group}) varies within subjects of the "
                        f"residual structure {binding.spec}: whitening a subject's rows would mix its levels; only "
                        "grouping factors constant within a subject (the subject, or a site it belongs to) can be combined "
                        "with a residual structure"
                    )
        _check_identifiable(structure, binding, terms)
        widths = [t.p for t in terms]
        self._splits = np.cumsum(widths + [X.shape[1]])
        self.A = np.column_stack([t.z for t in terms] + [X, y]) if terms else np.column_stack([X, y])
        self._stacks = [self.A[unit.rows] for unit in self.units]  # (m, k, c) per unit, gathered once
        # A marginal model with discrete times needs no rows per evaluation: per visit pattern,
        # Σ_i A_i' C⁻¹ A_i = Σ_ab (C⁻¹)_ab S[a, b] with S[a, b] = Σ_i A_i[a]' A_i[b], formed once.
        self.moments = (
            [np.einsum("mai,mbj->abij", st, st, optimize=True) for st in self._stacks]
            if not terms and structure.discrete
            else None
        )
        self._n = X.shape[0]

    def at(
        self, rho: np.ndarray, y: np.ndarray | None = None, row_scale: np.ndarray | None = None
    ) -> tuple[CrossProducts, float]:
        """``(cross-products of the whitened [Z X y], log|C|)`` at ρ (for a new response ``y`` if given; rows
        first multiplied by ``row_scale``, a variance function's ``1/g``, if given).

        Raises
        ------
        numpy.linalg.LinAlgError
            When ``C(ρ)`` is not numerically positive definite.
        """
        factors = self.structure.factors(np.asarray(rho, dtype=float), self.binding)
        if self.moments is not None and y is None and row_scale is None:
            return self._from_moments(factors)
        W = np.empty_like(self.A)
        c = self.A.shape[1]
        logdet = 0.0
        for unit, stack, L in zip(self.units, self._stacks, factors):
            if y is not None:
                stack = stack.copy()
                stack[:, :, -1] = y[unit.rows]
            if row_scale is not None:
                stack = stack * row_scale[unit.rows][:, :, None]
            if self.structure.discrete:
                m, k = unit.rows.shape
                w = sla.solve_triangular(L, stack.transpose(1, 0, 2).reshape(k, m * c), lower=True, check_finite=False)
                W[unit.rows] = w.reshape(k, m, c).transpose(1, 0, 2)
                logdet += m * 2.0 * float(np.log(np.diag(L)).sum())
            else:
                W[unit.rows] = np.linalg.solve(L, stack)
                logdet += 2.0 * float(np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum())
        parts = np.split(W, self._splits, axis=1)  # the terms' z, then X, then y
        terms = tuple(dataclasses.replace(t, z=np.ascontiguousarray(z)) for t, z in zip(self.terms, parts))
        X, yw = parts[len(self.terms)], parts[-1][:, 0]
        return CrossProducts.from_arrays(terms, np.ascontiguousarray(X), yw), logdet

    def _from_moments(self, factors: list[np.ndarray]) -> tuple[CrossProducts, float]:
        """The marginal model's ``[X y]'R₀⁻¹[X y]`` and ``log|C|`` from the per-pattern moments (no rows touched)."""
        c = self.A.shape[1]
        xx = np.zeros((c, c))
        logdet = 0.0
        for unit, S, L in zip(self.units, self.moments, factors):
            k = L.shape[0]
            Cinv = sla.cho_solve((L, True), np.eye(k), check_finite=False)
            xx += np.einsum("ab,abij->ij", Cinv, S)
            logdet += unit.rows.shape[0] * 2.0 * float(np.log(np.diag(L)).sum())
        xx = (xx + xx.T) / 2.0
        return CrossProducts(diag=(), off={}, zx=(), xx=xx, n=self._n), logdet


def _subject_level(t, binding: ResidualBinding) -> bool:
    """Whether a term's levels are the subjects themselves (each level holds exactly one subject)."""
    pairs = np.unique(np.column_stack([t.refs, binding.subject]), axis=0)
    per_level = np.bincount(pairs[:, 0], minlength=t.nlevels)
    return bool(np.all(per_level == 1)) and t.nlevels == len(binding.subject_levels)


#: Residual structures that already contain what a subject-level random intercept adds (a constant covariance).
_HAS_CONSTANT = frozenset({"us", "cs", "csh", "toep"})


def _check_identifiable(structure: ResidualStructure, binding: ResidualBinding, terms: tuple) -> None:
    """Refuse random effects by subject that the residual structure already spans (their variances would trade off)."""
    for t in terms:
        if not _subject_level(t, binding):
            continue
        intercept_only = t.p == 1 and t.cnames[0] == "(Intercept)"
        if structure.kind == "us" or (structure.kind in _HAS_CONSTANT and intercept_only):
            raise ModelError(
                f"the random effects ({' + '.join(t.cnames)} | {t.group}) and the residual structure {binding.spec} "
                f"cannot both be estimated: {structure.kind} already covers the within-subject covariance that "
                "subject-level random effects add; drop one, or use a structure such as ar1, ar1h or diag"
            )
