"""Known covariances in saved fits: ``K`` is stored, so a loaded fit is complete.

A fit with a known covariance cannot be rebuilt from its data rows alone, and ``K`` is data, not code,
so it is saved with the rows: for each grouping factor the ids of the levels used and ``K`` among them
— its lower triangle (or the factor ``F`` of ``K = FF'``) as little-endian float64, base64-encoded, so
it reloads bit for bit and the saved objective is reproduced. ``K`` of ``q`` levels adds ``4q²``
bytes (× 4/3 for base64; 2,000 individuals: 21 MB, a gzipped ``.json.gz`` shrinks it little).
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from ..exceptions import DataError
from .kinship import Kinship


def _encode(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f8").tobytes()).decode("ascii")


def _decode(text: str, size: int) -> np.ndarray:
    a = np.frombuffer(base64.b64decode(text.encode("ascii"), validate=True), dtype="<f8")
    if a.size != size:
        raise DataError(f"saved relationship matrix has {a.size} values, expected {size}")
    return a.astype(float)


def covariance_to_json(result: Any) -> dict[str, Any] | None:
    """``{group: {"ids", "kind", "columns", "values"}}`` for each grouping factor with a known covariance."""
    out: dict[str, Any] = {}
    for t in result.terms:
        if not t.rotated or t.group in out:
            continue
        kin = t.kinship
        if kin.matrix is not None:
            values = kin.matrix[np.tril_indices(kin.size)]
            out[t.group] = {"ids": list(kin.ids), "kind": "matrix", "values": _encode(values)}
        else:
            out[t.group] = {"ids": list(kin.ids), "kind": "factor", "columns": int(kin.factor.shape[1]),
                            "values": _encode(kin.factor)}
    return out or None


def covariance_from_json(doc: dict[str, Any] | None) -> dict[str, Kinship] | None:
    """The known covariances of a saved fit (None when it has none)."""
    if not doc:
        return None
    out = {}
    for group, item in doc.items():
        ids = tuple(str(v) for v in item["ids"])
        q = len(ids)
        if item["kind"] == "matrix":
            K = np.zeros((q, q))
            K[np.tril_indices(q)] = _decode(item["values"], q * (q + 1) // 2)
            K = K + np.tril(K, -1).T
            out[group] = Kinship(ids, matrix=K)
        elif item["kind"] == "factor":
            m = int(item["columns"])
            out[group] = Kinship(ids, factor=_decode(item["values"], q * m).reshape(q, m))
        else:
            raise DataError(f"saved relationship for {group!r} has unknown kind {item['kind']!r}")
    return out
