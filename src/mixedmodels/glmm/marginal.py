"""Population-averaged (marginal) means, odds ratios and rate ratios of a GLMM, beside its conditional effects.

In a GLMM the fixed effects are *conditional* (subject-specific): ``g⁻¹(x'β)`` is the mean of a unit
whose random effects are 0, and ``exp(β_j)`` an odds or rate ratio within a unit. Averaging over the
random-effects distribution gives the *marginal* (population-averaged) mean

    m(x) = E_b[g⁻¹(x'β + z'b)],   b ~ N(0, Σ),

which differs from ``g⁻¹(x'β)`` because ``g⁻¹`` is not linear; the LMM's identity link makes the two
coincide (collapsibility), a logit or probit link does not (log links only shift the intercept).

Computation
-----------
For one row, ``z'b`` is a sum of independent normal terms, so it is itself ``N(0, s²)`` with
``s² = Σ_k z_k'Σ_k z_k`` whatever the number of terms, their correlations or their crossing: the mean
is the one-dimensional integral ``∫ g⁻¹(η + s t) φ(t) dt``, computed by Gauss–Hermite quadrature
(:data:`NODES` nodes). No Monte Carlo is needed; the quadrature error is reported as the largest change
from half the nodes. Probit: ``m = Φ(η / √(1 + s²))`` exactly; log: ``m = exp(η + s²/2)``.

Rows are emmeans' reference grid (factors at their levels, covariates at their means), ``z`` read off
each grid row's fixed-effects columns; means for a factor average the grid cells over the other
variables with equal weights (the marginal means) or average their linear predictors before ``g⁻¹``
(the conditional means, as emmeans' ``type = "response"``).

Uncertainty: delta method over (θ, β) with their joint covariance ``2 H⁻¹`` (the Hessian of the
deviance that gives ``vcov``; β alone when it is not available), the derivatives by central
differences. Intervals are formed on the link scale (logit of a probability, log of a rate or ratio)
and transformed back, so they stay in range.
"""

from __future__ import annotations

from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.special import ndtri

from ..exceptions import ModelError
from ..report.table import Table

if TYPE_CHECKING:
    from .results import GeneralizedLinearMixedModelResults

#: Gauss–Hermite nodes of the marginal means.
NODES = 64

EXPLANATION = (
    "In a GLMM the fixed effects are conditional (subject-specific): they compare units with the same random "
    "effects, whereas marginal (population-averaged) effects compare the means of the whole population, averaged "
    "over the random effects; with a nonlinear link the two differ (the LMM's collapsibility is lost), and marginal "
    "odds ratios are closer to 1."
)


def gauss_hermite_mean(linkinv, eta: np.ndarray, s: np.ndarray, nodes: int = NODES) -> np.ndarray:
    """``E[g⁻¹(η + s T)]``, ``T ~ N(0, 1)``, by Gauss–Hermite quadrature of ``nodes`` nodes (elementwise)."""
    x, w = np.polynomial.hermite_e.hermegauss(nodes)  # weight exp(−t²/2)
    w = w / np.sqrt(2.0 * np.pi)
    eta, s = np.broadcast_arrays(np.asarray(eta, dtype=float), np.asarray(s, dtype=float))
    vals = linkinv(eta[..., None] + s[..., None] * x)
    return vals @ w


class MarginalEffects:
    """Conditional and marginal means of a GLMM fit over a factor, and their ratios.

    Attributes
    ----------
    means : pandas.DataFrame
        One row per level of ``specs``: ``conditional`` (``g⁻¹`` of the mean linear predictor: a unit
        with random effects 0) and ``marginal`` (population-averaged) means with ``SE`` and asymptotic
        intervals ``asymp.LCL``/``asymp.UCL`` of each.
    ratios : pandas.DataFrame
        Pairs of levels (``"A / B"``): the conditional and marginal odds ratios (binomial) or mean
        ratios (other families) with delta-method SEs of their logs and intervals.
    quadrature_error : float
        Largest change in a marginal mean between :data:`NODES` and half as many nodes.
    explanation : str
    """

    def __init__(self, fit: GeneralizedLinearMixedModelResults, specs: str, *, level: float = 0.95,
                 nodes: int = NODES) -> None:
        from ..inference.emmeans import fit_view
        from ..inference.emmeans_grid import marginal_linfct, reference_grid

        if not 0 < level < 1:
            raise ModelError(f"level must be between 0 and 1, got {level}")
        self.fit, self.specs, self.level, self.nodes = fit, specs, level, nodes
        view = fit_view(fit)
        if specs not in view.variables:
            raise ModelError(f"{specs!r} is not a variable of the model's fixed effects (they are: {', '.join(view.variables)})")
        grid = reference_grid(view)
        if grid.nbasis is not None:
            raise ModelError("marginal effects need a full-rank fixed-effects design")
        marg = marginal_linfct(grid, [specs])
        self.levels = [str(v) for v in marg.levels[0]]
        if len(self.levels) < 2:
            raise ModelError(f"{specs!r} has one value in the reference grid (a covariate at its mean); marginal effects compare a factor's levels")
        kept = view.kept_columns
        self._X = grid.X[:, kept]
        self._offset = view.offset
        # weights of the grid cells in each mean: the linear function is K @ X, recover K by the grid's layout
        self._K = _cell_weights(grid, specs)
        if not np.allclose(self._K @ grid.X, marg.linfct):
            raise ModelError("internal: the grid weights do not reproduce emmeans' averaging")
        self._Z = self._random_columns(view.column_names, grid.X)
        self.binomial = fit.family.name == "binomial"
        self.ratio_name = "odds ratio" if self.binomial else "ratio"
        self._phi, self._V, self.uncertainty = self._parameters()
        est = self._evaluate(self._phi)
        alt = self._evaluate(self._phi, nodes=max(nodes // 2, 2))
        n = len(self.levels)
        self.quadrature_error = float(np.max(np.abs(est[n:] - alt[n:])))
        G = self._jacobian()
        self.explanation = EXPLANATION
        self.means = self._means_table(est, G)
        self.ratios = self._ratio_table(est, G)

    # ------------------------------------------------------------------ the function of (θ, β)
    def _random_columns(self, column_names: list[str], X_full: np.ndarray) -> list[np.ndarray]:
        """Each term's random-effects columns at the grid rows (read off the fixed-effects columns)."""
        where = {name: j for j, name in enumerate(column_names)}
        out = []
        for t in self.fit.terms:
            missing = [c for c in t.cnames if c not in where]
            if missing:
                raise ModelError(
                    f"marginal effects read the random-effects columns from the fixed effects; {', '.join(missing)} "
                    f"(of the term for {t.group}) is not a fixed-effects column"
                )
            out.append(X_full[:, [where[c] for c in t.cnames]])
        return out

    def _parameters(self) -> tuple[np.ndarray, np.ndarray, str]:
        fit = self.fit
        k, p = len(fit.theta), fit.nfixed
        phi = np.concatenate([fit.theta, fit.beta])
        H = fit.outcome.hessian
        if H is not None:
            try:
                Hinv = np.linalg.inv(H)[: k + p, : k + p]
                V = Hinv + Hinv.T
                if np.all(np.isfinite(V)) and np.linalg.eigvalsh(V).min() > 0:
                    return phi, V, "delta method over (θ, β), covariance 2H⁻¹ of the deviance"
            except np.linalg.LinAlgError:
                pass
        V = np.zeros((k + p, k + p))
        V[k:, k:] = fit.vcov.to_numpy()
        return phi, V, "delta method over β only (the Hessian in θ was not available or not positive definite)"

    def _sd(self, theta: np.ndarray) -> np.ndarray:
        """SD ``s`` of ``z'b`` at each grid row."""
        lambdas = self.fit.model.pirls.lambdas(theta)
        s2 = np.zeros(self._X.shape[0])
        for Z, lam in zip(self._Z, lambdas):
            s2 += np.sum((Z @ lam) ** 2, axis=1)
        return np.sqrt(s2)

    def _evaluate(self, phi: np.ndarray, nodes: int | None = None) -> np.ndarray:
        """Conditional then marginal means of the levels at parameters ``phi = (θ, β)``."""
        k = len(self.fit.theta)
        theta, beta = phi[:k], phi[k:]
        linkinv = self.fit.family.link.linkinv
        eta = self._X @ beta + self._offset
        conditional = linkinv(self._K @ eta)
        cell = gauss_hermite_mean(linkinv, eta, self._sd(theta), nodes or self.nodes)
        return np.concatenate([conditional, self._K @ cell])

    def _jacobian(self) -> np.ndarray:
        phi = self._phi
        G = np.empty((2 * len(self.levels), phi.size))
        for j in range(phi.size):
            h = 1e-5 * max(1.0, abs(phi[j]))
            up, dn = phi.copy(), phi.copy()
            up[j] += h
            dn[j] -= h
            G[:, j] = (self._evaluate(up) - self._evaluate(dn)) / (2 * h)
        return G

    # ------------------------------------------------------------------ tables
    def _link_of(self, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Interval scale of a mean (logit for a probability, log otherwise) and its derivative."""
        if self.binomial:
            return np.log(m / (1 - m)), 1.0 / (m * (1 - m))
        return np.log(m), 1.0 / m

    def _means_table(self, est: np.ndarray, G: np.ndarray) -> pd.DataFrame:
        z = float(ndtri(1 - (1 - self.level) / 2))
        n = len(self.levels)
        cov = G @ self._V @ G.T
        se = np.sqrt(np.diag(cov))
        scale, d = self._link_of(est)
        half = z * se * d
        inv = (lambda x: 1 / (1 + np.exp(-x))) if self.binomial else np.exp
        lo, hi = inv(scale - half), inv(scale + half)
        data: dict[str, Any] = {self.specs: self.levels}
        for name, sl in (("conditional", slice(0, n)), ("marginal", slice(n, 2 * n))):
            data[name] = est[sl]
            data[f"{name}.SE"] = se[sl]
            data[f"{name}.LCL"] = lo[sl]
            data[f"{name}.UCL"] = hi[sl]
        return Table(data)

    def _ratio_table(self, est: np.ndarray, G: np.ndarray) -> pd.DataFrame:
        z = float(ndtri(1 - (1 - self.level) / 2))
        n = len(self.levels)
        scale, d = self._link_of(est)
        J = d[:, None] * G  # derivatives of the log odds / log means
        cov = J @ self._V @ J.T
        rows = []
        for i, j in combinations(range(n), 2):
            row: dict[str, Any] = {"contrast": f"{self.levels[i]} / {self.levels[j]}"}
            for name, off in (("conditional", 0), ("marginal", n)):
                a, b = off + i, off + j
                log_ratio = scale[a] - scale[b]
                se = float(np.sqrt(max(cov[a, a] + cov[b, b] - 2 * cov[a, b], 0.0)))
                row[name] = float(np.exp(log_ratio))
                row[f"{name}.SE.log"] = se
                row[f"{name}.LCL"] = float(np.exp(log_ratio - z * se))
                row[f"{name}.UCL"] = float(np.exp(log_ratio + z * se))
            rows.append(row)
        return Table(rows)

    @property
    def table(self) -> pd.DataFrame:
        """Conditional and marginal ratios side by side with their intervals (the comparison to read)."""
        r = self.ratios
        pct = f"{100 * self.level:g}%"
        return Table({
            "contrast": r["contrast"],
            f"conditional {self.ratio_name}": r["conditional"],
            f"conditional {pct} CI": [f"{a:.3g} to {b:.3g}" for a, b in zip(r["conditional.LCL"], r["conditional.UCL"])],
            f"marginal {self.ratio_name}": r["marginal"],
            f"marginal {pct} CI": [f"{a:.3g} to {b:.3g}" for a, b in zip(r["marginal.LCL"], r["marginal.UCL"])],
        })

    def __str__(self) -> str:
        m = self.means
        what = "probability" if self.binomial else "mean"
        means = pd.DataFrame({
            self.specs: m[self.specs],
            f"conditional {what}": m["conditional"].map(lambda v: f"{v:.4g}"),
            f"marginal {what}": m["marginal"].map(lambda v: f"{v:.4g}"),
            "marginal CI": [f"{a:.4g} to {b:.4g}" for a, b in zip(m["marginal.LCL"], m["marginal.UCL"])],
        })
        lines = [
            f"Conditional and marginal effects of {self.specs} ({self.fit.family.name}, {self.fit.family.link.name} link)",
            "",
            means.to_string(index=False),
            "",
            self.table.to_string(index=False),
            "",
            self.explanation,
            (f"Marginal means: Gauss–Hermite quadrature over the random effects ({self.nodes} nodes, error "
             f"< {max(self.quadrature_error, 1e-16):.1g}); intervals: {self.uncertainty}."),
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready means, ratios and notes."""
        return {
            "specs": self.specs, "level": self.level, "means": self.means.to_dict("records"),
            "ratios": self.ratios.to_dict("records"), "ratio": self.ratio_name,
            "quadrature_error": self.quadrature_error, "uncertainty": self.uncertainty, "explanation": self.explanation,
        }


def _cell_weights(grid, specs: str) -> np.ndarray:
    """Equal weights of the grid cells in the mean of each level of ``specs`` (levels × cells)."""
    names = [v.name for v in grid.variables]
    codes = np.unravel_index(np.arange(grid.X.shape[0]), grid.dims, order="F")[names.index(specs)]
    nlev = grid.dims[names.index(specs)]
    K = np.zeros((nlev, grid.X.shape[0]))
    K[codes, np.arange(grid.X.shape[0])] = 1.0
    return K / K.sum(axis=1, keepdims=True)
