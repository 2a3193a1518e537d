"""Penalised iteratively reweighted least squares (PIRLS): the conditional modes at a given θ.

For spherical random effects ``u`` (``b = Λ_θ u``) the mode minimises the penalised deviance
(Bates et al. 2015; lme4's ``pwrssUpdate``)::

    pdev(u[, β]) = Σᵢ devresᵢ(μᵢ) + ‖u‖²,   η = offset + Xβ + ZΛ_θ u,   μ = g⁻¹(η)

Each iteration solves a penalised weighted least-squares problem for the working response
``z = η − offset + (dℓ/dη)/w`` with weights ``w``: the weighted cross-products of ``[Z X z]`` are re-formed
(:class:`~.weighted.WeightedCrossProducts`) and factored by the engine's blocked Cholesky, whose block
structure (and Gram maps) is built once and shared (``BlockedCholesky.with_crossproducts``). Two systems,
as glmer: ``joint`` (stage 1, nAGQ = 0: ``u`` and ``β`` together) and ``u`` alone (stage 2: ``β`` fixed,
entering as an offset).

The iteration uses Newton steps (the observed information) whenever its weights are positive, so it
converges quadratically for every link, and falls back to Fisher scoring otherwise. A step that increases
``pdev`` is halved (up to 20 times, as lme4). The iteration stops when a step moves ``η`` and ``u`` by less
than ``tol``; then the factor is formed once more at the final point with the weights the Laplace
approximation asks for (expected information for lme4's families, observed for glmmTMB's NB2), so that
``log|L|²`` belongs to the mode itself and not to the previous iterate. The deviance so computed is a
smooth function of the parameters to ~1e-12, which the finite-difference Hessian (for the standard
errors) needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from ..engine.factor import BlockedCholesky
from ..exceptions import ModelError
from ..terms import RandomEffectsTerm
from .family import Family
from .weighted import WeightedCrossProducts

#: Step halvings before PIRLS gives up (lme4's ``maxstephalfit``).
MAX_HALVINGS = 20


class PirlsError(ModelError):
    """PIRLS could not find the conditional modes (no decrease after step halving, or no convergence)."""


@dataclass
class Mode:
    """The conditional modes at one θ (and β, in stage 2), with the factor at them.

    Attributes
    ----------
    u : numpy.ndarray
        Spherical random effects (length q).
    beta : numpy.ndarray
        Fixed effects (solved for in the joint system, given otherwise).
    eta, mu : numpy.ndarray
        Linear predictor (with the offset) and mean.
    factor : BlockedCholesky
        The factor at the mode with the Laplace weights.
    devsum : float
        ``Σ devres``.
    devvar : float
        ``Σ dev_variable``: ``devsum`` less its part that does not depend on μ.
    iterations : int
    flat : bool
        Stopped because the penalised deviance no longer changed while the steps did not shrink
        (a direction along which the deviance is flat: separation).
    """

    u: np.ndarray
    beta: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    factor: BlockedCholesky
    devsum: float
    devvar: float
    iterations: int
    flat: bool = False

    @property
    def sqr_u(self) -> float:
        """``‖u‖²``."""
        return float(self.u @ self.u)

    @property
    def pdev(self) -> float:
        """The penalised deviance ``Σ devres + ‖u‖²``."""
        return self.devsum + self.sqr_u


@dataclass(frozen=True)
class Constants:
    """What the deviance and ``aic`` of one family hold that does not depend on μ.

    Attributes
    ----------
    dev : numpy.ndarray
        ``dev_constant`` per row.
    dev_sum : float
    aic : float or None
        ``aic − Σ dev_variable`` (None when R's ``aic`` does not split so: non-integer binomial trials).
    """

    dev: np.ndarray
    dev_sum: float
    aic: float | None


def back_solve(f: BlockedCholesky, rhs: list[np.ndarray]) -> list[np.ndarray]:
    """Solve ``L_ZZ' u = rhs`` by blocks (``rhs``: one vector per term), last term first."""
    K = f.K
    out: list[np.ndarray] = [np.empty(0)] * K
    for k in reversed(range(K)):
        t = f.terms[k]
        r = np.array(rhs[k], dtype=float)
        for m in range(k + 1, K):
            r -= f.Loff[m, k].T @ out[m]
        if f.diag_kind[k] == "dense":
            out[k] = sla.solve_triangular(f.Ldiag[k], r, lower=True, trans="T", check_finite=False)
        elif t.p == 1:
            out[k] = r / f.Ldiag[k][:, 0, 0]
        else:
            out[k] = np.einsum("lba,lb->la", f.Linv[k], r.reshape(t.nlevels, t.p)).reshape(-1)
    return out


def solve_modes(f: BlockedCholesky, p: int) -> tuple[np.ndarray, np.ndarray]:
    """``(u, β)`` of the penalised least-squares problem the factor holds (``p`` fixed effects, then the response)."""
    if p:
        beta = sla.solve_triangular(f.LXX[:p, :p].T, f.LXX[p, :p], lower=False, check_finite=False)
        rhs = [LX[p] - LX[:p].T @ beta for LX in f.LX]
    else:
        beta = np.zeros(0)
        rhs = [LX[0] for LX in f.LX]
    return np.concatenate(back_solve(f, rhs)) if f.K else np.zeros(0), beta


class Pirls:
    """The PIRLS engine of one model: the response, the design and the two weighted systems.

    Parameters
    ----------
    terms : tuple of RandomEffectsTerm
    X : numpy.ndarray
        Fixed-effects matrix.
    y, wt, offset : numpy.ndarray
        Response (proportions for the binomial), prior weights (trials for the binomial), offset.
    tol : float
        Largest change of ``η`` and ``u`` in the last step for convergence.
    maxit : int
        Most iterations.
    """

    def __init__(
        self,
        terms: tuple[RandomEffectsTerm, ...],
        X: np.ndarray,
        y: np.ndarray,
        wt: np.ndarray,
        offset: np.ndarray,
        *,
        tol: float = 1e-8,
        maxit: int = 100,
    ) -> None:
        self.terms = terms
        self.X = X
        self.y = y
        self.wt = wt
        self.offset = offset
        self.tol = tol
        self.maxit = maxit
        self.p = X.shape[1]
        self.q = sum(t.q for t in terms)
        self._gram = {True: WeightedCrossProducts(terms, X), False: WeightedCrossProducts(terms, X[:, :0])}
        self._base: dict[bool, BlockedCholesky] = {}
        self._scratch: dict[bool, BlockedCholesky] = {}
        self._constants: tuple[Family, Constants] | None = None
        self._slices = np.cumsum([0] + [t.ntheta for t in terms])
        self._qs = np.cumsum([0] + [t.q for t in terms])

    # ------------------------------------------------------------------ pieces
    def lambdas(self, theta: np.ndarray) -> list[np.ndarray]:
        return [t.lambda_matrix(theta[self._slices[k] : self._slices[k + 1]]) for k, t in enumerate(self.terms)]

    def random_part(self, lams: list[np.ndarray], u: np.ndarray) -> np.ndarray:
        """``ZΛu`` (one value per row)."""
        out = np.zeros(len(self.y))
        for k, (t, lam) in enumerate(zip(self.terms, lams)):
            b = u[self._qs[k] : self._qs[k + 1]].reshape(t.nlevels, t.p) @ lam.T
            out += t.z[:, 0] * b[t.refs, 0] if t.p == 1 else np.einsum("np,np->n", t.z, b[t.refs])
        return out

    def factor(self, joint: bool, w: np.ndarray, z: np.ndarray, theta: np.ndarray) -> BlockedCholesky:
        """The factor of the weighted system (the block structure is built on first use and shared)."""
        cp = self._gram[joint].build(w, z)
        base = self._base.get(joint)
        if base is None:
            base = self._base[joint] = BlockedCholesky(self.terms, cp)
        return base.with_crossproducts(cp).update(theta)

    def start_eta(self, family: Family) -> np.ndarray:
        """``g(mustart)``, R's starting linear predictor."""
        return family.link.linkfun(family.mustart(self.y, self.wt))

    def constants(self, family: Family) -> Constants:
        """The parts of the deviance and of ``aic`` that do not depend on μ (cached for the last family)."""
        cached = self._constants
        if cached is not None and cached[0] == family:
            return cached[1]
        dev = family.dev_constant(self.y, self.wt)
        out = Constants(dev=dev, dev_sum=float(dev.sum()), aic=family.aic_constant(self.y, self.wt))
        self._constants = (family, out)
        return out

    def devvar(self, family: Family, mu: np.ndarray) -> float:
        """``Σ dev_variable(μ)``: the penalised deviance's data part less its constant."""
        return float(np.sum(family.dev_variable(self.y, mu, self.wt)))

    # ------------------------------------------------------------------ the iteration
    def run(
        self,
        theta: np.ndarray,
        family: Family,
        beta: np.ndarray | None = None,
        start: Mode | None = None,
    ) -> Mode:
        """The conditional modes at ``theta``: of ``(u, β)`` jointly when ``beta`` is None, else of ``u`` at ``beta``.

        Parameters
        ----------
        theta : numpy.ndarray
            Covariance parameters.
        family : Family
        beta : numpy.ndarray, optional
            Fixed effects held fixed (stage 2); None solves for them too (stage 1).
        start : Mode, optional
            Where to start (the previous evaluation's modes); R's ``mustart`` otherwise.

        Raises
        ------
        PirlsError
            When step halving cannot reduce the penalised deviance, or the iteration does not converge.
        """
        theta = np.asarray(theta, dtype=float)
        joint = beta is None
        lams = self.lambdas(theta)
        fixed = self.offset if joint else self.offset + self.X @ beta
        const = self.constants(family)
        link = family.link

        def predictor(u: np.ndarray, b: np.ndarray) -> np.ndarray:
            return fixed + (self.X @ b if joint else 0.0) + self.random_part(lams, u)

        if start is not None and start.u.size == self.q:
            u = start.u.copy()
            b = start.beta.copy() if joint else np.asarray(beta, dtype=float)
            eta = predictor(u, b)
            mu = link.linkinv(eta)
            dv = self.devvar(family, mu)
            if not np.isfinite(dv):
                return self.run(theta, family, beta=beta)
            pdev = const.dev_sum + dv + float(u @ u)
        else:
            u = np.zeros(self.q)
            b = np.zeros(self.p) if joint else np.asarray(beta, dtype=float)
            eta = self.start_eta(family)
            mu = link.linkinv(eta)
            dv, pdev = np.nan, np.inf
        flat = False
        newton = True
        laplace_weights = family.canonical or family.information == "observed"
        for it in range(1, self.maxit + 1):
            w, zwork, used_newton = self._working(family, eta, mu, fixed, newton)
            f = self._scratch_factor(joint, w, zwork, theta)
            u_new, b_new = solve_modes(f, self.p if joint else 0)
            if not joint:
                b_new = b
            eta_new = predictor(u_new, b_new)
            mu_new = link.linkinv(eta_new)
            dv_new = self.devvar(family, mu_new)
            pdev_new = const.dev_sum + dv_new + float(u_new @ u_new)
            halvings = 0
            tol_up = 1e-12 * abs(pdev) if np.isfinite(pdev) else np.inf
            while not (pdev_new <= pdev + tol_up) and halvings < MAX_HALVINGS and np.isfinite(pdev):
                u_new, b_new = 0.5 * (u + u_new), 0.5 * (b + b_new)
                eta_new = predictor(u_new, b_new)
                mu_new = link.linkinv(eta_new)
                dv_new = self.devvar(family, mu_new)
                pdev_new = const.dev_sum + dv_new + float(u_new @ u_new)
                halvings += 1
            if not np.isfinite(pdev_new):
                raise PirlsError(f"PIRLS gave an undefined penalised deviance at theta={theta.tolist()}")
            if pdev_new > pdev + tol_up:
                if pdev_new - pdev > 1e-9 * abs(pdev):
                    raise PirlsError(
                        f"PIRLS step-halvings failed to reduce the penalised deviance at theta={theta.tolist()} "
                        f"({pdev:.10g} -> {pdev_new:.10g})"
                    )
                break  # no decrease within rounding: converged as far as arithmetic allows
            if halvings:
                newton = False  # a Newton step overshot: Fisher steps from here
            step = max(float(np.max(np.abs(eta_new - eta), initial=0.0)), float(np.max(np.abs(u_new - u), initial=0.0)))
            change = abs(pdev - pdev_new)
            u, b, eta, mu, dv = u_new, b_new, eta_new, mu_new, dv_new
            pdev = pdev_new
            # Newton steps converge quadratically: one below tol leaves the point ~tol² from the mode;
            # Fisher steps converge linearly and must get smaller still
            if step < (self.tol if used_newton else self.tol * 1e-3):
                if step < self.tol * 1e-4 and used_newton and laplace_weights:
                    # the factor of this step is at a point ~1e-12 from the mode, with the Laplace weights:
                    # the one the deviance needs (saves a factorisation)
                    return Mode(u=u, beta=b, eta=eta, mu=mu, factor=self._fresh(joint, f), devsum=const.dev_sum + dv,
                                devvar=dv, iterations=it, flat=False)
                break
            if change <= 1e-13 * abs(pdev_new) and it > 2:
                flat = True  # the deviance no longer moves though the steps do: a direction of separation
                break
        else:
            raise PirlsError(f"PIRLS did not converge in {self.maxit} iterations at theta={theta.tolist()}")
        w, zwork, _ = self._working(family, eta, mu, fixed, family.information == "observed")
        f = self.factor(joint, w, zwork, theta)
        return Mode(u=u, beta=b, eta=eta, mu=mu, factor=f, devsum=const.dev_sum + dv, devvar=dv, iterations=it, flat=flat)

    def _fresh(self, joint: bool, scratch: BlockedCholesky) -> BlockedCholesky:
        """A factor of its own with the values of the work factor (handed out in a Mode, so never reused)."""
        out = self._base[joint].with_crossproducts(scratch.cp)
        # update() assigns into these containers: the copy must hold its own
        out.lam, out.Ldiag, out.Linv = list(scratch.lam), list(scratch.Ldiag), list(scratch.Linv)
        out.Loff, out.LX, out.LXX = dict(scratch.Loff), list(scratch.LX), scratch.LXX
        return out

    def _scratch_factor(self, joint: bool, w: np.ndarray, z: np.ndarray, theta: np.ndarray) -> BlockedCholesky:
        """The factor of one iteration, in a work object reused across iterations (never handed out)."""
        cp = self._gram[joint].build(w, z)
        scratch = self._scratch.get(joint)
        if scratch is None:
            self.factor(joint, w, z, theta)
            scratch = self._scratch[joint] = self._base[joint].with_crossproducts(cp)
        else:
            scratch.cp = cp
            scratch._bind_gram()
        return scratch.update(theta)

    def _working(
        self, family: Family, eta: np.ndarray, mu: np.ndarray, fixed: np.ndarray, observed: bool
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        """Weights and working response (less the fixed part) at ``η``, and whether they are Newton's.

        Newton's weights (the observed information) are used when asked for and positive; Fisher's
        otherwise (the same for canonical links).
        """
        y, wt = self.y, self.wt
        w, score = family.working(y, eta, mu, wt, "observed" if observed else "expected")
        if observed and not np.all(w[wt > 0] > 0):
            w, score = family.working(y, eta, mu, wt, "expected")
            observed = family.canonical
        adj = np.divide(score, w, out=np.zeros_like(score), where=w > 0)
        return w, eta - fixed + adj, observed or family.canonical
