"""Association scans and GRMs against GEMMA, timed in the same run on the same files.

Usage: ``python benchmarks/bench_gwas.py [--reps N] [--large] [--keep DIR]``

Data: the reference set of tests/reference/data/gwas (500 individuals, 2,000 SNPs, 2 chromosomes, nuclear
families) and, with ``--large``, a simulated set of 2,000 individuals (400 families of 2 founders and 3
children) × 50,000 SNPs on 2 chromosomes (1% missing genotypes, 200 causal SNPs, h² ≈ 0.5; seed 7).

Each command runs as its own process under GNU ``/usr/bin/time`` (wall seconds and peak resident memory of
that process), ``--reps`` times (default 3), and the medians are printed:

* GRM: ``gemma -gk 1`` against ``mixedmodels grm`` (both write the n × n text matrix);
* scan with that GRM: ``gemma -lmm 4`` (λ re-estimated per SNP; Wald, LRT and score) against
  ``mixedmodels gwas --exact`` (the same tests) and ``mixedmodels gwas`` (at the null model's λ);
* end to end from the genotypes: GEMMA's two steps against one ``mixedmodels gwas --exact`` that builds
  its GRM.

GEMMA uses OpenBLAS's default threads; mixedmodels runs its linear algebra on one BLAS thread (its engine
policy, docs/design.md) and bed-reader decodes with its default threads. The load average at the start
is printed: other work on the machine slows both.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "tests" / "reference" / "data" / "gwas" / "sim"


def simulate_large(folder: Path, n_fam: int = 400, m: int = 50_000, seed: int = 7) -> Path:
    """Write ``folder/large.{bed,bim,fam,pheno,covar}`` (module docstring)."""
    from bed_reader import to_bed

    rng = np.random.default_rng(seed)
    freq = rng.uniform(0.05, 0.5, m)
    founders = rng.random((n_fam, 2, 2, m)) < freq  # family, parent, haplotype, SNP
    cols = np.arange(m)
    kids = np.empty((n_fam, 3, 2, m), dtype=bool)
    for k in range(3):
        for parent in range(2):
            kids[:, k, parent] = founders[np.arange(n_fam)[:, None], parent, rng.integers(0, 2, (n_fam, m)), cols]
    G = np.concatenate([founders, kids], axis=1).sum(axis=2).reshape(n_fam * 5, m).astype(np.int8)
    n = G.shape[0]
    causal = rng.choice(m, 200, replace=False)
    Gc = G[:, causal].astype(float)
    z = (Gc - Gc.mean(axis=0)) / Gc.std(axis=0)
    g = z @ rng.normal(0, 1, 200)
    sex = rng.integers(0, 2, n)
    age = np.round(rng.normal(45, 12, n), 1)
    y = 0.4 * sex + 0.02 * age + g / g.std() + rng.normal(0, 1, n)
    G[rng.random(G.shape) < 0.01] = -127
    fid = [f"f{i // 5:04d}" for i in range(n)]
    iid = [f"i{i:05d}" for i in range(n)]
    prefix = folder / "large"
    to_bed(prefix.with_suffix(".bed"), G, properties={
        "fid": fid, "iid": iid, "sid": [f"snp{j + 1}" for j in range(m)], "chromosome": np.repeat(["1", "2"], m // 2),
        "bp_position": np.tile(np.arange(1, m // 2 + 1) * 100, 2), "allele_1": ["A"] * m, "allele_2": ["G"] * m,
        "pheno": [f"{v:.6f}" for v in y],
    })
    prefix.with_suffix(".pheno").write_text("FID IID y\n" + "".join(f"{a} {b} {v:.6f}\n" for a, b, v in zip(fid, iid, y)))
    prefix.with_suffix(".covar").write_text(
        "FID IID sex age\n" + "".join(f"{a} {b} {s} {t}\n" for a, b, s, t in zip(fid, iid, sex, age)))
    return prefix


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one run of ``cmd`` (GNU time)."""
    out = cwd / "time.txt"
    proc = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", str(out), *cmd], cwd=cwd, env=env, check=False,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    wall, rss = out.read_text().split()[-2:]
    return float(wall), float(rss) / 1024.0


def median_run(cmd: list[str], cwd: Path, env: dict[str, str], reps: int) -> tuple[float, float]:
    runs = [timed(cmd, cwd, env) for _ in range(reps)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def gemma_covariates(prefix: Path, work: Path) -> Path:
    """GEMMA's -c file: a column of 1s and the covariates, rows in .fam order (missing as NA)."""
    covar = pd.read_csv(f"{prefix}.covar", sep=r"\s+")
    fam = pd.read_csv(f"{prefix}.fam", sep=r"\s+", header=None, names=["FID", "IID", "f", "m", "s", "y"], dtype=str)
    covar[["FID", "IID"]] = covar[["FID", "IID"]].astype(str)
    merged = fam[["FID", "IID"]].merge(covar, on=["FID", "IID"], how="left")
    path = work / "gemma_covar.txt"
    values = merged.drop(columns=["FID", "IID"])
    values.insert(0, "one", 1)
    values.to_csv(path, sep=" ", header=False, index=False, na_rep="NA")
    return path


def bench(name: str, prefix: Path, reps: int, work: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    mm = [sys.executable, "-m", "mixedmodels"]
    for ext in (".bed", ".bim", ".fam"):
        shutil.copy(f"{prefix}{ext}", work / f"data{ext}")
    if name == "small":  # GEMMA's -gk filters over individuals with a phenotype: give every one of them one
        fam = (work / "data.fam").read_text().replace(" NA\n", " 0\n")
        (work / "data.fam").write_text(fam)
    gcov = gemma_covariates(prefix, work)
    pheno, covar = f"{prefix}.pheno", f"{prefix}.covar"
    lmm_fam = work / "lmm"
    for ext in (".bed", ".bim"):
        shutil.copy(f"{prefix}{ext}", f"{lmm_fam}{ext}")
    shutil.copy(f"{prefix}.fam", f"{lmm_fam}.fam")
    rows = []
    g_gk = median_run(["gemma", "-bfile", "data", "-gk", "1", "-o", "gk"], work, env, reps)
    o_gk = median_run([*mm, "grm", "--bfile", "data", "--out", "ours.cXX.txt"], work, env, reps)
    rows.append(("GRM (-gk 1 / grm)", g_gk, o_gk))
    kfile = str(work / "output" / "gk.cXX.txt")
    g_lmm = median_run(["gemma", "-bfile", "lmm", "-k", kfile, "-c", str(gcov), "-lmm", "4", "-o", "s"], work, env, reps)
    o_exact = median_run([*mm, "gwas", "--bfile", "lmm", "--pheno", pheno, "--covar", covar, "--kinship", kfile,
                          "--exact", "--out", "exact.tsv"], work, env, reps)
    o_null = median_run([*mm, "gwas", "--bfile", "lmm", "--pheno", pheno, "--covar", covar, "--kinship", kfile,
                         "--out", "null.tsv"], work, env, reps)
    rows.append(("scan, lambda per SNP (-lmm 4 / --exact)", g_lmm, o_exact))
    rows.append(("scan, null lambda (-lmm 4 / default)", g_lmm, o_null))
    o_end = median_run([*mm, "gwas", "--bfile", "lmm", "--pheno", pheno, "--covar", covar, "--exact",
                        "--out", "end.tsv"], work, env, reps)
    rows.append(("genotypes to results (-gk 1 + -lmm 4 / gwas --exact)", (g_gk[0] + g_lmm[0], max(g_gk[1], g_lmm[1])), o_end))
    ours = pd.read_csv(work / "exact.tsv", sep="\t").set_index("rs")
    theirs = pd.read_csv(work / "output" / "s.assoc.txt", sep="\t").set_index("rs")
    both = ours.loc[theirs.index]
    gap = {c: float(np.nanmax(np.abs(both[c] / theirs[c] - 1.0))) for c in ("se", "p_wald", "p_lrt", "p_score")}
    print(f"\n{name}: {len(theirs)} SNPs tested by both; largest relative differences (--exact vs -lmm 4): "
          + ", ".join(f"{k} {v:.1e}" for k, v in gap.items()))
    print(f"{'':56s} {'GEMMA s':>9s} {'ours s':>9s} {'ratio':>7s} {'GEMMA MB':>9s} {'ours MB':>8s}")
    for label, (gw, gm), (ow, om) in rows:
        print(f"{label:56s} {gw:9.2f} {ow:9.2f} {gw / ow:6.2f}x {gm:9.0f} {om:8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--large", action="store_true", help="also 2,000 individuals × 50,000 SNPs")
    parser.add_argument("--keep", type=Path, help="keep the simulated large data and outputs here")
    args = parser.parse_args()
    if shutil.which("gemma") is None:
        raise SystemExit("GEMMA is not installed (Debian: apt-get install gemma)")
    version = subprocess.run(["gemma", "-h"], check=False, capture_output=True, text=True).stdout.splitlines()
    print(next(v for v in version if v.startswith("GEMMA")).strip(), f"| {os.cpu_count()} cores | load average "
          + " ".join(f"{v:.1f}" for v in os.getloadavg()))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "small").mkdir()
        bench("small (500 x 2,000)", SMALL, args.reps, tmp / "small")
        if args.large:
            folder = args.keep or tmp
            folder.mkdir(parents=True, exist_ok=True)
            prefix = simulate_large(folder)
            (folder / "run").mkdir(exist_ok=True)
            bench("large (2,000 x 50,000)", prefix, args.reps, folder / "run")


if __name__ == "__main__":
    main()
