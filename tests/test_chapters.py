"""Each chapter's stated times fit what it asks of a learner, and the README agrees (issues 20, 21).

A chapter opens with "**Time:** about N minutes": the lesson, every cell before its
"## Exercises" heading. N must cover reading the lesson's prose (200 words a minute), reading
its code (20 lines a minute) and running the notebook (bench/results/chapters.json, measured by
bench/chapters.py), within 0.9x to max(1.6x, +10 minutes) of that, and stay within one sitting
(about 45 minutes). The README's chapter map gives the same N.

A chapter with exercises also states, in its opening, "**Exercises:** about M minutes", e.g.

    **Time:** about 20 minutes to read and run. **Exercises:** about 15 minutes.

Doing an exercise takes longer than reading it: a learner writes the code, runs the check, reads
its hint and tries again. So M is checked against the exercises' reading time (their words at
200 a minute, their code lines at 20 a minute) times a practice factor of PRACTICE = 3, in the
same band, and at most 45 minutes. A chapter without exercises states no exercise time.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from bench.chapters import counts, recount
from minivlm.exercises.generate import exercise_start

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MEASURED = ROOT / "bench" / "results" / "chapters.json"
TIME = re.compile(r"\*\*Time:\*\*\s*about\s+(\d+)\s+minutes")
EXERCISES = re.compile(r"\*\*Exercises:\*\*\s*about\s+(\d+)\s+minutes")
PRACTICE = 3  # doing an exercise (write, check, retry) takes 3x the time to read it
SITTING = 45  # minutes: the most one chapter, or its exercises, may ask


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _opening(path: Path) -> str:
    return "".join("".join(c["source"]) for c in _cells(path)[:3] if c["cell_type"] == "markdown")


def stated(path: Path) -> int:
    """N of the opening's "**Time:** about N minutes" (the lesson)."""
    m = TIME.search(_opening(path))
    assert m, f"{path.name}: expected '**Time:** about N minutes' in the opening, found none"
    return int(m.group(1))


def stated_exercises(path: Path) -> int | None:
    """M of the opening's "**Exercises:** about M minutes", or None where it states none."""
    m = EXERCISES.search(_opening(path))
    return int(m.group(1)) if m else None


def has_exercises(path: Path) -> bool:
    cells = _cells(path)
    return exercise_start(cells) < len(cells)


def fits(minutes: int, need: float) -> bool:
    """A stated time covers the need (less 10%) and overstates it by at most 60% or 10 minutes."""
    return need * 0.9 <= minutes <= max(1.6 * need, need + 10)


def measured(path: Path) -> dict:
    if not MEASURED.exists():
        pytest.skip("bench/results/chapters.json not written yet (python bench/chapters.py)")
    rows = {r["notebook"]: r for r in json.loads(MEASURED.read_text())["results"]}
    assert path.stem in rows, f"{path.name}: not measured; run python bench/chapters.py"
    return rows[path.stem]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stated_time_fits_the_lesson(path):
    r = measured(path)
    need = r["words"] / 200 + r["code_lines"] / 20 + r["run_seconds"] / 60
    n = stated(path)
    assert fits(n, need), (
        f"{path.name}: states about {n} minutes; reading and running the lesson takes about "
        f"{need:.0f} (words {r['words']}, code lines {r['code_lines']}, run {r['run_seconds']:.0f} s)"
    )
    assert n <= SITTING, f"{path.name}: expected one sitting (at most about 45 minutes), got {n}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stated_exercise_time_fits_the_exercises(path):
    m = stated_exercises(path)
    if not has_exercises(path):
        assert m is None, f"{path.name}: states an exercise time but has no '## Exercises' section"
        return
    assert m is not None, (
        f"{path.name}: has exercises; expected '**Exercises:** about M minutes' in the opening"
    )
    r = measured(path)
    assert "exercise_words" in r, (
        f"{path.name}: chapters.json does not count the exercises apart; run "
        "python bench/chapters.py --counts-only"
    )
    need = PRACTICE * (r["exercise_words"] / 200 + r["exercise_code_lines"] / 20)
    assert fits(m, need), (
        f"{path.name}: states about {m} minutes of exercises; {PRACTICE}x reading them takes "
        f"about {need:.0f} (words {r['exercise_words']}, code lines {r['exercise_code_lines']})"
    )
    assert m <= SITTING, f"{path.name}: expected exercises of one sitting (at most 45), got {m}"


def test_readme_gives_each_chapter_its_stated_time():
    readme = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        row = next((line for line in readme.splitlines() if f"(notebooks/{path.name})" in line), "")
        assert row, f"README.md: expected a chapter-map row for {path.name}"
        assert row.rstrip().endswith(f"| {stated(path)} min |"), (
            f"README.md: {path.name} should state {stated(path)} min, got {row!r}"
        )


def test_statements_read_as_markdown_writes_them():
    one_line = "**Time:** about 20 minutes to read and run. **Exercises:** about 15 minutes."
    wrapped = "**Time:** about 20\nminutes to read and run.\n**Exercises:** about\n15 minutes"
    for text in (one_line, wrapped):
        assert TIME.search(text).group(1) == "20"
        assert EXERCISES.search(text).group(1) == "15"
    assert EXERCISES.search("**Time:** about 20 minutes to read and run.") is None


def _tiny_chapter(exercises: bool) -> nbformat.NotebookNode:
    """A lesson of 7 words, 1 code cell with 2 lines; then, if asked, exercises of 9 words and
    2 code lines (the heading, a stub and its hidden solution)."""
    cells = [
        new_markdown_cell("# Chapter X\n\n**Time:** about 5 minutes."),  # 7 words
        new_code_cell("x = 1\n\n# a comment is not a line to read\ny = 2\n"),  # 2 lines
    ]
    if exercises:
        cells += [
            new_markdown_cell("## Exercises\n\nTry these two."),  # 5 words
            new_code_cell("def f():\n    raise NotImplementedError  # your code here\n"),  # 2
            new_markdown_cell("<details><summary>Solution</summary>\n\nreturn 1\n\n</details>"),
        ]  # the solution: 4 words
    return new_notebook(cells=cells)


def test_counts_split_the_lesson_from_the_exercises():
    assert counts(_tiny_chapter(exercises=True)) == {
        "words": 7, "code_lines": 2, "code_cells": 1, "exercise_words": 9,
        "exercise_code_lines": 2,
    }  # fmt: skip
    assert counts(_tiny_chapter(exercises=False)) == {
        "words": 7, "code_lines": 2, "code_cells": 1, "exercise_words": 0,
        "exercise_code_lines": 0,
    }  # fmt: skip


def test_counts_only_keeps_the_run_time(tmp_path, capsys):
    nbformat.write(_tiny_chapter(exercises=True), tmp_path / "01_tiny.ipynb")
    nbformat.write(_tiny_chapter(exercises=False), tmp_path / "02_new.ipynb")
    old = {"notebook": "01_tiny", "run_seconds": 12.5, "words": 99, "code_lines": 99,
           "code_cells": 9}  # fmt: skip
    rows = recount([old], notebooks=tmp_path)
    assert rows == [{"notebook": "01_tiny", "run_seconds": 12.5, "words": 7, "code_lines": 2,
                     "code_cells": 1, "exercise_words": 9, "exercise_code_lines": 2}]  # fmt: skip
    assert "02_new: not measured yet" in capsys.readouterr().out  # no run time: left out
