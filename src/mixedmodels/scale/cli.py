"""The command line's ``fit DATA --dask [--scheduler ADDRESS]``: read files as a Dask DataFrame and fit on it."""

from __future__ import annotations

import glob
import warnings
from pathlib import Path
from typing import Any

from ..exceptions import DataError
from .model import DaskResults

#: File suffixes Dask reads, and how.
_KINDS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".txt": "csv", ".tsv": "tsv"}


def read_dask(source: str) -> Any:
    """``source`` — a file, a glob pattern (``"data/*.parquet"``) or a directory of Parquet files — as a Dask DataFrame.

    Raises
    ------
    DataError
        When nothing matches, the format is not one Dask reads here, or Dask is not installed.
    """
    try:
        import dask.dataframe as dd
    except ImportError:
        raise DataError("--dask needs Dask: pip install 'mixedmodels[dask]'") from None
    if "://" in source:  # a remote store (s3://, gs://, abfs://): Dask and fsspec find the files
        kind = _KINDS.get(Path(source.rstrip("/*")).suffix.lower(), "parquet")
        try:
            return dd.read_parquet(source) if kind == "parquet" else dd.read_csv(source, sep="\t" if kind == "tsv" else ",")
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"cannot read {source!r} with Dask: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    matches = sorted(glob.glob(source)) if glob.has_magic(source) else ([source] if Path(source).exists() else [])
    if not matches:
        raise DataError(f"no file or directory matches {source!r}")
    first = Path(matches[0])
    kind = "parquet" if first.is_dir() else _KINDS.get(first.suffix.lower())
    if kind is None:
        raise DataError(f"cannot read {first.name!r} with Dask: use Parquet (.parquet, a directory of them) or CSV/TSV files")
    try:
        if kind == "parquet":
            return dd.read_parquet(matches if len(matches) > 1 else matches[0])
        return dd.read_csv(matches, sep="\t" if kind == "tsv" else ",")
    except Exception as exc:  # noqa: BLE001 - Dask and pyarrow raise many types; report them as data errors
        raise DataError(f"cannot read {source!r} with Dask: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def dask_fit(source: str | None, formula: str, *, reml: bool, scheduler: str | None = None, **kwargs: Any) -> DaskResults:
    """Fit ``formula`` to the files ``source`` on Dask: on the cluster whose scheduler is at ``scheduler``
    (``tcp://host:8786``), else with Dask's local scheduler. Warnings go to the fit's ``warnings`` (the summary's notes)."""
    from . import lmer

    if not source:
        raise DataError("--dask needs DATA: a Parquet file, a directory of them or a glob pattern such as 'data/*.parquet'")
    ddf = read_dask(source)
    client = None
    if scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise DataError("--scheduler needs Dask's distributed scheduler: pip install 'mixedmodels[dask]'") from None
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise DataError(f"cannot connect to the Dask scheduler at {scheduler!r}: {exc}") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return lmer(formula, ddf, REML=reml, data_name=source, **kwargs)
    finally:
        if client is not None:
            client.close()
