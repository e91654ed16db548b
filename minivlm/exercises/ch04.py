"""Chapter 4's auto-checked exercises: patchify, 1-D sinusoidal positions, 2-D positions.

Each exercise names a reference (the package's own code where it has one) and the mistakes a
learner is likely to make, written out as the wrong code they would write.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange

from ..text import sinusoidal_positions
from ..vision import patchify, sinusoidal_positions_2d
from .core import Case, Exercise, Mistake


def _image_cases() -> list[Case]:
    g = torch.Generator().manual_seed(41)
    counting = torch.arange(3 * 8 * 8, dtype=torch.float32).reshape(1, 3, 8, 8)  # (B, C, H, W)
    return [
        Case("one 8x8 image holding 0, 1, 2, ... and patch 4", (counting, 4)),
        Case("a 16x32 image (a 2x4 grid of patches), patch 8",
             (torch.randn(1, 3, 16, 32, generator=g), 8)),
        Case("B = 2, 32x32, patch 8", (torch.randn(2, 3, 32, 32, generator=g), 8)),
    ]  # fmt: skip


def _channels_first(images, patch):
    return rearrange(images, "b c (gh p1) (gw p2) -> b (gh gw) (c p1 p2)", p1=patch, p2=patch)


def _reshape_only(images, patch):
    b, c, h, w = images.shape
    return images.reshape(b, (h // patch) * (w // patch), patch * patch * c)


def _column_major(images, patch):
    return rearrange(images, "b c (gh p1) (gw p2) -> b (gw gh) (p1 p2 c)", p1=patch, p2=patch)


def _transposed_patch(images, patch):
    return rearrange(images, "b c (gh p1) (gw p2) -> b (gh gw) (p2 p1 c)", p1=patch, p2=patch)


def _length_cases() -> list[Case]:
    return [
        Case("T = 6, D = 8", (6, 8)),
        Case("T = 50, D = 16", (50, 16)),
        Case("T = 3, D = 2: one pair of features", (3, 2)),
    ]


def _pe(t: torch.Tensor, d_model: int, exponent: torch.Tensor) -> tuple[torch.Tensor, ...]:
    freq = torch.exp(-math.log(10000.0) * exponent)  # (D/2,)
    return torch.sin(t[:, None] * freq), torch.cos(t[:, None] * freq)  # (T, D/2) each


def _interleave(sin: torch.Tensor, cos: torch.Tensor) -> torch.Tensor:
    return torch.stack([sin, cos], dim=-1).flatten(1)  # (T, D): sin, cos, sin, cos, ...


def _halves(length, d_model):
    t = torch.arange(length, dtype=torch.float32)
    return torch.cat(_pe(t, d_model, torch.arange(0, d_model, 2) / d_model), dim=-1)


def _pair_exponent(length, d_model):
    t = torch.arange(length, dtype=torch.float32)
    return _interleave(*_pe(t, d_model, torch.arange(d_model // 2) / d_model))  # i/D, not 2i/D


def _from_one(length, d_model):
    t = torch.arange(1, length + 1, dtype=torch.float32)
    return _interleave(*_pe(t, d_model, torch.arange(0, d_model, 2) / d_model))


def _cos_first(length, d_model):
    t = torch.arange(length, dtype=torch.float32)
    sin, cos = _pe(t, d_model, torch.arange(0, d_model, 2) / d_model)
    return _interleave(cos, sin)


def _grid_cases() -> list[Case]:
    return [
        Case("a 2x3 grid, D = 8", (2, 3, 8)),
        Case("a 3x5 grid, D = 16", (3, 5, 16)),
        Case("a 4x4 grid, D = 16", (4, 4, 16)),
    ]


def _flat_index(grid_h, grid_w, d_model):
    return sinusoidal_positions(grid_h * grid_w, d_model)  # cell n at 1-D position n


def _added(grid_h, grid_w, d_model):
    rows, cols = sinusoidal_positions(grid_h, d_model), sinusoidal_positions(grid_w, d_model)
    return (rows[:, None] + cols[None, :]).reshape(grid_h * grid_w, d_model)


def _column_half_first(grid_h, grid_w, d_model):
    rows = sinusoidal_positions(grid_h, d_model // 2)[:, None].expand(grid_h, grid_w, -1)
    cols = sinusoidal_positions(grid_w, d_model // 2)[None, :].expand(grid_h, grid_w, -1)
    return torch.cat([cols, rows], dim=-1).reshape(grid_h * grid_w, d_model)


def _cells_by_column(grid_h, grid_w, d_model):
    pe = sinusoidal_positions_2d(grid_h, grid_w, d_model).reshape(grid_h, grid_w, d_model)
    return pe.transpose(0, 1).reshape(grid_h * grid_w, d_model)


EXERCISES = [
    Exercise(
        "4.1", "cutting an image into patches", patchify, _image_cases,
        mistakes=[
            Mistake("flatten each patch as (p1 p2 c): pixel by pixel, the three channels of a "
                    "pixel together (F.unfold gives (c p1 p2))", _channels_first),
            Mistake("a reshape alone cuts rows of pixels, not patches: split H into (gh p1) "
                    "and W into (gw p2), then bring gh and gw to the front", _reshape_only),
            Mistake("number the patches row by row, (gh gw): patch n sits in grid row "
                    "n // gw, column n % gw", _column_major),
            Mistake("inside a patch, rows come first: (p1 p2 c), not (p2 p1 c)",
                    _transposed_patch),
        ],
    ),
    Exercise(
        "4.2", "sinusoidal positions", sinusoidal_positions, _length_cases,
        mistakes=[
            Mistake("interleave: sin in the even features (pe[:, 0::2]), cos in the odd ones "
                    "(pe[:, 1::2]), not a block of sines then a block of cosines", _halves),
            Mistake("pair i has the frequency 1 / 10000^(2i/D): the exponent counts features "
                    "(0, 2, 4, ...), not pairs", _pair_exponent),
            Mistake("positions start at 0: the first row is sin(0) = 0, cos(0) = 1",
                    _from_one),
            Mistake("the even features hold the sines and the odd ones the cosines",
                    _cos_first),
        ],
    ),
    Exercise(
        "4.3", "2-D sinusoidal positions", sinusoidal_positions_2d, _grid_cases,
        mistakes=[
            Mistake("a 1-D position of the flat index makes the end of one row a neighbour of "
                    "the start of the next: encode the row and the column apart", _flat_index),
            Mistake("concatenate, don't add: the first D/2 features encode the row, the last "
                    "D/2 the column (sinusoids of size D/2 each)", _added),
            Mistake("the row comes first: features 0 to D/2 - 1 encode the row, the rest the "
                    "column", _column_half_first),
            Mistake("list the cells row by row, as patchify does: cell n is in row n // gw, "
                    "column n % gw", _cells_by_column),
        ],
    ),
]  # fmt: skip
