"""Save/load as JSON, and the input formats: polars, pyarrow, SQLite and DuckDB."""

from __future__ import annotations

import gzip
import json
import sqlite3
import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.cli import main
from mixedmodels.exceptions import DataError
from mixedmodels.io import read_sql

SLEEP = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def sleep():
    return mm.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def fit(sleep):
    d = sleep.copy()
    d.loc[5, "Reaction"] = np.nan
    d["flag"] = d["Days"] > 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer("Reaction ~ Days + flag + (Days | Subject)", d, data_name="sleep")


@pytest.mark.parametrize("suffix", [".json", ".json.gz"])
def test_save_load_roundtrip(fit, sleep, tmp_path, suffix):
    path = fit.save(tmp_path / f"model{suffix}")
    loaded = mm.load(path)
    assert str(loaded.summary()) == str(fit.summary())
    assert loaded.n_dropped == 1 and loaded.warnings == fit.warnings
    new = sleep.head(12).assign(flag=lambda x: x["Days"] > 4)
    np.testing.assert_allclose(loaded.predict(new), fit.predict(new))
    np.testing.assert_allclose(loaded.ranef()["Subject"], fit.ranef()["Subject"])
    assert loaded.fit_record == fit.fit_record
    assert list(loaded.model.design.row_index) == list(fit.model.design.row_index)


def test_saved_file_is_documented_json(fit, tmp_path):
    doc = json.loads(fit.save(tmp_path / "m.json").read_text())
    assert doc["format"] == "mixedmodels-fit" and doc["version"] == 1
    assert {c["name"] for c in doc["data"]["columns"]} == {"Reaction", "Days", "flag", "Subject"}
    subject = next(c for c in doc["data"]["columns"] if c["name"] == "Subject")
    assert subject["kind"] == "category" and subject["categories"][0] == "308"


def test_tampered_file_is_rejected(fit, tmp_path):
    path = fit.save(tmp_path / "m.json")
    doc = json.loads(path.read_text())
    doc["fit"]["theta"][0] *= 1.5
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match="inconsistent"):
        mm.load(path)
    doc["format"] = "pickle"
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match="not a saved mixedmodels fit"):
        mm.load(path)
    path.write_bytes(b"\x80\x04\x95 not json")
    with pytest.raises(DataError, match="cannot read"):
        mm.load(path)
    gz = tmp_path / "m.json.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(json.dumps({"format": "mixedmodels-fit", "version": 99}))
    with pytest.raises(DataError, match="version"):
        mm.load(gz)


def test_cli_save(tmp_path, capsys):
    path = tmp_path / "fit.json"
    assert main(["fit", "sleepstudy", "-f", SLEEP, "--save", str(path), "--ddf", "none", "--json"]) == 0
    capsys.readouterr()
    assert mm.load(path).loglik == pytest.approx(-871.8141, abs=1e-3)


def test_polars_and_pyarrow_inputs(sleep):
    pl = pytest.importorskip("polars")
    pa = pytest.importorskip("pyarrow")
    ref = mm.lmer(SLEEP, sleep).loglik
    assert mm.lmer(SLEEP, pl.from_pandas(sleep)).loglik == pytest.approx(ref, abs=1e-8)
    assert mm.lmer(SLEEP, pl.from_pandas(sleep).lazy()).loglik == pytest.approx(ref, abs=1e-8)
    assert mm.lmer(SLEEP, pa.Table.from_pandas(sleep)).loglik == pytest.approx(ref, abs=1e-8)
    # integer grouping codes from polars are factors, strings categorical
    d = pl.from_pandas(sleep.assign(Subject=sleep["Subject"].astype(int)))
    assert mm.lmer(SLEEP, d).loglik == pytest.approx(ref, abs=1e-8)


@pytest.fixture(scope="module")
def databases(sleep, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("db")
    lite = tmp / "sleep.sqlite"
    with sqlite3.connect(lite) as con:
        sleep.astype({"Subject": str}).to_sql("sleep", con, index=False)
    duck = None
    try:
        import duckdb

        duck = tmp / "sleep.duckdb"
        con = duckdb.connect(str(duck))
        frame = sleep.astype({"Subject": str})  # noqa: F841 - read by DuckDB's replacement scan
        con.execute("create table sleep as select * from frame")
        con.close()
    except ImportError:
        pass
    return lite, duck


def test_sql_sqlite_and_duckdb(databases, capsys):
    lite, duck = databases
    frame, name = read_sql("select * from sleep where Days < 5", str(lite))
    assert len(frame) == 90 and name == "sleep"
    for db in [lite] + ([duck] if duck else []):
        code = main(["fit", "--sql", "select * from sleep", "--db", str(db), "-f", SLEEP, "--json", "--ddf", "none"])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert json.loads(out)["loglik"] == pytest.approx(-871.8141, abs=1e-3)


def test_sql_is_read_only_and_errors_are_one_line(databases, capsys):
    lite, duck = databases
    with pytest.raises(DataError, match="readonly|read-only|read only"):
        read_sql("delete from sleep", str(lite))
    if duck:
        with pytest.raises(DataError, match="DuckDB query failed"):
            read_sql("select * from read_csv('/etc/passwd')", str(duck))
    code = main(["fit", "--sql", "select * from nosuch", "--db", str(lite), "-f", SLEEP])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no such table" in err
    code = main(["fit", "--sql", "select 1", "-f", SLEEP])
    assert code == 2 and "--sql and --db go together" in capsys.readouterr().err


def test_pandas_string_columns_are_factors():
    d = pd.DataFrame({"y": np.arange(20.0) % 7, "g": list("abcde") * 4, "x": np.arange(20.0)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = mm.lmer("y ~ x + (1 | g)", d)
    assert r.ngroups == {"g": 5}


def test_save_load_keeps_na_action_contrasts_and_control(tmp_path):
    """A loaded fit must code its factors as fitted (sum contrasts leave the objective unchanged, so the
    load check alone could not catch treatment coding) and pad as fitted."""
    from pathlib import Path

    co2 = pd.read_csv(Path(__file__).parent / "reference" / "data" / "CO2.csv")
    co2.loc[[3, 40], "uptake"] = np.nan
    fit = mm.lmer(
        "uptake ~ Type + log(conc) + (1 | Plant)", co2, contrasts={"Type": "sum"}, na_action="exclude",
        control={"optimizer": "nelder_mead"},
    )
    back = mm.load(fit.save(tmp_path / "fit.json"))
    assert list(back.params.index) == list(fit.params.index)
    assert back.params.to_numpy() == pytest.approx(fit.params.to_numpy(), rel=1e-10)
    assert back.model.na_action == "exclude" and back.model.control.optimizer == "nelder_mead"
    assert len(back.fittedvalues) == len(co2) and back.fittedvalues.isna().sum() == 2


def test_save_load_keeps_weights_offsets_and_residual_structure(tmp_path):
    from pathlib import Path

    ref = Path(__file__).parent / "reference" / "data"
    ws = pd.read_csv(ref / "weights_sleepstudy.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mm.lmer("Reaction ~ Days + offset(log(e)) + (Days | Subject)", ws, weights="w", offset="e")
        back = mm.load(fit.save(tmp_path / "w.json"))
        assert back.loglik == pytest.approx(fit.loglik, abs=1e-10)
        new = ws.head(3)
        assert back.predict(new) == pytest.approx(fit.predict(new))
        trial = pd.read_csv(ref / "residual_trial.csv")
        mfit = mm.mmrm("y ~ arm * visit + base + ar1(visit | id)", trial)
        mback = mm.load(mfit.save(tmp_path / "m.json"))
    assert mback.loglik == pytest.approx(mfit.loglik, abs=1e-10)
    assert mback.residual_covariance.to_numpy() == pytest.approx(mfit.residual_covariance.to_numpy())
