"""Run BLAS single-threaded while the optimizer evaluates the objective.

numpy and scipy each load their own OpenBLAS; on a small machine their thread pools spin against
each other between the many mid-sized calls of one objective evaluation, which measured twice as
slow as one thread (InstEval: 47 ms vs 24 ms per evaluation on 2 cores).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cache

#: Only models with a dense block at least this large are worth the one-off cost (about 3 ms)
#: of inspecting the loaded BLAS libraries.
DENSE_SIZE_THRESHOLD = 256


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
