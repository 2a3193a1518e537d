"""Refit with every available optimizer and report the spread (lme4's ``allFit``).

A fit that warns (a large scaled gradient, a singular Hessian) may still be at the optimum. lme4's
advice is to refit with several optimizers from the default start: if they agree on the
log-likelihood and the estimates to a few significant digits, the warning is a false positive.
:func:`allfit` does this with nlopt's BOBYQA (the default), Nelder–Mead, NEWUOA and Subplex and
scipy's L-BFGS-B and Powell, each from lme4's start and with the fit's other settings, and tabulates
each fit's log-likelihood, fixed effects, covariance parameters θ and SDs/correlations, with the
spread of each across the optimizers that succeeded.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import MixedModelsError, ModelError
from ..protocols import MixedFit
from ..report.serialize import json_number
from ..report.table import Table, as_table

#: The optimizers refitted by default, in lme4's spirit: derivative-free (trust region, simplex,
#: subspace) and quasi-Newton on a finite-difference gradient.
ALLFIT_OPTIMIZERS = ("bobyqa", "nelder_mead", "newuoa", "sbplx", "lbfgsb", "powell")


def sdcor_values(fit: Any) -> dict[str, float]:
    """SDs and correlations in VarCorr's order, named ``group.var`` for an SD (``Subject.Days``),
    ``group.var2.var1`` for a correlation (``Subject.Days.(Intercept)``) and ``sigma``.

    ``summary(allFit(m))$sdcor`` in lme4 1.1-31 has these values in this order but labels its columns
    with θ's names, so there its second column, ``Subject.Days.(Intercept)``, holds the SD of ``Days``.
    """
    values = {}
    for _, row in fit.varcorr.iterrows():
        if row["grp"] == "Residual":
            name = "sigma"
        elif row["var2"] is None or (isinstance(row["var2"], float) and np.isnan(row["var2"])):
            name = f"{row['grp']}.{row['var1']}"
        else:
            name = f"{row['grp']}.{row['var2']}.{row['var1']}"
        values[name] = float(row["sdcor"])
    return values


@dataclass(frozen=True)
class AllFit:
    """The fit refitted by several optimizers.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per optimizer: ``algorithm`` (what ran: an unstructured MMRM's default is L-BFGS on its
        analytic gradient), ``ok`` (the refit ran), ``converged`` (no convergence warning), ``logLik``,
        ``dlogLik`` (difference from the best), ``seconds``, ``evaluations``, ``warnings``.
    fixef, theta, sdcor : pandas.DataFrame
        Estimates per optimizer (rows) and parameter (columns, lme4's names); NaN where the refit failed.
    spread : pandas.DataFrame
        Per quantity (log-likelihood, fixed effects, θ, SDs/correlations): min, max, range and the
        range relative to the largest magnitude, over the optimizers that ran.
    fits : dict
        Optimizer → refitted model (absent where the refit failed).
    formula, method : str
        The model refitted, REML or ML.
    """

    table: pd.DataFrame
    fixef: pd.DataFrame
    theta: pd.DataFrame
    sdcor: pd.DataFrame
    spread: pd.DataFrame
    fits: dict
    formula: str
    method: str

    @property
    def max_relative_spread(self) -> float:
        """The largest relative range among the fixed effects and SDs/correlations (0 when all agree)."""
        rows = self.spread.drop(index="logLik", errors="ignore")
        rows = rows[~rows.index.str.startswith("theta:")]
        return float(np.nanmax(rows["relative"].to_numpy(dtype=float))) if len(rows) else float("nan")

    @property
    def loglik_range(self) -> float:
        """Largest minus smallest log-likelihood over the optimizers that ran."""
        return float(self.spread.loc["logLik", "range"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: per optimizer its status, log-likelihood and estimates; the spread per quantity."""
        fits = []
        for name, row in self.table.iterrows():
            fits.append({
                "optimizer": str(name), "algorithm": row["algorithm"], "ok": bool(row["ok"]), "converged": bool(row["converged"]),
                "loglik": json_number(row["logLik"]), "seconds": json_number(row["seconds"]),
                "evaluations": None if not np.isfinite(row["evaluations"]) else int(row["evaluations"]),
                "warnings": [w for w in str(row["warnings"]).split("; ") if w],
                "fixef": {k: json_number(v) for k, v in self.fixef.loc[name].items()},
                "theta": {k: json_number(v) for k, v in self.theta.loc[name].items()},
                "sdcor": {k: json_number(v) for k, v in self.sdcor.loc[name].items()},
            })
        spread = [{"quantity": str(k), **{c: json_number(v) for c, v in row.items()}} for k, row in self.spread.iterrows()]
        return {"formula": self.formula, "method": self.method, "fits": fits, "spread": spread,
                "loglik_range": json_number(self.loglik_range), "max_relative_spread": json_number(self.max_relative_spread)}

    def __str__(self) -> str:
        shown = self.table.drop(columns=["warnings"])
        lines = [f"Refits of {self.formula} ({self.method}) by {len(self.table)} optimizers", as_table(shown).to_text(na_rep=""), ""]
        lines += ["Fixed effects:", as_table(self.fixef).to_text(), "", "SDs and correlations:", as_table(self.sdcor).to_text(), ""]
        lines += ["Spread over the optimizers that ran:", as_table(self.spread).to_text()]
        warned = [(k, w) for k, w in self.table["warnings"].items() if w]
        if warned:
            lines += ["", "Warnings:"] + [f"  {k}: {w}" for k, w in warned]
        return "\n".join(lines) + "\n"

    __repr__ = __str__


def _spread(frame: pd.DataFrame, prefix: str = "") -> dict[str, dict[str, float]]:
    out = {}
    for col in frame.columns:
        v = frame[col].to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        if not v.size:
            continue
        lo, hi = float(v.min()), float(v.max())
        scale = float(np.max(np.abs(v)))
        out[f"{prefix}{col}"] = {"min": lo, "max": hi, "range": hi - lo, "relative": (hi - lo) / scale if scale > 0 else 0.0}
    return out


def allfit(fit: Any, optimizers: Sequence[str] | None = None, *, maxfun: int | None = None) -> AllFit:
    """Refit ``fit`` with each optimizer from the default start, as lme4's ``allFit(m)``.

    Parameters
    ----------
    fit : LinearMixedModelResults
        The fit to check; its criterion, data and settings are kept.
    optimizers : sequence of str, optional
        Default :data:`ALLFIT_OPTIMIZERS`: ``"bobyqa"``, ``"nelder_mead"``, ``"newuoa"``, ``"sbplx"``
        (nlopt), ``"lbfgsb"``, ``"powell"`` (scipy).
    maxfun : int, optional
        Most evaluations per refit (lme4's ``maxfun``, default the fit's setting).

    Returns
    -------
    AllFit
    """
    if not isinstance(fit, MixedFit):
        raise ModelError("allfit needs a fitted mixed model")
    optimizers = tuple(optimizers) if optimizers is not None else ALLFIT_OPTIMIZERS
    if not optimizers:
        raise ModelError("give at least one optimizer")
    base = fit.model.control
    fixef_names, theta_names, sd_names = list(fit.design.fixed_names), list(fit.theta_names), list(sdcor_values(fit))
    rows, fx, th, sd, fits = {}, {}, {}, {}, {}
    for name in optimizers:
        control = dataclasses.replace(base, optimizer=name, **({} if maxfun is None else {"maxfun": int(maxfun)}))
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                refit = fit.model.with_control(control).fit(warn=False)
        except (MixedModelsError, np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
            rows[name] = {"algorithm": "", "ok": False, "converged": False, "logLik": np.nan,
                          "seconds": time.perf_counter() - t0, "evaluations": np.nan, "warnings": f"failed: {exc}"}
            fx[name], th[name], sd[name] = [np.nan] * len(fixef_names), [np.nan] * len(theta_names), [np.nan] * len(sd_names)
            continue
        fits[name] = refit
        rows[name] = {"algorithm": refit.fit_record.optimizer, "ok": True, "converged": refit.converged, "logLik": refit.loglik,
                      "seconds": time.perf_counter() - t0,
                      "evaluations": float(refit.fit_record.evaluations), "warnings": "; ".join(refit.fit_record.warnings)}
        fx[name], th[name], sd[name] = list(refit.beta), list(refit.theta), list(sdcor_values(refit).values())
    table = pd.DataFrame.from_dict(rows, orient="index")
    best = np.nanmax(table["logLik"].to_numpy(dtype=float)) if table["ok"].any() else np.nan
    table.insert(4, "dlogLik", table["logLik"] - best)
    fixef = pd.DataFrame.from_dict(fx, orient="index", columns=fixef_names)
    theta = pd.DataFrame.from_dict(th, orient="index", columns=theta_names)
    sdcor = pd.DataFrame.from_dict(sd, orient="index", columns=sd_names)
    spread = {**_spread(table[["logLik"]]), **_spread(fixef), **_spread(sdcor), **_spread(theta, "theta:")}
    return AllFit(
        table=Table(table), fixef=Table(fixef), theta=Table(theta), sdcor=Table(sdcor),
        spread=Table(pd.DataFrame.from_dict(spread, orient="index")), fits=fits, formula=fit.formula, method=fit.method,
    )
