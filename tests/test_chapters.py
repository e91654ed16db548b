"""Each chapter's stated time fits what it asks of a learner, and the README agrees (issue 20).

A chapter opens with "**Time:** about N minutes". N must cover reading its prose (200 words a
minute), reading its code (20 lines a minute) and running it (bench/results/chapters.json,
measured by bench/chapters.py), without overstating it by more than half, and stay within one
sitting (about 45 minutes). The README's chapter map gives the same N.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MEASURED = ROOT / "bench" / "results" / "chapters.json"
TIME = re.compile(r"\*\*Time:\*\*\s*about\s+(\d+)\s+minutes")


def stated(path: Path) -> int:
    cells = json.loads(path.read_text())["cells"]
    opening = "".join("".join(c["source"]) for c in cells[:3] if c["cell_type"] == "markdown")
    m = TIME.search(opening)
    assert m, f"{path.name}: expected '**Time:** about N minutes' in the opening, found none"
    return int(m.group(1))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stated_time_fits_the_chapter(path):
    if not MEASURED.exists():
        pytest.skip("bench/results/chapters.json not written yet (python bench/chapters.py)")
    rows = {r["notebook"]: r for r in json.loads(MEASURED.read_text())["results"]}
    assert path.stem in rows, f"{path.name}: not measured; run python bench/chapters.py"
    r = rows[path.stem]
    need = r["words"] / 200 + r["code_lines"] / 20 + r["run_seconds"] / 60
    n = stated(path)
    assert need * 0.9 <= n <= max(1.6 * need, need + 10), (
        f"{path.name}: states about {n} minutes; reading and running it takes about {need:.0f}"
    )
    assert n <= 45, f"{path.name}: expected one sitting (at most about 45 minutes), got {n}"


def test_readme_gives_each_chapter_its_stated_time():
    readme = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        row = next((line for line in readme.splitlines() if f"(notebooks/{path.name})" in line), "")
        assert row, f"README.md: expected a chapter-map row for {path.name}"
        assert row.rstrip().endswith(f"| {stated(path)} min |"), (
            f"README.md: {path.name} should state {stated(path)} min, got {row!r}"
        )
