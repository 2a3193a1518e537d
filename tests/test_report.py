"""The self-contained HTML report: content, no network references, and it loads in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
import warnings

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
