"""What each chapter asks of a learner: words to read, code to run, and its run time here.

    python bench/chapters.py [--only 03_transformer ...]

Executes every notebook of notebooks/ top to bottom in a fresh kernel (a copy: the committed
notebook is not touched), one after the other, and times it. Counts the words of its markdown
and the lines of its code. Writes bench/results/chapters.json; bench/report.py renders it, and
tests/test_chapters.py checks each chapter's stated time against it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import RESULTS, command, write_results  # noqa: E402

NOTEBOOKS = ROOT / "notebooks"


def counts(nb) -> dict:
    """Words of prose and lines of code (blank lines and comments left out)."""
    words = sum(len(c.source.split()) for c in nb.cells if c.cell_type == "markdown")
    code = [line for c in nb.cells if c.cell_type == "code" for line in c.source.splitlines()]
    lines = sum(1 for line in code if line.strip() and not line.lstrip().startswith("#"))
    return {"words": words, "code_lines": lines, "code_cells": sum(
        c.cell_type == "code" for c in nb.cells)}  # fmt: skip


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
    args = ap.parse_args()
    old = RESULTS / "chapters.json"
    rows = {r["notebook"]: r for r in json.loads(old.read_text())["results"]} if (
        args.only and old.exists()) else {}  # fmt: skip
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        if args.only and path.stem not in args.only:
            continue
        nb = nbformat.read(path, as_version=4)
        counted = counts(nb)  # before the run adds outputs; the counts read only the sources
        seconds = run_seconds(nb)
        rows[path.stem] = {"notebook": path.stem, "run_seconds": seconds, **counted}
        print(f"{path.stem:28} {seconds:7.1f} s  {rows[path.stem]['words']:6,} words", flush=True)
    write_results(
        "chapters", command("chapters.py"), sorted(rows.values(), key=lambda r: r["notebook"])
    )


if __name__ == "__main__":
    main()
