"""The linear mixed model: a design, its cross-products and the blocked factor, ready to fit."""

from __future__ import annotations

import dataclasses
import math
from functools import cached_property

import numpy as np
import pandas as pd

from .covariance.binding import bind
from .covariance.residual_spec import parse_residual
from .covariance.variance import VarianceFunction, parse_variance
from .engine import BlockedCholesky, CrossProducts
from .engine.objective import criterion
from .engine.residual import Whitening
from .engine.threads import engine_threads
from .exceptions import ModelError
from .formula.design import Design, build_design, exact_response
from .optimize import FitRecord, OptimizerControl, optimize_theta
from .terms import boundary_components


#: Most rounds of parameters-then-fitted-values for a power of the fitted values, and their tolerance.
FITTED_ITERATIONS = 50
FITTED_TOL = 1e-6

#: The criterion where the residual covariance cannot be factored (large, finite: BOBYQA needs numbers).
_UNREACHABLE = 1e300


class LinearMixedModel:
    """A linear mixed model ``y = Xβ + Zb + ε`` ready to be fitted.

    Parameters
    ----------
    design : Design
        Evaluated formula (see :func:`mixedmodels.formula.design.build_design`).
    reml : bool
        Fit by REML (default, as lme4) or maximum likelihood.
    data_name : str, optional
        Name of the data, shown in summaries.
    na_action : {"omit", "exclude"}
        What fitted values and residuals of the results are aligned with: the rows used
        (``"omit"``, R's ``na.omit``) or every row of the data, missing where a row was dropped
        (``"exclude"``, R's ``na.exclude``).
    control : OptimizerControl, optional
        Optimizer and its settings (lme4's ``lmerControl``).
    residual : str or ResidualSpec, optional
        A residual covariance structure within subjects, ``"us(visit | subject)"`` (see
        :mod:`mixedmodels.covariance`); its columns must be in the design's frame. Default: iid σ²I.
    variance : str or VarianceSpec, optional
        A variance function, ``"ident(arm)"``, ``"power(x)"`` or ``"exp(x)"`` (nlme's varIdent, varPower,
        varExp of a covariate; :mod:`mixedmodels.covariance.variance`).
    """

    def __init__(
        self,
        design: Design,
        *,
        reml: bool = True,
        data_name: str | None = None,
        na_action: str = "omit",
        control: OptimizerControl | None = None,
        residual: object = None,
        variance: object = None,
    ) -> None:
        if na_action not in ("omit", "exclude"):
            raise ModelError(f"na_action must be 'omit' or 'exclude', got {na_action!r}")
        if not design.terms and residual is None and variance is None:
            raise ModelError("the formula has no random-effects terms such as (1 | g); fit a linear model instead")
        if any(t.rotated for t in design.terms) and (residual is not None or variance is not None):
            raise ModelError("a known covariance (covariance=) cannot be combined with a residual structure or variance function")
        n, p = design.X.shape
        if reml and n <= p:
            raise ModelError(f"REML needs more observations ({n}) than fixed effects ({p})")
        self.design = design
        self.reml = reml
        self.data_name = data_name
        self.na_action = na_action
        self.control = control if control is not None else OptimizerControl()
        self.residual_spec = None if residual is None else (parse_residual(residual) if isinstance(residual, str) else residual)
        self.variance_spec = None if variance is None else (parse_variance(variance) if isinstance(variance, str) else variance)

    @classmethod
    @engine_threads
    def from_formula(
        cls,
        formula: str,
        data: pd.DataFrame,
        *,
        reml: bool = True,
        data_name: str | None = None,
        contrasts: dict[str, str] | None = None,
        na_action: str = "omit",
        control: OptimizerControl | None = None,
        weights: object = None,
        offset: object = None,
        residual: object = None,
        variance: object = None,
        covariance: object = None,
    ) -> "LinearMixedModel":
        """Build a model from an lme4-style formula and a DataFrame (``contrasts``: coding per factor;
        ``weights``, ``offset``: column names or vectors, as lme4's; ``residual``: a residual structure;
        ``covariance``: known covariances ``{grouping factor: K}``, :mod:`.genetics`)."""
        spec = parse_residual(residual) if isinstance(residual, str) else residual
        vspec = parse_variance(variance) if isinstance(variance, str) else variance
        extra = (spec.columns if spec is not None else ()) + ((vspec.column,) if vspec is not None and vspec.column else ())
        known = frozenset()
        if covariance is not None:
            from .genetics.terms import known_groups

            known = known_groups(covariance)
        design = build_design(
            formula, data, warn=True, contrasts=contrasts, weights=weights, offset=offset, extra_columns=extra,
            known_groups=known,
        )
        if known:
            from .genetics.terms import bind_known_covariances

            design = bind_known_covariances(design, covariance)
        return cls(
            design, reml=reml, data_name=data_name, na_action=na_action, control=control, residual=spec, variance=vspec
        )

    def _like(self, design: Design, reml: bool) -> "LinearMixedModel":
        """A model of the same kind and settings on another design or criterion."""
        return LinearMixedModel(
            design, reml=reml, data_name=self.data_name, na_action=self.na_action, control=self.control,
            residual=self.residual_spec, variance=self.variance_spec,
        )

    @property
    def formula(self) -> str:
        """The formula as given, with the residual structure and variance function if any (``…; residual: ar1(visit | id)``)."""
        parts = [self.design.formula.text]
        if self.residual_spec is not None:
            parts.append(f"residual: {self.residual_spec}")
        if self.variance_spec is not None:
            parts.append(f"variance: {self.variance_spec}")
        return "; ".join(parts)

    @property
    def terms(self):
        """Random-effects terms in lme4's order (decreasing number of levels)."""
        return self.design.terms

    @property
    def nobs(self) -> int:
        """Number of observations used."""
        return len(self.design.y)

    @cached_property
    def y_shift(self) -> tuple[int, float] | None:
        """``(column, mean(y − offset))`` when X has a column of ones, else None.

        The cross-products use ``y − offset − mean``: the shift lies in the column space of X, so every
        quantity but that column's coefficient is unchanged, and the residual sum of squares is not
        formed from an uncentred ``y'y`` (which loses precision when mean(y) ≫ sd(y)).
        """
        ones = np.flatnonzero(np.all(self.design.X == 1.0, axis=0))
        return (int(ones[0]), float(np.mean(self._y_minus_offset(self.design.y)))) if ones.size else None

    def _y_minus_offset(self, y: np.ndarray) -> np.ndarray:
        return y if self.design.offset is None else y - self.design.offset

    @cached_property
    def sqrt_weights(self) -> np.ndarray | None:
        """``√wᵢ`` of the prior weights (None without weights): rows of ``[Z X y]`` are scaled by it."""
        return None if self.design.weights is None else np.sqrt(self.design.weights)

    @cached_property
    def logdet_r(self) -> float:
        """``log|R₀|`` of the relative residual covariance: ``−Σ log wᵢ`` with prior weights, else 0."""
        return 0.0 if self.design.weights is None else -float(np.sum(np.log(self.design.weights)))

    @cached_property
    def engine_terms(self) -> tuple:
        """The random-effects terms as the engine sees them (columns scaled by :attr:`sqrt_weights`)."""
        sw = self.sqrt_weights
        if sw is None:
            return self.design.terms
        return tuple(dataclasses.replace(t, z=t.z * sw[:, None]) for t in self.design.terms)

    @cached_property
    def engine_X(self) -> np.ndarray:
        """X as the engine sees it (rows scaled by :attr:`sqrt_weights`)."""
        sw = self.sqrt_weights
        return self.design.X if sw is None else self.design.X * sw[:, None]

    def engine_y(self, y: np.ndarray) -> np.ndarray:
        """A response as the engine sees it: less the offset and the centring shift, scaled by :attr:`sqrt_weights`."""
        out = self._y_minus_offset(y) - (self.y_shift[1] if self.y_shift else 0.0)
        return out if self.sqrt_weights is None else out * self.sqrt_weights

    @cached_property
    def crossprods(self) -> CrossProducts:
        """Cross-products of the engine's ``[Z X y]`` (computed once)."""
        return CrossProducts.from_arrays(self.engine_terms, self.engine_X, self.engine_y(self.design.y))

    @cached_property
    def factor(self) -> BlockedCholesky:
        """The blocked Cholesky factor, updated by each objective evaluation."""
        return BlockedCholesky(self.design.terms, self.crossprods)

    # ------------------------------------------------------------------ parameters: θ (G-side), then ρ (R-side)
    @cached_property
    def whitening(self) -> Whitening | None:
        """The residual structure bound to the rows, ready to whiten (None for iid residuals)."""
        if self.residual_spec is None:
            return None
        binding = bind(self.residual_spec, self.design.frame)
        return Whitening(binding.structure(), binding, self.engine_terms, self.engine_X, self.engine_y(self.design.y))

    @property
    def residual_structure(self):
        """The residual covariance structure (None for iid residuals)."""
        return None if self.whitening is None else self.whitening.structure

    @property
    def n_theta(self) -> int:
        """Number of random-effects covariance parameters θ (the first entries of the parameter vector)."""
        return sum(t.ntheta for t in self.terms)

    @cached_property
    def variance(self) -> VarianceFunction | None:
        """The variance function bound to the rows (None without one)."""
        if self.variance_spec is None:
            return None
        spec = self.variance_spec
        return VarianceFunction(spec, None if spec.of_fitted else self.design.frame[spec.column])

    @property
    def n_rho(self) -> int:
        """Number of residual-structure parameters (after θ in the parameter vector; the variance function's follow)."""
        return 0 if self.whitening is None else self.whitening.structure.npar

    @property
    def iid_residuals(self) -> bool:
        """True for lme4's residuals σ²I (or σ²W⁻¹ with prior weights): no structure, no variance function."""
        return self.whitening is None and self.variance is None

    @cached_property
    def _residual_start(self) -> np.ndarray:
        """Start of the residual structure's and the variance function's parameters."""
        w = self.whitening
        parts = [np.zeros(0)]
        if w is not None:
            d = self.design
            beta = np.linalg.lstsq(d.X, self._y_minus_offset(d.y), rcond=None)[0]
            parts.append(w.structure.start(resid=self._y_minus_offset(d.y) - d.X @ beta, binding=w.binding))
        if self.variance is not None:
            parts.append(self.variance.start())
        return np.concatenate(parts)

    @property
    def theta_start(self) -> np.ndarray:
        """Start of the parameters: lme4's (identity λ for every term), then the residual structure's."""
        return self._bounds_and_start[0].copy()

    @property
    def lower_bounds(self) -> np.ndarray:
        """Lower bounds: 0 for diagonal elements of each λ, -inf otherwise (the residual parameters are unconstrained)."""
        return self._bounds_and_start[1].copy()

    @cached_property
    def _bounds_and_start(self) -> tuple[np.ndarray, np.ndarray]:
        start = np.concatenate([t.theta_start for t in self.terms] + [self._residual_start])
        lower = np.concatenate([t.lower_bounds for t in self.terms] + [np.full(self._residual_start.size, -np.inf)])
        return start, lower

    @property
    def theta_names(self) -> list[str]:
        """lme4's names for θ, then the residual structure's parameter names."""
        names = [name for t in self.terms for name in t.theta_names]
        w, v = self.whitening, self.variance
        names += [] if w is None else [f"residual.{n}" for n in w.structure.names]
        return names + ([] if v is None else [f"variance.{n}" for n in v.names])

    def state(self, params: np.ndarray, *, fresh: bool = False) -> tuple[BlockedCholesky, float]:
        """The factor updated at ``params`` (θ, then ρ) and ``log|R₀|``; ``fresh``: a factor of its own.

        Raises
        ------
        numpy.linalg.LinAlgError
            When the residual covariance at ρ is not numerically positive definite.
        """
        params = np.asarray(params, dtype=float)
        if self.iid_residuals:
            # a fresh factor shares the structure (block kinds, Gram maps) of the model's own
            f = self.factor.with_crossproducts(self.crossprods) if fresh else self.factor
            return f.update(params), self.logdet_r
        k, kr = self.n_theta, self.n_theta + self.n_rho
        logdet = self.logdet_r
        scale = None
        if self.variance is not None:  # rows divided by g: Var(εᵢ) = σ² gᵢ²
            log_g = self.variance.log_sd(params[kr:])
            scale = np.exp(-log_g)
            logdet += 2.0 * float(log_g.sum())
        if self.whitening is not None:
            cp, logdet_c = self.whitening.at(params[k:kr], row_scale=scale)
            logdet += logdet_c
        else:
            terms = tuple(dataclasses.replace(t, z=t.z * scale[:, None]) for t in self.engine_terms)
            cp = CrossProducts.from_arrays(terms, self.engine_X * scale[:, None], self.engine_y(self.design.y) * scale)
        return self.factor.with_crossproducts(cp).update(params[:k]), logdet

    def residual_sd_scale(self, delta: np.ndarray) -> np.ndarray | None:
        """Each row's residual SD relative to σ apart from the structure's ``C``: ``gᵢ(δ)/√wᵢ`` (None when 1)."""
        scale = None if self.sqrt_weights is None else 1.0 / self.sqrt_weights
        if self.variance is not None:
            g = np.exp(self.variance.log_sd(delta))
            scale = g if scale is None else scale * g
        return scale

    def criterion_at(self, params: np.ndarray, *, reml: bool | None = None, sigma: float | None = None) -> float:
        """The criterion (REML or ML, profiled over σ unless ``sigma``) at ``params``: the one objective of the model."""
        try:
            f, logdet_r = self.state(params)
        except (np.linalg.LinAlgError, ModelError):
            if self.iid_residuals:  # the penalised system itself failed: as before, an error
                raise
            return _UNREACHABLE  # a residual covariance too close to singular to factor
        n, p = self.nobs, self.design.X.shape[1]
        return criterion(f, reml=self.reml if reml is None else reml, n=n, p=p, sigma=sigma, logdet_r=logdet_r)

    def with_response(self, y: np.ndarray) -> "LinearMixedModel":
        """The same model for a new response vector (same rows, X and Z), sharing Z's cross-products and structure."""
        y = np.asarray(y, dtype=float).reshape(-1)
        if y.shape != self.design.y.shape:
            raise ModelError(f"the new response has {y.size} values; the model has {self.nobs} observations")
        if not np.all(np.isfinite(y)):
            raise ModelError("the new response has missing or infinite values")
        d = self.design
        degenerate = exact_response(self._y_minus_offset(y), d.X, d.response_name)  # of this response, not the model's
        new = self._like(dataclasses.replace(d, y=y, degenerate=degenerate), self.reml)
        cp = self.crossprods.with_response(self.engine_terms, self.engine_X, new.engine_y(y))
        new.__dict__["crossprods"] = cp
        new.__dict__["factor"] = self.factor.with_crossproducts(cp)
        return new

    def with_reml(self, reml: bool) -> "LinearMixedModel":
        """The same model fitted by the other criterion (shares the cross-products)."""
        new = self._like(self.design, reml)
        new.__dict__["crossprods"] = self.crossprods
        new.__dict__["factor"] = self.factor.with_crossproducts(self.crossprods)
        return new

    def with_control(self, control: OptimizerControl) -> "LinearMixedModel":
        """The same model with other optimizer settings (shares the cross-products)."""
        new = self._like(self.design, self.reml)
        new.control = control
        new.__dict__["crossprods"] = self.crossprods
        new.__dict__["factor"] = self.factor.with_crossproducts(self.crossprods)
        return new

    def objective(self, theta: np.ndarray, reml: bool | None = None) -> float:
        """REML criterion or ML deviance at ``theta`` (θ, then any residual parameters)."""
        return self.criterion_at(theta, reml=reml)

    @engine_threads
    def fit(self, *, start: np.ndarray | None = None, check_convergence: bool = True, warn: bool = True):
        """Estimate θ by minimising the profiled objective; returns a :class:`LinearMixedModelResults`.

        ``warn=False`` keeps the singular-fit and convergence warnings in the result (``.warnings``)
        without emitting them. With a power of the fitted values (``variance="power()"``) the fit
        alternates, as nlme's: the parameters at fixed fitted values, then the fitted values, until
        both settle (relative change below 1e-6, at most :data:`FITTED_ITERATIONS` rounds).
        """
        if self.variance is not None and self.variance.spec.of_fitted:
            return self._fit_fitted_power(start, check_convergence, warn)
        return self._fit_once(start, check_convergence, warn)

    def _fit_fitted_power(self, start: np.ndarray | None, check_convergence: bool, warn: bool):
        v = self.variance
        if v.x is None:  # nlme starts from the fit at δ = 0; least squares is as good a start for the fixed point
            d = self.design
            beta = np.linalg.lstsq(d.X, self._y_minus_offset(d.y), rcond=None)[0]
            v.set_covariate(d.X @ beta + (0.0 if d.offset is None else d.offset))
        result = None
        for _ in range(FITTED_ITERATIONS):
            result = self._fit_once(start if result is None else result.theta, check_convergence, warn=False)
            mu = result.fitted
            moved = np.max(np.abs(mu - v.x) / np.maximum(np.abs(v.x), 1e-8))
            if moved < FITTED_TOL:
                break
            v.set_covariate(mu)
        else:
            result.fit_record = dataclasses.replace(
                result.fit_record,
                warnings=result.fit_record.warnings + (
                    f"the fitted values of power() did not settle in {FITTED_ITERATIONS} rounds (change {moved:.2g})",),
            )
        if warn:
            result.emit_warnings()
        return result

    def _fit_once(self, start: np.ndarray | None, check_convergence: bool, warn: bool):
        """One minimisation of the criterion from ``start`` (the variance function's covariate fixed)."""
        obj = self.criterion_at
        x0 = self.theta_start if start is None else np.asarray(start, dtype=float)
        if x0.shape != self.theta_start.shape:
            raise ModelError(f"start must have {self.theta_start.size} elements, got {x0.size}")
        if not np.all(np.isfinite(x0)) or np.any(x0 < self.lower_bounds):
            raise ModelError(f"start must be finite and within the bounds of theta (diagonal elements >= 0), got {x0.tolist()}")
        if self.design.degenerate:
            theta, value, record = self._degenerate_fit(x0)
        elif self._unstructured_marginal is not None:  # (fit() runs all of this under the engine's BLAS policy)
            theta, record = self._unstructured_marginal.fit(x0, check=check_convergence and self.control.check_conv)
            value = self.criterion_at(theta)
        elif self._spectral is not None:
            theta, value, record = self._spectral.fit(x0)
        else:
            theta, value, record = optimize_theta(
                obj, x0, self.lower_bounds, check=check_convergence, control=self.control,
                boundary=lambda th: boundary_components(self.terms, th),
            )
        result = self._make_results(theta, value, record)
        if warn:
            result.emit_warnings()
        return result

    def _make_results(self, theta: np.ndarray, value: float, record: FitRecord):
        """The results object of a fit (a subclass's own kind: a fit on Dask data keeps no rows)."""
        from .results import LinearMixedModelResults

        return LinearMixedModelResults(self, theta, value, record)

    @cached_property
    def _unstructured_marginal(self):
        """The quasi-Newton path with an analytic gradient (:mod:`.engine.marginal`) when the model is an
        unstructured MMRM (no random effects, no variance function, a factor time), else None. Any
        optimizer other than the default, when asked for, takes the general path."""
        from .engine.marginal import UnstructuredMarginal

        w = self.whitening
        if (w is None or w.structure.kind != "us" or self.terms or self.variance is not None or w.moments is None
                or self.control.optimizer != "bobyqa"):
            return None
        return UnstructuredMarginal(w, self.nobs, self.design.X.shape[1], self.reml, self.logdet_r)

    @cached_property
    def _spectral(self):
        """The FaST-LMM path (:mod:`.genetics.spectral`: one known-covariance term, one record per level, iid
        residuals), else None."""
        if not any(t.rotated for t in self.terms):
            return None
        from .genetics.spectral import spectral_path

        return spectral_path(self)

    def _degenerate_fit(self, x0: np.ndarray) -> tuple[np.ndarray, float, FitRecord]:
        """The fit of a response the fixed effects reproduce exactly: every θ gives a criterion of −∞ and a
        residual SD of 0, so every variance component is taken as 0 (lme4 leaves θ wherever it stopped)."""
        theta = np.zeros_like(self.theta_start)
        record = FitRecord(
            optimizer="none (degenerate fit)", evaluations=0, seconds=0.0, return_code=1, message="NLOPT_SUCCESS",
            theta_start=tuple(float(v) for v in x0),
            warnings=("boundary (singular) fit: see help('isSingular')",),
        )
        return theta, -math.inf, record

    def fit_best(self, starts: list[np.ndarray], *, check_convergence: bool = True, warn: bool = True):
        """Fit from each start and keep the lowest objective (its warnings are emitted, the others' not).

        Used where one start can sit in a poor place: a refit by ML from REML estimates on the
        boundary, a profile point's conditional optimum.
        """
        fits = []
        for start in starts:
            if any(np.array_equal(start, f.fit_record.theta_start) for f in fits):
                continue
            fits.append(self.fit(start=start, check_convergence=check_convergence, warn=False))
        best = min(fits, key=lambda f: f.objective)
        if warn:
            best.emit_warnings()
        return best

    def theta_off_boundary(self, theta: np.ndarray, floor: float = 0.1) -> np.ndarray:
        """``theta`` with every diagonal element of λ below ``floor`` raised to it (a start in the interior)."""
        theta = np.array(theta, dtype=float)
        low = (self.lower_bounds == 0) & (theta < floor)
        theta[low] = floor
        return theta
