"""The ``fit-many`` command: summary, JSON, --out and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mixedmodels.cli import main
from mixedmodels.many import fit_many

DATA = Path(__file__).parents[1] / "reference" / "data" / "fit_many.csv"
FORMULA = "~ x + condition + (1 | individual) + (1 | batch)"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_summary_and_out(capsys, tmp_path):
    out_file = tmp_path / "genes.csv"
    code, out, err = run(capsys, "fit-many", str(DATA), "--formula", FORMULA, "--responses", "gene_0*", "--out", str(out_file), "--quiet")
    assert code == 0 and err == ""
    assert out.startswith("Linear mixed model fitted by REML to 9 responses")
    assert "observations per response: 117 to 120" in out and f"wrote {out_file}" in out
    table = pd.read_csv(out_file, index_col=0)
    expected = fit_many(FORMULA, pd.read_csv(DATA), "gene_0*").table()
    assert list(table.index) == list(expected.index)
    pd.testing.assert_series_equal(table["x.p_adjusted"], expected["x.p_adjusted"], rtol=1e-12)


def test_json_and_jobs(capsys):
    code, out, _ = run(capsys, "fit-many", str(DATA), "--formula", FORMULA, "--responses", "gene_01,gene_1*", "--json", "--jobs", "2", "--ml")
    assert code == 0
    d = json.loads(out)
    assert d["method"] == "ML" and d["n_responses"] == 4 and d["ddf_method"] == "Satterthwaite"
    first = d["responses"][0]
    assert first["response"] == "gene_01" and [f["term"] for f in first["fixed"]] == ["(Intercept)", "x", "conditiontrt"]
    assert set(first["variance_fractions"]) == {"individual", "batch", "x", "conditiontrt", "Residuals"}


@pytest.mark.parametrize("argv,message", [
    (["--formula", "gene_01 ~ x + (1 | individual)", "--responses", "gene_*"], "one-sided formula"),
    (["--formula", FORMULA, "--responses", "protein_*"], "no column of the data matches"),
    (["--formula", FORMULA, "--responses", "gene_*", "--out", "x.xlsx"], "use a .csv, .tsv or .parquet file"),
])
def test_errors_one_line_exit_2(capsys, argv, message):
    code, out, err = run(capsys, "fit-many", str(DATA), *argv, "--quiet")
    assert code == 2 and out == ""
    assert err.startswith("mixedmodels: error:") and message in err and err.count("\n") == 1
