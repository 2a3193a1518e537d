"""Binding residual specifications to data: codes, order, visit patterns, starts, and errors naming columns."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mixedmodels.covariance import bind, empirical_covariances
from mixedmodels.exceptions import DataError, FormulaError, ModelError

HERE = Path(__file__).parents[1] / "reference"
REF = json.loads((HERE / "residual.json").read_text())


@cache
def _trial() -> pd.DataFrame:
    return pd.read_csv(HERE / "data" / "residual_trial.csv")


def trial() -> pd.DataFrame:
    return _trial().copy()


def check_binding(b, frame: pd.DataFrame) -> None:
    """Order, patterns and batches are consistent with the frame."""
    subj, time = b.subject[b.order], b.time[b.order]
    assert np.all(np.diff(subj) >= 0)
    same = np.diff(subj) == 0
    assert np.all(np.diff(time)[same] > 0)
    assert sum(p.n_rows for p in b.patterns) == b.n == len(frame)
    assert sorted(np.concatenate([p.subjects for p in b.patterns]).tolist()) == list(range(b.n_subjects))
    seen = np.zeros(b.n, dtype=int)
    for i, p in enumerate(b.patterns):
        assert p.rows.shape == (p.n_subjects, p.size)
        seen[p.rows.ravel()] += 1
        assert np.array_equal(b.subject[p.rows], np.repeat(p.subjects[:, None], p.size, axis=1))
        assert np.array_equal(b.time[p.rows], np.broadcast_to(p.times, p.rows.shape))
        assert np.all(b.group[p.rows] == p.group)
        assert np.all(b.subject_pattern[p.subjects] == i)
    assert np.all(seen == 1)
    for batch in b.batches:
        assert np.array_equal(b.time[batch.rows], batch.times)
        assert np.all(b.subject_group[batch.subjects] == batch.group)
    assert sum(batch.rows.size for batch in b.batches) == b.n


def test_unstructured_on_the_trial():
    d = trial()
    b = bind("us(visit | id)", d)
    check_binding(b, d)
    assert b.n_subjects == REF["n_subjects"] == 100 and b.n == REF["n"]
    assert b.time_levels == ("V1", "V2", "V3", "V4", "V5")
    assert b.group_levels is None and b.n_groups == 1
    table = b.pattern_table()
    counts = {t.replace("V", "").replace(",", ""): n for t, n in zip(table["times"], table["n_subjects"])}
    assert counts == REF["pattern_counts"]
    assert (table["n_rows"] == table["n_subjects"] * table["size"]).all()
    assert list(b.subject_levels[:3]) == ["S001", "S002", "S003"]
    s = b.structure()
    assert s.kind == "us" and s.levels == b.time_levels and s.time_name == "visit"
    assert s.names[0] == "sd(visitV2)"


def test_group_specific_binding():
    d = trial()
    b = bind("ar1(visit | arm / id)", d)
    check_binding(b, d)
    assert b.group_levels == ("PBO", "TRT")
    assert np.array_equal(b.subject_group, (b.subject_levels > "S050").astype(int))
    table = b.pattern_table()
    assert set(table["group"]) == {"PBO", "TRT"}
    assert table.groupby("group")["n_subjects"].sum().tolist() == [50, 50]
    s = b.structure()
    assert s.groups == ("PBO", "TRT") and s.npar == 3 and s.names == ["arm=PBO: rho", "arm=TRT: sd", "arm=TRT: rho"]


def test_car1_binding_has_a_pattern_per_time_set():
    d = trial()
    b = bind("sp_exp(time | id)", d)
    check_binding(b, d)
    assert b.time_levels is None and b.time.dtype == float
    assert len(b.patterns) == len({tuple(d.time[d.id == s].sort_values()) for s in d.id.unique()})
    assert {(batch.group, batch.times.shape[1]) for batch in b.batches} == {(0, k) for k in range(2, 6)}
    assert b.structure().kind == "car1"


def test_iid_bindings():
    d = trial()
    b = bind("iid", d)
    check_binding(b, d)
    assert b.n_subjects == len(d) and len(b.patterns) == 1 and b.patterns[0].size == 1
    b = bind("iid(arm / id)", d)
    check_binding(b, d)
    assert {p.size for p in b.patterns} == {2, 3, 4, 5}
    assert b.structure().npar == 1
    b = bind("iid(visit | id)", d)
    check_binding(b, d)


def test_levels_follow_categories_and_unused_ones_are_dropped():
    d = trial()
    d["visit"] = pd.Categorical(d["visit"], categories=["V5", "V4", "V3", "X", "V2", "V1"])
    b = bind("ar1(visit | id)", d)
    assert b.time_levels == ("V5", "V4", "V3", "V2", "V1")
    check_binding(b, d)
    d["id"] = pd.Categorical(d["id"], categories=sorted(d["id"].unique(), reverse=True))
    assert bind("ar1(visit | id)", d).subject_levels[0] == "S100"


def test_order_does_not_depend_on_row_order():
    d = trial()
    a = bind("csh(visit | arm / id)", d)
    shuffled = d.sample(frac=1.0, random_state=3).reset_index(drop=True)
    b = bind("csh(visit | arm / id)", shuffled)
    assert a.pattern_table().equals(b.pattern_table())
    assert np.array_equal(d["y"].to_numpy()[a.order], shuffled["y"].to_numpy()[b.order])


def test_start_from_residuals():
    d = trial()
    r = d["y"] - d.groupby(["arm", "visit"])["y"].transform("mean")
    b = bind("us(visit | arm / id)", d)
    covs = empirical_covariances(r.to_numpy(), b)
    assert len(covs) == 2 and covs[0].shape == (5, 5)
    wide = d.assign(r=r).pivot(index="id", columns="visit", values="r")
    pbo = wide.loc[wide.index <= "S050"]
    assert covs[0][0, 0] == pytest.approx(np.nanmean(pbo["V1"] ** 2))
    assert covs[0][3, 1] == pytest.approx(np.nanmean(pbo["V4"] * pbo["V2"]), rel=1e-12)
    s = b.structure()
    par = s.start(r.to_numpy(), b)
    assert np.isfinite(par).all() and par.shape == (s.npar,)
    for kind, tv in [("ar1h", "visit"), ("cs", "visit"), ("toep", "visit"), ("ad", "visit"), ("car1", "time"),
                     ("iid", "visit"), ("diag", "visit")]:
        b = bind(f"{kind}({tv} | arm / id)", d)
        s = b.structure()
        par = s.start(r.to_numpy(), b)
        assert np.isfinite(par).all() and par.shape == (s.npar,)
        if kind == "car1":
            assert 0.2 < s.natural(par)["value"].iloc[1] < 0.99  # phi from lag-one products
        if kind == "ar1h":
            nat = s.natural(par, sigma=np.sqrt(covs[0][0, 0])).set_index(["group", "parameter"])["value"]
            assert nat[("arm=PBO", "sd(visitV3)")] == pytest.approx(np.sqrt(covs[0][2, 2]))


# -------------------------------------------------------------------------------------------------- errors
def test_duplicated_time_within_subject():
    d = trial()
    d.loc[len(d)] = d.iloc[0]
    with pytest.raises(DataError, match=r"column 'visit' has a value twice within a subject \(id='S0"):
        bind("us(visit | id)", d)
    with pytest.raises(DataError, match="column 'time' has a value twice"):
        bind("car1(time | id)", d)
    bind("iid(id)", d)  # rows need no distinct times without correlation


def test_discrete_structures_need_a_factor_time():
    d = trial()
    with pytest.raises(DataError, match=r"needs a factor .* column 'vnum' is int64; convert it with "
                                        r"frame\['vnum'\].astype\('category'\)"):
        bind("us(vnum | id)", d)
    d["vnum"] = d["vnum"].astype("category")
    assert bind("us(vnum | id)", d).time_levels == ("1", "2", "3", "4", "5")


def test_too_many_levels():
    d = pd.DataFrame({"id": np.repeat(np.arange(3), 31), "t": [f"t{i:02d}" for i in range(31)] * 3})
    for kind, npar in [("us", 495), ("toep", 30), ("adh", 60)]:
        with pytest.raises(ModelError, match=rf"column 't' has 31 levels; .* would have {npar} parameters per group, "
                                             r"and at most 30 levels"):
            bind(f"{kind}(t | id)", d)
    assert bind("ar1(t | id)", d).structure().npar == 1  # one parameter whatever the levels
    with pytest.raises(ModelError, match="needs at least 2"):
        bind("ar1(t | id)", d.assign(t="a").drop_duplicates())


def test_unknown_columns_and_missing_values():
    d = trial()
    with pytest.raises(DataError, match="column 'week' named in us\\(week \\| id\\) is not in the data"):
        bind("us(week | id)", d)
    with pytest.raises(DataError, match="column 'site'"):
        bind("us(visit | site / id)", d)
    d.loc[3, "visit"] = None
    with pytest.raises(DataError, match="column 'visit' named in .* has missing values"):
        bind("us(visit | id)", d)
    with pytest.raises(FormulaError):
        bind("bogus(visit | id)", d)
    with pytest.raises(DataError, match="no rows"):
        bind("us(visit | id)", d.iloc[:0])


def test_car1_needs_a_numeric_time():
    with pytest.raises(DataError, match="needs a numeric time: column 'visit' is"):
        bind("car1(visit | id)", trial())


def test_subject_in_two_groups():
    d = trial()
    d.loc[d.index[d.id == "S001"][0], "arm"] = "TRT"
    with pytest.raises(DataError, match="subject 'S001' of column 'id' is in groups 'PBO' and 'TRT' of column 'arm'"):
        bind("us(visit | arm / id)", d)


def test_polars_frames_are_accepted():
    pl = pytest.importorskip("polars")
    d = trial()
    b = bind("us(visit | id)", pl.from_pandas(d))
    assert b.pattern_table().equals(bind("us(visit | id)", d).pattern_table())
