"""Scaled dot-product attention and multi-head attention, from scratch (chapter 2).

notebooks/02_self_attention.ipynb derives every line: scores are dot products q.k, scaled by
1/sqrt(d) so their spread does not grow with the head size, turned into weights by a softmax over
the keys, and used to average the values. Masks say which keys a query may see.

Mask convention, used everywhere in minivlm: a boolean mask is True where attention is ALLOWED
(like the attention_mask of Hugging Face tokenizers, and unlike the key_padding_mask of
torch.nn.MultiheadAttention, where True means "ignore"). A query whose keys are all masked gets
all-zero weights and a zero output, never NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange


def _check_mask(mask: torch.Tensor, shape: tuple[int, ...], name: str) -> None:
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise TypeError(f"{name} must be a bool tensor (True = may attend), got {got}")
    try:
        torch.broadcast_shapes(mask.shape, shape)
    except RuntimeError:
        raise ValueError(
            f"{name} of shape {tuple(mask.shape)} does not broadcast to scores {shape}"
        ) from None


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    training: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T / sqrt(d)) v, written out.

    q: (..., Tq, d), k: (..., Tk, d), v: (..., Tk, dv); mask: bool, broadcastable to
    (..., Tq, Tk), True where a query may attend to a key.
    Returns the output (..., Tq, dv) and the weights (..., Tq, Tk).
    """
    if q.dim() < 2 or k.dim() != q.dim() or v.dim() != q.dim():
        raise ValueError(
            f"q, k, v must have the same rank >= 2, got {tuple(q.shape)}, {tuple(k.shape)}, "
            f"{tuple(v.shape)}"
        )
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"need q (..., Tq, d), k (..., Tk, d), v (..., Tk, dv); got {tuple(q.shape)}, "
            f"{tuple(k.shape)}, {tuple(v.shape)}"
        )
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., Tq, Tk)
    if mask is not None:
        _check_mask(mask, tuple(scores.shape), "mask")
        # the most negative finite number, not -inf: a fully masked row stays finite (no NaN)
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = scores.softmax(dim=-1)  # (..., Tq, Tk)
    if mask is not None:
        weights = weights * mask.any(dim=-1, keepdim=True)  # fully masked rows -> all zeros
    if dropout_p > 0.0 and training:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ v, weights  # (..., Tq, dv), (..., Tq, Tk)


def causal_mask(
    t_q: int, t_k: int | None = None, device: torch.device | None = None
) -> torch.Tensor:
    """(Tq, Tk) bool, True on and below the diagonal: query i sees keys 0..i.

    With Tk > Tq (a KV cache holding Tk - Tq earlier tokens) query i sits at position
    Tk - Tq + i and sees keys up to it.
    """
    t_k = t_q if t_k is None else t_k
    offset = t_k - t_q
    i = torch.arange(t_q, device=device)[:, None]
    j = torch.arange(t_k, device=device)[None, :]
    return j <= i + offset  # (Tq, Tk)


@dataclass
class KVCache:
    """Keys and values of the tokens seen so far, for one attention layer (chapter 7).

    Self-attention appends each new token's key and value; cross-attention (static=True)
    computes the image's keys and values once and reuses them for every generated word.
    """

    k: torch.Tensor | None = None  # (B, h, T, dh)
    v: torch.Tensor | None = None  # (B, h, T, dh)
    static: bool = False

    def __len__(self) -> int:
        return 0 if self.k is None else self.k.shape[-2]

    def update(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.k is None or self.static:
            self.k, self.v = k, v
        else:
            self.k = torch.cat([self.k, k], dim=-2)  # (B, h, T_past + T_new, dh)
            self.v = torch.cat([self.v, v], dim=-2)
        return self.k, self.v

    def reorder(self, index: torch.Tensor) -> None:
        """Keep batch rows `index` (beam search reorders its hypotheses)."""
        if self.k is not None:
            self.k, self.v = self.k.index_select(0, index), self.v.index_select(0, index)


class MultiHeadAttention(nn.Module):
    """Multi-head attention for self-attention (context=None) and cross-attention.

    forward(x (B, Tq, D), context (B, Tk, Dk) or None, key_mask (B, Tk) bool True = real token,
    attn_mask (Tq, Tk) or (B, Tq, Tk) bool True = allowed, causal) -> (B, Tq, D), and the
    weights (B, h, Tq, Tk) when need_weights is set.

    fast=True sends the computation through torch's fused F.scaled_dot_product_attention when
    the weights are not requested; the result is the same as the from-scratch path.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        d_context: int | None = None,
        fast: bool = True,
    ):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        d_context = d_context or d_model
        self.d_model, self.n_heads, self.d_head = d_model, n_heads, d_model // n_heads
        self.dropout, self.fast = dropout, fast
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_context, d_model, bias=bias)
        self.v_proj = nn.Linear(d_context, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    @torch.no_grad()
    def load_from_torch(self, ref: nn.MultiheadAttention) -> MultiHeadAttention:
        """Copy the weights of torch's nn.MultiheadAttention, which packs Q, K, V in one matrix."""
        if ref.embed_dim != self.d_model or ref.num_heads != self.n_heads:
            raise ValueError(
                f"reference has d_model={ref.embed_dim}, heads={ref.num_heads}; "
                f"this module has {self.d_model}, {self.n_heads}"
            )
        if ref.in_proj_weight is None:
            raise ValueError("reference uses separate kdim/vdim projections; not supported")
        projections = (self.q_proj, self.k_proj, self.v_proj)
        for lin, w in zip(projections, ref.in_proj_weight.chunk(3), strict=True):
            lin.weight.copy_(w)
        if ref.in_proj_bias is not None:
            for lin, b in zip(projections, ref.in_proj_bias.chunk(3), strict=True):
                lin.bias.copy_(b)
        self.out_proj.load_state_dict(ref.out_proj.state_dict())
        return self

    def _check(self, x, context, key_mask, attn_mask):
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != self.d_model:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be (B, T, {self.d_model}), got {shape}")
        ctx = x if context is None else context
        if ctx.dim() != 3 or ctx.shape[0] != x.shape[0] or ctx.shape[-1] != self.k_proj.in_features:
            raise ValueError(
                f"context must be (B={x.shape[0]}, Tk, {self.k_proj.in_features}), got "
                f"{tuple(ctx.shape)}"
            )
        if key_mask is not None:
            _check_mask(key_mask, (x.shape[0], ctx.shape[1]), "key_mask")
            if key_mask.dim() != 2:
                raise ValueError(f"key_mask must be (B, Tk), got {tuple(key_mask.shape)}")
        if attn_mask is not None and attn_mask.dim() not in (2, 3):
            raise ValueError(
                f"attn_mask must be (Tq, Tk) or (B, Tq, Tk), got {tuple(attn_mask.shape)}"
            )

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        causal: bool = False,
        need_weights: bool = False,
        cache: KVCache | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        self._check(x, context, key_mask, attn_mask)
        B, Tq, _ = x.shape
        ctx = x if context is None else context
        q = rearrange(self.q_proj(x), "b t (h d) -> b h t d", h=self.n_heads)  # (B, h, Tq, dh)
        if cache is not None and cache.static and cache.k is not None:
            k, v = cache.k, cache.v  # cross-attention: the context was projected already
        else:
            k = rearrange(
                self.k_proj(ctx), "b t (h d) -> b h t d", h=self.n_heads
            )  # (B, h, Tk, dh)
            v = rearrange(self.v_proj(ctx), "b t (h d) -> b h t d", h=self.n_heads)
            if cache is not None:
                k, v = cache.update(k, v)  # (B, h, T_past + Tk, dh)
        Tk = k.shape[-2]
        mask = None  # (B, 1 or h, Tq, Tk) bool, True = allowed
        if key_mask is not None:
            if key_mask.shape[-1] != Tk:
                raise ValueError(f"key_mask covers {key_mask.shape[-1]} keys, attention has {Tk}")
            mask = key_mask[:, None, None, :]  # (B, 1, 1, Tk)
        if attn_mask is not None:
            am = attn_mask[:, None] if attn_mask.dim() == 3 else attn_mask  # (B|1, 1, Tq, Tk)
            _check_mask(am, (B, self.n_heads, Tq, Tk), "attn_mask")
            mask = am if mask is None else mask & am
        if causal:
            cm = causal_mask(Tq, Tk, device=x.device)  # (Tq, Tk)
            mask = cm if mask is None else mask & cm
        p = self.dropout if self.training else 0.0
        if self.fast and not need_weights:
            if mask is not None:
                mask = mask.expand(B, self.n_heads, Tq, Tk)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
            if mask is not None:  # torch's kernels differ on fully masked rows (0 or NaN): use 0
                out = torch.where(mask.any(dim=-1, keepdim=True), out, 0.0)
            weights = None
        else:
            out, weights = scaled_dot_product_attention(q, k, v, mask, p, self.training)
        out = rearrange(out, "b h t d -> b t (h d)")  # (B, Tq, D): heads side by side
        return self.out_proj(out), weights if need_weights else None
