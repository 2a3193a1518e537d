"""How many BLAS threads the engine uses (see docs/design.md, "BLAS threads", for the measurements).

numpy and scipy each load their own OpenBLAS. An objective evaluation is many mid-sized BLAS and
LAPACK calls; on a 2-core machine with anything else running, OpenBLAS's threads spin waiting for
a core and one call can take hundreds of times longer than on one thread (a 256² Cholesky: 252 ms
against 0.55 ms; a whole InstEval fit: 84 s against 3.0 s), while a second thread gains at most
1.3× on the largest products when the machine is idle (benchmarks/bench_threads.py). So every
computation of the engine — fits, refits, profiles, df, intervals — runs on one BLAS thread unless
the user asks for BLAS's own thread count with :func:`set_blas_threads`. The user's own numpy work
outside these calls is left as it is.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from functools import cache
from typing import TypeVar

F = TypeVar("F", bound=Callable)

#: "single": every engine computation on one BLAS thread; "default": BLAS's own thread count.
_MODES = ("single", "default")
_mode = "single"


def set_blas_threads(mode: str) -> None:
    """Choose the engine's BLAS thread policy: ``"single"`` (default) or ``"default"`` (the BLAS's own)."""
    global _mode
    if mode not in _MODES:
        raise ValueError(f"BLAS thread mode must be one of {', '.join(_MODES)}, got {mode!r}")
    _mode = mode


def get_blas_threads() -> str:
    """The engine's BLAS thread policy in force."""
    return _mode


@cache
def _controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextlib.contextmanager
def single_threaded_blas(active: bool = True) -> Iterator[None]:
    """Limit every loaded BLAS to one thread inside the block when ``active``."""
    if not active:
        yield
        return
    with _controller().limit(limits=1, user_api="blas"):
        yield


def blas_policy() -> contextlib.AbstractContextManager[None]:
    """The engine's thread policy for a block of work (a fit, a profile, a df computation)."""
    return single_threaded_blas(_mode == "single")


def engine_threads(fun: F) -> F:
    """Decorator: run ``fun`` under the engine's thread policy."""

    @functools.wraps(fun)
    def wrapper(*args, **kwargs):
        with blas_policy():
            return fun(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
