"""Kenward–Roger for any linear mixed model: random effects with a residual structure, variance
functions, prior weights (SAS's ``RANDOM`` + ``REPEATED`` with ``DDFM=KR``).

The marginal covariance is block diagonal over *clusters*, the connected components of rows linked
by a shared random-effects level or a shared subject of the residual structure (a site and its
subjects)::

    V_c = Z_c G Z_c' + D_c R_c D_c,    D = diag(g_i(δ) / √w_i)

with ``G`` block diagonal by term and level, ``R_c`` block diagonal by subject (the structure's
covariance at the subject's times, or σ²I without one) and ``D`` the variance function and prior
weights. Kenward & Roger's quantities (:mod:`.kr_residual` gives the formulas) are sums over clusters
of dense ``n_c × n_c`` products, in the parameters ``γ``:

* each random-effects term's linear parameters (its variances and covariances, as in pbkrtest; a shared
  variance for the homogeneous structures); the first-order method takes every element of ``G`` for a
  structure not linear in its parameters, and the full method refuses it;
* the residual structure in SAS's parameterisation (:mod:`..covariance.kr_parameters`; ``car1`` as
  SAS's ``SP(EXP)``: σ² and the range ``d`` of ``exp(−|Δt|/d)``), or σ² without one;
* the variance function's δ (nlme's parameters).

``∂V/∂γ`` is exact for the random effects (``Z_c E_r Z_c'``) and a central difference for the
residual part; ``∂²V`` (SAS's full method) is a central difference of the residual part, which is the
only part not linear in γ. ``W`` is Satterthwaite's covariance of our parameters carried to γ by the
Jacobian. The cost is ``Σ_c n_c³``, so clusters are limited to :data:`MAX_CLUSTER` rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ..covariance import kr_parameters as sas
from ..exceptions import ModelError
from .ddf import KenwardRoger
from .kr_residual import adjusted_covariance, covariance_in_gamma, first_derivatives, second_derivatives

if TYPE_CHECKING:
    from ..results import LinearMixedModelResults

#: Largest cluster (rows sharing random-effects levels or subjects) the dense computation accepts.
MAX_CLUSTER = 3000


def clusters(terms: tuple, subject: np.ndarray | None, n: int) -> list[np.ndarray]:
    """Row indices of each connected component of rows linked by a random-effects level or a subject."""
    offset = 0
    rows = np.arange(n)
    blocks = []
    for refs in [t.refs for t in terms] + ([] if subject is None else [subject]):
        refs = np.asarray(refs)
        blocks.append(refs + offset)
        offset += int(refs.max()) + 1 if refs.size else 0
    if not blocks:
        return [np.array([i]) for i in range(n)]
    r = np.concatenate([rows] * len(blocks))
    c = np.concatenate(blocks)
    incidence = sp.csr_matrix((np.ones(r.size), (r, c)), shape=(n, offset))
    graph = sp.bmat([[None, incidence], [incidence.T, None]], format="csr")
    _, label = connected_components(graph, directed=False)
    row_label = label[:n]
    order = np.argsort(row_label, kind="stable")
    splits = np.flatnonzero(np.diff(row_label[order])) + 1
    return np.split(order, splits)


class KenwardRogerGeneral(KenwardRoger):
    """Kenward–Roger df and adjusted covariance of a REML fit with any residual structure and random effects.

    Parameters
    ----------
    result : LinearMixedModelResults
    first_order : bool
        Leave out the second-derivative term (SAS's ``KR(FIRSTORDER)``).
    """

    method = "Kenward-Roger"

    def __init__(self, result: "LinearMixedModelResults", first_order: bool = False) -> None:
        if not result.reml:
            raise ModelError("Kenward-Roger's method is only available for REML fits; refit with REML or use Satterthwaite")
        model = result.model
        w = model.whitening
        if w is not None and not (w.structure.kind == "car1" or (w.structure.discrete and sas.supported(w.structure.kind))):
            raise ModelError(f"Kenward-Roger df are not available for the {w.structure.kind} structure")
        self.result = result
        self.first_order = first_order
        self.method = "Kenward-Roger (first order)" if first_order else "Kenward-Roger"
        self.warnings: list[str] = []
        self.phi = result.vcov.to_numpy()
        self._subjects = self._subject_rows()
        self._bases = []
        for t in model.design.terms:
            basis = t.structure.linear_basis()
            if basis is None:
                if not first_order:
                    raise ModelError(
                        f"Kenward-Roger's second-order term is not available for the {t.structure.description} covariance "
                        f"of ({' + '.join(t.cnames)} | {t.group}), which is not linear in its parameters; use "
                        "ddf='kenward-roger-linear' or 'satterthwaite'"
                    )
                # the first-order adjustment does not depend on the parameterisation: every element of G
                basis = [[(a, b)] for b in range(t.p) for a in range(b, t.p)]
            self._bases.append(basis)
        self.clusters = clusters(model.design.terms, None if w is None else w.binding.subject, model.nobs)
        largest = max(c.size for c in self.clusters)
        if largest > MAX_CLUSTER:
            raise ModelError(
                f"Kenward-Roger df need the covariance of each group of linked rows as a dense matrix; the largest has "
                f"{largest} rows (limit {MAX_CLUSTER}); use ddf='satterthwaite'"
            )
        self._compute()

    # ------------------------------------------------------------------ the residual part D R D
    def _subject_rows(self) -> list[tuple[np.ndarray, np.ndarray, int]]:
        """``(rows, times, group)`` of every subject of the residual structure (every row alone without one)."""
        w = self.result.model.whitening
        if w is None:
            return [(np.array([i]), np.zeros(1, dtype=np.intp), 0) for i in range(self.result.nobs)]
        out = []
        units = w.binding.patterns if w.structure.discrete else w.binding.batches
        for u in units:
            for i in range(u.rows.shape[0]):
                times = u.times if np.ndim(u.times) == 1 else u.times[i]
                out.append((u.rows[i], times, u.group))
        return out

    def _gamma_residual(self, rho: np.ndarray, sigma: float) -> np.ndarray:
        """γ of the residual structure at our parameters (σ² alone without a structure)."""
        w = self.result.model.whitening
        if w is None:
            return np.array([sigma**2])
        s = w.structure
        if s.kind == "car1":
            out = []
            for g in range(s.n_groups):
                scale, _, c = s.split(rho, g)
                phi = 1.0 / (1.0 + np.exp(-c[0]))
                out += [sigma**2 * np.exp(2 * scale), -1.0 / np.log(phi)]
            return np.asarray(out)
        return sas.to_gamma(s.kind, [sigma**2 * s.cov_full(rho, g) for g in range(s.n_groups)])

    def _residual_blocks(self, gamma: np.ndarray, delta: np.ndarray) -> list[np.ndarray]:
        """``D_c R_c D_c`` of every cluster at residual γ and variance-function δ."""
        model = self.result.model
        w = model.whitening
        d = model.residual_sd_scale(delta)
        if w is None:
            full = [gamma[0] * np.ones((1, 1))]
            kind = "iid"
        else:
            s = w.structure
            kind = s.kind
            full = None if kind == "car1" else sas.from_gamma(kind, gamma, s.n_levels, s.n_groups)
        out = []
        for rows, local in zip(self.clusters, self._local):
            Rc = np.zeros((rows.size, rows.size))
            for sub in local:
                loc, times, group = sub
                if kind == "car1":
                    var, rng = gamma[2 * group], gamma[2 * group + 1]
                    block = var * np.exp(-np.abs(np.subtract.outer(times, times)) / rng)
                else:
                    block = full[group][np.ix_(times, times)]
                Rc[np.ix_(loc, loc)] = block
            if d is not None:
                dc = d[rows]
                Rc = Rc * np.outer(dc, dc)
            out.append(Rc)
        return out

    # ------------------------------------------------------------------ γ of our parameters
    def _gamma(self, varpar: np.ndarray) -> np.ndarray:
        model = self.result.model
        params, sigma = varpar[:-1], varpar[-1]
        k, kr = model.n_theta, model.n_theta + model.n_rho
        out, off = [], 0
        for t, basis in zip(model.design.terms, self._bases):
            G = t.structure.covariance(params[off:off + t.ntheta], sigma)
            out += [G[elements[0]] for elements in basis]
            off += t.ntheta
        return np.r_[out, self._gamma_residual(params[k:kr], sigma), params[kr:]]

    def _compute(self) -> None:
        res = self.result
        model = res.model
        X = model.design.X
        p = X.shape[1]
        # local positions of each subject's rows within its cluster
        where = np.empty(model.nobs, dtype=np.intp)
        cluster_of = np.empty(model.nobs, dtype=np.intp)
        for c, rows in enumerate(self.clusters):
            where[rows] = np.arange(rows.size)
            cluster_of[rows] = c
        self._local = [[] for _ in self.clusters]
        for rows, times, group in self._subjects:
            self._local[cluster_of[rows[0]]].append((where[rows], np.asarray(times), group))

        varpar = np.r_[res.theta, res.sigma]
        gamma = self._gamma(varpar)
        m = gamma.size
        W = covariance_in_gamma(self._gamma, varpar, res.ddf_calculator("satterthwaite").vcov_varpar)

        n_g = sum(len(b) for b in self._bases)
        n_delta = 0 if model.variance is None else res.theta.size - model.n_theta - model.n_rho
        n_r = m - n_g - n_delta
        psi = gamma[n_g:]

        def resid(v: np.ndarray) -> list[np.ndarray]:
            return self._residual_blocks(v[:n_r], v[n_r:])

        base = resid(psi)
        d1 = first_derivatives(resid, psi)
        d2: dict[tuple[int, int], list[np.ndarray]] = {}
        linear = model.whitening is None or model.whitening.structure.kind in sas.LINEAR
        if not self.first_order and not (linear and n_delta == 0):
            d2 = {(n_g + r, n_g + s): val for (r, s), val in second_derivatives(resid, psi, base, 1e-7).items()}

        # random-effects derivatives: Z_c E_r Z_c' per term parameter
        g_terms = [(t, elements) for t, basis in zip(model.design.terms, self._bases) for elements in basis]
        sigma2 = res.sigma**2
        P = [np.zeros((p, p)) for _ in range(m)]
        Q = {(r, s): np.zeros((p, p)) for r in range(m) for s in range(r, m)}
        Rt = {key: np.zeros((p, p)) for key in d2}
        lam = res.lambdas
        for c, rows in enumerate(self.clusters):
            V = base[c].copy()
            dV = []
            for t, elements in g_terms:
                zt, lev = t.z[rows], t.refs[rows]
                same = lev[:, None] == lev[None, :]
                d = np.zeros((rows.size, rows.size))
                for a, b in elements:
                    M = np.outer(zt[:, a], zt[:, b]) * same
                    d += M if a == b else M + M.T
                dV.append(d)
            for t, L in zip(model.design.terms, lam):
                zt, lev = t.z[rows], t.refs[rows]
                same = lev[:, None] == lev[None, :]
                V += sigma2 * (zt @ (L @ L.T) @ zt.T) * same
            dV += [d1[r][c] for r in range(psi.size)]
            Vinv = np.linalg.inv(V)
            B = Vinv @ X[rows]
            MB = [d @ B if np.any(d) else None for d in dV]
            for r in range(m):
                if MB[r] is None:
                    continue
                P[r] -= B.T @ MB[r]
                VM = Vinv @ MB[r]
                for s in range(r, m):
                    if MB[s] is not None:
                        Q[r, s] += VM.T @ MB[s]
            for key, val in d2.items():
                Rt[key] += B.T @ val[c] @ B
        self.P, self.Q, self.W = P, Q, W
        self.vcov_adjusted = adjusted_covariance(self.phi, P, Q, W, Rt)
