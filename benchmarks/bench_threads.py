"""BLAS threads: one thread against all cores, per operation and size, on an idle and on a busy machine.

The engine's evaluations are many mid-sized BLAS/LAPACK calls. On a 2-core machine a second BLAS
thread can halve a large Cholesky when the machine is idle, but when another process holds a core
OpenBLAS's threads spin waiting for each other and the same call can take many times longer. This
script measures that for the operations an objective evaluation makes — the dense Cholesky of a
crossed factor's block (potrf), the products of off-diagonal blocks (gemm/syrk) and triangular
solves (trsm) — and for whole fits, each with the default thread count and with one thread, first
as the machine is and then with one busy-looping process per core in the background ("busy").

Run: ``python benchmarks/bench_threads.py [--quick]``. Prints medians in ms and the ratio
(default threads / one thread); a ratio above 1 means the extra threads cost time.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.linalg as sla
from threadpoolctl import threadpool_info, threadpool_limits


def _spin(stop) -> None:  # a busy loop standing for another program on the machine
    x = 0
    while not stop.is_set():
        x += 1


def median_ms(fun, repeat: int) -> float:
    fun()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fun()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def operations(quick: bool):
    rng = np.random.default_rng(1)
    sizes = [64, 256, 512, 1024] if quick else [64, 128, 256, 512, 1024, 2048]
    for n in sizes:
        A = rng.standard_normal((n, n))
        S = A @ A.T + n * np.eye(n)
        L = np.linalg.cholesky(S)
        B = rng.standard_normal((n, 64))
        yield f"potrf {n}x{n}", (lambda S=S: np.linalg.cholesky(S)), max(3, 2000 // n)
        yield f"gemm {n}x{n}x{n}", (lambda A=A: A @ A.T), max(3, 2000 // n)
        yield f"trsm {n}x{n} rhs 64", (lambda L=L, B=B: sla.solve_triangular(L, B, lower=True, check_finite=False)), max(3, 4000 // n)
    # the off-diagonal products of a crossed random-slope model (45 subjects x 600 items, 2 columns)
    M = rng.standard_normal((90, 1200))
    yield "gemm 90x1200 @ 1200x90", (lambda M=M: M @ M.T), 50
    yield "gemm 3x1200 @ 1200x90", (lambda M=M, X=rng.standard_normal((3, 1200)): X @ M.T), 200


def fits(quick: bool):
    import pandas as pd

    import mixedmodels as mm

    root = Path(__file__).resolve().parents[1]
    ss = mm.datasets.load("sleepstudy")
    yield "fit sleepstudy (Days|Subject)", lambda: mm.lmer("Reaction ~ Days + (Days | Subject)", ss), 20
    pen = mm.datasets.load("Penicillin")
    yield "fit Penicillin (1|plate)+(1|sample)", lambda: mm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", pen), 20
    fh_path = root / "tests" / "reference" / "data" / "fhch2010.csv"
    if fh_path.exists():
        fh = pd.read_csv(fh_path)
        f1 = "log_rt ~ task + (1 | id) + (task || item)"
        yield f"fit fhch2010 {f1}", lambda: mm.lmer(f1, fh), 3
        f2 = "log_rt ~ task * stimulus + (stimulus | id) + (task | item)"
        yield f"fit fhch2010 {f2}", lambda: mm.lmer(f2, fh), 3
    if not quick:
        ie = mm.datasets.load("InstEval")
        yield "fit InstEval ML", lambda: mm.lmer("y ~ service * dept + (1 | s) + (1 | d)", ie, REML=False), 3


def measure(label: str, fun, repeat: int, policy: bool) -> tuple[float, float]:
    """Median ms with the default threads and with one; ``policy``: leave the package's own policy in force."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if policy:
            default = median_ms(fun, repeat)
        else:
            with threadpool_limits(limits=None):
                default = median_ms(fun, repeat)
        with threadpool_limits(limits=1, user_api="blas"):
            single = median_ms(fun, repeat)
    return default, single


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-busy", action="store_true", help="skip the busy-machine rows")
    ap.add_argument("--raw", action="store_true", help="whole fits with the threads forced to the default (no policy)")
    args = ap.parse_args()
    if args.raw:
        from mixedmodels.engine import threads

        threads.set_blas_threads("default")
    blas = {(i["internal_api"], i.get("num_threads")) for i in threadpool_info() if i["user_api"] == "blas"}
    print(f"cores: {os.cpu_count()}; BLAS libraries (api, default threads): {sorted(blas)}; load: {os.getloadavg()}")
    conditions = ["as is"] + ([] if args.no_busy else ["busy"])
    for cond in conditions:
        stop = mp.Event()
        procs = []
        if cond == "busy":
            procs = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(os.cpu_count() or 2)]
            for p in procs:
                p.start()
            time.sleep(0.5)
        print(f"\n## machine {cond}\n{'operation':58s} {'default ms':>11s} {'1 thread ms':>11s} {'ratio':>7s}")
        try:
            for label, fun, repeat in operations(args.quick):
                d, s = measure(label, fun, repeat, policy=False)
                print(f"{label:58s} {d:11.3f} {s:11.3f} {d / s:7.2f}")
                sys.stdout.flush()
            for label, fun, repeat in fits(args.quick):
                d, s = measure(label, fun, repeat, policy=not args.raw)
                print(f"{label:58s} {d:11.1f} {s:11.1f} {d / s:7.2f}")
                sys.stdout.flush()
        finally:
            stop.set()
            for p in procs:
                p.join()


if __name__ == "__main__":
    main()
