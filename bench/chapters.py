"""What each chapter asks of a learner: words to read, code to run, and its run time here.

    python bench/chapters.py [--only 03_transformer ...]
    python bench/chapters.py --counts-only   # recount the sources; keep the measured run times
    python bench/chapters.py --only 10_modern_vlm --write   # also save the executed notebook

Executes every notebook of notebooks/ top to bottom in a fresh kernel (a copy: the committed
notebook is not touched), one after the other, and times it. Counts the words of its markdown
and the lines of its code, the lesson and the exercises apart: `words`, `code_lines` and
`code_cells` are the lesson's (the cells before the "## Exercises" heading), `exercise_words`
and `exercise_code_lines` the exercises' (from that heading on; 0 where a chapter has none).
`run_seconds` is the whole notebook's. Writes bench/results/chapters.json; bench/report.py
renders it, and tests/test_chapters.py checks each chapter's stated times against it.

--write saves each executed notebook over the committed one (its outputs, as nbconvert's
--execute --inplace would): one run both times a chapter and refreshes its stored outputs.

--counts-only executes nothing: it recounts each notebook already in chapters.json and keeps
its run_seconds and the file's command, machine and commit (those describe the timed run).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, command, write_results  # noqa: E402
from minivlm.exercises.generate import exercise_start  # noqa: E402
from minivlm.files import atomic_write_text  # noqa: E402

NOTEBOOKS = ROOT / "notebooks"


def _count(cells: list) -> tuple[int, int, int]:
    """(words of prose, lines of code without blank lines and comments, code cells) of cells."""
    words = sum(len(c.source.split()) for c in cells if c.cell_type == "markdown")
    code = [line for c in cells if c.cell_type == "code" for line in c.source.splitlines()]
    lines = sum(1 for line in code if line.strip() and not line.lstrip().startswith("#"))
    return words, lines, sum(c.cell_type == "code" for c in cells)


def counts(nb) -> dict:
    """The lesson's words, code lines and code cells, and the exercises' words and code lines.

    The exercises start at the "## Exercises" heading cell (as minivlm.exercises.generate finds
    it); a chapter without one counts all its cells as lesson and 0 for the exercises.
    """
    start = exercise_start(nb.cells)
    words, lines, cells = _count(nb.cells[:start])
    exercise_words, exercise_lines, _ = _count(nb.cells[start:])
    return {"words": words, "code_lines": lines, "code_cells": cells,
            "exercise_words": exercise_words, "exercise_code_lines": exercise_lines}  # fmt: skip


def recount(rows: list[dict], notebooks: Path = NOTEBOOKS, only: Sequence[str] = ()) -> list[dict]:
    """The measured rows with fresh counts from each notebook's sources, run_seconds kept.

    A notebook of `notebooks` that has no row yet has no run time either: it is left out, with
    a line saying how to measure it.
    """
    measured = {r["notebook"]: r for r in rows}
    for path in sorted(notebooks.glob("*.ipynb")):
        if only and path.stem not in only:
            continue
        if path.stem not in measured:
            print(f"{path.stem}: not measured yet; run python bench/chapters.py --only {path.stem}")
            continue
        measured[path.stem] = {**measured[path.stem], **counts(nbformat.read(path, as_version=4))}
    return sorted(measured.values(), key=lambda r: r["notebook"])


def run_seconds(nb) -> float:
    """Seconds to execute a notebook (a copy in memory) top to bottom in a fresh kernel."""
    client = NotebookClient(nb, timeout=1800, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})  # fmt: skip
    t0 = time.perf_counter()
    client.execute()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", nargs="*", default=[], help="notebook stems to (re)measure")
    ap.add_argument(
        "--counts-only", action="store_true", help="recount the sources; keep the run times"
    )
    ap.add_argument("--write", action="store_true", help="save the executed notebooks in place")
    args = ap.parse_args()
    old = RESULTS / "chapters.json"
    if args.counts_only:
        if not old.exists():
            raise SystemExit(f"{old.relative_to(ROOT)}: nothing measured yet; run without "
                             "--counts-only first")  # fmt: skip
        report = json.loads(old.read_text())
        report["results"] = recount(report["results"], only=args.only)
        atomic_write_text(old, json.dumps(report, indent=1))
        print(f"recounted {old.relative_to(ROOT)} (run times kept)")
        return
    rows = {r["notebook"]: r for r in json.loads(old.read_text())["results"]} if (
        args.only and old.exists()) else {}  # fmt: skip
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        if args.only and path.stem not in args.only:
            continue
        nb = nbformat.read(path, as_version=4)
        counted = counts(nb)  # before the run adds outputs; the counts read only the sources
        seconds = run_seconds(nb)
        if args.write:
            atomic_write_text(path, nbformat.writes(nb) + "\n")
        rows[path.stem] = {"notebook": path.stem, "run_seconds": seconds, **counted}
        print(f"{path.stem:28} {seconds:7.1f} s  {counted['words']:6,} words in the lesson, "
              f"{counted['exercise_words']:5,} in the exercises", flush=True)  # fmt: skip
    write_results(
        "chapters", command("chapters.py"), sorted(rows.values(), key=lambda r: r["notebook"])
    )


if __name__ == "__main__":
    main()
