"""Wrong answers to chapter 2's exercises."""

import math

import torch


def softmax_then_mask(scores, mask):
    return torch.softmax(scores, dim=-1).masked_fill(~mask, 0.0)


def softmax_over_queries(scores, mask):
    weights = torch.softmax(scores.masked_fill(~mask, -1e30), dim=1)
    return weights * mask.any(dim=-1, keepdim=True)


def minus_inf(scores, mask):
    return torch.softmax(scores.masked_fill(mask == 0, -math.inf), dim=-1)


def forgot_empty_rows(scores, mask):
    return torch.softmax(scores.masked_fill(~mask, -1e4), dim=-1)


def no_scaling(q, k, v, mask=None):
    scores = torch.einsum("bqd,bkd->bqk", q, k)
    if mask is not None:
        scores = scores.masked_fill(~mask, -1e9)
    return torch.softmax(scores, dim=-1) @ v


def divided_by_d(q, k, v, mask=None):
    scores = q @ k.mT / k.size(-1)
    if mask is not None:
        scores = scores.masked_fill(~mask, -1e9)
    return torch.softmax(scores, dim=-1) @ v


def softmax_wrong_axis(q, k, v, mask=None):
    scores = q @ k.mT / math.sqrt(k.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, -1e9)
    return torch.softmax(scores, dim=1) @ v


def view_without_transpose(x, n_heads):
    b, t, d = x.shape
    return x.view(b, n_heads, t, d // n_heads)


def heads_interleaved(x, n_heads):
    b, t, d = x.shape
    return x.view(b, t, -1, n_heads).transpose(1, 3).transpose(2, 3)


WRONG = {
    "2.1": [(softmax_then_mask, "before* the softmax"), (softmax_over_queries, "last axis"),
            (minus_inf, "NaN"), (forgot_empty_rows, "uniform")],
    "2.2": [(no_scaling, "divide the scores by sqrt(d)"), (divided_by_d, "not d"),
            (softmax_wrong_axis, "sum to 1 over the keys")],
    "2.3": [(view_without_transpose, "cuts across tokens"), (heads_interleaved, "contiguous block")],
}  # fmt: skip
