"""A DataFrame that prints in full: tables of estimates and tests are never cut with ``...``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd


class Table(pd.DataFrame):
    """A :class:`pandas.DataFrame` whose display shows every row and column, R style.

    pandas abbreviates a frame wider than the terminal (``display.width``) with ``...`` columns and
    wraps it; a table of coefficients or tests should read like R's printed table, so ``str()``
    and ``repr()`` are ``to_string()``. As R prints a numeric column, a float column whose values
    are all whole numbers (a test's df, ``NumDF``) is displayed without decimals; the data are
    unchanged. Everything else — indexing, arithmetic, ``to_string``, ``to_html`` — is the
    DataFrame's, and operations that return a frame (``round``, ``loc``, ``copy``) return a ``Table``.
    """

    _metadata: list[str] = []

    @property
    def _constructor(self) -> type["Table"]:
        return Table

    def whole_number_formatters(self, na_rep: str = "NaN") -> dict[Any, Callable[[Any], str]]:
        """Formatters printing the float columns whose finite values are all whole numbers as integers."""
        if not self.columns.is_unique:
            return {}
        out: dict[Any, Callable[[Any], str]] = {}
        for name in self.columns:
            column = self[name]
            if not pd.api.types.is_float_dtype(column.dtype):
                continue
            values = column.to_numpy(dtype=float, na_value=np.nan)
            finite = values[np.isfinite(values)]
            if finite.size and np.all(finite == np.round(finite)) and np.all(np.abs(finite) < 1e15):
                out[name] = functools.partial(_whole, na_rep=na_rep)
        return out

    def to_text(self, na_rep: str = "NaN") -> str:
        """The whole table as text (whole-number columns without decimals)."""
        return self.to_string(formatters=self.whole_number_formatters(na_rep), na_rep=na_rep)

    def to_html_table(self, na_rep: str = "NaN") -> str:
        """The whole table as an HTML ``<table>`` (whole-number columns without decimals)."""
        return self.to_html(formatters=self.whole_number_formatters(na_rep), na_rep=na_rep, notebook=True)

    def __repr__(self) -> str:
        return self.to_text()

    def __str__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        return self.to_html_table()


def _whole(value: Any, na_rep: str) -> str:
    if pd.isna(value):
        return na_rep
    return f"{float(value) + 0.0:.0f}"


def as_table(frame: Any) -> Any:
    """``frame`` as a :class:`Table` (returned unchanged if it is not a DataFrame or already a Table)."""
    if isinstance(frame, pd.DataFrame) and not isinstance(frame, Table):
        return Table(frame)
    return frame
