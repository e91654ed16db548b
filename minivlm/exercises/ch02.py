"""Chapter 2's auto-checked exercises: the masked softmax, attention itself, splitting heads.

Each exercise names a reference (the package's own code where it has one) and the mistakes a
learner is likely to make, written out as the wrong code they would write.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange

from ..attention import causal_mask, scaled_dot_product_attention
from .core import Case, Exercise, Mistake


def _scores_and_masks() -> list[Case]:
    g = torch.Generator().manual_seed(2)
    s = torch.randn(2, 3, 5, generator=g) * 3  # (B, Tq, Tk)
    pad = torch.tensor([[True] * 5, [True, True, True, False, False]])[:, None, :]  # (B, 1, Tk)
    some = torch.rand(2, 3, 5, generator=g) > 0.4
    some[0, 1] = False  # a fully masked row
    return [
        Case("no key masked", (s, torch.ones(2, 3, 5, dtype=torch.bool))),
        Case("padding: the last two keys of the second caption", (s, pad.expand(2, 3, 5))),
        Case("a fully masked row (query 1 of example 0 may see nothing)", (s, some)),
    ]


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax over the keys (last axis) of the scores where mask is True; a row that may see
    no key at all gets weights of zero, not NaN."""
    weights = scores.masked_fill(~mask, torch.finfo(scores.dtype).min).softmax(dim=-1)
    return weights * mask.any(dim=-1, keepdim=True)


def _after_softmax(scores, mask):
    return scores.softmax(dim=-1) * mask  # masked after the softmax: rows no longer sum to 1


def _wrong_axis(scores, mask):
    return scores.masked_fill(~mask, -1e9).softmax(dim=-2) * mask.any(-1, keepdim=True)


def _nan_rows(scores, mask):
    return scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)


def _uniform_rows(scores, mask):
    return scores.masked_fill(~mask, -1e9).softmax(dim=-1)  # a fully masked row: uniform


def _attention_cases() -> list[Case]:
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, n, 16, generator=g) for n in (4, 6, 6))  # (B, T, d)
    pad = torch.ones(2, 1, 6, dtype=torch.bool)
    pad[1, :, 4:] = False  # the second example has two padded keys
    return [
        Case("no mask, d = 16", (q, k, v, None)),
        Case("two padded keys in the second example", (q, k, v, pad)),
        Case("a causal mask, Tq = Tk = 6", (k, k, v, causal_mask(6))),
    ]


def attention(q, k, v, mask=None):
    """softmax(q k^T / sqrt(d)) v with the mask of exercise 2.1; returns the output only."""
    return scaled_dot_product_attention(q, k, v, mask)[0]


def _scaled_by(q, k, v, mask, scale: float) -> torch.Tensor:
    scores = q @ k.transpose(-2, -1) / scale  # (B, Tq, Tk)
    mask = torch.ones_like(scores, dtype=torch.bool) if mask is None else mask.expand_as(scores)
    return masked_softmax(scores, mask) @ v


def _no_sqrt(q, k, v, mask=None):
    return _scaled_by(q, k, v, mask, 1.0)


def _by_d(q, k, v, mask=None):
    return _scaled_by(q, k, v, mask, q.shape[-1])


def _softmax_queries(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, -1e9)
    return scores.softmax(dim=-2) @ v


def _split_cases() -> list[Case]:
    g = torch.Generator().manual_seed(4)
    return [
        Case("B = 1, T = 3, d = 4, 2 heads", (torch.arange(12.0).reshape(1, 3, 4), 2)),
        Case("B = 2, T = 5, d = 12, 3 heads", (torch.randn(2, 5, 12, generator=g), 3)),
        Case("one head", (torch.randn(2, 4, 8, generator=g), 1)),
    ]


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(B, T, d) -> (B, h, T, d / h): head i holds features i*d/h to (i+1)*d/h of every token."""
    return rearrange(x, "b t (h d) -> b h t d", h=n_heads)


def _view_only(x, n_heads):
    b, t, d = x.shape
    return x.reshape(b, n_heads, t, d // n_heads)  # no transpose: heads mix tokens


def _heads_last(x, n_heads):
    b, t, d = x.shape
    return x.reshape(b, t, d // n_heads, n_heads).permute(0, 3, 1, 2)  # interleaved features


EXERCISES = [
    Exercise(
        "2.1", "the masked softmax", masked_softmax, _scores_and_masks,
        mistakes=[
            Mistake("set the masked scores to a very negative number *before* the softmax; "
                    "masking its output leaves rows that no longer sum to 1", _after_softmax),
            Mistake("the weights of one query must sum to 1 over the keys: softmax over the "
                    "last axis (dim=-1)", _wrong_axis),
            Mistake("-inf in every score of a row gives 0/0 = NaN; use a large finite negative "
                    "number, then zero the rows that may see nothing", _nan_rows),
            Mistake("a row whose keys are all masked came out uniform (1/Tk each); it must be all "
                    "zeros: multiply by mask.any(dim=-1, keepdim=True)", _uniform_rows),
        ],
    ),
    Exercise(
        "2.2", "scaled dot-product attention", attention, _attention_cases,
        mistakes=[
            Mistake("divide the scores by sqrt(d), the square root of the key size, before "
                    "the softmax", _no_sqrt),
            Mistake("the scale is sqrt(d), not d: the variance of a dot product of d unit "
                    "entries is d, and its standard deviation sqrt(d)", _by_d),
            Mistake("each query's weights sum to 1 over the keys: softmax(dim=-1) of the "
                    "(Tq, Tk) scores", _softmax_queries),
        ],
    ),
    Exercise(
        "2.3", "splitting into heads", split_heads, _split_cases,
        mistakes=[
            Mistake("reshape to (B, T, h, d/h) first, then swap T and h (transpose(1, 2)); "
                    "a reshape straight to (B, h, T, d/h) cuts across tokens", _view_only),
            Mistake("head i owns a contiguous block of features, i*d/h to (i+1)*d/h; reshape "
                    "to (B, T, h, d/h), not (B, T, d/h, h)", _heads_last),
        ],
    ),
]  # fmt: skip
