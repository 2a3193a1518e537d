"""Property test: crossed designs with ``||`` and several terms per grouping factor.

A crossed model ``(1 | id) + (task || item)`` once crashed in the blocked factor: an off-diagonal
block kept sparse (scipy) minus a dense product gave a ``numpy.matrix``, which cannot be reshaped
to three axes. Whether it happened depended on the sizes (which blocks are stored sparse or dense)
and on the order of the terms. Here random crossed designs with two or three grouping factors,
uncorrelated terms (``||``) of numeric and two- or three-level factor slopes, and 2 to 40 levels
per factor (so that off-diagonal blocks come out sparse and dense) must give the objective of the
dense profiled likelihood at random θ.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from test_objective_property import dense_objective

from mixedmodels import LinearMixedModel

#: Left sides of random terms; ``f`` is a factor (its columns per level as lme4 expands it).
LEFT = ["1", "x", "0 + x", "1 + x", "f", "0 + f"]


@st.composite
def crossed_designs(draw):
    nfactors = draw(st.integers(2, 3))
    n = draw(st.integers(40, 160))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x": rng.normal(size=n)})
    nf = draw(st.integers(2, 3))
    frame["f"] = [f"F{v}" for v in rng.integers(0, nf, size=n)]
    terms = []
    for i in range(nfactors):
        nlev = draw(st.integers(2, min(40, n // 4)))
        codes = np.concatenate([np.arange(nlev), rng.integers(0, nlev, size=n - nlev)])
        frame[f"g{i}"] = [f"L{v}" for v in rng.permutation(codes)]
        for _ in range(draw(st.integers(1, 2))):
            left = draw(st.sampled_from(LEFT))
            bar = draw(st.sampled_from(["|", "||"])) if left not in ("1",) else "|"
            terms.append(f"({left} {bar} g{i})")
    terms = draw(st.permutations(terms))  # the order of terms in the formula must not matter
    frame["y"] = frame["x"] + rng.normal(size=n)
    event(f"{nfactors} factors, {len(terms)} terms")
    return frame, "y ~ x + " + " + ".join(terms)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(data=st.data())
def test_crossed_objective_matches_dense_likelihood(data):
    frame, formula = data.draw(crossed_designs(), label="design")
    try:
        model = LinearMixedModel.from_formula(formula, frame, reml=False)
    except Exception as exc:  # the identifiability checks may reject a drawn design; that is not under test
        from mixedmodels import MixedModelsError

        assert isinstance(exc, MixedModelsError), exc
        assume(False)
    kinds = set(model.factor.off_kind.values()) | set(model.factor.diag_kind)
    event("blocks: " + ", ".join(sorted(kinds)))
    theta = []
    for t in model.terms:
        for c in range(t.p):
            for r in range(c, t.p):
                theta.append(data.draw(st.floats(0.05, 2.0) if r == c else st.floats(-1.0, 1.0)))
    theta = np.array(theta)
    for reml in (False, True):
        got = model.objective(theta, reml=reml)
        want, scale = dense_objective(model, theta, reml)
        assert math.isfinite(got)
        assert abs(got - want) <= 1e-8 * max(abs(want), scale), (formula, reml, theta, got, want)
