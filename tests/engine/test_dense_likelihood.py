"""Property test: the blocked-Cholesky objective equals a brute-force dense computation.

For random small designs (balanced or not; crossed or nested; scalar and vector-valued terms) and
random θ, the REML criterion and ML deviance from the engine must equal those computed directly
from ``V0 = Z Λ Λ' Z' + I`` (σ² profiled out):

    ML:   log|V0| + n (1 + log(2π r'V0⁻¹r / n))
    REML: log|V0| + log|X'V0⁻¹X| + (n − p)(1 + log(2π r'V0⁻¹r / (n − p)))

with ``r = y − Xβ̂`` and β̂ the GLS estimate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sla
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mixedmodels import LinearMixedModel
from mixedmodels.engine.crossprod import z_matrix


def dense_objective(model: LinearMixedModel, theta: np.ndarray, reml: bool) -> float:
    d = model.design
    X, y = d.X, d.y
    n, p = X.shape
    Zs, lams, start = [], [], 0
    for t in model.terms:
        Zs.append(z_matrix(t).toarray())
        lam = t.lambda_matrix(theta[start : start + t.ntheta])
        lams.append(np.kron(np.eye(t.nlevels), lam))
        start += t.ntheta
    ZL = np.hstack([Z @ L for Z, L in zip(Zs, lams)])
    V0 = ZL @ ZL.T + np.eye(n)
    C = sla.cho_factor(V0, lower=True)
    Vi_X = sla.cho_solve(C, X)
    Vi_y = sla.cho_solve(C, y)
    XtViX = X.T @ Vi_X
    beta = np.linalg.solve(XtViX, X.T @ Vi_y)
    r = y - X @ beta
    rss = r @ sla.cho_solve(C, r)
    logdet_v = 2.0 * np.sum(np.log(np.diag(C[0])))
    if reml:
        return logdet_v + np.linalg.slogdet(XtViX)[1] + (n - p) * (1 + np.log(2 * np.pi * rss / (n - p)))
    return logdet_v + n * (1 + np.log(2 * np.pi * rss / n))


@st.composite
def designs(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n1 = draw(st.integers(2, 6))
    balanced = draw(st.booleans())
    if balanced:
        reps = draw(st.integers(2, 6))
        g1 = np.repeat(np.arange(n1), reps)
    else:
        sizes = [draw(st.integers(1, 8)) for _ in range(n1)]
        g1 = np.repeat(np.arange(n1), sizes)
    n = len(g1)
    assume(12 <= n <= 60)
    structure = draw(st.sampled_from(["one", "crossed", "nested", "two_on_one"]))
    frame = pd.DataFrame({
        "g1": [f"a{v}" for v in g1],
        "x": rng.normal(size=n),
        "f": rng.choice(["u", "v", "w"], size=n),
        "y": rng.normal(size=n) + g1 * 0.3,
    })
    vector = draw(st.booleans())
    lhs = "1 + x" if vector else "1"
    rhs = f"({lhs} | g1)"
    if structure == "crossed":
        n2 = draw(st.integers(2, 5))
        frame["g2"] = [f"b{v}" for v in rng.integers(0, n2, size=n)]
        rhs += " + (1 + x | g2)" if draw(st.booleans()) else " + (1 | g2)"
    elif structure == "nested":
        frame["g2"] = [f"c{v}" for v in rng.integers(0, 2, size=n)]
        rhs = f"({lhs} | g1/g2)"
    elif structure == "two_on_one":
        rhs = "(1 | g1) + (0 + x | g1)"
    fixed = draw(st.sampled_from(["x", "x + f", "1"]))
    return frame, f"y ~ {fixed} + {rhs}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(designs(), st.booleans(), st.integers(0, 2**32 - 1))
def test_objective_equals_dense_likelihood(design, reml, seed):
    frame, formula = design
    try:
        model = LinearMixedModel.from_formula(formula, frame, reml=reml)
    except Exception as exc:  # designs the model rejects (e.g. as many levels as rows) are skipped
        from mixedmodels import MixedModelsError

        assert isinstance(exc, MixedModelsError)
        assume(False)
    assume(model.design.X.shape[0] > model.design.X.shape[1] + 1)
    rng = np.random.default_rng(seed)
    theta = []
    for t in model.terms:
        rows, cols = t.structure.rows_cols
        theta.extend(rng.uniform(0.05, 3.0) if r == c else rng.uniform(-2.0, 2.0) for r, c in zip(rows, cols))
    theta = np.array(theta)
    assert model.objective(theta) == pytest.approx(dense_objective(model, theta, reml), rel=1e-8, abs=1e-8)
