"""Reference GRMs and association scans by GEMMA on a simulated PLINK data set, used by
tests/genetics/test_gemma_reference.py.

Regenerate (from the repository root; needs GEMMA, Debian: ``apt-get install gemma``, and bed-reader)::

    PYTHONPATH=src python tests/reference/genetics_gemma.py

It simulates (numpy seed 20250502) 100 nuclear families of 2 unrelated founders and 3 children (500
individuals) genotyped at 2,000 unlinked SNPs on chromosomes 1 and 2 (1,000 each): founder allele frequencies
uniform on (0.05, 0.5), children get one allele of each parent at random; 1% of genotypes missing, 10 SNPs with
8% missing (over GEMMA's 5% limit), 10 monomorphic SNPs and 20 with a frequency of 0.004 (mostly under GEMMA's
1% MAF limit). The phenotype is 0.5 sex + 0.03 age + 10 causal SNPs (effect 0.3) + a polygenic part from all
SNPs (h² ≈ 0.4) + noise; 20 phenotypes are missing. It writes tests/reference/data/gwas/sim.{bed,bim,fam}
(phenotype in the .fam, "NA" where missing), sim.pheno (FID IID y, PLINK style) and sim.covar (FID IID sex age),
then runs GEMMA in a temporary directory:

* ``-gk 1`` and ``-gk 2`` (centred and standardised GRMs) on a copy whose .fam has every
  phenotype (GEMMA computes the SNP filters of -gk over the individuals with a phenotype; with all of them it
  uses the same SNPs as mixedmodels' GRM builder, which filters over every individual of the .bed);
* ``-lmm 4`` with covariates (1, sex, age) and the -gk 1 GRM; the same with the -gk 2 GRM; without covariates;
* ``-gk 1 -loco 1`` and ``-lmm 4 -loco 1`` (chromosome 1 left out of the GRM, its SNPs tested) from the same
  genotypes written in BIMBAM format: GEMMA 0.98.5 ignores -loco when it reads a .bed for -gk.

Stored: tests/reference/genetics_gemma.json with each GRM's diagonal, row sums, its first 40 × 40 block and 400
random entries (GEMMA writes 10 significant digits), each scan's null-model log (pve, se(pve), vg, ve, beta,
se(beta), REML and ML log-likelihoods, as GEMMA prints them with 6 digits), and GEMMA's version; and
tests/reference/data/gwas/<scan>.assoc.txt as GEMMA wrote them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from importlib.metadata import version as pkg_version
from pathlib import Path

import numpy as np
from bed_reader import to_bed

HERE = Path(__file__).parent
OUT = HERE / "data" / "gwas"
SEED = 20250502


def simulate() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    n_fam, m = 100, 2000
    freq = rng.uniform(0.05, 0.5, m)
    mono = rng.choice(m, 10, replace=False)
    rest = np.setdiff1d(np.arange(m), mono)
    rare = rng.choice(rest, 20, replace=False)
    freq[mono] = 0.0
    freq[rare] = 0.004
    haps = []  # two haplotypes (0/1 = carries A1) per individual
    fid, iid, father, mother, sex = [], [], [], [], []
    for f in range(n_fam):
        founders = [rng.random((2, m)) < freq for _ in range(2)]
        kids = []
        for _ in range(3):
            pick = [rng.integers(0, 2, m) for _ in range(2)]
            kids.append(np.stack([founders[0][pick[0], np.arange(m)], founders[1][pick[1], np.arange(m)]]))
        for j, h in enumerate(founders + kids):
            haps.append(h)
            fid.append(f"fam{f + 1:03d}")
            iid.append(f"fam{f + 1:03d}_{j + 1}")
            father.append(f"fam{f + 1:03d}_1" if j >= 2 else "0")
            mother.append(f"fam{f + 1:03d}_2" if j >= 2 else "0")
            sex.append(1 if j == 0 else 2 if j == 1 else int(rng.integers(1, 3)))
    G = np.array([h.sum(axis=0) for h in haps], dtype=float)  # n × m, count of A1
    n = G.shape[0]
    G[rng.random(G.shape) < 0.01] = np.nan
    many = rng.choice(np.setdiff1d(rest, rare), 10, replace=False)
    for j in many:
        G[rng.choice(n, int(0.08 * n), replace=False), j] = np.nan
    causal = rng.choice(np.setdiff1d(rest, np.r_[rare, many]), 10, replace=False)
    Gi = np.where(np.isnan(G), np.nanmean(G, axis=0), G)
    Z = Gi - Gi.mean(axis=0)
    sd = Z.std(axis=0)
    Zs = np.where(sd > 0, Z / np.where(sd > 0, sd, 1.0), 0.0)
    poly = Zs @ rng.normal(0.0, np.sqrt(0.4 / m), m)
    sex01 = (np.array(sex) == 2).astype(float)
    age = np.round(rng.normal(40.0, 10.0, n), 1)
    y = 0.5 * sex01 + 0.03 * age + Gi[:, causal] @ np.full(10, 0.3) + poly / poly.std() * 0.8 + rng.normal(0.0, 1.0, n)
    y = np.round(y, 6)
    missing = rng.choice(n, 20, replace=False)
    return {
        "G": G, "fid": np.array(fid), "iid": np.array(iid), "father": np.array(father), "mother": np.array(mother),
        "sex": np.array(sex), "sex01": sex01, "age": age, "y": y, "missing": missing, "causal": causal,
        "chrom": np.repeat(["1", "2"], m // 2), "pos": np.tile(np.arange(1, m // 2 + 1) * 1000, 2),
        "a1": rng.choice(list("ACGT"), m), "a2": None,
    }


def write_plink(sim: dict, prefix: Path, with_missing: bool) -> None:
    m = sim["G"].shape[1]
    a1 = sim["a1"]
    a2 = np.array([{"A": "G", "C": "T", "G": "A", "T": "C"}[a] for a in a1])
    sid = [f"rs{j + 1}" for j in range(m)]
    to_bed(
        prefix.with_suffix(".bed"), sim["G"],
        properties={"fid": sim["fid"], "iid": sim["iid"], "sid": sid, "chromosome": sim["chrom"],
                    "bp_position": sim["pos"], "allele_1": a1, "allele_2": a2},
    )
    pheno = [f"{v:.6f}" for v in sim["y"]]
    if with_missing:
        for i in sim["missing"]:
            pheno[i] = "NA"
    fam = [f"{a} {b} {c} {d} {e} {p}" for a, b, c, d, e, p in
           zip(sim["fid"], sim["iid"], sim["father"], sim["mother"], sim["sex"], pheno)]
    prefix.with_suffix(".fam").write_text("\n".join(fam) + "\n")


def grm_summary(path: Path, rng: np.random.Generator) -> dict:
    K = np.loadtxt(path)
    n = K.shape[0]
    i, j = np.triu_indices(n, 1)
    pick = rng.choice(i.size, 400, replace=False)
    return {
        "n": n, "diag": np.diag(K).tolist(), "rowsums": K.sum(axis=1).tolist(), "block": K[:40, :40].tolist(),
        "entries": [[int(i[p]), int(j[p]), float(K[i[p], j[p]])] for p in pick],
    }


def read_log(path: Path) -> dict:
    text = path.read_text()

    def number(key: str) -> float:
        return float(re.search(rf"## {re.escape(key)} = +(\S+)", text).group(1))

    def numbers(key: str) -> list[float]:
        return [float(v) for v in re.search(rf"## {re.escape(key)} = +(.+)", text).group(1).split()]

    return {
        "remle_loglik": number("REMLE log-likelihood in the null model"),
        "mle_loglik": number("MLE log-likelihood in the null model"),
        "pve": number("pve estimate in the null model"), "se_pve": number("se(pve) in the null model"),
        "vg": number("vg estimate in the null model"), "ve": number("ve estimate in the null model"),
        "beta": numbers("beta estimate in the null model"), "se_beta": numbers("se(beta)"),
    }


def main() -> None:
    sim = simulate()
    OUT.mkdir(parents=True, exist_ok=True)
    write_plink(sim, OUT / "sim", with_missing=True)
    y = sim["y"].astype(object)
    y[sim["missing"]] = "NA"
    rows = [f"{a} {b} {v if isinstance(v, str) else f'{v:.6f}'}" for a, b, v in zip(sim["fid"], sim["iid"], y)]
    (OUT / "sim.pheno").write_text("FID IID y\n" + "\n".join(rows) + "\n")
    rows = [f"{a} {b} {int(s)} {g:.1f}" for a, b, s, g in zip(sim["fid"], sim["iid"], sim["sex01"], sim["age"])]
    (OUT / "sim.covar").write_text("FID IID sex age\n" + "\n".join(rows) + "\n")
    banner = subprocess.run(["gemma", "-h"], check=False, capture_output=True, text=True).stdout
    version = next(line for line in banner.splitlines() if line.startswith("GEMMA")).strip()
    rng = np.random.default_rng(1)
    ref: dict = {"provenance": {"gemma": version, "bed_reader": pkg_version("bed-reader"), "numpy": np.__version__,
                                "seed": SEED, "causal": sorted(int(c) + 1 for c in sim["causal"])},
                 "grm": {}, "lmm": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for ext in (".bed", ".bim"):
            shutil.copy(OUT / f"sim{ext}", tmp / f"full{ext}")
            shutil.copy(OUT / f"sim{ext}", tmp / f"sim{ext}")
        shutil.copy(OUT / "sim.fam", tmp / "sim.fam")
        write_plink(sim, tmp / "full", with_missing=False)
        cov = "\n".join(f"1 {int(s)} {g:.1f}" for s, g in zip(sim["sex01"], sim["age"])) + "\n"
        (tmp / "covar.txt").write_text(cov)

        def gemma(*args: str) -> None:
            subprocess.run(["gemma", *args], cwd=tmp, check=True, capture_output=True)

        gemma("-bfile", "full", "-gk", "1", "-o", "gk1")
        gemma("-bfile", "full", "-gk", "2", "-o", "gk2")
        # GEMMA 0.98.5 ignores -loco when it builds a GRM from a .bed (PlinkKin reads every SNP), so the LOCO
        # reference is computed from the same genotypes in BIMBAM format (A1 counts, "NA" missing)
        G = sim["G"]
        bim = (OUT / "sim.bim").read_text().split("\n")
        lines = []
        for j, row in enumerate(r.split("\t") for r in bim if r):
            g = ", ".join("NA" if np.isnan(v) else f"{int(v)}" for v in G[:, j])
            lines.append(f"{row[1]}, {row[4]}, {row[5]}, {g}")
        (tmp / "sim.geno.txt").write_text("\n".join(lines) + "\n")
        (tmp / "sim.anno.txt").write_text("".join(f"{r.split()[1]}, {r.split()[3]}, {r.split()[0]}\n" for r in bim if r))
        (tmp / "full.pheno.txt").write_text("".join(f"{v:.6f}\n" for v in sim["y"]))
        (tmp / "sim.pheno.txt").write_text("".join(f"{v if isinstance(v, str) else f'{v:.6f}'}\n" for v in y))
        gemma("-g", "sim.geno.txt", "-p", "full.pheno.txt", "-a", "sim.anno.txt", "-gk", "1", "-loco", "1", "-o", "loco1")
        ref["grm"]["centred"] = grm_summary(tmp / "output" / "gk1.cXX.txt", rng)
        ref["grm"]["standardised"] = grm_summary(tmp / "output" / "gk2.sXX.txt", rng)
        ref["grm"]["loco1"] = grm_summary(tmp / "output" / "loco1.cXX.txt", rng)
        scans = {
            "lmm4": ["-k", "output/gk1.cXX.txt", "-c", "covar.txt"],
            "lmm4_std": ["-k", "output/gk2.sXX.txt", "-c", "covar.txt"],
            "lmm4_nocovar": ["-k", "output/gk1.cXX.txt"],
        }
        for name, args in scans.items():
            gemma("-bfile", "sim", *args, "-lmm", "4", "-o", name)
            ref["lmm"][name] = read_log(tmp / "output" / f"{name}.log.txt")
            shutil.copy(tmp / "output" / f"{name}.assoc.txt", OUT / f"{name}.assoc.txt")
        scans = {"lmm4_loco1": ["-g", "sim.geno.txt", "-p", "sim.pheno.txt", "-a", "sim.anno.txt",
                                "-k", "output/loco1.cXX.txt", "-c", "covar.txt", "-loco", "1"]}
        for name, args in scans.items():
            gemma(*args, "-lmm", "4", "-o", name)
            ref["lmm"][name] = read_log(tmp / "output" / f"{name}.log.txt")
            shutil.copy(tmp / "output" / f"{name}.assoc.txt", OUT / f"{name}.assoc.txt")
    (HERE / "genetics_gemma.json").write_text(json.dumps(ref, indent=1))


if __name__ == "__main__":
    main()
