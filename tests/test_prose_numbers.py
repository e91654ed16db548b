"""No digit in a chapter's prose that nothing checks (issue 20).

A number in a markdown cell must appear in something that is checked: the printed output of a
code cell that nbval compares (not one marked NBVAL_IGNORE_OUTPUT), the code itself (a config
value, an assert's bound), or a measured figure of bench/results (raw, or as bench/RESULTS.md,
which bench/report.py renders from it, shows it). Left out on purpose: integers below 10, which
count things the text defines ("3 layers"); chapter, section and exercise numbers; the years of
citations; and the numbers inside maths and code spans, which are definitions, not measurements.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted(
    (ROOT / "notebooks" / "solutions").glob("*.ipynb")
)
NUMBER = re.compile(r"(?<![\w.\-/])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?")
NOT_MEASURED = re.compile(r"(chapters?|sections?|exercises?|§)\s+$|et al\.,?\s*$", re.IGNORECASE)


def prose(markdown: str) -> str:
    """The markdown without maths, code spans, link targets and HTML tags."""
    for pattern in (r"\$\$.*?\$\$", r"\$[^$\n]+\$", r"```.*?```", r"`[^`]*`", r"\]\([^)]*\)",
                    r"<[^>]+>"):  # fmt: skip
        markdown = re.sub(pattern, " ", markdown, flags=re.S)
    return markdown


def checked_text(cells: list[dict]) -> str:
    """Every code cell's source, and the outputs nbval compares."""
    parts = []
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        parts.append(source)
        if "NBVAL_IGNORE_OUTPUT" in source:
            continue
        for out in cell.get("outputs", []):
            text = out.get("text") or out.get("data", {}).get("text/plain", "")
            parts.append("".join(text))
    return "\n".join(parts)


def measured() -> tuple[set[float], str]:
    """Every number in bench/results/*.json, and the text of bench/RESULTS.md."""
    values: set[float] = set()

    def walk(x) -> None:
        if isinstance(x, bool):
            return
        if isinstance(x, int | float):
            values.add(float(x))
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    for path in (ROOT / "bench" / "results").glob("*.json"):
        walk(json.loads(path.read_text()))
    report = ROOT / "bench" / "RESULTS.md"
    return values, report.read_text() if report.exists() else ""


VALUES, REPORT = measured()


def is_measured(literal: str, percent: bool) -> bool:
    """A figure of bench/results at the precision the prose gives it ("81%" matches 0.8097)."""
    digits = len(literal.partition(".")[2])
    x = float(literal.replace(",", ""))
    if percent:
        x, digits = x / 100, digits + 2
    return any(round(v, digits) == round(x, digits) for v in VALUES)


def unchecked(path: Path) -> list[str]:
    cells = json.loads(path.read_text())["cells"]
    haystack = checked_text(cells)
    problems = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        text = prose("".join(cell["source"]))
        for m in NUMBER.finditer(text):
            literal = m.group(1) + (m.group(2) or "")
            if m.group(2) is None and int(m.group(1).replace(",", "")) < 10:
                continue
            if NOT_MEASURED.search(text[max(0, m.start() - 12) : m.start()]):
                continue
            if literal in haystack or literal.replace(",", "") in haystack or literal in REPORT:
                continue
            if is_measured(literal, text[m.end() : m.end() + 1] == "%"):
                continue
            context = " ".join(text[max(0, m.start() - 40) : m.end() + 20].split())
            problems.append(f"cell {i}: {literal!r} in '…{context}…'")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_number_in_the_prose_is_checked(path):
    problems = unchecked(path)
    assert not problems, (
        f"{path.name}: numbers in the prose that no checked output, code or bench result holds "
        "(quote the asserted claim, or point at the printed output):\n" + "\n".join(problems)
    )


def test_the_guard_catches_a_quoted_training_digit(tmp_path):
    """A stored digit of an ignored cell, quoted in the text, is caught."""
    cells = [
        {"cell_type": "code", "source": ["# NBVAL_IGNORE_OUTPUT\nprint(acc)"],
         "outputs": [{"output_type": "stream", "text": ["0.8731\n"]}]},
        {"cell_type": "markdown", "source": ["The run reached 0.8731 (chapter 12, 2 seeds)."]},
    ]  # fmt: skip
    nb = tmp_path / "x.ipynb"
    nb.write_text(json.dumps({"cells": cells}))
    assert [p.split(":")[0] for p in unchecked(nb)] == ["cell 1"]
