"""Saving and loading fitted models as plain JSON — no pickle, nothing executed on load.

A saved fit holds the formula, the method, the estimates θ̂ and the fit record, and the data rows
and variables the model used (column by column, with factor levels in order). Loading rebuilds
the design from those rows with the same formula pipeline as fitting (which evaluates no code),
sets θ̂ without optimising, and checks that the objective at θ̂ is the one saved. So every method
of a fresh fit works after loading: ``summary()``, ``predict()``, ``ranef()``, tests and intervals.

File layout (``format = "mixedmodels-fit"``, ``version = 1``; a name ending ``.gz`` is gzipped)::

    {"format": "mixedmodels-fit", "version": 1, "package_version": "...",
     "model": {"formula", "reml", "data_name", "na_action", "contrasts", "control",
               "covariance": known covariances K (genetics.persist), or null},
     "fit": {"theta": [...], "objective": ..., "fit_record": {...}},
     "data": {"nrows", "row_index": [...], "data_index": [...] (na_action "exclude" only), "n_dropped", "messages": [...],
              "columns": [{"name", "kind": "float"|"int"|"bool"|"string"|"category",
                           "values": [...] | "codes": [...], "categories": [...], "ordered": bool}]}}
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .exceptions import DataError
from .covariance.residual_spec import parse_residual
from .covariance.variance import parse_variance
from .genetics.persist import covariance_from_json, covariance_to_json
from .optimize import FitRecord, OptimizerControl

if TYPE_CHECKING:
    from .results import LinearMixedModelResults

FORMAT = "mixedmodels-fit"
VERSION = 1


def _plain(v: Any) -> Any:
    """numpy scalars to Python scalars."""
    return v.item() if isinstance(v, np.generic) else v


def _column(name: str, s: pd.Series) -> dict[str, Any]:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return {
            "name": name,
            "kind": "category",
            "codes": s.cat.codes.astype(int).tolist(),
            "categories": [_plain(c) for c in s.cat.categories],
            "ordered": bool(s.cat.ordered),
        }
    if pd.api.types.is_bool_dtype(s):
        return {"name": name, "kind": "bool", "values": [bool(v) for v in s]}
    if pd.api.types.is_integer_dtype(s):
        return {"name": name, "kind": "int", "values": [int(v) for v in s]}
    if pd.api.types.is_float_dtype(s):
        return {"name": name, "kind": "float", "values": [float(v) for v in s]}
    return {"name": name, "kind": "string", "values": [str(v) for v in s]}


def _series(col: dict[str, Any], n: int) -> pd.Series:
    kind = col.get("kind")
    if kind == "category":
        codes = np.asarray(col["codes"], dtype=int)
        cats = list(col["categories"])
        if codes.size != n or (codes.size and (codes.min() < 0 or codes.max() >= len(cats))):
            raise DataError(f"saved column {col.get('name')!r} has invalid factor codes")
        return pd.Series(pd.Categorical.from_codes(codes, categories=cats, ordered=bool(col.get("ordered"))))
    dtypes = {"float": float, "int": np.int64, "bool": bool, "string": object}
    if kind not in dtypes:
        raise DataError(f"saved column {col.get('name')!r} has unknown kind {kind!r}")
    values = col["values"]
    if len(values) != n:
        raise DataError(f"saved column {col.get('name')!r} has {len(values)} values, expected {n}")
    return pd.Series(np.asarray(values, dtype=dtypes[kind]))


def _labels(index: pd.Index) -> list[Any]:
    """Row labels as JSON values (integers and strings as they are, anything else as text)."""
    return [_plain(v) if isinstance(_plain(v), (int, str)) else str(v) for v in index]


def to_json_dict(result: "LinearMixedModelResults") -> dict[str, Any]:
    """The saved form of a fit (see the module docstring)."""
    from . import __version__

    d = result.design
    frame = d.frame
    if frame is None:
        raise DataError("this fit does not keep its data rows, so it cannot be saved")
    rec = dataclasses.asdict(result.fit_record)
    return {
        "format": FORMAT,
        "version": VERSION,
        "package_version": __version__,
        "model": {
            "formula": d.formula.text,
            "reml": bool(result.reml),
            "data_name": result.model.data_name,
            "na_action": result.model.na_action,
            "contrasts": dict(d.contrasts),
            "control": dataclasses.asdict(result.model.control),
            "residual": None if result.model.residual_spec is None else str(result.model.residual_spec),
            "variance": None if result.model.variance_spec is None else str(result.model.variance_spec),
            # a power of the fitted values: the fitted values it was taken of (the fixed point's)
            "variance_covariate": (
                {"fitted": [float(v) for v in result.model.variance.x], "unit": result.model.variance.unit}
                if result.model.variance is not None and result.model.variance.spec.of_fitted else None
            ),
            "has_weights": result.design.weights is not None,
            "covariance": covariance_to_json(result),
        },
        "fit": {"theta": [float(v) for v in result.theta], "objective": float(result.objective), "fit_record": rec},
        "data": {
            "nrows": int(len(frame)),
            "row_index": _labels(d.row_index),
            "weights": None if d.weights is None else [float(v) for v in d.weights],
            "offset": None if d.offset_argument is None else [float(v) for v in d.offset_argument],
            "offset_column": d.offset_column,
            **({"data_index": _labels(d.data_index)} if result.model.na_action == "exclude" and d.data_index is not None else {}),
            "n_dropped": int(d.n_dropped),
            "messages": list(d.messages),
            "columns": [_column(str(c), frame[c]) for c in frame.columns],
        },
    }


def save(result: "LinearMixedModelResults", path: str | Path) -> Path:
    """Write ``result`` to ``path`` as JSON (gzipped when the name ends in ``.gz``)."""
    path = Path(path)
    text = json.dumps(to_json_dict(result), allow_nan=False)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def from_json_dict(doc: dict[str, Any]) -> "LinearMixedModelResults":
    """Rebuild a fit from its saved form, checking the objective at the saved θ̂."""
    from .formula.design import build_design
    from .model import LinearMixedModel
    from .results import LinearMixedModelResults

    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise DataError("not a saved mixedmodels fit (the 'format' field is missing or wrong)")
    if doc.get("version") != VERSION:
        raise DataError(f"saved fit has format version {doc.get('version')!r}; this mixedmodels reads version {VERSION}")
    try:
        model_doc, fit_doc, data_doc = doc["model"], doc["fit"], doc["data"]
        n = int(data_doc["nrows"])
        frame = pd.DataFrame({c["name"]: _series(c, n) for c in data_doc["columns"]})
        record = FitRecord(
            **{
                k: (tuple(v) if isinstance(v, list) else v)
                for k, v in fit_doc["fit_record"].items()
                if k in {f.name for f in dataclasses.fields(FitRecord)}
            }
        )
        theta = np.asarray(fit_doc["theta"], dtype=float)
        objective = float(fit_doc["objective"])
        contrasts = model_doc.get("contrasts") or None
        residual = model_doc.get("residual")
        if model_doc.get("has_weights") or data_doc.get("weights") is not None:
            weights = np.asarray(data_doc["weights"], dtype=float)
        else:
            weights = None
        offset = np.asarray(data_doc["offset"], dtype=float) if data_doc.get("offset") is not None else None
        variance = model_doc.get("variance")
        spec_columns = (parse_residual(residual).columns if residual else ()) + (
            (parse_variance(variance).column,) if variance and parse_variance(variance).column else ()
        )
        covariance = covariance_from_json(model_doc.get("covariance"))
        design = build_design(
            model_doc["formula"], frame, warn=False, contrasts=contrasts, weights=weights, offset=offset,
            extra_columns=spec_columns, known_groups=frozenset(covariance or ()),
        )
        if covariance:
            from .genetics.terms import bind_known_covariances

            design = bind_known_covariances(design, covariance)
        design = dataclasses.replace(
            design,
            n_dropped=int(data_doc.get("n_dropped", 0)),
            messages=tuple(data_doc.get("messages", ())),
            row_index=pd.Index(data_doc.get("row_index", range(n))),
            data_index=pd.Index(data_doc["data_index"]) if "data_index" in data_doc else None,
            offset_column=data_doc.get("offset_column"),
            offset_array=offset is not None and data_doc.get("offset_column") is None,
        )
        model = LinearMixedModel(
            design,
            reml=bool(model_doc["reml"]),
            data_name=model_doc.get("data_name"),
            na_action=model_doc.get("na_action", "omit"),
            control=OptimizerControl.make(model_doc.get("control")),
            residual=residual,
            variance=variance,
        )
        if model.variance is not None and model.variance.spec.of_fitted:
            covariate = np.asarray(model_doc["variance_covariate"]["fitted"], dtype=float)
            if covariate.shape != (model.nobs,):
                raise ValueError(f"variance_covariate has {covariate.size} values for {model.nobs} rows")
            model.variance.set_covariate(covariate, unit=float(model_doc["variance_covariate"]["unit"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"saved fit is malformed: {type(exc).__name__}: {exc}") from None
    if theta.shape != model.theta_start.shape:
        raise DataError(f"saved θ has {theta.size} values; the model needs {model.theta_start.size}")
    check = model.objective(theta)
    if not math.isclose(check, objective, rel_tol=1e-8, abs_tol=1e-8):
        raise DataError(f"saved fit is inconsistent: the objective at the saved θ is {check:.10g}, the file says {objective:.10g}")
    return LinearMixedModelResults(model, theta, objective, record)


def load(path: str | Path) -> "LinearMixedModelResults":
    """Read a fit written by :func:`save`. Only JSON is parsed; no code is executed."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such file: {str(path)!r}")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                doc = json.load(fh)
        else:
            doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, EOFError) as exc:
        raise DataError(f"cannot read saved fit {str(path)!r}: {exc}") from None
    return from_json_dict(doc)
