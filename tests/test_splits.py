"""Splits: disjoint seeds, a compositional split whose pairs never occur in training."""

import pytest

from minivlm.data.render import render
from minivlm.data.scenes import COLORS, SHAPES, pairs_of
from minivlm.data.splits import HELD_OUT_PAIRS, SPLITS, make_scenes, scene_rng


def test_splits_are_deterministic_and_prefix_stable():
    assert make_scenes("val", 20, seed=3) == make_scenes("val", 20, seed=3)
    assert make_scenes("val", 50, seed=3)[:20] == make_scenes("val", 20, seed=3)
    assert make_scenes("val", 20, seed=3) != make_scenes("val", 20, seed=4)


def test_split_streams_are_disjoint():
    states = {
        name: {scene_rng(name, i).bit_generator.state["state"]["state"] for i in range(500)}
        for name in SPLITS
    }
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                assert not states[a] & states[b]


def test_no_scene_or_image_is_shared_between_splits():
    scenes = {name: make_scenes(name, 300) for name in ("train", "val", "test")}
    images = {name: {im.tobytes() for im in render(s, 32, noise=0)} for name, s in scenes.items()}
    assert not set(scenes["train"]) & set(scenes["test"])
    assert not set(scenes["train"]) & set(scenes["val"])
    assert not images["train"] & images["test"]


def test_held_out_pairs_never_occur_in_train_val_or_test():
    for name in ("train", "val", "test"):
        seen = set().union(*(pairs_of(s) for s in make_scenes(name, 2000)))
        assert not seen & HELD_OUT_PAIRS, name
    train_pairs = set().union(*(pairs_of(s) for s in make_scenes("train", 2000)))
    all_pairs = {(c, s) for c in COLORS for s in SHAPES}
    assert train_pairs == all_pairs - HELD_OUT_PAIRS  # every other pair is seen
    # every colour and every shape of a held-out pair is still seen in training
    assert {c for c, _ in HELD_OUT_PAIRS} <= {c for c, _ in train_pairs}
    assert {s for _, s in HELD_OUT_PAIRS} <= {s for _, s in train_pairs}


def test_compositional_scenes_hold_a_held_out_pair():
    for scene in make_scenes("comp", 500):
        assert pairs_of(scene) & HELD_OUT_PAIRS


def test_object_count_can_be_fixed():
    assert {len(s) for s in make_scenes("test", 50, n_objects=2)} == {2}


@pytest.mark.parametrize(
    "args, err, words",
    [
        (("holdout", 5), ValueError, "unknown split 'holdout'"),
        (("train", 0), ValueError, "at least 1 scene"),
        (("train", 2.5), TypeError, "n must be an int"),
    ],
)
def test_bad_split_arguments(args, err, words):
    with pytest.raises(err, match=words):
        make_scenes(*args)
