"""The Gram map keeps a sparsity pattern, never values: new values of the same pattern give the new product."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from mixedmodels.engine.factor import GramMap


def test_gram_map_reads_values_at_bind_time():
    rng = np.random.default_rng(3)
    A = sp.random(30, 50, density=0.15, random_state=4, format="csr")
    A.data[:] = 1.0
    gram = GramMap(A)
    w = rng.uniform(0.5, 2.0, size=50)
    for values in (A.data, rng.normal(size=A.nnz)):  # the same pattern with other values (e.g. new weights)
        B = A.copy()
        B.data = values.copy()
        full = (B @ sp.diags(w) @ B.T).toarray()
        got = np.zeros_like(full)
        got[gram.rows, gram.cols] = gram.lower(gram.bind(B), w)
        assert np.allclose(np.tril(got), np.tril(full), atol=1e-12)


def test_gram_map_refuses_another_pattern():
    A = sp.random(10, 12, density=0.3, random_state=1, format="csr")
    gram = GramMap(A)
    with pytest.raises(ValueError, match="sparsity pattern"):
        gram.bind(sp.random(10, 12, density=0.3, random_state=2, format="csr"))


@pytest.mark.parametrize("budget", [10_000_000, 40, 0])
def test_schur_fill_matches_the_product_with_heavy_and_light_columns(monkeypatch, budget):
    from mixedmodels.engine import factor
    from mixedmodels.engine.factor import SchurFill

    monkeypatch.setattr(factor, "GRAM_MAX_ENTRIES", budget)
    rng = np.random.default_rng(5)
    A = sp.random(60, 60, density=0.04, random_state=6, format="csc")
    A = sp.hstack([A, sp.random(60, 5, density=0.9, random_state=7)]).tocsc()  # heavy columns: the dense part
    fill = SchurFill(A)
    assert fill.heavy.size >= 5
    assert (fill.gram is not None) == (budget > 0) and (fill.middle.size > 0) == (budget < 10_000_000)
    w = rng.uniform(0.5, 2.0, size=A.shape[1])
    for values in (A.data, rng.normal(size=A.nnz)):
        B = A.copy()
        B.data = values.copy()
        S = rng.normal(size=(60, 60))
        expected = S - (B @ sp.diags(w) @ B.T).toarray()
        fill.subtract(S, fill.bind(B), w)
        assert np.allclose(np.tril(S), np.tril(expected), atol=1e-12)


def test_factor_without_a_gram_map_is_the_same(monkeypatch):
    """Above the Gram map's budget the fill-in is computed per update: the same criterion and factor."""
    import pandas as pd

    from mixedmodels.engine import factor
    from mixedmodels.model import LinearMixedModel

    rng = np.random.default_rng(8)
    n = 3000
    df = pd.DataFrame({"u": rng.integers(0, 300, n) ** 2 // 300, "i": rng.integers(0, 80, n)})
    df["x"] = rng.normal(size=n)
    df["w"] = rng.uniform(0.5, 2.0, n)
    df["y"] = df.x + rng.normal(size=300)[df.u] + rng.normal(size=80)[df.i] + rng.normal(size=n)
    df["u"], df["i"] = df.u.astype(str), df.i.astype(str)
    results = []
    for budget in (factor.GRAM_MAX_ENTRIES, 0):
        monkeypatch.setattr(factor, "GRAM_MAX_ENTRIES", budget)
        m = LinearMixedModel.from_formula("y ~ x + (1 | u) + (1 | i)", df, weights="w")
        kind = type(m.factor._gram[1, 0]).__name__
        crit = [m.criterion_at(np.array(th)) for th in ([1.0, 1.0], [0.2, 1.7])]
        fresh = m.with_response(df.y.to_numpy() * 2.0).criterion_at(np.array([0.5, 0.5]))
        results.append((kind, crit, fresh, m.factor.lower_xz().copy()))
    assert [r[0] for r in results] == ["GramMap", "SchurFill"]
    assert np.allclose(results[0][1], results[1][1], rtol=1e-12)
    assert np.isclose(results[0][2], results[1][2], rtol=1e-12)
    assert np.allclose(results[0][3], results[1][3], atol=1e-10)
