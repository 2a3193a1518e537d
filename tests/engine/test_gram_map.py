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
