"""Crossed random effects at MovieLens-1M scale: ``y ~ 1 + (1 | user) + (1 | item)``.

Usage: ``python benchmarks/bench_crossed.py [--rows N] [--lme4] [--seed S]``

Simulates (seeded) 6,040 users × 3,706 items with skewed counts per user and per item (each user
rates at least 20 items, no pair twice, as MovieLens-1M; 1,000,209 rows by default), y with user
and item effects, and fits it by REML. Prints wall time and peak RSS (``ru_maxrss``) after each
stage (simulation, model set-up, first evaluation, fit), the evaluations, and, with ``--lme4``,
lme4's ``lmer()`` time from an Rscript run on the same rows. Run each size in its
own process: peak RSS is per process.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

N_USERS, N_ITEMS, N_ROWS = 6040, 3706, 1_000_209


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def simulate(rows: int, seed: int = 1) -> pd.DataFrame:
    """MovieLens-1M-shaped ratings: skewed activity per user (20 to ~2,300) and popularity per item."""
    rng = np.random.default_rng(seed)
    # user activity: heavy-tailed, at least 20 ratings (MovieLens' rule), scaled to the number of rows
    act = rng.lognormal(0.0, 1.1, N_USERS)
    per_user = 20 + np.floor(act / act.sum() * max(rows - 20 * N_USERS, 0)).astype(int)
    per_user = np.minimum(per_user, N_ITEMS // 2)
    while per_user.sum() < rows:  # the rows lost to rounding and the cap, to the users below the cap
        room = np.flatnonzero(per_user < N_ITEMS // 2)
        per_user[room[: rows - per_user.sum()]] += 1
    # item popularity: Zipf-like
    pop = 1.0 / np.arange(1, N_ITEMS + 1) ** 0.9
    pop = rng.permutation(pop / pop.sum())
    users, items = [], []
    for u, m in enumerate(per_user):  # m distinct items per user, drawn by popularity (Gumbel top-m)
        keys = np.log(pop) - np.log(-np.log(rng.random(N_ITEMS)))
        items.append(np.argpartition(-keys, m)[:m])
        users.append(np.full(m, u))
    users, items = np.concatenate(users), np.concatenate(items)
    keep = rng.permutation(users.size)[:rows]
    users, items = users[keep], items[keep]
    y = 3.6 + rng.normal(0, 0.45, N_USERS)[users] + rng.normal(0, 0.5, N_ITEMS)[items] + rng.normal(0, 0.9, users.size)
    return pd.DataFrame({"y": np.round(y, 3), "user": pd.Categorical(users), "item": pd.Categorical(items)})


def run_lme4(df: pd.DataFrame) -> tuple[float, float, int] | None:
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "d.csv")
        df.to_csv(path, index=False)
        code = (
            "suppressMessages(library(lme4)); d <- read.csv(commandArgs(TRUE)[1]);"
            "d$user <- factor(d$user); d$item <- factor(d$item);"
            "t <- system.time(m <- lmer(y ~ 1 + (1 | user) + (1 | item), d))[['elapsed']];"
            "cat(t, m@optinfo$feval, REMLcrit(m), '\\n')"
        )
        t0 = time.perf_counter()
        out = subprocess.run(["Rscript", "-e", code, path], capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t0
        secs, feval, crit = out.stdout.split()
        print(f"lme4: lmer {float(secs):.1f} s (Rscript total {wall:.1f} s), {int(feval)} evaluations, "
              f"REML {float(crit):.4f} (R's peak RSS not read: a forked child's ru_maxrss counts this process's pages)")
        return float(secs), wall, int(feval)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=N_ROWS)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lme4", action="store_true", help="also time lme4 (Rscript) on the same rows")
    args = ap.parse_args()

    t0 = time.perf_counter()
    df = simulate(args.rows, args.seed)
    pu, pi = df.user.value_counts(), df.item.value_counts()
    print(f"simulated {len(df):,} rows, {pu.size} users ({pu.min()}-{pu.max()} each), "
          f"{pi.size} items ({pi.min()}-{pi.max()} each) in {time.perf_counter() - t0:.1f} s; peak {peak_mib():.0f} MiB")

    import mixedmodels as mm
    from mixedmodels.model import LinearMixedModel

    t0 = time.perf_counter()
    model = LinearMixedModel.from_formula("y ~ 1 + (1 | user) + (1 | item)", df)
    t1 = time.perf_counter()
    print(f"design: {t1 - t0:.1f} s; peak {peak_mib():.0f} MiB")
    _ = model.crossprods
    t2 = time.perf_counter()
    print(f"cross-products: {t2 - t1:.1f} s; peak {peak_mib():.0f} MiB")
    f = model.factor
    t3 = time.perf_counter()
    print(f"factor structure: {t3 - t2:.1f} s, kinds {f.diag_kind} {f.off_kind}; peak {peak_mib():.0f} MiB")
    model.criterion_at(model.theta_start)
    t4 = time.perf_counter()
    print(f"one evaluation: {t4 - t3:.2f} s; peak {peak_mib():.0f} MiB")
    fit = model.fit(warn=False)
    t5 = time.perf_counter()
    print(f"fit: {t5 - t4:.1f} s, {fit.fit_record.evaluations} evaluations, REML {fit.objective:.4f}, "
          f"theta {np.round(fit.theta, 6).tolist()}; peak {peak_mib():.0f} MiB")
    print(f"TOTAL mixedmodels: {t5 - t0:.1f} s from the data frame, peak RSS {peak_mib():.0f} MiB (machine shared: see uptime)")
    print(f"load average {os.getloadavg()}")
    if args.lme4:
        run_lme4(df)
    del mm


if __name__ == "__main__":
    sys.exit(main())
