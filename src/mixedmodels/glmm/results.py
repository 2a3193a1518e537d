"""Results of a fitted GLMM, read off the estimates and the conditional modes at them (lme4's glmerMod)."""

from __future__ import annotations

import math
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.linalg as sla
from scipy.special import ndtr

from ..accessors import ResultsAccessors
from ..exceptions import ModelError
from ..ranef import RandomEffectsReads, unique_group_names
from ..report.table import Table
from .family import Family

if TYPE_CHECKING:
    from .fitting import FitOutcome
    from .model import GeneralizedLinearMixedModel

#: Residual types, as lme4's ``residuals(m, type)``.
RESIDUAL_TYPES = ("deviance", "pearson", "response", "working")


class GeneralizedLinearMixedModelResults(ResultsAccessors, RandomEffectsReads):
    """A fitted generalised linear mixed model.

    The estimates are those of glmer's stage 2 (θ and β jointly; stage 1 for ``nAGQ = 0``); ``vcov`` is
    twice the inverse Hessian of the deviance in (θ, β) (lme4's ``use.hessian = TRUE``), falling back to
    ``(R_X'R_X)⁻¹`` as lme4 does when that Hessian is not positive definite or was not computed.

    Parameters
    ----------
    model : GeneralizedLinearMixedModel
    outcome : FitOutcome
    """

    def __init__(self, model: GeneralizedLinearMixedModel, outcome: FitOutcome) -> None:
        self.model = model
        self.outcome = outcome
        k, p = model.n_theta, model.nfixed
        self.theta = np.asarray(outcome.params[:k], dtype=float)
        self.beta = np.asarray(outcome.params[k : k + p], dtype=float)
        self.objective = float(outcome.objective)
        self.mode = outcome.mode
        self.factor = outcome.mode.factor
        rest = outcome.params[k + p :]
        self.family: Family = model.family_at(rest[0] if rest.size else None)
        self._vcov_note: list[str] = []

    # ------------------------------------------------------------------ facts
    @property
    def design(self):
        return self.model.design

    @property
    def terms(self) -> tuple:
        return self.model.terms

    @property
    def formula(self) -> str:
        return self.model.formula

    # a GLMM has no residual structure or variance function: what the shared report code reads
    iid_residuals = True
    residual_structure = None
    residual_binding = None
    variance_function = None

    @property
    def reml(self) -> bool:
        """Always False: GLMMs are fitted by (approximate) maximum likelihood."""
        return False

    @property
    def method(self) -> str:
        return "Laplace" if self.model.nagq == 1 else f"AGQ({self.model.nagq})"

    @property
    def nobs(self) -> int:
        return self.model.nobs

    @property
    def n_dropped(self) -> int:
        return self.design.n_dropped

    @property
    def nfixed(self) -> int:
        return self.model.nfixed

    @property
    def ngroups(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.terms:
            out.setdefault(t.group, t.nlevels)
        return out

    @property
    def npar(self) -> int:
        """Parameters counted by logLik's df: β, θ and a dispersion (lme4's ``npar``; glmer.nb adds one for θ)."""
        return self.nfixed + len(self.theta) + (1 if self.family.has_dispersion else 0)

    @property
    def df_residual(self) -> int:
        return self.nobs - self.npar

    @property
    def dispersion(self) -> float | None:
        """The family's estimated dispersion (NB2's θ, glmmTMB's ``sigma()``), None for binomial and Poisson."""
        return self.family.dispersion if self.family.has_dispersion else None

    @property
    def sigma(self) -> float:
        """1: lme4's ``sigma()`` of a family without a scale parameter."""
        return 1.0

    @property
    def theta_names(self) -> list[str]:
        return self.model.theta_names

    @property
    def evaluations(self) -> int:
        """Deviance evaluations in all (both stages and the finite-difference derivatives)."""
        return self.outcome.evaluations

    # ------------------------------------------------------------------ likelihood
    @property
    def loglik(self) -> float:
        """glmer's ``logLik``: −½ the deviance minimised (Laplace: with the family's normalising constants;
        nAGQ > 1: lme4's quadrature deviance, built from deviance residuals)."""
        return -0.5 * self.objective

    @property
    def aic(self) -> float:
        return self.objective + 2.0 * self.npar

    @property
    def bic(self) -> float:
        return self.objective + self.npar * math.log(self.nobs)

    @property
    def deviance(self) -> float:
        """lme4's ``deviance(m)`` for a GLMM: the sum of squared deviance residuals at the conditional modes.

        glmer's summary prints ``−2 logLik`` in its ``deviance`` column; that is :attr:`objective`.
        """
        r = self.model.response
        return float(np.sum(self.family.dev_resids(r.y, self.fitted, r.wt)))

    # ------------------------------------------------------------------ estimates
    @cached_property
    def _rx_vcov(self) -> np.ndarray:
        """``(R_X'R_X)⁻¹`` of the joint system at the estimates' weights (lme4's ``pp$unsc()``)."""
        p = self.nfixed
        if p == 0:
            return np.zeros((0, 0))
        model, mode = self.model, self.mode
        pirls = model.pirls
        fixed = pirls.offset
        w, z, _ = pirls._working(self.family, mode.eta, mode.mu, fixed, self.family.information == "observed")
        f = pirls.factor(True, w, z, self.theta)
        rinv = sla.solve_triangular(f.LXX[:p, :p], np.eye(p), lower=True)
        return rinv.T @ rinv

    @cached_property
    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of β̂: ``2 H⁻¹`` restricted to β (lme4's ``vcov(m)`` with ``use.hessian = TRUE``)."""
        names = list(self.design.fixed_names)
        p, k = self.nfixed, len(self.theta)
        H = self.outcome.hessian
        V = None
        if H is not None and p:
            try:
                Hinv = np.linalg.solve(H, np.eye(H.shape[0]))
                block = Hinv[k : k + p, k : k + p]
                V = block + block.T
                if not (np.all(np.isfinite(V)) and np.linalg.eigvalsh(V).min() > 0):
                    V = None
            except np.linalg.LinAlgError:
                V = None
            if V is None:
                self._vcov_note.append(
                    "variance-covariance matrix computed from finite-difference Hessian is not positive definite or "
                    "contains NA values: falling back to var-cov estimated from RX"
                )
        if V is None:
            V = self._rx_vcov
        return Table(V, index=names, columns=names)

    @cached_property
    def fixed_effects(self) -> pd.DataFrame:
        """Estimates, standard errors, z values and p-values (glmer's ``coef(summary(m))``)."""
        se = np.sqrt(np.diag(self.vcov.to_numpy())) if self.nfixed else np.zeros(0)
        z = self.beta / se
        return Table(
            {"Estimate": self.beta, "Std. Error": se, "z value": z, "Pr(>|z|)": 2.0 * ndtr(-np.abs(z))},
            index=pd.Index(self.design.fixed_names, name="term"),
        )

    def coef_table(self, ddf: str | None = None) -> pd.DataFrame:
        """The fixed-effects table with z tests (``ddf`` is accepted for symmetry with LMMs and must be None)."""
        if ddf not in (None, "none", "asymptotic", "normal"):
            raise ModelError("GLMM coefficients are tested with z (Wald) tests; denominator df do not apply")
        return self.fixed_effects

    @property
    def tvalues(self) -> pd.Series:
        """Wald z statistics ``β̂ / SE`` (the ``z value`` column)."""
        return self.fixed_effects["z value"].rename(None)

    zvalues = tvalues

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided normal p-values of the Wald z statistics (glmer's ``Pr(>|z|)``)."""
        return self.fixed_effects["Pr(>|z|)"].rename(None)

    @property
    def fe_params(self) -> pd.Series:
        return self.params

    @cached_property
    def lambdas(self) -> list[np.ndarray]:
        return self.model.pirls.lambdas(self.theta)

    @cached_property
    def covariances(self) -> list[pd.DataFrame]:
        """Covariance matrix ``λ_k λ_k'`` of each term's random effects."""
        return [pd.DataFrame(lam @ lam.T, index=list(t.cnames), columns=list(t.cnames)) for t, lam in zip(self.terms, self.lambdas)]

    @cached_property
    def varcorr(self) -> pd.DataFrame:
        """Variance components as lme4's ``as.data.frame(VarCorr(m))`` (no residual row: the family has no scale)."""
        rows = []
        names = unique_group_names([t.group for t in self.terms])
        for name, t, cov in zip(names, self.terms, self.covariances):
            S = cov.to_numpy()
            sd = np.sqrt(np.diag(S))
            for i in range(t.p):
                rows.append((name, t.cnames[i], None, S[i, i], sd[i]))
            for j in range(t.p):
                for i in range(j + 1, t.p):
                    corr = S[i, j] / (sd[i] * sd[j]) if sd[i] > 0 and sd[j] > 0 else float("nan")
                    rows.append((name, t.cnames[j], t.cnames[i], S[i, j], corr))
        return Table(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])

    # ------------------------------------------------------------------ random effects (RandomEffectsReads)
    @cached_property
    def _u(self) -> np.ndarray:
        return self.mode.u

    # ------------------------------------------------------------------ diagnostics
    @property
    def singular(self) -> bool:
        from ..optimize import singular_components

        return bool(singular_components(self.theta, self.model.lower_bounds).size)

    @property
    def converged(self) -> bool:
        """No optimizer failure and no failed convergence check."""
        return not any(m.startswith(("Model failed", "convergence code", "unable to")) for m in self.outcome.warnings)

    @property
    def separated(self) -> dict[str, int]:
        """Fixed effects along a direction of (quasi-)complete separation, with the sign of their divergence."""
        return dict(self.outcome.separated)

    @property
    def warnings(self) -> list[str]:
        """Notes on the data, then the fit's convergence, singularity, separation and vcov messages."""
        _ = self.vcov  # the fallback note, if any
        return list(self.design.messages) + list(self.outcome.warnings) + self._vcov_note

    def emit_warnings(self) -> None:
        """Emit the fit's warnings at the caller's line."""
        from ..exceptions import ConvergenceWarning, SingularFitWarning, warn_user
        from .checks import SeparationWarning

        _ = self.vcov  # its fallback note, if any
        for msg in self.outcome.warnings + self._vcov_note:
            if msg.startswith("boundary"):
                warn_user(msg, SingularFitWarning)
            elif msg.startswith("the data are (quasi-)completely separated"):
                warn_user(msg, SeparationWarning)
            else:
                warn_user(msg, ConvergenceWarning)

    # ------------------------------------------------------------------ fitted values and residuals
    @property
    def linear_predictor(self) -> np.ndarray:
        """``η̂ = Xβ̂ + Zb̂ + offset``."""
        return self.mode.eta

    @property
    def fitted(self) -> np.ndarray:
        """Conditional means ``μ̂ = g⁻¹(η̂)`` (lme4's ``fitted(m)``)."""
        return self.family.link.linkinv(self.mode.eta)

    @property
    def fitted_fixed(self) -> np.ndarray:
        """Population-level means ``g⁻¹(Xβ̂ + offset)``."""
        return self.family.link.linkinv(self.design.X @ self.beta + self.model.offset)

    def resid_of(self, kind: str = "deviance") -> np.ndarray:
        """Residuals as lme4's ``residuals(m, type)``: ``"deviance"``, ``"pearson"``, ``"response"`` or ``"working"``."""
        r = self.model.response
        y, wt, mu, eta = r.y, r.wt, self.fitted, self.mode.eta
        if kind == "deviance":
            d = np.sqrt(np.maximum(self.family.dev_resids(y, mu, wt), 0.0))
            return np.where(y > mu, d, -d)
        if kind == "pearson":
            return (y - mu) * np.sqrt(wt / self.family.variance(mu))
        if kind == "response":
            return y - mu
        if kind == "working":
            return (y - mu) / self.family.link.mu_eta(eta)
        raise ModelError(f"unknown residual type {kind!r}; use one of {', '.join(RESIDUAL_TYPES)}")

    @property
    def residuals(self) -> np.ndarray:
        """Deviance residuals (lme4's default for GLMMs)."""
        return self.resid_of("deviance")

    def predict(self, newdata: pd.DataFrame | None = None, *, type: str = "link", re_form: str | None = None,
                allow_new_levels: bool = True) -> np.ndarray:
        """Predictions as lme4's ``predict(m, newdata, type, re.form)``.

        Parameters
        ----------
        newdata : pandas.DataFrame, optional
            None gives the fitted linear predictor or means.
        type : {"link", "response"}
        re_form : None or "~0" (also "NA")
            None includes the conditional modes; ``"~0"``/``"NA"`` gives population-level predictions.
        allow_new_levels : bool
            New levels get random effects of 0 (else :class:`DataError`).
        """
        from ..results import LinearMixedModelResults

        if type not in ("link", "response"):
            raise ModelError(f"type must be 'link' or 'response', got {type!r}")
        if re_form is None:
            include = True
        elif str(re_form).replace(" ", "") in ("~0", "NA", "~1-1"):
            include = False
        else:
            raise ModelError(f"re_form must be None (all random effects) or '~0' (none), got {re_form!r}")
        if newdata is None:
            eta = self.mode.eta if include else self.design.X @ self.beta + self.model.offset
        else:
            # the linear predictor of new data is built exactly as an LMM's prediction
            eta = LinearMixedModelResults.predict(self, newdata, include_random=include, allow_new_levels=allow_new_levels)
        return self.family.link.linkinv(eta) if type == "response" else eta

    def simulate(self, nsim: int = 1, seed: int | np.random.Generator | None = None, *, use_u: bool = False) -> np.ndarray:
        """Responses simulated from the fit (lme4's ``simulate``), ``n × nsim``, on the scale of ``y``.

        New spherical random effects ``u ~ N(0, I)`` for each simulation (``use_u=True``: the conditional
        modes), then draws from the family at ``μ = g⁻¹(Xβ̂ + ZΛu + offset)``; binomial responses are
        proportions of the fit's numbers of trials.
        """
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        r = self.model.response
        pirls = self.model.pirls
        fixed = self.design.X @ self.beta + self.model.offset
        out = np.empty((self.nobs, int(nsim)))
        for s in range(int(nsim)):
            u = self.mode.u if use_u else rng.standard_normal(pirls.q)
            mu = self.family.link.linkinv(fixed + pirls.random_part(self.lambdas, u))
            out[:, s] = self.family.simulate(mu, r.wt, rng, 1)[:, 0]
        return out

    def refit_ml(self) -> GeneralizedLinearMixedModelResults:
        """Itself: a GLMM is fitted by (approximate) maximum likelihood already."""
        return self

    # ------------------------------------------------------------------ output
    def summary(self):
        """Summary as glmer prints it; ``str()`` gives the text."""
        from .summary import GlmmSummary

        return GlmmSummary(self)

    def __repr__(self) -> str:
        return str(self.summary())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description of the fit (estimates, tests, variance components, criteria, warnings)."""
        fe = self.fixed_effects
        return {
            "family": self.family.name,
            "link": self.family.link.name,
            "nAGQ": self.model.nagq,
            "formula": self.formula,
            "nobs": self.nobs,
            "ngroups": self.ngroups,
            "loglik": self.loglik,
            "aic": self.aic,
            "bic": self.bic,
            "deviance": self.objective,
            "df_resid": self.df_residual,
            "theta": dict(zip(self.theta_names, self.theta.tolist())),
            "dispersion": self.dispersion,
            "fixed_effects": [
                {"term": name, "estimate": float(row["Estimate"]), "std_error": float(row["Std. Error"]),
                 "z": float(row["z value"]), "p": float(row["Pr(>|z|)"])}
                for name, row in fe.iterrows()
            ],
            "random_effects": [
                {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
                for row in self.varcorr.to_dict("records")
            ],
            "singular": self.singular,
            "converged": self.converged,
            "warnings": self.warnings,
            "evaluations": self.evaluations,
        }

    # ------------------------------------------------------------------ inference
    def marginal_effects(self, specs: str, *, level: float = 0.95, nodes: int = 64):
        """Conditional and population-averaged (marginal) means of a factor's levels and their ratios.

        The fixed effects of a GLMM are conditional (a unit with random effects 0); the marginal mean
        ``E_b[g⁻¹(x'β + z'b)]`` averages over the random effects, by Gauss–Hermite quadrature of the
        normal ``z'b``. See :mod:`mixedmodels.glmm.marginal`.

        Parameters
        ----------
        specs : str
            A factor of the fixed effects (other variables as in emmeans' reference grid).
        level : float
            Confidence level of the delta-method intervals.
        nodes : int
            Gauss–Hermite nodes.

        Returns
        -------
        MarginalEffects
            ``means`` (conditional and marginal, with intervals), ``ratios`` (odds or mean ratios of
            each pair of levels, conditional and marginal) and ``table`` (the two side by side).
        """
        from .marginal import MarginalEffects

        return MarginalEffects(self, specs, level=level, nodes=nodes)

    def emmeans(self, specs, by=None, *, type: str = "link", weights="equal", level: float = 0.95):
        """Estimated marginal means on the link or response scale, as R's emmeans for a glmer fit.

        Parameters
        ----------
        specs : str or sequence of str
            As :func:`mixedmodels.inference.emmeans.emmeans` (``"period"``, ``"arm | visit"``).
        by : str or sequence of str, optional
        type : {"link", "response"}
            ``"response"``: ``g⁻¹`` of the means with delta-method SEs and back-transformed limits
            (emmeans' ``type = "response"``); conditional on random effects of 0.
        weights : str or sequence of float
            Averaging weights over other factors (``"equal"``, ``"proportional"``, ...).
        level : float

        Returns
        -------
        GlmmEMMeans
            ``table``, ``contrasts(method, adjust, type=...)`` (odds ratios or ratios on the response scale).
        """
        from .emmeans import GlmmEMMeans

        return GlmmEMMeans(self, specs, by, type=type, weights=weights, level=level)

    def latent_variances(self):
        """Fixed, random, distribution-specific and dispersion variances on the latent scale (insight's ``get_variance``).

        Returns
        -------
        LatentVariances
            See :mod:`mixedmodels.glmm.variance`.
        """
        from .variance import latent_variances

        return latent_variances(self)

    def icc(self) -> dict[str, float]:
        """Intraclass correlation on the latent scale, as performance's ``icc(m)``.

        Returns
        -------
        dict
            ``ICC_adjusted`` (random / (random + residual)) and ``ICC_conditional`` = ``ICC_unadjusted``
            (random / (fixed + random + residual)); NaN for a singular fit.
        """
        return self.latent_variances().icc()

    def r2_nakagawa(self) -> dict[str, float]:
        """Nakagawa's marginal and conditional R² on the latent scale, as performance's ``r2_nakagawa(m)``.

        Returns
        -------
        dict
            ``R2_conditional`` and ``R2_marginal``.
        """
        return self.latent_variances().r2()

    def binned_residuals(self, term: str | None = None, *, n_bins: int | None = None):
        """Binned response residuals, as performance's ``binned_residuals(m, term, n_bins)``.

        See :func:`mixedmodels.glmm.binned.binned_residuals`; plotted by
        :func:`mixedmodels.plots.binned_residuals_plot`.
        """
        from .binned import binned_residuals

        return binned_residuals(self, term, n_bins)

    def report(self, path: str, *, title: str | None = None) -> str:
        """Write a self-contained HTML report to ``path`` and return it.

        Estimates with z tests and conditional odds/rate ratios, variance components, latent-scale ICC and R²,
        conditional and marginal effects of each factor (up to 8 levels), diagnostics, and plots (caterpillar,
        binned residuals, observed against fitted by group).
        """
        from ..report.glmm_html import write_glmm_report

        return write_glmm_report(self, path, title=title)
