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
        if any(t.rotated for t in terms):
            raise ModelError("implied_covariance(newdata=...) has no relationship of new rows to a known covariance K; "
                             "use group= and level=")
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
    model = result.model
    binding = None if model.whitening is None else model.whitening.binding
    matches = [t for t in terms if t.group == group]
    if matches:
        t0 = matches[0]
        key = str(level)
        labels = [str(v) for v in t0.levels]
        if key not in labels:
            raise DataError(f"level {level!r} of {group!r} is not in the data")
        rows = np.flatnonzero(t0.refs == labels.index(key))
    elif binding is not None and group == binding.spec.subject:  # a subject of the residual structure
        labels = [str(v) for v in binding.subject_levels]
        if str(level) not in labels:
            raise DataError(f"level {level!r} of {group!r} is not in the data")
        rows = np.flatnonzero(binding.subject == labels.index(str(level)))
    else:
        groups = list(dict.fromkeys(t.group for t in terms)) + ([binding.spec.subject] if binding is not None else [])
        what = "random-effects term" + (" or residual structure" if binding is not None else "")
        raise ModelError(f"no {what} is grouped by {group!r}; groups: {', '.join(groups)}")
    if binding is not None:  # in the structure's order: by subject, then time
        rows = rows[np.lexsort((binding.time[rows], binding.subject[rows]))]
    V = _residual_block(result, rows)
    for t, G in zip(terms, covs):
        z = t.z[rows]
        V += t.relationship(t.refs[rows], t.refs[rows]) * (z @ G @ z.T)
    design = result.design
    if label is not None:
        if design.frame is None or label not in design.frame.columns:
            raise DataError(f"label column {label!r} is not a variable of the model")
        names = list(design.frame[label].to_numpy()[rows])
    else:
        names = list(design.row_index[rows])
    return _finish(V, names)


def _residual_block(result: "LinearMixedModelResults", rows: np.ndarray) -> np.ndarray:
    """``R`` on ``rows``: σ²/wᵢ on the diagonal, times the variance function's ``g``'s and, within each
    subject of a residual structure, its relative covariance ``C`` at the subjects' times."""
    model = result.model
    full = model.residual_sd_scale(result.delta)
    scale = np.ones(rows.size) if full is None else full[rows]
    C = np.eye(rows.size)
    if model.whitening is not None:
        b, structure = model.whitening.binding, model.whitening.structure
        subj = b.subject[rows]
        for s in np.unique(subj):
            idx = np.flatnonzero(subj == s)
            C[np.ix_(idx, idx)] = structure.cov(result.rho, b.time[rows[idx]], int(b.subject_group[s]))
    return result.sigma**2 * (scale[:, None] * C * scale[None, :])
