"""Reading data for the command line: CSV, Parquet and Feather files, or a bundled dataset by name."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from . import datasets
from .exceptions import DataError

_READERS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".feather": "feather",
    ".arrow": "feather",
}


def _check_delimited(path: Path, sep: str, source: str) -> None:
    """Duplicated header names and short rows, which pandas would rename or pad silently."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter=sep)
        header = next(reader, [])
        dup = sorted({h for h in header if header.count(h) > 1})
        if dup:
            raise DataError(f"duplicated column names in {source!r}: {', '.join(dup)}")
        for line, row in enumerate(reader, start=2):
            if row and len(row) != len(header):
                raise DataError(
                    f"ragged rows in {source!r}: line {line} has {len(row)} fields, the header has {len(header)}"
                )


def _read_delimited(path: Path, sep: str) -> pd.DataFrame:
    """Read a CSV/TSV file as R's ``read.csv`` does: ``NA`` is missing; an empty field is missing in a
    column of numbers but the level ``""`` in a column of text (where pandas' default would drop it)."""
    frame = pd.read_csv(path, sep=sep, keep_default_na=False, na_values=["NA"])
    for name in frame.columns:
        col = frame[name]
        if col.dtype == object or isinstance(col.dtype, pd.StringDtype):
            blank = (col == "").fillna(False).astype(bool)
            if blank.all():
                frame[name] = np.nan
                continue
            # numbers (R also reads NaN, Inf) with empty fields: a numeric column with missing values
            numeric = pd.to_numeric(col.mask(blank), errors="coerce")
            if (numeric.notna() | blank | col.isna() | (col == "NaN").fillna(False)).all():
                frame[name] = numeric
    return frame


def read_data(source: str) -> tuple[pd.DataFrame, str]:
    """Read ``source``, a file path or the name of a bundled dataset.

    Returns
    -------
    frame : pandas.DataFrame
    name : str
        The name to show in summaries (the dataset name or the file's stem).

    Raises
    ------
    DataError
        If the file is missing, unreadable, or not a supported format.
    """
    path = Path(source)
    if not path.exists():
        if source in datasets.list_datasets():
            return datasets.load(source), source
        raise DataError(f"no such file or bundled dataset: {source!r} (bundled: {', '.join(datasets.list_datasets())})")
    if path.is_dir():
        raise DataError(f"{source!r} is a directory, not a data file")
    kind = _READERS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"cannot tell the format of {source!r}: use a .csv, .tsv, .parquet or .feather file")
    try:
        if kind in ("csv", "tsv"):
            frame = _read_delimited(path, "\t" if kind == "tsv" else ",")
        elif kind == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_feather(path)
    except UnicodeDecodeError as exc:
        raise DataError(f"cannot read {source!r}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{source!r} is empty") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"cannot parse {source!r}: {str(exc).strip().splitlines()[-1]}") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {source!r}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if kind in ("csv", "tsv"):
        _check_delimited(path, "\t" if kind == "tsv" else ",", source)
    elif frame.columns.duplicated().any():
        dup = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise DataError(f"duplicated column names in {source!r}: {', '.join(dup)}")
    return frame, path.stem


def read_sql(query: str, database: str) -> tuple[pd.DataFrame, str]:
    """Run one read-only query against a DuckDB or SQLite database file.

    The kind of file is told from its first bytes (SQLite files start with ``SQLite format 3``);
    anything else is opened with DuckDB. Connections are read-only, and DuckDB's access to other
    files and extensions is switched off, so a query can read the database and nothing else.

    Returns
    -------
    frame : pandas.DataFrame
    name : str
        The database file's stem.
    """
    path = Path(database)
    if not path.is_file():
        raise DataError(f"no such database file: {database!r}")
    with path.open("rb") as fh:
        magic = fh.read(16)
    if magic.startswith(b"SQLite format 3"):
        import sqlite3

        try:
            with sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True) as con:
                frame = pd.read_sql_query(query, con)
        except (sqlite3.Error, pd.errors.DatabaseError) as exc:
            raise DataError(f"SQLite query failed: {str(exc).splitlines()[0]}") from None
        return frame, path.stem
    try:
        import duckdb
    except ImportError:
        raise DataError(f"{database!r} is not a SQLite file; reading DuckDB files needs the duckdb package (pip install duckdb)") from None
    try:
        con = duckdb.connect(str(path), read_only=True, config={"enable_external_access": False, "autoload_known_extensions": False})
    except duckdb.Error as exc:
        raise DataError(f"cannot open {database!r} as a DuckDB database: {str(exc).splitlines()[0]}") from None
    try:
        frame = con.execute(query).df()
    except duckdb.Error as exc:
        raise DataError(f"DuckDB query failed: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
    return frame, path.stem
