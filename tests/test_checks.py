"""Input checks and lme4-style warnings (see docs/checks.md for the full list)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels.cli import main
from mixedmodels.exceptions import ScaleWarning


@pytest.fixture()
def sleep():
    return mm.datasets.load("sleepstudy")


def test_random_slope_constant_within_groups(sleep):
    sleep["code"] = sleep["Subject"].cat.codes * 1.0
    with pytest.raises(mm.ModelError, match="constant within every group"):
        mm.LinearMixedModel.from_formula("Reaction ~ Days + (code | Subject)", sleep)
    # without a random intercept the same column is a legitimate scaled intercept
    mm.LinearMixedModel.from_formula("Reaction ~ Days + (0 + code | Subject)", sleep.assign(code=sleep.code + 1))


def test_more_random_effects_than_observations(sleep):
    small = sleep[sleep["Days"] < 2]  # 36 rows, 18 subjects × 2 effects = 36 random effects
    with pytest.raises(mm.ModelError, match="number of random effects"):
        mm.LinearMixedModel.from_formula("Reaction ~ Days + (Days | Subject)", small)


def test_infinite_values(sleep):
    sleep.loc[3, "Days"] = np.inf
    with pytest.raises(mm.DataError, match="infinite"):
        mm.LinearMixedModel.from_formula("Reaction ~ Days + (1 | Subject)", sleep)
    sleep.loc[3, "Days"] = 3.0
    sleep.loc[4, "Reaction"] = -np.inf
    with pytest.raises(mm.DataError, match="infinite"):
        mm.LinearMixedModel.from_formula("Reaction ~ Days + (1 | Subject)", sleep)


def test_duplicated_columns(sleep):
    dup = sleep.rename(columns={"Days": "Reaction"})
    with pytest.raises(mm.DataError, match="duplicated column names"):
        mm.LinearMixedModel.from_formula("Reaction ~ 1 + (1 | Subject)", dup)


def test_badly_scaled_predictor_warns(sleep):
    sleep["Days_us"] = sleep["Days"] * 1e-6
    with pytest.warns(ScaleWarning, match="very different scales"):
        fit = mm.lmer("Reaction ~ Days_us + (1 | Subject)", sleep)
    assert any("rescaling" in w for w in fit.warnings)


def test_singular_warning_names_the_term():
    with pytest.warns(mm.SingularFitWarning, match=r"Batch\.\(Intercept\)"):
        mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff2"))


def test_no_warning_on_clean_fit(sleep):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mm.lmer("Reaction ~ Days + (Days | Subject)", sleep)


@pytest.mark.parametrize(
    "content, message",
    [
        ("a,b,a\n1,2,3\n", "duplicated column names"),
        ("Reaction,Days,Subject\n1,2,a\n3\n", "ragged rows"),
        ("Reaction,Days,Subject\n", "no rows"),
    ],
)
def test_bad_csv_files(tmp_path, capsys, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code = main(["fit", str(path), "--formula", "Reaction ~ Days + (1 | Subject)"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_wrong_encoding(tmp_path, capsys):
    path = tmp_path / "latin1.csv"
    path.write_bytes("Reaction,Days,Subject\n1,2,Müller\n".encode("latin-1"))
    assert main(["fit", str(path), "--formula", "Reaction ~ Days + (1 | Subject)"]) == 2
    assert "UTF-8" in capsys.readouterr().err
