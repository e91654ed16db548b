"""Pictures of what a captioner looks at (chapter 8): one attention map per generated word."""

from __future__ import annotations

import torch

from .data import CaptionTokenizer
from .data.images import unnormalize
from .train import evaluating


def word_attention(
    model, image: torch.Tensor, tok: CaptionTokenizer, layer: int = -1
) -> tuple[list[str], torch.Tensor]:
    """Caption one image (3, S, S) greedily; return its words and, for each word, the
    cross-attention (averaged over heads) of the step that wrote it, as (L, G, G) maps.

    The image tokens of the two-pathway encoder are shape tokens then colour tokens, one of
    each per cell it keeps; the map adds the two in their cell (a cell not kept stays 0), so it
    shows where in the picture the word looked. Encoders with one token per cell (cnn, vit)
    give the map directly.
    """
    if image.dim() != 3:
        raise ValueError(f"expected one image (3, S, S), got {tuple(image.shape)}")
    with evaluating(model):
        image = image[None].to(next(model.parameters()).device)  # (1, 3, S, S)
        tokens = model.image(image)  # (1, Ni, D)
        ids = model.decoder.generate(tokens, max_new=min(24, model.decoder.max_len - 1))[0]
        words = tok.decode(ids).split()
        seq = torch.tensor([[tok.bos_id] + ids.tolist()[: len(words)]], device=tokens.device)
        _, weights = model.decoder(seq[:, :-1] if words else seq, tokens, need_weights=True)
    w = weights[layer].mean(1)[0]  # (L, Ni): the input at position t writes word t
    grid = model.image.grid
    if hasattr(model.image, "cells"):  # the cells its tokens came from (B, K) (`keep`)
        cells = model.image.cells(image)[0]
    else:
        cells = torch.arange(grid * grid, device=w.device)
    cells = cells.repeat(w.shape[1] // len(cells))  # (Ni,): shape tokens, then colour tokens
    maps = w.new_zeros(w.shape[0], grid * grid).index_add_(1, cells, w)  # (L, G*G): their sum
    maps = maps.view(-1, grid, grid)  # (L, G, G)
    return words, maps[: len(words)]


def panel_grid(n: int, cols: int = 5, size: float = 2.0, figure=None):
    """n square panels in rows of at most `cols` (so none is narrower than about 150 px at
    the site's width); returns the figure and the n axes, with the spare ones of the last row
    hidden. `figure`: draw into this matplotlib Figure instead of a new pyplot one."""
    import math

    import matplotlib.pyplot as plt

    rows, cols = math.ceil(n / cols), min(n, cols)
    shape = (size * cols + 0.8, size * rows + 0.3 * rows)
    fig = figure if figure is not None else plt.figure(figsize=shape, layout="constrained")
    if figure is not None:
        fig.set_size_inches(*shape)
    axes = fig.subplots(rows, cols, squeeze=False).flatten()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, list(axes[:n])


def plot_word_attention(image: torch.Tensor, words: list[str], maps: torch.Tensor, axes=None):
    """The image, then one panel per word with its attention map laid over the image, on one
    colour scale (the bar on the right: the share of the word's attention in each cell).
    Without `axes`, the panels are laid out in rows by `panel_grid`."""
    if axes is None:
        _, axes = panel_grid(len(words) + 1)
    pixels = unnormalize(image)
    axes[0].imshow(pixels)
    axes[0].set_title("image", fontsize=9)
    size, top = pixels.shape[0], float(maps.max()) if len(maps) else 1.0
    shown = None
    for ax, word, m in zip(axes[1:], words, maps, strict=False):
        ax.imshow(pixels, alpha=0.5)
        shown = ax.imshow(
            m.cpu().numpy(), cmap="magma", alpha=0.6, extent=(0, size, size, 0), vmin=0, vmax=top
        )
        ax.set_title(word, fontsize=9)
    for ax in axes:
        ax.axis("off")
    if shown is not None:
        bar = axes[0].figure.colorbar(shown, ax=list(axes), fraction=0.03, pad=0.02)
        bar.set_label("share of the word's attention", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    return axes
