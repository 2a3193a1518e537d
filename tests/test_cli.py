"""The command line: output, JSON keys, input formats and error handling."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels.cli import main

SLEEP = "Reaction ~ Days + (Days | Subject)"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_summary_text(capsys):
    code, out, err = run(capsys, "fit", "sleepstudy", "--formula", SLEEP)
    assert code == 0 and err == ""
    assert out.startswith("Linear mixed model fit by REML ['lmerMod']")
    for piece in ("REML criterion at convergence: 1743.6", "Random effects:", "Fixed effects:", "Number of obs: 180, groups:  Subject, 18"):
        assert piece in out


def test_json_output(capsys):
    code, out, _ = run(capsys, "fit", "sleepstudy", "--formula", SLEEP, "--json")
    assert code == 0
    d = json.loads(out)
    for key in ("formula", "method", "nobs", "n_dropped", "groups", "loglik", "objective", "aic", "bic", "sigma",
                "theta", "fixed_effects", "random_effects", "converged", "singular", "warnings", "optimizer"):
        assert key in d
    assert d["method"] == "REML" and d["nobs"] == 180 and d["n_dropped"] == 0 and d["groups"] == {"Subject": 18}
    assert d["loglik"] == pytest.approx(-871.8141, abs=1e-3)
    assert d["sigma"] == pytest.approx(25.59, abs=0.01)
    assert [f["term"] for f in d["fixed_effects"]] == ["(Intercept)", "Days"]
    assert set(d["fixed_effects"][0]) == {"term", "estimate", "std_error", "t_value", "df", "p_value"}
    re = d["random_effects"]
    assert [(r["group"], r["term1"], r["term2"]) for r in re] == [
        ("Subject", "(Intercept)", None), ("Subject", "Days", None), ("Subject", "(Intercept)", "Days"), ("Residual", None, None)
    ]
    assert re[2]["sd_or_corr"] == pytest.approx(0.0656, abs=1e-3)
    assert d["converged"] is True and d["singular"] is False and d["warnings"] == []
    assert {"name", "evaluations", "seconds"} <= set(d["optimizer"])


def test_ml_flag(capsys):
    _, out, _ = run(capsys, "fit", "sleepstudy", "--formula", SLEEP, "--ml", "--json")
    d = json.loads(out)
    assert d["method"] == "ML" and d["loglik"] == pytest.approx(-875.9697, abs=1e-3)


@pytest.mark.parametrize("suffix", ["csv", "parquet", "feather"])
def test_file_formats(capsys, tmp_path, suffix):
    data = mm.datasets.load("sleepstudy")
    path = tmp_path / f"sleep.{suffix}"
    if suffix == "csv":
        data.to_csv(path, index=False)
    elif suffix == "parquet":
        data.to_parquet(path)
    else:
        data.to_feather(path)
    code, out, _ = run(capsys, "fit", str(path), "--formula", SLEEP, "--json")
    assert code == 0
    assert json.loads(out)["loglik"] == pytest.approx(-871.8141, abs=1e-3)


def test_missing_values_counted(capsys, tmp_path):
    data = mm.datasets.load("sleepstudy")
    data.loc[[1, 20, 40, 60, 80], "Reaction"] = np.nan
    path = tmp_path / "gaps.csv"
    data.to_csv(path, index=False)
    _, out, _ = run(capsys, "fit", str(path), "--formula", SLEEP, "--json")
    d = json.loads(out)
    assert d["n_dropped"] == 5 and d["nobs"] == 175
    assert "5 rows with missing values dropped" in d["warnings"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fit", "no_such_file.csv", "--formula", SLEEP], "no such file"),
        (["fit", "sleepstudy", "--formula", "Reaction ~ Dayz + (1 | Subject)"], "did you mean 'Days'"),
        (["fit", "sleepstudy", "--formula", "Reaction ~ Days + (1 | Subject"], "unbalanced parentheses"),
        (["fit", "sleepstudy"], "--formula"),
        (["fit", "sleepstudy", "--formula", SLEEP, "--bogus"], "unrecognized arguments"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_errors_are_one_line_exit_2(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        raise SystemExit(main(argv))
    out, err = capsys.readouterr()
    assert info.value.code == 2
    assert err.startswith("mixedmodels: error:") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_files(capsys, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    for path in (empty, binary, tmp_path):
        code, _, err = run(capsys, "fit", str(path), "--formula", SLEEP)
        assert code == 2 and err.count("\n") == 1, err


def test_module_entry_point():
    proc = subprocess.run(
        [sys.executable, "-m", "mixedmodels", "fit", "Dyestuff", "--formula", "Yield ~ 1 + (1 | Batch)"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Batch" in proc.stdout and "Number of obs: 30" in proc.stdout


def test_datasets_command(capsys):
    code, out, _ = run(capsys, "datasets")
    assert code == 0 and "sleepstudy" in out.split()


def test_debug_shows_the_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "mixedmodels", "fit", "sleepstudy", "--formula", "Reaction ~ Dayz + (1 | Subject)", "--debug"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "DataError" in proc.stderr
