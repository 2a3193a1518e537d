"""Numerical derivatives by Richardson extrapolation of central differences.

The same scheme as numDeriv (Gilbert & Varadhan), which lmerTest uses for the Satterthwaite
method: start from step ``h = d·|x| + eps·[x ≈ 0]`` (d = 1e-4 for Jacobians, 0.1 for
Hessians, as numDeriv), halve it ``r − 1`` times and extrapolate
the differences to ``h → 0``, which removes the error terms of order h², h⁴, ….
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_D = 1e-4  # relative first step of jacobian (numDeriv's grad/jacobian default)
D_HESSIAN = 0.1  # numDeriv's hessian (genD) default; Richardson removes the truncation error
_EPS = 1e-4
_ZERO_TOL = np.sqrt(np.finfo(float).eps / 7e-7)
_R = 4
_V = 2


def _steps(x: np.ndarray, d: float = _D) -> np.ndarray:
    return np.abs(d * x) + _EPS * (np.abs(x) < _ZERO_TOL)


def _extrapolate(a: np.ndarray) -> np.ndarray:
    """Richardson-extrapolate estimates ``a[k]`` made with steps ``h / 2^k`` (errors in h², h⁴, …)."""
    a = np.array(a, dtype=float)
    for m in range(1, a.shape[0]):
        factor = 4.0**m
        a = (factor * a[1:] - a[:-1]) / (factor - 1.0)
    return a[0]


def jacobian(fun: Callable[[np.ndarray], np.ndarray], x: np.ndarray, d: float = _D) -> np.ndarray:
    """Jacobian ``∂fun/∂x``, shape ``(len(fun(x)), len(x))``; ``d`` is the relative first step."""
    x = np.asarray(x, dtype=float)
    h0 = _steps(x, d)
    cols = []
    for i in range(x.size):
        est = []
        for k in range(_R):
            h = h0[i] / _V**k
            e = np.zeros_like(x)
            e[i] = h
            est.append((np.asarray(fun(x + e), dtype=float).reshape(-1) - np.asarray(fun(x - e), dtype=float).reshape(-1)) / (2 * h))
        cols.append(_extrapolate(np.array(est)))
    return np.column_stack(cols)


def hessian(fun: Callable[[np.ndarray], float], x: np.ndarray, d: float = D_HESSIAN) -> np.ndarray:
    """Hessian of a scalar function by extrapolated second differences; ``d`` is the relative first step."""
    x = np.asarray(x, dtype=float)
    n = x.size
    f0 = float(fun(x))
    h0 = _steps(x, d)
    H = np.empty((n, n))
    for i in range(n):
        est = []
        for k in range(_R):
            h = h0[i] / _V**k
            e = np.zeros(n)
            e[i] = h
            est.append((fun(x + e) - 2 * f0 + fun(x - e)) / h**2)
        H[i, i] = _extrapolate(np.array(est))
    for i in range(n):
        for j in range(i):
            est = []
            for k in range(_R):
                hi, hj = h0[i] / _V**k, h0[j] / _V**k
                ei = np.zeros(n)
                ej = np.zeros(n)
                ei[i] = hi
                ej[j] = hj
                est.append((fun(x + ei + ej) - fun(x + ei - ej) - fun(x - ei + ej) + fun(x - ei - ej)) / (4 * hi * hj))
            H[i, j] = H[j, i] = _extrapolate(np.array(est))
    return H
