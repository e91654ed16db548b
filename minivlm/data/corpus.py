"""The text a language model of the shapes world is pretrained on, with no image (chapter 10).

Every text is one line of space-separated words, of one of three sources:

    a small red circle left of a large blue square                    caption
    there are two shapes : a large blue square right of a small ...   paraphrase
    a small red circle left of a large blue square . how many circles are there ? one     qa
    a small red circle . describe the image . a small red circle                          qa

A question-and-answer text writes the scene out first (its canonical caption), then " . ", then
one of chapter 9's questions and its answer, or the instruction "describe the image ." and the
caption. Chapter 10 later puts image tokens where the caption stands, so the language model has
already learned to answer from what comes before the question.

`name_held_out` decides whether the text ever names a held-out colour-shape pair of
`splits.HELD_OUT_PAIRS` ("red triangle", or "what colour is the triangle ? red"). With False,
scenes never hold such a pair and questions never name one: the language model then learns from
text alone that such pairs do not occur, which is chapter 10's lesson on language priors.

A corpus is a seeded stream: text i is the same for the same (seed, stream, name_held_out), so
a training run that stops and resumes reads the same texts. It is made in chunks of `chunk`
texts, each with its own random stream and its own balanced question sampler.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from ..errors import InputError
from .captions import caption, paraphrase, vocabulary
from .question_grammar import ANSWERS, PLURALS, QUESTION_WORDS, pairs_named, parse_question
from .questions import KINDS, QuestionSampler
from .scenes import COLORS, SHAPES, sample_scene
from .splits import HELD_OUT_PAIRS
from .tokenizer import CaptionTokenizer

SEP = "."  # ends the scene's text before its question
DESCRIBE = "describe the image ."  # the instruction answered with the caption
LM_WORDS: tuple[str, ...] = (SEP, "describe")  # beyond chapter 9's question tokenizer
SOURCES: tuple[str, ...] = ("caption", "paraphrase", "qa")
STREAMS: dict[str, int] = {"train": 10, "val": 11}  # far from splits.SPLITS (0 to 3)


def lm_tokenizer() -> CaptionTokenizer:
    """Chapter 9's question tokenizer grown by ".", "describe": every word of the corpus.
    A caption or a question keeps its ids."""
    return CaptionTokenizer.from_words([*vocabulary(), *QUESTION_WORDS, *ANSWERS, *LM_WORDS])


def qa_prompt(scene_text: str, question: str) -> str:
    """What comes before the answer: "<caption> . <question>"."""
    return f"{scene_text} {SEP} {question}"


class LMText(NamedTuple):
    """One text of the corpus and where it came from: caption, paraphrase, describe, or the
    question kind of chapter 9 (exist, count, query, relation, compare)."""

    text: str
    kind: str


@dataclass(frozen=True)
class TextCorpus:
    """A seeded stream of shapes-world texts; corpus[i] is text i, corpus.texts(start, n) a run.

    mix: the shares of caption, paraphrase and question-and-answer texts; describe: the share
    of question-and-answer texts that are "describe the image ." answered by the caption.
    """

    seed: int = 0
    name_held_out: bool = True
    stream: str = "train"
    mix: tuple[float, float, float] = (0.15, 0.15, 0.7)
    describe: float = 0.15
    chunk: int = 2048

    def __post_init__(self) -> None:
        if not isinstance(self.name_held_out, bool):
            raise InputError("name_held_out", "True or False", repr(self.name_held_out))
        if self.stream not in STREAMS:
            raise InputError("stream", f"one of {tuple(STREAMS)}", repr(self.stream))
        mix = self.mix
        if len(mix) != len(SOURCES) or min(mix) < 0 or not np.isclose(sum(mix), 1.0):
            raise InputError("mix", f"{len(SOURCES)} shares >= 0 summing to 1 {SOURCES}", mix)
        if not 0.0 <= self.describe <= 1.0:
            raise InputError("describe", "a share in [0, 1]", self.describe)
        if isinstance(self.chunk, bool) or not isinstance(self.chunk, int) or self.chunk < 1:
            raise InputError("chunk", "a positive int", repr(self.chunk))

    def __getitem__(self, i: int) -> LMText:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or i < 0:
            raise InputError("index", "an int >= 0", repr(i))
        return _chunk(self, int(i) // self.chunk)[int(i) % self.chunk]

    def texts(self, start: int, n: int) -> list[LMText]:
        """Texts start .. start + n - 1 of the stream."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InputError("n", "an int >= 0", repr(n))
        return [self[i] for i in range(start, start + n)]


@lru_cache(maxsize=4)
def _chunk(corpus: TextCorpus, c: int) -> tuple[LMText, ...]:
    """Chunk c of a corpus: scenes from the random stream (seed, stream, c)."""
    rng = np.random.default_rng([corpus.seed, STREAMS[corpus.stream], c])
    held_out = "any" if corpus.name_held_out else "avoid"
    exclude = frozenset() if corpus.name_held_out else HELD_OUT_PAIRS
    sampler = QuestionSampler(int(rng.integers(2**31)), held_out)
    out = []
    for _ in range(corpus.chunk):
        scene = sample_scene(rng, exclude_pairs=exclude)
        source = SOURCES[int(rng.choice(len(SOURCES), p=corpus.mix))]
        if source == "caption":
            out.append(LMText(caption(scene), "caption"))
        elif source == "paraphrase":
            out.append(LMText(paraphrase(scene, rng), "paraphrase"))
        elif rng.random() < corpus.describe:
            text = caption(scene)
            out.append(LMText(f"{qa_prompt(text, DESCRIBE)} {text}", "describe"))
        else:
            qa = sampler.ask(scene)[0]
            out.append(LMText(f"{qa_prompt(caption(scene), qa.question)} {qa.answer}", qa.kind))
    return tuple(out)


def named_pairs(text: str) -> set[tuple[str, str]]:
    """The (colour, shape) pairs a corpus text names: a colour word just before a shape word
    ("red triangle", "red triangles"), or a question whose answer completes a pair
    ("what colour is the triangle ? red")."""
    words = text.split()
    found = {
        (a, PLURALS.get(b, b))
        for a, b in zip(words, words[1:], strict=False)
        if a in COLORS and (b in SHAPES or b in PLURALS)
    }
    if "?" in words:  # "<scene> . <question> ? <answer>"
        k = words.index("?")
        start = words.index(SEP) + 1 if SEP in words[:k] else 0
        question, answer = " ".join(words[start : k + 1]), " ".join(words[k + 1 :])
        found |= pairs_named(parse_question(question), answer)
    return found


KINDS_OF_TEXT: tuple[str, ...] = ("caption", "paraphrase", "describe", *KINDS)
