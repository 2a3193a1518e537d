"""Simulation study of the inference methods: type-I error rates and profile-interval coverage.

Not run in CI. Usage::

    python benchmarks/simulation_study.py [--nsim N] [--seed S] [--quick] [--designs 8x5,40x10]
                                          [--rlrt-nsim M] [--jobs J] [--out FILE.md] [--json FILE.json]

Data are simulated in numpy from known parameters on balanced designs with ``G`` groups of ``m``
observations: a between-group treatment ``trt`` (half the groups 1, half 0) and a within-group
``time`` (0 … m−1, centred), ``y = β₀ + β_trt·trt + β_time·time + b₀ + b₁·time + ε`` with
``b₀ ~ N(0, σ₀²)``, ``b₁ ~ N(0, σ₁²)`` independent and ``ε ~ N(0, σ²)``. The true fixed effects are
``β = (1, 0, 0)`` throughout and ``σ = 1``. Four scenarios per design:

``RI``   σ₀ = 0.7, σ₁ = 0; fit ``y ~ trt + time + (1 | g)`` (REML).
``RS``   σ₀ = 0.7, σ₁ = 0.3, ρ = 0; fit ``y ~ trt + time + (time | g)`` (REML).
``RI0``  σ₀ = σ₁ = 0; the linear model against ``(1 | g)``.
``RS0``  σ₀ = 0.7, σ₁ = 0; ``(1 | g)`` against ``(time | g)`` and against ``(1 | g) + (0 + time | g)``.

Reported, each rate with its Monte-Carlo standard error ``√(p(1−p)/n)``, the number of replicates
used and the number that failed (an exception or a non-finite result; they are excluded from that
rate, never silently):

(a) type-I error at α = 0.05 of the t-tests of ``trt`` and ``time`` (true value 0) in the RI and RS
    fits, with the z (normal) reference, the t reference with the residual df ``n − p``,
    Satterthwaite's and Kenward–Roger's df;
(b) type-I error of the LRT for a zero variance component (RI0 and RS0), REML-based (as ``compare``
    does for equal fixed effects) and ML-based (as lme4's ``anova``), with the naive χ² p-value and
    the χ̄² boundary (50:50 mixture) p-value, and the share of statistics equal to 0;
(c) type-I error of the exact RLRT (RLRsim's ``exactRLRT``) in RI0 and, with the nuisance intercept
    variance, for the uncorrelated slope in RS0;
(d) coverage of 95% profile-likelihood intervals (``confint("profile")``) in RI and RS.

Replicate ``i`` of scenario ``s`` in design ``d`` draws from ``numpy.random.default_rng([seed, d, s, i])``,
so results do not depend on ``--jobs``. Each replicate refits the template model with ``refit``
(same X and Z, new response) from lme4's default start, with the convergence check on.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05
BETA = (1.0, 0.0, 0.0)
SIGMA = 1.0
SD_INT = 0.7
SD_SLOPE = 0.3
SCENARIOS = ("RI", "RS", "RI0", "RS0")
EFFECTS = ("trt", "time")

F_LM = "y ~ trt + time"
F_RI = "y ~ trt + time + (1 | g)"
F_RS = "y ~ trt + time + (time | g)"
F_UNC = "y ~ trt + time + (1 | g) + (0 + time | g)"
F_SLOPE = "y ~ trt + time + (0 + time | g)"

# lme4 names of the variance parameters in the RI and RS fits, and their true values
PARAMS = {
    "RI": [(".sig01", "sd (Intercept)", SD_INT), (".sigma", "sigma", SIGMA)],
    "RS": [
        (".sig01", "sd (Intercept)", SD_INT),
        (".sig02", "cor (Intercept, time)", 0.0),
        (".sig03", "sd time", SD_SLOPE),
        (".sigma", "sigma", SIGMA),
    ],
}
FIXED = [("(Intercept)", BETA[0]), ("trt", BETA[1]), ("time", BETA[2])]


# ---------------------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class Design:
    groups: int
    per_group: int

    @property
    def label(self) -> str:
        return f"{self.groups}x{self.per_group}"

    @property
    def n(self) -> int:
        return self.groups * self.per_group

    def frame(self) -> pd.DataFrame:
        g = np.repeat(np.arange(self.groups), self.per_group)
        t = np.tile(np.arange(self.per_group, dtype=float), self.groups)
        return pd.DataFrame(
            {
                "g": np.char.add("g", g.astype(str).astype("U6")),
                "trt": (g % 2).astype(float),
                "time": t - t.mean(),
                "y": np.zeros(self.n),
            }
        )


def parse_designs(text: str) -> list[Design]:
    out = []
    for part in text.split(","):
        g, m = part.lower().split("x")
        d = Design(int(g), int(m))
        if d.groups < 4 or d.groups % 2 or d.per_group < 3:
            raise SystemExit(f"design {part!r}: need an even number of groups ≥ 4 and ≥ 3 observations per group")
        out.append(d)
    return out


def simulate_response(
    frame: pd.DataFrame, groups: int, sd_int: float, sd_slope: float, rng: np.random.Generator
) -> np.ndarray:
    """``y`` from the true model: fixed part ``BETA``, independent random intercepts and slopes, N(0, σ²) noise."""
    gi = frame["g_index"].to_numpy()
    trt, tm = frame["trt"].to_numpy(), frame["time"].to_numpy()
    b0 = sd_int * rng.standard_normal(groups)
    b1 = sd_slope * rng.standard_normal(groups)
    eps = SIGMA * rng.standard_normal(len(frame))
    return BETA[0] + BETA[1] * trt + BETA[2] * tm + b0[gi] + b1[gi] * tm + eps


# ------------------------------------------------------------------------------------- per-process state
_TEMPLATES: dict[str, dict[str, Any]] = {}


def _templates(design: Design) -> dict[str, Any]:
    """Template fits (on a placeholder response) whose structure every replicate reuses via ``refit``."""
    if design.label in _TEMPLATES:
        return _TEMPLATES[design.label]
    import mixedmodels as mm
    from mixedmodels.linear import LinearModelResults

    frame = design.frame()
    frame["y"] = np.random.default_rng(12345).standard_normal(design.n) + np.repeat(
        np.random.default_rng(54321).standard_normal(design.groups), design.per_group
    )
    frame["g_index"] = np.repeat(np.arange(design.groups), design.per_group)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tpl = {
            "frame": frame,
            "RI": mm.lmer(F_RI, frame),
            "RS": mm.lmer(F_RS, frame),
            "UNC": mm.lmer(F_UNC, frame),
            "SLOPE": mm.lmer(F_SLOPE, frame),
            "LM": LinearModelResults.from_formula(F_LM, frame, reml=True),
        }
    _TEMPLATES[design.label] = tpl
    return tpl


def _refit(template, y: np.ndarray):
    """The template's model fitted to ``y`` from lme4's default start, with the convergence check."""
    return template.refit(y, check_convergence=True, start=template.model.theta_start)


# ----------------------------------------------------------------------------------------- replicates
def _fit_flags(out: dict[str, float], prefix: str, fit) -> None:
    out[f"{prefix}nonconv"] = float(not fit.converged)
    out[f"{prefix}singular"] = float(fit.singular)


def _ttests(out: dict[str, float], fit, design: Design) -> None:
    names = list(fit.fe_params.index)
    beta = fit.beta
    se = np.sqrt(np.diag(fit.vcov.to_numpy()))
    for eff in EFFECTS:
        j = names.index(eff)
        t = beta[j] / se[j]
        out[f"p_z:{eff}"] = float(2 * stats.norm.sf(abs(t)))
        out[f"p_resid:{eff}"] = float(2 * stats.t.sf(abs(t), design.n - len(names)))
    for key, method in (("sat", "satterthwaite"), ("kr", "kenward-roger")):
        try:
            tab = fit.coef_table(method)
            for eff in EFFECTS:
                out[f"p_{key}:{eff}"] = float(tab.loc[eff, "Pr(>|t|)"])
                out[f"df_{key}:{eff}"] = float(tab.loc[eff, "df"])
        except Exception:  # noqa: BLE001 - counted as failures
            for eff in EFFECTS:
                out[f"p_{key}:{eff}"] = math.nan
                out[f"df_{key}:{eff}"] = math.nan


def _coverage(out: dict[str, float], fit, scenario: str) -> None:
    truth = [(p, v) for p, _, v in PARAMS[scenario]] + FIXED
    try:
        ci = fit.confint("profile", progress=False)
    except Exception:  # noqa: BLE001 - counted as failures
        ci = None
    for name, value in truth:
        lo = hi = math.nan
        if ci is not None and name in ci.index:
            lo, hi = float(ci.loc[name].iloc[0]), float(ci.loc[name].iloc[1])
        ok = np.isfinite(lo) and np.isfinite(hi)
        out[f"cov:{name}"] = float(lo <= value <= hi) if ok else math.nan
        out[f"width:{name}"] = hi - lo if ok else math.nan


def _lrt(out: dict[str, float], key: str, null, alt) -> None:
    from mixedmodels.inference.compare import compare

    for basis, refit in (("REML", False), ("ML", True)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                row = compare(null, alt, refit=refit).table.iloc[1]
            out[f"lrt_stat:{key}:{basis}"] = float(row["Chisq"])
            out[f"lrt_zero:{key}:{basis}"] = float(row["Chisq"] <= 1e-8)
            out[f"p_naive:{key}:{basis}"] = float(row["Pr(>Chisq)"])
            out[f"p_mix:{key}:{basis}"] = float(row["Pr(>Chisq) boundary"])
        except Exception:  # noqa: BLE001 - counted as failures
            for name in ("lrt_stat", "lrt_zero", "p_naive", "p_mix"):
                out[f"{name}:{key}:{basis}"] = math.nan


def _rlrt(out: dict[str, float], key: str, rlrt_nsim: int, seed: int, *models) -> None:
    from mixedmodels.inference.rlrt import exact_rlrt

    try:
        res = exact_rlrt(*models, nsim=rlrt_nsim, seed=seed)
        out[f"p_rlrt:{key}"] = float(res.p_value)
        out[f"rlrt_stat:{key}"] = float(res.statistic)
    except Exception:  # noqa: BLE001 - counted as failures
        out[f"p_rlrt:{key}"] = math.nan
        out[f"rlrt_stat:{key}"] = math.nan


def replicate(design: Design, d_index: int, scenario: str, i: int, seed: int, rlrt_nsim: int) -> dict[str, float]:
    """One simulated data set of ``scenario`` and everything computed from it."""
    tpl = _templates(design)
    rng = np.random.default_rng([seed, d_index, SCENARIOS.index(scenario), i])
    frame = tpl["frame"]
    out: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if scenario in ("RI", "RS"):
            y = simulate_response(frame, design.groups, SD_INT, SD_SLOPE if scenario == "RS" else 0.0, rng)
            try:
                fit = _refit(tpl[scenario], y)
            except Exception:  # noqa: BLE001
                return {"fit_failed": 1.0}
            out["fit_failed"] = 0.0
            _fit_flags(out, "", fit)
            _ttests(out, fit, design)
            _coverage(out, fit, scenario)
        elif scenario == "RI0":
            y = simulate_response(frame, design.groups, 0.0, 0.0, rng)
            try:
                alt = _refit(tpl["RI"], y)
                null = tpl["LM"].refit(y)
            except Exception:  # noqa: BLE001
                return {"fit_failed": 1.0}
            out["fit_failed"] = 0.0
            _fit_flags(out, "", alt)
            _lrt(out, "int", null, alt)
            _rlrt(out, "int", rlrt_nsim, int(rng.integers(2**31)), alt)
        elif scenario == "RS0":
            y = simulate_response(frame, design.groups, SD_INT, 0.0, rng)
            try:
                null = _refit(tpl["RI"], y)
                corr = _refit(tpl["RS"], y)
                unc = _refit(tpl["UNC"], y)
                single = _refit(tpl["SLOPE"], y)
            except Exception:  # noqa: BLE001
                return {"fit_failed": 1.0}
            out["fit_failed"] = 0.0
            out["nonconv"] = float(not (null.converged and corr.converged and unc.converged and single.converged))
            out["singular"] = float(corr.singular)
            _lrt(out, "slope_corr", null, corr)
            _lrt(out, "slope_unc", null, unc)
            _rlrt(out, "slope_unc", rlrt_nsim, int(rng.integers(2**31)), unc, null, single)
        else:  # pragma: no cover
            raise ValueError(scenario)
    return out


def _run_chunk(args: tuple) -> list[dict[str, float]]:
    design, d_index, scenario, start, stop, seed, rlrt_nsim = args
    try:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(1)
    except Exception:  # noqa: BLE001 - threadpoolctl is a dependency, but the study runs without it
        limiter = None
    try:
        return [replicate(design, d_index, scenario, i, seed, rlrt_nsim) for i in range(start, stop)]
    finally:
        if limiter is not None:
            limiter.restore_original_limits()


# ------------------------------------------------------------------------------------------ summary
def rate(values: list[float], predicate) -> dict[str, float]:
    """Share of finite values satisfying ``predicate``, its Monte-Carlo SE, n used and n failed."""
    arr = np.array(values, dtype=float)
    ok = np.isfinite(arr)
    n = int(ok.sum())
    if n == 0:
        return {"rate": math.nan, "se": math.nan, "n": 0, "failed": int(arr.size)}
    p = float(np.mean(predicate(arr[ok])))
    return {"rate": p, "se": math.sqrt(p * (1 - p) / n), "n": n, "failed": int(arr.size - n)}


def _col(reps: list[dict[str, float]], key: str) -> list[float]:
    return [r.get(key, math.nan) for r in reps]


def _mean(reps, key) -> float:
    arr = np.array(_col(reps, key), dtype=float)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else math.nan


def _median(reps, key) -> float:
    arr = np.array(_col(reps, key), dtype=float)
    arr = arr[np.isfinite(arr)]
    return float(np.median(arr)) if arr.size else math.nan


def summarise(results: dict[tuple[str, str], list[dict[str, float]]], designs: list[Design]) -> dict[str, list[dict]]:
    reject = lambda p: p < ALPHA  # noqa: E731
    sections: dict[str, list[dict]] = {"fits": [], "a": [], "b": [], "c": [], "d": []}
    for d in designs:
        for sc in SCENARIOS:
            reps = results[(d.label, sc)]
            sections["fits"].append(
                {
                    "design": d.label,
                    "scenario": sc,
                    "nsim": len(reps),
                    "fit_failed": int(np.nansum(_col(reps, "fit_failed"))),
                    "nonconverged": rate(_col(reps, "nonconv"), lambda x: x > 0),
                    "singular": rate(_col(reps, "singular"), lambda x: x > 0),
                }
            )
        for sc, model in (("RI", "(1 | g)"), ("RS", "(time | g)")):
            reps = results[(d.label, sc)]
            for eff in EFFECTS:
                sections["a"].append(
                    {
                        "design": d.label,
                        "fit": model,
                        "effect": eff,
                        "nsim": len(reps),
                        "rates": {
                            "z": rate(_col(reps, f"p_z:{eff}"), reject),
                            "t(n-p)": rate(_col(reps, f"p_resid:{eff}"), reject),
                            "Satterthwaite": rate(_col(reps, f"p_sat:{eff}"), reject),
                            "Kenward-Roger": rate(_col(reps, f"p_kr:{eff}"), reject),
                        },
                        "median_df": {
                            "n-p": d.n - 3,
                            "Satterthwaite": _median(reps, f"df_sat:{eff}"),
                            "Kenward-Roger": _median(reps, f"df_kr:{eff}"),
                        },
                    }
                )
        tests = [
            ("RI0", "int", "linear model vs (1 | g)", "χ²₀:χ²₁"),
            ("RS0", "slope_corr", "(1 | g) vs (time | g)", "χ²₁:χ²₂"),
            ("RS0", "slope_unc", "(1 | g) vs (1 | g) + (0 + time | g)", "χ²₀:χ²₁"),
        ]
        for sc, key, label, mixture in tests:
            reps = results[(d.label, sc)]
            for basis in ("REML", "ML"):
                sections["b"].append(
                    {
                        "design": d.label,
                        "test": label,
                        "basis": basis,
                        "mixture": mixture,
                        "nsim": len(reps),
                        "rates": {
                            "LRT = 0": rate(_col(reps, f"lrt_zero:{key}:{basis}"), lambda x: x > 0),
                            "naive χ²": rate(_col(reps, f"p_naive:{key}:{basis}"), reject),
                            "χ̄² boundary": rate(_col(reps, f"p_mix:{key}:{basis}"), reject),
                        },
                    }
                )
        rlrt_tests = (
            ("RI0", "int", "linear model vs (1 | g)"),
            ("RS0", "slope_unc", "(1 | g) vs (1 | g) + (0 + time | g)"),
        )
        for sc, key, label in rlrt_tests:
            reps = results[(d.label, sc)]
            stat_diff = np.array(_col(reps, f"rlrt_stat:{key}")) - np.array(_col(reps, f"lrt_stat:{key}:REML"))
            stat_diff = stat_diff[np.isfinite(stat_diff)]
            sections["c"].append(
                {
                    "design": d.label,
                    "test": label,
                    "nsim": len(reps),
                    "rates": {"exact RLRT": rate(_col(reps, f"p_rlrt:{key}"), reject)},
                    "max_abs_stat_diff_vs_REML_LRT": float(np.max(np.abs(stat_diff))) if stat_diff.size else math.nan,
                }
            )
        for sc, model in (("RI", "(1 | g)"), ("RS", "(time | g)")):
            reps = results[(d.label, sc)]
            params = [(p, lab, v) for p, lab, v in PARAMS[sc]] + [(f, f, v) for f, v in FIXED]
            for name, label, value in params:
                sections["d"].append(
                    {
                        "design": d.label,
                        "fit": model,
                        "parameter": name,
                        "label": label,
                        "truth": value,
                        "nsim": len(reps),
                        "rates": {"coverage": rate(_col(reps, f"cov:{name}"), lambda x: x > 0)},
                        "mean_width": _mean(reps, f"width:{name}"),
                    }
                )
    return sections


# ------------------------------------------------------------------------------------------ output
def fmt_rate(r: dict[str, float]) -> str:
    if not np.isfinite(r["rate"]):
        return "n/a"
    return f"{r['rate']:.3f} ± {r['se']:.3f}"


def fmt_failed(rates: dict[str, dict]) -> str:
    return "/".join(str(r["failed"]) for r in rates.values())


def _table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    lines = [line(header), "|" + "|".join("---" for _ in header) + "|"] + [line(r) for r in rows]
    return "\n".join(lines)


def markdown(sections: dict[str, list[dict]], meta: dict[str, Any]) -> str:
    out = [
        "# Simulation study: type-I error and coverage",
        "",
        f"nsim = {meta['nsim']} data sets per design and scenario, seed = {meta['seed']}, "
        f"exact-RLRT null sample = {meta['rlrt_nsim']}, α = {ALPHA}, designs (groups x obs/group) = "
        f"{', '.join(meta['designs'])}, run time = {meta['runtime_s']:.0f} s with {meta['jobs']} process(es)"
        f"{' (QUICK MODE)' if meta['quick'] else ''}.",
        "",
        "Truth: β = (1, 0, 0) for (Intercept), trt, time; σ = 1; random-intercept SD 0.7; random-slope SD 0.3 "
        "(RS), 0 (RI, RS0); no random effects in RI0. Rates are shown as `estimate ± Monte-Carlo SE`; "
        "`n` is the number of replicates the rate uses, `failed` the replicates excluded because the fit or "
        "the method raised an error or returned a non-finite value.",
        "",
        "## Fits",
        "",
        _table(
            ["design", "scenario", "nsim", "fit failed", "non-converged", "singular"],
            [
                [
                    r["design"], r["scenario"], str(r["nsim"]), str(r["fit_failed"]),
                    fmt_rate(r["nonconverged"]), fmt_rate(r["singular"]),
                ]
                for r in sections["fits"]
            ],
        ),
        "",
        "Non-converged fits (convergence check failed) are kept in the rates; singular = a variance "
        "estimate on the boundary (RS0: of the `(time | g)` fit).",
        "",
        "## (a) Type-I error of t-tests for a null fixed effect (α = 0.05)",
        "",
        _table(
            ["design", "fit", "effect", "n", "failed (z/t/S/KR)", "z", "t(n−p)", "Satterthwaite", "Kenward–Roger",
             "median df S / KR (n−p)"],
            [
                [
                    r["design"], r["fit"], r["effect"], str(r["rates"]["z"]["n"]), fmt_failed(r["rates"]),
                    *(fmt_rate(v) for v in r["rates"].values()),
                    "{:.1f} / {:.1f} ({})".format(
                        r["median_df"]["Satterthwaite"], r["median_df"]["Kenward-Roger"], r["median_df"]["n-p"]
                    ),
                ]
                for r in sections["a"]
            ],
        ),
        "",
        "## (b) Type-I error of the LRT for a zero variance component (α = 0.05)",
        "",
        _table(
            ["design", "test", "basis", "n", "failed", "P(LRT = 0)", "naive χ² (df)", "χ̄² boundary", "mixture"],
            [
                [
                    r["design"], r["test"], r["basis"],
                    str(r["rates"]["naive χ²"]["n"]), str(r["rates"]["naive χ²"]["failed"]),
                    fmt_rate(r["rates"]["LRT = 0"]), fmt_rate(r["rates"]["naive χ²"]),
                    fmt_rate(r["rates"]["χ̄² boundary"]),
                    r["mixture"],
                ]
                for r in sections["b"]
            ],
        ),
        "",
        "REML: restricted likelihoods, no refit (what `compare` does when the fixed effects are equal); "
        "ML: both models refitted by ML (lme4's `anova`).",
        "",
        "## (c) Type-I error of the exact RLRT (α = 0.05)",
        "",
        _table(
            ["design", "test", "n", "failed", "exact RLRT", "max |RLRT − REML LRT|"],
            [
                [
                    r["design"], r["test"], str(r["rates"]["exact RLRT"]["n"]), str(r["rates"]["exact RLRT"]["failed"]),
                    fmt_rate(r["rates"]["exact RLRT"]), f"{r['max_abs_stat_diff_vs_REML_LRT']:.2g}",
                ]
                for r in sections["c"]
            ],
        ),
        "",
        "The slope test uses `exact_rlrt(alt, null, single)` with `single = y ~ trt + time + (0 + time | g)` "
        "(RLRsim's approximation that ignores the nuisance intercept variance).",
        "",
        "## (d) Coverage of 95% profile-likelihood intervals",
        "",
        _table(
            ["design", "fit", "parameter", "truth", "n", "failed", "coverage", "mean width"],
            [
                [
                    r["design"], r["fit"],
                    r["parameter"] + (f" ({r['label']})" if r["label"] != r["parameter"] else ""),
                    f"{r['truth']:g}", str(r["rates"]["coverage"]["n"]), str(r["rates"]["coverage"]["failed"]),
                    fmt_rate(r["rates"]["coverage"]), f"{r['mean_width']:.3f}",
                ]
                for r in sections["d"]
            ],
        ),
        "",
    ]
    return "\n".join(out)


# --------------------------------------------------------------------------------------------- main
def run(designs: list[Design], nsim: int, seed: int, rlrt_nsim: int, jobs: int, progress: bool = True):
    tasks = []
    chunk = max(1, min(50, math.ceil(nsim / max(1, 4 * jobs))))
    for di, d in enumerate(designs):
        for sc in SCENARIOS:
            for start in range(0, nsim, chunk):
                tasks.append((d, di, sc, start, min(nsim, start + chunk), seed, rlrt_nsim))
    results: dict[tuple[str, str], list[dict[str, float]]] = {(d.label, sc): [] for d in designs for sc in SCENARIOS}
    t0 = time.perf_counter()
    if jobs <= 1:
        outputs = map(_run_chunk, tasks)
    else:
        pool = ProcessPoolExecutor(max_workers=jobs)
        outputs = pool.map(_run_chunk, tasks)
    done = 0
    for task, reps in zip(tasks, outputs):
        results[(task[0].label, task[2])].extend(reps)
        done += 1
        if progress:
            elapsed = time.perf_counter() - t0
            print(f"\r[{done}/{len(tasks)} chunks, {elapsed:.0f} s]", end="", file=sys.stderr, flush=True)
    if jobs > 1:
        pool.shutdown()
    if progress:
        print(file=sys.stderr)
    return results, time.perf_counter() - t0


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--nsim", type=int, default=None, help="data sets per design and scenario (default 1000; 20 with --quick)"
    )
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--quick", action="store_true", help="tiny smoke-test run")
    ap.add_argument("--designs", default="8x5,40x10", help="comma-separated GROUPSxOBS, e.g. 8x5,40x10")
    ap.add_argument(
        "--rlrt-nsim", type=int, default=None,
        help="null sample size of each exact RLRT (default 2000; 500 with --quick)",
    )
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    ap.add_argument("--out", help="also write the markdown table to this file")
    ap.add_argument("--json", help="write the results as JSON to this file")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)

    nsim = args.nsim if args.nsim is not None else (20 if args.quick else 1000)
    rlrt_nsim = args.rlrt_nsim if args.rlrt_nsim is not None else (500 if args.quick else 2000)
    if nsim < 1 or rlrt_nsim < 1:
        raise SystemExit("--nsim and --rlrt-nsim must be positive")
    designs = parse_designs(args.designs)
    results, runtime = run(designs, nsim, args.seed, rlrt_nsim, args.jobs, progress=not args.no_progress)
    sections = summarise(results, designs)
    import mixedmodels

    meta = {
        "nsim": nsim,
        "seed": args.seed,
        "rlrt_nsim": rlrt_nsim,
        "designs": [d.label for d in designs],
        "jobs": args.jobs,
        "quick": args.quick,
        "runtime_s": runtime,
        "alpha": ALPHA,
        "mixedmodels_version": mixedmodels.__version__,
        "truth": {"beta": BETA, "sigma": SIGMA, "sd_intercept": SD_INT, "sd_slope_RS": SD_SLOPE},
    }
    text = markdown(sections, meta)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(_jsonable({"meta": meta, "sections": sections}), fh, indent=1, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
