"""Reading data for the command line: CSV, Parquet and Feather files, or a bundled dataset by name."""

from __future__ import annotations

import csv
from pathlib import Path

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
        if kind == "csv":
            frame = pd.read_csv(path)
        elif kind == "tsv":
            frame = pd.read_csv(path, sep="\t")
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
