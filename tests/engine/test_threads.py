"""The engine's BLAS thread policy: one thread inside fits, profiles, df and refits (issue: 7–22× slower
with the default threads on a loaded 2-core machine; benchmarks/bench_threads.py has the measurements)."""

from __future__ import annotations

import warnings

import pytest
from threadpoolctl import threadpool_limits

import mixedmodels as mm
from mixedmodels.engine.factor import BlockedCholesky
from mixedmodels.engine.threads import _controller


@pytest.fixture
def blas_threads_seen(monkeypatch):
    """Record the BLAS thread counts in force at every factor update."""
    seen: list[int] = []
    original = BlockedCholesky.update

    def spy(self, theta):
        seen.extend(lib.num_threads for lib in _controller().lib_controllers if lib.user_api == "blas")
        return original(self, theta)

    monkeypatch.setattr(BlockedCholesky, "update", spy)
    return seen


def _work() -> None:
    """A fit of a small crossed model (no block large enough for the old size threshold), its df and profile."""
    pen = mm.datasets.load("Penicillin")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", pen)
        fit.coef_table()
        fit.confint("profile", parm=[".sigma"])


def test_engine_runs_on_one_blas_thread(blas_threads_seen):
    if not any(lib.user_api == "blas" for lib in _controller().lib_controllers):
        pytest.skip("no BLAS library that threadpoolctl can control")
    with threadpool_limits(limits=2, user_api="blas"):
        _work()
        outside = [lib.num_threads for lib in _controller().lib_controllers if lib.user_api == "blas"]
    assert blas_threads_seen and set(blas_threads_seen) == {1}
    assert set(outside) == {2}  # the user's own setting is restored afterwards


def test_default_threads_on_request(blas_threads_seen):
    if not any(lib.user_api == "blas" for lib in _controller().lib_controllers):
        pytest.skip("no BLAS library that threadpoolctl can control")
    assert mm.get_blas_threads() == "single"
    mm.set_blas_threads("default")
    try:
        with threadpool_limits(limits=2, user_api="blas"):
            _work()
    finally:
        mm.set_blas_threads("single")
    assert set(blas_threads_seen) == {2}
    with pytest.raises(ValueError, match="single"):
        mm.set_blas_threads("many")
