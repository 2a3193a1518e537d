"""MMRM benchmarks against nlme::gls and mmrm, timed in the same run when R has them.

Usage: ``python benchmarks/bench_mmrm.py [--reps N] [--no-r] [--scale]``

* a trial: 2 arms, 5 visits, 220 subjects with dropout (about 1,000 rows), ``y ~ arm * visit + base``
  with an unstructured within-subject covariance, REML: ours (``mm.mmrm``), nlme's
  ``gls(correlation = corSymm, weights = varIdent)`` and mmrm's ``us(visit | id)``;
* with ``--scale``: 10,000 subjects × 6 visits ``us`` (with dropout, about 47,500 rows, and complete, 60,000
  rows), and ``ar1`` within subjects
  with a random intercept per site, 100,000 rows (ours only).

Prints medians, evaluations, peak memory (ru_maxrss of this process) and the ratios.
"""

from __future__ import annotations

import argparse
import json
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


def trial(n_subjects: int, n_visits: int, seed: int, sites: int = 0, dropout: bool = True) -> pd.DataFrame:
    """Simulated trial data: AR-like within-subject correlation, growing variance, dropout."""
    rng = np.random.default_rng(seed)
    visits = [f"V{i + 1}" for i in range(n_visits)]
    sd = np.linspace(1.0, 2.0, n_visits)
    corr = 0.7 ** np.abs(np.subtract.outer(np.arange(n_visits), np.arange(n_visits)))
    L = np.linalg.cholesky(sd[:, None] * corr * sd[None, :])
    arm = rng.integers(0, 2, n_subjects)
    base = rng.normal(50, 5, n_subjects)
    eps = rng.standard_normal((n_subjects, n_visits)) @ L.T
    mean = 0.1 * base[:, None] - 0.3 * np.arange(n_visits)[None, :] * arm[:, None]
    site = rng.integers(0, max(sites, 1), n_subjects)
    y = mean + eps + (rng.normal(0, 1, max(sites, 1))[site][:, None] if sites else 0.0)
    last = np.minimum(n_visits, 2 + rng.geometric(0.25, n_subjects))  # dropout after visit 2
    if not dropout:
        last[:] = n_visits
    rows = [
        (f"S{i:05d}", ("PBO", "TRT")[arm[i]], visits[j], base[i], y[i, j], f"site{site[i]}")
        for i in range(n_subjects)
        for j in range(last[i])
    ]
    return pd.DataFrame(rows, columns=["id", "arm", "visit", "base", "y", "site"])


def median_time(fn, reps: int):
    out, times = None, []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


R_SCRIPT = r"""
suppressMessages({library(nlme); library(jsonlite)})
args <- commandArgs(TRUE); d <- read.csv(args[1], stringsAsFactors = TRUE); reps <- as.integer(args[2])
d <- d[order(d$id, d$visit), ]; d$vn <- as.integer(d$visit)
tm <- function(f) { t <- numeric(reps); for (i in seq_len(reps)) t[i] <- system.time(m <- f())[["elapsed"]]; list(median(t), m) }
g <- tm(function() gls(y ~ arm * visit + base, data = d, correlation = corSymm(form = ~ vn | id),
                       weights = varIdent(form = ~ 1 | visit), method = "REML"))
out <- list(gls_seconds = g[[1]], gls_loglik = as.numeric(logLik(g[[2]])))
if (requireNamespace("mmrm", quietly = TRUE)) {
  suppressMessages(library(mmrm))
  mm <- tm(function() mmrm(y ~ arm * visit + base + us(visit | id), data = d, reml = TRUE))
  out$mmrm_seconds <- mm[[1]]; out$mmrm_loglik <- as.numeric(logLik(mm[[2]]))
  out$mmrm_version <- as.character(packageVersion("mmrm"))
}
out$nlme_version <- as.character(packageVersion("nlme"))
cat(toJSON(out, auto_unbox = TRUE, digits = NA))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--no-r", action="store_true")
    ap.add_argument("--scale", action="store_true")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    d = trial(220, 5, seed=1)
    print(f"trial: {d['id'].nunique()} subjects, {len(d)} rows, 5 visits, us, REML")
    secs, fit = median_time(lambda: mm.mmrm("y ~ arm * visit + base + us(visit | id)", d), args.reps)
    print(f"  mixedmodels mmrm(): median {secs * 1e3:.1f} ms, {fit.fit_record.evaluations} evaluations, logLik {fit.loglik:.4f}")
    if not args.no_r and shutil.which("Rscript"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "trial.csv"
            d.to_csv(path, index=False)
            script = Path(tmp) / "bench.R"
            script.write_text(R_SCRIPT)
            res = subprocess.run(["Rscript", str(script), str(path), str(args.reps)], capture_output=True, text=True)
        if res.returncode == 0:
            r = json.loads(res.stdout.strip().splitlines()[-1])
            print(f"  nlme {r['nlme_version']} gls(corSymm + varIdent): median {r['gls_seconds'] * 1e3:.0f} ms, "
                  f"logLik {r['gls_loglik']:.4f}; ratio gls / ours {r['gls_seconds'] / secs:.1f}x")
            if "mmrm_seconds" in r:
                print(f"  mmrm {r['mmrm_version']}: median {r['mmrm_seconds'] * 1e3:.0f} ms, logLik {r['mmrm_loglik']:.4f}; "
                      f"ratio mmrm / ours {r['mmrm_seconds'] / secs:.1f}x")
        else:
            print("  R failed:", res.stderr.strip().splitlines()[-1:])
    if args.scale:
        big = trial(10_000, 6, seed=2)
        secs, fit = median_time(lambda: mm.mmrm("y ~ arm * visit + base + us(visit | id)", big), 1)
        print(f"10,000 subjects x 6 visits, us, with dropout: {len(big)} rows, {secs:.2f} s, {fit.fit_record.evaluations} evaluations")
        full = trial(10_000, 6, seed=2, dropout=False)
        secs, fit = median_time(lambda: mm.mmrm("y ~ arm * visit + base + us(visit | id)", full), 3)
        print(f"10,000 subjects x 6 visits, us, complete: {len(full)} rows, {secs:.2f} s, {fit.fit_record.evaluations} evaluations")
        sites = trial(26_000, 6, seed=3, sites=50)
        sites = sites.iloc[:100_000]
        secs, fit = median_time(
            lambda: mm.lmer("y ~ arm * visit + base + (1 | site)", sites, residual="ar1(visit | id)"), 1
        )
        print(f"ar1 within subjects + (1 | site): {len(sites)} rows, {secs:.2f} s, {fit.fit_record.evaluations} evaluations")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
