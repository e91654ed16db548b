"""VQA questions (chapter 9): answers checked against an independent reading of the scene,
balanced answers and the blind baseline, determinism, the compositional split, clear errors."""

import re
from collections import Counter, defaultdict

import numpy as np
import pytest

from minivlm.data.datasets import ShapesCaptions
from minivlm.data.questions import (
    ANSWERS,
    KINDS,
    QUESTION_WORDS,
    TEMPLATES,
    QuestionSampler,
    QuestionSet,
    ShapesQuestions,
    answer,
    blind_rates,
    blind_report,
    make_questions,
    parse_question,
    question_text,
    question_tokenizer,
)
from minivlm.data.scenes import COLORS, SHAPES, SIZES, Obj, Scene
from minivlm.data.splits import HELD_OUT_PAIRS
from minivlm.errors import InputError

# ---- an independent reader: regular expressions over the text, geometry from Obj.x / Obj.y ----

NUMBERS = ("zero", "one", "two", "three")


def fits(o: Obj, words: str) -> bool:
    """Whether object o fits a description such as "small red thing" or "squares"."""
    for w in words.split():
        if w in SIZES and o.size != w or w in COLORS and o.color != w:
            return False
        if w.rstrip("s") in SHAPES and o.shape != w.rstrip("s"):
            return False
    return True


def is_side(a: Obj, b: Obj, phrase: str) -> bool:
    """Whether a is `phrase` b, read from the centres (x right, y down)."""
    dx, dy = b.x - a.x, b.y - a.y  # from a to b
    vector = {"left of": (dx, dy), "right of": (-dx, dy), "above": (dy, dx), "below": (-dy, dx)}
    along, across = vector[phrase]
    return along > abs(across)


def the(scene: Scene, words: str) -> Obj:
    found = [o for o in scene.objects if fits(o, words)]
    assert len(found) == 1, (words, scene)
    return found[0]


def read(scene: Scene, q: str) -> str:
    """Answer a generated question straight from the scene's objects."""
    objs, rel = scene.objects, r"(left of|right of|above|below)"
    attr = {"colour": "color", "shape": "shape", "size": "size"}
    if m := re.fullmatch(r"is there an? (.+) \?", q):
        return "yes" if any(fits(o, m[1]) for o in objs) else "no"
    if m := re.fullmatch(r"how many (.+) are there \?", q):
        return NUMBERS[sum(fits(o, m[1]) for o in objs)]
    if m := re.fullmatch(rf"what (\w+) is the shape {rel} the (.+) \?", q):
        anchor = the(scene, m[3])
        (found,) = [o for o in objs if o is not anchor and is_side(o, anchor, m[2])]
        return getattr(found, attr[m[1]])
    if m := re.fullmatch(r"what (\w+) is the (.+) \?", q):
        return getattr(the(scene, m[2]), attr[m[1]])
    if m := re.fullmatch(rf"is the (.+) {rel} the (.+) \?", q):
        return "yes" if is_side(the(scene, m[1]), the(scene, m[3]), m[2]) else "no"
    if m := re.fullmatch(r"are there (more|as many) (.+) (?:than|as) (.+) \?", q):
        a, b = (sum(fits(o, m[i]) for o in objs) for i in (2, 3))
        return "yes" if (a > b if m[1] == "more" else a == b) else "no"
    raise AssertionError(f"the reader does not know {q!r}")


def pairs_in(q: str) -> set[tuple[str, str]]:
    """The (colour, shape) pairs a question's words name side by side ("red triangles")."""
    return {
        (c, s.rstrip("s"))
        for c, s in zip(q.split(), q.split()[1:], strict=False)
        if c in COLORS and s.rstrip("s") in SHAPES
    }


@pytest.fixture(scope="module")
def train() -> QuestionSet:
    return make_questions("train", 1500, 5, seed=0)


@pytest.fixture(scope="module")
def comp() -> QuestionSet:
    return make_questions("comp", 300, 5, seed=0)


# ---- answers -----------------------------------------------------------------------------------


def test_answers_agree_with_an_independent_reading(train, comp):
    for qs in (train, comp):
        for k, (q, a) in enumerate(zip(qs.questions, qs.answers, strict=True)):
            assert read(qs.scenes[qs.which[k]], q) == a, q
    assert set(train.kinds) == set(KINDS)
    assert set(train.templates) == {t for ts in TEMPLATES.values() for t in ts}


def test_hand_made_scene():
    # a row, left to right: small red square, small blue square, large green circle
    scene = Scene(
        (
            Obj("square", "red", "small", 0.2, 0.5),
            Obj("square", "blue", "small", 0.5, 0.52),
            Obj("circle", "green", "large", 0.8, 0.48),
        )
    )
    expected = {
        "is there a red circle ?": "no",
        "is there an orange thing ?": "no",
        "Is there a large green circle?": "yes",
        "how many squares are there ?": "two",
        "how many small things are there ?": "two",
        "how many triangles are there ?": "zero",
        "what colour is the shape left of the blue square ?": "red",
        "what shape is the shape right of the blue thing ?": "circle",
        "what size is the green thing ?": "large",
        "What color is the circle?": "green",
        "is the blue square left of the green circle ?": "yes",
        "is the green circle left of the red square ?": "no",
        "is the green circle right of the red square ?": "yes",
        "are there more squares than circles ?": "yes",
        "are there more circles than squares ?": "no",
        "are there as many red things as blue things ?": "yes",
    }
    for q, a in expected.items():
        assert answer(scene, q) == a, q
    with pytest.raises(InputError, match="exactly one object, got 0"):  # nothing left of red
        answer(scene, "what colour is the shape left of the small red square ?")
    with pytest.raises(InputError, match="exactly one object, got 2"):
        answer(scene, "what colour is the shape right of the red square ?")


def test_questions_parse_back_and_use_known_words(train, comp):
    words, answers = set(QUESTION_WORDS), set(ANSWERS)
    for qs in (train, comp):
        for q, a, t in zip(qs.questions, qs.answers, qs.templates, strict=True):
            p = parse_question(q)
            assert question_text(p) == q and p.template == t
            assert set(q.split()) <= words and a in answers
    tok = question_tokenizer()
    ids = tok.encode(" ".join([*QUESTION_WORDS, *ANSWERS]), add_special=False)
    assert tok.unk_id not in ids
    assert question_text(parse_question("is there a orange square ?")) == (
        "is there an orange square ?"
    )


# ---- balance and the blind baseline ------------------------------------------------------------


def test_answers_are_balanced_within_each_template(train):
    by_template: dict[str, Counter] = defaultdict(Counter)
    for a, t in zip(train.answers, train.templates, strict=True):
        by_template[t][a] += 1
    for t, counts in by_template.items():
        top = counts.most_common(1)[0][1] / sum(counts.values())
        if set(counts) <= {"yes", "no"}:
            assert top <= 0.52, (t, counts)  # yes / no: as close to even as the scenes allow
        else:
            assert len(counts) >= 2 and top <= 0.55, (t, counts)


def test_blind_rate_stays_near_the_majority_answer(train):
    test = make_questions("test", 400, 5, seed=0)
    rates = blind_rates(train, test)
    assert set(rates) == {*KINDS, "all"} and rates["all"].n == 2000
    for kind in ("exist", "relation", "compare"):
        assert rates[kind].majority <= 0.56, (kind, rates[kind])
    for kind in ("count", "query"):
        assert rates[kind].majority <= 0.45, (kind, rates[kind])
    for kind, r in rates.items():
        assert r.blind <= r.majority + 0.04, (kind, r)


def test_blind_rates_detect_a_leak():
    # a generator whose longer descriptions always answer "no" (the leak the prototype had)
    qs = ["is there a circle ?", "is there a small red circle ?"] * 50
    kinds = ["exist"] * 100
    leaky = QuestionSet([], np.zeros(100, dtype=np.int64), qs, ["yes", "no"] * 50, kinds, kinds)
    r = blind_rates(leaky, leaky)["exist"]
    assert r.majority == 0.5 and r.blind == 1.0


def test_blind_report_prints_every_kind():
    report = blind_report(n_scenes=200, questions_per_scene=5)
    for kind in (*KINDS, "all"):
        assert re.search(rf"^{kind}\s+\d+\s+0\.\d{{4}}\s+0\.\d{{4}}$", report, re.M), kind


# ---- determinism and the compositional split ---------------------------------------------------


def test_same_seed_same_questions_and_prefix_stable(train):
    again = make_questions("train", 200, 5, seed=0)
    assert again.questions == train.questions[:1000] and again.answers == train.answers[:1000]
    other = make_questions("train", 200, 5, seed=1)
    assert other.questions != again.questions
    a = QuestionSampler(seed=3).ask(train.scenes[0], 4)
    assert a == QuestionSampler(seed=3).ask(train.scenes[0], 4) and len(set(a)) == 4


def test_comp_questions_ask_about_held_out_pairs(train, comp):
    for q in train.questions:
        assert not pairs_in(q) & HELD_OUT_PAIRS, q
    for q, a in zip(comp.questions, comp.answers, strict=True):
        named = pairs_in(q)
        # the answer can complete the pair: "what colour is the triangle ?" answered "red"
        if m := re.fullmatch(r"what colour is the (?:\w+ )?(\w+) \?", q):
            named.add((a, m[1]))
        if m := re.fullmatch(r"what shape is the (?:\w+ )?(\w+) thing \?", q):
            named.add((m[1], a))
        assert named & HELD_OUT_PAIRS, (q, a)
    assert {"exist", "count", "query", "relation"} <= set(comp.kinds)
    # held-out pairs are asked about both where they are and where they are not
    exist = Counter(a for a, t in zip(comp.answers, comp.templates, strict=True) if "exist" in t)
    assert min(exist["yes"], exist["no"]) >= 50, exist


# ---- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "question, expected, got",
    [
        ("is there a red circle", "ending with one '?'", "'is there a red circle'"),
        ("is there a pink circle ?", "a size, colour or shape word", "'pink'"),
        ("how many squares ?", "'are'", "the end"),
        ("what is it ?", "an attribute", "'is'"),
        ("why is the sky blue ?", "a question opening", "'why'"),
        ("is there a red circle ? now", "ending with one '?'", "now"),
        ("is the red square near the green circle ?", "a relation", "'near'"),
        ("are there more circles than squares than triangles ?", "'?'", "'than'"),
    ],
)
def test_malformed_questions_get_one_line_errors(question, expected, got):
    with pytest.raises(InputError) as info:
        parse_question(question)
    message = str(info.value)
    assert "\n" not in message and message.startswith("question: expected")
    assert expected in message.split(", got")[0] and got in message.split(", got")[1]


def test_presupposition_failures_get_one_line_errors():
    row = Scene((Obj("square", "red", "small", 0.2, 0.5), Obj("square", "red", "large", 0.7, 0.5)))
    cases = {
        "what colour is the red square ?": "exactly one object, got 2 such objects",
        "is the small square left of the blue circle ?": "exactly one object, got 0 such objects",
        "is the small square above the large square ?": "objects in a column",
        "is the small square left of the small red square ?": "two different objects",
    }
    for q, match in cases.items():
        with pytest.raises(InputError, match=match) as info:
            answer(row, q)
        assert "\n" not in str(info.value)
    with pytest.raises(TypeError, match="str"):
        parse_question(3)
    with pytest.raises(TypeError, match="Scene"):
        answer("a scene", "is there a circle ?")


def test_sampler_and_make_questions_check_their_arguments():
    with pytest.raises(ValueError, match="held_out"):
        QuestionSampler(held_out="never")
    one = Scene((Obj("circle", "red", "small", 0.5, 0.5),))
    with pytest.raises(ValueError, match="different questions fit"):
        QuestionSampler().ask(one, 1000)
    with pytest.raises(ValueError, match="1..20"):
        make_questions("train", 2, questions_per_scene=0)
    with pytest.raises(ValueError, match="split"):
        make_questions("holdout", 2)


# ---- the dataset -------------------------------------------------------------------------------


def test_shapes_questions_share_chapter_1_images():
    ds = ShapesQuestions("val", 6, questions_per_scene=3, size=32, seed=2)
    captions = ShapesCaptions("val", 6, size=32, seed=2)
    assert len(ds) == 18 and np.array_equal(ds.images, captions.images)
    item = ds[7]
    assert item["image"].shape == (3, 32, 32)  # (3, S, S)
    assert item["image"].equal(captions[2]["image"])  # question 7 is about scene 7 // 3
    assert ANSWERS[item["answer_id"]] == item["answer"] == answer(ds.scenes[2], item["question"])
