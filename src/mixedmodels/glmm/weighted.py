"""Weighted cross-products ``[Z X z]' W [Z X z]`` for fixed ``Z`` and ``X``, re-formed at every PIRLS iteration.

The blocks are the engine's :class:`~mixedmodels.engine.crossprod.CrossProducts` (so the blocked factor
takes them unchanged), but the sparsity pattern of every ``Z_k' W Z_j`` block is computed once from the
levels of the rows and kept whatever the weights: a new ``W`` only refills values through
``numpy.bincount``. A weight that is 0 (a row with no trials) or rounds to 0 can therefore never change the
pattern that the factor's Gram maps were built for. No ``n × n`` matrix is formed.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..engine.crossprod import DENSE_FILL, CrossProducts
from ..terms import RandomEffectsTerm


class _OffBlock:
    """The fixed pattern of ``Z_k' W Z_j`` (``k > j``) and how each row's product lands in it."""

    def __init__(self, tk: RandomEffectsTerm, tj: RandomEffectsTerm) -> None:
        pair = tk.refs.astype(np.int64) * tj.nlevels + tj.refs
        uniq, self.inverse = np.unique(pair, return_inverse=True)
        self.npairs = uniq.size
        self.pk, self.pj = tk.p, tj.p
        self.shape = (tk.q, tj.q)
        lk, lj = uniq // tj.nlevels, uniq % tj.nlevels
        a, b = np.meshgrid(np.arange(tk.p), np.arange(tj.p), indexing="ij")
        rows = (lk[:, None, None] * tk.p + a[None]).ravel()
        cols = (lj[:, None, None] * tj.p + b[None]).ravel()
        self.dense = rows.size > DENSE_FILL * self.shape[0] * self.shape[1]
        if self.dense:
            self.flat = rows * self.shape[1] + cols
        else:
            order = np.lexsort((cols, rows))
            self.order = order
            self.indices = cols[order].astype(np.int32)
            self.indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=self.shape[0]))]).astype(np.int32)

    def values(self, zk: np.ndarray, zj: np.ndarray, w: np.ndarray):
        vals = np.empty((self.npairs, self.pk, self.pj))
        for a in range(self.pk):
            wa = w * zk[:, a]
            for b in range(self.pj):
                vals[:, a, b] = np.bincount(self.inverse, wa * zj[:, b], minlength=self.npairs)
        flat = vals.ravel()
        if self.dense:
            out = np.zeros(self.shape[0] * self.shape[1])
            out[self.flat] = flat
            return out.reshape(self.shape)
        return sp.csr_matrix((flat[self.order], self.indices, self.indptr), shape=self.shape)


class WeightedCrossProducts:
    """Builds :class:`CrossProducts` of ``[Z X z]`` with row weights ``w`` for one design.

    Parameters
    ----------
    terms : tuple of RandomEffectsTerm
        The random-effects terms (their ``z`` and ``refs``), in the factor's order.
    X : numpy.ndarray
        ``n × p`` fixed-effects columns (``p`` may be 0: the system in ``u`` alone).
    """

    def __init__(self, terms: tuple[RandomEffectsTerm, ...], X: np.ndarray) -> None:
        self.terms = terms
        self.X = np.asarray(X, dtype=float)
        self.n = self.X.shape[0]
        self._zt = []  # Z_k' as CSR (q_k × n): one sparse product gives [X z]' W Z_k
        for t in terms:
            rows = (t.refs[:, None] * t.p + np.arange(t.p)[None, :]).ravel()
            cols = np.repeat(np.arange(self.n), t.p)
            self._zt.append(sp.csr_matrix((t.z.ravel(), (rows, cols)), shape=(t.q, self.n)))
        self._off = {(k, j): _OffBlock(terms[k], terms[j]) for k in range(len(terms)) for j in range(k)}

    def build(self, w: np.ndarray, z: np.ndarray) -> CrossProducts:
        """Cross-products of ``[Z X z]`` weighted by ``w`` (``Σᵢ wᵢ aᵢ bᵢ`` for every pair of columns)."""
        w = np.asarray(w, dtype=float)
        XY = np.column_stack([self.X, z])
        WXY = XY * w[:, None]
        diag = []
        for t in self.terms:
            a = np.empty((t.nlevels, t.p, t.p))
            for i in range(t.p):
                wi = w * t.z[:, i]
                for j in range(i + 1):
                    a[:, i, j] = a[:, j, i] = np.bincount(t.refs, wi * t.z[:, j], minlength=t.nlevels)
            diag.append(a)
        off = {key: blk.values(self.terms[key[0]].z, self.terms[key[1]].z, w) for key, blk in self._off.items()}
        zx = tuple(np.ascontiguousarray((zt @ WXY).T) for zt in self._zt)
        return CrossProducts(diag=tuple(diag), off=off, zx=zx, xx=XY.T @ WXY, n=self.n)
