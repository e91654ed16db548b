"""The exercise checker: hidden cases, a verdict in one line, and a hint for the likely mistake.

An `Exercise` holds a reference function, a few seeded `Case`s and a list of `Mistake`s: each
mistake is a realistic wrong implementation with the hint a learner needs when they made it.
`evaluate(exercise, fn)` calls the learner's `fn` on every case and compares what comes back
with the reference's answer. On the first case that differs, it computes what each mistake
would have returned; the hint of the mistake that returns the same as the learner's function
is the one shown. So a hint is never guessed from the code, only from what the code computes.

Nothing the learner's function does ends in a traceback from here: an exception, a wrong type,
shape or dtype becomes one line naming the case, what was expected and what came.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

PASS, FAIL, NOT_ATTEMPTED = "pass", "fail", "not attempted"


@dataclass(frozen=True)
class Case:
    """One hidden input: the arguments the learner's function is called with."""

    name: str  # what the case is about, shown when it fails: "a fully masked row"
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Mistake:
    """A realistic wrong answer and the hint for whoever wrote it."""

    hint: str
    fn: Callable[..., Any]


@dataclass(frozen=True)
class Exercise:
    """An auto-checked exercise of a chapter: `check("2.1", fn)` looks it up by its id."""

    id: str  # "<chapter>.<number>", e.g. "2.1"
    title: str
    reference: Callable[..., Any]
    cases: Callable[[], list[Case]]  # built when checked, from a fixed seed
    mistakes: Sequence[Mistake] = ()
    atol: float = 1e-5
    rtol: float = 1e-4
    hint: str = "compare your steps with the chapter's derivation, one line at a time"


@dataclass(frozen=True)
class Result:
    """What `evaluate` found: the status, the message shown, and the hint that was chosen."""

    status: str  # PASS, FAIL or NOT_ATTEMPTED
    message: str
    hint: str | None = None
    passed: int = 0  # cases passed (all of them when status is PASS)


def describe(x: Any) -> str:
    """A short name for a value: its type, and for a tensor its shape and dtype."""
    if isinstance(x, torch.Tensor):
        return f"a tensor of shape {tuple(x.shape)} and dtype {str(x.dtype).removeprefix('torch.')}"
    if isinstance(x, tuple | list):
        return f"a {type(x).__name__} of {len(x)}"
    return (
        f"{type(x).__name__} {x!r}" if isinstance(x, int | float | bool | str) else type(x).__name__
    )


def difference(expected: Any, got: Any, atol: float, rtol: float) -> str | None:
    """None when `got` matches `expected`, else what differs, in words."""
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"expected {describe(expected)}, got {describe(got)}"
        if got.shape != expected.shape:
            return f"expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
        if got.dtype != expected.dtype:
            return f"expected dtype {expected.dtype}, got {got.dtype}"
        if expected.dtype == torch.bool or not expected.is_floating_point():
            if torch.equal(got, expected):
                return None
            where = tuple((got != expected).nonzero()[0].tolist())  # the first entry that differs
            return f"at index {where} expected {expected[where].item()}, got {got[where].item()}"
        if torch.isnan(got).any() and not torch.isnan(expected).any():
            return "got NaN where the answer has none"
        if torch.allclose(got, expected, atol=atol, rtol=rtol, equal_nan=True):
            return None
        err = (got - expected).abs()
        flat = err.nan_to_num(math.inf).argmax()
        where = tuple(int(i) for i in torch.unravel_index(flat, err.shape))  # the worst entry
        worst = err.nan_to_num(math.inf).max().item()
        e, g = expected[where].item(), got[where].item()
        return f"at index {where} expected {e:.4f}, got {g:.4f} (largest difference {worst:.3g})"
    if isinstance(expected, tuple | list):
        if not isinstance(got, tuple | list) or len(got) != len(expected):
            return f"expected {describe(expected)}, got {describe(got)}"
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            if (d := difference(e, g, atol, rtol)) is not None:
                return f"item {i}: {d}"
        return None
    if isinstance(expected, float):
        if not isinstance(got, int | float) or isinstance(got, bool):
            return f"expected a number, got {describe(got)}"
        if math.isclose(got, expected, rel_tol=rtol, abs_tol=atol):
            return None
        return f"expected {expected:.4f}, got {got:.4f}"
    if type(got) is not type(expected) and not (isinstance(expected, int) and isinstance(got, int)):
        return f"expected {describe(expected)}, got {describe(got)}"
    return None if got == expected else f"expected {expected!r}, got {got!r}"


def _call(fn: Callable[..., Any], case: Case) -> Any:
    """fn on copies of the case's arguments: a function that edits its input in place cannot
    change what the next call sees."""
    return fn(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))


def _same(a: Any, b: Any, atol: float, rtol: float) -> bool:
    try:
        return difference(a, b, atol, rtol) is None
    except Exception:  # a mistake's answer that cannot even be compared matches nothing
        return False


def evaluate(ex: Exercise, fn: Any) -> Result:
    """Run the learner's `fn` on every hidden case of `ex`, and say what was found."""
    head = f"exercise {ex.id} ({ex.title})"
    if not callable(fn):
        return Result(FAIL, f"✗ {head}: expected a function, got {describe(fn)}")
    cases = ex.cases()
    for n, case in enumerate(cases):
        try:
            got = _call(fn, case)
        except NotImplementedError:
            todo = "replace `raise NotImplementedError` with your code, then run the cell again"
            return Result(NOT_ATTEMPTED, f"… {head}: not attempted yet ({todo})")
        except Exception as e:  # the learner's code failed: one line, no traceback
            said = str(e).splitlines()[0] if str(e) else ""
            message = f"✗ {head}, case {n + 1} ({case.name}): your function raised "
            return Result(FAIL, f"{message}{type(e).__name__}: {said}", passed=n)
        expected = _call(ex.reference, case)
        what = difference(expected, got, ex.atol, ex.rtol)
        if what is None:
            continue
        hint = ex.hint
        for m in ex.mistakes:
            try:
                wrong = _call(m.fn, case)
            except Exception:
                continue
            if not _same(expected, wrong, ex.atol, ex.rtol) and _same(wrong, got, ex.atol, ex.rtol):
                hint = m.hint
                break
        message = f"✗ {head}, case {n + 1} of {len(cases)} ({case.name}): {what}\n  hint: {hint}"
        return Result(FAIL, message, hint=hint, passed=n)
    return Result(PASS, f"✓ {head}: all {len(cases)} hidden cases pass", passed=len(cases))
