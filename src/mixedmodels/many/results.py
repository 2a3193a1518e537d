"""Results of :func:`~mixedmodels.many.fit_many`: tables per response, as variancePartition and dream report them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import DataError
from ..ranef import unique_group_names
from ..report.serialize import json_number
from .single import ResponseFit

#: File suffixes :meth:`ManyResults.write` writes, and the format of each.
WRITERS = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".parquet": "parquet", ".pq": "parquet"}

#: Columns of the long table of fixed effects.
FIXED_COLUMNS = ["response", "term", "estimate", "se", "df", "t", "p_value", "p_adjusted"]


def output_format(path: str | Path) -> str:
    """``"csv"``, ``"tsv"`` or ``"parquet"`` from a file name's suffix; anything else is a :class:`DataError`."""
    kind = WRITERS.get(Path(path).suffix.lower())
    if kind is None:
        raise DataError(f"cannot write {Path(path).name!r}: use a .csv, .tsv or .parquet file")
    return kind


def p_adjust_bh(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (R's ``p.adjust(p, "BH")``); missing values stay missing and are not counted."""
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")[::-1]]  # decreasing p
    ranks = np.arange(m, 0, -1)
    out[order] = np.minimum(1.0, np.minimum.accumulate(m / ranks * p[order]))
    return out


def variance_parts(model, fits: list[ResponseFit]) -> pd.DataFrame:
    """Variance components of one design's responses as variancePartition's ``getVarianceComponents``.

    Per random-effects term and column the variance ``σ² (λλ')_jj`` (named by the grouping factor, and
    ``factor.column`` for a column other than the intercept); per fixed-effects column other than the
    intercept ``var(X_j β̂_j)``, rescaled so that they add up to ``var(Σ_j X_j β̂_j)`` (variances with
    denominator n); the residual variance ``σ̂²`` as ``Residuals``.
    """
    cols: dict[str, np.ndarray] = {}
    thetas = np.array([f.theta for f in fits])
    sigma2 = np.array([f.sigma for f in fits]) ** 2
    start = 0
    for name, t in zip(unique_group_names([t.group for t in model.terms]), model.terms):
        for i, f in enumerate(fits):
            lam = t.lambda_matrix(thetas[i, start : start + t.ntheta])
            var = sigma2[i] * np.einsum("ij,ij->i", lam, lam)
            for c, v in zip(t.cnames, var):
                cols.setdefault(name if c == "(Intercept)" else f"{name}.{c}", np.empty(len(fits)))[i] = v
        start += t.ntheta
    d = model.design
    idx = [j for j, n in enumerate(d.fixed_names) if n != "(Intercept)"]
    if idx:
        X = d.X[:, idx] - d.X[:, idx].mean(axis=0)
        C = X.T @ X / X.shape[0]  # covariance with denominator n
        B = np.array([f.beta[idx] for f in fits])
        each = B**2 * np.diag(C)[None, :]
        total = np.einsum("ri,ij,rj->r", B, C, B)
        sums = each.sum(axis=1)
        scale = np.divide(total, sums, out=np.zeros_like(total), where=sums > 0)
        for k, j in enumerate(idx):
            cols[d.fixed_names[j]] = each[:, k] * scale
    cols["Residuals"] = sigma2
    return pd.DataFrame(cols)


class ManyResults:
    """One model fitted to many responses (:func:`~mixedmodels.many.fit_many`).

    Attributes
    ----------
    formula : str
        The one-sided model formula.
    method : str
        ``"REML"`` or ``"ML"``.
    responses : list of str
        Response names, in the order given.
    fits : pandas.DataFrame
        Per response: ``nobs``, ``converged``, ``singular``, ``loglik``, ``sigma``, ``evaluations``, θ (by lme4's
        names) and ``message`` (convergence or singular-fit messages, or why the response could not be fitted).
    fixed : pandas.DataFrame
        Long table: ``response``, ``term``, ``estimate``, ``se``, ``df`` (Satterthwaite), ``t``, ``p_value`` and
        ``p_adjusted`` (Benjamini–Hochberg over the responses, per term).
    variance_components : pandas.DataFrame
        Per response (rows) and component (columns, ``Residuals`` last): variances as variancePartition's
        ``getVarianceComponents`` (:func:`variance_parts`).
    variance_fractions : pandas.DataFrame
        The same divided by their sum (variancePartition's ``fitExtractVarPartModel``).
    """

    def __init__(self, formula: str, method: str, responses: list[str], fits: pd.DataFrame, fixed: pd.DataFrame,
                 variance_components: pd.DataFrame, ddf: bool) -> None:
        self.formula = formula
        self.method = method
        self.responses = responses
        self.fits = fits
        self.fixed = fixed
        self.variance_components = variance_components
        total = variance_components.sum(axis=1, min_count=1)
        self.variance_fractions = variance_components.div(total, axis=0)
        self.ddf_method = "Satterthwaite" if ddf else None

    @classmethod
    def assemble(cls, formula: str, names: list[str], results: dict[int, ResponseFit | str],
                 groups: list[tuple[Any, list[int]]], *, REML: bool, ddf: bool) -> ManyResults:
        """Build the tables from each response's fit (or the reason it failed) and the design it was fitted on."""
        index = pd.Index(names, name="response")
        theta_names = list(dict.fromkeys(n for model, _ in groups for n in model.theta_names))
        fit_rows: list[dict[str, Any]] = [
            {"nobs": 0, "converged": False, "singular": False, "loglik": np.nan, "sigma": np.nan, "evaluations": 0,
             "message": results.get(j, "not fitted") if isinstance(results.get(j), str) else ""}
            for j in range(len(names))
        ]
        fixed_parts, vc_parts = [], []
        for model, cols in groups:
            ok = [j for j in cols if isinstance(results.get(j), ResponseFit)]
            if not ok:
                continue
            fits = [results[j] for j in ok]
            for j, f in zip(ok, fits):
                row = fit_rows[j]
                row.update(nobs=model.nobs, converged=f.converged, singular=f.singular, loglik=-0.5 * f.objective,
                           sigma=f.sigma, evaluations=f.evaluations, message="; ".join(f.warnings))
                row.update(zip(model.theta_names, f.theta))
            terms = list(model.design.fixed_names)
            p = len(terms)
            fixed_parts.append(pd.DataFrame({
                "response": np.repeat([names[j] for j in ok], p),
                "term": np.tile(terms, len(ok)),
                "estimate": np.concatenate([f.beta for f in fits]),
                "se": np.concatenate([f.se for f in fits]),
                "df": np.concatenate([f.df for f in fits]),
                "t": np.concatenate([f.t for f in fits]),
                "p_value": np.concatenate([f.p_values for f in fits]),
            }))
            vc_parts.append(variance_parts(model, fits).set_axis(pd.Index([names[j] for j in ok], name="response")))
        fits_table = pd.DataFrame(fit_rows, index=index)
        fits_table = fits_table[["nobs", "converged", "singular", "loglik", "sigma", "evaluations"]
                                + [n for n in theta_names if n in fits_table] + ["message"]]
        fixed = pd.concat(fixed_parts, ignore_index=True) if fixed_parts else pd.DataFrame(columns=FIXED_COLUMNS[:-1])
        order = {n: i for i, n in enumerate(names)}
        fixed = fixed.sort_values("response", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
        fixed["p_adjusted"] = np.nan
        for rows in fixed.groupby("term", sort=False).groups.values():
            fixed.loc[rows, "p_adjusted"] = p_adjust_bh(fixed.loc[rows, "p_value"].to_numpy(dtype=float))
        vc = pd.concat(vc_parts) if vc_parts else pd.DataFrame(index=pd.Index([], name="response"))
        comps = [c for c in vc.columns if c != "Residuals"] + (["Residuals"] if "Residuals" in vc.columns else [])
        vc = vc.reindex(index=index, columns=comps)
        return cls(formula, "REML" if REML else "ML", list(names), fits_table, fixed[FIXED_COLUMNS], vc, ddf)

    # ------------------------------------------------------------------ reads
    @property
    def n_failed(self) -> int:
        """Responses that could not be fitted (their ``message`` says why)."""
        return int((self.fits["nobs"] == 0).sum())

    def table(self) -> pd.DataFrame:
        """One row per response: the fit's flags, the variance fractions (``fraction.<component>``) and, per
        coefficient, ``<term>.estimate``, ``.se``, ``.df``, ``.t``, ``.p_value``, ``.p_adjusted`` (the CLI's ``--out``)."""
        out = self.fits.drop(columns=["message"]).copy()
        out = out.join(self.variance_fractions.add_prefix("fraction."))
        if len(self.fixed):
            wide = self.fixed.pivot(index="response", columns="term")
            terms = list(dict.fromkeys(self.fixed["term"]))
            wide = wide.reindex(columns=[(v, t) for t in terms for v in FIXED_COLUMNS[2:]])
            wide.columns = [f"{t}.{v}" for v, t in wide.columns]
            out = out.join(wide)
        out["message"] = self.fits["message"]
        return out

    def top(self, term: str, n: int = 10) -> pd.DataFrame:
        """The ``n`` responses with the smallest p-values for ``term`` (limma's ``topTable`` for one coefficient)."""
        rows = self.fixed[self.fixed["term"] == term]
        if rows.empty:
            raise DataError(f"no coefficient {term!r}; the coefficients are {', '.join(dict.fromkeys(self.fixed['term']))}")
        return rows.sort_values(["p_value", "response"]).head(n).set_index("response")

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (the CLI's ``--json``): settings and, per response, the fit, fractions and fixed effects."""
        fixed = {r: g for r, g in self.fixed.groupby("response", sort=False)}
        theta_cols = [c for c in self.fits.columns if c not in ("nobs", "converged", "singular", "loglik", "sigma",
                                                                  "evaluations", "message")]
        out = []
        for name in self.responses:
            f = self.fits.loc[name]
            rows = fixed.get(name)
            out.append({
                "response": name,
                "nobs": int(f["nobs"]),
                "converged": bool(f["converged"]),
                "singular": bool(f["singular"]),
                "loglik": json_number(f["loglik"]),
                "sigma": json_number(f["sigma"]),
                "evaluations": int(f["evaluations"]),
                "theta": {c: json_number(f[c]) for c in theta_cols},
                "message": str(f["message"]),
                "variance_fractions": {c: json_number(v) for c, v in self.variance_fractions.loc[name].items()},
                "fixed": [] if rows is None else [
                    {"term": str(r["term"]), **{k: json_number(r[k]) for k in FIXED_COLUMNS[2:]}} for _, r in rows.iterrows()
                ],
            })
        return {"formula": self.formula, "method": self.method, "ddf_method": self.ddf_method,
                "n_responses": len(self.responses), "n_failed": self.n_failed, "responses": out}

    def write(self, path: str | Path) -> Path:
        """Write :meth:`table` to ``path``: ``.csv``, ``.tsv`` or ``.parquet`` by its suffix."""
        path = Path(path)
        kind = output_format(path)
        table = self.table()
        if kind == "parquet":
            table.to_parquet(path)
        else:
            table.to_csv(path, sep="\t" if kind == "tsv" else ",")
        return path

    def summary(self, alpha: float = 0.05) -> str:
        """A few lines: what was fitted, convergence, median variance fractions and responses significant per term."""
        fits = self.fits
        ok = fits["nobs"] > 0
        nobs = fits.loc[ok, "nobs"]
        lines = [
            f"Linear mixed model fitted by {self.method} to {len(self.responses)} responses: {self.formula}",
            f"observations per response: {int(nobs.min()) if len(nobs) else 0}"
            + (f" to {int(nobs.max())}" if len(nobs) and nobs.max() != nobs.min() else ""),
            f"converged: {int(fits['converged'].sum())}, singular fits: {int(fits['singular'].sum())}, failed: {self.n_failed}",
        ]
        if len(self.variance_fractions.columns):
            med = self.variance_fractions.median()
            lines.append("variance fractions (median over responses): "
                         + ", ".join(f"{c} {v:.3f}" for c, v in med.items()))
        if self.ddf_method and len(self.fixed):
            counts = self.fixed.assign(hit=self.fixed["p_adjusted"] < alpha).groupby("term", sort=False)["hit"].sum()
            lines.append(f"responses with BH-adjusted p < {alpha:g} (t-tests, {self.ddf_method}'s df): "
                         + ", ".join(f"{t} {int(k)}" for t, k in counts.items()))
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return self.summary()
