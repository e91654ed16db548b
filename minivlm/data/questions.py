"""Questions about scenes, balanced answers, and the blind baseline (chapter 9).

The grammar, its parser and the executor that answers a question from a scene's facts live in
`question_grammar.py`; this module asks the questions. A `QuestionSampler` walks a stream of
scenes and, for each question, takes the kind, then the template, then the answer that has been
asked *least so far among what this scene allows* (ties broken at random), and last the question
of that template with that answer that has been given that answer least. So within every template
(and nearly within every question text) the answers stay equal as far as the world allows (VQA
v2 balanced its answers for the same reason): a model that reads only the question can do little
better than the most common answer. `blind_rates` measures that.

The compositional split: on "comp" scenes every question names a held-out colour-shape pair
together ("is there a red triangle ?", "what colour is the triangle ?" answered "red"); on the
other splits no question ever does. So comp draws only from the templates that can name a
pair (colour and shape together, or one of them with the answer): no compare questions there.
`ShapesQuestions` packages questions with chapter 1's images, one image per scene, shared by its
questions through `which`.

    python -m minivlm.data.questions      # blind and majority rates per kind, and the speed
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from typing import NamedTuple, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from .captions import vocabulary
from .images import to_tensor
from .question_grammar import (
    ANSWERS,
    PHRASES,
    QUESTION_WORDS,
    SLOTS,
    Desc,
    Program,
    Ref,
    answer,
    execute,
    matches,
    normalize_question,
    pairs_named,
    parse_question,
    question_text,
)
from .render import render
from .scenes import COLORS, SHAPES, SIZES, Scene, SceneFacts, scene_facts
from .splits import HELD_OUT_PAIRS, SPLITS, make_scenes
from .tokenizer import CaptionTokenizer

__all__ = [
    "ANSWERS",
    "KINDS",
    "QUESTION_WORDS",
    "TEMPLATES",
    "QA",
    "BlindRate",
    "QuestionSampler",
    "QuestionSet",
    "ShapesQuestions",
    "answer",
    "blind_rates",
    "blind_report",
    "make_questions",
    "normalize_question",
    "parse_question",
    "question_text",
    "question_tokenizer",
]

TEMPLATES: dict[str, tuple[str, ...]] = {  # kind -> its templates
    "exist": ("exist_shape", "exist_color", "exist_color_shape", "exist_size_shape"),
    "count": ("count_shape", "count_color", "count_size", "count_color_shape"),
    "query": ("query_color", "query_shape", "query_size")
    + ("query_color_rel", "query_shape_rel", "query_size_rel"),
    "relation": ("relation",),
    "compare": ("more_shape", "more_color", "same_shape"),
}
KINDS: tuple[str, ...] = tuple(TEMPLATES)
_VALUES = {"size": tuple(SIZES), "color": tuple(COLORS), "shape": SHAPES}


def _subsets(attributes: tuple[str, str, str]) -> list[Desc]:
    """The 8 descriptions that say some of an object's (size, color, shape)."""
    return [
        tuple(v if keep else None for v, keep in zip(attributes, mask, strict=True))  # type: ignore[misc]
        for mask in product((False, True), repeat=3)
    ]


def _picks(facts: SceneFacts, desc: Desc) -> list[int]:
    """The indices of the objects that fit a description."""
    return [i for i, o in enumerate(facts.objects) if matches(o, desc)]


def _names_pair(desc: Desc, omit: str | None) -> bool:
    """Whether a description names colour and shape, counting the slot a query's answer fills."""
    return bool(desc[1] or omit == "color") and bool(desc[2] or omit == "shape")


def _descs(slots: str) -> list[Desc]:
    """Every description that fills exactly these slots, e.g. "color_shape": 18 of them."""
    names = slots.split("_")
    return [
        tuple(combo[names.index(s)] if s in names else None for s in SLOTS)  # type: ignore[misc]
        for combo in product(*(_VALUES[n] for n in names))
    ]


# questions that do not depend on where objects are: every one of them, fixed once
_FIXED: dict[str, list[Program]] = {
    **{t: [Program("exist", descs=(d,)) for d in _descs(t[6:])] for t in TEMPLATES["exist"]},
    **{t: [Program("count", descs=(d,)) for d in _descs(t[6:])] for t in TEMPLATES["count"]},
    **{
        t: [
            Program("compare", descs=(a, b), same=t.startswith("same"))
            for a, b in product(_descs(t[5:]), repeat=2)
            if a != b
        ]
        for t in TEMPLATES["compare"]
    },
}


def question_tokenizer() -> CaptionTokenizer:
    """Chapter 1's caption tokenizer grown by the question and answer words: a caption keeps its
    ids, so a pretrained captioner's embeddings carry over to questions."""
    return CaptionTokenizer.from_words([*vocabulary(), *QUESTION_WORDS, *ANSWERS])


class QA(NamedTuple):
    """One question about one scene, its answer, and the kind and template it was drawn from."""

    question: str
    answer: str
    kind: str
    template: str


class QuestionSampler:
    """Balanced questions for a stream of scenes (see the module docstring).

    held_out: "avoid" (no question names a held-out pair), "require" (every question does: the
    comp split) or "any". The same seed and the same scenes in the same order give the same
    questions.
    """

    def __init__(self, seed: int = 0, held_out: str = "avoid"):
        if held_out not in ("avoid", "require", "any"):
            raise ValueError(f"held_out must be 'avoid', 'require' or 'any', got {held_out!r}")
        self.rng, self.held_out = random.Random(seed), held_out
        self.asked: Counter = Counter()  # ("kind", kind), (template, answer), ... -> times

    def ask(self, scene: Scene, n: int = 1) -> list[QA]:
        """n different questions about one scene, with their answers."""
        if not isinstance(scene, Scene):
            raise TypeError(f"ask takes a Scene, got {type(scene).__name__}")
        facts, done, out = scene_facts(scene), set(), []
        # the descriptions that pick out object i alone ("the thing" only if it is alone)
        unique = [
            [d for d in _subsets(o) if _picks(facts, d) == [i]] for i, o in enumerate(facts.objects)
        ]
        for _ in range(n):
            qa = self._one(facts, unique, done)
            if qa is None:
                raise ValueError(f"only {len(out)} different questions fit this scene, asked {n}")
            out.append(qa)
        return out

    def _least(self, level: str, names: Sequence[str]) -> list[str]:
        return sorted(names, key=lambda k: (self.asked[level, k], self.rng.random()))

    def _one(self, facts: SceneFacts, unique: list[list[Desc]], done: set) -> QA | None:
        for kind in self._least("kind", KINDS):
            for template in self._least("template", TEMPLATES[kind]):
                by_answer: dict[str, list[Program]] = defaultdict(list)
                for p in _FIXED.get(template) or self._placed(template, facts, unique):
                    if p in done:
                        continue
                    a = execute(facts, p)
                    named = pairs_named(p, a) & HELD_OUT_PAIRS
                    if self.held_out == "any" or bool(named) == (self.held_out == "require"):
                        by_answer[a].append(p)
                if not by_answer:
                    continue
                a = min(by_answer, key=lambda a: (self.asked[template, a], self.rng.random()))
                p = min(by_answer[a], key=lambda p: (self.asked[p, a], self.rng.random()))
                done.add(p)
                self.asked.update([("kind", kind), ("template", template), (template, a), (p, a)])
                return QA(question_text(p), a, kind, template)
        return None

    def _pick(self, facts: SceneFacts, descs: list[Desc], i: int, omit: str | None) -> Desc | None:
        """A random description of object i alone, not saying `omit`; for a held-out object,
        one that names its pair (or not) as the split wants, where the scene allows."""
        options = [d for d in descs if omit is None or d[SLOTS.index(omit)] is None]
        size, color, shape = facts.objects[i]
        if (color, shape) in HELD_OUT_PAIRS and self.held_out != "any":
            want = self.held_out == "require"  # the answer fills the omitted slot
            fit = [d for d in options if _names_pair(d, omit) == want]
            options = fit or options
        return self.rng.choice(options) if options else None

    def _placed(self, template: str, facts: SceneFacts, unique: list[list[Desc]]) -> list[Program]:
        """The questions of a template about this scene's objects: one random description each."""
        n, out = facts.count, []
        phrases = [p for p, (rel, _) in PHRASES.items() if rel == facts.relation]
        if template == "relation":
            for i, j in product(range(n), repeat=2):
                a, b = self._pick(facts, unique[i], i, None), self._pick(facts, unique[j], j, None)
                if i != j and a and b:
                    out += [Program("relation", refs=(Ref(a), Ref(b)), phrase=ph) for ph in phrases]
            return out
        attribute = template.split("_")[1]
        if not template.endswith("_rel"):
            for i in range(n):
                d = self._pick(facts, unique[i], i, attribute)
                if d:
                    out.append(Program("query", refs=(Ref(d),), attribute=attribute))
            return out
        for phrase, j in product(phrases, range(n)):
            side = range(j + 1, n) if PHRASES[phrase][1] else range(j)  # reversed: after j
            anchor = self._pick(facts, unique[j], j, None)
            if len(side) == 1 and anchor:
                ref = Ref((None, None, None), phrase, anchor)
                out.append(Program("query", refs=(ref,), attribute=attribute))
        return out


@dataclass
class QuestionSet:
    """Questions about scenes: question k is about scenes[which[k]]."""

    scenes: list[Scene]
    which: np.ndarray  # (Q,) int64 index into scenes
    questions: list[str]
    answers: list[str]
    kinds: list[str]
    templates: list[str]


def make_questions(
    split: str, n_scenes: int, questions_per_scene: int = 5, seed: int = 0
) -> QuestionSet:
    """The first n_scenes scenes of a split (chapter 1's), each with its questions. On "comp"
    every question names a held-out pair; on the other splits none does."""
    if isinstance(questions_per_scene, bool) or not isinstance(questions_per_scene, int):
        raise TypeError(f"questions_per_scene must be an int, got {questions_per_scene!r}")
    if not 1 <= questions_per_scene <= 20:
        raise ValueError(f"questions_per_scene must be in 1..20, got {questions_per_scene}")
    scenes = make_scenes(split, n_scenes, seed=seed)
    held_out = "require" if split == "comp" else "avoid"
    sampler = QuestionSampler(seed * len(SPLITS) + SPLITS[split], held_out)
    qas = [qa for s in scenes for qa in sampler.ask(s, questions_per_scene)]
    which = np.repeat(np.arange(len(scenes), dtype=np.int64), questions_per_scene)  # (Q,)
    q, a, k, t = (list(col) for col in zip(*qas, strict=True))
    return QuestionSet(scenes, which, q, a, k, t)


class ShapesQuestions(Dataset):
    """Questions with chapter 1's images (the same pixels as ShapesCaptions for a split and
    seed): images (N, S, S, 3) uint8, one per scene; item k is question k with image which[k]."""

    def __init__(
        self,
        split: str,
        n_scenes: int,
        questions_per_scene: int = 5,
        size: int = 64,
        seed: int = 0,
        noise: float = 0.02,
    ):
        qs = make_questions(split, n_scenes, questions_per_scene, seed=seed)
        self.split, self.size, self.scenes, self.which = split, size, qs.scenes, qs.which
        self.questions, self.answers, self.kinds, self.templates = (
            qs.questions,
            qs.answers,
            qs.kinds,
            qs.templates,
        )
        self.images = render(self.scenes, size=size, noise=noise, seed=seed * 10 + SPLITS[split])
        self.answer_ids = torch.tensor([ANSWERS.index(a) for a in self.answers])  # (Q,)

    def __len__(self) -> int:
        return len(self.questions)

    def __getitem__(self, k: int) -> dict:
        return {
            "image": to_tensor(self.images[self.which[k]])[0],  # (3, S, S)
            "question": self.questions[k],
            "answer": self.answers[k],
            "answer_id": int(self.answer_ids[k]),
            "kind": self.kinds[k],
            "template": self.templates[k],
            "index": k,
        }


class Answered(Protocol):
    """Anything with parallel lists of questions, answers, kinds and templates (a QuestionSet)."""

    questions: list[str]
    answers: list[str]
    kinds: list[str]
    templates: list[str]


class BlindRate(NamedTuple):
    """The blind baseline of one kind: how far the question alone goes."""

    n: int  # held-out questions of this kind
    majority: float  # accuracy of each template's most common training answer
    blind: float  # accuracy of each exact question's most common training answer


def blind_rates(train: Answered, test: Answered) -> dict[str, BlindRate]:
    """How well the question alone answers, per kind (and "all"): fit on train, score on test.

    blind: the most common training answer for the exact question text (the template's where
    the text never came up in training); majority: the template's most common answer.
    """
    by_text: dict[str, Counter] = defaultdict(Counter)
    by_template: dict[str, Counter] = defaultdict(Counter)
    for q, a, t in zip(train.questions, train.answers, train.templates, strict=True):
        by_text[q][a] += 1
        by_template[t][a] += 1
    hits: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(3, dtype=np.int64))  # n, maj, blind
    for q, a, k, t in zip(test.questions, test.answers, test.kinds, test.templates, strict=True):
        majority = by_template[t].most_common(1)[0][0] if by_template[t] else None
        blind = by_text[q].most_common(1)[0][0] if q in by_text else majority
        for key in (k, "all"):
            hits[key] += (1, a == majority, a == blind)
    return {k: BlindRate(int(n), m / n, b / n) for k, (n, m, b) in hits.items()}


def blind_report(n_scenes: int = 20_000, questions_per_scene: int = 5, seed: int = 0) -> str:
    """A table of the blind and majority rates per kind (train fit, test scored), with timing."""
    start = time.perf_counter()
    train = make_questions("train", n_scenes, questions_per_scene, seed)
    seconds = time.perf_counter() - start
    test = make_questions("test", max(1, n_scenes // 4), questions_per_scene, seed)
    lines = [f"{'kind':<10}{'n':>8}{'majority':>10}{'blind':>8}"]
    rates = blind_rates(train, test)
    for kind in [k for k in (*KINDS, "all") if k in rates]:
        r = rates[kind]
        lines.append(f"{kind:<10}{r.n:>8}{r.majority:>10.4f}{r.blind:>8.4f}")
    rate = len(train.questions) / seconds
    lines.append(f"generated {len(train.questions)} questions in {seconds:.1f} s ({rate:,.0f}/s)")
    return "\n".join(lines)


if __name__ == "__main__":
    print(blind_report())
