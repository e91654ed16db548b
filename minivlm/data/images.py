"""One image pipeline for rendered scenes and real photos (chapter 1).

Images enter as uint8 arrays (H, W, 3) or batches (N, H, W, 3), like a decoded photo. They leave
as float tensors (N, 3, S, S) scaled to [-1, 1]: channels first for convolutions, square, and
centred on zero. `unnormalize` undoes the scaling for plotting.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")  # colour photos that scikit-image ships


def center_crop(image: np.ndarray) -> np.ndarray:
    """The largest centred square of an (H, W, C) or (N, H, W, C) array."""
    h, w = image.shape[-3], image.shape[-2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return image[..., top : top + s, left : left + s, :]


def to_tensor(images: np.ndarray, size: int | None = None) -> torch.Tensor:
    """uint8 (H, W, 3) or (N, H, W, 3) -> float (N, 3, S, S) in [-1, 1].

    Non-square images are centre-cropped; with `size` they are resized (antialiased bilinear).
    """
    if not isinstance(images, np.ndarray):
        raise TypeError(f"to_tensor takes a numpy uint8 array, got {type(images).__name__}")
    if images.dtype != np.uint8:
        raise TypeError(f"to_tensor takes uint8 pixels in 0..255, got dtype {images.dtype}")
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected (H, W, 3) or (N, H, W, 3), got shape {images.shape}")
    if min(images.shape[1:3]) == 0:
        raise ValueError(f"image has no pixels: shape {images.shape}")
    images = center_crop(images)
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)  # (N, 3, H, W)
    x = x.float().div(127.5).sub(1.0)
    if size is not None and size != x.shape[-1]:
        if size < 1:
            raise ValueError(f"size must be a positive number of pixels, got {size}")
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
    return x


def unnormalize(x: torch.Tensor) -> np.ndarray:
    """float (3, S, S) or (N, 3, S, S) in [-1, 1] -> float (.., S, S, 3) in [0, 1] for imshow."""
    return x.detach().cpu().add(1.0).div(2.0).clamp(0, 1).movedim(-3, -1).numpy()


def load_photo(name: str = "astronaut") -> np.ndarray:
    """A real colour photo shipped with scikit-image (no download), as uint8 (H, W, 3)."""
    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; expected one of {PHOTOS}")
    from skimage import data

    return getattr(data, name)()


def load_image(path: str | os.PathLike, size: int | None = None) -> np.ndarray:
    """A picture file (PNG, JPEG, ...) as uint8 (S, S, 3): RGB, centre-cropped to a square and,
    with `size`, resized (antialiased). A file that is not an image raises InputError."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InputError("image", "an image file", f"{path}, which does not exist")
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            s = min(im.size)
            left, top = (im.width - s) // 2, (im.height - s) // 2
            im = im.crop((left, top, left + s, top + s))
            if size is not None and size != s:
                im = im.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
            return np.asarray(im, dtype=np.uint8).copy()  # (S, S, 3)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise InputError(
            "image", "a PNG or JPEG file", f"{path}, which is not one ({err})"
        ) from err
