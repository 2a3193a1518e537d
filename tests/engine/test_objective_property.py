"""Property test: ``model.objective(θ)`` equals the profiled likelihood computed densely from scratch.

Unlike ``test_dense_likelihood.py`` this builds ``Z`` and ``Λ`` only from the public term data
(``refs``, ``z``, ``lambda_matrix``), never from the engine's helpers, and it checks the θ layout
(lower triangle of each λ in column-major order, terms by decreasing number of levels) on the way.

With ``V0 = Z Λ Λ' Z' + I``, β̂ the GLS estimate, ``r = y − Xβ̂`` and ``s = r'V0⁻¹r``:

    ML:   log|V0| + n (1 + log(2π s / n))
    REML: log|V0| + log|X'V0⁻¹X| + (n − p)(1 + log(2π s / (n − p)))

Designs: 12–60 rows; one or two terms; grouping factors with 2–6 levels, balanced or not; crossed
(independent factors) or nested (second factor's levels inside the first, written ``a/b`` or as an
explicitly nested factor); scalar ``(1 | g)``, ``(0 + x | g)`` and vector ``(1 + x | g)``, ``(x | g)``
terms; fixed part ``y ~ x`` or ``y ~ x + f`` with a categorical ``f``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from mixedmodels import LinearMixedModel

TERM_EXPRS = {"1": 1, "0 + x": 1, "1 + x": 2, "x": 2}  # expression -> columns per level


def dense_objective(model: LinearMixedModel, theta: np.ndarray, reml: bool) -> tuple[float, float]:
    """The objective from dense V0, and the size of its largest summands (for a cancellation bound)."""
    X, y = model.design.X, model.design.y
    n, p = X.shape
    blocks, start = [], 0
    for t in model.terms:
        k = t.p * (t.p + 1) // 2
        lam = t.lambda_matrix(theta[start : start + k])
        start += k
        Z = np.zeros((n, t.nlevels * t.p))  # level-major: columns j*p .. j*p+p-1 belong to level j
        for i in range(n):
            Z[i, t.refs[i] * t.p : (t.refs[i] + 1) * t.p] = t.z[i]
        blocks.append(Z @ np.kron(np.eye(t.nlevels), lam))
    assert start == theta.size
    ZL = np.hstack(blocks)
    V0 = ZL @ ZL.T + np.eye(n)
    sign, logdet_v = np.linalg.slogdet(V0)
    assert sign > 0
    Vi_X = np.linalg.solve(V0, X)
    XtViX = X.T @ Vi_X
    beta = np.linalg.solve(XtViX, Vi_X.T @ y)
    r = y - X @ beta
    s = r @ np.linalg.solve(V0, r)
    if reml:
        logdet_x = np.linalg.slogdet(XtViX)[1]
        tail = (n - p) * (1 + math.log(2 * math.pi * s / (n - p)))
        parts = (logdet_v, logdet_x, tail, n - p)
    else:
        tail = n * (1 + math.log(2 * math.pi * s / n))
        parts = (logdet_v, tail, n)
    value = logdet_v + (logdet_x if reml else 0.0) + tail
    return value, sum(abs(v) for v in parts)


def expected_lambda(p: int, values: np.ndarray) -> np.ndarray:
    """λ filled with ``values`` down the columns of its lower triangle (lme4's θ layout)."""
    lam = np.zeros((p, p))
    k = 0
    for c in range(p):
        for r in range(c, p):
            lam[r, c] = values[k]
            k += 1
    return lam


def sizes_strategy(nlevels: int, balanced: bool):
    if balanced:
        return st.integers(2, 10).map(lambda reps: [reps] * nlevels)
    return st.lists(st.integers(1, 12), min_size=nlevels, max_size=nlevels)


def spread_codes(draw, nlevels: int, n: int) -> np.ndarray:
    """Codes 0..nlevels-1 for n rows, every level used at least once, otherwise random."""
    extra = draw(st.lists(st.integers(0, nlevels - 1), min_size=n - nlevels, max_size=n - nlevels))
    codes = np.array(list(range(nlevels)) + extra)
    return codes[np.array(draw(st.permutations(range(n))))]


STRUCTURES = ["single", "crossed", "nested_slash", "nested_explicit"]


@st.composite
def designs(draw, structure: str):
    n1 = draw(st.integers(2, 6))
    balanced = draw(st.booleans())
    sizes = draw(sizes_strategy(n1, balanced))
    n = sum(sizes)
    assume(12 <= n <= 60)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    g1 = np.repeat(np.arange(n1), sizes)
    e1 = draw(st.sampled_from(sorted(TERM_EXPRS)))
    e2 = draw(st.sampled_from(sorted(TERM_EXPRS)))
    frame = pd.DataFrame({"g1": [f"A{v}" for v in g1]})
    if structure == "single":
        random_part = f"({e1} | g1)"
        groups = [(g1, TERM_EXPRS[e1])]
    elif structure == "crossed":
        n2 = draw(st.integers(2, 6))
        g2 = spread_codes(draw, n2, n)
        frame["g2"] = [f"B{v}" for v in g2]
        random_part = f"({e1} | g1) + ({e2} | g2)"
        groups = [(g1, TERM_EXPRS[e1]), (g2, TERM_EXPRS[e2])]
    else:
        sub = np.empty(n, dtype=np.int64)
        for lev, size in enumerate(sizes):
            rows = np.flatnonzero(g1 == lev)
            k = draw(st.integers(1, min(3, size)))
            sub[rows] = spread_codes(draw, k, size)
        nested_codes = np.unique(np.column_stack([g1, sub]), axis=0, return_inverse=True)[1].reshape(-1)
        if structure == "nested_slash":  # sub-labels repeat across g1 levels; g1/g2 makes them distinct
            frame["g2"] = [f"s{v}" for v in sub]
            random_part = f"({e1} | g1/g2)"
            groups = [(g1, TERM_EXPRS[e1]), (nested_codes, TERM_EXPRS[e1])]
        else:  # labels already unique: the nesting is implicit in the data
            frame["g2"] = [f"A{a}.s{b}" for a, b in zip(g1, sub)]
            random_part = f"({e1} | g1) + ({e2} | g2)"
            groups = [(g1, TERM_EXPRS[e1]), (nested_codes, TERM_EXPRS[e2])]
    # The model's own identifiability rules: > 1 level, fewer levels than rows, fewer random effects than rows.
    for codes, p in groups:
        nlev = len(np.unique(codes))
        assume(2 <= nlev < n and nlev * p < n)
    offset = draw(st.sampled_from([0.0, 40.0]))
    frame["x"] = rng.normal(size=n)
    nf = draw(st.integers(2, 3))
    frame["f"] = [f"L{v}" for v in spread_codes(draw, nf, n)]
    effects = rng.normal(size=n1)
    frame["y"] = offset + 0.5 * frame["x"] + effects[g1] + rng.normal(size=n)
    fixed = draw(st.sampled_from(["x", "x + f"]))
    event(f"{'balanced' if balanced else 'unbalanced'}, fixed {fixed}, terms {random_part}")
    perm = np.array(draw(st.permutations(range(n))))  # rows need not come sorted by group
    frame = frame.iloc[perm].reset_index(drop=True)
    return frame, f"y ~ {fixed} + {random_part}"


@pytest.mark.parametrize("structure", STRUCTURES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(data=st.data())
def test_objective_matches_dense_profiled_likelihood(structure, data):
    frame, formula = data.draw(designs(structure), label="design")
    event(f"rows {10 * (len(frame) // 10)}-{10 * (len(frame) // 10) + 9}")
    reml_model = LinearMixedModel.from_formula(formula, frame, reml=True)
    ml_model = LinearMixedModel.from_formula(formula, frame, reml=False)
    X = reml_model.design.X
    n, p = X.shape
    assume(np.linalg.matrix_rank(X) == p and n > p)
    assert ml_model.design.X.shape == X.shape

    terms = reml_model.terms
    nlevels = [t.nlevels for t in terms]
    assert nlevels == sorted(nlevels, reverse=True)
    for t in terms:
        assert t.refs.shape == (n,) and t.z.shape == (n, t.p)
        assert np.array_equal(np.unique(t.refs), np.arange(t.nlevels))  # every level has a row

    theta, bounds = [], []
    for t in terms:
        values = [
            data.draw(st.floats(0.05, 3.0) if r == c else st.floats(-2.0, 2.0), label=f"theta[{t.group}][{r},{c}]")
            for c in range(t.p)
            for r in range(c, t.p)
        ]
        assert np.array_equal(t.lambda_matrix(np.array(values)), expected_lambda(t.p, np.array(values)))
        theta.extend(values)
        bounds.extend(0.0 if r == c else -np.inf for c in range(t.p) for r in range(c, t.p))
    theta = np.array(theta)
    assert len(reml_model.theta_names) == theta.size
    assert np.array_equal(reml_model.lower_bounds, np.array(bounds))

    for model, reml in ((reml_model, True), (ml_model, False)):
        got = model.objective(theta)
        want, scale = dense_objective(model, theta, reml)
        assert math.isfinite(got)
        assert abs(got - want) <= 1e-8 * max(abs(want), scale), (formula, reml, theta, got, want)
    # The same model object also evaluates the other criterion on request.
    want_ml, scale_ml = dense_objective(reml_model, theta, False)
    assert abs(reml_model.objective(theta, reml=False) - want_ml) <= 1e-8 * max(abs(want_ml), scale_ml)
