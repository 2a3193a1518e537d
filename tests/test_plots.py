"""Plots: each function returns a Figure with the expected panels and artists, renders to PNG, and
rejects bad arguments with the package's own errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

import mixedmodels as mm
from mixedmodels import plots
from mixedmodels.exceptions import DataError, ModelError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _fit(formula: str, data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mm.lmer(formula, data)


@pytest.fixture(scope="module")
def sleep():
    return _fit("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))


@pytest.fixture(scope="module")
def penicillin():
    return _fit("diameter ~ 1 + (1 | plate) + (1 | sample)", mm.datasets.load("Penicillin"))


@pytest.fixture(scope="module")
def pastes():
    return _fit("strength ~ 1 + (1 | batch/cask)", mm.datasets.load("Pastes"))


@pytest.fixture(scope="module")
def insteval():
    """A random 20% of InstEval: still ~2,800 students and ~1,100 lecturers."""
    d = mm.datasets.load("InstEval").sample(frac=0.2, random_state=1)
    return _fit("y ~ service + (1 | s) + (1 | d)", d)


@pytest.fixture(scope="module")
def fits(sleep, penicillin, pastes):
    return {"sleepstudy": sleep, "Penicillin": penicillin, "Pastes": pastes}


def _render(fig: Figure, path: Path) -> None:
    assert isinstance(fig, Figure)
    fig.savefig(path, dpi=50)
    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 1000


def _labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_yticklabels() if t.get_text()]


# ---------------------------------------------------------------- caterpillar
@pytest.mark.parametrize(
    "name, titles",
    [
        ("sleepstudy", ["Subject: (Intercept)", "Subject: Days"]),
        ("Penicillin", ["plate: (Intercept)", "sample: (Intercept)"]),
        ("Pastes", ["cask:batch: (Intercept)", "batch: (Intercept)"]),
    ],
)
def test_caterpillar_panels(fits, name, titles, tmp_path):
    r = fits[name]
    fig = plots.caterpillar(r)
    assert [ax.get_title() for ax in fig.axes] == titles
    ranef = r.ranef(condvar=True)
    for ax in fig.axes:
        group, col = ax.get_title().rsplit(": ", 1)
        n = len(ranef[group])
        bars = [c for c in ax.collections if isinstance(c, LineCollection)]
        assert len(bars) == 1 and len(bars[0].get_segments()) == n
        points = ax.lines[-1]
        assert len(points.get_xdata()) == n
        # sorted by the first column's mode; intervals are mode ± 1.96 sd
        first = ranef[group].iloc[:, 0].to_numpy()
        order = np.argsort(first, kind="stable")
        np.testing.assert_allclose(points.get_xdata(), ranef[group][col].to_numpy()[order])
        seg = np.array(bars[0].get_segments())
        sd = ranef[group][f"sd({col})"].to_numpy()[order]
        np.testing.assert_allclose(seg[:, 1, 0] - seg[:, 0, 0], 2 * 1.959964 * sd, rtol=1e-5)
    assert len(_labels(fig.axes[0])) == len(ranef[fig.axes[0].get_title().rsplit(": ", 1)[0]])
    _render(fig, tmp_path / f"caterpillar_{name}.png")


def test_caterpillar_group_term_and_ax(sleep, tmp_path):
    fig = plots.caterpillar(sleep, "Subject", term="Days", level=0.5)
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == "Subject: Days"
    host = Figure()
    ax = host.add_subplot()
    assert plots.caterpillar(sleep, term="(Intercept)", ax=ax) is host
    assert len(_labels(ax)) == 18
    _render(host, tmp_path / "caterpillar_ax.png")


def test_caterpillar_errors(sleep, pastes):
    with pytest.raises(ModelError, match="no grouping factor 'cask'.*'cask:batch'"):
        plots.caterpillar(pastes, "cask")
    with pytest.raises(ModelError, match="no random-effect column 'Dayz'"):
        plots.caterpillar(sleep, term="Dayz")
    with pytest.raises(ModelError, match="single panel"):
        plots.caterpillar(sleep, ax=Figure().add_subplot())
    with pytest.raises(ModelError, match="show must be"):
        plots.caterpillar(sleep, show="some")  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="level"):
        plots.caterpillar(sleep, level=95)


def test_caterpillar_many_levels(insteval, tmp_path):
    ranef = insteval.ranef(condvar=True)
    assert len(ranef["s"]) > 2000
    fig = plots.caterpillar(insteval, max_levels=40)
    assert len(fig.axes) == 2
    for ax in fig.axes:
        assert 0 < len(_labels(ax)) <= 40 and len(ax.lines[-1].get_xdata()) == 40
    # the labelled students are the 40 with the largest |mode| / sd
    s = ranef["s"]
    z = (s["(Intercept)"].abs() / s["sd((Intercept))"]).sort_values(ascending=False)
    assert set(_labels(fig.axes[0])) == set(z.index[:40])
    _render(fig, tmp_path / "caterpillar_insteval.png")

    dense = plots.caterpillar(insteval, "s", show="all", max_levels=40)
    ax = dense.axes[0]
    assert _labels(ax) == [] and len(ax.lines[-1].get_xdata()) == len(s)
    _render(dense, tmp_path / "caterpillar_insteval_all.png")

    sample = plots.caterpillar(insteval, "d", show="sample", max_levels=30, seed=3)
    assert len(_labels(sample.axes[0])) == 30
    by_abs = plots.caterpillar(insteval, "s", rank_by="abs", max_levels=10)
    assert set(_labels(by_abs.axes[0])) == set(s["(Intercept)"].abs().sort_values(ascending=False).index[:10])


# ---------------------------------------------------------------- trajectories
def test_trajectories_sleepstudy(sleep, tmp_path):
    fig = plots.trajectories(sleep, "Days")
    assert len(fig.axes) == 18
    ax = fig.axes[0]
    assert ax.get_title() == "308" and len(ax.lines) == 3
    observed, subject, population = ax.lines
    assert len(observed.get_xdata()) == 10 and len(subject.get_xdata()) == 50
    # straight lines: the subject's line is β + b at its ends, the population's is β
    beta = sleep.beta
    b = sleep.ranef()["Subject"].loc["308"].to_numpy()
    np.testing.assert_allclose(subject.get_ydata()[[0, -1]], [beta[0] + b[0], beta[0] + b[0] + 9 * (beta[1] + b[1])])
    np.testing.assert_allclose(population.get_ydata()[[0, -1]], [beta[0], beta[0] + 9 * beta[1]])
    _render(fig, tmp_path / "trajectories.png")

    few = plots.trajectories(sleep, "Days", max_panels=6, ncols=3, population=False)
    assert len(few.axes) == 6 and all(len(a.lines) == 2 for a in few.axes)
    chosen = plots.trajectories(sleep, "Days", levels=["372", 309])
    assert [a.get_title() for a in chosen.axes] == ["372", "309"]


def test_trajectories_varying_covariate_falls_back_to_rows():
    d = mm.datasets.load("sleepstudy")
    d["x"] = np.random.default_rng(0).normal(size=len(d))
    r = _fit("Reaction ~ Days + x + (Days | Subject)", d)
    fig = plots.trajectories(r, "Days", levels=["308"])
    _, subject, population = fig.axes[0].lines
    rows = np.flatnonzero(d["Subject"].astype(str) == "308")
    np.testing.assert_allclose(subject.get_xdata(), d["Days"].to_numpy()[rows])
    np.testing.assert_allclose(subject.get_ydata(), r.fitted[rows])
    np.testing.assert_allclose(population.get_ydata(), r.fitted_fixed[rows])


def test_trajectories_errors(sleep, pastes):
    with pytest.raises(DataError, match="time column 'Dayz' is not a variable.*'Days'"):
        plots.trajectories(sleep, "Dayz")
    with pytest.raises(DataError, match="must be numeric"):
        plots.trajectories(pastes, "batch")
    with pytest.raises(DataError, match="is the response"):
        plots.trajectories(sleep, "Reaction")
    with pytest.raises(ModelError, match="no grouping factor 'Patient'"):
        plots.trajectories(sleep, "Days", group="Patient")
    with pytest.raises(DataError, match="no level"):
        plots.trajectories(sleep, "Days", levels=["999"])


# ---------------------------------------------------------------- diagnostics
@pytest.mark.parametrize("name", ["sleepstudy", "Penicillin", "Pastes"])
def test_residual_plots(fits, name, tmp_path):
    r = fits[name]
    fig = plots.residuals_vs_fitted(r)
    assert len(fig.axes) == 1
    zero, points = fig.axes[0].lines[:2]
    assert list(zero.get_ydata()) == [0, 0]
    np.testing.assert_allclose(points.get_xdata(), r.fitted)
    np.testing.assert_allclose(points.get_ydata(), r.residuals)
    _render(fig, tmp_path / "rvf.png")

    qq = plots.qq_residuals(r)
    assert len(qq.axes) == 1 and len(qq.axes[0].lines) == 2  # points and qqline
    y = qq.axes[0].lines[0].get_ydata()
    np.testing.assert_allclose(y, np.sort(r.residuals) / r.sigma)
    _render(qq, tmp_path / "qq.png")


@pytest.mark.parametrize("name, n", [("sleepstudy", 2), ("Penicillin", 2), ("Pastes", 2)])
def test_qq_ranef(fits, name, n, tmp_path):
    fig = plots.qq_ranef(fits[name])
    assert len(fig.axes) == n and all(len(a.lines) == 2 for a in fig.axes)
    _render(fig, tmp_path / "qq_ranef.png")


def test_qq_ranef_selection(penicillin, sleep):
    fig = plots.qq_ranef(penicillin, "plate")
    assert len(fig.axes) == 1 and len(fig.axes[0].lines[0].get_xdata()) == 24
    assert len(plots.qq_ranef(sleep, term="Days").axes) == 1
    with pytest.raises(ModelError, match="no grouping factor 'Plate'"):
        plots.qq_ranef(penicillin, "Plate")


# ---------------------------------------------------------------- variance partition
@pytest.mark.parametrize("name", ["sleepstudy", "Penicillin", "Pastes"])
def test_variance_partition(fits, name, tmp_path):
    r = fits[name]
    icc = r.icc()
    fig = plots.variance_partition(r)
    (ax,) = fig.axes
    widths = [p.get_width() for p in ax.patches]
    assert len(widths) == len(icc)  # one segment per grouping factor, and the residual
    np.testing.assert_allclose(sum(widths), 1.0)
    np.testing.assert_allclose(widths[:-1], icc["adjusted"].to_numpy()[:-1])
    assert f"{icc.loc['total', 'adjusted']:.3f}" in ax.get_title()
    _render(fig, tmp_path / "partition.png")

    with_fixed = plots.variance_partition(r, include_fixed=True)
    assert len(with_fixed.axes[0].patches) == len(icc) + 1


# ---------------------------------------------------------------- zeta
def test_zeta_plot(sleep, penicillin, tmp_path):
    intervals, profile = sleep.profile()
    fig = plots.zeta_plot(profile)
    assert len(fig.axes) == 6
    for ax in fig.axes:
        levels = sorted(round(l.get_ydata()[0], 2) for l in ax.lines if len(l.get_ydata()) == 2 and l.get_ydata()[0] == l.get_ydata()[1])
        assert levels == [-1.96, 0.0, 1.96]
    _render(fig, tmp_path / "zeta.png")
    assert len(plots.zeta_plot((intervals, profile), parameters=[".sigma", "Days"]).axes) == 2

    from_fit = plots.zeta_plot(penicillin)  # profiles the fit itself, with readable names
    titles = [ax.get_title() for ax in from_fit.axes]
    assert len(titles) == 4 and titles[0] == "sd((Intercept)|plate)  (.sig01)" and titles[2] == "sigma  (.sigma)"


def test_zeta_plot_errors(sleep):
    from mixedmodels.inference.confint import Profile

    with pytest.raises(ModelError, match="Profile or a fitted model"):
        plots.zeta_plot("profile")  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="no traces"):
        plots.zeta_plot(Profile())
    with pytest.raises(ModelError, match="'.sig09' not in the profile"):
        plots.zeta_plot(Profile(traces={".sigma": [(1.0, 0.5)]}), parameters=[".sig09"])


def test_no_pyplot_state():
    """The module draws on Figure objects only, so it is safe headless and in threads."""
    src = Path(plots.__file__).parent
    for path in src.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "import pyplot" not in text and "matplotlib.pyplot" not in text and "plt." not in text, path.name
        assert len(text.splitlines()) <= 400, path.name
