"""Captions of the shapes world: a small grammar, its paraphrases, and a parser back to facts
(chapter 1).

Canonical caption (one per scene; objects left to right, or top to bottom):

    a small red circle
    a small red circle left of a large blue square
    a large green triangle above a small red circle above a small blue square

Paraphrases say the same facts differently ("there are two shapes :", "to the right of" with the
order reversed, "under", ...). `parse` maps every sentence the grammar can produce back to the
same `SceneFacts`, so a caption can be judged by what it says, not by its wording. Alt-text
(`alt_text`) is the noisy kind of text found beside web images: partial, a bag of words, or wrong.
Every token is separated by a space, so a word-level tokenizer round-trips the text exactly.
"""

from __future__ import annotations

import re

import numpy as np

from .scenes import COLORS, MAX_OBJECTS, SHAPES, SIZES, Scene, SceneFacts, sample_scene, scene_facts

COUNT_WORDS = ("one", "two", "three")
# relation phrase -> (canonical relation, reversed?): reversed phrases name the objects backwards
RELATION_PHRASES: dict[str, tuple[str, bool]] = {
    "left of": ("left of", False),
    "to the left of": ("left of", False),
    "right of": ("left of", True),
    "to the right of": ("left of", True),
    "above": ("above", False),
    "over": ("above", False),
    "below": ("above", True),
    "under": ("above", True),
}
PREFIXES: tuple[str, ...] = ("", "there is", "a picture of", "an image of", "a photo of")
ALT_KINDS: tuple[str, ...] = ("full", "partial", "bag", "wrong")
ALT_WEIGHTS: tuple[float, ...] = (0.25, 0.35, 0.25, 0.15)


def noun_phrase(attributes: tuple[str, str, str]) -> str:
    size, color, shape = attributes
    return f"a {size} {color} {shape}"


def _join(phrases: list[str], relation_phrase: str | None) -> str:
    return f" {relation_phrase} ".join(phrases) if relation_phrase else phrases[0]


def caption(scene: Scene | SceneFacts) -> str:
    """The canonical caption: the one sentence a captioner is trained and scored on."""
    facts = scene if isinstance(scene, SceneFacts) else scene_facts(_check_scene(scene))
    return _join([noun_phrase(a) for a in facts.objects], facts.relation)


def paraphrase(scene: Scene | SceneFacts, rng: np.random.Generator) -> str:
    """A random sentence of the grammar that states exactly the facts of `scene`."""
    facts = scene if isinstance(scene, SceneFacts) else scene_facts(_check_scene(scene))
    phrases = [noun_phrase(a) for a in facts.objects]
    rel = None
    if facts.relation is not None:
        choices = [p for p, (r, _) in RELATION_PHRASES.items() if r == facts.relation]
        rel = choices[int(rng.integers(len(choices)))]
        if RELATION_PHRASES[rel][1]:
            phrases.reverse()
    body = _join(phrases, rel)
    n = facts.count
    options = [p for p in PREFIXES if not (p == "there is" and n > 1)]
    count = f"{COUNT_WORDS[n - 1]} {'shape' if n == 1 else 'shapes'} :"
    options += [count, f"there {'is' if n == 1 else 'are'} {count}"]
    prefix = options[int(rng.integers(len(options)))]
    return f"{prefix} {body}" if prefix else body


_PREFIX = re.compile(
    r"^(?:(?:there (?:is|are) )?(?P<count>one|two|three) shapes? : "
    r"|(?:there is|a picture of|an image of|a photo of) )"
)


def parse(text: str) -> SceneFacts:
    """Read a sentence of the grammar back into scene facts. Raises ValueError otherwise."""
    if not isinstance(text, str):
        raise TypeError(f"parse takes a caption str, got {type(text).__name__}")
    text = " ".join(text.split())
    if not text:
        raise ValueError("cannot parse an empty caption")
    prefix = _PREFIX.match(text)
    stated = None
    if prefix:
        stated = COUNT_WORDS.index(prefix["count"]) + 1 if prefix["count"] else None
        text = text[prefix.end() :]
    words, i = text.split(), 0
    objects: list[tuple[str, str, str]] = []
    relations: list[str] = []
    while True:
        np_words = words[i : i + 4]
        if len(np_words) < 4 or np_words[0] != "a":
            raise ValueError(
                f"expected 'a <size> <color> <shape>' at word {i}, got {' '.join(np_words)!r}"
            )
        _, size, color, shape = np_words
        for name, value, choices in (
            ("size", size, SIZES),
            ("color", color, COLORS),
            ("shape", shape, SHAPES),
        ):
            if value not in choices:
                raise ValueError(f"unknown {name} {value!r}; expected one of {tuple(choices)}")
        objects.append((size, color, shape))
        i += 4
        if i == len(words):
            break
        for phrase in sorted(RELATION_PHRASES, key=len, reverse=True):
            pw = phrase.split()
            if words[i : i + len(pw)] == pw:
                relations.append(phrase)
                i += len(pw)
                break
        else:
            raise ValueError(f"expected a relation such as 'left of' at word {i}, got {words[i]!r}")
    if len(objects) > MAX_OBJECTS:
        raise ValueError(f"a caption names at most {MAX_OBJECTS} objects, got {len(objects)}")
    if len(set(relations)) > 1:
        raise ValueError(f"one caption uses one relation phrase, got {sorted(set(relations))}")
    if stated is not None and stated != len(objects):
        raise ValueError(f"the caption says {stated} shape(s) but names {len(objects)}")
    relation = None
    if relations:
        relation, reverse = RELATION_PHRASES[relations[0]]
        if reverse:
            objects.reverse()
    return SceneFacts(tuple(objects), relation)


def try_parse(text: str) -> SceneFacts | None:
    """`parse`, or None where the text is not a sentence of the grammar (partial texts, bags of
    words, free text): for filters and metrics that count such texts rather than stop on them."""
    try:
        return parse(text)
    except ValueError:
        return None


def alt_text(scene: Scene, rng: np.random.Generator, kind: str | None = None) -> tuple[str, str]:
    """Noisy web-style text for a scene: (text, kind) with kind in ALT_KINDS.

    full: a paraphrase; partial: some objects, some attributes dropped; bag: the caption's
    content words shuffled; wrong: the caption of another random scene.
    """
    if kind is None:
        kind = ALT_KINDS[int(rng.choice(len(ALT_KINDS), p=ALT_WEIGHTS))]
    if kind not in ALT_KINDS:
        raise ValueError(f"unknown alt-text kind {kind!r}; expected one of {ALT_KINDS}")
    facts = scene_facts(_check_scene(scene))
    if kind == "full":
        return paraphrase(facts, rng), kind
    if kind == "partial":
        k = int(rng.integers(1, facts.count + 1))
        keep = sorted(rng.choice(facts.count, size=k, replace=False))
        parts = []
        for j in keep:
            size, color, shape = facts.objects[j]
            words = [w for w, p in ((size, 0.4), (color, 0.7)) if rng.random() < p] + [shape]
            parts.append("a " + " ".join(words))
        return " and ".join(parts), kind
    if kind == "bag":
        words = sorted({w for a in facts.objects for w in a})
        if facts.relation:
            words += facts.relation.split()[:1]
        return " ".join(rng.permutation(words)), kind
    other = sample_scene(rng)
    while scene_facts(other) == facts:  # pragma: no cover - a repeat draw is rare
        other = sample_scene(rng)
    return caption(other), kind


def vocabulary() -> list[str]:
    """Every word the grammar and the alt-text can produce, in a fixed order."""
    words: list[str] = []
    for group in (
        ["a", "and", ":", "shape", "shapes", "there", "is", "are"],
        list(SIZES),
        list(COLORS),
        list(SHAPES),
        list(COUNT_WORDS),
        [w for p in RELATION_PHRASES for w in p.split()],
        [w for p in PREFIXES for w in p.split()],
    ):
        for w in group:
            if w not in words:
                words.append(w)
    return words


def _check_scene(scene: object) -> Scene:
    if not isinstance(scene, Scene):
        raise TypeError(f"expected a Scene, got {type(scene).__name__}")
    return scene
