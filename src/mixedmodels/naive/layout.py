"""The long data every naive analysis reads: who the subjects are, what time is, which factors are between subjects.

A mixed-model fit knows its response and fixed effects; the naive analyses also need the subject
(whose repeated observations they mistreat), the time or visit variable (the within-subject factor)
and the between-subject factors the t-tests and the RM-ANOVA compare. :func:`resolve_layout` finds
them from the fit when they are not named: the subject is the grouping factor of the random effects
(or the residual structure's subject), time is the residual structure's time, else the numeric random
slope of the subject's term, else the one fixed-effects variable that varies within subjects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..exceptions import DataError, ModelError
from ..inference.emmeans_grid import r_label

if TYPE_CHECKING:
    from ..results import LinearMixedModelResults

MAX_TIMES = 50


@dataclass(frozen=True)
class Layout:
    """One row per observation used by the fit, with its subject, time level and between-subject factors.

    Attributes
    ----------
    response : str
        Name of the response (as the formula writes it).
    subject, time : str
        The subject and time columns.
    between : tuple of str
        Categorical between-subject factors of the fixed effects, in the formula's order.
    notes : tuple of str
        Fixed-effects variables left out of the between-subject analyses, and why.
    long : pandas.DataFrame
        Columns ``subject`` (labels as str), ``time`` (level code 0..K-1), ``y`` and one column per
        between-subject factor (labels as str), in the fit's row order.
    levels : tuple
        The time levels in order (numbers ascending; a factor's levels in its order).
    positions : numpy.ndarray
        A number per time level: the value itself for numeric time, 1..K for a factor (the x of the
        per-subject slopes).
    time_numeric : bool
        Whether time is a numeric variable.
    between_levels : dict
        The levels (str) of each between-subject factor, in the fit's order.
    """

    response: str
    subject: str
    time: str
    between: tuple[str, ...]
    notes: tuple[str, ...]
    long: pd.DataFrame
    levels: tuple
    positions: np.ndarray
    time_numeric: bool
    between_levels: dict

    @property
    def labels(self) -> list[str]:
        """Time levels as R prints them (``9``, not ``9.0``)."""
        return [r_label(v) for v in self.levels]

    @property
    def n_times(self) -> int:
        """Number of time levels."""
        return len(self.levels)

    @property
    def subjects(self) -> list[str]:
        """Subject labels in order of first appearance."""
        return list(pd.unique(self.long["subject"]))

    def wide(self, values: np.ndarray | None = None) -> pd.DataFrame:
        """Subjects × time levels of ``values`` (default the response); NaN where a subject has no observation."""
        v = self.long["y"].to_numpy() if values is None else np.asarray(values, dtype=float)
        frame = pd.DataFrame({"subject": self.long["subject"].to_numpy(), "time": self.long["time"].to_numpy(), "v": v})
        out = frame.pivot(index="subject", columns="time", values="v")
        out = out.reindex(index=self.subjects, columns=range(self.n_times))
        out.columns = self.labels
        return out

    def subject_table(self) -> pd.DataFrame:
        """One row per subject: its between-subject factors (labels), in order of first appearance."""
        cols = ["subject", *self.between]
        return self.long[cols].drop_duplicates("subject").set_index("subject").reindex(self.subjects)


def source_frame(fit: "LinearMixedModelResults", data: pd.DataFrame | None) -> pd.DataFrame:
    """The data columns of the rows the fit used: its own frame, or those rows of ``data``."""
    design = fit.design
    if data is None:
        if design.frame is None:
            raise ModelError("the fit does not keep its data; pass data=")
        return design.frame
    missing = design.row_index.difference(data.index)
    if len(missing):
        raise DataError("data does not have the rows the model was fitted to (its index differs from the fit's data)")
    return data.loc[design.row_index]


def _groups(fit: "LinearMixedModelResults", frame: pd.DataFrame) -> list[str]:
    names = [t.group for t in fit.terms if t.group in frame.columns]
    binding = fit.residual_binding
    if binding is not None and binding.spec.subject in frame.columns:
        names.append(binding.spec.subject)
    return list(dict.fromkeys(names))


def fixed_variables(fit: "LinearMixedModelResults") -> tuple[list[str], frozenset[str]]:
    """The data columns of the fixed effects, and those a formula uses as factors (``factor(x)``)."""
    from ..inference.emmeans import fit_view

    view = fit_view(fit)
    return list(view.variables), view.coerced


def _choose_subject(fit: "LinearMixedModelResults", frame: pd.DataFrame, subject: str | None) -> str:
    if subject is not None:
        if subject not in frame.columns:
            raise DataError(f"subject column {subject!r} is not in the data")
        return subject
    groups = _groups(fit, frame)
    if len(groups) == 1:
        return groups[0]
    if not groups:
        raise ModelError("no random-effects term or residual structure names a subject column; give subject=")
    raise ModelError(f"several grouping factors ({', '.join(groups)}): give subject= (the unit measured repeatedly)")


def _varies_within(values: pd.Series, subjects: pd.Series) -> bool:
    return bool((pd.DataFrame({"s": subjects.to_numpy(), "v": values.astype(str).to_numpy()}).groupby("s", sort=False)["v"].nunique() > 1).any())


def _choose_time(fit: "LinearMixedModelResults", frame: pd.DataFrame, subject: str, time: str | None, fixed: list[str]) -> str:
    if time is not None:
        if time not in frame.columns:
            raise DataError(f"time column {time!r} is not in the data")
        return time
    binding = fit.residual_binding
    if binding is not None and binding.spec.time in frame.columns:
        return binding.spec.time
    for t in fit.terms:
        if t.group == subject:
            slopes = [c for c in t.cnames if c in frame.columns and pd.api.types.is_numeric_dtype(frame[c])]
            if slopes:
                return slopes[0]
    within = [v for v in fixed if v != subject and _varies_within(frame[v], frame[subject])]
    if len(within) == 1:
        return within[0]
    if not within:
        raise ModelError("no variable of the model varies within subjects; give time= (the visit or time column)")
    raise ModelError(f"several variables vary within subjects ({', '.join(within)}): give time=")


def check_repeated(frame: pd.DataFrame, subject: str) -> None:
    """Raise DataError when no subject has more than one row (nothing is repeated, so nothing to compare)."""
    counts = frame.groupby(frame[subject].astype(str), sort=False).size()
    if len(counts) and int(counts.max()) < 2:
        raise DataError(
            f"every {subject} has one row: there are no repeated measures, so a mixed model and the naive "
            "analyses (OLS, t-tests) are the same model here: nothing to compare"
        )


def _time_levels(column: pd.Series) -> tuple[tuple, bool]:
    if isinstance(column.dtype, pd.CategoricalDtype):
        present = set(column.dropna().unique())
        return tuple(c for c in column.cat.categories if c in present), False
    if pd.api.types.is_bool_dtype(column):
        return tuple(sorted(column.unique())), False
    if pd.api.types.is_numeric_dtype(column):
        return tuple(sorted(column.unique())), True
    return tuple(sorted(column.astype(str).unique())), False


def resolve_layout(
    fit: "LinearMixedModelResults", *, subject: str | None = None, time: str | None = None, data: pd.DataFrame | None = None
) -> Layout:
    """The :class:`Layout` of a fit's data for the naive analyses.

    Parameters
    ----------
    fit : LinearMixedModelResults
    subject, time : str, optional
        The subject and time columns (default: found from the fit, see the module docstring).
    data : pandas.DataFrame, optional
        The data the fit was made from, when ``time`` or ``subject`` is not a variable of the model.

    Raises
    ------
    DataError
        If a subject has one row only everywhere (no repeated measures), a subject has two rows at
        one time, or time has one level or more than 50.
    """
    frame = source_frame(fit, data)
    subject = _choose_subject(fit, frame, subject)
    check_repeated(frame, subject)
    fixed, coerced = fixed_variables(fit)
    time = _choose_time(fit, frame, subject, time, fixed)
    if time == subject:
        raise ModelError("time and subject must be different columns")
    if frame[time].isna().any():
        raise DataError(f"{time} is missing in {int(frame[time].isna().sum())} of the rows the model used")
    levels, numeric = _time_levels(frame[time])
    if len(levels) < 2:
        raise DataError(f"{time} has one value only: there are no time points to compare")
    if len(levels) > MAX_TIMES:
        raise DataError(
            f"{time} has {len(levels)} distinct values: the naive analyses need scheduled times "
            f"(at most {MAX_TIMES}; give time= a visit column)"
        )
    key = frame[time] if numeric or isinstance(frame[time].dtype, pd.CategoricalDtype) else frame[time].astype(str)
    code = pd.Series(range(len(levels)), index=pd.Index(levels)).reindex(key.to_numpy()).to_numpy()
    subj = frame[subject].astype(str).to_numpy()
    dup = pd.DataFrame({"s": subj, "t": code}).duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(
            f"{subject} {subj[i]} has more than one row at {time} = {r_label(levels[code[i]])}: "
            f"the naive analyses need one observation per subject and time (is {subject} the unit measured repeatedly? "
            "give subject=)"
        )
    between, notes = [], []
    for v in fixed:
        if v in (time, subject):
            continue
        col = frame[v]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col) and v not in coerced:
            notes.append(f"numeric covariate {v} is left out of the t-tests, slopes and RM-ANOVA (as aov_ez without covariate=)")
        elif _varies_within(col, frame[subject]):
            notes.append(f"{v} varies within subjects: left out of the t-tests, slopes and RM-ANOVA")
        else:
            between.append(v)
    long = pd.DataFrame({"subject": subj, "time": code.astype(int), "y": np.asarray(fit.design.y, dtype=float)})
    between_levels = {}
    for b in between:
        long[b] = frame[b].astype(str).to_numpy()
        col = frame[b]
        order = [str(c) for c in col.cat.categories] if isinstance(col.dtype, pd.CategoricalDtype) else sorted(long[b].unique())
        between_levels[b] = [lv for lv in order if lv in set(long[b])]
    positions = np.asarray(levels, dtype=float) if numeric else np.arange(1.0, len(levels) + 1.0)
    response = fit.design.response_name
    return Layout(response, subject, time, tuple(between), tuple(notes), long, levels, positions, numeric, between_levels)


def describe(layout: Layout) -> dict[str, Any]:
    """Counts a reader needs first: subjects, rows, time levels, complete subjects."""
    wide = layout.wide()
    complete = int(wide.notna().all(axis=1).sum())
    return {
        "subject": layout.subject,
        "time": layout.time,
        "times": layout.labels,
        "between": list(layout.between),
        "n_subjects": int(wide.shape[0]),
        "n_observations": int(len(layout.long)),
        "n_complete_subjects": complete,
        "notes": list(layout.notes),
    }
