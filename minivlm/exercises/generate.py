"""Write the learner's exercises into each chapter from the solution copies (nbgrader's markers).

    python -m minivlm.exercises.generate          # rewrites the exercise section of each chapter
    python -m minivlm.exercises.generate --check  # exits 1 if a chapter differs from what it makes
    python -m minivlm.exercises.generate --only 02_self_attention  # one chapter

`notebooks/solutions/NN_topic.ipynb` holds chapter NN's exercises with their solutions. From its
`## Exercises` cell on, every cell goes to the end of `notebooks/NN_topic.ipynb`, replacing the
chapter's own exercise section, with two changes:

* in a code cell, the lines between `### BEGIN SOLUTION` and `### END SOLUTION` become
  `raise NotImplementedError`, so the learner's copy runs top to bottom and `check` answers
  "not attempted yet";
* after such a cell comes a markdown cell with the solution in a `<details>` block: hidden until
  clicked, in JupyterLab and on the site.

Everything else (statements, experiment code, model answers in `<details>`) is copied as it is.
The generated cells carry no outputs: execute the chapter afterwards (nbval checks them).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
HEADING = "## Exercises"
STUB = "raise NotImplementedError  # your code here"
ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
SOLUTIONS = NOTEBOOKS / "solutions"


def source(cell: dict) -> str:
    s = cell["source"]
    return s if isinstance(s, str) else "".join(s)


def strip_solution(code: str) -> tuple[str, str]:
    """(the learner's code, the solution without its markers) of one code cell."""
    learner, solution, inside = [], [], False
    for line in code.splitlines():
        mark = line.strip()
        if mark == BEGIN:
            if inside:
                raise ValueError(f"{BEGIN} inside a solution region: {code[:60]!r}")
            inside = True
            learner.append(line[: len(line) - len(line.lstrip())] + STUB)
            continue
        if mark == END:
            if not inside:
                raise ValueError(f"{END} without {BEGIN}: {code[:60]!r}")
            inside = False
            continue
        solution.append(line)
        if not inside:
            learner.append(line)
    if inside:
        raise ValueError(f"{BEGIN} without {END}: {code[:60]!r}")
    return "\n".join(learner), "\n".join(solution)


def _markdown(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def _code(text: str, metadata: dict) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": metadata, "outputs": [],
            "source": text}  # fmt: skip


def exercise_start(cells: list[dict]) -> int:
    """Index of the `## Exercises` cell, or len(cells) when there is none."""
    for i, c in enumerate(cells):
        if c["cell_type"] == "markdown" and source(c).lstrip().startswith(HEADING):
            return i
    return len(cells)


def learner_cells(solution_nb: dict) -> list[dict]:
    """The chapter's exercise section, made from the solution copy."""
    cells = solution_nb["cells"]
    start = exercise_start(cells)
    if start == len(cells):
        raise ValueError(f"the solution copy has no {HEADING!r} cell")
    out = []
    for c in cells[start:]:
        text = source(c)
        if c["cell_type"] != "code" or BEGIN not in text:
            out.append(
                _markdown(text) if c["cell_type"] == "markdown" else _code(text, c["metadata"])
            )
            continue
        learner, solution = strip_solution(text)
        out.append(_code(learner, c["metadata"]))
        hidden = f"<details><summary>Solution</summary>\n\n```python\n{solution}\n```\n\n</details>"
        out.append(_markdown(hidden))
    for i, c in enumerate(out):
        c["id"] = f"exercise-{i}"  # stable ids: regenerating changes nothing
    return out


def sources(cells: list[dict]) -> list[tuple[str, str]]:
    return [(c["cell_type"], source(c).rstrip("\n")) for c in cells]


def pairs() -> list[tuple[Path, Path]]:
    """(solution copy, chapter) for every notebook of notebooks/solutions/."""
    return [(s, NOTEBOOKS / s.name) for s in sorted(SOLUTIONS.glob("[0-9]*.ipynb"))]


def differs(solution: Path, chapter: Path) -> bool:
    made = learner_cells(json.loads(solution.read_text()))
    cells = json.loads(chapter.read_text())["cells"]
    return sources(cells[exercise_start(cells) :]) != sources(made)


def write(solution: Path, chapter: Path) -> None:
    nb = json.loads(chapter.read_text())
    nb["cells"] = nb["cells"][: exercise_start(nb["cells"])] + learner_cells(
        json.loads(solution.read_text())
    )
    chapter.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a chapter is out of date")
    ap.add_argument("--only", metavar="NAME", help="one chapter, e.g. 02_self_attention")
    args = ap.parse_args(argv)
    chosen = [(s, c) for s, c in pairs() if args.only in (None, s.stem, s.name)]
    if not chosen:
        print(f"no solution copy named {args.only!r} in notebooks/solutions")
        return 2
    stale = [chapter.name for solution, chapter in chosen if differs(solution, chapter)]
    if args.check:
        for name in stale:
            print(f"{name}: its exercises differ from notebooks/solutions/{name}; run "
                  "python -m minivlm.exercises.generate, then execute the chapter")  # fmt: skip
        return 1 if stale else 0
    for solution, chapter in chosen:
        if chapter.name in stale:
            write(solution, chapter)
            print(f"wrote the exercises of {chapter.name}: execute it now")
    return 0


if __name__ == "__main__":
    sys.exit(main())
