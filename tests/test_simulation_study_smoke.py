"""Smoke test of benchmarks/simulation_study.py in --quick mode (slow: not run in CI)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "simulation_study.py"


def _rates(obj):
    """Every ``{"rate", "se", "n", "failed"}`` record in the JSON output."""
    if isinstance(obj, dict):
        if {"rate", "se", "n", "failed"} <= obj.keys():
            yield obj
        else:
            for v in obj.values():
                yield from _rates(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _rates(v)


@pytest.mark.slow
def test_quick_run_has_all_sections_and_valid_rates(tmp_path):
    out_md, out_json = tmp_path / "study.md", tmp_path / "study.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--no-progress", "--out", str(out_md), "--json", str(out_json)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert out_md.read_text(encoding="utf-8").strip() == text.strip()
    headings = (
        "## Fits",
        "## (a) Type-I error of t-tests",
        "## (b) Type-I error of the LRT",
        "## (c) Type-I error of the exact RLRT",
        "## (d) Coverage of 95% profile",
    )
    for heading in headings:
        assert heading in text
    for label in ("Satterthwaite", "Kenward–Roger", "naive χ²", "χ̄² boundary", "exact RLRT", "coverage"):
        assert label in text

    result = json.loads(out_json.read_text(encoding="utf-8"))
    nsim = result["meta"]["nsim"]
    sections = result["sections"]
    assert all(sections[k] for k in ("fits", "a", "b", "c", "d"))
    records = list(_rates(sections))
    assert len(records) > 50
    for r in records:
        assert r["n"] + r["failed"] == nsim
        if r["n"] > 0:
            assert 0.0 <= r["rate"] <= 1.0
            assert r["se"] is not None and math.isfinite(r["se"]) and r["se"] >= 0
    # the ones the study is about are computed for every design
    designs = set(result["meta"]["designs"])
    assert {row["design"] for row in sections["a"]} == designs
    assert {row["design"] for row in sections["c"]} == designs
    assert {row["parameter"] for row in sections["d"]} >= {".sig01", ".sigma", "(Intercept)", "trt", "time"}
