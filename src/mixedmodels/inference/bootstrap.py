"""Parametric bootstrap: simulate responses from a fitted model, refit, collect a statistic.

All responses are drawn in the calling process from one seeded generator, so the result does not
depend on how many processes do the refits. Refits reuse the model's cross-products of Z and its
factor structure (``refit``), so one costs a fraction of a fresh fit.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..engine.threads import engine_threads
from ..exceptions import MixedModelsError

Statistic = Callable[..., Any]

# State shared with forked worker processes (set just before the pool starts).
_JOB: dict[str, Any] = {}


def progress_enabled(progress: bool | None) -> bool:
    """Show a progress bar when asked, or by default when standard error is a terminal."""
    if progress is None:
        return sys.stderr.isatty()
    return bool(progress)


def _progress(iterable, total: int, desc: str, show: bool):
    if not show:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False, file=sys.stderr)


def _one(i: int) -> np.ndarray:
    """Refit every model to simulated response ``i`` and evaluate the statistic (NaN if a refit fails)."""
    fits, ysim, statistic, width = _JOB["fits"], _JOB["ysim"], _JOB["statistic"], _JOB["width"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            refits = [f.refit(ysim[:, i], warn=False) for f in fits]
            value = statistic(*refits)
        return np.atleast_1d(np.asarray(value, dtype=float)).reshape(-1)
    except (MixedModelsError, np.linalg.LinAlgError, FloatingPointError, ValueError):
        return np.full(width, np.nan)


@engine_threads
def bootstrap_refits(
    simulate_from: Any,
    fits: Sequence[Any],
    statistic: Statistic,
    nsim: int,
    *,
    seed: int | np.random.Generator | None = None,
    n_jobs: int = 1,
    progress: bool | None = None,
    desc: str = "bootstrap",
) -> np.ndarray:
    """Simulate from one fit, refit several fits to each simulated response, apply a statistic.

    Parameters
    ----------
    simulate_from : fitted model
        Model whose ``simulate`` draws the responses (e.g. the null model of a test).
    fits : sequence of fitted models
        Models refitted to every simulated response (same rows as ``simulate_from``).
    statistic : callable
        ``statistic(*refits)`` → float or 1-D array.
    nsim : int
        Number of simulated responses.
    seed : int or Generator, optional
        Seed of the draws.
    n_jobs : int
        Processes for the refits (``-1``: all cores). Results do not depend on it.
    progress : bool, optional
        Progress bar on standard error; default: only when it is a terminal.

    Returns
    -------
    numpy.ndarray
        ``nsim × k``; rows of NaN where a refit failed.
    """
    if nsim < 1:
        raise MixedModelsError(f"nsim must be at least 1, got {nsim}")
    ysim = simulate_from.simulate(nsim, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = np.atleast_1d(np.asarray(statistic(*fits), dtype=float)).reshape(-1)
    _JOB.update(fits=list(fits), ysim=ysim, statistic=statistic, width=first.size)
    jobs = (os.cpu_count() or 1) if n_jobs == -1 else max(1, int(n_jobs))
    show = progress_enabled(progress)
    try:
        if jobs == 1 or nsim < 4 or "fork" not in multiprocessing.get_all_start_methods():
            rows = [_one(i) for i in _progress(range(nsim), nsim, desc, show)]
        else:
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                chunk = max(1, nsim // (8 * jobs))
                rows = list(_progress(pool.imap(_one, range(nsim), chunksize=chunk), nsim, desc, show))
    finally:
        _JOB.clear()
    return np.vstack(rows)


def parametric_bootstrap(
    result: Any,
    statistic: Statistic,
    nsim: int,
    *,
    seed: int | np.random.Generator | None = None,
    n_jobs: int = 1,
    progress: bool | None = None,
) -> np.ndarray:
    """Bootstrap distribution of ``statistic(refit)`` under a fitted model (lme4's ``bootMer``).

    Parameters
    ----------
    result : LinearMixedModelResults
        The fitted model to simulate from and refit.
    statistic : callable
        Takes a refitted model, returns a float or a 1-D array.
    nsim, seed, n_jobs, progress
        As :func:`bootstrap_refits`.

    Returns
    -------
    numpy.ndarray
        ``nsim × k``; NaN rows for failed refits.
    """
    return bootstrap_refits(result, [result], statistic, nsim, seed=seed, n_jobs=n_jobs, progress=progress)
