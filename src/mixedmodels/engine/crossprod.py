"""Cross-products of the augmented model matrix ``[Z_1 … Z_K  X  y]``, computed once per model.

Every block is a sum over rows, so cross-products of row partitions can be added
(:meth:`CrossProducts.__add__`) — the seam for fitting data split across machines.

A term with a known covariance ``K = L L'`` (:mod:`mixedmodels.genetics.terms`) enters as ``Z L``: its
blocks are those of ``Z`` multiplied by ``L`` (dense), and its own block ``L'Z'ZL`` is diagonal.

Blocks (``r = p_X + 1``; ``k > j``):

* ``diag[k]``  ``Z_k'Z_k`` — block diagonal, stored as ``(l_k, p_k, p_k)``;
* ``off[k, j]`` ``Z_k'Z_j`` — ``q_k × q_j``, scipy CSR when sparse, an array when dense;
* ``zx[k]``    ``[X y]'Z_k`` — ``r × q_k`` array;
* ``xx``       ``[X y]'[X y]`` — ``r × r`` array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..terms import RandomEffectsTerm

#: An off-diagonal block denser than this is stored as a dense array.
DENSE_FILL = 0.25


def z_matrix(term: RandomEffectsTerm) -> sp.csr_matrix:
    """The sparse ``n × q`` model matrix of one term (level-major column order), as the engine sees it
    (``Z L`` for a known covariance ``K = L L'``)."""
    if term.rotated:
        return sp.csr_matrix(term.engine_z())
    return _indicator(term)


def _indicator(term: RandomEffectsTerm) -> sp.csr_matrix:
    n, p = term.z.shape
    cols = (term.refs[:, None] * p + np.arange(p)[None, :]).reshape(-1)
    indptr = np.arange(0, n * p + 1, p)
    return sp.csr_matrix((term.z.reshape(-1), cols, indptr), shape=(n, term.q))


@dataclass(frozen=True, eq=False)
class CrossProducts:
    """The blocks of ``[Z X y]'[Z X y]`` (see module docstring)."""

    diag: tuple[np.ndarray, ...]
    off: dict[tuple[int, int], object]
    zx: tuple[np.ndarray, ...]
    xx: np.ndarray
    n: int

    @classmethod
    def from_arrays(cls, terms: tuple[RandomEffectsTerm, ...], X: np.ndarray, y: np.ndarray) -> "CrossProducts":
        """Compute all blocks from the design of a model."""
        XY = np.column_stack([X, y])
        Zs = [_indicator(t) for t in terms]
        diag = []
        for t in terms:
            a = np.empty((t.nlevels, t.p, t.p))
            for i in range(t.p):
                for j in range(i + 1):
                    a[:, i, j] = a[:, j, i] = np.bincount(t.refs, t.z[:, i] * t.z[:, j], minlength=t.nlevels)
            diag.append(a)
        off: dict[tuple[int, int], object] = {}
        for k in range(len(terms)):
            for j in range(k):
                block = (Zs[k].T @ Zs[j]).tocsr()
                block.sum_duplicates()
                block.sort_indices()
                if block.nnz > DENSE_FILL * block.shape[0] * block.shape[1]:
                    block = block.toarray()
                off[k, j] = block
        zx = [np.ascontiguousarray((Z.T @ XY).T) for Z in Zs]
        for k, t in enumerate(terms):
            if t.rotated:  # Z L: L' Z'Z L is diagonal by the choice of L; the other blocks are dense
                diag[k] = t.gram.reshape(t.q, 1, 1)
                zx[k] = t.rotate_right(zx[k])
                for a, b in [key for key in off if k in key]:
                    block = off[a, b].toarray() if sp.issparse(off[a, b]) else off[a, b]
                    off[a, b] = t.rotate_right(block.T).T if a == k else t.rotate_right(block)
        return cls(diag=tuple(diag), off=off, zx=tuple(zx), xx=XY.T @ XY, n=len(y))

    def with_response(self, terms: tuple[RandomEffectsTerm, ...], X: np.ndarray, y: np.ndarray) -> "CrossProducts":
        """The same cross-products with a new response: only ``y'Z``, ``y'X`` and ``y'y`` are recomputed.

        This is what makes a refit to simulated data (bootstrap) cost one pass over the rows.
        """
        y = np.asarray(y, dtype=float)
        zx = []
        for t, old in zip(terms, self.zx):
            new = old.copy()
            yz = np.empty((t.nlevels, t.p))
            for i in range(t.p):
                yz[:, i] = np.bincount(t.refs, t.z[:, i] * y, minlength=t.nlevels)
            new[-1] = t.rotate_right(yz.reshape(-1)) if t.rotated else yz.reshape(-1)
            zx.append(new)
        xx = self.xx.copy()
        xy = X.T @ y
        xx[-1, :-1] = xx[:-1, -1] = xy
        xx[-1, -1] = y @ y
        return CrossProducts(diag=self.diag, off=self.off, zx=tuple(zx), xx=xx, n=self.n)

    def zz(self) -> sp.csr_matrix:
        """``Z'Z`` as one symmetric sparse ``q × q`` matrix (the diagonal and off-diagonal blocks put together)."""
        K = len(self.diag)
        blocks: list[list[object]] = [[None] * K for _ in range(K)]
        for k, d in enumerate(self.diag):
            levels, p, _ = d.shape
            blocks[k][k] = sp.bsr_matrix((np.ascontiguousarray(d), np.arange(levels), np.arange(levels + 1)), shape=(levels * p, levels * p))
        for (k, j), block in self.off.items():
            blocks[k][j] = sp.csr_matrix(block)
            blocks[j][k] = sp.csr_matrix(block).T
        return sp.bmat(blocks, format="csr")

    def __add__(self, other: "CrossProducts") -> "CrossProducts":
        """Cross-products of the union of two disjoint sets of rows with the same levels."""
        off = {}
        for key, a in self.off.items():
            b = other.off[key]
            s = a + b
            if sp.issparse(s) and s.nnz > DENSE_FILL * s.shape[0] * s.shape[1]:  # filled in by the sum: as from_arrays stores it
                s = s.toarray()
            off[key] = s.tocsr() if sp.issparse(s) else np.asarray(s)
        return CrossProducts(
            diag=tuple(a + b for a, b in zip(self.diag, other.diag)),
            off=off,
            zx=tuple(a + b for a, b in zip(self.zx, other.zx)),
            xx=self.xx + other.xx,
            n=self.n + other.n,
        )
