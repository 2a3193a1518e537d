"""Example datasets bundled with the package (lme4's, exported from lme4 1.1-31).

Factor columns come back as pandas categoricals with lme4's level order, so models fitted to them
match lme4's exactly; ``data/README.md`` cites the sources and ``data/schema.R`` made the schema.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

import pandas as pd

from ..exceptions import DataError


@cache
def _schema() -> dict:
    return json.loads(resources.files(__package__).joinpath("data/schema.json").read_text())


def list_datasets() -> list[str]:
    """Names of the bundled datasets."""
    return sorted(_schema())


def load(name: str) -> pd.DataFrame:
    """Load a bundled dataset by name (``"sleepstudy"``, ``"InstEval"``, ...).

    Raises
    ------
    DataError
        If there is no dataset of that name.
    """
    schema = _schema()
    if name not in schema:
        raise DataError(f"no bundled dataset {name!r}; available: {', '.join(list_datasets())}")
    with resources.files(__package__).joinpath(f"data/{name}.csv").open("r") as fh:
        cols = schema[name]
        dtypes = {c: (str if spec["type"] == "factor" else float) for c, spec in cols.items()}
        frame = pd.read_csv(fh, dtype=dtypes, keep_default_na=True)
    for c, spec in cols.items():
        if spec["type"] == "factor":
            frame[c] = pd.Categorical(frame[c], categories=spec["levels"], ordered=spec.get("ordered", False))
        elif spec["type"] == "integer":
            frame[c] = frame[c].astype("int64")
    return frame


__all__ = ["list_datasets", "load"]
