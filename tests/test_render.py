"""Rendering: shapes land where the scene says, in their colour, deterministically."""

import numpy as np
import pytest

from minivlm.data.render import render
from minivlm.data.scenes import BACKGROUND, COLORS, Obj, Scene, sample_scene
from minivlm.data.splits import make_scenes


def test_render_shapes_and_dtype():
    scenes = make_scenes("train", 5)
    for size in (32, 64, 128):
        img = render(scenes, size)
        assert img.shape == (5, size, size, 3) and img.dtype == np.uint8


def test_render_is_deterministic_and_noise_follows_the_seed():
    scenes = make_scenes("train", 4)
    assert np.array_equal(render(scenes, 32, seed=1), render(scenes, 32, seed=1))
    assert not np.array_equal(render(scenes, 32, seed=1), render(scenes, 32, seed=2))
    clean = render(scenes, 32, noise=0)
    assert np.array_equal(clean, render(scenes, 32, noise=0, seed=9))
    assert np.abs(render(scenes, 32, noise=0.02).astype(int) - clean).max() <= 6


def test_object_centre_has_its_colour_and_background_elsewhere():
    scene = Scene(
        (Obj("circle", "orange", "large", 0.3, 0.5), Obj("square", "blue", "small", 0.75, 0.5))
    )
    img = render([scene], 64, noise=0)[0].astype(int)
    assert tuple(img[32, int(0.3 * 64)]) == COLORS["orange"]
    assert tuple(img[32, int(0.75 * 64)]) == COLORS["blue"]
    assert tuple(img[5, 5]) == BACKGROUND and tuple(img[60, 60]) == BACKGROUND


@pytest.mark.parametrize(
    "shape, area", [("circle", np.pi), ("square", 4 * 0.86**2), ("triangle", None)]
)
def test_shape_areas_match_geometry(shape, area):
    # coverage summed over the image ~ the shape's area in pixels
    scene = Scene((Obj(shape, "red", "large", 0.5, 0.5),))
    img = render([scene], 128, noise=0)[0].astype(float)
    red = np.array(COLORS["red"]) - np.array(BACKGROUND)
    coverage = ((img - BACKGROUND) @ red / (red @ red)).sum()
    r = 0.14 * 128
    expected = (area if area else 3 * np.sqrt(3) / 4 * 1.15**2) * r * r
    assert coverage == pytest.approx(expected, rel=0.02)


def test_shapes_differ_from_each_other():
    imgs = [
        render([Scene((Obj(s, "red", "large", 0.5, 0.5),))], 64, noise=0)[0]
        for s in ("circle", "square", "triangle")
    ]
    assert not np.array_equal(imgs[0], imgs[1]) and not np.array_equal(imgs[1], imgs[2])


def test_every_object_is_visible():
    rng = np.random.default_rng(3)
    scenes = [sample_scene(rng, n_objects=3) for _ in range(50)]
    imgs = render(scenes, 32, noise=0).astype(int)
    for scene, img in zip(scenes, imgs, strict=True):
        for o in scene.objects:
            y, x = int(o.y * 32), int(o.x * 32)
            assert tuple(img[y, x]) == COLORS[o.color], (o, img[y, x])


@pytest.mark.parametrize(
    "kwargs, err, words",
    [
        (dict(size=0), ValueError, r"size must be in \[8, 512\]"),
        (dict(size=32.0), TypeError, "size must be an int"),
        (dict(noise=-0.1), ValueError, "noise must be in"),
    ],
)
def test_bad_render_arguments(kwargs, err, words):
    with pytest.raises(err, match=words):
        render(make_scenes("train", 1), **kwargs)


def test_render_wants_a_list_of_scenes():
    scene = make_scenes("train", 1)[0]
    with pytest.raises(TypeError, match="wrap a single scene in a list"):
        render(scene)
    with pytest.raises(TypeError, match="sequence of Scene"):
        render(["a red circle"])
