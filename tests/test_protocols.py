"""The protocols readers type fits with: a mixed fit is a MixedFit, the linear-model null only a Fit."""

from __future__ import annotations

import warnings

import mixedmodels as mm
from mixedmodels.protocols import Fit, MixedFit


def test_fits_satisfy_their_protocols():
    ss = mm.datasets.load("sleepstudy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lmm = mm.lmer("Reaction ~ Days + (Days | Subject)", ss)
        lm = mm.LinearModelResults.from_formula("Reaction ~ Days", ss)
    assert isinstance(lmm, MixedFit) and isinstance(lmm, Fit)
    assert isinstance(lm, Fit) and not isinstance(lm, MixedFit)
    assert lmm.design is lmm.model.design and lmm.terms == lmm.model.terms
