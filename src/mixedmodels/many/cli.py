"""The ``fit-many`` command: ``mixedmodels fit-many DATA --formula "~ x + (1 | g)" --responses "gene_*"``."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub, data_options) -> None:
    """Register ``fit-many`` on the command line's subparsers."""
    p = sub.add_parser("fit-many", help="fit one mixed model to many responses (genes, metabolites, voxels) on one design")
    data_options(p)
    p.add_argument("--formula", "-f", required=True, help="one-sided lme4 formula, e.g. '~ x + (1 | individual) + (1 | batch)'")
    p.add_argument("--responses", "-r", required=True,
                   help="response columns: a glob pattern such as 'gene_*' (several separated by commas)")
    p.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")
    p.add_argument("--ddf", default="satterthwaite", choices=["satterthwaite", "none"],
                   help="df and p-values of the t-tests (default: satterthwaite, as lmerTest)")
    p.add_argument("--weights", dest="prior_weights", metavar="COL", help="column of prior (precision) weights, as lme4's weights=")
    p.add_argument("--out", "-o", metavar="FILE", help="write one row per response to FILE (.csv, .tsv or .parquet)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")
    p.add_argument("--jobs", type=int, default=1, help="processes (-1: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def run(args: argparse.Namespace, read) -> int:
    """Fit, then print the summary (or JSON) and write ``--out``."""
    from .fit import fit_many
    from .results import output_format

    if args.out:
        output_format(args.out)  # before the work, not after
    frame, _ = read(args)
    res = fit_many(args.formula, frame, args.responses, REML=not args.ml, ddf=None if args.ddf == "none" else args.ddf,
                   n_jobs=args.jobs, progress=False if args.quiet else None, weights=args.prior_weights)
    if args.out:
        res.write(args.out)
    if args.json:
        sys.stdout.write(json.dumps(res.to_dict(), allow_nan=False) + "\n")
    else:
        sys.stdout.write(res.summary())
        if args.out:
            sys.stdout.write(f"wrote {args.out}\n")
    return 0
