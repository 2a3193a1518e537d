"""The marginal covariance a fitted model implies: ``V = Σ_k Z_k G_k Z_k' + σ² I``.

Two rows share a term's random effect when they have the same level of its grouping factor;
the covariance of the two observations is then ``z_i' G_k z_j`` summed over such terms. A random
intercept gives the same correlation for every pair of a subject's observations; a random slope
makes it depend on the covariate values, e.g. decrease with the time between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..exceptions import DataError, ModelError
from ..formula.design import prepare_newdata
from ..formula.safety import evaluation_context

if TYPE_CHECKING:
    from ..results import LinearMixedModelResults


@dataclass(frozen=True)
class ImpliedCovariance:
    """Marginal covariance and correlation matrices of a set of observations (labelled DataFrames)."""

    covariance: pd.DataFrame
    correlation: pd.DataFrame

    def _repr_html_(self) -> str:
        return "<p><b>Implied correlation</b></p>" + self.correlation.round(3).to_html()

    def __str__(self) -> str:
        return f"Implied covariance:\n{self.covariance.round(4)}\n\nImplied correlation:\n{self.correlation.round(3)}"


def _finish(V: np.ndarray, labels: list) -> ImpliedCovariance:
    sd = np.sqrt(np.diag(V))
    C = V / np.outer(sd, sd)
    idx = pd.Index(labels)
    return ImpliedCovariance(pd.DataFrame(V, index=idx, columns=idx), pd.DataFrame(C, index=idx, columns=idx))


def implied_covariance(
    result: "LinearMixedModelResults",
    *,
    group: str | None = None,
    level: object = None,
    newdata: pd.DataFrame | None = None,
    label: str | None = None,
) -> ImpliedCovariance:
    """Marginal covariance and correlation of observations under the fitted model.

    Either the observations of one level of a grouping factor in the data
    (``group="Subject", level="308"``), or the rows of ``newdata`` taken as one new subject of
    every grouping factor (``newdata=pd.DataFrame({"Days": range(10)})``).

    Parameters
    ----------
    result : LinearMixedModelResults
    group, level : str, object
        Grouping factor (as named in the formula) and one of its levels.
    newdata : pandas.DataFrame
        Covariate values of the hypothetical observations.
    label : str, optional
        Column whose values label the rows and columns (default: the data's row index for
        ``group``, the first column of ``newdata`` otherwise).

    Returns
    -------
    ImpliedCovariance
    """
    terms = result.terms
    sigma2 = result.sigma**2
    covs = [c.to_numpy() for c in result.covariances]
    if newdata is not None:
        if group is not None:
            raise ModelError("give either group and level, or newdata")
        design = result.design
        frame = prepare_newdata(design, newdata)
        n = len(frame)
        if n == 0:
            raise DataError("newdata has no rows")
        V = sigma2 * np.eye(n)
        for t, G in zip(terms, covs):
            try:
                z = np.asarray(
                    t.spec.get_model_matrix(design.formulaic_frame(frame), context=evaluation_context(), na_action="raise"),
                    dtype=float,
                )
            except Exception as exc:  # noqa: BLE001 - formulaic raises many types
                raise DataError(f"cannot build the columns of term ({' + '.join(t.cnames)} | {t.group}) for newdata: {str(exc).splitlines()[0]}") from None
            V += z @ G @ z.T
        name = label if label is not None else frame.columns[0]
        if name not in frame.columns:
            raise DataError(f"label column {name!r} is not in newdata")
        return _finish(V, list(frame[name]))
    if group is None:
        raise ModelError("give group and level (a subject in the data) or newdata (covariate values)")
    matches = [t for t in terms if t.group == group]
    if not matches:
        raise ModelError(f"no random-effects term is grouped by {group!r}; groups: {', '.join(dict.fromkeys(t.group for t in terms))}")
    t0 = matches[0]
    key = str(level)
    labels = [str(v) for v in t0.levels]
    if key not in labels:
        raise DataError(f"level {level!r} of {group!r} is not in the data")
    rows = np.flatnonzero(t0.refs == labels.index(key))
    w = result.design.weights
    V = sigma2 * np.diag(np.ones(rows.size) if w is None else 1.0 / w[rows])  # Var(εᵢ) = σ²/wᵢ
    for t, G in zip(terms, covs):
        z = t.z[rows]
        same = t.refs[rows][:, None] == t.refs[rows][None, :]
        V += same * (z @ G @ z.T)
    design = result.design
    if label is not None:
        if design.frame is None or label not in design.frame.columns:
            raise DataError(f"label column {label!r} is not a variable of the model")
        names = list(design.frame[label].to_numpy()[rows])
    else:
        names = list(design.row_index[rows])
    return _finish(V, names)
