"""Chapter 9's auto-checked exercises: the answer-type mask, a glimpse, the blind rate, and the
executor's count.

Each exercise names a reference (the package's own code of `minivlm.vqa`, `minivlm.attention`,
`minivlm.data.questions` and `minivlm.data.question_grammar`) and the mistakes a learner is
likely to make, written out as the wrong code they would write.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from types import SimpleNamespace

import torch
import torch.nn as nn

from ..attention import scaled_dot_product_attention
from ..data.question_grammar import COUNT_ANSWERS, Desc, Program, execute, parse_question
from ..data.questions import blind_rates, make_questions
from ..data.scenes import SceneFacts
from ..vqa import _Answerer, answer_types, type_mask
from .core import Case, Exercise, Mistake

# ---------------------------------------------------------------- 9.1 the answer-type mask

_QUESTIONS = [
    "is there a red circle ?",
    "how many squares are there ?",
    "what size is the blue triangle ?",
    "what colour is the shape left of the small square ?",
    "what shape is the green thing ?",
    "are there more circles than squares ?",
]


def _mask_cases() -> list[Case]:
    g = torch.Generator().manual_seed(9)
    allowed = type_mask()  # (5, 17): the package's types and answers
    types = answer_types(_QUESTIONS)  # (6,): every type once, yes/no twice
    small = torch.tensor([[1, 1, 0, 0, 0], [0, 0, 1, 1, 1], [0, 1, 1, 0, 0]], dtype=torch.bool)
    return [
        Case("six questions of the chapter, the package's type_mask() (5 types, 17 answers)",
             (torch.randn(6, 17, generator=g) * 2, types, allowed)),
        Case("three types over five answers, types (2, 0, 1, 2)",
             (torch.randn(4, 5, generator=g), torch.tensor([2, 0, 1, 2]), small)),
        Case("one question of each type, logits all zero",
             (torch.zeros(5, 17), torch.arange(5), allowed)),
    ]  # fmt: skip


class _GivenLogits(_Answerer):
    """An answerer whose fused vector is the logits themselves and whose head passes it on, so
    that `_Answerer.logits` does nothing but mask them with `allowed`."""

    def __init__(self, allowed: torch.Tensor):
        super().__init__()
        self.head = nn.Identity()
        self.types = allowed  # (n_types, A): the buffer that logits() indexes

    def fused(self, images, which, ids, mask) -> torch.Tensor:
        return images  # the logits, passed in the batch's "image" slot


def masked_answer_logits(
    logits: torch.Tensor, types: torch.Tensor, allowed: torch.Tensor
) -> torch.Tensor:
    """logits (B, A), -inf where the answer is not of question b's type: what
    `_Answerer.logits` does to its head's output."""
    batch = {"image": logits, "which": None, "ids": None, "mask": None, "type": types}
    return _GivenLogits(allowed).logits(batch)


def _filled_with_zero(logits, types, allowed):
    return logits.masked_fill(~allowed[types], 0.0)  # a logit of 0 is still a fair chance


def _finite(logits, types, allowed):
    return logits.masked_fill(~allowed[types], torch.finfo(logits.dtype).min)


def _minus_a_billion(logits, types, allowed):
    return logits.masked_fill(~allowed[types], -1e9)


def _inverted(logits, types, allowed):
    return logits.masked_fill(allowed[types], float("-inf"))  # the allowed answers removed


def _after_softmax(logits, types, allowed):
    return logits.softmax(-1) * allowed[types]  # probabilities, no longer summing to 1


_EXACTLY = (
    "use float('-inf'), not a large finite number: every question keeps at least one "
    "allowed answer, so no row is all -inf and the softmax gives no NaN (unlike chapter "
    "2's fully masked rows)"
)

# ---------------------------------------------------------------- 9.2 a glimpse


def _grid(g: int) -> torch.Tensor:
    """The (x, y) of a g x g grid of cells in [-1, 1], row by row (g*g, 2), as ClassifierVQA's."""
    line = torch.linspace(-1, 1, g)
    return torch.stack(torch.meshgrid(line, line, indexing="ij")[::-1], -1).reshape(-1, 2)


def _glimpse_cases() -> list[Case]:
    gen = torch.Generator().manual_seed(19)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen)

    requests, keys = rand(1, 2, 8), rand(1, 16, 8)
    keys[0, 5] = requests[0, 0] * 4  # glimpse 0 asks for what cell 5 holds
    return [
        Case("B = 2, K = 3 glimpses, a 4 x 4 grid of cells, D = 16",
             (rand(2, 3, 16) * 2, rand(2, 16, 16) * 2, rand(2, 16, 16), _grid(4))),
        Case("one glimpse, a 3 x 3 grid, D = 8",
             (rand(1, 1, 8) * 3, rand(1, 9, 8), rand(1, 9, 8), _grid(3))),
        Case("glimpse 0's request matches cell 5's key: it lands on cell 5, at (x, y) = xy[5]",
             (requests, keys, rand(1, 16, 8), _grid(4))),
    ]  # fmt: skip


def glimpse(
    requests: torch.Tensor, keys: torch.Tensor, cells: torch.Tensor, xy: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """K glimpses: (what each fetches (B, K, D), where it looks on average (B, K, 2)).

    A glimpse is scaled dot-product attention (chapter 2's) whose values are each cell's token
    with its (x, y) appended, as `ClassifierVQA`'s glimpse fusion computes it."""
    B, N, D = cells.shape
    values = torch.cat([cells, xy.expand(B, N, 2)], -1)  # (B, N, D + 2)
    out, _ = scaled_dot_product_attention(requests, keys, values)  # (B, K, D + 2)
    return out[..., :D], out[..., D:]


def _looked(requests, keys, cells, xy, scale=None, dim=-1, values=None):
    scale = math.sqrt(keys.shape[-1]) if scale is None else scale
    where = (requests @ keys.transpose(1, 2) / scale).softmax(dim)  # (B, K, N)
    return where @ (cells if values is None else values), where @ xy


def _unscaled(requests, keys, cells, xy):
    return _looked(requests, keys, cells, xy, scale=1.0)


def _over_the_glimpses(requests, keys, cells, xy):
    return _looked(requests, keys, cells, xy, dim=1)  # each cell's weights sum to 1 over K


def _fetches_the_keys(requests, keys, cells, xy):
    return _looked(requests, keys, cells, xy, values=keys)


def _averaged(requests, keys, cells, xy):
    seen, at = _looked(requests, keys, cells, xy)
    return seen.mean(1), at.mean(1)  # (B, D), (B, 2): one glimpse left


def _averaged_kept_shape(requests, keys, cells, xy):
    seen, at = _looked(requests, keys, cells, xy)
    return seen.mean(1, keepdim=True).expand_as(seen), at.mean(1, keepdim=True).expand_as(at)


# ---------------------------------------------------------------- 9.3 the blind rate

_RED, _BLUE = "is there a red thing ?", "is there a blue thing ?"
_GREEN, _ORANGE = "is there a green thing ?", "is there an orange thing ?"
_CIRCLES, _SQUARES = "how many circles are there ?", "how many squares are there ?"
_TRIANGLES = "how many triangles are there ?"


def _triples(qs) -> list[tuple[str, str, str]]:
    return list(zip(qs.questions, qs.answers, qs.templates, strict=True))


def _blind_cases() -> list[Case]:
    e, c = "exist_color", "count_shape"
    train = [(_RED, "yes", e), (_RED, "yes", e), (_RED, "no", e), (_BLUE, "no", e),
             (_BLUE, "no", e), (_GREEN, "no", e), (_GREEN, "yes", e),
             (_CIRCLES, "two", c), (_CIRCLES, "one", c), (_CIRCLES, "one", c),
             (_SQUARES, "zero", c), (_SQUARES, "zero", c)]  # fmt: skip
    test = [(_RED, "yes", e), (_BLUE, "no", e), (_ORANGE, "no", e), (_CIRCLES, "one", c),
            (_SQUARES, "zero", c), (_TRIANGLES, "one", c), (_GREEN, "yes", e),
            (_RED, "yes", e)]  # fmt: skip
    ties = [(_RED, "no", e), (_RED, "yes", e), (_BLUE, "yes", e), (_BLUE, "no", e),
            (_BLUE, "no", e), (_CIRCLES, "three", c), (_CIRCLES, "two", c)]  # fmt: skip
    return [
        Case("two templates: texts seen in training, and two never seen (orange, triangles)",
             (train, test)),
        Case("ties: 'is there a red thing ?' was answered 'no' once, then 'yes' once",
             (ties, [(_RED, "no", e), (_RED, "yes", e), (_GREEN, "yes", e),
                     (_TRIANGLES, "three", c), (_CIRCLES, "two", c)])),
        Case("questions of the shapes world: 300 training scenes, 60 test scenes",
             (_triples(make_questions("train", 300)), _triples(make_questions("test", 60)))),
    ]  # fmt: skip


def _answered(rows: list[tuple[str, str, str]]) -> SimpleNamespace:
    q, a, t = ([r[i] for r in rows] for i in range(3))
    return SimpleNamespace(questions=q, answers=a, kinds=t, templates=t)


def blind_rate(train: list[tuple[str, str, str]], test: list[tuple[str, str, str]]) -> float:
    """The accuracy of answering each test question with the most common training answer of its
    exact text, else of its template: `blind_rates(train, test)["all"].blind`."""
    return float(blind_rates(_answered(train), _answered(test))["all"].blind)


def _majorities(rows, key):
    counts: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        counts[key(row)][row[1]] += 1
    return {k: c.most_common(1)[0][0] for k, c in counts.items()}


def _template_only(train, test):
    by_template = _majorities(train, lambda r: r[2])
    return sum(by_template[t] == a for _, a, t in test) / len(test)


def _no_fallback(train, test):
    by_text = _majorities(train, lambda r: r[0])
    return sum(by_text.get(q) == a for q, a, _ in test) / len(test)  # unseen: wrong


def _one_answer(train, test):
    top = Counter(a for _, a, _ in train).most_common(1)[0][0]
    return sum(a == top for _, a, _ in test) / len(test)


def _falls_back_to_all(train, test):
    by_text = _majorities(train, lambda r: r[0])
    top = Counter(a for _, a, _ in train).most_common(1)[0][0]
    return sum(by_text.get(q, top) == a for q, a, _ in test) / len(test)


# ---------------------------------------------------------------- 9.4 the executor's count

_SCENE = [("small", "red", "circle"), ("large", "red", "square"), ("small", "blue", "circle")]
_TWINS = [("small", "green", "triangle"), ("small", "green", "triangle")]


def _count_cases() -> list[Case]:
    def said(question: str) -> Desc:
        return parse_question(question).descs[0]

    return [
        Case("'how many red things are there ?' (None, 'red', None)",
             (_SCENE, said("how many red things are there ?"))),
        Case("'how many blue squares are there ?': a blue thing and a square, no blue square",
             (_SCENE, said("how many blue squares are there ?"))),
        Case("two identical small green triangles, 'how many triangles are there ?'",
             (_TWINS, said("how many triangles are there ?"))),
        Case("'how many things are there ?': nothing said", (_SCENE, (None, None, None))),
        Case("'how many small circles are there ?'",
             (_SCENE, said("how many small circles are there ?"))),
        Case("'how many large red squares are there ?': all three said",
             (_SCENE, ("large", "red", "square"))),
        Case("a scene of one object, 'how many large things are there ?'",
             ([("small", "purple", "circle")], ("large", None, None))),
    ]  # fmt: skip


def count_answer(objects: list[tuple[str, str, str]], desc: Desc) -> str:
    """The answer word to "how many <desc> are there ?": the grammar's `execute` on a count."""
    return execute(SceneFacts(tuple(objects), None), Program("count", descs=(desc,)))


def _fits_as_triple(objects, desc):
    return COUNT_ANSWERS[sum(tuple(o) == tuple(desc) for o in objects)]  # None is a value


def _fits(obj, desc) -> bool:
    return all(d is None or d == v for d, v in zip(desc, obj, strict=True))


def _fits_any(objects, desc):
    n = sum(any(d is not None and d == v for d, v in zip(desc, o, strict=True)) for o in objects)
    return COUNT_ANSWERS[n]  # "red squares": every red thing and every square


def _as_number(objects, desc):
    return sum(_fits(o, desc) for o in objects)


def _distinct(objects, desc):
    kinds = {tuple(o) for o in objects if _fits(o, desc)}
    return COUNT_ANSWERS[len(kinds)]  # two identical triangles count once


EXERCISES = [
    Exercise(
        "9.1", "the answer-type mask", masked_answer_logits, _mask_cases,
        mistakes=[
            Mistake("set the logits of the other types to -inf, not 0: a logit of 0 still gets "
                    "a share exp(0) of the softmax, so 'yes' stays a possible count",
                    _filled_with_zero),
            Mistake("mask with ~allowed[types]: allowed is True where an answer fits the type, "
                    "and those are the logits to keep", _inverted),
            Mistake("mask the logits before any softmax and return logits, (B, A): -inf becomes "
                    "a probability of exactly 0 in the loss's softmax, and the allowed answers' "
                    "probabilities then sum to 1", _after_softmax),
            *(Mistake(_EXACTLY, fn) for fn in (_finite, _minus_a_billion)),
        ],
        hint="keep question b's logits where allowed[types[b]] is True, and put exactly "
             "float('-inf') everywhere else",
    ),
    Exercise(
        "9.2", "a glimpse over the cells", glimpse, _glimpse_cases,
        mistakes=[
            Mistake("divide the scores by sqrt(D) before the softmax, or large dot products "
                    "make every glimpse look at a single cell from the start", _unscaled),
            Mistake("each glimpse's weights sum to 1 over the cells: softmax over the last axis "
                    "of the (B, K, N) scores, not over the K glimpses", _over_the_glimpses),
            Mistake("the keys only score the cells: the weights average the cells' tokens "
                    "(weights @ cells), not the keys", _fetches_the_keys),
            Mistake("keep the K glimpses apart, (B, K, D) and (B, K, 2): averaged into one, "
                    "'is A above B' can no longer compare A's y with B's", _averaged),
            Mistake("keep the K glimpses apart: each row k of the answer is glimpse k's own "
                    "fetch, not their average", _averaged_kept_shape),
        ],
    ),
    Exercise(
        "9.3", "the blind rate", blind_rate, _blind_cases,
        mistakes=[
            Mistake("answer by the exact question text first: a question seen in training gets "
                    "the most common answer of that text; only an unseen text falls back to its "
                    "template's", _template_only),
            Mistake("a question never seen in training is not wrong: answer it with its "
                    "template's most common training answer", _no_fallback),
            Mistake("count the answers per question text (and per template), not over the "
                    "whole training set: 'zero' is no answer to 'is there ...'", _one_answer),
            Mistake("an unseen question falls back to the most common answer of its own "
                    "template, not of the whole training set", _falls_back_to_all),
        ],
        hint="break ties as Counter(...).most_common(1) does: the answer seen first in training",
    ),
    Exercise(
        "9.4", "the executor's count", count_answer, _count_cases,
        mistakes=[
            Mistake("None means 'not said': it matches every value, so compare only the slots "
                    "the description fills", _fits_as_triple),
            Mistake("an object fits when *every* said slot matches (all), not any one of them: "
                    "a red square is not a blue square", _fits_any),
            Mistake("return the answer word, COUNT_ANSWERS[n] ('two'), not the number n",
                    _as_number),
            Mistake("count objects, not kinds of object: two identical triangles are two",
                    _distinct),
        ],
    ),
]  # fmt: skip
