"""GRMs, null models and association scans against GEMMA 0.98.5 (tests/reference/genetics_gemma.py).

GEMMA prints the null model with 6 significant digits, beta, se, λ and p-values with 7, allele frequencies
with 3 decimals, and computes λ to about 1e-5 (Newton's iteration stopped at a relative step of 1e-5); the
tolerances below are those print and search precisions, or tighter.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.genetics import grm, grm_loco, gwas
from mixedmodels.genetics.gwas import COLUMNS, double_centre

REF = Path(__file__).parents[1] / "reference"
DATA = REF / "data" / "gwas"
GEMMA = json.loads((REF / "genetics_gemma.json").read_text())
SCANS = {
    "lmm4": {"covar": DATA / "sim.covar"},
    "lmm4_std": {"covar": DATA / "sim.covar", "grm_method": "standardised"},
    "lmm4_nocovar": {},
    "lmm4_loco1": {"covar": DATA / "sim.covar", "loco": True},
}


def _check_grm(K: np.ndarray, ref: dict) -> None:
    assert K.shape == (ref["n"], ref["n"])
    assert np.diag(K) == pytest.approx(ref["diag"], abs=1e-8)
    assert K.sum(axis=1) == pytest.approx(ref["rowsums"], abs=1e-7)
    assert K[:40, :40] == pytest.approx(np.array(ref["block"]), abs=1e-8)
    i, j, v = np.array(ref["entries"]).T
    assert K[i.astype(int), j.astype(int)] == pytest.approx(v, abs=1e-8)


@pytest.mark.parametrize(("method", "key"), [("centred", "centred"), ("standardised", "standardised")])
def test_grm_matches_gemma(method: str, key: str) -> None:
    kin = grm(DATA / "sim", method=method)
    assert kin.n_snps == 1962  # 2,000 less 10 monomorphic, 18 rare, 10 with 8% missing
    _check_grm(kin.matrix, GEMMA["grm"][key])


def test_loco_grm_matches_gemma() -> None:
    loco = grm_loco(DATA / "sim")
    _check_grm(loco["1"].matrix, GEMMA["grm"]["loco1"])
    direct = grm(DATA / "sim", exclude_chromosomes=["1"])
    assert loco["1"].matrix == pytest.approx(direct.matrix, abs=1e-12)
    assert loco["2"].n_snps + loco["1"].n_snps == 1962


@pytest.fixture(scope="module", params=list(SCANS))
def scan(request) -> tuple[str, mm.genetics.GwasResult, pd.DataFrame]:
    name = request.param
    result = gwas(DATA / "sim", DATA / "sim.pheno", exact=True, **SCANS[name])
    return name, result, pd.read_csv(DATA / f"{name}.assoc.txt", sep="\t")


def test_null_model_matches_gemma_log(scan) -> None:
    name, result, _ = scan
    null = result.null["1" if "loco" in name else "all"]
    log = GEMMA["lmm"][name]
    for ours, theirs in [(null.pve, "pve"), (null.se_pve, "se_pve"), (null.vg, "vg"), (null.ve, "ve")]:
        assert ours == pytest.approx(log[theirs], rel=1e-4)
    assert null.beta == pytest.approx(log["beta"], rel=1e-4)
    assert null.se_beta == pytest.approx(log["se_beta"], rel=1e-4)
    assert null.logl_remle == pytest.approx(log["remle_loglik"], abs=1e-3)
    assert null.logl_mle == pytest.approx(log["mle_loglik"], abs=1e-3)


def test_scan_matches_gemma_lmm4(scan) -> None:
    name, result, ref = scan
    table = result.table
    if "loco" in name:
        table = table[table["chr"] == "1"]
    tested = table.dropna(subset=["p_wald"]).set_index("rs")
    assert sorted(tested.index) == sorted(ref["rs"])  # GEMMA leaves filtered SNPs out; ours are NaN rows
    ours = tested.loc[ref["rs"]]
    assert (ours["n_miss"].to_numpy() == ref["n_miss"].to_numpy()).all()
    assert (ours["allele1"].to_numpy() == ref["allele1"].to_numpy()).all()
    assert (ours["allele0"].to_numpy() == ref["allele0"].to_numpy()).all()
    assert ours["ps"].to_numpy() == pytest.approx(ref["ps"].to_numpy())
    assert ours["af"].to_numpy() == pytest.approx(ref["af"].to_numpy(), abs=5.01e-4)
    # β to 1e-4 of its own size or of its SE, whichever is larger (GEMMA's λ is accurate to ~1e-5)
    gap = np.abs(ours["beta"].to_numpy() - ref["beta"].to_numpy())
    assert np.all(gap <= 1e-4 * np.maximum(np.abs(ref["beta"].to_numpy()), ref["se"].to_numpy()))
    assert ours["se"].to_numpy() == pytest.approx(ref["se"].to_numpy(), rel=1e-4)
    for col in ("l_remle", "l_mle"):
        assert ours[col].to_numpy() == pytest.approx(ref[col].to_numpy(), rel=1e-4)
    assert ours["logl_H1"].to_numpy() == pytest.approx(ref["logl_H1"].to_numpy(), abs=2e-4)
    for col in ("p_wald", "p_lrt", "p_score"):
        assert ours[col].to_numpy() == pytest.approx(ref[col].to_numpy(), rel=1e-3, abs=1e-8)


def test_filtered_snps_are_nan_rows() -> None:
    result = gwas(DATA / "sim", DATA / "sim.pheno", DATA / "sim.covar")
    table = result.table
    assert len(table) == 2000 and list(table.columns) == COLUMNS
    mono = table[table["af"].isin([0.0, 1.0])]
    assert len(mono) >= 10 and mono["p_wald"].isna().all() and mono["beta"].isna().all()
    high_miss = table[table["n_miss"] > 0.05 * result.info["n_analysed"]]
    assert high_miss["p_wald"].isna().all() and len(high_miss) >= 10
    assert result.info["snps_tested"] + result.info["snps_filtered"] == 2000


def test_lmer_fast_path_reproduces_gemma_null_model() -> None:
    """The general model with GEMMA's centred GRM of the analysed individuals: GEMMA's λ, pve and se(pve)."""
    pheno = pd.read_csv(DATA / "sim.pheno", sep=r"\s+")
    covar = pd.read_csv(DATA / "sim.covar", sep=r"\s+")
    data = pheno.merge(covar, on=["FID", "IID"]).dropna()
    K = grm(DATA / "sim").subset(data["IID"])
    Kc = mm.genetics.Kinship(K.ids, matrix=double_centre(K.matrix))
    fit = mm.lmer("y ~ sex + age + (1 | IID)", data, covariance={"IID": Kc})
    assert fit.fit_record.optimizer.startswith("FaST-LMM")
    log = GEMMA["lmm"]["lmm4"]
    vg, ve = fit.varcorr["vcov"].to_numpy()
    assert vg == pytest.approx(log["vg"], rel=1e-4) and ve == pytest.approx(log["ve"], rel=1e-4)
    h2 = fit.heritability()
    assert h2["h2"].iloc[0] == pytest.approx(log["pve"], rel=1e-4)
    assert h2["se"].iloc[0] == pytest.approx(log["se_pve"], rel=1e-3)
    assert fit.beta == pytest.approx(log["beta"], rel=1e-4)
    assert fit.bse.to_numpy() == pytest.approx(log["se_beta"], rel=1e-4)
    # GEMMA's REML log-likelihood adds ½ log|X'X| to lme4's
    gemma_reml = fit.loglik + 0.5 * np.linalg.slogdet(fit.design.X.T @ fit.design.X)[1]
    assert gemma_reml == pytest.approx(log["remle_loglik"], abs=1e-3)
