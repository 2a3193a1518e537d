"""Estimated marginal means of a GLMM on the link and response scales, as R's emmeans 1.8 for glmer fits.

The means and contrasts are those of :mod:`mixedmodels.inference.emmeans` on the linear predictor,
with asymptotic z tests and intervals (emmeans' only method for glmer). ``type="response"`` transforms
them as emmeans does: a mean becomes ``g⁻¹(emmean)`` (``prob`` for a binomial family, ``rate`` for
Poisson, ``response`` otherwise) with ``SE · dμ/dη`` and the back-transformed link-scale limits; a pairwise
difference on the logit scale becomes an odds ratio (``A / B``), on the log scale a ratio, with
``SE · exp(estimate)`` and the same z and p-values (tests on the link scale). Contrasts under other
links stay on the link scale, with emmeans' note.

These are *conditional* means (a unit whose random effects are 0); for population-averaged means see
:meth:`GeneralizedLinearMixedModelResults.marginal_effects`.

==========================================================  ==============================================
R (emmeans 1.8, lme4)                                        mixedmodels
==========================================================  ==============================================
``emmeans(m, ~ period)``                                     ``fit.emmeans("period")``
``emmeans(m, ~ period, type = "response")``                  ``fit.emmeans("period", type="response")``
``pairs(emmeans(m, ~ period), type = "response")``           ``fit.emmeans("period").contrasts(type="response")``
``confint(pairs(emmeans(m, ~ period), type = "response"))``  the ``lower.CL``/``upper.CL`` columns
==========================================================  ==============================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.special import ndtri

from ..exceptions import ModelError
from ..inference.emmeans import emmeans as _emmeans
from ..inference.emmeans_contrasts import format_results
from ..report.table import Table

if TYPE_CHECKING:
    from .results import GeneralizedLinearMixedModelResults

TYPES = ("link", "response")


def _check_type(type: str) -> str:
    if type not in TYPES:
        raise ModelError(f"type must be 'link' or 'response', got {type!r}")
    return type


def _critical(level: float, adjust: str, m: int, nmeans: int) -> tuple[float, list[str]]:
    """emmeans' critical value of simultaneous z intervals for ``m`` contrasts of ``nmeans`` means.

    Tukey: the studentized range quantile / √2; Šidák and Bonferroni over the ``m`` contrasts of a
    family; ``dunnettx`` by inverting its p-value; adjustments made for p-values only (Holm, BH, ...)
    become Bonferroni's intervals, as in emmeans.
    """
    from scipy.optimize import brentq
    from scipy.stats import studentized_range

    from ..inference.emmeans_contrasts import pdunnettx

    notes: list[str] = []
    if adjust == "none" or m <= 1:
        return float(ndtri(1 - (1 - level) / 2)), notes
    if adjust == "tukey":
        q = float(studentized_range.ppf(level, nmeans, np.inf)) / np.sqrt(2.0)
        notes.append(f"Conf-level adjustment: tukey method for comparing a family of {nmeans} estimates")
        return q, notes
    if adjust == "sidak":
        notes.append(f"Conf-level adjustment: sidak method for {m} estimates")
        return float(ndtri((1 + level ** (1 / m)) / 2)), notes
    if adjust == "dunnettx":
        notes.append(f"Conf-level adjustment: dunnettx method for {m} estimates")
        f = lambda x: float(pdunnettx(np.array([x]), m, np.array([np.inf]))[0]) - level
        return float(brentq(f, 0.1, 20.0, xtol=1e-12)), notes
    if adjust != "bonferroni":
        notes.append(f'Note: adjust = "{adjust}" was changed to "bonferroni" because "{adjust}" is only appropriate for P values, not CIs')
    notes.append(f"Conf-level adjustment: bonferroni method for {m} estimates")
    return float(ndtri(1 - (1 - level) / (2 * m))), notes


class GlmmEMMeans:
    """Estimated marginal means of a GLMM fit (emmeans' ``emmGrid`` of a glmer fit).

    Attributes
    ----------
    table : pandas.DataFrame
        The factors, then ``emmean`` (link scale) or the response name (``prob``, ``rate``,
        ``response``), ``SE``, ``df`` (infinite), ``lower.CL``, ``upper.CL``.
    link : EMMeans
        The means on the link scale (linear functions, contrasts).
    type : str
    response_name : str
    notes : list of str
    """

    def __init__(self, fit: GeneralizedLinearMixedModelResults, specs: str | Sequence[str],
                 by: str | Sequence[str] | None = None, *, type: str = "link", weights: str | Sequence[float] = "equal",
                 level: float = 0.95) -> None:
        self.type = _check_type(type)
        self.fit = fit
        self.link = _emmeans(fit, specs, by, ddf="asymptotic", weights=weights, level=level)
        self.specs, self.by, self.level = self.link.specs, self.link.by, level
        family = fit.family
        self._linkname = family.link.name
        self.response_name = {"binomial": "prob", "poisson": "rate"}.get(family.name, "response")
        base = [n for n in self.link.notes if not n.startswith("Degrees-of-freedom")]
        t = self.link.table
        if self.type == "link":
            self.table = t
            self.notes = base + [f"Results are given on the {self._linkname} (not the response) scale."]
            return
        eta = t["emmean"].to_numpy(dtype=float)
        linkinv, mu_eta = family.link.linkinv, family.link.mu_eta
        data: dict[str, Any] = {c: t[c] for c in self.specs + self.by}
        data.update({
            self.response_name: linkinv(eta), "SE": t["SE"].to_numpy(dtype=float) * mu_eta(eta), "df": t["df"],
            "lower.CL": linkinv(t["lower.CL"].to_numpy(dtype=float)), "upper.CL": linkinv(t["upper.CL"].to_numpy(dtype=float)),
        })
        self.table = Table(data)
        self.notes = base + [f"Intervals are back-transformed from the {self._linkname} scale"]

    def contrasts(self, method: str | Mapping[str, Sequence[float]] = "pairwise", adjust: str | None = None, *,
                  ref: int | str = 0, type: str | None = None) -> pd.DataFrame:
        """Contrasts of the means (emmeans' ``pairs``/``contrast`` with ``type``), with z intervals.

        Parameters
        ----------
        method, adjust, ref
            As :meth:`EMMeans.contrasts`.
        type : {"link", "response"}, optional
            Default: the means' own type. On the response scale differences of logits are odds ratios
            and differences of logs ratios (``"odds.ratio"``/``"ratio"`` columns, labels ``A / B``).

        Returns
        -------
        pandas.DataFrame
            ``contrast``, by-factors, ``estimate`` (or ``odds.ratio``/``ratio``), ``SE``, ``df``,
            ``t.ratio`` (z), ``p.value``, ``lower.CL``, ``upper.CL`` (emmeans' ``confint`` of the contrasts:
            simultaneous intervals by the adjustment of the p-values, Bonferroni for adjustments of p-values only).
        """
        type = _check_type(self.type if type is None else type)
        c = self.link.contrasts(method, adjust, ref=ref)
        est, se = c["estimate"].to_numpy(dtype=float), c["SE"].to_numpy(dtype=float)
        ngroup = len(c) // max(len(self.link._groups()), 1)
        nmeans = len(self.link._groups()[0])
        z, ci_note = _critical(self.level, c.attrs["adjust"], ngroup, nmeans)
        lo, hi = est - z * se, est + z * se
        notes = [n for n in c.attrs["notes"] if not n.startswith("Degrees-of-freedom")] + ci_note
        name = {"logit": "odds.ratio", "log": "ratio"}.get(self._linkname) if type == "response" else None
        out = c.copy()
        if name is None:
            out["lower.CL"], out["upper.CL"] = lo, hi
            if type == "response":
                notes.append(f"Note: contrasts are still on the {self._linkname} scale")
            else:
                scale = {"logit": "log odds ratio"}.get(self._linkname, self._linkname)
                notes.append(f"Results are given on the {scale} (not the response) scale.")
        else:
            scale = "log odds ratio" if name == "odds.ratio" else "log"
            out = out.rename(columns={"estimate": name})
            out[name] = np.exp(est)
            out["SE"] = np.exp(est) * se
            out["contrast"] = [s.replace(" - ", " / ") for s in out["contrast"]]
            out["lower.CL"], out["upper.CL"] = np.exp(lo), np.exp(hi)
            notes += [f"Tests are performed on the {scale} scale"]
        out.attrs.update(c.attrs)
        out.attrs["notes"] = notes
        out.attrs["ratio"] = name
        return out

    def format_contrasts(self, table: pd.DataFrame) -> str:
        """A table from :meth:`contrasts` as emmeans prints it."""
        name = table.attrs.get("ratio")
        shown = table.drop(columns=["lower.CL", "upper.CL"])
        if name:
            shown = shown.rename(columns={name: "estimate"})
        return format_results(shown, table.attrs.get("by", []), table.attrs.get("notes", []), kind="contrasts",
                              headers={"estimate": name} if name else None)

    def __str__(self) -> str:
        if self.type == "link":
            return format_results(self.table, self.by, self.notes, kind="emmeans")
        shown = self.table.rename(columns={self.response_name: "emmean"})
        return format_results(shown, self.by, self.notes, kind="emmeans", headers={"emmean": self.response_name})

    def __repr__(self) -> str:
        return str(self)
