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
    code, out, err = run(capsys, "fit", "sleepstudy", "--formula", SLEEP, "--ddf", "none")
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


# --- More on the numbers, formats and errors ---------------------------------------------------------


def strict_json(text):
    def no_constants(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=no_constants)


def test_json_numbers_match_lme4(capsys):
    code, out, err = run(capsys, "fit", "sleepstudy", "--formula", "Reaction ~ Days + (Days|Subject)", "--json")
    assert code == 0 and err == "" and out.count("\n") == 1
    d = strict_json(out)
    assert d["formula"] == "Reaction ~ Days + (Days|Subject)"
    # lme4: REMLcrit 1743.628, AIC 1755.628, BIC 1774.786, theta 0.96674 0.01517 0.23090
    assert d["objective"] == pytest.approx(1743.628, abs=1e-3)
    assert d["objective"] == pytest.approx(-2 * d["loglik"], rel=1e-12)
    assert d["aic"] == pytest.approx(1755.628, abs=1e-3) and d["bic"] == pytest.approx(1774.786, abs=1e-3)
    assert d["theta"] == pytest.approx([0.96674, 0.01517, 0.23090], abs=2e-4)
    fe = {f["term"]: f for f in d["fixed_effects"]}
    assert fe["(Intercept)"]["estimate"] == pytest.approx(251.4051, abs=1e-3)
    assert fe["(Intercept)"]["std_error"] == pytest.approx(6.8246, abs=1e-3)
    assert fe["Days"]["estimate"] == pytest.approx(10.4673, abs=1e-3)
    assert fe["Days"]["std_error"] == pytest.approx(1.5458, abs=1e-3)
    assert fe["Days"]["t_value"] == pytest.approx(fe["Days"]["estimate"] / fe["Days"]["std_error"], rel=1e-10)
    var = [r["variance"] for r in d["random_effects"]]
    sd = [r["sd_or_corr"] for r in d["random_effects"]]
    assert var == pytest.approx([612.10, 35.072, 9.604, 654.94], abs=0.05)
    assert sd[0] == pytest.approx(np.sqrt(var[0])) and sd[1] == pytest.approx(np.sqrt(var[1]))
    assert sd[2] == pytest.approx(var[2] / (sd[0] * sd[1]))
    assert sd[3] == pytest.approx(d["sigma"]) and var[3] == pytest.approx(d["sigma"] ** 2)
    assert isinstance(d["optimizer"]["evaluations"], int) and d["optimizer"]["evaluations"] > 0
    assert d["optimizer"]["seconds"] >= 0


def test_ml_json_and_summary(capsys):
    code, out, _ = run(capsys, "fit", "sleepstudy", "--formula", SLEEP, "--ml", "--json")
    d = strict_json(out)
    assert code == 0 and d["method"] == "ML" and d["nobs"] == 180
    # lme4 (REML = FALSE): deviance 1751.939, AIC 1763.939, BIC 1783.097; variances 565.51, 32.68, 654.94
    assert d["objective"] == pytest.approx(1751.939, abs=1e-3)
    assert d["aic"] == pytest.approx(1763.939, abs=1e-3) and d["bic"] == pytest.approx(1783.097, abs=1e-3)
    assert [r["variance"] for r in d["random_effects"]] == pytest.approx([565.51, 32.68, 11.06, 654.94], abs=0.05)
    code, out, _ = run(capsys, "fit", "sleepstudy", "--formula", SLEEP, "--ml")
    assert code == 0
    assert out.startswith("Linear mixed model fit by maximum likelihood")
    assert "REML criterion" not in out and "logLik" in out and "-876.0" in out


def test_csv_and_parquet_give_the_same_fit(capsys, tmp_path):
    data = mm.datasets.load("sleepstudy")
    data.to_csv(tmp_path / "s.csv", index=False)
    data.to_parquet(tmp_path / "s.parquet")
    results = []
    for name in ("s.csv", "s.parquet"):
        code, out, err = run(capsys, "fit", str(tmp_path / name), "--formula", SLEEP, "--json")
        assert code == 0 and err == ""
        results.append(strict_json(out))
    a, b = results
    assert a["nobs"] == b["nobs"] == 180 and a["groups"] == b["groups"] == {"Subject": 18}
    assert a["objective"] == pytest.approx(b["objective"], rel=1e-10)
    code, out, _ = run(capsys, "fit", str(tmp_path / "s.csv"), "--formula", SLEEP)
    assert code == 0 and "Data: s" in out


def test_missing_values_only_in_used_columns_are_dropped(capsys, tmp_path):
    data = mm.datasets.load("sleepstudy")
    data["unused"] = np.nan
    data.loc[[0, 5, 33, 100, 179], "Reaction"] = np.nan
    path = tmp_path / "gaps.csv"
    data.to_csv(path, index=False)
    code, out, _ = run(capsys, "fit", str(path), "--formula", SLEEP, "--json")
    d = strict_json(out)
    assert code == 0 and d["n_dropped"] == 5 and d["nobs"] == 175 and d["groups"] == {"Subject": 18}
    code, out, _ = run(capsys, "fit", str(path), "--formula", SLEEP)
    assert code == 0 and "Number of obs: 175" in out


@pytest.mark.parametrize(
    "formula, message",
    [
        ("Reaction Days + (1 | Subject)", "'~'"),
        ("Reaction ~ Days + Days | Subject", "inside parentheses"),
        ("Reaction ~ Days + (1 | )", "no grouping factor"),
        ("Reaction ~ Days + (Days | Subject))", "position"),
        ('Reaction ~ __import__("os") + (1 | Subject)', "unexpected character"),
        ("Reaction ~ open(Days) + (1 | Subject)", "not allowed"),
        ("Reaction ~ Days.__class__ + (1 | Subject)", "unknown column"),
        ("Reaction ~ Days", "no random-effects terms"),
        ("Subject ~ Days + (1 | Subjet)", "did you mean 'Subject'"),
    ],
)
def test_formula_errors_on_the_command_line(capsys, formula, message):
    code, out, err = run(capsys, "fit", "sleepstudy", "--formula", formula)
    assert code == 2 and out == ""
    assert err.startswith("mixedmodels: error:") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_grouping_expression_is_a_formula_error(capsys):
    code, _, err = run(capsys, "fit", "sleepstudy", "--formula", "Reaction ~ Days + (1 | Days + Subject)")
    assert code == 2 and err.count("\n") == 1
    assert "unexpected" not in err and "KeyError" not in err


def test_module_entry_point_sleepstudy_json():
    proc = subprocess.run(
        [sys.executable, "-m", "mixedmodels", "fit", "sleepstudy", "--formula", SLEEP, "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    d = strict_json(proc.stdout)
    assert d["nobs"] == 180 and d["loglik"] == pytest.approx(-871.8141, abs=1e-3)


def test_module_entry_point_error_exit_code():
    proc = subprocess.run(
        [sys.executable, "-m", "mixedmodels", "fit", "sleepstudy", "--formula", "Reaction ~ Dayz + (1 | Subject)"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("mixedmodels: error:") and proc.stderr.count("\n") == 1


def test_json_satterthwaite_default(capsys):
    code, out, _ = run(capsys, "fit", "sleepstudy", "--formula", SLEEP, "--json")
    d = json.loads(out)
    assert d["ddf_method"] == "Satterthwaite"
    days = d["fixed_effects"][1]
    assert days["df"] == pytest.approx(17.0, rel=1e-4) and days["p_value"] == pytest.approx(3.2638e-06, rel=1e-3)


def test_json_kenward_roger_and_none(capsys):
    d = json.loads(run(capsys, "fit", "sleepstudy", "--formula", SLEEP, "--json", "--ddf", "kenward-roger")[1])
    assert d["ddf_method"] == "Kenward-Roger" and d["fixed_effects"][0]["df"] == pytest.approx(17.0, rel=1e-4)
    d = json.loads(run(capsys, "fit", "sleepstudy", "--formula", SLEEP, "--json", "--ddf", "none")[1])
    assert d["ddf_method"] is None and d["fixed_effects"][0]["df"] is None and d["fixed_effects"][0]["p_value"] is None


@pytest.mark.parametrize("method", ["wald", "profile"])
def test_json_confint(capsys, method):
    d = json.loads(run(capsys, "fit", "Dyestuff", "--formula", "Yield ~ 1 + (1|Batch)", "--json", "--ci", method)[1])
    ci = {row["parameter"]: row for row in d["confint"]}
    assert list(ci) == [".sig01", ".sigma", "(Intercept)"]
    assert ci["(Intercept)"]["lower"] < 1527.5 < ci["(Intercept)"]["upper"]
    if method == "wald":
        assert ci[".sig01"]["lower"] is None
    else:
        assert ci[".sig01"]["lower"] == pytest.approx(12.1985, rel=1e-3)


def test_json_confint_boot_seeded(capsys):
    argv = ["fit", "Dyestuff", "--formula", "Yield ~ 1 + (1|Batch)", "--json", "--ci", "boot", "--nsim", "20", "--seed", "3", "--quiet"]
    a = json.loads(run(capsys, *argv)[1])
    b = json.loads(run(capsys, *argv)[1])
    assert a["confint"] == b["confint"] and a["confint_method"] == "boot"


def test_compare_json(capsys):
    code, out, _ = run(capsys, "compare", "sleepstudy", "--formula", "Reaction ~ Days", "--formula", "Reaction ~ Days + (1|Subject)",
                       "--formula", SLEEP, "--json")
    assert code == 0
    d = json.loads(out)
    assert [m["npar"] for m in d["models"]] == [3, 4, 6]
    assert len(d["tests"]) == 2
    assert d["tests"][1]["chisq"] == pytest.approx(42.8368, rel=1e-4) and d["tests"][1]["df"] == 2
    assert d["tests"][0]["p_value_boundary"] == pytest.approx(d["tests"][0]["p_value"] / 2)


def test_compare_fixed_effects_refits_ml(capsys):
    d = json.loads(run(capsys, "compare", "sleepstudy", "-f", "Reaction ~ 1 + (Days|Subject)", "-f", SLEEP, "--json")[1])
    assert d["refitted_ml"] is True and d["tests"][0]["p_value_boundary"] is None
    assert all(m["method"] == "ML" for m in d["models"])


def test_compare_bootstrap(capsys):
    d = json.loads(run(capsys, "compare", "sleepstudy", "-f", "Reaction ~ Days + (1|Subject)", "-f", SLEEP,
                       "--bootstrap", "20", "--seed", "1", "--json", "--quiet")[1])
    boot = d["tests"][0]["bootstrap"]
    assert boot["nsim"] == 20 and boot["p_value"] == pytest.approx(1 / (1 + boot["nsim_used"]))


def test_compare_needs_two(capsys):
    code, _, err = run(capsys, "compare", "sleepstudy", "-f", SLEEP)
    assert code == 2 and "at least two" in err and "Traceback" not in err


def test_anova_json(capsys):
    code, out, _ = run(capsys, "anova", "cake", "-f", "angle ~ recipe * temp + (1|recipe:replicate)", "--json")
    d = json.loads(out)
    assert [t["term"] for t in d["terms"]] == ["recipe", "temp", "recipe:temp"]
    assert all(0 <= t["p_value"] <= 1 for t in d["terms"])


def test_fit_without_random_effects_is_an_error(capsys):
    code, _, err = run(capsys, "fit", "sleepstudy", "-f", "Reaction ~ Days")
    assert code == 2 and "random-effects" in err


def test_cli_rlrt_json(capsys):
    code = main(["rlrt", "Dyestuff", "--formula", "Yield ~ 1 + (1 | Batch)", "--nsim", "5000", "--seed", "1", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    d = json.loads(out)
    assert d["statistic"] == pytest.approx(6.368955313621143, rel=1e-5)
    assert abs(d["p_value"] - 0.004655) < 0.005 and d["nsim"] == 5000
    code = main(["rlrt", "sleepstudy", "--formula", "Reaction ~ Days + (1|Subject) + (0+Days|Subject)"])
    assert code == 2 and "exactly one random-effects term" in capsys.readouterr().err


# ---------------------------------------------------------------- compare names, refit note, anova display
def test_compare_text_names_models_by_formula_or_name(capsys):
    f0 = "Reaction ~ Days + (1|Subject)"
    code, out, _ = run(capsys, "compare", "sleepstudy", "-f", f0, "-f", SLEEP)
    assert code == 0 and "refitting" not in out and "Data: sleepstudy" in out
    rows = [line for line in out.splitlines() if line.startswith("Reaction")]
    assert [r.split("  ")[0].strip() for r in rows] == [f0, SLEEP]
    code, out, _ = run(capsys, "compare", "sleepstudy", "-f", f0, "-f", SLEEP, "--name", "m0", "-n", "m1", "--json")
    d = json.loads(out)
    assert [m["name"] for m in d["models"]] == ["m0", "m1"] and d["refitted_ml"] is False
    code, _, err = run(capsys, "compare", "sleepstudy", "-f", f0, "-f", SLEEP, "-n", "only")
    assert code == 2 and "one --name per --formula" in err


def test_compare_ml_fits_are_not_said_to_be_refitted(capsys):
    code, out, _ = run(capsys, "compare", "sleepstudy", "-f", "Reaction ~ 1 + (1|Subject)", "-f", "Reaction ~ Days + (1|Subject)", "--ml")
    assert code == 0 and "refitting" not in out
    d = json.loads(run(capsys, "compare", "sleepstudy", "-f", "Reaction ~ 1 + (1|Subject)", "-f", "Reaction ~ Days + (1|Subject)",
                       "--ml", "--json")[1])
    assert d["refitted_ml"] is False and all(m["method"] == "ML" for m in d["models"])
    code, out, _ = run(capsys, "compare", "sleepstudy", "-f", "Reaction ~ 1 + (1|Subject)", "-f", "Reaction ~ Days + (1|Subject)")
    assert out.splitlines()[0] == "refitting model(s) with ML (instead of REML)"


def test_anova_text_in_full_with_integer_df(capsys):
    code, out, _ = run(capsys, "anova", "cake", "-f", "angle ~ recipe * temperature + (1|recipe:replicate)")
    lines = out.splitlines()
    assert code == 0 and "..." not in out
    header = lines[1].split()
    assert header[:3] == ["Sum", "Sq", "Mean"] and "NumDF" in header
    assert lines[3].split()[0] == "recipe" and lines[3].split()[3] == "2"  # NumDF, not 2.0


def test_compare_reports_the_ml_refits_warnings(capsys):
    """The refits by ML are fits of their own: their warnings reach stderr and the JSON (never hidden)."""
    from pathlib import Path

    data = str(Path(__file__).parent / "reference" / "data" / "CO2.csv")
    f1 = "uptake ~ Type*Treatment + log(conc) + (log(conc) | Plant)"
    f0 = "uptake ~ Type+Treatment + log(conc) + (log(conc) | Plant)"
    code, out, err = run(capsys, "compare", data, "--formula", f1, "--formula", f0, "--json")
    assert code == 0
    assert err.count("mixedmodels: warning: boundary (singular) fit") == 2
    doc = json.loads(out)
    assert all(any("singular" in w for w in m["warnings"]) for m in doc["models"])
    assert doc["tests"][0]["chisq"] == pytest.approx(2.363408, rel=1e-5)  # lme4's anova (tests/reference/refits.json)


def test_fit_family_fits_a_glmm_as_glmer(capsys):
    """``fit --family``: glmer's summary and JSON (cbpp's Laplace and AGQ fits are checked in tests/glmm)."""
    formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    code, out = run(capsys, "fit", "cbpp", "--formula", formula, "--family", "binomial")[:2]
    assert code == 0
    assert "Family: binomial  ( logit )" in out and "z value" in out
    d = json.loads(run(capsys, "fit", "cbpp", "--formula", formula, "--family", "binomial", "--nagq", "9", "--json")[1])
    assert d["family"] == "binomial" and d["nAGQ"] == 9 and d["nobs"] == 56
    assert main(["fit", "cbpp", "--formula", formula, "--nagq", "9"]) == 2
    assert "--link and --nagq need --family" in capsys.readouterr().err
    assert main(["fit", "cbpp", "--formula", formula, "--family", "binomial", "--ci", "wald"]) == 2
    assert "not available with --family" in capsys.readouterr().err
