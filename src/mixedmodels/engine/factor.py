"""The blocked lower Cholesky factor ``L(θ)`` of the penalised cross-product matrix.

For ``θ`` the factor satisfies (Bates et al. 2015, eq. 18; MixedModels.jl's ``L``)::

    L L' = [Λ'Z'ZΛ + I   Λ'Z'[X y] ]
           [[X y]'ZΛ     [X y]'[X y]]

with ``Λ = blockdiag(Λ_1, …, Λ_K)`` and the random-effects terms sorted by decreasing number of
levels.  The block types follow the structure, decided once from the sparsity pattern:

* diagonal blocks ``L_kk``: ``"blockdiag"`` (``l_k`` small ``p_k × p_k`` triangles; always for the
  first term, and for later terms whenever the fill-in stays within levels, e.g. nested factors)
  or ``"dense"`` (crossed factors; a ``q_k × q_k`` array whose lower triangle is the factor, the rest unused);
* off-diagonal blocks ``L_kj``: ``"sparse"`` (scipy CSR) or ``"dense"``;
* the rows of ``[X y]``: dense ``r × q_k`` blocks and the dense ``r × r`` triangle ``L_XX``.

No operation depends on the number of observations.
"""

from __future__ import annotations

import copy

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from ..exceptions import ModelError
from ..terms import RandomEffectsTerm
from .crossprod import DENSE_FILL, CrossProducts

try:  # adds a CSR matrix into a dense array in place (what scipy's own sparse + dense uses)
    from scipy.sparse._sparsetools import csr_todense as _csr_add_into
except ImportError:  # pragma: no cover - a scipy without the private module: add through a dense copy
    _csr_add_into = None

#: Most entries (pairs of non-zeros sharing a column, summed over columns) a :class:`GramMap` may hold; above
#: it the fill-in is computed per update by :class:`SchurFill`, whose memory is about the size of ``A`` plus a
#: Gram map of its lightest columns within the same budget. A Gram map keeps ~12 bytes per entry and takes ~74
#: while it is built (1e7 entries: +680 MiB peak, 5 s); MovieLens-1M's users × items has 2.0e8.
GRAM_MAX_ENTRIES = 10_000_000

#: :class:`SchurFill` treats a column of ``A`` (``q`` rows) with more than ``q / DENSE_COLUMN_RATIO`` non-zeros as
#: dense: a BLAS rank-update costs ~1 ms per column at ``q = 3706``, a sparse product as much for a column of
#: ~200 non-zeros (measured on MovieLens-1M's shape, docs/design.md).
DENSE_COLUMN_RATIO = 18.0


def gram_entries(A: sp.spmatrix) -> int:
    """Entries of a :class:`GramMap` of ``A``: ``Σ_s m_s (m_s + 1) / 2`` over columns with ``m_s`` non-zeros."""
    m = np.diff(A.tocsc().indptr).astype(np.int64)
    return int(np.sum(m * (m + 1) // 2))


def _level_pattern(block, pk: int, pj: int, shape: tuple[int, int]) -> sp.csr_matrix:
    """Which (level of k, level of j) pairs a block touches, as a boolean sparse matrix."""
    if not sp.issparse(block):
        return sp.csr_matrix(np.ones(shape, dtype=bool))
    coo = block.tocoo()
    return sp.csr_matrix((np.ones(coo.nnz, dtype=bool), (coo.row // pk, coo.col // pj)), shape=shape)


def _cholesky_last_pivot_may_vanish(A: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of ``[[X'X, X'y], [y'X, y'y]]``-like ``A`` whose last pivot (the residual sum of
    squares) may be 0, as for a response the fixed effects reproduce exactly; every other pivot must be positive."""
    try:
        return np.linalg.cholesky(A)
    except np.linalg.LinAlgError:
        L = np.zeros_like(A)
        L[:-1, :-1] = np.linalg.cholesky(A[:-1, :-1])
        row = sla.solve_triangular(L[:-1, :-1], A[-1, :-1], lower=True, check_finite=False)
        rest = A[-1, -1] - row @ row
        if rest < -1e-10 * max(abs(A[-1, -1]), 1.0):
            raise
        L[-1, :-1], L[-1, -1] = row, np.sqrt(max(rest, 0.0))
        return L


class GramMap:
    """Lower triangle of ``A diag(w) A'`` for a sparse ``A`` of fixed pattern, as one sparse mat-vec in ``w``.

    Built once from the sparsity pattern of ``A``: for every structurally non-zero ``(i, j)``,
    ``i ≥ j``, of the product, the positions in ``A``'s (sorted CSC) values of ``A[i, s]`` and
    ``A[j, s]`` over the columns ``s``. :meth:`bind` reads the values of a particular ``A`` into the
    coefficient matrix ``C`` (``C[(i, j), s] = A[i, s] A[j, s]``); then :meth:`lower` costs one
    product of a CSR matrix with ``w`` instead of a sparse-times-sparse product. It keeps no values
    of its own, so cross-products with new weights (or a new response) can never meet stale ones.
    Used for the fill-in of a dense diagonal block by a scalar first term (e.g. lecturers ×
    students in InstEval).
    """

    def __init__(self, A: sp.spmatrix) -> None:
        csc = A.tocsc()
        csc.sort_indices()
        q = A.shape[0]
        self.shape = A.shape
        self._indptr, self._indices = csc.indptr.copy(), csc.indices.copy()
        counts = np.diff(csc.indptr)
        keys, cols, first, second = [], [], [], []
        # all columns with the same number of non-zeros are handled together
        for m in np.unique(counts[counts > 0]):
            which = np.flatnonzero(counts == m)
            pos = csc.indptr[which][:, None] + np.arange(m)[None, :]
            i, j = np.tril_indices(m)
            r = csc.indices[pos]
            keys.append((r[:, i].astype(np.int64) * q + r[:, j]).ravel())
            cols.append(np.repeat(which, len(i)))
            first.append(pos[:, i].ravel())
            second.append(pos[:, j].ravel())
        key = np.concatenate(keys)
        # the CSR layout of C, with each stored entry's place in the list above (no (key, s) repeats)
        order = sp.csr_matrix(
            (np.arange(1, key.size + 1, dtype=float), (key, np.concatenate(cols))), shape=(q * q, csc.shape[1])
        )
        rows = np.flatnonzero(np.diff(order.indptr))
        order = order[rows]
        perm = order.data.astype(np.int64) - 1
        index = np.int32 if csc.nnz < 2**31 else np.int64  # positions in A's values: half the memory as int32
        self._first = np.concatenate(first)[perm].astype(index)
        self._second = np.concatenate(second)[perm].astype(index)
        self._pattern = sp.csr_matrix((np.zeros(perm.size), order.indices, order.indptr), shape=order.shape)
        self.rows, self.cols = rows // q, rows % q

    def bind(self, A: sp.spmatrix) -> sp.csr_matrix:
        """The coefficient matrix ``C`` for the values of ``A`` (which must have the pattern given at construction)."""
        csc = A.tocsc()
        csc.sort_indices()
        if csc.shape != self.shape or not (
            np.array_equal(csc.indptr, self._indptr) and np.array_equal(csc.indices, self._indices)
        ):
            raise ValueError("GramMap.bind: the matrix does not have the sparsity pattern the map was built for")
        C = self._pattern.copy()
        C.data = csc.data[self._first] * csc.data[self._second]
        return C

    @staticmethod
    def lower(C: sp.csr_matrix, w: np.ndarray) -> np.ndarray:
        """Values of the lower triangle of ``A diag(w) A'`` at ``(rows, cols)``, from ``C = bind(A)``."""
        return C @ w


class SchurFill:
    """``S −= A diag(w) A'`` into the lower triangle of a dense ``S``, for a sparse ``A`` (``q × m``) whose
    :class:`GramMap` would be too large.

    The columns of ``A`` are split by their number of non-zeros: the heavy ones (heavy users in users ×
    items, more than ``q /`` :data:`DENSE_COLUMN_RATIO`) are kept as one dense Fortran array and applied by
    one BLAS ``syrk``; the lightest, up to :data:`GRAM_MAX_ENTRIES` pairs, by a :class:`GramMap` (one sparse
    mat-vec); the rest by one sparse product ``A_M diag(w_M) A_M'`` added into ``S`` in place. The split
    depends only on the pattern; :meth:`bind` reads the values of a particular ``A``.
    """

    def __init__(self, A: sp.spmatrix) -> None:
        csc = A.tocsc()
        self.shape = A.shape
        counts = np.diff(csc.indptr).astype(np.int64)
        heavy = counts > A.shape[0] / DENSE_COLUMN_RATIO
        self.heavy = np.flatnonzero(heavy)
        rest = np.flatnonzero(~heavy)
        rest = rest[np.argsort(counts[rest], kind="stable")]
        entries = np.cumsum(counts[rest] * (counts[rest] + 1) // 2)
        cut = int(np.searchsorted(entries, GRAM_MAX_ENTRIES, side="right"))
        self.small, self.middle = np.sort(rest[:cut]), np.sort(rest[cut:])
        self.gram = GramMap(csc[:, self.small]) if counts[self.small].sum() > 0 else None

    def bind(self, A: sp.spmatrix) -> tuple:
        """The dense heavy columns, the Gram map's coefficients and the sparse middle columns of ``A``'s values."""
        if A.shape != self.shape:
            raise ValueError("SchurFill.bind: the matrix does not have the shape the fill was built for")
        csc = A.tocsc()
        dense = np.asfortranarray(csc[:, self.heavy].toarray()) if self.heavy.size else None
        gram = self.gram.bind(csc[:, self.small]) if self.gram is not None else None
        middle = csc[:, self.middle].tocsr() if self.middle.size else None
        return dense, gram, middle, (None if middle is None else middle.T.tocsc())

    def subtract(self, S: np.ndarray, values: tuple, w: np.ndarray) -> None:
        """``S −= A diag(w) A'`` on (at least) the lower triangle of the C-ordered square array ``S``, in place."""
        dense, gram, middle, middle_t = values
        if dense is not None:
            B = dense * np.sqrt(w[self.heavy])[None, :]  # Fortran order kept
            # S' is Fortran-ordered: its upper triangle is S's lower one
            out = sla.blas.dsyrk(-1.0, B, beta=1.0, c=S.T, lower=0, overwrite_c=1)
            if not np.shares_memory(out, S):  # pragma: no cover - f2py copied: write back
                S.T[...] = np.triu(out) + np.tril(S.T, -1)
        if gram is not None:
            g = self.gram
            S[g.rows, g.cols] -= g.lower(gram, w[self.small])
        if middle is not None:
            scaled = middle.copy()
            scaled.data *= -w[self.middle][scaled.indices]
            P = (scaled @ middle_t).tocsr()
            if _csr_add_into is not None:
                _csr_add_into(P.shape[0], P.shape[1], P.indptr, P.indices, P.data, S)
            else:  # pragma: no cover
                S += P.toarray()


class BlockedCholesky:
    """Blocked Cholesky factor of a linear mixed model, updated in place for each θ.

    Parameters
    ----------
    terms : tuple of RandomEffectsTerm
        Random-effects terms, sorted by decreasing number of levels.
    cp : CrossProducts
        Cross-products of ``[Z X y]``.
    """

    def __init__(self, terms: tuple[RandomEffectsTerm, ...], cp: CrossProducts) -> None:
        self.terms = terms
        self.cp = cp
        self.K = len(terms)
        self.r = cp.xx.shape[0]
        offsets = np.cumsum([0] + [t.ntheta for t in terms])
        self.theta_slices = [slice(offsets[i], offsets[i + 1]) for i in range(self.K)]
        self.diag_kind: list[str] = []
        self.off_kind: dict[tuple[int, int], str] = {}
        self._decide_kinds()
        self.lam: list[np.ndarray] = [np.eye(t.p) for t in terms]
        self.Ldiag: list[np.ndarray] = [np.empty(0)] * self.K
        self.Linv: list[np.ndarray | None] = [None] * self.K
        self.Loff: dict[tuple[int, int], object] = {}
        self.LX: list[np.ndarray] = [np.empty(0)] * self.K
        self.LXX = np.empty((self.r, self.r))
        # fill-in of a dense block by a scalar first term, as one sparse mat-vec per update
        self._gram: dict[tuple[int, int], GramMap] = {}
        for k in range(1, self.K):
            if (
                self.diag_kind[k] == "dense"
                and self.off_kind[k, 0] == "sparse"
                and terms[k].p == 1
                and terms[0].p == 1
            ):
                if gram_entries(cp.off[k, 0]) <= GRAM_MAX_ENTRIES:
                    self._gram[k, 0] = GramMap(cp.off[k, 0])
                else:
                    self._gram[k, 0] = SchurFill(cp.off[k, 0])
        self._bind_gram()
        # positions of each level's p×p block inside a dense q×q matrix, for "dense" diagonal blocks
        self._dense_index = {}
        for k, t in enumerate(terms):
            if self.diag_kind[k] == "dense":
                base = np.arange(t.nlevels)[:, None, None] * t.p
                rows = base + np.arange(t.p)[None, :, None]
                cols = base + np.arange(t.p)[None, None, :]
                self._dense_index[k] = (np.broadcast_to(rows, (t.nlevels, t.p, t.p)), np.broadcast_to(cols, (t.nlevels, t.p, t.p)))

    def _bind_gram(self) -> None:
        """Read the current cross-products' values into the Gram maps (their patterns are shared)."""
        self._gram_values = {key: g.bind(self.cp.off[key]) for key, g in self._gram.items()}

    def with_crossproducts(self, cp: CrossProducts) -> "BlockedCholesky":
        """A factor with this one's block structure over other cross-products of the same Z (e.g. a new y).

        The structure (block kinds, fill-in maps) depends only on Z, so it is shared, not recomputed.
        """
        new = copy.copy(self)
        new.cp = cp
        new.lam = [np.eye(t.p) for t in self.terms]
        new.Ldiag = [np.empty(0)] * self.K
        new.Linv = [None] * self.K
        new.Loff = {}
        new.LX = [np.empty(0)] * self.K
        new.LXX = np.empty((self.r, self.r))
        new._bind_gram()
        return new

    # ------------------------------------------------------------------ structure
    def _decide_kinds(self) -> None:
        pats: dict[tuple[int, int], sp.csr_matrix] = {}
        for k, tk in enumerate(self.terms):
            for j in range(k):
                tj = self.terms[j]
                shape = (tk.nlevels, tj.nlevels)
                pat = _level_pattern(self.cp.off[k, j], tk.p, tj.p, shape)
                for m in range(j):
                    pat = pat + pats[k, m] @ pats[j, m].T
                sparse_ok = (
                    self.diag_kind[j] == "blockdiag"
                    and sp.issparse(self.cp.off[k, j])
                    and pat.nnz <= DENSE_FILL * shape[0] * shape[1]
                    and all(self.off_kind[k, m] == "sparse" and self.off_kind[j, m] == "sparse" for m in range(j))
                )
                self.off_kind[k, j] = "sparse" if sparse_ok else "dense"
                pats[k, j] = pat.tocsr() if sparse_ok else sp.csr_matrix(np.ones(shape, dtype=bool))
            fill = sp.csr_matrix((tk.nlevels, tk.nlevels), dtype=bool)
            for j in range(k):
                fill = fill + pats[k, j] @ pats[k, j].T
            fill = fill.tocoo()
            self.diag_kind.append("blockdiag" if np.all(fill.row == fill.col) else "dense")

    # ------------------------------------------------------------------ helpers
    def _scaled(self, k: int, j: int):
        """``Λ_k' A_kj Λ_j``."""
        A = self.cp.off[k, j]
        lk, lj = self.lam[k], self.lam[j]
        tk, tj = self.terms[k], self.terms[j]
        if tk.p == 1 and tj.p == 1:
            return A * (lk[0, 0] * lj[0, 0])
        if sp.issparse(A):
            Lk = sp.kron(sp.identity(tk.nlevels, format="csr"), sp.csr_matrix(lk.T), format="csr")
            Lj = sp.kron(sp.identity(tj.nlevels, format="csr"), sp.csr_matrix(lj), format="csr")
            return (Lk @ A @ Lj).tocsr()
        A4 = A.reshape(tk.nlevels, tk.p, tj.nlevels, tj.p)
        return np.einsum("ap,kalb,bq->kplq", lk, A4, lj).reshape(tk.q, tj.q)

    def _right_solve(self, M, j: int):
        """``M L_jj^{-T}`` for ``M`` sparse or dense."""
        t = self.terms[j]
        if self.diag_kind[j] == "dense":
            Md = M.toarray() if sp.issparse(M) else M
            return sla.solve_triangular(self.Ldiag[j], Md.T, lower=True, check_finite=False).T
        Linv = self.Linv[j]
        if t.p == 1:
            dinv = Linv[:, 0, 0]
            if sp.issparse(M):
                M = M.tocsr(copy=True)
                M.data *= dinv[M.indices]
                return M
            return M * dinv[None, :]
        if sp.issparse(M):
            B = sp.bsr_matrix(
                (np.ascontiguousarray(Linv.transpose(0, 2, 1)), np.arange(t.nlevels), np.arange(t.nlevels + 1)),
                shape=(t.q, t.q),
            )
            return (M @ B).tocsr()
        rows = M.shape[0]
        return np.einsum("rlp,lqp->rlq", M.reshape(rows, t.nlevels, t.p), Linv).reshape(rows, t.q)

    @staticmethod
    def _minus(a, b):
        """``a − b``, sparse only when both are; never numpy.matrix (which sparse − dense returns)."""
        if sp.issparse(a) and sp.issparse(b):
            return a - b
        return (a.toarray() if sp.issparse(a) else a) - (b.toarray() if sp.issparse(b) else b)

    @staticmethod
    def _mul_t(a, b):
        """``a @ b.T`` for sparse or dense operands."""
        if sp.issparse(a) and sp.issparse(b):
            return a @ b.T
        if sp.issparse(a):
            return (a @ np.asarray(b).T)
        if sp.issparse(b):
            return (b @ a.T).T
        return a @ b.T

    def _diag_fill(self, S, t: RandomEffectsTerm) -> np.ndarray:
        """Level blocks of ``S S'`` for a sparse ``S`` whose product is block diagonal."""
        if t.p == 1:
            sq = S.multiply(S) if sp.issparse(S) else S * S
            return np.asarray(sq.sum(axis=1)).reshape(t.nlevels, 1, 1)
        P = (S @ S.T).tocoo()
        out = np.zeros((t.nlevels, t.p, t.p))
        np.add.at(out, (P.row // t.p, P.row % t.p, P.col % t.p), P.data)
        return out

    # ------------------------------------------------------------------ update
    def update(self, theta: np.ndarray) -> "BlockedCholesky":
        """Refactor for covariance parameters ``theta`` (lme4's order); returns ``self``."""
        cp = self.cp
        try:
            for k, t in enumerate(self.terms):
                self.lam[k] = lam = t.lambda_matrix(theta[self.theta_slices[k]])
                for j in range(k):
                    M = self._scaled(k, j)
                    for m in range(j):
                        M = self._minus(M, self._mul_t(self.Loff[k, m], self.Loff[j, m]))
                    if self.off_kind[k, j] == "dense" and sp.issparse(M):
                        M = M.toarray()
                    self.Loff[k, j] = self._right_solve(M, j)
                D = np.matmul(np.matmul(lam.T, cp.diag[k]), lam)
                if self.diag_kind[k] == "blockdiag":
                    D = D + np.eye(t.p)
                    for j in range(k):
                        D = D - self._diag_fill(self.Loff[k, j], t)
                    if t.p == 1:
                        L = np.sqrt(D)
                        self.Linv[k] = 1.0 / L
                    else:
                        L = np.linalg.cholesky(D)
                        self.Linv[k] = np.linalg.inv(L)
                    self.Ldiag[k] = L
                else:
                    Dd = np.zeros((t.q, t.q))
                    rows, cols = self._dense_index[k]
                    Dd[rows, cols] = D
                    Dd[np.diag_indices(t.q)] += 1.0
                    for j in range(k):
                        if (k, j) in self._gram:
                            g = self._gram[k, j]
                            scale = (lam[0, 0] * self.lam[j][0, 0]) ** 2
                            w = scale * self.Linv[j][:, 0, 0] ** 2
                            if isinstance(g, SchurFill):
                                g.subtract(Dd, self._gram_values[k, j], w)
                            else:
                                Dd[g.rows, g.cols] -= g.lower(self._gram_values[k, j], w)
                            continue
                        prod = self._mul_t(self.Loff[k, j], self.Loff[k, j])
                        Dd -= prod.toarray() if sp.issparse(prod) else prod
                    # LAPACK potrf in place on Dd' (Fortran order, the same memory), whose upper triangle is Dd's
                    # lower one: no copies of the q×q block. Only the lower triangle of Ldiag[k] is the factor.
                    c, info = sla.lapack.dpotrf(Dd.T, lower=0, overwrite_a=1, clean=0)
                    if info != 0:
                        raise np.linalg.LinAlgError(f"leading minor {info} of the dense block is not positive definite")
                    self.Ldiag[k] = Dd if np.shares_memory(c, Dd) else np.ascontiguousarray(c.T)
            XX = cp.xx.copy()
            for j, t in enumerate(self.terms):
                M = np.matmul(cp.zx[j].reshape(self.r, t.nlevels, t.p), self.lam[j]).reshape(self.r, t.q)
                for m in range(j):
                    M = self._minus(M, self._mul_t(self.LX[m], self.Loff[j, m]))
                self.LX[j] = LXj = self._right_solve(M, j)
                XX -= LXj @ LXj.T
            self.LXX = _cholesky_last_pivot_may_vanish(XX)
        except (np.linalg.LinAlgError, sla.LinAlgError) as exc:
            raise ModelError(f"the penalised system is not positive definite at theta={np.asarray(theta).tolist()}: {exc}") from None
        return self

    # ------------------------------------------------------------------ reads
    def logdet_z(self) -> float:
        """``log det(Λ'Z'ZΛ + I) = 2 Σ log diag(L_ZZ)``."""
        total = 0.0
        for k, t in enumerate(self.terms):
            L = self.Ldiag[k]
            d = np.diagonal(L, axis1=-2, axis2=-1) if self.diag_kind[k] == "blockdiag" else np.diag(L)
            total += 2.0 * float(np.sum(np.log(d)))
        return total

    def logdet_x(self) -> float:
        """``log det(R_X'R_X)``, the REML correction."""
        p = self.r - 1
        return 2.0 * float(np.sum(np.log(np.diag(self.LXX)[:p])))

    def pwrss(self) -> float:
        """Penalised weighted residual sum of squares, the square of the last diagonal element of L."""
        return float(self.LXX[-1, -1] ** 2)

    def lower_zz(self) -> sp.csr_matrix:
        """The random-effects part of L as one sparse lower-triangular ``q × q`` matrix."""
        blocks: list[list[object]] = [[None] * self.K for _ in range(self.K)]
        for k, t in enumerate(self.terms):
            if self.diag_kind[k] == "blockdiag":
                blocks[k][k] = sp.bsr_matrix(
                    (np.ascontiguousarray(self.Ldiag[k]), np.arange(t.nlevels), np.arange(t.nlevels + 1)),
                    shape=(t.q, t.q),
                )
            else:
                blocks[k][k] = sp.csr_matrix(np.tril(self.Ldiag[k]))
            for j in range(k):
                blocks[k][j] = sp.csr_matrix(self.Loff[k, j])
        return sp.bmat(blocks, format="csr")

    def lower_xz(self) -> np.ndarray:
        """The ``[X y]`` rows of L in the random-effects columns, ``r × q``."""
        return np.hstack(self.LX)

    def lambdas(self) -> list[np.ndarray]:
        """The current ``p_k × p_k`` factors λ_k."""
        return [lam.copy() for lam in self.lam]
