"""How many BLAS threads the engine uses (see docs/design.md, "BLAS threads", for the measurements).

numpy and scipy each load their own OpenBLAS. An objective evaluation is many mid-sized BLAS and
LAPACK calls; on a small machine the threads of those pools spin against each other and against
any other program, and measured many times slower than one thread (benchmarks/bench_threads.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cache

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


def blas_policy(factor: object | None = None) -> contextlib.AbstractContextManager[None]:
    """The engine's thread policy for a block of work on ``factor`` (a fit, a profile, a df computation)."""
    return single_threaded_blas(_mode == "single")
