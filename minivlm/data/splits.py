"""Train / val / test splits and the compositional split (chapter 1).

Scene i of a split is drawn from its own random stream, seeded by (seed, split, i): the splits use
disjoint seeds, so no scene of val or test is a copy of a training scene, and scene i never
depends on how many scenes were asked for. The compositional split ("comp") holds scenes in
which at least one object has a colour-shape pair that never occurs in train, val or test:
it asks whether a model composes "red" and "triangle" it has only seen apart.
"""

from __future__ import annotations

import numpy as np

from .scenes import Scene, sample_scene

SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2, "comp": 3}
# each held-out colour is still seen with two shapes, each shape with at least four colours
HELD_OUT_PAIRS: frozenset[tuple[str, str]] = frozenset(
    {("red", "triangle"), ("green", "circle"), ("blue", "square"), ("yellow", "triangle")}
)


def scene_rng(split: str, index: int, seed: int = 0) -> np.random.Generator:
    """The random stream of scene `index` of `split`; streams of different splits never meet."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {tuple(SPLITS)}")
    return np.random.default_rng([seed, SPLITS[split], index])


def make_scenes(split: str, n: int, seed: int = 0, n_objects: int | None = None) -> list[Scene]:
    """The first `n` scenes of a split. n_objects fixes the object count (None: 1 to 3)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an int number of scenes, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n must be at least 1 scene, got {n}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {tuple(SPLITS)}")
    if split == "comp":
        kwargs = {"require_pairs": HELD_OUT_PAIRS}
    else:
        kwargs = {"exclude_pairs": HELD_OUT_PAIRS}
    return [
        sample_scene(scene_rng(split, i, seed), n_objects=n_objects, **kwargs) for i in range(n)
    ]
