"""Scenes: validation, determinism, no overlap, unambiguous relations."""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minivlm.data.scenes import (
    AXIS_RATIO,
    COLORS,
    MARGIN,
    MAX_OBJECTS,
    SHAPES,
    Obj,
    Scene,
    relation_of,
    sample_scene,
    scene_facts,
)


def test_sampling_is_deterministic():
    a = [sample_scene(np.random.default_rng(7)) for _ in range(5)]
    b = [sample_scene(np.random.default_rng(7)) for _ in range(5)]
    assert a == b
    assert sample_scene(np.random.default_rng(8)) != a[0]


@given(st.integers(0, 2**32 - 1), st.sampled_from([None, 1, 2, 3]))
def test_sampled_scenes_never_overlap_and_stay_inside(seed, n):
    scene = sample_scene(np.random.default_rng(seed), n_objects=n)
    assert 1 <= len(scene) <= MAX_OBJECTS
    if n is not None:
        assert len(scene) == n
    for o in scene.objects:
        assert o.radius + MARGIN <= o.x <= 1 - o.radius - MARGIN
        assert o.radius + MARGIN <= o.y <= 1 - o.radius - MARGIN
    for a, b in itertools.combinations(scene.objects, 2):
        assert np.hypot(a.x - b.x, a.y - b.y) >= a.radius + b.radius + MARGIN - 1e-9


@given(st.integers(0, 2**32 - 1))
def test_relation_is_clear_between_neighbours(seed):
    scene = sample_scene(np.random.default_rng(seed), n_objects=3)
    facts = scene_facts(scene)
    axis = {"left of": 0, "above": 1}[facts.relation]
    ordered = sorted(scene.objects, key=lambda o: (o.x, o.y)[axis])
    for a, b in zip(ordered[:-1], ordered[1:], strict=True):
        along = (b.x - a.x, b.y - a.y)[axis]
        across = abs((b.x - a.x, b.y - a.y)[1 - axis])
        assert along >= AXIS_RATIO * across
        assert relation_of(a, b) == facts.relation


def test_all_shapes_colours_and_counts_occur():
    rng = np.random.default_rng(0)
    scenes = [sample_scene(rng) for _ in range(400)]
    assert {o.shape for s in scenes for o in s.objects} == set(SHAPES)
    assert {o.color for s in scenes for o in s.objects} == set(COLORS)
    assert {len(s) for s in scenes} == {1, 2, 3}


def test_hand_made_scene_and_facts():
    left = Obj("circle", "red", "small", 0.2, 0.5)
    right = Obj("square", "blue", "large", 0.7, 0.55)
    facts = scene_facts(Scene((right, left)))  # order of construction does not matter
    assert facts.objects == (("small", "red", "circle"), ("large", "blue", "square"))
    assert facts.relation == "left of" and facts.count == 2


def test_diagonal_layout_is_rejected_as_ambiguous():
    a = Obj("circle", "red", "small", 0.25, 0.25)
    b = Obj("square", "blue", "small", 0.7, 0.7)
    with pytest.raises(ValueError, match="ambiguous"):
        Scene((a, b))


def test_overlap_is_rejected():
    a = Obj("circle", "red", "large", 0.4, 0.5)
    b = Obj("circle", "blue", "large", 0.6, 0.5)
    with pytest.raises(ValueError, match="overlap"):
        Scene((a, b))


@pytest.mark.parametrize(
    "kwargs, err, words",
    [
        (dict(shape="hexagon"), ValueError, "expected one of"),
        (dict(color="teal"), ValueError, "unknown color 'teal'"),
        (dict(size="huge"), ValueError, "unknown size"),
        (dict(size=0), TypeError, "size must be a str"),
        (dict(x=1.5), ValueError, r"x must lie in \[0, 1\]"),
        (dict(y="0.5"), TypeError, "y must be a float"),
    ],
)
def test_bad_object_attributes_name_what_was_expected(kwargs, err, words):
    base = dict(shape="circle", color="red", size="small", x=0.5, y=0.5)
    with pytest.raises(err, match=words):
        Obj(**{**base, **kwargs})


def test_too_many_or_no_objects():
    row = [Obj("circle", "red", "small", x, 0.5) for x in (0.12, 0.35, 0.58, 0.81)]
    with pytest.raises(ValueError, match="1 to 3 objects, got 4"):
        Scene(tuple(row))
    with pytest.raises(ValueError, match="got 0"):
        Scene(())
    with pytest.raises(ValueError, match="n_objects must be in 1..3"):
        sample_scene(np.random.default_rng(0), n_objects=4)
    with pytest.raises(TypeError, match="n_objects must be an int"):
        sample_scene(np.random.default_rng(0), n_objects="2")
    with pytest.raises(TypeError, match="numpy Generator"):
        sample_scene(0)


def test_scene_from_facts_draws_exactly_the_facts_it_is_given():
    from minivlm.data import make_scenes, scene_facts, scene_from_facts

    for scene in make_scenes("train", 500, seed=11) + make_scenes("comp", 200):
        facts = scene_facts(scene)
        assert scene_facts(scene_from_facts(facts)) == facts
