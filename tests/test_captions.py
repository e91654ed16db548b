"""Captions: one canonical sentence per scene, paraphrases, and the parser's round trip."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minivlm.data.captions import (
    ALT_KINDS,
    RELATION_PHRASES,
    alt_text,
    caption,
    noun_phrase,
    paraphrase,
    parse,
    try_parse,
    vocabulary,
)
from minivlm.data.scenes import (
    COLORS,
    SHAPES,
    SIZES,
    Obj,
    Scene,
    SceneFacts,
    sample_scene,
    scene_facts,
)

seeds = st.integers(0, 2**32 - 1)
attributes = st.tuples(
    st.sampled_from(list(SIZES)), st.sampled_from(list(COLORS)), st.sampled_from(SHAPES)
)


@st.composite
def facts(draw):
    """Any facts the grammar can state, including ones no sampled scene happens to have."""
    objects = tuple(draw(st.lists(attributes, min_size=1, max_size=3)))
    relation = None if len(objects) == 1 else draw(st.sampled_from(["left of", "above"]))
    return SceneFacts(objects, relation)


def test_canonical_caption_reads_left_to_right():
    scene = Scene(
        (Obj("square", "blue", "large", 0.7, 0.5), Obj("circle", "red", "small", 0.2, 0.45))
    )
    assert caption(scene) == "a small red circle left of a large blue square"
    scene = Scene(
        (Obj("triangle", "green", "small", 0.5, 0.8), Obj("circle", "red", "small", 0.5, 0.2))
    )
    assert caption(scene) == "a small red circle above a small green triangle"


@given(seeds)
def test_parse_inverts_the_canonical_caption_of_sampled_scenes(seed):
    scene = sample_scene(np.random.default_rng(seed))
    assert parse(caption(scene)) == scene_facts(scene)


@given(facts(), seeds)
def test_parse_inverts_every_paraphrase(f, seed):
    text = paraphrase(f, np.random.default_rng(seed))
    assert parse(text) == f
    assert caption(parse(text)) == caption(f)


def test_paraphrases_vary_but_state_the_same_facts():
    scene = sample_scene(np.random.default_rng(1), n_objects=2)
    rng = np.random.default_rng(0)
    texts = {paraphrase(scene, rng) for _ in range(200)}
    assert len(texts) > 10
    assert any(" right of " in t for t in texts) or any(" below " in t for t in texts)
    assert {parse(t) for t in texts} == {scene_facts(scene)}


def test_reversed_relation_words_reverse_the_order():
    a = parse("a small red circle to the right of a large blue square")
    assert a.objects == (("large", "blue", "square"), ("small", "red", "circle"))
    assert a.relation == "left of"
    b = parse("there are two shapes : a small red circle under a large blue square")
    assert b.objects[0] == ("large", "blue", "square") and b.relation == "above"


@pytest.mark.parametrize(
    "text, words",
    [
        ("", "empty caption"),
        ("a small teal circle", "unknown color 'teal'"),
        ("a huge red circle", "unknown size"),
        ("a small red hexagon", "unknown shape"),
        ("a small red circle near a small blue square", "expected a relation"),
        ("a small red", "expected 'a <size> <color> <shape>'"),
        ("two shapes : a small red circle", "says 2 shape"),
        ("a small red circle left of a small red circle above a small red square", "one relation"),
        (
            " left of ".join(["a small red circle"] * 4),
            "at most 3 objects",
        ),
    ],
)
def test_parse_rejects_text_outside_the_grammar(text, words):
    with pytest.raises(ValueError, match=words):
        parse(text)


def test_parse_wants_a_string():
    with pytest.raises(TypeError, match="caption str"):
        parse(["a", "small"])


def test_try_parse_gives_none_outside_the_grammar_and_the_facts_inside():
    text = "there are two shapes : a large blue square right of a small red circle"
    assert try_parse(text) == parse(text)
    assert try_parse("a red circle") is None and try_parse("circle red small") is None
    with pytest.raises(TypeError, match="caption str"):  # a wrong type is still an error
        try_parse(None)


@given(seeds)
def test_alt_text_kinds(seed):
    rng = np.random.default_rng(seed)
    scene = sample_scene(rng)
    for kind in ALT_KINDS:
        text, k = alt_text(scene, rng, kind)
        assert k == kind and text
        words = set(text.split())
        assert words <= set(vocabulary())
        if kind == "full":
            assert parse(text) == scene_facts(scene)
        if kind == "partial":  # each named shape is really there
            shapes = {w for w in words if w in SHAPES}
            assert shapes <= {o.shape for o in scene.objects}
        if kind == "wrong":  # the caption of another scene, with other facts
            assert parse(text) != scene_facts(scene)
        if kind == "bag":
            assert {o.color for o in scene.objects} <= words


def test_alt_text_mix_is_noisy():
    rng = np.random.default_rng(0)
    scenes = [sample_scene(rng) for _ in range(400)]
    kinds = [alt_text(s, rng)[1] for s in scenes]
    assert set(kinds) == set(ALT_KINDS)
    assert kinds.count("wrong") / len(kinds) == pytest.approx(0.15, abs=0.06)
    with pytest.raises(ValueError, match="unknown alt-text kind"):
        alt_text(scenes[0], rng, "spam")


def test_vocabulary_covers_the_grammar_once():
    vocab = vocabulary()
    assert len(vocab) == len(set(vocab))
    for phrase in RELATION_PHRASES:
        assert set(phrase.split()) <= set(vocab)
    assert set(noun_phrase(("small", "red", "circle")).split()) <= set(vocab)
