"""GLMM fit times against lme4's glmer, measured in the same run when R with lme4 is installed.

Usage: ``python benchmarks/bench_glmm.py [--reps N] [--no-r]``

For cbpp ``cbind(incidence, size - incidence) ~ period + (1 | herd)`` (Laplace and nAGQ = 9) and VerbAgg
``r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)`` (Laplace, crossed) it prints the median time
of the whole ``glmer()`` call (formula evaluation, both stages, the finite-difference Hessian), our
deviance evaluations (all stages and the derivatives) and glmer's stage-2 count, the peak memory of one fit
(Python: tracemalloc's peak, which numpy reports to; R: gc's "max used" above what was in use) and the
ratio glmer / ours (above 1: we are faster). The logLik columns show what each criterion reached: glmer's
default PIRLS tolerance leaves its deviance ~5e-4 off the exact Laplace value (see tests/glmm/test_reference.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import time
import tracemalloc
import warnings
from pathlib import Path

import mixedmodels.datasets as ds
from mixedmodels.glmm import glmer

HERE = Path(__file__).resolve().parent
CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
VERBAGG = "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)"
CASES = {
    "cbpp": (CBPP, "cbpp", 1),
    "cbpp_agq9": (CBPP, "cbpp", 9),
    "VerbAgg": (VERBAGG, "VerbAgg", 1),
}


def ours(reps: int) -> dict:
    out = {}
    for name, (formula, data_name, nagq) in CASES.items():
        data = ds.load(data_name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            glmer(formula, data, nAGQ=nagq)  # warm-up: imports, caches
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                m = glmer(formula, data, nAGQ=nagq)
                times.append(time.perf_counter() - t0)
            tracemalloc.start()
            glmer(formula, data, nAGQ=nagq)
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        out[name] = {"median_s": statistics.median(times), "evaluations": m.evaluations,
                     "stage_evaluations": [s.evaluations for s in m.outcome.stages], "loglik": m.loglik, "peak_mb": peak}
    return out


def glmer_r(reps: int) -> dict | None:
    if shutil.which("Rscript") is None:
        return None
    proc = subprocess.run(["Rscript", str(HERE / "glmer_timing.R"), str(reps)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print("glmer timing failed:", proc.stderr.strip().splitlines()[-1:] or proc.stderr)
        return None
    return json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-r", action="store_true", help="skip glmer")
    args = parser.parse_args()
    us = ours(args.reps)
    them = None if args.no_r else glmer_r(args.reps)
    head = f"{'model':10s} {'ours s':>8s} {'evals':>6s} {'peak MB':>8s} {'logLik':>13s}"
    if them:
        head += f" | {'glmer s':>8s} {'NM evals':>8s} {'peak MB':>8s} {'logLik':>13s} {'ratio':>6s}"
    print(head)
    for name, o in us.items():
        line = f"{name:10s} {o['median_s']:8.3f} {o['evaluations']:6d} {o['peak_mb']:8.1f} {o['loglik']:13.6f}"
        if them:
            r = them[name]
            line += (f" | {r['median_s']:8.3f} {r['feval']:8d} {r['peak_mb']:8.1f} {r['loglik']:13.6f} "
                     f"{r['median_s'] / o['median_s']:6.2f}")
        print(line)
    if them:
        print(f"glmer: {them['versions']['R']}, lme4 {them['versions']['lme4']}; medians of {args.reps} fits after a warm-up")


if __name__ == "__main__":
    main()
