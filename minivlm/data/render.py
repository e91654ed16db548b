"""Drawing scenes as RGB images, vectorised over a whole batch (chapter 1).

Every shape is drawn from its signed distance field (negative inside, positive outside, in pixels):
coverage = clip(0.5 - distance, 0, 1) gives anti-aliased edges for free. Objects are grouped by
shape, so the maths is one broadcast numpy expression per shape over (objects, w, w) windows
around the objects; no Python loop runs per pixel. Since objects never overlap, the image is the
background plus, for each object, its coverage times (colour - background): one slice-add.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .scenes import BACKGROUND, COLORS, SHAPES, Scene

MIN_SIZE, MAX_SIZE = 8, 512
_COLOR_TABLE = np.array(list(COLORS.values()), dtype=np.float32)  # (C, 3)
_COLOR_INDEX = {name: i for i, name in enumerate(COLORS)}
# every pixel lies between the background and a colour; noise below this margin stays in 0..255
_SAFE_NOISE = min(float(min(BACKGROUND)), 255.0 - float(_COLOR_TABLE.max())) / 255 - 0.002


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"size must be an int number of pixels, got {type(size).__name__}")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be in [{MIN_SIZE}, {MAX_SIZE}] pixels, got {size}")
    return int(size)


def _sdf(shape: str, dx: np.ndarray, dy: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Signed distance to the shape's edge. dx: (M, 1, W), dy: (M, H, 1), r: (M, 1, 1)."""
    if shape == "circle":
        return np.sqrt(dx * dx + dy * dy) - r  # (M, H, W)
    if shape == "square":
        h = r * 0.86  # a square of half-side 0.886 r has the circle's area; a touch smaller
        return np.maximum(np.abs(dx), np.abs(dy)) - h
    if shape == "triangle":
        # equilateral, apex up, centroid at the centre, circumradius 1.15 r (so its area ~ circle's)
        R = r * 1.15
        s = np.float32(np.sqrt(3.0) / 2.0)
        bottom = dy - R * 0.5  # below the base edge
        right = s * dx - 0.5 * dy - R * 0.5  # outside the right edge
        left = -s * dx - 0.5 * dy - R * 0.5  # outside the left edge
        return np.maximum(np.maximum(bottom, right), left)
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def render(
    scenes: Sequence[Scene], size: int = 64, noise: float = 0.02, seed: int = 0
) -> np.ndarray:
    """Draw scenes as uint8 images of shape (N, size, size, 3).

    noise: the amplitude of uniform pixel noise, as a fraction of 255 (0 turns it off). The
    noise comes from `seed`, so the same scenes, size and seed always give the same pixels.
    """
    if isinstance(scenes, Scene):
        raise TypeError("render takes a sequence of Scene objects; wrap a single scene in a list")
    if not all(isinstance(s, Scene) for s in scenes):
        raise TypeError("render takes a sequence of Scene objects")
    size = _check_size(size)
    if not 0.0 <= noise <= 0.5:
        raise ValueError(f"noise must be in [0, 0.5], got {noise}")
    n = len(scenes)
    bg = np.array(BACKGROUND, dtype=np.float32)[:, None, None]  # (3, 1, 1)
    img = np.empty((n, 3, size, size), dtype=np.float32)  # (N, 3, H, W): channels first is
    if noise > 0:  # faster for the whole-image passes below; luminance noise, same on all channels
        rng = np.random.default_rng(seed)
        u = np.frombuffer(rng.bytes(n * size * size), dtype=np.uint8).reshape(n, 1, size, size)
        np.multiply(u, np.float32(2 * noise), out=img)  # (N, 1, H, W) -> (N, 3, H, W)
        img += bg + np.float32(0.5 - 255 * noise)  # + 0.5: the cast to uint8 truncates; round
    else:
        img[:] = bg + np.float32(0.5)
    objs = [(i, o) for i, s in enumerate(scenes) for o in s.objects]
    if objs:
        cx = np.array([o.x for _, o in objs], dtype=np.float32) * size  # (M,) pixel units
        cy = np.array([o.y for _, o in objs], dtype=np.float32) * size
        rad = np.array([o.radius for _, o in objs], dtype=np.float32) * size
        shape = np.array([SHAPES.index(o.shape) for _, o in objs])
        tint = _COLOR_TABLE[[_COLOR_INDEX[o.color] for _, o in objs]] - bg[:, 0, 0]  # (M, 3)
        # each object is drawn in a w x w window around it, not over the whole image
        w = min(size, int(np.ceil(2 * 1.15 * float(rad.max()))) + 3)
        x0 = np.clip(np.floor(cx - w / 2).astype(int), 0, size - w)  # (M,) window corners
        y0 = np.clip(np.floor(cy - w / 2).astype(int), 0, size - w)
        grid = np.arange(w, dtype=np.float32) + 0.5  # pixel centres within a window
        alpha = np.empty((len(objs), w, w), dtype=np.float32)  # (M, w, w) coverage
        for k, name in enumerate(SHAPES):
            sel = np.flatnonzero(shape == k)
            if sel.size:
                dx = grid[None, None, :] + (x0[sel] - cx[sel])[:, None, None]  # (m, 1, w)
                dy = grid[None, :, None] + (y0[sel] - cy[sel])[:, None, None]  # (m, w, 1)
                d = _sdf(name, dx, dy, rad[sel, None, None])  # (m, w, w)
                alpha[sel] = np.clip(0.5 - d, 0.0, 1.0)
        paint = alpha[:, None] * tint[:, :, None, None]  # (M, 3, w, w)
        # objects never overlap, so each one adds its tint where it covers: one slice-add each
        for m, (i, _) in enumerate(objs):
            img[i, :, y0[m] : y0[m] + w, x0[m] : x0[m] + w] += paint[m]
    if noise > _SAFE_NOISE:  # only strong noise can push a pixel outside 0..255
        np.clip(img, 0, 255, out=img)
    return img.transpose(0, 2, 3, 1).astype(np.uint8)  # (N, H, W, 3)
