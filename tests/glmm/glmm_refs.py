"""Helpers of the GLMM tests: the reference JSON (tests/reference/glmer.json, made by
tests/reference/glmer.R) and the fits of its models, each made once per session."""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import pandas as pd

import mixedmodels.datasets as ds
from mixedmodels.glmm import glmer

REFERENCE = Path(__file__).parent.parent / "reference"
REF = json.loads((REFERENCE / "glmer.json").read_text())
FITS = REF["fits"]


def as_list(value) -> list:
    """jsonlite writes length-1 vectors as scalars."""
    return value if isinstance(value, list) else [value]


@cache
def data(name: str) -> pd.DataFrame:
    """A bundled lme4 dataset or a simulated CSV of tests/reference/data."""
    if name.endswith(".csv"):
        return pd.read_csv(REFERENCE / "data" / name)
    return ds.load(name)


@cache
def fit(case: str):
    """Our fit of a reference model (warnings kept in the result, not emitted)."""
    f = FITS[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return glmer(
            f["formula"], data(f["data"]), family=f["family"], link=f["link"], nAGQ=f["nAGQ"],
            weights=f.get("weights"), data_name=f["data"],
        )
