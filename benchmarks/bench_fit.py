"""Fit-time benchmarks against lme4, run in the same session when R with lme4 is installed.

Usage: ``python benchmarks/bench_fit.py [--reps-small N] [--reps-large N] [--no-r]``

Prints medians for
* sleepstudy ``Reaction ~ Days + (Days | Subject)`` (REML): ``fit()`` on a built model, and the
  whole ``lmer()`` call including formula evaluation;
* InstEval ``y ~ service * dept + (1 | s) + (1 | d)`` (ML): the in-process ``lmer()`` call and
  the whole ``mixedmodels fit ... --json`` process, with its peak memory, without (``--ddf none``,
  lme4's table) and with the default Satterthwaite df;
and, where R is present, lme4's ``lmer()`` time from the same run, the ratio and both optimizers'
evaluation counts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import mixedmodels as mm

HERE = Path(__file__).resolve().parent
SLEEP = "Reaction ~ Days + (Days | Subject)"
INST = "y ~ service * dept + (1 | s) + (1 | d)"


def median_time(fn, reps: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def cli_run(reps: int, ddf: str) -> tuple[float, float]:
    """Median wall time and max peak RSS (MiB) of the whole CLI process on InstEval."""
    times, peak = [], 0.0
    cmd = [sys.executable, "-m", "mixedmodels", "fit", "InstEval", "--formula", INST, "--ml", "--json", "--ddf", ddf]
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
        peak = max(peak, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    return statistics.median(times), peak


def lme4_times(reps_small: int, reps_large: int) -> dict | None:
    if shutil.which("Rscript") is None:
        return None
    proc = subprocess.run(
        ["Rscript", str(HERE / "lme4_timing.R"), str(reps_small), str(reps_large)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        print(f"(R present but lme4 timing failed: {proc.stderr.strip().splitlines()[-1:]})")
        return None
    return json.loads(proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps-small", type=int, default=200)
    ap.add_argument("--reps-large", type=int, default=5)
    ap.add_argument("--no-r", action="store_true")
    args = ap.parse_args()

    sleep = mm.datasets.load("sleepstudy")
    inst = mm.datasets.load("InstEval")
    model = mm.LinearMixedModel(mm.LinearMixedModel.from_formula(SLEEP, sleep).design)
    model.fit()
    t_fit, res = median_time(lambda: mm.LinearMixedModel(model.design).fit(), args.reps_small)
    t_lmer, _ = median_time(lambda: mm.lmer(SLEEP, sleep), args.reps_small)
    t_inst, res_inst = median_time(lambda: mm.lmer(INST, inst, REML=False), args.reps_large)
    t_cli, peak = cli_run(args.reps_large, "none")
    t_cli_sat, peak_sat = cli_run(args.reps_large, "satterthwaite")
    r = None if args.no_r else lme4_times(max(20, args.reps_small // 4), args.reps_large)

    print(f"machine: {os.cpu_count()} cores; mixedmodels {mm.__version__}")
    if r:
        print(f"R: {r['versions']['R']}, lme4 {r['versions']['lme4']}")
    print("\nsleepstudy (Days | Subject), REML")
    print(f"  mixedmodels fit() on a built model: median {t_fit * 1e3:.2f} ms, {res.fit_record.evaluations} evaluations")
    print(f"  mixedmodels lmer() incl. formula:   median {t_lmer * 1e3:.2f} ms")
    if r:
        s = r["sleepstudy"]
        print(f"  lme4 lmer():                        median {s['median_s'] * 1e3:.2f} ms, {s['feval']} evaluations")
        print(f"  ratio lme4 / mixedmodels: fit() {s['median_s'] / t_fit:.1f}x, lmer() {s['median_s'] / t_lmer:.1f}x")
    print("\nInstEval service*dept + (1|s) + (1|d), ML")
    print(f"  mixedmodels lmer() in process:      median {t_inst:.3f} s, {res_inst.fit_record.evaluations} evaluations")
    print(f"  mixedmodels CLI process (--json --ddf none):  median {t_cli:.3f} s, peak memory {peak:.0f} MiB")
    print(f"  mixedmodels CLI process (--json, Satterthwaite df, the default): median {t_cli_sat:.3f} s, peak {peak_sat:.0f} MiB")
    if r:
        i = r["insteval"]
        print(f"  lme4 lmer():                        median {i['median_s']:.3f} s, {i['feval']} evaluations")
        print(f"  ratio lme4 / mixedmodels: in-process {i['median_s'] / t_inst:.1f}x, CLI process {i['median_s'] / t_cli:.1f}x")


if __name__ == "__main__":
    main()
