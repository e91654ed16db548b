"""Questions about a scene: their grammar, a parser, and an executor that answers them (chapter 9).

Every question is one line of space-separated lowercase words ending with " ?":

    is there a red circle ?                               exist     yes / no
    how many squares are there ?                          count     zero / one / two / three
    what colour is the shape left of the small square ?   query     a colour, shape or size
    is the blue triangle above the green circle ?         relation  yes / no
    are there more circles than squares ?                 compare   yes / no

A description says some of (size, colour, shape) and ends in a shape word or "thing(s)". A
referring expression is "the" + a description, or "the shape <relation> the <description>": it
must pick out exactly one object. `parse_question` turns the text into a `Program`, `execute`
computes its answer from the scene's facts, and `answer(scene, text)` does both (typed text is
tidied first by `normalize_question`: "Is there an orange circle?" reads as "is there an orange
circle ?"). A question that is not of the grammar, or whose presupposition fails (two small
squares for "the small square", "left of" in a scene laid out top to bottom), raises
`InputError` with one line saying what was expected and what came.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from .scenes import COLORS, SHAPES, SIZES, Scene, SceneFacts, scene_facts

Desc = tuple[str | None, str | None, str | None]  # (size, color, shape); None: not said
SLOTS: tuple[str, ...] = ("size", "color", "shape")  # the order of Desc and of SceneFacts.objects
ATTRIBUTE_WORDS: dict[str, str] = {"size": "size", "colour": "color", "shape": "shape"}
# relation phrase -> (the relation of SceneFacts, reversed?): "A right of B" is "B left of A"
PHRASES: dict[str, tuple[str, bool]] = {
    "left of": ("left of", False),
    "right of": ("left of", True),
    "above": ("above", False),
    "below": ("above", True),
}
PLURALS: dict[str, str] = {f"{s}s": s for s in SHAPES}  # "circles" -> "circle"
COUNT_ANSWERS: tuple[str, ...] = ("zero", "one", "two", "three")
ANSWERS: tuple[str, ...] = ("yes", "no", *COUNT_ANSWERS, *SIZES, *COLORS, *SHAPES)
QUESTION_WORDS: tuple[str, ...] = (
    *("is", "there", "a", "an", "the", "how", "many", "are", "what", "more", "than", "as", "?"),
    *("thing", "things", *ATTRIBUTE_WORDS, "left", "right", "of", "above", "below"),
    *SIZES,
    *COLORS,
    *SHAPES,
    *PLURALS,
)


@dataclass(frozen=True)
class Ref:
    """A referring expression: "the <desc>", or "the shape <phrase> the <anchor>"."""

    desc: Desc
    phrase: str | None = None
    anchor: Desc | None = None


@dataclass(frozen=True)
class Program:
    """A parsed question: what to compute from a scene's facts."""

    kind: str  # exist, count, query, relation or compare
    descs: tuple[Desc, ...] = ()  # exist, count: one; compare: two
    refs: tuple[Ref, ...] = ()  # query: one; relation: two
    attribute: str | None = None  # query: "size", "color" or "shape"
    phrase: str | None = None  # relation: a key of PHRASES
    same: bool = False  # compare: "as many ... as" (True) or "more ... than" (False)

    @property
    def template(self) -> str:
        """The question's template: its kind plus which slots it fills, e.g. exist_color_shape."""
        if self.kind in ("exist", "count"):
            return f"{self.kind}_{_slots(self.descs[0])}"
        if self.kind == "query":
            return f"query_{self.attribute}" + ("_rel" if self.refs[0].phrase else "")
        if self.kind == "relation":
            return "relation"
        a, b = (_slots(d) for d in self.descs)
        return ("same_" if self.same else "more_") + (a if a == b else f"{a}_{b}")


def normalize_question(text: str) -> str:
    """Lowercase, one space between words, "?" as a word of its own, "color" spelled "colour"."""
    if not isinstance(text, str):
        raise TypeError(f"a question is a str, got {type(text).__name__}")
    words = text.lower().replace("?", " ? ").split()
    return " ".join("colour" if w == "color" else w for w in words)


def _slots(desc: Desc) -> str:
    return "_".join(name for name, v in zip(SLOTS, desc, strict=True) if v) or "any"


# ---- text -> Program ---------------------------------------------------------------------------


class _Words:
    """A cursor over the words of one question, raising InputError with the position on a miss."""

    def __init__(self, text: str):
        self.text, self.words, self.i = text, text.split(), 0
        if not self.words or self.words[-1] != "?" or self.words.count("?") > 1:
            raise InputError("question", "words ending with one '?'", repr(text))
        self.words.pop()

    def peek(self) -> str | None:
        return self.words[self.i] if self.i < len(self.words) else None

    def fail(self, expected: str) -> InputError:
        got = repr(self.peek()) if self.peek() else "the end"
        return InputError("question", f"{expected} at word {self.i}", f"{got} in {self.text!r}")

    def take(self, *words: str) -> None:
        for w in words:
            if self.peek() != w:
                raise self.fail(repr(w))
            self.i += 1

    def desc(self, plural: bool) -> Desc:
        size = self.peek() if self.peek() in SIZES else None
        self.i += size is not None
        color = self.peek() if self.peek() in COLORS else None
        self.i += color is not None
        noun, thing = self.peek(), "things" if plural else "thing"
        if noun != thing and noun not in (PLURALS if plural else SHAPES):
            raise self.fail(f"a size, colour or shape word, or {thing!r}")
        self.i += 1
        return (size, color, None if noun == thing else PLURALS.get(noun, noun))

    def phrase(self) -> str:
        for phrase in PHRASES:
            n = len(phrase.split())
            if self.words[self.i : self.i + n] == phrase.split():
                self.i += n
                return phrase
        raise self.fail(f"a relation, one of {tuple(PHRASES)}")

    def ref(self, relational: bool) -> Ref:
        self.take("the")
        if relational and self.peek() == "shape":  # "the shape left of the small square"
            self.i += 1
            phrase = self.phrase()
            return Ref((None, None, None), phrase, self.ref(relational=False).desc)
        return Ref(self.desc(plural=False))

    def end(self, program: Program) -> Program:
        if self.peek() is not None:
            raise self.fail("'?' to end the question")
        return program


def parse_question(text: str) -> Program:
    """Read a question of the grammar into a Program. Raises InputError otherwise."""
    w = _Words(normalize_question(text))
    first = w.peek()
    if first == "is" and w.words[1:2] == ["there"]:
        w.take("is", "there")
        w.take("an" if w.peek() == "an" else "a")
        return w.end(Program("exist", descs=(w.desc(plural=False),)))
    if first == "is":
        w.take("is")
        a = w.ref(relational=False)
        phrase = w.phrase()
        return w.end(Program("relation", refs=(a, w.ref(relational=False)), phrase=phrase))
    if first == "how":
        w.take("how", "many")
        desc = w.desc(plural=True)
        w.take("are", "there")
        return w.end(Program("count", descs=(desc,)))
    if first == "what":
        w.take("what")
        attribute = ATTRIBUTE_WORDS.get(w.peek() or "")
        if attribute is None:
            raise w.fail(f"an attribute, one of {tuple(ATTRIBUTE_WORDS)}")
        w.i += 1
        w.take("is")
        return w.end(Program("query", refs=(w.ref(relational=True),), attribute=attribute))
    if first == "are":
        w.take("are", "there")
        same = w.peek() == "as"
        w.take(*(("as", "many") if same else ("more",)))
        a = w.desc(plural=True)
        w.take("as" if same else "than")
        return w.end(Program("compare", descs=(a, w.desc(plural=True)), same=same))
    raise w.fail("a question opening 'is', 'how many', 'what', or 'are there'")


# ---- Program -> text ---------------------------------------------------------------------------


def desc_text(desc: Desc, plural: bool = False) -> str:
    size, color, shape = desc
    noun = ("things" if plural else "thing") if shape is None else shape + ("s" if plural else "")
    return " ".join(w for w in (size, color, noun) if w)


def ref_text(ref: Ref) -> str:
    if ref.phrase is None:
        return f"the {desc_text(ref.desc)}"
    return f"the shape {ref.phrase} the {desc_text(ref.anchor)}"  # type: ignore[arg-type]


def question_text(p: Program) -> str:
    """The words of a Program: parse_question(question_text(p)) == p."""
    if p.kind == "exist":
        description = desc_text(p.descs[0])
        return f"is there {'an' if description[0] in 'aeiou' else 'a'} {description} ?"
    if p.kind == "count":
        return f"how many {desc_text(p.descs[0], plural=True)} are there ?"
    if p.kind == "query":
        word = {v: k for k, v in ATTRIBUTE_WORDS.items()}[p.attribute]  # type: ignore[index]
        return f"what {word} is {ref_text(p.refs[0])} ?"
    if p.kind == "relation":
        return f"is {ref_text(p.refs[0])} {p.phrase} {ref_text(p.refs[1])} ?"
    a, b = (desc_text(d, plural=True) for d in p.descs)
    return f"are there as many {a} as {b} ?" if p.same else f"are there more {a} than {b} ?"


# ---- Program + facts -> answer -----------------------------------------------------------------


def matches(attributes: tuple[str, str, str], desc: Desc) -> bool:
    """Whether an object's (size, color, shape) fits a description."""
    size, color, shape = desc
    return (
        (size is None or size == attributes[0])
        and (color is None or color == attributes[1])
        and (shape is None or shape == attributes[2])
    )


def _count(facts: SceneFacts, desc: Desc) -> int:
    return sum(matches(o, desc) for o in facts.objects)


def _side(facts: SceneFacts, phrase: str, j: int) -> range:
    """Indices of the objects that are `phrase` object j (facts list them along the axis)."""
    relation, reverse = PHRASES[phrase]
    if facts.relation != relation:
        lines = {"left of": "objects in a row", "above": "objects in a column", None: "one object"}
        expected = f"{lines[relation]} for {phrase!r}"
        raise InputError("question", expected, f"a scene of {lines[facts.relation]}")
    return range(j + 1, facts.count) if reverse else range(j)


def resolve(facts: SceneFacts, ref: Ref) -> int:
    """The index (in facts.objects) of the one object the expression picks out."""
    if ref.phrase is None:
        found = [i for i, o in enumerate(facts.objects) if matches(o, ref.desc)]
    else:
        j = resolve(facts, Ref(ref.anchor))  # type: ignore[arg-type]
        found = [i for i in _side(facts, ref.phrase, j) if matches(facts.objects[i], ref.desc)]
    if len(found) != 1:
        got = f"{len(found)} such objects in the scene"
        raise InputError("question", f"{ref_text(ref)!r} to pick out exactly one object", got)
    return found[0]


def execute(facts: SceneFacts, p: Program) -> str:
    """The answer to a Program, read off the scene's facts: one word of ANSWERS."""
    if p.kind == "exist":
        return "yes" if _count(facts, p.descs[0]) else "no"
    if p.kind == "count":
        return COUNT_ANSWERS[_count(facts, p.descs[0])]
    if p.kind == "query":
        return facts.objects[resolve(facts, p.refs[0])][SLOTS.index(p.attribute)]  # type: ignore[arg-type]
    if p.kind == "relation":
        i, j = (resolve(facts, r) for r in p.refs)
        if i == j:
            raise InputError("question", "two different objects", "one object named twice")
        return "yes" if i in _side(facts, p.phrase, j) else "no"  # type: ignore[arg-type]
    a, b = (_count(facts, d) for d in p.descs)
    return "yes" if (a == b if p.same else a > b) else "no"


def answer(scene: Scene | SceneFacts, question: str) -> str:
    """Parse a question and answer it from the scene's facts (InputError if it cannot be)."""
    if not isinstance(scene, (Scene, SceneFacts)):
        raise TypeError(f"answer takes a Scene or SceneFacts, got {type(scene).__name__}")
    facts = scene if isinstance(scene, SceneFacts) else scene_facts(scene)
    return execute(facts, parse_question(question))


def pairs_named(p: Program, answer: str) -> set[tuple[str, str]]:
    """The (color, shape) pairs a question names together: in one description, or (for a query)
    its answer with the description of the object asked about ("what colour is the triangle ?"
    answered "red" names red triangle)."""
    descs = list(p.descs) + [r.anchor for r in p.refs if r.anchor is not None]
    for r in p.refs:
        d = list(r.desc)
        if p.kind == "query":
            d[SLOTS.index(p.attribute)] = answer  # type: ignore[arg-type]
        descs.append(tuple(d))  # type: ignore[arg-type]
    return {(d[1], d[2]) for d in descs if d[1] and d[2]}
