"""The self-contained HTML report: content, no network references, and it loads in headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path
import shutil
import subprocess
import warnings

import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.cli import main

SLEEP = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def report_html(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", "sleepstudy", "--formula", SLEEP, "-o", str(path), "--profile"]) == 0
    return path, path.read_text(encoding="utf-8")


def test_sections_and_tables(report_html):
    _, text = report_html
    for piece in ("Reaction ~ Days + (Days | Subject)", "observations used", "rows dropped for missing values",
                  "levels of Subject", "Fixed effects", "Pr(&gt;|t|)", "Satterthwaite", "Random effects",
                  "Intraclass correlation", "Fit diagnostics", "converged", "Profile-likelihood confidence intervals", ".sig01"):
        assert piece in text, piece
    assert len(re.findall(r"<img [^>]*src='data:image/png;base64,", text)) >= 7


def test_self_contained(report_html):
    _, text = report_html
    # nothing fetched: no external scripts, stylesheets, images or fonts
    assert not re.search(r"""(src|href)=['"]?(https?:)?//""", text)
    assert "<script" not in text and "@import" not in text and "url(" not in text


@pytest.mark.skipif(shutil.which("chromium") is None and shutil.which("chromium-browser") is None,
                    reason="headless Chromium not installed (Debian package 'chromium')")
def test_loads_in_headless_chromium(report_html, tmp_path):
    path, _ = report_html
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    proc = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert "Intraclass correlation" in dom and dom.count("<img") >= 4
    png = tmp_path / "shot.png"
    subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={png}", "--window-size=1200,2000", path.as_uri()],
                   capture_output=True, timeout=120)
    assert png.exists() and png.stat().st_size > 10_000


def test_report_method_and_missing_rows(tmp_path):
    d = mm.datasets.load("Penicillin")
    d.loc[0, "diameter"] = float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = mm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", d)
    path = r.report(str(tmp_path / "pen.html"), ddf="kenward-roger")
    text = open(path, encoding="utf-8").read()
    assert "Kenward-Roger" in text and "<td>1</td>" in text  # one row dropped


# ---------------------------------------------------------------- lme4's number formatting
def _reference():
    import json
    from pathlib import Path

    return json.loads((Path(__file__).parent / "reference" / "results_reference.json").read_text())


def test_format_r_matches_r():
    from mixedmodels.report.format import format_r

    for case in _reference()["format"]:
        assert format_r(case["x"], case["digits"]) == case["text"], case


def test_coefmat_strings_match_printcoefmat():
    from mixedmodels.report.format import coefmat_strings, table

    for case in _reference()["coefmat"]:
        (est, se), tval = coefmat_strings([case["est"], case["se"]], case["t"], 4)
        rows = [["", "Estimate", "Std. Error", "t value"]] + [[f"b{i + 1}", est[i], se[i], tval[i]] for i in range(len(est))]
        assert table(rows, ["l", "r", "r", "r"]).splitlines() == [line.rstrip() for line in case["lines"]], case


def _numbers_close(ours: str, theirs: str) -> bool:
    """Same layout (digits replaced by 9) and numbers within 1e-3 (lme4's optimum differs in the 4th digit at most)."""
    if ours == theirs:
        return True
    if re.sub(r"\d", "9", ours) != re.sub(r"\d", "9", theirs):
        return False
    for a, b in zip(ours.split(), theirs.split()):
        if a != b and abs(float(a) - float(b)) > 1e-3 * max(abs(float(b)), 1e-300):
            return False
    return True


@pytest.mark.parametrize("key", list(_reference()["summaries"]))
def test_summary_prints_as_lme4(key):
    spec = _reference()["summaries"][key]
    data = mm.datasets.load(spec["data"])
    if spec["scale"] != 1:
        data = data.assign(Reaction=data["Reaction"] * spec["scale"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mm.lmer(spec["formula"], data, REML=spec["REML"], data_name="data")
    ours = [line.rstrip() for line in str(fit.summary(ddf=None)).splitlines()]
    theirs = [line.rstrip() for line in spec["lines"]]
    theirs = theirs[: next((i for i, line in enumerate(theirs) if line.startswith("optimizer (")), len(theirs))]
    while theirs and not theirs[-1]:
        theirs.pop()
    assert len(ours) >= len(theirs)
    for a, b in zip(ours, theirs):
        assert _numbers_close(a, b), f"\nours:   {a!r}\nlme4's: {b!r}"


def test_satterthwaite_summary_at_extreme_scales():
    ss = mm.datasets.load("sleepstudy")
    for scale, estimate in [(1e-12, "2.514e-10"), (1e12, "2.514e+14")]:
        fit = mm.lmer(SLEEP, ss.assign(Reaction=ss["Reaction"] * scale))
        text = str(fit.summary())
        assert "0.0000000" not in text and not re.search(r"\d{10,}", text)
        row = next(line for line in text.splitlines() if line.startswith("(Intercept)"))
        assert row.split()[1] == estimate
        assert any(line.startswith(" Residual") and "e" in line for line in text.splitlines())


def test_reports_of_residual_structure_models(tmp_path):
    """A marginal MMRM (no random effects) and a model with random effects, a structure and a variance function:
    the report shows the residual covariance and correlation and leaves out ICC and random-effects plots."""
    import warnings

    data = pd.read_csv(Path(__file__).parent / "reference" / "data" / "fev_data.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        marginal = mm.mmrm("FEV1 ~ ARMCD * AVISIT + us(AVISIT | USUBJID)", data)
        mixed = mm.lmer("FEV1 ~ ARMCD * AVISIT + (1 | USUBJID)", data, residual="ar1(AVISIT | USUBJID)",
                        variance="ident(ARMCD)")
    text = Path(marginal.report(str(tmp_path / "m.html"), why={"subject": "USUBJID", "time": "AVISIT"})).read_text()
    assert "Residual covariance" in text and "Intraclass correlation" not in text and "Random effects</h2>" not in text
    assert "Why a mixed model? The naive analyses of these data" in text
    text = Path(mixed.report(str(tmp_path / "x.html"))).read_text()
    assert "Residual covariance" in text and "Variance function" in text and "Random effects</h2>" in text
