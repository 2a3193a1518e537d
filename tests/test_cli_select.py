"""The command line's select and power subcommands: tables, JSON and one-line errors."""

from __future__ import annotations

import json

import pytest

from mixedmodels.cli import main

SLEEP = "Reaction ~ Days + (Days | Subject)"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_select_candidates_text_and_json(capsys):
    args = ["select", "sleepstudy", "--fixed", "Reaction ~ Days", "-r", "none", "-r", "(1 | Subject)", "-r", "(Days | Subject)"]
    code, out, err = run(capsys, *args)
    assert code == 0 and err == ""
    assert out.startswith("Candidates fitted by REML (the candidates share their fixed effects), ordered by AIC:")
    assert "Likelihood-ratio tests between nested candidates (REML):" in out
    code, out, _ = run(capsys, *args, "--criterion", "BIC", "--json")
    d = json.loads(out)
    assert code == 0 and d["method"] == "REML" and d["criterion"] == "BIC"
    assert d["candidates"][0]["name"] == "Reaction ~ Days + (Days | Subject)"
    assert {(t["null"], t["alt"]) for t in d["tests"]} == {
        ("Reaction ~ Days", "Reaction ~ Days + (1 | Subject)"), ("Reaction ~ Days", "Reaction ~ Days + (Days | Subject)"),
        ("Reaction ~ Days + (1 | Subject)", "Reaction ~ Days + (Days | Subject)")}
    assert d["candidates"][0]["aicc"] == pytest.approx(1756.113821, abs=1e-5)


def test_select_residual_candidates_and_ml(capsys):
    code, out, _ = run(capsys, "select", "sleepstudy", "--fixed", "Reaction ~ Days", "-r", "(1 | Subject)", "--residual", "none",
                       "--residual", "car1(Days | Subject)", "--ml", "--json")
    d = json.loads(out)
    assert code == 0 and d["method"] == "ML" and len(d["candidates"]) == 2
    assert d["candidates"][0]["residual"] == "car1(Days | Subject)"


def test_select_ranova_step_allfit(capsys):
    code, out, _ = run(capsys, "select", "sleepstudy", "-f", SLEEP, "--ranova", "--json")
    d = json.loads(out)
    assert code == 0 and [t["term"] for t in d["terms"]] == ["<none>", "Days in (Days | Subject)"]
    assert d["terms"][1]["lrt"] == pytest.approx(42.836813, abs=1e-5)
    code, out, _ = run(capsys, "select", "cake", "-f", "angle ~ recipe * temp + (1 | recipe:replicate) + (1 | replicate)", "--step")
    assert code == 0 and "Model found:\nangle ~ temp + (1 | recipe:replicate) + (1 | replicate)" in out
    code, out, _ = run(capsys, "select", "sleepstudy", "-f", SLEEP, "--allfit", "--json")
    d = json.loads(out)
    assert code == 0 and len(d["fits"]) == 6 and d["loglik_range"] < 1e-6


@pytest.mark.parametrize("argv, message", [
    (["select", "sleepstudy", "-f", SLEEP], "--formula goes with"),
    (["select", "sleepstudy", "--fixed", "Reaction ~ Days"], "two or more --random"),
    (["select", "sleepstudy", "-f", SLEEP, "--ranova", "-r", "(1 | Subject)"], "take one --formula"),
    (["select", "sleepstudy", "--fixed", "Reaction ~ Days", "-r", "(1 | Nope)", "-r", "(1 | Subject)"], "Nope"),
    (["power", "sleepstudy", "-f", SLEEP, "-e", "Nope", "--nsim", "2"], "neither a coefficient"),
    (["power", "sleepstudy", "-f", SLEEP, "-e", "Days", "--sizes", "4,x", "--along", "Subject"], "comma-separated"),
])
def test_errors_are_one_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and message in err and err.count("\n") == 1 and err.startswith("mixedmodels: error:")


def test_power_text_json_and_plot(capsys, tmp_path):
    png = tmp_path / "curve.png"
    argv = ["power", "sleepstudy", "-f", SLEEP, "-e", "Days", "--value", "3", "--along", "Subject", "--sizes", "4,8",
            "--nsim", "6", "--seed", "1", "--quiet"]
    code, out, err = run(capsys, *argv, "--plot", str(png))
    assert code == 0 and err == "" and png.stat().st_size > 0
    assert out.startswith("Power for Days (Days = 3), Kenward-Roger F-test at alpha = 0.05, 6 simulations")
    code, out, _ = run(capsys, *argv, "--json", "--jobs", "2")
    d = json.loads(out)
    assert d["effect"] == "Days" and d["test"] == "kr" and [s["size"] for s in d["sizes"]] == [4, 8]
    code, again, _ = run(capsys, *argv, "--json")
    assert json.loads(again) == d  # the same seed: the same numbers, with one process or two
