"""Three image encoders for the capstone, one choice in `ModelConfig.encoder` (chapter 8).

Each turns images (B, 3, S, S) into tokens (B, Ni, D) and knows its `grid` G, so that a word's
cross-attention can be drawn as a G x G map (`minivlm.viz`):

* `TwoPathwayEncoder` ("two_pathway"): a silhouette CNN for shape and a per-cell MLP for colour,
  their tokens kept apart (2*G*G tokens, or 2*K: the K cells that hold the most object).
  Built for the shapes world's flat background, it is what lets the captioner name a
  colour-shape pair that training never showed.
* `GridEncoder` ("cnn"): chapter 4's CNN grid, one token per cell (G*G tokens), for any image.
* `PatchEncoder` ("vit"): chapter 4's ViT on patches of S/G pixels (G*G tokens), for any image.

`bench/capstone.py --what encoders` measures what the two-pathway bias buys at equal wall time.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.scenes import BACKGROUND
from ..vision import ConvStem, ViT, sinusoidal_positions_2d
from .config import ModelConfig


class TwoPathwayEncoder(nn.Module):
    """Images (B, 3, S, S) -> (B, 2*G*G, D): G*G shape tokens, then G*G colour tokens.

    * The silhouette m = how far each pixel is from the background colour, squashed to [0, 1].
      It is the same for a red and a blue triangle, so the shape pathway, a small strided CNN
      on m, cannot learn that "red things are not triangles".
    * The colour pathway sees only the mean foreground colour of each cell, sum(x m) / sum(m),
      through a per-cell MLP: it knows nothing of shape.
    Both get the 2D sinusoidal position of their cell (`pos_base`: see `sinusoidal_positions`)
    and a learned type vector.

    forward(images, hide_colour) zeroes the colour tokens of the rows that hide_colour (B,) bool
    marks: the image as the shape pathway alone sees it (colour dropout, `Captioner`).

    keep = K > 0 keeps, of each pathway, only the K cells that hold the most object (`cells`),
    in raster order: 2*K tokens. A scene covers few cells (1 to 3 small objects), so the empty
    ones the decoder would attend to add cost and nothing to read. keep = 0 keeps all G*G.
    """

    def __init__(
        self,
        image_size: int,
        d_model: int,
        grid: int = 8,
        width: int = 16,
        keep: int = 0,
        pos_base: float = 10000.0,
    ):
        super().__init__()
        stages = int(math.log2(image_size // grid))
        layers: list[nn.Module] = []
        c = 1
        for i in range(stages):
            layers += [nn.Conv2d(c, width * 2**i, 3, stride=2, padding=1), nn.GELU()]
            c = width * 2**i
        layers += [nn.Conv2d(c, c, 3, padding=1), nn.GELU()]
        self.shape_net = nn.Sequential(*layers)
        self.colour_net = nn.Sequential(nn.Linear(3, 32), nn.GELU(), nn.Linear(32, 32))
        self.shape_proj = nn.Linear(c + 1, d_model)
        self.colour_proj = nn.Linear(32 + 1, d_model)
        self.shape_norm, self.colour_norm = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        pos = sinusoidal_positions_2d(grid, grid, d_model, pos_base)  # (G*G, D)
        self.register_buffer("pos", pos, persistent=False)
        self.type_emb = nn.Parameter(torch.randn(2, d_model) * 0.02)  # shape, colour
        bg = torch.tensor(BACKGROUND, dtype=torch.float32).div(127.5).sub(1.0)
        self.register_buffer("background", bg.view(1, 3, 1, 1), persistent=False)
        self.image_size, self.grid, self.cell = image_size, grid, image_size // grid
        self.keep = keep

    def silhouette(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) in [-1, 1] -> (B, 1, S, S): 0 on the background, 1 inside objects."""
        dist = (images - self.background).norm(dim=1, keepdim=True)
        return ((dist - 0.15) / 0.3).clamp(0.0, 1.0)

    def cover(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, G*G): how much of each cell is object, in [0, 1]."""
        return F.avg_pool2d(self.silhouette(images), self.cell).flatten(1)

    def cells(self, images: torch.Tensor) -> torch.Tensor:
        """The cells whose tokens `forward` returns, (B, K) indices into the G*G grid (raster
        order); every cell when keep = 0."""
        cover = self.cover(images)  # (B, G*G)
        return _top_cells(cover, self.keep)

    def forward(
        self, images: torch.Tensor, hide_colour: torch.Tensor | None = None
    ) -> torch.Tensor:
        _check(images, self.image_size)
        m = self.silhouette(images)  # (B, 1, S, S)
        cover = F.avg_pool2d(m, self.cell).flatten(1)  # (B, G*G): how much of each cell is object
        shape = self.shape_net(m).flatten(2).transpose(1, 2)  # (B, G*G, C)
        colour = F.avg_pool2d(images * m, self.cell).flatten(2).transpose(1, 2)  # (B, G*G, 3)
        colour = colour / (cover[..., None] + 1e-3)  # the mean colour of each cell's object
        pos = self.pos.expand(len(images), -1, -1)  # (B, G*G, D)
        if self.keep:  # only the K fullest cells go on: (B, K, .) each
            idx = _top_cells(cover, self.keep)  # (B, K)
            shape, colour, pos = (_gather(x, idx) for x in (shape, colour, pos))
            cover = cover.gather(1, idx)
        cover = cover[..., None]  # (B, K, 1)
        shape = torch.cat([shape, cover], -1)  # (B, K, C+1)
        colour = torch.cat([self.colour_net(colour), cover], -1)  # (B, K, 33)
        s = self.shape_norm(self.shape_proj(shape) + pos + self.type_emb[0])  # (B, K, D)
        c = self.colour_norm(self.colour_proj(colour) + pos + self.type_emb[1])
        if hide_colour is not None:
            c = c * (~hide_colour).to(c.dtype)[:, None, None]  # hidden rows: zeros
        return torch.cat([s, c], dim=1)  # (B, 2*K, D)


def _top_cells(cover: torch.Tensor, keep: int) -> torch.Tensor:
    """(B, G*G) cover -> (B, K) indices of the K fullest cells, in raster order (all if 0)."""
    if not keep:
        return torch.arange(cover.shape[1], device=cover.device).expand(len(cover), -1)
    return cover.topk(keep, dim=1).indices.sort(dim=1).values


def _gather(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x (B, N, C), idx (B, K) -> (B, K, C): the rows idx names."""
    return x.gather(1, idx[..., None].expand(-1, -1, x.shape[-1]))


class GridEncoder(nn.Module):
    """Chapter 4's CNN grid: ConvStem tokens (B, G*G, D) plus 2D positions, then LayerNorm."""

    def __init__(
        self,
        image_size: int,
        d_model: int,
        grid: int = 8,
        width: int = 16,
        pos_base: float = 10000.0,
    ):
        super().__init__()
        self.stem = ConvStem(image_size, d_model, grid=grid, width=width)
        pos = sinusoidal_positions_2d(grid, grid, d_model, pos_base)  # (G*G, D)
        self.register_buffer("pos", pos, persistent=False)
        self.norm = nn.LayerNorm(d_model)
        self.image_size, self.grid = image_size, grid

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check(images, self.image_size)
        return self.norm(self.stem(images) + self.pos)  # (B, G*G, D)


class PatchEncoder(nn.Module):
    """Chapter 4's ViT on G x G patches of S/G pixels; its patch tokens (B, G*G, D) ([CLS]
    dropped: the decoder reads the regions)."""

    def __init__(self, image_size: int, d_model: int, grid: int, n_layers: int, n_heads: int):
        super().__init__()
        self.vit = ViT(image_size, image_size // grid, d_model, n_layers, n_heads, 4 * d_model, 0)
        self.image_size, self.grid = image_size, grid

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check(images, self.image_size)
        return self.vit.tokens(images)[:, 1:]  # (B, G*G, D)


def image_encoder(m: ModelConfig) -> nn.Module:
    """The encoder that `m.encoder` names, built to m's sizes."""
    if m.encoder == "two_pathway":
        return TwoPathwayEncoder(m.image_size, m.d_model, m.grid, m.width, m.keep_cells, m.pos_base)
    if m.encoder == "cnn":
        return GridEncoder(m.image_size, m.d_model, m.grid, m.width, m.pos_base)
    return PatchEncoder(m.image_size, m.d_model, m.grid, m.vit_layers, m.n_heads)


def _check(images: torch.Tensor, size: int) -> None:
    if images.dim() != 4 or images.shape[1:] != (3, size, size):
        raise ValueError(f"expected images (B, 3, {size}, {size}), got {tuple(images.shape)}")
