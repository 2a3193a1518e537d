"""Inference benchmarks against lmerTest / pbkrtest / lme4, timed in the same run when R is present.

Usage: ``python benchmarks/bench_inference.py [--reps N] [--crossed-rows N] [--no-r] [--r-crossed-rows N]``

Prints medians for Satterthwaite and Kenward–Roger coefficient tables (sleepstudy), Type III
ANOVA tables (grouseticks), profile intervals (sleepstudy), and the Kenward–Roger and
Satterthwaite tables on InstEval and on a simulated crossed design (subjects × items), each time
from a fresh fit so nothing is cached. R's timings on the crossed design use a smaller copy
(``--r-crossed-rows``), since pbkrtest forms n × n matrices.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import mixedmodels as mm

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def crossed_data(rows: int, seed: int = 1) -> pd.DataFrame:
    """Subjects × items with random intercepts for both, ``rows`` observations."""
    rng = np.random.default_rng(seed)
    n_subj, n_item = max(10, rows // 50), 100
    subj = rng.integers(0, n_subj, rows)
    item = rng.integers(0, n_item, rows)
    x = rng.normal(size=rows)
    y = 1 + 0.3 * x + rng.normal(0, 0.8, n_subj)[subj] + rng.normal(0, 0.5, n_item)[item] + rng.normal(size=rows)
    return pd.DataFrame({"y": y, "x": x, "subj": subj.astype(str), "item": item.astype(str)})


def med(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def fresh(formula: str, data: pd.DataFrame, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer(formula, data, **kw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--crossed-rows", type=int, default=20000)
    ap.add_argument("--r-crossed-rows", type=int, default=2000)
    ap.add_argument("--no-r", action="store_true")
    args = ap.parse_args()

    sleep = mm.datasets.load("sleepstudy")
    grouse = mm.datasets.load("grouseticks")
    ss_f = "Reaction ~ Days + (Days | Subject)"
    gt_f = "log1p(TICKS) ~ YEAR * HEIGHT + (1 | BROOD) + (1 | LOCATION)"
    cr_f = "y ~ x + (1 | subj) + (1 | item)"
    ours: dict[str, float] = {}
    ss = [fresh(ss_f, sleep) for _ in range(args.reps)]
    gt = [fresh(gt_f, grouse) for _ in range(args.reps)]
    it = iter(ss)
    ours["sleep_satterthwaite"] = med(lambda: next(it).coef_table("satterthwaite"), args.reps)
    ss = [fresh(ss_f, sleep) for _ in range(args.reps)]
    it = iter(ss)
    ours["sleep_kenward_roger"] = med(lambda: next(it).coef_table("kenward-roger"), args.reps)
    it = iter(gt)
    ours["grouse_anova_satterthwaite"] = med(lambda: next(it).anova("satterthwaite"), args.reps)
    gt = [fresh(gt_f, grouse) for _ in range(args.reps)]
    it = iter(gt)
    ours["grouse_anova_kenward_roger"] = med(lambda: next(it).anova("kenward-roger"), args.reps)
    ours["sleep_profile"] = med(lambda: ss[0].confint("profile", progress=False), args.reps)

    crossed = crossed_data(args.crossed_rows)
    cr = fresh(cr_f, crossed)
    ours["crossed_kenward_roger"] = med(lambda: fresh(cr_f, crossed).coef_table("kenward-roger"), 1)
    ours["crossed_satterthwaite"] = med(lambda: fresh(cr_f, crossed).coef_table("satterthwaite"), 1)
    inst = mm.datasets.load("InstEval")
    ie_f = "y ~ service * dept + (1 | s) + (1 | d)"
    ours["insteval_fit_reml"] = med(lambda: fresh(ie_f, inst), 1)
    ie = fresh(ie_f, inst)
    ours["insteval_satterthwaite"] = med(lambda: ie.coef_table("satterthwaite"), 1)
    ours["insteval_kenward_roger"] = med(lambda: ie.coef_table("kenward-roger"), 1)

    print(f"crossed design: {len(crossed)} rows, {cr.ngroups}")
    r = None
    if not args.no_r and shutil.which("Rscript"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "crossed.csv"
            crossed_data(args.r_crossed_rows).to_csv(path, index=False)
            proc = subprocess.run(["Rscript", str(HERE / "inference_timing.R"), str(args.reps), str(path)],
                                  capture_output=True, text=True, cwd=ROOT)
            if proc.returncode == 0:
                r = json.loads(proc.stdout.strip().splitlines()[-1])
            else:
                print("R timing failed:", proc.stderr.strip().splitlines()[-1:], file=sys.stderr)
    print(f"{'task':32s} {'mixedmodels':>12s} {'R':>10s} {'R/ours':>8s}")
    for key, value in ours.items():
        rv = r.get(key) if r else None
        note = f" (R on {args.r_crossed_rows} rows)" if key.startswith("crossed") and rv is not None else ""
        ratio = f"{rv / value:8.1f}" if rv and not note else ""
        print(f"{key:32s} {value * 1e3:10.1f}ms {'' if rv is None else f'{rv * 1e3:8.0f}ms':>10s} {ratio}{note}")
    if r:
        print("R versions:", r["versions"])


if __name__ == "__main__":
    main()
