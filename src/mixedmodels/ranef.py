"""Random effects read off a fitted model's factor: conditional modes and their conditional covariances.

:class:`RandomEffectsReads` is a mixin of :class:`~mixedmodels.results.LinearMixedModelResults`; it
reads ``factor``, ``lambdas``, ``sigma``, ``nfixed``, ``model`` and ``_beta_centred`` of the fit.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .engine.threads import engine_threads

#: Above this many random effects, conditional variances use sparse triangular solves.
DENSE_CONDVAR_LIMIT = 6000


def unique_group_names(names: list[str]) -> list[str]:
    """lme4's names for several terms on one factor: ``g``, ``g.1``, ``g.2``."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        k = seen.get(name, 0)
        out.append(name if k == 0 else f"{name}.{k}")
        seen[name] = k + 1
    return out



class RandomEffectsReads:
    """Conditional modes (BLUPs) and conditional variances of the random effects (mixin)."""

    # ------------------------------------------------------------------ random effects
    @cached_property
    def _u(self) -> np.ndarray:
        """Spherical random effects u (``L_ZZ' u = c_Z − L_XZ' β``)."""
        p = self.nfixed
        LXZ = self.factor.lower_xz()
        rhs = LXZ[p] - LXZ[:p].T @ self._beta_centred
        return spla.spsolve_triangular(self._lzz.T.tocsr(), rhs, lower=False)

    @cached_property
    def _lzz(self) -> sp.csr_matrix:
        return self.factor.lower_zz()

    @cached_property
    def _b_by_term(self) -> list[np.ndarray]:
        if not self.terms:  # a marginal model (a residual structure only)
            return []
        out, start = [], 0
        for t, lam in zip(self.terms, self.lambdas):
            u = self._u[start : start + t.q].reshape(t.nlevels, t.p)
            out.append(t.effects(u, lam))
            start += t.q
        return out

    @cached_property
    @engine_threads
    def _condvar_by_term(self) -> list[np.ndarray]:
        """``σ² Λ (L_ZZ L_ZZ')⁻¹ Λ'`` diagonal blocks per level, ``(l_k, p_k, p_k)`` per term."""
        L = self._lzz
        q = L.shape[0]
        dense = L.toarray() if q <= DENSE_CONDVAR_LIMIT else None
        out, start = [], 0
        for t, lam in zip(self.terms, self.lambdas):
            blocks = np.empty((t.nlevels, t.p, t.p))
            chunk = max(1, 2000 // t.p) * t.p
            for c0 in range(0, t.q, chunk):
                c1 = min(t.q, c0 + chunk)
                nl = (c1 - c0) // t.p
                E = np.zeros((q, c1 - c0))
                E[start : start + t.q] = t.lambda_t_columns(lam, c0, c1)  # columns of Λ' for these levels
                if dense is not None:
                    W = sla.solve_triangular(dense, E, lower=True, check_finite=False)
                else:
                    W = spla.spsolve_triangular(L, E, lower=True)
                W3 = W.reshape(q, nl, t.p)
                blocks[c0 // t.p : c0 // t.p + nl] = np.einsum("qla,qlb->lab", W3, W3)
            out.append(self.sigma**2 * blocks)
            start += t.q
        return out

    def ranef(self, condvar: bool = False) -> dict[str, pd.DataFrame]:
        """Conditional modes (BLUPs) of the random effects, one DataFrame per grouping factor.

        Parameters
        ----------
        condvar : bool
            Also return conditional standard deviations as columns ``sd(<name>)``
            (square roots of the diagonal of lme4's ``postVar``).

        Returns
        -------
        dict of str to pandas.DataFrame
            Levels indexed in the grouping column's own type (integer ids stay integers, a
            categorical gives a ``CategoricalIndex``); ``cask:batch`` factors by string labels.
        """
        out: dict[str, pd.DataFrame] = {}
        for k, (t, b) in enumerate(zip(self.terms, self._b_by_term)):
            frame = pd.DataFrame(b, index=self._level_index(t), columns=list(t.cnames))
            if condvar:
                sd = np.sqrt(np.diagonal(self._condvar_by_term[k], axis1=1, axis2=2))
                frame = frame.join(pd.DataFrame(sd, index=frame.index, columns=[f"sd({c})" for c in t.cnames]))
            out[t.group] = frame if t.group not in out else pd.concat([out[t.group], frame], axis=1)
        return out

    def condvar(self) -> dict[str, np.ndarray]:
        """Conditional covariance matrices of the random effects, ``(levels, p, p)`` per term (lme4's ``postVar``)."""
        names = unique_group_names([t.group for t in self.terms])
        return dict(zip(names, self._condvar_by_term))

