"""Turning an image into tokens: CNN grid features and ViT patches (chapter 4).

notebooks/04_image_and_text_tokens.ipynb derives both:

* ViT: cut the image into p x p patches, flatten each, project it linearly. A convolution with
  kernel = stride = p computes exactly that (`patchify` + `nn.Linear` == `PatchEmbed`).
* CNN grid: residual 3x3 conv blocks that halve the resolution stage by stage until a small
  grid (e.g. 4 x 4) is left; each grid cell is one token that has seen a whole region.

`ViT` is a Vision Transformer that loads torchvision's `vit_b_16` state dict and reproduces it.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from einops import rearrange

from .text import sinusoidal_positions
from .transformer import Encoder


def _check_images(x: torch.Tensor, patch: int | None = None) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"images must be (B, 3, H, W), got {shape}")
    if not x.is_floating_point():
        raise TypeError(f"images must be float (see minivlm.data.to_tensor), got {x.dtype}")
    if patch and (x.shape[2] % patch or x.shape[3] % patch):
        raise ValueError(f"image size {tuple(x.shape[2:])} is not a multiple of the patch {patch}")


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, p*p*C): each row one flattened patch, row-major over the grid."""
    _check_images(images, patch)
    return rearrange(images, "b c (gh p1) (gw p2) -> b (gh gw) (p1 p2 c)", p1=patch, p2=patch)


class PatchEmbed(nn.Module):
    """ViT's patch embedding: a conv with kernel = stride = patch. (B, 3, H, W) -> (B, N, D)."""

    def __init__(self, d_model: int, patch: int, in_channels: int = 3):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(in_channels, d_model, kernel_size=patch, stride=patch)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images, self.patch)
        return rearrange(self.proj(images), "b d gh gw -> b (gh gw) d")  # (B, N, D)

    def as_linear(self) -> nn.Linear:
        """The same map as an nn.Linear on `patchify` output (the conv's weight, reordered)."""
        d, c, p, _ = self.proj.weight.shape
        lin = nn.Linear(p * p * c, d, device=self.proj.weight.device)  # where the conv is
        with torch.no_grad():
            lin.weight.copy_(rearrange(self.proj.weight, "d c p1 p2 -> d (p1 p2 c)"))
            lin.bias.copy_(self.proj.bias)
        return lin


def sinusoidal_positions_2d(
    grid_h: int, grid_w: int, d_model: int, base: float = 10000.0
) -> torch.Tensor:
    """(gh*gw, D): half of the features encode the row, half the column (1-D sinusoids each,
    `sinusoidal_positions` with this base)."""
    if d_model % 4:
        raise ValueError(f"d_model must be a multiple of 4 for 2-D positions, got {d_model}")
    rows = sinusoidal_positions(grid_h, d_model // 2, base)  # (gh, D/2)
    cols = sinusoidal_positions(grid_w, d_model // 2, base)  # (gw, D/2)
    return torch.cat(
        [rows[:, None, :].expand(grid_h, grid_w, -1), cols[None, :, :].expand(grid_h, grid_w, -1)],
        dim=-1,
    ).reshape(grid_h * grid_w, d_model)  # (gh*gw, D), row-major like patchify


class ChannelNorm(nn.LayerNorm):
    """LayerNorm over the channels of each pixel: (B, C, H, W). Unlike BatchNorm it does not
    depend on the batch, and unlike GroupNorm it does not mix statistics across the image, so
    a grid token depends only on the pixels in its receptive field."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ResBlock(nn.Module):
    """gelu(x + norm(conv(gelu(norm(conv(x)))))): two 3x3 convs with a skip, same resolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm1 = ChannelNorm(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2 = ChannelNorm(channels)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.norm1(self.conv1(x)))
        return self.act(x + self.norm2(self.conv2(h)))


class ConvStem(nn.Module):
    """A small CNN: (B, 3, S, S) -> grid tokens (B, G*G, D), G = `grid`.

    A stride-2 3x3 conv lifts RGB to `width` channels at half resolution; each further stage
    is a stride-2 conv that halves the resolution and doubles the channels (up to 4x width),
    followed by a residual block, until a G x G grid is left; a 1x1 conv maps to d_model.
    Each token has seen a whole region of the image, not one patch.
    """

    def __init__(self, image_size: int, d_model: int, grid: int = 4, width: int = 32):
        super().__init__()
        stages = math.log2(image_size / grid) if image_size >= 2 * grid else -1
        if stages < 1 or stages != int(stages):
            raise ValueError(
                f"image_size / grid must be a power of two >= 2, got {image_size} / {grid}"
            )
        self.image_size, self.grid = image_size, grid
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, stride=2, padding=1), nn.GELU()]
        c = width
        for _ in range(int(stages) - 1):
            c_out = min(2 * c, 4 * width)
            layers += [nn.Conv2d(c, c_out, 3, stride=2, padding=1), nn.GELU(), ResBlock(c_out)]
            c = c_out
        layers.append(nn.Conv2d(c, d_model, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images)
        if images.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"this stem expects {self.image_size}x{self.image_size} images, "
                f"got {tuple(images.shape[-2:])}"
            )
        return rearrange(self.net(images), "b d gh gw -> b (gh gw) d")  # (B, G*G, D)


class ViT(nn.Module):
    """A Vision Transformer: patch embedding, a [CLS] token, learned positions, a pre-LN
    encoder, and a classification head on the [CLS] output (num_classes=0: no head).

    tokens(images) -> (B, 1 + N, D) final hidden states; forward(images) -> head([CLS]).
    """

    def __init__(
        self,
        image_size: int = 224,
        patch: int = 16,
        d_model: int = 768,
        n_layers: int = 12,
        n_heads: int = 12,
        d_ff: int = 3072,
        num_classes: int = 1000,
        eps: float = 1e-6,
    ):
        super().__init__()
        if image_size % patch:
            raise ValueError(f"image_size {image_size} is not a multiple of patch {patch}")
        n_patches = (image_size // patch) ** 2
        self.patch_embed = PatchEmbed(d_model, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model))
        self.pos = nn.Parameter(torch.randn(1, 1 + n_patches, d_model) * 0.02)
        self.encoder = Encoder(n_layers, d_model, n_heads, d_ff, norm_first=True, eps=eps)
        self.head = nn.Linear(d_model, num_classes) if num_classes else nn.Identity()

    def tokens(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(images)  # (B, N, D)
        if x.shape[1] + 1 != self.pos.shape[1]:
            raise ValueError(
                f"got {x.shape[1]} patches, this ViT was built for {self.pos.shape[1] - 1}"
            )
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)  # (B, 1 + N, D)
        return self.encoder(x + self.pos)[0]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.tokens(images)[:, 0])  # (B, num_classes)

    @classmethod
    def from_torchvision(cls, tv: nn.Module) -> ViT:
        """Build a ViT with the shape and weights of a torchvision VisionTransformer."""
        layers = list(tv.encoder.layers)
        first = layers[0]
        model = cls(
            image_size=tv.image_size, patch=tv.patch_size, d_model=tv.hidden_dim,
            n_layers=len(layers), n_heads=first.num_heads, d_ff=first.mlp[0].out_features,
            num_classes=tv.heads.head.out_features, eps=first.ln_1.eps,
        )  # fmt: skip
        with torch.no_grad():
            model.patch_embed.proj.load_state_dict(tv.conv_proj.state_dict())
            model.cls.copy_(tv.class_token)
            model.pos.copy_(tv.encoder.pos_embedding)
            for ours, theirs in zip(model.encoder.layers, layers, strict=True):
                ours.attn.load_from_torch(theirs.self_attention)
                ours.norm1.load_state_dict(theirs.ln_1.state_dict())
                ours.norm2.load_state_dict(theirs.ln_2.state_dict())
                ours.ff.linear1.load_state_dict(theirs.mlp[0].state_dict())
                ours.ff.linear2.load_state_dict(theirs.mlp[3].state_dict())
            model.encoder.final_norm.load_state_dict(tv.encoder.ln.state_dict())
            model.head.load_state_dict(tv.heads.head.state_dict())
        return model
