"""bench/report.py: the committed results pages are what the results files make (issue 20)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _report():
    spec = importlib.util.spec_from_file_location("report", ROOT / "bench" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


report = _report()


@pytest.mark.parametrize("path", [report.REPORT, report.README], ids=lambda p: p.name)
def test_committed_page_equals_what_the_results_make(path):
    expected = report.outputs()[path]
    assert path.read_text() == expected, (
        f"{path.relative_to(ROOT)} differs from `python bench/report.py`; rerun it and commit"
    )


def test_a_changed_figure_changes_the_report(tmp_path, monkeypatch):
    """The check can fail: move one measured figure and the rendered page moves with it."""
    for f in report.RESULTS.glob("*.json"):
        (tmp_path / f.name).write_text(f.read_text())
    db = json.loads((tmp_path / "capstone.json").read_text())
    row = next(r for r in db["runs"] if r["key"] == "cpu/pretrained/seed0")
    row["test"]["exact"] = 0.5
    (tmp_path / "capstone.json").write_text(json.dumps(db))
    before = report.results_md()
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    after = report.results_md()
    assert before != after
    assert "0.500 / 0.998 / 0.992" in after


def test_readme_without_markers_is_a_clear_error():
    with pytest.raises(SystemExit, match="expected the markers"):
        report.readme_md("# a README without its results block\n")


def test_readme_is_a_front_door():
    lines = report.README.read_text().splitlines()
    assert len(lines) <= 125, f"README.md: expected at most about 120 lines, got {len(lines)}"
    assert "make lab" in "\n".join(lines[:40]), "the learner's start comes first"


def test_site_has_the_results_page():
    page = (ROOT / "book" / "results.md").read_text()
    assert "../bench/RESULTS.md" in page
