"""A linear mixed model whose rows stay on a Dask cluster: the engine reads only the reduced cross-products.

:class:`DaskLinearMixedModel` is a :class:`~mixedmodels.model.LinearMixedModel` whose design holds no rows
(``X`` is ``0 × p``, every term's ``z`` is ``0 × p_k``) and whose cross-products, number of observations
and centring shift come from the passes over the partitions. θ is optimised on the driver exactly as for
data in memory: every evaluation reads the factor of the cross-products only.

:class:`DaskResults` offers what reads the factor — estimates, SEs, variance components, likelihood,
Satterthwaite and Kenward–Roger df, Wald intervals, conditional modes, compare/LRT, the exact RLRT,
predictions for new data — and computes row-level quantities lazily per partition
(:meth:`DaskResults.fitted_dask`, :meth:`DaskResults.residuals_dask`, :meth:`DaskResults.predict` of a
Dask DataFrame). What needs the rows in one place (``fitted``/``residuals`` arrays, Type III ANOVA,
emmeans, simulate/refit, bootstrap and profile intervals, ICC/R², saving) raises a clear error.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from ..engine import CrossProducts
from ..exceptions import DataError, ModelError
from ..formula.coding import coerce_columns
from ..formula.design import Design
from ..formula.safety import evaluation_context
from ..model import LinearMixedModel
from ..optimize import OptimizerControl
from ..report.summary import Summary
from ..results import LinearMixedModelResults
from .plan import LevelTable


class DaskLinearMixedModel(LinearMixedModel):
    """A linear mixed model from reduced cross-products (see the module docstring).

    Parameters
    ----------
    design : Design
        The design without rows (names, encodings, terms with their levels).
    crossprods : CrossProducts
        Of ``[Z X y − shift]`` over every complete row, X restricted to the kept columns.
    nobs : int
        Observations (complete rows).
    y_shift : tuple of (int, float) or None
        The intercept's column and the shift subtracted from the response.
    tables : tuple of LevelTable
        Each term's level table (the design's term order).
    response_spec : formulaic.ModelSpec
        Evaluates the response on a partition.
    used_columns : tuple of str
        The columns the model uses, and ``response_columns`` those of the response only.
    source : dask.dataframe.DataFrame, optional
        The data, for the lazy row-level reads.
    reml, data_name, control
        As :class:`~mixedmodels.model.LinearMixedModel`.
    """

    def __init__(
        self,
        design: Design,
        crossprods: CrossProducts,
        nobs: int,
        y_shift: tuple[int, float] | None,
        tables: tuple[LevelTable, ...],
        *,
        response_spec: Any = None,
        used_columns: tuple[str, ...] = (),
        response_columns: tuple[str, ...] = (),
        source: Any = None,
        reml: bool = True,
        data_name: str | None = None,
        control: OptimizerControl | None = None,
    ) -> None:
        if not design.terms:
            raise ModelError("the formula has no random-effects terms such as (1 | g); fit a linear model instead")
        p = design.X.shape[1]
        if reml and nobs <= p:
            raise ModelError(f"REML needs more observations ({nobs}) than fixed effects ({p})")
        self.design = design
        self.reml = reml
        self.data_name = data_name
        self.na_action = "omit"
        self.control = control if control is not None else OptimizerControl()
        self.residual_spec = None
        self.variance_spec = None
        self.tables = tables
        self.response_spec = response_spec
        self.used_columns = tuple(used_columns)
        self.response_columns = tuple(response_columns)
        self.source = source
        self._nobs = int(nobs)
        self.timings: dict[str, float] = {}  # seconds per stage of building the model (see mixedmodels.scale.fit)
        self.__dict__["crossprods"] = crossprods
        self.__dict__["y_shift"] = y_shift

    @property
    def nobs(self) -> int:
        """Number of observations used (complete rows over every partition)."""
        return self._nobs

    @cached_property
    def y_shift(self) -> tuple[int, float] | None:  # set at construction; never computed from rows
        return None

    def _like(self, design: Design, reml: bool) -> DaskLinearMixedModel:
        return DaskLinearMixedModel(
            design, self.crossprods, self.nobs, self.y_shift, self.tables, response_spec=self.response_spec,
            used_columns=self.used_columns, response_columns=self.response_columns, source=self.source, reml=reml,
            data_name=self.data_name, control=self.control,
        )

    def with_response(self, y: np.ndarray) -> LinearMixedModel:
        raise ModelError(_rows_message("a refit to a new response (simulate, refit, bootstrap)"))

    def _make_results(self, theta: np.ndarray, value: float, record: Any) -> DaskResults:
        return DaskResults(self, theta, value, record)


def _rows_message(what: str) -> str:
    return (
        f"{what} needs the rows in one place, and this fit's rows stay in the Dask DataFrame; fitted values and "
        "residuals are available lazily (fit.fitted_dask(), fit.residuals_dask(), fit.predict(ddf))"
    )


class _DaskSummary(Summary):
    """lme4's summary without the scaled residuals' quartiles (a fit on Dask data keeps no rows)."""

    def scaled_residuals(self) -> str:
        return "Scaled residuals: not computed for a fit on Dask data (fit.residuals_dask() gives them lazily)"


class DaskResults(LinearMixedModelResults):
    """A linear mixed model fitted on a Dask DataFrame (see the module docstring)."""

    model: DaskLinearMixedModel

    # ------------------------------------------------------------------ row-level reads: lazy or refused
    @property
    def fitted(self) -> np.ndarray:  # type: ignore[override]
        raise ModelError(_rows_message("fitted values as one array"))

    @property
    def fitted_fixed(self) -> np.ndarray:  # type: ignore[override]
        raise ModelError(_rows_message("fitted values as one array"))

    @property
    def residuals(self) -> np.ndarray:  # type: ignore[override]
        raise ModelError(_rows_message("residuals as one array"))

    @property
    def residuals_fixed(self) -> np.ndarray:  # type: ignore[override]
        raise ModelError(_rows_message("residuals as one array"))

    @cached_property
    def predictor(self) -> Predictor:
        """What a partition needs to be predicted (shipped to the workers instead of the fit)."""
        return Predictor(self.model, self.beta, tuple(self._b_by_term))

    def fitted_dask(self, include_random: bool = True):
        """Fitted values ``Xβ̂ + Zb̂`` (``include_random=False``: ``Xβ̂``) of the rows used, as a lazy Dask Series."""
        return self._rows(include_random, residual=False)

    def residuals_dask(self, include_random: bool = True):
        """Residuals ``y − Xβ̂ − Zb̂`` of the rows used, as a lazy Dask Series (divide by ``fit.sigma`` to scale them)."""
        return self._rows(include_random, residual=True)

    def _rows(self, include_random: bool, residual: bool):
        ddf = self.model.source
        if ddf is None:
            raise ModelError("this fit does not hold its Dask DataFrame")
        return ddf[list(self.model.used_columns)].map_partitions(
            _partition_rows, self.predictor, include_random, residual, meta=pd.Series(dtype=float, name="resid" if residual else "fitted")
        )

    def predict(self, newdata: Any = None, *, include_random: bool = True, allow_new_levels: bool = True):
        """Predictions: for a Dask DataFrame a lazy Dask Series (missing where a predictor is), for pandas data an
        array (as :meth:`LinearMixedModelResults.predict`); without ``newdata`` the fitted values, lazily."""
        if newdata is None:
            return self.fitted_dask(include_random)
        if _is_dask(newdata):
            cols = [c for c in self.model.used_columns if c not in self.model.response_columns]
            missing = [c for c in cols if c not in newdata.columns]
            if missing:
                raise DataError(f"newdata lacks variable(s) {', '.join(missing)}")
            return newdata[cols].map_partitions(
                _partition_predict, self.predictor, include_random, allow_new_levels, meta=pd.Series(dtype=float, name="fit")
            )
        return super().predict(newdata, include_random=include_random, allow_new_levels=allow_new_levels)

    def _level_index(self, term: Any) -> pd.Index:
        """A term's levels in the grouping column's own type (integers stay integers)."""
        table = self.model.tables[list(self.terms).index(term)]
        if len(table.group_vars) == 1:
            values = table.values[0]
            if pd.api.types.is_string_dtype(values.dtype):  # Dask's string columns: strings as the in-memory fit keeps them
                values = values.astype(object)
            return pd.Index(values, name=term.group)
        return pd.Index(list(term.levels), name=term.group)

    # ------------------------------------------------------------------ what needs the rows
    def simulate(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise ModelError(_rows_message("simulate()"))

    def refit(self, *args: Any, **kwargs: Any) -> LinearMixedModelResults:
        raise ModelError(_rows_message("refit()"))

    def anova(self, ddf: str = "satterthwaite") -> pd.DataFrame:
        raise ModelError(_rows_message("anova() (its Type III contrasts are built from the rows)") + "; use contest(L) for an F-test")

    def emmeans(self, *args: Any, **kwargs: Any):
        raise ModelError(_rows_message("emmeans() (its reference grid reads the data)"))

    def icc(self, **kwargs: Any) -> pd.DataFrame:
        raise ModelError(_rows_message("icc()"))

    def r2(self, **kwargs: Any) -> dict[str, float]:
        raise ModelError(_rows_message("r2()"))

    def implied_covariance(self, **kwargs: Any):
        raise ModelError(_rows_message("implied_covariance()"))

    def confint(self, method: str = "wald", level: float = 0.95, **kwargs: Any) -> pd.DataFrame:
        """Wald intervals (profile and bootstrap intervals refit the model to changed rows)."""
        if method != "wald":
            raise ModelError(_rows_message(f"confint({method!r})") + "; confint('wald') is available")
        return super().confint(method, level, **kwargs)

    def profile(self, level: float = 0.95, **kwargs: Any):
        raise ModelError(_rows_message("profile()"))

    def report(self, path: str, **kwargs: Any) -> str:
        raise ModelError(_rows_message("the HTML report (its diagnostics plot the residuals)"))

    def save(self, path: str) -> Any:
        raise ModelError(_rows_message("save()"))

    def summary(self, ddf: str | None = "satterthwaite"):
        """lme4's summary; the scaled residuals' quartiles are left out (:meth:`residuals_dask` gives the residuals)."""
        return _DaskSummary(self, ddf=ddf)


def _is_dask(data: Any) -> bool:
    return type(data).__module__.split(".")[0] in ("dask", "dask_expr") and hasattr(data, "map_partitions")


class Predictor:
    """Everything a partition needs to be predicted: encodings, β̂, the level tables and the conditional modes."""

    def __init__(self, model: DaskLinearMixedModel, beta: np.ndarray, b: tuple[np.ndarray, ...]) -> None:
        design = model.design
        self.fixed_spec = design.fixed_spec
        self.response_spec = model.response_spec
        self.kept = np.asarray(design.kept_columns)
        self.aliases = dict(design.aliases)
        self.term_specs = [t.spec for t in design.terms]
        self.tables = model.tables
        self.beta = np.asarray(beta)
        self.b = b
        self.group_vars = tuple(dict.fromkeys(g for t in design.terms for g in t.group_vars))

    def __call__(self, frame: pd.DataFrame, include_random: bool, allow_new_levels: bool = True) -> np.ndarray:
        """Predictions for the rows of ``frame`` (coerced, without missing values); a level of a grouping factor
        not seen in fitting gets a random effect of 0 unless ``allow_new_levels`` is False (then an error)."""
        ctx = evaluation_context()
        fframe = frame.rename(columns=self.aliases) if self.aliases else frame
        X = np.asarray(self.fixed_spec.get_model_matrix(fframe, context=ctx, na_action="ignore"), dtype=float)
        pred = X[:, self.kept] @ self.beta
        if include_random:
            for spec, table, b in zip(self.term_specs, self.tables, self.b):
                z = np.asarray(spec.get_model_matrix(fframe, context=ctx, na_action="ignore"), dtype=float)
                refs = table.refs(frame, unknown=allow_new_levels)
                pred = pred + np.where(refs >= 0, np.einsum("np,np->n", z, b[np.maximum(refs, 0)]), 0.0)
        return pred

    def response(self, frame: pd.DataFrame) -> np.ndarray:
        """The response of the rows of ``frame``."""
        fframe = frame.rename(columns=self.aliases) if self.aliases else frame
        return np.asarray(self.response_spec.get_model_matrix(fframe, context=evaluation_context(), na_action="ignore"), dtype=float)[:, 0]


def _partition_predict(part: pd.DataFrame, predictor: Predictor, include_random: bool, allow_new_levels: bool) -> pd.Series:
    out = np.full(len(part), np.nan)
    ok = part.notna().all(axis=1).to_numpy()
    if ok.any():
        frame = coerce_columns(part.loc[ok], predictor.group_vars)
        out[ok] = predictor(frame, include_random, allow_new_levels)
    return pd.Series(out, index=part.index, name="fit")


def _partition_rows(part: pd.DataFrame, predictor: Predictor, include_random: bool, residual: bool) -> pd.Series:
    name = "resid" if residual else "fitted"
    part = part.loc[part.notna().all(axis=1).to_numpy()]
    if not len(part):
        return pd.Series(np.zeros(0), index=part.index, name=name)
    frame = coerce_columns(part, predictor.group_vars)
    pred = predictor(frame, include_random, allow_new_levels=False)
    return pd.Series(predictor.response(frame) - pred if residual else pred, index=part.index, name=name)
