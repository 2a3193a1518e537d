"""Results of a fitted linear mixed model; everything is a cheap read of the factor at θ̂."""

from __future__ import annotations

import math
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.linalg as sla

from .accessors import ResultsAccessors
from .ranef import RandomEffectsReads, unique_group_names
from .engine.threads import engine_threads
from .exceptions import DataError
from .formula.design import group_labels
from .optimize import FitRecord
from .report.table import Table, as_table
from .terms import boundary_components

if TYPE_CHECKING:
    from .model import LinearMixedModel

class LinearMixedModelResults(ResultsAccessors, RandomEffectsReads):
    """A fitted linear mixed model.

    Parameters
    ----------
    model : LinearMixedModel
    theta : numpy.ndarray
        Estimated covariance parameters.
    objective : float
        REML criterion or ML deviance at ``theta``.
    fit_record : FitRecord
    """

    @engine_threads
    def __init__(self, model: "LinearMixedModel", theta: np.ndarray, objective: float, fit_record: FitRecord) -> None:
        self.model = model
        self.theta = np.asarray(theta, dtype=float)
        self.objective = float(objective)
        self.fit_record = fit_record
        self.factor, self.logdet_r = model.state(self.theta, fresh=True)

    # ------------------------------------------------------------------ basic facts
    @property
    def design(self):
        """The evaluated formula on the rows used (:class:`~mixedmodels.formula.design.Design`)."""
        return self.model.design

    @property
    def terms(self) -> tuple:
        """The random-effects terms, in lme4's order."""
        return self.model.terms

    @property
    def reml(self) -> bool:
        """True for a REML fit."""
        return self.model.reml

    @property
    def method(self) -> str:
        """``"REML"`` or ``"ML"``."""
        return "REML" if self.reml else "ML"

    @property
    def formula(self) -> str:
        """The model formula."""
        return self.model.formula

    @property
    def nobs(self) -> int:
        """Observations used."""
        return self.model.nobs

    @property
    def n_dropped(self) -> int:
        """Rows dropped for missing values."""
        return self.design.n_dropped

    @property
    def nfixed(self) -> int:
        """Number of fixed-effects coefficients (after dropping dependent columns)."""
        return self.design.X.shape[1]

    @property
    def ngroups(self) -> dict[str, int]:
        """Levels per grouping factor (one entry per distinct factor, as lme4's ``ngrps``)."""
        out: dict[str, int] = {}
        for t in self.terms:
            out.setdefault(t.group, t.nlevels)
        return out

    @property
    def npar(self) -> int:
        """Parameters counted by logLik's df: fixed effects, θ and σ."""
        return self.nfixed + len(self.theta) + 1

    @property
    def df_residual(self) -> int:
        """Residual degrees of freedom ``n − npar`` (lme4's ``df.residual``)."""
        return self.nobs - self.npar

    @property
    def rho(self) -> np.ndarray:
        """Parameters of the residual covariance structure (unconstrained; empty for iid residuals)."""
        return self.theta[self.model.n_theta : self.model.n_theta + self.model.n_rho]

    @property
    def delta(self) -> np.ndarray:
        """Parameters of the variance function (empty without one)."""
        return self.theta[self.model.n_theta + self.model.n_rho :]

    @property
    def iid_residuals(self) -> bool:
        """True for lme4's residuals σ²I (or σ²W⁻¹ with prior weights): no structure, no variance function."""
        return self.model.iid_residuals

    @property
    def residual_structure(self):
        """The residual covariance structure (:class:`~mixedmodels.covariance.ResidualStructure`), or None."""
        return self.model.residual_structure

    @property
    def residual_binding(self):
        """Subjects, times and visit patterns of the residual structure (:class:`~mixedmodels.covariance.binding.ResidualBinding`), or None."""
        return None if self.model.whitening is None else self.model.whitening.binding

    @property
    def variance_function(self):
        """The variance function bound to the rows (:class:`~mixedmodels.covariance.variance.VarianceFunction`), or None."""
        return self.model.variance

    @property
    def data_name(self) -> str | None:
        """Name of the data, as given to the fit."""
        return self.model.data_name

    @property
    def residual_covariance(self) -> pd.DataFrame | None:
        """``σ² C`` of the residual structure for a subject observed at every time (nlme's ``getVarCov``;
        the first group's for group-specific structures); None for iid residuals."""
        structure = self.model.residual_structure
        return None if structure is None else structure.covariance(self.rho, self.sigma)

    @property
    def theta_names(self) -> list[str]:
        """Names of the θ elements, lme4 style."""
        return self.model.theta_names

    # ------------------------------------------------------------------ estimates
    @cached_property
    def _rx(self) -> np.ndarray:
        p = self.nfixed
        return self.factor.LXX[:p, :p]

    @cached_property
    def _beta_centred(self) -> np.ndarray:
        """Solution of ``R_X' β = r_Xy`` for the centred response the factor was built from."""
        p = self.nfixed
        if p == 0:
            return np.zeros(0)
        return sla.solve_triangular(self._rx.T, self.factor.LXX[p, :p], lower=False)

    @cached_property
    def beta(self) -> np.ndarray:
        """Fixed-effects estimates β̂ (undoing the centring of y, see ``LinearMixedModel.y_shift``)."""
        beta = self._beta_centred.copy()
        if self.model.y_shift is not None:
            column, shift = self.model.y_shift
            beta[column] += shift
        return beta

    @property
    def pwrss(self) -> float:
        """Penalised residual sum of squares at θ̂."""
        return self.factor.pwrss()

    @cached_property
    def sigma(self) -> float:
        """Residual standard deviation."""
        if self.design.degenerate:  # the fixed effects reproduce y: 0, not rounding noise
            return 0.0
        dof = self.nobs - self.nfixed if self.reml else self.nobs
        return math.sqrt(self.pwrss / dof)

    @cached_property
    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of β̂, ``σ² (R_X R_X')⁻¹``."""
        names = list(self.design.fixed_names)
        if not names:
            return pd.DataFrame(np.zeros((0, 0)))
        rinv = sla.solve_triangular(self._rx, np.eye(self.nfixed), lower=True)
        return pd.DataFrame(self.sigma**2 * rinv.T @ rinv, index=names, columns=names)

    @cached_property
    def fixed_effects(self) -> pd.DataFrame:
        """Table of estimates, standard errors and t values (columns ``Estimate``, ``Std. Error``, ``t value``)."""
        se = np.sqrt(np.diag(self.vcov.to_numpy())) if self.nfixed else np.zeros(0)
        with np.errstate(divide="ignore", invalid="ignore"):  # SE 0 in a degenerate fit: t is undefined
            t = np.where(se > 0, self.beta / np.where(se > 0, se, 1.0), np.nan)
        return Table(
            {"Estimate": self.beta, "Std. Error": se, "t value": t},
            index=pd.Index(self.design.fixed_names, name="term"),
        )

    @property
    def fe_params(self) -> pd.Series:
        """Fixed-effects estimates as a Series (lme4's ``fixef``)."""
        return self.fixed_effects["Estimate"]

    @cached_property
    def lambdas(self) -> list[np.ndarray]:
        """Relative covariance factors λ_k at θ̂."""
        return self.factor.lambdas()

    @cached_property
    def covariances(self) -> list[pd.DataFrame]:
        """Covariance matrix ``σ² λ_k λ_k'`` of the random effects of each term."""
        out = []
        for t, lam in zip(self.terms, self.lambdas):
            out.append(pd.DataFrame(self.sigma**2 * lam @ lam.T, index=list(t.cnames), columns=list(t.cnames)))
        return out

    @cached_property
    def varcorr(self) -> pd.DataFrame:
        """Variance components as lme4's ``as.data.frame(VarCorr(m))``.

        One row per variance, one per covariance (``vcov`` the covariance, ``sdcor`` the
        correlation) and the residual row; columns ``grp``, ``var1``, ``var2``, ``vcov``, ``sdcor``.
        A structured term has the rows of its parameters (:meth:`RandomCovariance.varcorr_rows`): one
        variance for a homogeneous one, no covariances for ``diag``, one correlation for ``cs`` and ``ar1``.
        """
        rows = []
        names = unique_group_names([t.group for t in self.terms])
        start = 0
        for name, t in zip(names, self.terms):
            par = self.theta[start : start + t.ntheta]
            start += t.ntheta
            rows.extend((name, *row) for row in t.structure.varcorr_rows(par, self.sigma))
        rows.append(("Residual", None, None, self.sigma**2, self.sigma))
        return Table(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])

    # ------------------------------------------------------------------ likelihood
    @property
    def loglik(self) -> float:
        """Log-likelihood (restricted log-likelihood for REML fits), as lme4's ``logLik``."""
        return -0.5 * self.objective

    @property
    def aic(self) -> float:
        """Akaike information criterion, ``-2 logLik + 2 npar``."""
        return -2.0 * self.loglik + 2.0 * self.npar

    @property
    def bic(self) -> float:
        """Bayesian information criterion, ``-2 logLik + npar log n``."""
        return -2.0 * self.loglik + self.npar * math.log(self.nobs)

    @property
    def deviance(self) -> float:
        """ML deviance at θ̂ (for a REML fit, the ML deviance evaluated at the REML estimates, as lme4's ``deviance(m, REML=FALSE)``)."""
        if not self.reml:
            return self.objective
        from .engine.objective import criterion

        return criterion(self.factor, reml=False, n=self.nobs, p=self.nfixed, logdet_r=self.logdet_r)

    @property
    def reml_criterion(self) -> float | None:
        """REML criterion at convergence (None for ML fits)."""
        return self.objective if self.reml else None

    # ------------------------------------------------------------------ diagnostics
    @property
    def singular(self) -> bool:
        """True when a variance or correlation estimate is on the boundary (lme4's ``isSingular``)."""
        return bool(boundary_components(self.terms, self.theta).size)

    @property
    def singular_terms(self) -> list[str]:
        """θ elements on the boundary, by lme4 name."""
        names = self.theta_names
        return [names[i] for i in boundary_components(self.terms, self.theta)]

    @property
    def converged(self) -> bool:
        """The optimizer succeeded and the gradient check passed."""
        return self.fit_record.converged

    @property
    def warnings(self) -> list[str]:
        """Warnings from building and fitting the model, in lme4's words (data notes first)."""
        fit_msgs = list(self.fit_record.warnings)
        if self.singular:
            fit_msgs = [
                m + f" (at the boundary: {', '.join(self.singular_terms)})" if m.startswith("boundary") else m for m in fit_msgs
            ]
        return list(self.design.messages) + fit_msgs

    # ------------------------------------------------------------------ fitted values
    @cached_property
    def fitted_fixed(self) -> np.ndarray:
        """``Xβ̂`` plus the offset (population-level fitted values)."""
        d = self.design
        return d.X @ self.beta + (0.0 if d.offset is None else d.offset)

    @cached_property
    def fitted(self) -> np.ndarray:
        """``Xβ̂ + Zb̂`` (conditional fitted values)."""
        out = self.fitted_fixed.copy()
        for t, b in zip(self.terms, self._b_by_term):
            out += np.einsum("np,np->n", t.z, b[t.refs])
        return out

    @property
    def residuals(self) -> np.ndarray:
        """Conditional residuals ``y − Xβ̂ − Zb̂``."""
        return self.design.y - self.fitted

    @property
    def residuals_fixed(self) -> np.ndarray:
        """Population-level residuals ``y − Xβ̂``."""
        return self.design.y - self.fitted_fixed

    def predict(self, newdata: pd.DataFrame | None = None, *, include_random: bool = True, allow_new_levels: bool = True) -> np.ndarray:
        """Predictions for new data.

        Parameters
        ----------
        newdata : pandas.DataFrame, optional
            Covariates and grouping factors; ``None`` returns the fitted values.
        include_random : bool
            Add the conditional modes of the random effects (lme4's default) or give the
            population-level prediction (``re.form = NA``).
        allow_new_levels : bool
            Levels of grouping factors not seen in fitting get a random effect of zero (the
            population level); if False such levels raise :class:`DataError`.

        Raises
        ------
        DataError
            If a factor of the fixed effects has a level not seen in fitting (as lme4), or
            ``newdata`` lacks a variable.
        """
        import warnings

        from formulaic.errors import DataMismatchWarning

        from .formula.design import check_new_levels, offset_of, prepare_newdata
        from .formula.safety import evaluation_context

        if newdata is None:
            return self.fitted if include_random else self.fitted_fixed
        d = self.design
        frame = prepare_newdata(d, newdata)
        check_new_levels(d, frame)
        ctx = evaluation_context()
        fframe = d.formulaic_frame(frame)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", DataMismatchWarning)  # a level formulaic cannot code
                X = np.asarray(d.fixed_spec.get_model_matrix(fframe, context=ctx, na_action="ignore"), dtype=float)
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"cannot build the fixed-effects matrix for newdata: {str(exc).splitlines()[0]}") from None
        pred = X[:, d.kept_columns] @ self.beta + offset_of(d, frame)
        if not include_random:
            return pred
        for t, b in zip(self.terms, self._b_by_term):
            missing = [g for g in t.group_vars if g not in frame.columns]
            if missing:
                raise DataError(f"newdata lacks grouping variable(s) {', '.join(missing)}")
            z = np.asarray(t.spec.get_model_matrix(fframe, context=ctx, na_action="ignore"), dtype=float)
            index = {lab: i for i, lab in enumerate(t.levels)}
            labels = group_labels(frame, t.group_vars)
            pos = np.array([index.get(lab, -1) for lab in labels], dtype=np.int64)
            if not allow_new_levels and np.any(pos < 0):
                unseen = sorted(set(labels[pos < 0]))
                raise DataError(f"new levels of {t.group!r} not seen in fitting: {', '.join(unseen[:5])}")
            contrib = np.einsum("np,np->n", z, b[np.maximum(pos, 0)])
            pred = pred + np.where(pos >= 0, contrib, 0.0)
        return pred

    # ------------------------------------------------------------------ simulation
    def simulate(self, nsim: int = 1, seed: int | np.random.Generator | None = None, *, include_random: bool = True) -> np.ndarray:
        """Responses simulated from the fitted model, as lme4's ``simulate``.

        Each column is ``Xβ̂ + Σ_k Z_k b_k + ε`` with new random effects ``b_k ~ N(0, σ²λ_kλ_k')`` per
        level and ``ε ~ N(0, R)``: σ²I as lme4, or with the fit's prior weights, residual structure
        and variance function.

        Parameters
        ----------
        nsim : int
            Number of simulated responses.
        seed : int or numpy.random.Generator, optional
            Seed for reproducible draws.
        include_random : bool
            Draw new random effects (default); if False, only the residual noise is new and the
            conditional modes are kept (lme4's ``use.u = TRUE``).

        Returns
        -------
        numpy.ndarray
            ``n × nsim`` array.
        """
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        n = self.nobs
        base = (self.fitted_fixed if include_random else self.fitted)[:, None]
        out = np.repeat(base, nsim, axis=1)
        if include_random:
            for t, lam in zip(self.terms, self.lambdas):
                u = rng.standard_normal((nsim, t.nlevels, t.p))
                b = self.sigma * t.effects(u, lam)  # (nsim, levels, p)
                out += np.einsum("np,snp->ns", t.z, b[:, t.refs, :])
        noise = self.sigma * rng.standard_normal((n, nsim))
        w = self.model.whitening
        if w is not None:  # correlated within subjects: L_i ε_i with C_i = L_i L_i'
            for unit, L in zip(w.units, w.structure.factors(self.rho, w.binding)):
                if w.structure.discrete:
                    noise[unit.rows] = np.einsum("ab,mbs->mas", L, noise[unit.rows])
                else:
                    noise[unit.rows] = np.einsum("mab,mbs->mas", L, noise[unit.rows])
        scale = self.model.residual_sd_scale(self.delta)  # Var(εᵢ) = σ² gᵢ²/wᵢ
        if scale is not None:
            noise *= scale[:, None]
        return out + noise

    def refit(
        self, y: np.ndarray, *, check_convergence: bool = False, start: np.ndarray | None = None, warn: bool = True
    ) -> "LinearMixedModelResults":
        """Fit the same model to a new response (lme4's ``refit``), reusing Z's cross-products and structure.

        Starts from θ̂ of this fit unless ``start`` is given. The finite-difference convergence check
        is off by default, as befits thousands of bootstrap refits. Singular-fit and convergence
        warnings are emitted as by a fit (``warn=False``: kept in the result's ``.warnings`` only).
        """
        model = self.model.with_response(y)
        return model.fit(start=self.theta if start is None else start, check_convergence=check_convergence, warn=warn)

    def refit_ml(self, *, warn: bool = True) -> "LinearMixedModelResults":
        """This model refitted by maximum likelihood (itself if it already is), as lme4's ``refitML``.

        Starts from the REML estimates; when those are on the boundary or did not converge, also
        from lme4's default start and from a point off the boundary, keeping the lowest deviance.
        The refit's own singular-fit and convergence warnings are emitted (``warn=False``: kept
        in its ``.warnings`` only).
        """
        if not self.reml:
            return self
        model = self.model.with_reml(False)
        starts = [self.theta]
        if self.singular or not self.converged:
            starts += [model.theta_start, model.theta_off_boundary(self.theta)]
        return model.fit_best(starts, warn=warn)

    def _require_iid_residuals(self, what: str) -> None:
        """Raise for the methods not yet written for residual covariance structures."""
        if not self.model.iid_residuals:
            from .exceptions import ModelError

            parts = [str(s) for s in (self.model.residual_spec, self.model.variance_spec) if s is not None]
            raise ModelError(
                f"{what} is not available yet for a model with a residual covariance structure or variance function "
                f"({', '.join(parts)}); Wald, Satterthwaite and Kenward-Roger inference, compare(), predict(), simulate() and "
                "refit() are"
            )

    def emit_warnings(self) -> None:
        """Emit this fit's singular-fit and convergence warnings (as ``fit`` does), at the caller's line."""
        from .exceptions import ConvergenceWarning, SingularFitWarning, warn_user

        for msg in self.warnings:
            if msg.startswith("boundary"):
                warn_user(msg, SingularFitWarning)
            elif msg in self.fit_record.warnings:
                warn_user(msg, ConvergenceWarning)

    # ------------------------------------------------------------------ inference on fixed effects
    def ddf_calculator(self, method: str = "satterthwaite"):
        """The Satterthwaite or Kenward–Roger calculator for this fit (computed once per method)."""
        from .inference.ddf import ddf_method

        cache = self.__dict__.setdefault("_ddf_cache", {})
        key = method.lower()
        if key not in cache:
            cache[key] = ddf_method(self, method)
        return cache[key]

    @engine_threads
    def coef_table(self, ddf: str | None = "satterthwaite") -> pd.DataFrame:
        """Estimates, SEs, df, t and p (lmerTest's ``coef(summary(m))``); ``ddf``: ``"satterthwaite"``, ``"kenward-roger"`` or None."""
        from .inference.anova import coef_table

        return as_table(coef_table(self, ddf))

    @engine_threads
    def anova(self, ddf: str = "satterthwaite") -> pd.DataFrame:
        """Type III ANOVA table of the fixed-effects terms with F-tests (lmerTest's ``anova(m)``)."""
        from .inference.anova import anova_table

        return as_table(anova_table(self, ddf))

    @engine_threads
    def contest(self, L: np.ndarray, *, rhs: np.ndarray | None = None, ddf: str = "satterthwaite") -> pd.Series:
        """F-test of the linear hypothesis ``Lβ = rhs`` (lmerTest's ``contest``)."""
        from .inference.anova import contest

        return contest(self, L, rhs=rhs, ddf=ddf)

    @engine_threads
    def emmeans(self, specs: str | list[str], by: str | list[str] | None = None, **kwargs: Any):
        """Least-squares (estimated marginal) means as R's emmeans, with ``.table`` and ``.contrasts()``.

        ``ddf`` (default Kenward–Roger for REML fits), ``weights``, ``level``: see ``inference.emmeans``.
        """
        from .inference.emmeans import emmeans

        return emmeans(self, specs, by, **kwargs)

    @engine_threads
    def confint(self, method: str = "profile", level: float = 0.95, **kwargs: Any) -> pd.DataFrame:
        """Confidence intervals for all parameters (lme4's ``confint``): ``"profile"``, ``"wald"`` or ``"boot"``.

        Boot takes ``nsim``, ``seed``, ``n_jobs`` and ``progress``; profile takes ``parm`` and ``progress``.
        """
        from .inference.confint import confint

        return as_table(confint(self, method, level, **kwargs))

    @engine_threads
    def profile(self, level: float = 0.95, **kwargs: Any):
        """Profile the ML deviance over every parameter; returns ``(intervals, Profile)`` (ζ traces for plots)."""
        from .inference.confint import profile_intervals

        kwargs.setdefault("trace_points", True)
        return profile_intervals(self, level, **kwargs)

    @engine_threads
    def icc(self, **kwargs: Any) -> pd.DataFrame:
        """Intraclass correlations, adjusted and conditional, per grouping factor and in total (``performance::icc``).

        ``ci=0.95`` (with ``nsim``, ``seed``, ``n_jobs``) adds parametric-bootstrap intervals.
        """
        self._require_iid_residuals("icc")
        from .inference.partition import icc

        return as_table(icc(self, **kwargs))

    @engine_threads
    def r2(self, **kwargs: Any) -> dict[str, float]:
        """Nakagawa–Schielzeth marginal and conditional R² (``performance::r2_nakagawa``); ``ci=`` adds intervals."""
        self._require_iid_residuals("r2")
        from .inference.partition import r2

        return r2(self, **kwargs)

    def heritability(self, ci: str | None = None, level: float = 0.95, **kwargs: Any) -> pd.DataFrame:
        """h² of each known-covariance term with its SE and ``ci="profile"`` or ``"boot"`` intervals (``genetics.heritability``)."""
        from .genetics.heritability import heritability

        return heritability(self, ci, level, **kwargs)

    @engine_threads
    def implied_covariance(self, **kwargs: Any):
        """Marginal covariance and correlation of observations: ``group=, level=`` or ``newdata=`` (see ``inference.implied``)."""
        if kwargs.get("newdata") is not None:
            self._require_iid_residuals("implied_covariance(newdata=...)")
        from .inference.implied import implied_covariance

        return implied_covariance(self, **kwargs)

    # ------------------------------------------------------------------ output
    def summary(self, ddf: str | None = "satterthwaite"):
        """Summary as lme4/lmerTest print it; ``str()`` gives text, ``_repr_html_`` HTML.

        Parameters
        ----------
        ddf : str or None
            Denominator df for the t-tests: ``"satterthwaite"`` (default, as lmerTest),
            ``"kenward-roger"``, or None for lme4's table without df and p-values.

        A marginal model (a residual structure, no random effects) is laid out as mmrm prints it.
        """
        from .report.summary import Summary

        if not self.terms and self.residual_structure is not None:
            from .report.marginal_summary import MarginalSummary

            return MarginalSummary(self, ddf=ddf)
        return Summary(self, ddf=ddf)

    def __repr__(self) -> str:
        return str(self.summary())

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    def report(self, path: str, *, ddf: str | None = "satterthwaite", profile: bool = False, why: Any = False) -> str:
        """Write a self-contained HTML report (tables, diagnostics, plots; ``profile=True``: zeta plots;
        ``why=True``: the naive analyses first, see :meth:`compare_naive`) to ``path``."""
        from .report.html import write_report

        return write_report(self, path, ddf=ddf, profile=profile, why=why)

    def compare_naive(self, **kwargs: Any):
        """OLS, t-tests, per-subject slopes, RM-ANOVA and the correlation across time beside this fit
        (``subject=``, ``time=``, ``data=``; see :mod:`mixedmodels.naive`)."""
        from .naive import compare_naive

        return compare_naive(self, **kwargs)

    def save(self, path: str) -> Any:
        """Save the fit as versioned JSON (``mixedmodels.load`` reads it back; no pickle)."""
        from .persist import save

        return save(self, path)

    def to_dict(self, ddf: str | None = "satterthwaite") -> dict[str, Any]:
        """JSON-ready description of the fit (the CLI's ``--json`` output); ``ddf`` fills df and p-values."""
        from .report.serialize import results_to_dict

        return results_to_dict(self, ddf=ddf)
