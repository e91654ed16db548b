"""Wrong answers to chapter 4's exercises."""

import math

import torch
import torch.nn.functional as F


def unfold_patches(images, patch):
    return F.unfold(images, kernel_size=patch, stride=patch).transpose(1, 2)


def view_as_patches(images, patch):
    b, c, h, w = images.shape
    return images.view(b, -1, c * patch * patch)


def patches_column_by_column(images, patch):
    b, c, h, w = images.shape
    x = images.reshape(b, c, h // patch, patch, w // patch, patch)  # b c gh p1 gw p2
    x = x.permute(0, 4, 2, 3, 5, 1)  # b gw gh p1 p2 c
    return x.reshape(b, -1, patch * patch * c)


def patches_transposed(images, patch):
    b, c, h, w = images.shape
    x = images.reshape(b, c, h // patch, patch, w // patch, patch)
    x = x.permute(0, 2, 4, 5, 3, 1)  # b gh gw p2 p1 c
    return x.reshape(b, -1, patch * patch * c)


def _angles(length, d_model, start=0, per_pair=False):
    pos = torch.arange(start, start + length).float().unsqueeze(1)  # (T, 1)
    i = torch.arange(d_model // 2).float()
    exponent = i / d_model if per_pair else 2 * i / d_model
    return pos / torch.pow(10000.0, exponent)  # (T, D/2)


def sines_then_cosines(length, d_model):
    a = _angles(length, d_model)
    return torch.cat([a.sin(), a.cos()], dim=1)


def exponent_per_pair(length, d_model):
    a = _angles(length, d_model, per_pair=True)
    pe = torch.empty(length, d_model)
    pe[:, 0::2], pe[:, 1::2] = a.sin(), a.cos()
    return pe


def positions_from_one(length, d_model):
    a = _angles(length, d_model, start=1)
    pe = torch.empty(length, d_model)
    pe[:, 0::2], pe[:, 1::2] = a.sin(), a.cos()
    return pe


def cosines_in_even_features(length, d_model):
    a = _angles(length, d_model)
    pe = torch.empty(length, d_model)
    pe[:, 0::2], pe[:, 1::2] = a.cos(), a.sin()
    return pe


def _pe1d(length, d_model):
    pe = torch.zeros(length, d_model)
    for t in range(length):
        for i in range(0, d_model, 2):
            pe[t, i] = math.sin(t / 10000 ** (i / d_model))
            pe[t, i + 1] = math.cos(t / 10000 ** (i / d_model))
    return pe


def flattened_grid(grid_h, grid_w, d_model):
    return _pe1d(grid_h * grid_w, d_model)


def row_plus_column(grid_h, grid_w, d_model):
    rows, cols = _pe1d(grid_h, d_model), _pe1d(grid_w, d_model)
    return torch.stack([rows[r] + cols[c] for r in range(grid_h) for c in range(grid_w)])


def column_features_first(grid_h, grid_w, d_model):
    rows, cols = _pe1d(grid_h, d_model // 2), _pe1d(grid_w, d_model // 2)
    return torch.stack(
        [torch.cat([cols[c], rows[r]]) for r in range(grid_h) for c in range(grid_w)]
    )


def column_major_cells(grid_h, grid_w, d_model):
    rows, cols = _pe1d(grid_h, d_model // 2), _pe1d(grid_w, d_model // 2)
    return torch.stack(
        [torch.cat([rows[r], cols[c]]) for c in range(grid_w) for r in range(grid_h)]
    )


WRONG = {
    "4.1": [(unfold_patches, "F.unfold"), (view_as_patches, "reshape alone"),
            (patches_column_by_column, "row by row"), (patches_transposed, "rows come first")],
    "4.2": [(sines_then_cosines, "interleave"), (exponent_per_pair, "counts features"),
            (positions_from_one, "start at 0"), (cosines_in_even_features, "even features hold")],
    "4.3": [(flattened_grid, "flat index"), (row_plus_column, "don't add"),
            (column_features_first, "row comes first"), (column_major_cells, "as patchify does")],
}  # fmt: skip
