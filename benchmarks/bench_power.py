"""The sleepstudy-size power study: 1,000 simulations per sample size, timed, and compared with simr.

Usage: ``python benchmarks/bench_power.py [--reps N] [--nsim N] [--jobs N] [--simr FILE]``

The study is simr's ``powerCurve`` of ``Reaction ~ Days + (Days | Subject)`` fitted to sleepstudy with
the Days effect set to 3 (``fixef(fm)["Days"] <- 3``), extended to 30 subjects, at 6, 12, 18 and 30
subjects, tested by Kenward–Roger (simr's default). It prints the median wall time of ``--reps`` runs
with ``--jobs`` processes (the issue's target: under 30 s on 2 cores), simr's time for the same study
(``benchmarks/power_simr.json``, made by ``benchmarks/power_simr.R``) and the ratio, and each size's
power beside simr's with the difference in units of its Monte Carlo standard error
``sqrt(p(1 − p)(1/n₁ + 1/n₂))``, and the exact power of the t-test the balanced design's KR test reduces to.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
import warnings
from pathlib import Path

import mixedmodels as mm
from mixedmodels.inference.power import power

HERE = Path(__file__).resolve().parent
SIZES = [6, 12, 18, 30]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--nsim", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=20241125)
    ap.add_argument("--simr", default=str(HERE / "power_simr.json"))
    args = ap.parse_args()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    times, curve = [], None
    for rep in range(args.reps):
        t0 = time.perf_counter()
        curve = power(fit, "Days", 3.0, nsim=args.nsim, along="Subject", sizes=SIZES, seed=args.seed + rep,
                      n_jobs=args.jobs, progress=False)
        times.append(time.perf_counter() - t0)
    wall = statistics.median(times)
    print(f"power study: {len(SIZES)} sizes x {args.nsim} simulations, {args.jobs} processes: "
          f"median {wall:.1f} s over {args.reps} runs ({', '.join(f'{t:.1f}' for t in times)})")
    print(curve)
    path = Path(args.simr)
    if not path.exists():
        print(f"no simr reference at {path}")
        return
    ref = json.loads(path.read_text())
    print(f"simr {ref['provenance']['simr']} (R, one process): {ref['elapsed_seconds']:.0f} s for the same study; "
          f"ratio simr / ours = {ref['elapsed_seconds'] / wall:.0f}")
    print(f"{'size':>5s} {'ours':>7s} {'simr':>7s} {'diff':>7s} {'diff/SE':>8s} {'t-test':>7s}")
    for (_, row), size, x, n in zip(curve.table.iterrows(), ref["sizes"], ref["successes"], ref["trials"]):
        assert row["size"] == size
        p1, p2 = row["power"], x / n
        pooled = (row["successes"] + x) / (row["nsim_used"] + n)
        se = math.sqrt(pooled * (1 - pooled) * (1 / row["nsim_used"] + 1 / n))
        print(f"{size:5d} {p1:7.3f} {p2:7.3f} {p1 - p2:+7.3f} {(p1 - p2) / se:+8.2f} {t_test_power(fit, 3.0, size):7.3f}")
    print("t-test: the exact power of the one-sample t-test of the subjects' slopes, which the KR test of the balanced\n"
          "design is whenever the REML covariance is positive definite (a noncentral t with m - 1 df)")


def t_test_power(fit, beta: float, m: int, alpha: float = 0.05) -> float:
    """Power of the t-test of ``m`` subjects' least-squares slopes over days 0-9 under the fitted covariance."""
    from scipy import stats

    sxx = 82.5  # sum of (day - 4.5)^2 over days 0..9
    var = fit.covariances[0].to_numpy()[1, 1] + fit.sigma**2 / sxx
    nc = beta / math.sqrt(var / m)
    crit = stats.t.ppf(1 - alpha / 2, m - 1)
    return float(stats.nct.sf(crit, m - 1, nc) + stats.nct.cdf(-crit, m - 1, nc))


if __name__ == "__main__":
    main()
