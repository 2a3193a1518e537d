"""The naive analyses of a longitudinal data set side by side with its mixed model: ``fit.compare_naive()``.

On the data and fixed effects of a fit, :func:`compare_naive` runs what a reader without mixed
models would run — OLS ignoring the subjects, t-tests at the last visit (everyone observed there,
completers, last observation carried forward), per-subject slopes, RM-ANOVA on the complete cases —
and puts the mixed model's answer to each question beside it, with the correlation across time points
that the data show and the models imply. ``str()`` gives a text table, :meth:`NaiveComparison.to_dict`
the CLI's JSON (``mixedmodels why``), :meth:`NaiveComparison.sentences` one sentence per analysis on
what it gets wrong here, and the HTML report a section (``fit.report(path, why=True)``).

The t-tests compare the first between-subject factor of the formula (its second level minus its
first; an F-test for three levels or more); with no between-subject factor they compare the last
time point with the first. See :mod:`.layout` for how subject, time and the factors are found.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..exceptions import DataError, MixedModelsError, ModelError
from ..report.serialize import json_number
from .classical import Test, compare_groups, ols, one_sample, paired, subject_slopes, two_sample
from .contrasts import ModelContrasts
from .correlation import by_lag, implied_correlation, pairwise_correlation
from .layout import Layout, describe, resolve_layout, source_frame
from .rmanova import RMAnova, rm_anova

if TYPE_CHECKING:
    from ..results import LinearMixedModelResults


@dataclass(frozen=True)
class GroupTest:
    """A naive t-test (or one-way F) with the mixed model's answer to the same question.

    ``groups`` are the compared levels (of the between-subject factor, or the first and last time
    points); the estimate is the later minus the earlier one. ``note`` says why a test is missing.
    """

    label: str
    factor: str | None
    groups: list[str]
    n_per_group: dict[str, int]
    means: dict[str, float]
    welch: Test | None
    pooled: Test | None
    paired: Test | None = None
    mixed: dict | None = None
    note: str | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        what = f"{self.groups[-1]} − {self.groups[0]}" if len(self.groups) == 2 else f"{self.factor} (F-test)" if self.factor else self.label
        out: dict[str, Any] = {"comparison": what, "factor": self.factor, "groups": self.groups,
                               "n_per_group": self.n_per_group, "means": {k: json_number(v) for k, v in self.means.items()}}
        for key in ("welch", "pooled", "paired"):
            t = getattr(self, key)
            if t is not None:
                out[key] = {k: json_number(v) for k, v in t.to_dict().items()}
        out["mixed"] = None if self.mixed is None else {k: json_number(v) for k, v in self.mixed.items()}
        out["note"] = self.note
        for key, value in self.extra.items():
            out[key] = {k: json_number(v) for k, v in value.to_dict().items()} if isinstance(value, Test) else value
        return out


def _tests(values: pd.Series, groups: pd.Series, levels: list[str]) -> tuple[Test | None, Test | None, str | None]:
    try:
        res = compare_groups(values, groups, levels)
    except DataError as exc:
        return None, None, str(exc)
    return res["welch"], res["pooled"], None


class NaiveComparison:
    """Every naive analysis of a fit's data beside the mixed model (see the module docstring).

    Attributes
    ----------
    fit : LinearMixedModelResults
    layout : Layout
    ols : pandas.DataFrame
        Per coefficient: OLS ``estimate``, ``std_error``, ``t``, ``p_value``, the mixed model's
        ``mixed_estimate`` and ``mixed_std_error``, and ``se_ratio`` (mixed SE / OLS SE).
    design_effect : dict
        ``m`` (mean rows per subject), ``icc`` (random-intercept model), ``value`` = 1 + (m − 1)·ICC,
        ``effective_n``, and whether the subjects are balanced.
    ttest_last, ttest_completers, ttest_locf : GroupTest
        At the last time point among everyone observed there, among completers, and on each
        subject's last observation.
    slopes : GroupTest
        The per-subject slopes compared (or tested against 0 with no between-subject factor).
    rm_anova : RMAnova
    correlation : dict
        ``empirical``, ``implied`` and ``random_intercept`` matrices (DataFrames), ``n_pairs``, ``by_lag``.
    """

    def __init__(self, fit: "LinearMixedModelResults", layout: Layout, frame: pd.DataFrame) -> None:
        self.fit = fit
        self.layout = layout
        self.summary = describe(layout)
        self._ols = ols(fit.design)
        self.random_intercept = _random_intercept_fit(fit, layout, frame)
        self.contrasts = ModelContrasts(fit, layout)
        self.ols = self._ols_table()
        self.design_effect = self._design_effect()
        self.ttest_last, self.ttest_completers, self.ttest_locf = self._ttests()
        self.slopes = self._slopes()
        self.rm_anova: RMAnova = rm_anova(layout)
        self.correlation = self._correlation()

    # ------------------------------------------------------------------ analyses
    def _ols_table(self) -> pd.DataFrame:
        table = self._ols.table.copy()
        beta = np.asarray(self.fit.beta, dtype=float)
        se = np.sqrt(np.diag(np.asarray(self.fit.vcov, dtype=float)))
        table["mixed_estimate"] = beta
        table["mixed_std_error"] = se
        table["se_ratio"] = se / table["std_error"].to_numpy()
        return table

    def _design_effect(self) -> dict[str, Any]:
        sizes = self.layout.long.groupby("subject", sort=False).size()
        m = float(sizes.mean())
        ri = self.random_intercept
        icc = math.nan
        if ri is not None:
            tau2 = float(ri.covariances[0].to_numpy()[0, 0])
            icc = tau2 / (tau2 + ri.sigma**2)
        value = 1 + (m - 1) * icc
        return {"m": m, "balanced": bool(sizes.nunique() == 1), "min_size": int(sizes.min()), "max_size": int(sizes.max()),
                "icc": icc, "value": value, "effective_n": len(self.layout.long) / value}

    def _compared(self) -> tuple[str | None, list[str]]:
        lay = self.layout
        if not lay.between:
            return None, [lay.labels[0], lay.labels[-1]]
        b = lay.between[0]
        return b, list(lay.between_levels[b])

    def _group_test(self, label: str, per_subject: pd.DataFrame, mixed: dict | None, extra: dict | None = None) -> GroupTest:
        """``per_subject``: index subject, columns ``y`` and the factor (between) or ``first`` (time)."""
        factor, levels = self._compared()
        if factor is not None:
            per_subject = per_subject.dropna(subset=["y"])
            present = [lv for lv in levels if (per_subject[factor] == lv).sum() > 0]
            counts = {lv: int((per_subject[factor] == lv).sum()) for lv in present}
            means = {lv: float(per_subject.loc[per_subject[factor] == lv, "y"].mean()) for lv in present}
            if len(present) < 2:
                return GroupTest(label, factor, present, counts, means, None, None, mixed=mixed,
                                 note=f"fewer than two levels of {factor} observed", extra=extra or {})
            welch, pooled, note = _tests(per_subject["y"], per_subject[factor], present)
            return GroupTest(label, factor, present, counts, means, welch, pooled, mixed=mixed, note=note, extra=extra or {})
        later = per_subject["y"].dropna().to_numpy()
        first = per_subject["first"].dropna().to_numpy()
        both = per_subject.dropna(subset=["y", "first"])
        groups = [levels[0], levels[-1] if label != "last observed" else label]
        counts = {groups[0]: len(first), groups[1]: len(later)}
        means = {groups[0]: float(np.mean(first)) if len(first) else math.nan, groups[1]: float(np.mean(later)) if len(later) else math.nan}
        try:
            res = two_sample(later, first)
            pair = paired(both["y"].to_numpy(), both["first"].to_numpy()) if len(both) >= 2 else None
        except DataError as exc:
            return GroupTest(label, None, groups, counts, means, None, None, mixed=mixed, note=str(exc), extra=extra or {})
        return GroupTest(label, None, groups, counts, means, res["welch"], res["pooled"], pair, mixed, None,
                         {"n_paired": int(len(both)), **(extra or {})})

    def _ttests(self) -> tuple[GroupTest, GroupTest, GroupTest]:
        lay = self.layout
        wide = lay.wide()
        subj = lay.subject_table()
        last, k = lay.labels[-1], lay.n_times - 1
        factor, levels = self._compared()
        if factor is not None:
            mixed = self._safe(lambda: self.contrasts.group_difference(factor, levels, k))
            base = subj[[factor]]
        else:
            mixed = self._safe(lambda: self.contrasts.time_difference(k, 0))
            base = pd.DataFrame({"first": wide.iloc[:, 0]})
        at_last = base.assign(y=wide.iloc[:, -1])
        complete = wide.notna().all(axis=1)
        comp = base[complete].assign(y=wide.iloc[:, -1][complete])
        last_code = lay.long.groupby("subject", sort=False)["time"].max().reindex(wide.index)
        locf_y = pd.Series([wide.iat[i, c] for i, c in enumerate(last_code.to_numpy())], index=wide.index)
        locf = base.assign(y=locf_y)
        seen = pd.Series([lay.labels[c] for c in last_code], index=wide.index)
        return (
            self._group_test(last, at_last, mixed),
            self._group_test(last, comp, mixed, {"n_subjects": int(complete.sum())}),
            self._group_test("last observed", locf, mixed, {"last_observed_at": {lv: int((seen == lv).sum()) for lv in lay.labels}}),
        )

    def _slopes(self) -> GroupTest:
        lay = self.layout
        s = subject_slopes(lay)
        factor, levels = self._compared()
        extra = {"n_subjects_used": len(s.slopes), "n_subjects_dropped": s.n_dropped,
                 "time_unit": f"per unit of {lay.time}" if lay.time_numeric else f"per level of {lay.time}",
                 "n_points_min": int(s.n_points.min()) if len(s.n_points) else 0,
                 "n_points_max": int(s.n_points.max()) if len(s.n_points) else 0}
        if factor is None:
            mixed = self._safe(lambda: self.contrasts.slope())
            try:
                test = one_sample(s.slopes.to_numpy())
                note = None
            except DataError as exc:
                test, note = None, str(exc)
            return GroupTest("mean slope", None, ["all"], {"all": len(s.slopes)}, {"all": float(s.slopes.mean())},
                             None, None, mixed=mixed, note=note, extra={**extra, "one_sample": None if test is None else test})
        mixed = self._safe(lambda: self.contrasts.slope(factor, levels))
        per = lay.subject_table().loc[s.slopes.index, [factor]].assign(y=s.slopes)
        return self._group_test("slope", per, mixed, extra)

    def _correlation(self) -> dict[str, Any]:
        lay = self.layout
        emp, counts = pairwise_correlation(lay.wide(self._ols.residuals))
        implied, subject, note = implied_correlation(self.fit, lay)
        ri = None
        if self.random_intercept is not None:
            ri, _, _ = implied_correlation(self.random_intercept, lay)
        lags = by_lag({"empirical": emp, "implied": implied, "random_intercept": ri})
        return {"times": lay.labels, "empirical": emp, "implied": implied, "random_intercept": ri, "n_pairs": counts,
                "by_lag": lags, "implied_subject": subject, "notes": [note] if note else []}

    @staticmethod
    def _safe(fn):
        try:
            return fn()
        except MixedModelsError:
            return None

    # ------------------------------------------------------------------ output
    def sentences(self) -> dict[str, str]:
        """One plain sentence per analysis on what it gets wrong here, in numbers."""
        from .text import sentences

        return sentences(self)

    def to_dict(self) -> dict[str, Any]:
        """The CLI's ``why --json`` object (keys documented in ``docs/guide.md``)."""
        from .text import to_dict

        return to_dict(self)

    def __str__(self) -> str:
        from .text import format_text

        return format_text(self)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        from ..report.why import why_section

        return why_section(self)


def _random_intercept_fit(fit: "LinearMixedModelResults", layout: Layout, frame: pd.DataFrame):
    """``y ~ fixed + (1 | subject)`` by REML: the ICC of the design effect and the compound-symmetry picture."""
    t = fit.terms
    if (len(t) == 1 and t[0].group == layout.subject and tuple(t[0].cnames) == ("(Intercept)",) and fit.iid_residuals
            and fit.variance_function is None and fit.reml):
        return fit
    from ..model import LinearMixedModel

    parsed = fit.design.formula
    subject = layout.subject if layout.subject.isidentifier() else f"`{layout.subject}`"
    formula = f"{parsed.response} ~ {parsed.fixed} + (1 | {subject})"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = LinearMixedModel.from_formula(formula, frame, reml=True, contrasts=fit.design.contrasts or None)
            return model.fit()
    except MixedModelsError:
        return None


def compare_naive(
    fit: "LinearMixedModelResults", *, subject: str | None = None, time: str | None = None, data: pd.DataFrame | None = None
) -> NaiveComparison:
    """The naive analyses of ``fit``'s data beside the mixed model.

    Parameters
    ----------
    fit : LinearMixedModelResults
    subject, time : str, optional
        The subject and time columns (default: found from the fit's random effects or residual structure).
    data : pandas.DataFrame, optional
        The data the model was fitted to, needed only when ``subject`` or ``time`` is not a variable of the model.

    Returns
    -------
    NaiveComparison

    Raises
    ------
    DataError
        If the data have no repeated measures (one row per subject), two rows of a subject at one
        time, or a single time point.
    """
    frame = source_frame(fit, data)
    layout = resolve_layout(fit, subject=subject, time=time, data=data)
    return NaiveComparison(fit, layout, frame)


def why(formula: str, data: pd.DataFrame, *, subject: str | None = None, time: str | None = None, **kwargs: Any) -> NaiveComparison:
    """Fit ``formula`` (``mm.lmer``'s arguments in ``kwargs``) and compare it with the naive analyses.

    Checks first that the data have repeated measures, so one row per subject gets the reason rather
    than lme4's complaint about the number of levels.
    """
    from .. import lmer
    from ..covariance.residual_spec import parse_residual
    from ..formula.parse import parse_formula
    from .layout import check_repeated

    parsed = parse_formula(formula)
    if not parsed.random and kwargs.get("residual") is None:
        raise ModelError(
            "why compares a mixed model with the naive analyses: the formula needs random effects such as "
            "(1 | subject), or give a residual structure"
        )
    who = subject
    if who is None:
        groups = [r.group[0] for r in parsed.random if len(r.group) == 1]
        residual = kwargs.get("residual")
        if isinstance(residual, str):
            groups.append(parse_residual(residual).subject)
        groups = [g for g in dict.fromkeys(groups) if g in data.columns]
        who = groups[0] if len(groups) == 1 else None
    if who is not None and who in data.columns:
        check_repeated(data, who)
    fit = lmer(formula, data, **kwargs)
    return compare_naive(fit, subject=subject, time=time, data=data if data.index.is_unique else None)
