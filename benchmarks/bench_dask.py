"""Fitting on Dask: a partitioned Parquet dataset, the fit against one pass that only reads the same columns.

Writes ``--rows`` rows (seeded) as one Parquet file per ``--rows-per-file`` rows under ``--dir`` with columns
``g`` (``--groups`` levels), ``a`` (``--crossed-a``) and ``b`` (``--crossed-b``) crossed, ``x1``–``x3`` and the
responses ``y1 = 1 + 0.5 x1 − 0.3 x2 + 0.2 x3 + u_g + ε`` and ``y2 = … + v_a + w_b + ε``; then, on a
``distributed.LocalCluster`` (``--workers`` processes, one thread each) and for each design:

* ``read``: one pass that reads the model's columns and sums them (``ddf[cols].sum().compute()``), after a
  warm-up (the workers import their libraries and read one file);
* ``fit``: ``mm.lmer(formula, ddf)`` — both passes, the tree reductions and the optimisation on the client;

and samples the resident memory of the client and of every worker process every 0.1 s. Run the full size::

    python benchmarks/bench_dask.py --rows 100_000_000 --groups 1_000_000

On a cluster the same code runs with ``--scheduler tcp://host:8786`` (the data's ``--dir`` must then be
readable by every worker, e.g. a shared file system or ``s3://…`` with ``--no-write``). The data are
deleted afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Self

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

DESIGNS = {
    "one-term": ("y1 ~ x1 + x2 + x3 + (1 | g)", ["y1", "x1", "x2", "x3", "g"]),
    "crossed": ("y2 ~ x1 + x2 + x3 + (1 | a) + (1 | b)", ["y2", "x1", "x2", "x3", "a", "b"]),
}


def write_data(root: Path, rows: int, per_file: int, groups: int, na: int, nb: int, seed: int) -> float:
    """Write the dataset; returns its size on disk in GB."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    u, v, w = rng.normal(size=groups), 0.7 * rng.normal(size=na), 0.5 * rng.normal(size=nb)
    for i, start in enumerate(range(0, rows, per_file)):
        m = min(per_file, rows - start)
        r = np.random.default_rng([seed, i])
        g, a, b = r.integers(0, groups, m), r.integers(0, na, m), r.integers(0, nb, m)
        x = r.normal(size=(3, m))
        fixed = 1 + 0.5 * x[0] - 0.3 * x[1] + 0.2 * x[2]
        table = pa.table({
            "g": g, "a": a, "b": b, "x1": x[0], "x2": x[1], "x3": x[2],
            "y1": fixed + u[g] + r.normal(size=m), "y2": fixed + v[a] + w[b] + r.normal(size=m),
        })
        pq.write_table(table, root / f"part-{i:05d}.parquet", row_group_size=m)
    return sum(f.stat().st_size for f in root.iterdir()) / 1e9


class MemorySampler:
    """Peak resident memory of this process and of the given worker processes, sampled in a thread."""

    def __init__(self, pids: list[int], every: float = 0.1) -> None:
        import psutil

        self.procs = [psutil.Process(os.getpid())] + [psutil.Process(p) for p in pids]
        self.every = every
        self.peak = [0] * len(self.procs)
        self.peak_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = []
            for p in self.procs:
                try:
                    rss.append(p.memory_info().rss)
                except Exception:  # noqa: BLE001 - a worker restarting
                    rss.append(0)
            self.peak = [max(a, b) for a, b in zip(self.peak, rss)]
            self.peak_total = max(self.peak_total, sum(rss))
            time.sleep(self.every)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def report(self) -> dict:
        gb = 1e9
        return {"client_gb": round(self.peak[0] / gb, 3), "workers_gb": [round(p / gb, 3) for p in self.peak[1:]],
                "total_gb": round(self.peak_total / gb, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--rows-per-file", type=int, default=2_000_000)
    parser.add_argument("--groups", type=int, default=1_000_000, help="levels of g in the one-term design")
    parser.add_argument("--crossed-a", type=int, default=10_000)
    parser.add_argument("--crossed-b", type=int, default=1_000)
    parser.add_argument("--design", choices=[*DESIGNS, "both"], default="both")
    parser.add_argument("--dir", default="/tmp/mm_bench_dask")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="3GiB", help="per worker (the client's is on top)")
    parser.add_argument("--scheduler", help="a running cluster's scheduler instead of a LocalCluster")
    parser.add_argument("--no-write", action="store_true", help="use the data already in --dir")
    parser.add_argument("--keep", action="store_true", help="keep the data afterwards")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    import mixedmodels as mm

    root = Path(args.dir)
    out: dict = {"rows": args.rows, "rows_per_file": args.rows_per_file, "groups": args.groups,
                 "crossed": [args.crossed_a, args.crossed_b], "cpus": os.cpu_count()}
    try:
        if not args.no_write:
            if root.exists():
                shutil.rmtree(root)
            t0 = time.perf_counter()
            out["disk_gb"] = round(write_data(root, args.rows, args.rows_per_file, args.groups, args.crossed_a, args.crossed_b, args.seed), 3)
            out["write_seconds"] = round(time.perf_counter() - t0, 1)
            print(f"wrote {args.rows:,} rows ({out['disk_gb']} GB) in {out['write_seconds']} s", flush=True)
        if args.scheduler:
            client, cluster = Client(args.scheduler), None
        else:
            cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                   memory_limit=args.memory_limit, dashboard_address=None)
            client = Client(cluster)
        pids = [] if args.scheduler else list(client.run(os.getpid).values())
        # warm up: the workers import pandas, pyarrow and mixedmodels and read one file before anything is timed
        client.run(lambda: __import__("mixedmodels.scale.passes"))
        dd.read_parquet(str(root)).partitions[0].sum().compute()
        designs = list(DESIGNS) if args.design == "both" else [args.design]
        for name in designs:
            formula, cols = DESIGNS[name]
            ddf = dd.read_parquet(str(root))
            with MemorySampler(pids) as mem_read:
                t0 = time.perf_counter()
                ddf[cols].sum().compute()
                read = time.perf_counter() - t0
            with MemorySampler(pids) as mem_fit:
                t0 = time.perf_counter()
                fit = mm.lmer(formula, ddf)
                total = time.perf_counter() - t0
            res = {
                "formula": formula, "partitions": ddf.npartitions, "read_seconds": round(read, 2),
                "fit_seconds": round(total, 2), "ratio": round(total / read, 2),
                "stages": {k: round(v, 2) for k, v in fit.model.timings.items()},
                "optimizer_seconds": round(fit.fit_record.seconds, 2), "evaluations": fit.fit_record.evaluations,
                "memory_read": mem_read.report(), "memory_fit": mem_fit.report(),
                "nobs": fit.nobs, "theta": [round(v, 5) for v in fit.theta], "beta": [round(v, 5) for v in fit.beta],
                "sigma": round(fit.sigma, 5),
            }
            out[name] = res
            print(json.dumps({name: res}), flush=True)
        client.close()
        if cluster is not None:
            cluster.close()
    finally:
        if not args.keep and not args.no_write and root.exists():
            shutil.rmtree(root)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
