"""The image pipeline shared by rendered scenes and real photos."""

import numpy as np
import pytest
import torch

from minivlm.data.images import PHOTOS, center_crop, load_photo, to_tensor, unnormalize


def test_to_tensor_range_layout_and_inverse():
    img = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    x = to_tensor(img)
    assert x.shape == (2, 3, 16, 16) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    back = np.round(unnormalize(x) * 255).astype(np.uint8)
    assert np.array_equal(back, img)


def test_single_image_and_resize_and_crop():
    img = np.zeros((20, 30, 3), dtype=np.uint8)
    img[:, 5:25] = 255  # the centred 20x20 square is white
    x = to_tensor(img, size=8)
    assert x.shape == (1, 3, 8, 8)
    torch.testing.assert_close(x, torch.ones_like(x))
    assert center_crop(np.zeros((10, 4, 3))).shape == (4, 4, 3)


@pytest.mark.parametrize("name", PHOTOS)
def test_real_photos_go_through_the_same_pipeline(name):
    photo = load_photo(name)
    assert photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[-1] == 3
    x = to_tensor(photo, size=64)
    assert x.shape == (1, 3, 64, 64) and x.std() > 0.05


@pytest.mark.parametrize(
    "arg, err, words",
    [
        (np.zeros((8, 8, 3), dtype=np.float32), TypeError, "uint8"),
        (np.zeros((8, 8), dtype=np.uint8), ValueError, r"\(H, W, 3\)"),
        (np.zeros((0, 8, 3), dtype=np.uint8), ValueError, "no pixels"),
        ([[0]], TypeError, "numpy uint8 array"),
    ],
)
def test_bad_images(arg, err, words):
    with pytest.raises(err, match=words):
        to_tensor(arg)


def test_unknown_photo():
    with pytest.raises(ValueError, match="expected one of"):
        load_photo("moon")


def test_load_image_crops_resizes_and_names_a_file_that_is_not_one(tmp_path):
    from PIL import Image

    from minivlm.data import load_image
    from minivlm.errors import InputError

    pixels = np.zeros((60, 90, 3), np.uint8)
    pixels[:, 15:75] = 200  # the centred 60 x 60 square is bright, the sides dark
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    out = load_image(tmp_path / "wide.png", 32)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8 and out.min() == 200
    (tmp_path / "text.jpg").write_text("no pixels here")
    with pytest.raises(InputError, match="image: expected a PNG or JPEG file"):
        load_image(tmp_path / "text.jpg")
    with pytest.raises(InputError, match="which does not exist"):
        load_image(tmp_path / "missing.png")
