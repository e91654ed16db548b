"""Auto-checked exercises: `check("2.1", masked_softmax)` at the end of every chapter.

Each chapter's exercises live in their own module (`ch02.py` for chapter 2, ...), next to the
references and the realistic mistakes they are checked with; `core.py` is the checker. The
solutions are in `notebooks/solutions/`, and the learner's copy at the end of each chapter is
generated from them (`python -m minivlm.exercises.generate`).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from .core import FAIL, NOT_ATTEMPTED, PASS, Case, Exercise, Mistake, Result, evaluate

# every chapter module of this package (ch01, ch02, ..., ch07b), in chapter order
CHAPTERS = tuple(
    importlib.import_module(f"{__name__}.{m.name}")
    for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)
    if m.name.startswith("ch")
)
EXERCISES: dict[str, Exercise] = {ex.id: ex for mod in CHAPTERS for ex in mod.EXERCISES}


def check(exercise_id: str, fn: Any) -> None:
    """Check the learner's `fn` against exercise `exercise_id`'s hidden cases; print the verdict.

    Returns nothing, so a notebook cell that ends with `check(...)` shows the verdict once."""
    if exercise_id not in EXERCISES:
        print(f"✗ no exercise {exercise_id!r}: expected one of {', '.join(EXERCISES)}")
        return
    print(evaluate(EXERCISES[exercise_id], fn).message)


__all__ = [
    "CHAPTERS", "EXERCISES", "FAIL", "NOT_ATTEMPTED", "PASS", "Case", "Exercise", "Mistake",
    "Result", "check", "evaluate",
]  # fmt: skip
