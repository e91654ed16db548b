"""The exercises (issue 21): every checker accepts its solution and rejects realistic mistakes
with the hint meant for them, a stub is "not attempted yet", bad answers get one clear line, and
each chapter's learner copy is what the generator makes from the solution copy."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
import torch

from minivlm.exercises import EXERCISES, FAIL, NOT_ATTEMPTED, PASS, evaluate
from minivlm.exercises import generate as gen

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("[0-9]*.ipynb"))
KINDS = re.compile(r"^### Exercise (\w+)\.(\d+) \((implement|experiment|explain)\)", re.M)


def wrong_answers() -> list[tuple[str, object, str]]:
    rows = []
    for path in sorted((ROOT / "tests" / "wrong_answers").glob("ch*.py")):
        module = importlib.import_module(f"tests.wrong_answers.{path.stem}")
        rows += [(ex, fn, hint) for ex, answers in module.WRONG.items() for fn, hint in answers]
    return rows


def solution_functions() -> list[tuple[str, object]]:
    """(exercise id, the function the solution copy defines) for every checked exercise."""
    found = []
    for path in SOLUTIONS:
        cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        imports = [
            line
            for c in cells
            for line in gen.source(c).splitlines()
            if line.startswith(("import ", "from "))
        ]
        env: dict = {}
        exec("\n".join(imports), env)  # the notebook's imports, without running its experiments
        for cell in cells:
            text = gen.source(cell)
            if gen.BEGIN not in text:
                continue
            call = re.search(r'^check\("([\w.]+)", (\w+)\)', text, re.M)
            assert call, f"{path.name}: a solution cell without a check(...) call"
            exec(
                compile(text.replace(call.group(0), ""), str(path), "exec"), env
            )  # the definitions
            found.append((call.group(1), env[call.group(2)]))
    return found


SOLVED = solution_functions()


@pytest.mark.parametrize("ex_id, fn", SOLVED, ids=[s[0] for s in SOLVED])
def test_the_solution_passes(ex_id, fn):
    result = evaluate(EXERCISES[ex_id], fn)
    assert result.status == PASS, result.message
    assert (
        result.message.startswith("✓")
        and f"all {result.passed} hidden cases pass" in result.message
    )


def test_every_checked_exercise_has_a_solution_and_two_wrong_answers():
    assert sorted(ex for ex, _ in SOLVED) == sorted(EXERCISES)
    counts = {ex: 0 for ex in EXERCISES}
    for ex, _, _ in wrong_answers():
        counts[ex] += 1
    assert all(n >= 2 for n in counts.values()), counts


@pytest.mark.parametrize(
    "ex_id, fn, hint", wrong_answers(), ids=lambda x: getattr(x, "__name__", str(x))
)
def test_a_wrong_answer_gets_its_hint(ex_id, fn, hint):
    result = evaluate(EXERCISES[ex_id], fn)
    assert result.status == FAIL, f"{fn.__name__} passed exercise {ex_id}"
    assert result.hint is not None and hint in result.hint, f"{fn.__name__}: {result.message}"


@pytest.mark.parametrize("ex_id", list(EXERCISES))
def test_a_stub_is_not_attempted_yet(ex_id):
    def stub(*args, **kwargs):
        raise NotImplementedError

    result = evaluate(EXERCISES[ex_id], stub)
    assert result.status == NOT_ATTEMPTED and "not attempted yet" in result.message


@pytest.mark.parametrize("ex_id", list(EXERCISES))
def test_bad_answers_get_one_line_not_a_traceback(ex_id):
    ex = EXERCISES[ex_id]
    for answer, words in ((lambda *a, **k: "nothing", "expected"), (lambda *a, **k: 1 / 0, "ZeroDivisionError"),
                          (42, "expected a function")):  # fmt: skip
        result = evaluate(ex, answer)
        assert result.status == FAIL and words in result.message, result.message
        assert "Traceback" not in result.message and len(result.message.splitlines()) <= 2


def test_wrong_shape_and_dtype_are_named():
    ex = EXERCISES["2.1"]
    result = evaluate(ex, lambda s, m: s.softmax(-1)[..., :-1])
    assert "expected shape (2, 3, 5), got (2, 3, 4)" in result.message
    result = evaluate(ex, lambda s, m: s.softmax(-1).double())
    assert "expected dtype torch.float32, got torch.float64" in result.message
    result = evaluate(ex, lambda s, m: s.softmax(-1).numpy())
    assert (
        "expected a tensor of shape (2, 3, 5)" in result.message and "got ndarray" in result.message
    )


def test_an_answer_that_edits_its_input_does_not_change_the_next_case():
    def in_place(scores, mask):
        scores.masked_fill_(~mask, torch.finfo(scores.dtype).min)
        return scores.softmax(-1) * mask.any(-1, keepdim=True)

    assert evaluate(EXERCISES["2.1"], in_place).status == PASS


def test_an_unknown_exercise_is_named(capsys):
    from minivlm.exercises import check

    check("99.1", lambda: None)
    out = capsys.readouterr().out
    assert "no exercise '99.1': expected one of" in out and "2.1" in out


@pytest.mark.parametrize("solution", SOLUTIONS, ids=[s.stem for s in SOLUTIONS])
def test_the_learner_copy_is_what_the_generator_makes(solution):
    chapter = ROOT / "notebooks" / solution.name
    assert not gen.differs(solution, chapter), (
        f"run python -m minivlm.exercises.generate ({chapter.name})"
    )


@pytest.mark.parametrize("solution", SOLUTIONS, ids=[s.stem for s in SOLUTIONS])
def test_every_chapter_has_four_exercises_two_of_them_implement(solution):
    text = "\n".join(gen.source(c) for c in json.loads(solution.read_text())["cells"])
    kinds = [k for _, _, k in KINDS.findall(text)]
    assert len(kinds) >= 4 and kinds.count("implement") >= 2, kinds
    assert {"experiment", "explain"} <= set(kinds), kinds


@pytest.mark.parametrize("solution", SOLUTIONS, ids=[s.stem for s in SOLUTIONS])
def test_the_learner_copy_runs_each_check_as_not_attempted(solution):
    chapter = json.loads((ROOT / "notebooks" / solution.name).read_text())
    cells = chapter["cells"][gen.exercise_start(chapter["cells"]) :]
    stubs = [c for c in cells if c["cell_type"] == "code" and gen.STUB in gen.source(c)]
    assert stubs, solution.name
    for cell in stubs:
        out = "".join("".join(o.get("text", "")) for o in cell.get("outputs", []))
        assert "not attempted yet" in out, f"{solution.name}: execute the chapter after generating"


def test_strip_solution_keeps_the_indentation_and_rejects_broken_markers():
    code = (
        "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n\ncheck('1.1', f)"
    )
    learner, solution = gen.strip_solution(code)
    assert learner == f"def f(x):\n    {gen.STUB}\n\ncheck('1.1', f)"
    assert solution == "def f(x):\n    return x\n\ncheck('1.1', f)"
    for broken in (
        "### BEGIN SOLUTION\nx",
        "x\n### END SOLUTION",
        "### BEGIN SOLUTION\n### BEGIN SOLUTION",
    ):
        with pytest.raises(ValueError, match="SOLUTION"):
            gen.strip_solution(broken)
