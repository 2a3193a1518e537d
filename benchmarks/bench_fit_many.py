"""fit_many against a loop of lmer fits in R: 20,000 responses × 500 samples, ``~ x + (1 | individual) + (1 | batch)``.

Usage: ``python benchmarks/bench_fit_many.py [--responses N] [--reps N] [--jobs N] [--r-sample N] [--no-r]``

* data: 100 individuals × 5 samples, 10 batches crossed with them, a covariate ``x``; each response has its
  own individual, batch and residual SDs and slope (seeded; about a tenth of the fits are singular);
* ours: ``mm.fit_many`` with Satterthwaite's df and p-values, BH-adjusted p-values and variance fractions,
  over ``--jobs`` processes; median wall time of ``--reps`` runs, CPU time, criterion evaluations per
  response, peak RSS of this process and of the largest worker;
* R, in the same run: a loop over ``--r-sample`` responses drawn at random (seeded) of lme4's ``lmer`` alone
  and of lmerTest's ``lmer`` + ``summary`` (Satterthwaite's df, what we compute), extrapolated to all
  responses; R's evaluations (``optinfo$feval``) and peak RSS (VmHWM); and the largest differences between
  R's numbers and ours on those responses.

Other work may be loading the machine: the ratios, measured in the same run, are the figures to quote.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import mixedmodels as mm

FORMULA = "~ x + (1 | individual) + (1 | batch)"


def simulate(n_responses: int, seed: int = 2024, n_ind: int = 100, per: int = 5, n_batch: int = 10) -> pd.DataFrame:
    """Covariates and ``n_responses`` response columns ``gene_00000`` … on ``n_ind × per`` samples."""
    rng = np.random.default_rng(seed)
    n = n_ind * per
    ind = np.repeat(np.arange(n_ind), per)
    batch = rng.integers(0, n_batch, n)
    x = rng.normal(size=n)
    sd_i, sd_b = rng.uniform(0.0, 1.5, n_responses), rng.uniform(0.0, 1.0, n_responses)
    sd_e, slope = rng.uniform(0.5, 1.5, n_responses), rng.normal(0.0, 0.2, n_responses)
    Y = (5.0 + slope * x[:, None] + sd_i * rng.standard_normal((n_ind, n_responses))[ind]
         + sd_b * rng.standard_normal((n_batch, n_responses))[batch] + sd_e * rng.standard_normal((n, n_responses)))
    covariates = pd.DataFrame({"individual": [f"I{i:03d}" for i in ind], "batch": [f"B{b:02d}" for b in batch], "x": x})
    genes = pd.DataFrame(np.round(Y, 6), columns=[f"gene_{j:05d}" for j in range(n_responses)])
    return pd.concat([covariates, genes], axis=1)


R_SCRIPT = r"""
suppressMessages({library(lmerTest); library(jsonlite)})
args <- commandArgs(TRUE); d <- read.csv(args[1], stringsAsFactors = TRUE); reps <- as.integer(args[2])
genes <- grep("^gene_", names(d), value = TRUE)
loop <- function(fitter, summarise) {
  out <- vector("list", length(genes))
  for (i in seq_along(genes)) {
    f <- as.formula(paste(genes[i], "~ x + (1 | individual) + (1 | batch)"))
    m <- suppressMessages(fitter(f, data = d, REML = TRUE))
    out[[i]] <- if (summarise) list(m = m, ct = coef(summary(m, ddf = "Satterthwaite"))) else list(m = m)
  }
  out
}
timed <- function(fitter, summarise) {
  t <- numeric(reps)
  for (r in seq_len(reps)) t[r] <- system.time(res <- loop(fitter, summarise))[["elapsed"]]
  list(seconds = median(t), res = res)
}
l4 <- timed(lme4::lmer, FALSE)
lt <- timed(lmerTest::lmer, TRUE)
hwm <- grep("VmHWM", readLines("/proc/self/status"), value = TRUE)
fits <- lapply(seq_along(genes), function(i) {
  m <- lt$res[[i]]$m; ct <- lt$res[[i]]$ct
  list(response = genes[i], loglik = as.numeric(logLik(m)), theta = unname(getME(m, "theta")),
       estimate = unname(ct[, "Estimate"]), se = unname(ct[, "Std. Error"]), df = unname(ct[, "df"]))
})
cat(toJSON(list(lme4_seconds = l4$seconds, lmertest_seconds = lt$seconds, n = length(genes),
                feval = sapply(l4$res, function(r) r$m@optinfo$feval), peak_kb = as.numeric(gsub("[^0-9]", "", hwm)),
                lme4 = as.character(packageVersion("lme4")), lmerTest = as.character(packageVersion("lmerTest")),
                R = R.version.string, fits = fits), auto_unbox = TRUE, digits = NA))
"""


def run_r(data: pd.DataFrame, names: list[str], reps: int) -> dict | None:
    if not shutil.which("Rscript"):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sample.csv"
        data[["individual", "batch", "x"] + names].to_csv(path, index=False)
        script = Path(tmp) / "bench.R"
        script.write_text(R_SCRIPT)
        res = subprocess.run(["Rscript", str(script), str(path), str(reps)], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        print("  R failed:", res.stderr.strip().splitlines()[-3:])
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--responses", type=int, default=20_000)
    ap.add_argument("--reps", type=int, default=3, help="runs of ours (median)")
    ap.add_argument("--r-reps", type=int, default=1, help="runs of each R loop (median)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--r-sample", type=int, default=200)
    ap.add_argument("--no-r", action="store_true")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    data = simulate(args.responses)
    genes = [c for c in data.columns if c.startswith("gene_")]
    print(f"{len(genes)} responses x {len(data)} samples, {FORMULA}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    walls, cpus, res = [], [], None
    for _ in range(args.reps):
        c0 = time.process_time()
        t0 = time.perf_counter()
        res = mm.fit_many(FORMULA, data, genes, n_jobs=args.jobs, progress=False)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    ours = statistics.median(walls)
    fits = res.fits
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"  mixedmodels fit_many, {args.jobs} process(es): median {ours:.1f} s over {args.reps} run(s) "
          f"({', '.join(f'{w:.1f}' for w in walls)}); {ours / len(genes) * 1e3:.2f} ms per response")
    print(f"    CPU: this process {statistics.median(cpus):.1f} s per run, workers {children.ru_utime + children.ru_stime:.1f} s "
          f"over all runs ({(children.ru_utime + children.ru_stime) / args.reps / len(genes) * 1e3:.2f} ms per response)")
    print(f"    evaluations per response: median {fits['evaluations'].median():.0f} (optimizer; lme4's checks and "
          f"Satterthwaite's stencil come on top); converged {int(fits['converged'].sum())}, singular {int(fits['singular'].sum())}, "
          f"failed {res.n_failed}")
    print(f"    peak RSS: this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB, "
          f"largest worker {children.ru_maxrss / 1024:.0f} MiB")
    print(f"    target: under 60 s -> {'met' if ours < 60 else 'NOT met'}")
    if args.no_r:
        return
    rng = np.random.default_rng(7)
    sample = sorted(rng.choice(genes, size=min(args.r_sample, len(genes)), replace=False).tolist())
    r = run_r(data, sample, args.r_reps)
    if r is None:
        return
    scale = len(genes) / r["n"]
    l4, lt = r["lme4_seconds"] * scale, r["lmertest_seconds"] * scale
    print(f"  R {r['R'].split(' (')[0]}, lme4 {r['lme4']}, lmerTest {r['lmerTest']}: loops over {r['n']} responses, extrapolated x{scale:g}")
    print(f"    lme4 lmer loop: {r['lme4_seconds']:.1f} s -> {l4:.0f} s for {len(genes)}; evaluations median "
          f"{statistics.median(r['feval']):.0f}; ratio lme4 / ours {l4 / ours:.0f}x")
    print(f"    lmerTest lmer + summary (Satterthwaite): {r['lmertest_seconds']:.1f} s -> {lt:.0f} s; ratio lmerTest / ours {lt / ours:.0f}x")
    print(f"    R peak RSS {r['peak_kb'] / 1024:.0f} MiB")
    ordinary = {name: mm.lmer(f"{name} {FORMULA}", data) for name in sample}
    print(f"    largest differences on the {r['n']} responses (|logLik|; relative: estimates, SEs, df), non-singular / singular fits:")
    for label, pairs in (("fit_many vs lmerTest", lambda f, name: (_ours(res, name), f)),
                         ("mm.lmer  vs lmerTest", lambda f, name: (_lmer(ordinary[name]), f)),
                         ("fit_many vs mm.lmer ", lambda f, name: (_ours(res, name), _lmer(ordinary[name])))):
        worst = {False: np.zeros(4), True: np.zeros(4)}
        for f in r["fits"]:
            name = f["response"]
            a, b = pairs(f, name)
            diff = [abs(a["loglik"] - b["loglik"])] + [
                float(np.max(np.abs(np.asarray(a[k], float) - np.asarray(b[k], float)) / np.abs(np.asarray(b[k], float))))
                for k in ("estimate", "se", "df")]
            key = bool(ordinary[name].singular)
            worst[key] = np.maximum(worst[key], diff)
        print(f"      {label}: " + " / ".join(", ".join(f"{v:.1e}" for v in worst[k]) for k in (False, True)))


def _ours(res, name: str) -> dict:
    fixed = res.fixed[res.fixed["response"] == name]
    return {"loglik": res.fits.loc[name, "loglik"], "estimate": fixed["estimate"], "se": fixed["se"], "df": fixed["df"]}


def _lmer(fit) -> dict:
    table = fit.coef_table()
    return {"loglik": fit.loglik, "estimate": table["Estimate"], "se": table["Std. Error"], "df": table["df"]}


if __name__ == "__main__":
    main()
