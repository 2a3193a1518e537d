"""Command-line subcommands ``gwas`` and ``grm`` (registered by :mod:`mixedmodels.cli`).

``mixedmodels gwas --bfile PREFIX [--pheno FILE] [--covar FILE] [--kinship FILE] [--loco] [--exact] --out FILE``
writes GEMMA's ``.assoc.txt`` columns to ``FILE`` (``.tsv`` or ``.parquet``) and the null model and run
information to ``FILE`` with the suffix ``.log.json``; ``mixedmodels grm --bfile PREFIX --out FILE`` writes a
GRM as GEMMA's ``.cXX.txt``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..exceptions import DataError


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """The ``gwas`` and ``grm`` subcommands."""
    g = sub.add_parser("gwas", help="genome-wide association scan with a linear mixed model (GEMMA's -lmm)")
    g.add_argument("--bfile", required=True, metavar="PREFIX", help="PLINK fileset PREFIX.bed/.bim/.fam")
    g.add_argument("--pheno", metavar="FILE", help="phenotypes 'FID IID y ...' (header optional; NA or -9 missing); "
                                                   "default: the .fam's sixth column")
    g.add_argument("--pheno-name", metavar="COL", help="column of --pheno (default: the first)")
    g.add_argument("--covar", metavar="FILE", help="covariates 'FID IID c1 c2 ...'; an intercept is always added")
    g.add_argument("--kinship", metavar="FILE", help="GRM as GEMMA's .cXX.txt (rows in .fam order); default: built "
                                                     "from the genotypes (--grm)")
    g.add_argument("--grm", choices=["centred", "standardised"], default="centred",
                   help="GRM built from the genotypes: GEMMA's -gk 1 (default) or -gk 2")
    g.add_argument("--loco", action="store_true", help="leave-one-chromosome-out GRMs")
    g.add_argument("--exact", action="store_true", help="re-estimate the variance ratio for every SNP (GEMMA -lmm 4)")
    g.add_argument("--maf", type=float, default=0.01, help="minimum allele frequency (default 0.01, GEMMA's)")
    g.add_argument("--miss", type=float, default=0.05, help="largest fraction of missing genotypes (default 0.05)")
    g.add_argument("--chunk-size", type=int, default=1024, help="SNPs per block (default 1024)")
    g.add_argument("--out", required=True, metavar="FILE", help="results, .tsv or .parquet")
    g.add_argument("--debug", action="store_true", help="show tracebacks")

    k = sub.add_parser("grm", help="genomic relationship matrix from PLINK genotypes (GEMMA's -gk), as a .cXX.txt")
    k.add_argument("--bfile", required=True, metavar="PREFIX", help="PLINK fileset PREFIX.bed/.bim/.fam")
    k.add_argument("--method", choices=["centred", "standardised"], default="centred",
                   help="GEMMA's -gk 1 (default) or -gk 2")
    k.add_argument("--exclude-chromosome", action="append", default=[], metavar="CHR",
                   help="leave this chromosome's SNPs out (a LOCO GRM); repeatable")
    k.add_argument("--maf", type=float, default=0.01, help="minimum allele frequency (default 0.01)")
    k.add_argument("--miss", type=float, default=0.05, help="largest fraction of missing genotypes (default 0.05)")
    k.add_argument("--out", required=True, metavar="FILE", help="output matrix (tab-separated, .fam order)")
    k.add_argument("--debug", action="store_true", help="show tracebacks")


def _writable(path: str) -> Path:
    out = Path(path)
    if not out.parent.exists():
        raise DataError(f"cannot write {path!r}: directory {str(out.parent)!r} does not exist")
    return out


def run_gwas(args: argparse.Namespace) -> int:
    """``mixedmodels gwas``."""
    from .gwas import gwas

    out = _writable(args.out)
    if args.chunk_size < 1:
        raise DataError(f"--chunk-size must be positive, got {args.chunk_size}")
    result = gwas(
        args.bfile, args.pheno, args.covar, args.kinship, pheno_name=args.pheno_name, loco=args.loco,
        exact=args.exact, grm_method=args.grm, maf=args.maf, miss=args.miss, chunk_size=args.chunk_size, out=out,
    )
    log = out.with_suffix(".log.json")
    log.write_text(json.dumps(result.to_dict(), indent=1, allow_nan=True))
    info = result.info
    null = next(iter(result.null.values()))
    what = "per chromosome (LOCO)" if args.loco else f"pve {null.pve:.4g} (se {null.se_pve:.2g}), lambda {null.lambda_remle:.4g}"
    sys.stdout.write(
        f"mixedmodels gwas: {info['n_analysed']} individuals, {info['snps_tested']} SNPs tested, "
        f"{info['snps_filtered']} filtered; null model {what}; wrote {out} and {log} in {info['seconds']:.1f} s\n"
    )
    return 0


def run_grm(args: argparse.Namespace) -> int:
    """``mixedmodels grm``."""
    from .grm import grm, write_kinship

    out = _writable(args.out)
    kin = grm(args.bfile, method=args.method, maf=args.maf, miss=args.miss, exclude_chromosomes=args.exclude_chromosome)
    write_kinship(kin, out)
    sys.stdout.write(f"mixedmodels grm: {kin.size} individuals, {kin.n_snps} SNPs; wrote {out}\n")
    return 0
