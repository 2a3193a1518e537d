"""Command line: ``mixedmodels fit DATA --formula F [--ml] [--json]``.

Errors are reported as one line on standard error with exit code 2 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence

from .exceptions import MixedModelsError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        sys.stderr.write(f"mixedmodels: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mixedmodels", description="Linear mixed-effects models with lme4 formulas.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    fit = sub.add_parser("fit", help="fit a linear mixed model and print its summary")
    fit.add_argument("data", help="CSV, TSV, Parquet or Feather file, or a bundled dataset name (e.g. sleepstudy)")
    fit.add_argument("--formula", "-f", required=True, help="lme4 formula, e.g. 'Reaction ~ Days + (Days | Subject)'")
    fit.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")
    fit.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")
    fit.add_argument("--debug", action="store_true", help="show tracebacks")
    data = sub.add_parser("datasets", help="list the bundled datasets")
    data.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    return parser


def _fit(args: argparse.Namespace) -> int:
    from .io import read_data
    from .model import LinearMixedModel

    frame, name = read_data(args.data)
    with warnings.catch_warnings():
        # warnings are reported in the summary / JSON rather than on stderr
        warnings.simplefilter("ignore")
        result = LinearMixedModel.from_formula(args.formula, frame, reml=not args.ml, data_name=name).fit()
    if args.json:
        sys.stdout.write(json.dumps(result.to_dict(), allow_nan=False) + "\n")
    else:
        sys.stdout.write(str(result.summary()))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mixedmodels`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "fit":
            return _fit(args)
        from .datasets import list_datasets

        sys.stdout.write("\n".join(list_datasets()) + "\n")
        return 0
    except MixedModelsError as exc:
        if args.debug:
            raise
        sys.stderr.write(f"mixedmodels: error: {exc}\n")
        return 2
    except Exception as exc:  # noqa: BLE001 - never a traceback for the user
        if args.debug:
            raise
        sys.stderr.write(f"mixedmodels: error: unexpected {type(exc).__name__}: {exc}\n")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
