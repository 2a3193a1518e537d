"""Warnings point at the user's line; CSV files are read as R's read.csv reads them; the implied covariance
evaluates every allowed transform."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.exceptions import DataWarning, DroppedRowsWarning
from mixedmodels.io import read_data


def test_warnings_are_attributed_to_the_callers_line():
    ss = mm.datasets.load("sleepstudy").copy()
    ss.loc[3, "Reaction"] = np.nan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mm.lmer("Reaction ~ Days + (Days | Subject)", ss)
        mm.LinearMixedModel.from_formula("Reaction ~ Days + (Days | Subject)", ss)
    dropped = [w for w in caught if issubclass(w.category, DroppedRowsWarning)]
    assert len(dropped) == 2 and all(w.filename == __file__ for w in dropped)


def test_csv_keeps_empty_text_as_a_level_and_empty_numbers_missing(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("y,x,g\n1.2,1,a\n2.3,,a\n3.1,3,\n4.5,4,b\n2.2,5,b\n3.3,NaN,\n1.1,7,c\n5.0,8,c\n2.0,NA,a\n")
    frame, name = read_data(str(path))
    assert name == "blank"
    assert pd.api.types.is_float_dtype(frame["x"]) and int(frame["x"].isna().sum()) == 3
    assert list(frame["g"]) == ["a", "a", "", "b", "b", "", "c", "c", "a"]  # R's read.csv keeps "" in text
    with pytest.warns(DataWarning, match="empty strings"):
        fit = mm.lmer("y ~ x + (1 | g)", frame)
    assert "" in list(fit.ranef()["g"].index)


def test_implied_covariance_of_newdata_evaluates_transforms():
    ss = mm.datasets.load("sleepstudy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mm.lmer("Reaction ~ Days + (sqrt(Days) | Subject)", ss)
    imp = fit.implied_covariance(newdata=pd.DataFrame({"Days": [0.0, 1.0, 4.0]}))
    lam = fit.covariances[0].to_numpy()
    z = np.column_stack([np.ones(3), np.sqrt([0.0, 1.0, 4.0])])
    assert imp.covariance.to_numpy() == pytest.approx(z @ lam @ z.T + fit.sigma**2 * np.eye(3))
