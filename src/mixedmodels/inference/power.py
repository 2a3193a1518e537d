"""Power by simulation, as R's simr (``powerSim``, ``powerCurve``, ``extend``, ``makeLmer``).

A model (a fit, possibly with an effect set to the size of interest, or one specified by
:func:`make_lmer`) is simulated ``nsim`` times on the largest design; for each sample size the
rows of the first ``k`` levels of ``along`` are refitted to every simulated response and the effect
tested. Power is the share of p-values below ``alpha``, with a Clopper–Pearson interval (simr's
default ``binom.confint`` method, "exact"). Sizes beyond the data's levels extend the design as
simr's ``extend``: level ``j`` is a copy of level ``j mod m`` of the ``m`` the data have.

As simr's ``powerCurve``, the responses of all sizes come from the same simulations of the largest
design (the first ``k`` levels' rows of each). They are drawn in the calling process from one
seeded generator and each refit starts from the simulated model's parameters, so the p-values do not depend on how
many processes do the refits. A size's refits share its model's cross-products of Z and factor
structure (``refit``).

Tests (``test=``): ``"kr"`` (Kenward–Roger F-test of the effect's coefficients, simr's default for
a numeric effect of an ``lmer`` fit), ``"satterthwaite"``, ``"lr"`` (likelihood ratio of ML refits
with and without the effect's columns, simr's default for a factor) and ``"z"`` (Wald, treating t as
normal).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from ..covariance.random import _robust_chol
from ..engine.threads import engine_threads
from ..exceptions import MixedModelsError, ModelError
from ..protocols import MixedFit
from ..report.serialize import json_number
from ..report.table import Table, as_table
from .bootstrap import _progress, progress_enabled

TESTS = ("kr", "satterthwaite", "lr", "z")
_TEST_NAMES = {"kr": "Kenward-Roger F-test", "satterthwaite": "Satterthwaite F-test", "lr": "likelihood ratio (ML refits)",
               "z": "Wald z-test"}


@dataclass(frozen=True)
class PowerModel:
    """A model to simulate from: formula, design data and every parameter (simr's ``makeLmer`` or a fit).

    Attributes
    ----------
    formula : str
    data : pandas.DataFrame
        The covariates and grouping factors (a response column is not needed).
    beta : dict
        Fixed-effects coefficient name → value (every coefficient of the design).
    params : numpy.ndarray
        Covariance parameters θ (lme4's relative Cholesky factors), then any residual-structure and
        variance-function parameters, as the fit's ``theta``.
    sigma : float
        Residual standard deviation.
    reml : bool
        Criterion of the refits.
    settings : dict
        ``residual``, ``variance``, ``contrasts``, ``control``, ``weights``, ``offset`` for the models built.
    """

    formula: str
    data: pd.DataFrame
    beta: dict
    params: np.ndarray
    sigma: float
    reml: bool = True
    settings: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_fit(cls, fit: Any) -> PowerModel:
        """The model a fit estimated, on the rows it used."""
        if not isinstance(fit, MixedFit):
            raise ModelError("power needs a fitted mixed model (or a model from make_lmer)")
        d, m = fit.design, fit.model
        settings = {"residual": m.residual_spec, "variance": m.variance_spec, "contrasts": d.contrasts or None,
                    "control": m.control, "weights": d.weights, "offset": d.offset_argument}
        return cls(d.formula.text, d.frame.copy(), dict(zip(d.fixed_names, fit.beta)), np.array(fit.theta, dtype=float),
                   float(fit.sigma), bool(fit.reml), settings)

    def with_effect(self, names: Sequence[str], value: Any) -> PowerModel:
        """The model with the coefficients ``names`` set to ``value`` (a number, a sequence or a dict by name)."""
        if value is None:
            return self
        if isinstance(value, Mapping):
            new = {k: float(v) for k, v in value.items()}
            unknown = set(new) - set(names)
            if unknown:
                raise ModelError(f"value names {', '.join(sorted(unknown))}, not coefficients of the effect ({', '.join(names)})")
        else:
            vals = np.atleast_1d(np.asarray(value, dtype=float))
            if vals.size != len(names):
                raise ModelError(f"the effect has {len(names)} coefficients ({', '.join(names)}); value has {vals.size}")
            new = dict(zip(names, vals.tolist()))
        return dataclasses.replace(self, beta={**self.beta, **new})


def make_lmer(
    formula: str, data: pd.DataFrame, fixef: Mapping[str, float] | Sequence[float], varcorr: Sequence[Any], sigma: float,
    *, REML: bool = True, contrasts: dict | None = None,
) -> PowerModel:
    """A model given by its parameters, as simr's ``makeLmer(formula, fixef, VarCorr, sigma, data)``.

    Parameters
    ----------
    formula : str
        lme4 formula with unstructured random-effects terms; its response need not be in ``data``.
    data : pandas.DataFrame
        Covariates and grouping factors.
    fixef : dict or sequence
        Coefficients by lme4 name, or in the design's order.
    varcorr : sequence
        One covariance matrix per random-effects term in lme4's order (a number for a one-column term:
        its variance).
    sigma : float
        Residual standard deviation.
    """
    from ..formula.parse import parse_formula
    from ..model import LinearMixedModel

    frame = data.copy()
    response = parse_formula(formula).response
    if response not in frame.columns:
        frame[response] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LinearMixedModel.from_formula(formula, frame, reml=REML, contrasts=contrasts)
    names = list(model.design.fixed_names)
    if isinstance(fixef, Mapping):
        missing = [n for n in names if n not in fixef]
        if missing or set(fixef) - set(names):
            raise ModelError(f"fixef must name the coefficients {', '.join(names)}")
        beta = {n: float(fixef[n]) for n in names}
    else:
        vals = np.asarray(fixef, dtype=float)
        if vals.size != len(names):
            raise ModelError(f"fixef needs {len(names)} values ({', '.join(names)}), got {vals.size}")
        beta = dict(zip(names, vals.tolist()))
    if len(varcorr) != len(model.terms) or sigma <= 0:
        raise ModelError(f"give one covariance per random-effects term ({len(model.terms)}) and sigma > 0")
    theta = []
    for t, g in zip(model.terms, varcorr):
        G = np.atleast_2d(np.asarray(g, dtype=float))
        if G.shape != (t.p, t.p) or t.structure.kind != "us":
            raise ModelError(f"term {t.group} needs a {t.p} x {t.p} covariance (unstructured terms only)")
        if not np.allclose(G, G.T) or np.min(np.linalg.eigvalsh(G)) < -1e-10 * max(1.0, float(np.max(np.abs(G)))):
            raise ModelError(f"the covariance of term {t.group} is not symmetric positive semi-definite")
        lam = _robust_chol(G / sigma**2)
        theta.extend(lam.T[np.triu_indices(t.p)])  # lme4's θ: the lower triangle of λ by columns
    return PowerModel(formula, frame, beta, np.array(theta), float(sigma), REML, {"contrasts": contrasts})


def _levels(column: pd.Series) -> list:
    """The values of ``along`` in simr's order (a factor's levels, else sorted unique values)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return [c for c in column.cat.categories if (column == c).any()]
    return sorted(column.dropna().unique().tolist())


def extend(frame: pd.DataFrame, along: str, n: int) -> tuple[pd.DataFrame, np.ndarray, list]:
    """The rows of ``n`` levels of ``along`` (simr's ``extend``): level ``j`` copies level ``j mod m``.

    Returns the frame, the source row of each of its rows, and its levels in order.
    """
    levels = _levels(frame[along])
    m = len(levels)
    if n <= m:
        keep = frame[along].isin(levels[:n]).to_numpy()
        return frame.loc[keep], np.flatnonzero(keep), levels[:n]
    if not isinstance(frame[along].dtype, pd.CategoricalDtype) and pd.api.types.is_numeric_dtype(frame[along]):
        raise ModelError(f"cannot extend along the numeric column {along!r} beyond its {m} values")
    parts, rows, labels = [], [], []
    codes = frame[along].astype(str).to_numpy()
    for j in range(n):
        src = str(levels[j % m])
        label = src if j < m else f"{src}.{j // m}"
        idx = np.flatnonzero(codes == src)
        part = frame.iloc[idx].copy()
        part[along] = label
        parts.append(part)
        rows.append(idx)
        labels.append(label)
    out = pd.concat(parts, ignore_index=True)
    out[along] = pd.Categorical(out[along], categories=labels)
    return out, np.concatenate(rows), labels


def tidy_sizes(m: int, low: int = 3, most: int = 10) -> list[int]:
    """simr's default breaks: ``low..m``, or ``most`` of them evenly spaced (``tidySeq``)."""
    if m < low:
        return [m]
    if m - low + 1 <= most:
        return list(range(low, m + 1))
    return sorted({int(v) for v in np.round(np.linspace(low, m, most))})


def _build(pm: PowerModel, frame: pd.DataFrame, rows: np.ndarray, reml: bool) -> Any:
    from ..model import LinearMixedModel

    s = pm.settings
    w = None if s.get("weights") is None else np.asarray(s["weights"])[rows]
    off = None if s.get("offset") is None else np.asarray(s["offset"])[rows]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LinearMixedModel.from_formula(
            pm.formula, frame, reml=reml, contrasts=s.get("contrasts"), control=s.get("control"), weights=w, offset=off,
            residual=s.get("residual"), variance=s.get("variance"),
        )


def simulate_model(model: Any, beta: np.ndarray, params: np.ndarray, sigma: float, nsim: int, rng: np.random.Generator) -> np.ndarray:
    """``n × nsim`` responses of ``model`` at the given parameters (as ``LinearMixedModelResults.simulate``)."""
    d = model.design
    out = np.repeat((d.X @ beta + (0.0 if d.offset is None else d.offset))[:, None], nsim, axis=1)
    k = model.n_theta
    start = 0
    for t in model.terms:
        lam = t.lambda_matrix(params[start : start + t.ntheta])
        start += t.ntheta
        u = rng.standard_normal((nsim, t.nlevels, t.p))
        b = sigma * (u @ lam.T)
        out += np.einsum("np,snp->ns", t.z, b[:, t.refs, :])
    noise = sigma * rng.standard_normal((model.nobs, nsim))
    w = model.whitening
    if w is not None:
        rho = params[k : k + model.n_rho]
        for unit, L in zip(w.units, w.structure.factors(rho, w.binding)):
            if w.structure.discrete:
                noise[unit.rows] = np.einsum("ab,mbs->mas", L, noise[unit.rows])
            else:
                noise[unit.rows] = np.einsum("mab,mbs->mas", L, noise[unit.rows])
    scale = model.residual_sd_scale(params[k + model.n_rho :])
    if scale is not None:
        noise *= scale[:, None]
    return out + noise


# State shared with forked worker processes (set just before the pool starts).
_JOB: dict[str, Any] = {}


def _pvalue(i: int) -> float:
    """The p-value of simulation ``i % nsim`` at size ``i // nsim`` (NaN when a refit fails)."""
    nsim = _JOB["nsim"]
    s, j = divmod(i, nsim)
    size = _JOB["sizes"][s]
    y = _JOB["Y"][size["rows"], j]
    test, L = _JOB["test"], _JOB["L"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = _JOB["start"]
            if test == "lr":
                full = size["full"].refit(y, start=start, warn=False)
                null = size["null"].refit(y, start=start, warn=False)
                return float(stats.chi2.sf(max(0.0, 2.0 * (full.loglik - null.loglik)), L.shape[0]))
            fit = size["full"].refit(y, start=start, warn=False)
            if test == "z":
                b = L @ fit.beta
                V = L @ fit.vcov.to_numpy() @ L.T
                return float(stats.chi2.sf(float(b @ np.linalg.solve(V, b)), L.shape[0]))
            res = fit.ddf_calculator("kenward-roger" if test == "kr" else "satterthwaite").ftest(L, None)
            return float(special.fdtrc(res["ndf"], res["ddf"], res["F"]))
    except (MixedModelsError, np.linalg.LinAlgError, FloatingPointError, ValueError, ZeroDivisionError):
        return float("nan")


def clopper_pearson(x: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval for ``x`` successes in ``n`` trials."""
    a = 1.0 - level
    lo = 0.0 if x == 0 else float(stats.beta.ppf(a / 2, x, n - x + 1))
    hi = 1.0 if x == n else float(stats.beta.ppf(1 - a / 2, x + 1, n - x))
    return lo, hi


@dataclass(frozen=True)
class PowerCurve:
    """Estimated power per sample size.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per size: ``size`` (levels of ``along``), ``nobs``, ``successes`` (p < alpha), ``nsim_used``,
        ``failed`` (refits that failed), ``power`` and its Clopper–Pearson ``lower``/``upper`` bounds.
    pvalues : numpy.ndarray
        ``sizes × nsim`` p-values (NaN where a refit failed).
    effect : str
    coefficients : tuple of str
        The coefficients tested.
    value : dict
        The coefficients' values in the simulations.
    test : str
    alpha, level : float
    nsim : int
    along : str or None
    """

    table: pd.DataFrame
    pvalues: np.ndarray = dataclasses.field(repr=False)
    effect: str = ""
    coefficients: tuple = ()
    value: dict = dataclasses.field(default_factory=dict)
    test: str = "kr"
    alpha: float = 0.05
    level: float = 0.95
    nsim: int = 0
    along: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the settings and one entry per size."""
        sizes = [{"size": int(r["size"]) if self.along else None, "nobs": int(r["nobs"]), "successes": int(r["successes"]),
                  "nsim_used": int(r["nsim_used"]), "failed": int(r["failed"]), "power": json_number(r["power"]),
                  "lower": json_number(r["lower"]), "upper": json_number(r["upper"])} for _, r in self.table.iterrows()]
        return {"effect": self.effect, "coefficients": list(self.coefficients), "value": self.value, "test": self.test,
                "test_name": _TEST_NAMES[self.test], "alpha": self.alpha, "level": self.level, "nsim": self.nsim,
                "along": self.along, "sizes": sizes}

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """The power curve with its intervals (:func:`mixedmodels.plots.power.plot_power`)."""
        from ..plots.power import plot_power

        return plot_power(self, ax=ax, **kwargs)

    def __str__(self) -> str:
        values = ", ".join(f"{k} = {v:g}" for k, v in self.value.items())
        head = [(f"Power for {self.effect} ({values}), {_TEST_NAMES[self.test]} at alpha = {self.alpha:g}, "
                 f"{self.nsim} simulations; {self.level:.0%} Clopper-Pearson intervals")]
        if self.along:
            head.append(f"by number of levels of {self.along}:")
        return "\n".join(head + [as_table(self.table).to_text()]) + "\n"

    __repr__ = __str__


def _effect_columns(names: list[str], effect: str, design: Any) -> list[int]:
    if effect in names:
        return [names.index(effect)]
    from .anova import _r_term_label, _term_info

    spec = design.fixed_spec
    for label, *_ in _term_info(spec):
        if _r_term_label(design, label) == effect:
            idx = spec.term_indices[next(t for t in spec.term_indices if str(t) == label)]
            return [int(np.flatnonzero(design.kept_columns == i)[0]) for i in idx if i in design.kept_columns]
    raise ModelError(f"{effect!r} is neither a coefficient ({', '.join(names)}) nor a fixed term of the model")


def _null_model(model: Any, drop: list[int]) -> Any:
    """The model without the fixed-effects columns ``drop`` (same rows, random effects and settings)."""
    from ..model import LinearMixedModel

    d = model.design
    keep = [i for i in range(d.X.shape[1]) if i not in drop]
    design = dataclasses.replace(d, X=d.X[:, keep], fixed_names=tuple(d.fixed_names[i] for i in keep),
                                 kept_columns=d.kept_columns[keep])
    return LinearMixedModel(design, reml=False, data_name=model.data_name, control=model.control,
                            residual=model.residual_spec, variance=model.variance_spec)


@engine_threads
def power(
    fit: Any,
    effect: str,
    value: Any = None,
    *,
    nsim: int = 1000,
    along: str | None = None,
    sizes: Sequence[int] | None = None,
    test: str | None = None,
    alpha: float = 0.05,
    level: float = 0.95,
    seed: int | np.random.Generator | None = None,
    n_jobs: int = 1,
    progress: bool | None = None,
) -> PowerCurve:
    """Power to detect ``effect`` by simulation, per sample size along a grouping factor (simr's powerCurve).

    Parameters
    ----------
    fit : LinearMixedModelResults or PowerModel
        The model to simulate from (a fit, or :func:`make_lmer`'s model).
    effect : str
        A coefficient (``"Days"``) or a fixed term (``"recipe"``: all its coefficients).
    value : float, sequence or dict, optional
        The effect's coefficient(s) in the simulations (simr's ``fixef(fit)["Days"] <- value``);
        default the fitted ones.
    nsim : int
        Simulations (each size refits every one).
    along : str, optional
        A column (usually a grouping factor) whose first ``k`` levels make a sample of size ``k``.
    sizes : sequence of int, optional
        Numbers of levels of ``along``; beyond the data's, the design is extended (simr's ``extend``).
        Default with ``along``: simr's breaks (3 to the number of levels, at most 10 sizes).
    test : {"kr", "satterthwaite", "lr", "z"}, optional
        Default as simr: ``"lr"`` for a factor's several coefficients, else ``"kr"`` for REML models and
        ``"satterthwaite"`` for ML ones.
    alpha : float
        Significance level.
    level : float
        Confidence level of the binomial intervals.
    seed : int or Generator, optional
        Seed of the simulations; the result does not depend on ``n_jobs``.
    n_jobs : int
        Processes for the refits (``-1``: all cores).
    progress : bool, optional
        Progress bar on standard error (default: when it is a terminal).

    Returns
    -------
    PowerCurve
    """
    pm = fit if isinstance(fit, PowerModel) else PowerModel.from_fit(fit)
    if nsim < 1:
        raise ModelError(f"nsim must be at least 1, got {nsim}")
    if not 0 < alpha < 1 or not 0 < level < 1:
        raise ModelError("alpha and level must be between 0 and 1")
    names = list(pm.beta)
    frame = pm.data
    if along is not None:
        if along not in frame.columns:
            raise ModelError(f"along={along!r} is not a column of the model's data ({', '.join(map(str, frame.columns))})")
        m = len(_levels(frame[along]))
        sizes = tidy_sizes(m) if sizes is None else [int(k) for k in sizes]
        if not sizes or min(sizes) < 1:
            raise ModelError("sizes must be positive numbers of levels")
        full_frame, rowmap, labels = extend(frame, along, max(sizes))
        codes = pd.Categorical(full_frame[along].astype(str), categories=[str(v) for v in labels]).codes
        subsets = [np.flatnonzero(codes < k) for k in sizes]
    else:
        if sizes is not None:
            raise ModelError("sizes needs along (the column whose levels are counted)")
        full_frame, rowmap, subsets = frame, np.arange(len(frame)), [np.arange(len(frame))]
    full_frame = full_frame.reset_index(drop=True)
    full_model = _build(pm, full_frame, rowmap, pm.reml)
    if list(full_model.design.fixed_names) != names:
        raise ModelError("the extended design's coefficients differ from the model's; extend along a grouping factor")
    cols = _effect_columns(names, effect, full_model.design)
    pm = pm.with_effect([names[i] for i in cols], value)
    if test is None:
        test = "lr" if len(cols) > 1 else ("kr" if pm.reml else "satterthwaite")
    test = str(test).lower().replace("-", "_").replace("kenward_roger", "kr")
    if test not in TESTS:
        raise ModelError(f"test must be one of {', '.join(TESTS)}, got {test!r}")
    if test == "kr" and not pm.reml:
        raise ModelError("the Kenward-Roger test needs REML refits; use test='satterthwaite' or 'lr'")
    if pm.params.size != full_model.theta_start.size:
        raise ModelError(f"the model has {full_model.theta_start.size} covariance parameters, {pm.params.size} were given")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    beta = np.array([pm.beta[n] for n in names])
    Y = simulate_model(full_model, beta, pm.params, pm.sigma, nsim, rng)
    L = np.eye(len(names))[cols]
    size_jobs = []
    for rows in subsets:
        sub = _build(pm, full_frame.iloc[rows], rowmap[rows], pm.reml)
        if list(sub.design.fixed_names) != names:
            lost = ", ".join(sorted(set(names) - set(sub.design.fixed_names)))
            raise ModelError(f"with {rows.size} rows the design loses coefficients ({lost}); use larger sizes")
        y0 = simulate_model(sub, beta, pm.params, pm.sigma, 1, np.random.default_rng(0))[:, 0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            template = sub.with_response(y0).fit(start=pm.params, warn=False)  # the refits' structure
            job = {"rows": rows, "full": template}
            if test == "lr":
                job["full"] = template.model.with_reml(False).fit(start=pm.params, warn=False)
                job["null"] = _null_model(template.model, cols).fit(start=pm.params, warn=False)
        size_jobs.append(job)
    _JOB.update(Y=Y, sizes=size_jobs, nsim=nsim, test=test, L=L, start=pm.params)
    total = nsim * len(size_jobs)
    jobs = (os.cpu_count() or 1) if n_jobs == -1 else max(1, int(n_jobs))
    show = progress_enabled(progress)
    try:
        if jobs == 1 or total < 4 or "fork" not in multiprocessing.get_all_start_methods():
            pvals = [_pvalue(i) for i in _progress(range(total), total, "power", show)]
        else:
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                chunk = max(1, total // (16 * jobs))
                pvals = list(_progress(pool.imap(_pvalue, range(total), chunksize=chunk), total, "power", show))
    finally:
        _JOB.clear()
    P = np.asarray(pvals, dtype=float).reshape(len(size_jobs), nsim)
    rows_out = []
    for k, (rows, p) in enumerate(zip(subsets, P)):
        ok = np.isfinite(p)
        x, n = int(np.sum(p[ok] < alpha)), int(ok.sum())
        lo, hi = clopper_pearson(x, n, level) if n else (np.nan, np.nan)
        row = {"size": sizes[k]} if along else {}
        rows_out.append({**row, "nobs": rows.size, "successes": x, "nsim_used": n, "failed": nsim - n,
                         "power": x / n if n else np.nan, "lower": lo, "upper": hi})
    table = pd.DataFrame(rows_out)
    return PowerCurve(table=Table(table), pvalues=P, effect=effect, coefficients=tuple(names[i] for i in cols),
                      value={names[i]: pm.beta[names[i]] for i in cols}, test=test, alpha=alpha, level=level, nsim=nsim,
                      along=along)
