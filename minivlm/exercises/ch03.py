"""Chapter 3's auto-checked exercises: LayerNorm by hand, the encoder block in both LayerNorm
positions, and BERT's embedding layer.

Each exercise names a reference (the package's own code where it has one) and the mistakes a
learner is likely to make, written out as the wrong code they would write.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..attention import MultiHeadAttention
from ..transformer import BertConfig, BertEncoder, EncoderBlock
from .core import Case, Exercise, Mistake


def _layer_norm_cases() -> list[Case]:
    g = torch.Generator().manual_seed(31)
    x = torch.randn(2, 3, 8, generator=g) * 3 + 1  # (B, T, D)
    gamma, beta = torch.randn(8, generator=g), torch.randn(8, generator=g)
    flat = 0.01 + 1e-3 * torch.randn(2, 4, 16, generator=g)  # (B, T, D): features almost equal
    g16, b16 = torch.randn(16, generator=g), torch.randn(16, generator=g)
    x4 = torch.randn(3, 5, 4, generator=g)  # (B, T, D) with D = 4
    g4, b4 = torch.randn(4, generator=g), torch.randn(4, generator=g)
    return [
        Case("B = 2, T = 3, D = 8, eps = 1e-5", (x, gamma, beta)),
        Case("D = 4: few features per token", (x4, g4, b4)),
        Case("tokens whose features are almost equal (variance near eps)", (flat, g16, b16)),
        Case("BERT's eps = 1e-12", (x, gamma, beta), {"eps": 1e-12}),
    ]


def layer_norm(
    x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5
) -> torch.Tensor:
    """gamma * (x - mean) / sqrt(var + eps) + beta over the last axis: torch's layer_norm."""
    return F.layer_norm(x, x.shape[-1:], gamma, beta, eps)


def _unbiased(x, gamma, beta, eps=1e-5):
    mu, var = x.mean(-1, keepdim=True), x.var(-1, keepdim=True)  # divides by D - 1
    return gamma * (x - mu) / torch.sqrt(var + eps) + beta


def _eps_outside(x, gamma, beta, eps=1e-5):
    mu, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=False, keepdim=True)
    return gamma * (x - mu) / (torch.sqrt(var) + eps) + beta


def _over_tokens(x, gamma, beta, eps=1e-5):
    mu, var = x.mean(-2, keepdim=True), x.var(-2, unbiased=False, keepdim=True)  # per feature
    return gamma * (x - mu) / torch.sqrt(var + eps) + beta


def _no_affine(x, gamma, beta, eps=1e-5):
    mu, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=False, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps)


class _SelfAttention(nn.Module):
    """A self-attention sub-layer as the learner's block calls it: attn(x) -> (B, T, D)."""

    def __init__(self, mha: MultiHeadAttention):
        super().__init__()
        self.mha = mha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mha(x)[0]


def _block_cases() -> list[Case]:
    cases = []
    for seed, norm_first, name in (
        (32, False, "post-LN (norm_first=False), B = 2, T = 5, D = 16"),
        (33, True, "pre-LN (norm_first=True), B = 2, T = 5, D = 16"),
        (34, False, "post-LN, one sequence of 7 tokens"),
    ):
        torch.manual_seed(seed)
        block = EncoderBlock(16, 2, 32, norm_first=norm_first).eval()
        with torch.no_grad():  # trained-looking norms: each with its own scale and shift
            for norm in (block.norm1, block.norm2):
                norm.weight.normal_(1.0, 0.5)
                norm.bias.normal_(0.0, 0.5)
        x = torch.randn(2 if seed < 34 else 1, 5 if seed < 34 else 7, 16) * 2  # (B, T, D)
        args = (x, _SelfAttention(block.attn), block.ff, block.norm1, block.norm2, norm_first)
        cases.append(Case(name, args))
    return cases


@torch.no_grad()
def encoder_block(x, attn, ff, norm1, norm2, norm_first: bool) -> torch.Tensor:
    """minivlm.transformer.EncoderBlock's forward, run with the given sub-layers."""
    block = EncoderBlock(x.shape[-1], 1, 1, norm_first=norm_first)
    block.attn, block.ff, block.norm1, block.norm2 = attn.mha, ff, norm1, norm2
    return block(x)[0]  # (B, T, D)


def _pre(x, attn, ff, norm1, norm2):
    x = x + attn(norm1(x))
    return x + ff(norm2(x))


def _post(x, attn, ff, norm1, norm2):
    x = norm1(x + attn(x))
    return norm2(x + ff(x))


def _always_pre(x, attn, ff, norm1, norm2, norm_first):
    return _pre(x, attn, ff, norm1, norm2)


def _always_post(x, attn, ff, norm1, norm2, norm_first):
    return _post(x, attn, ff, norm1, norm2)


def _residual_normed(x, attn, ff, norm1, norm2, norm_first):
    if not norm_first:
        return _post(x, attn, ff, norm1, norm2)
    h = norm1(x)
    x = h + attn(h)  # the residual starts from the normalised x
    h = norm2(x)
    return h + ff(h)


def _branch_normed(x, attn, ff, norm1, norm2, norm_first):
    if norm_first:
        return _pre(x, attn, ff, norm1, norm2)
    x = x + norm1(attn(x))  # the LayerNorm on the branch, not on the sum
    return x + norm2(ff(x))


def _parallel(x, attn, ff, norm1, norm2, norm_first):
    if norm_first:
        return x + attn(norm1(x)) + ff(norm2(x))  # the FFN reads the block's input
    h = norm1(x + attn(x))
    return norm2(h + ff(x))


def _one_norm(x, attn, ff, norm1, norm2, norm_first):
    return (_pre if norm_first else _post)(x, attn, ff, norm1, norm1)


def _embedding_cases() -> list[Case]:
    torch.manual_seed(35)
    word, position, segment = nn.Embedding(50, 12), nn.Embedding(64, 12), nn.Embedding(2, 12)
    norm = nn.LayerNorm(12, eps=1e-12)
    with torch.no_grad():
        norm.weight.normal_(1.0, 0.3)
        norm.bias.normal_(0.0, 0.3)
    g = torch.Generator().manual_seed(36)
    ids = torch.randint(0, 50, (2, 7), generator=g)  # (B, T)
    pair = torch.tensor([[0, 0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 1, 1]])  # sentence A, then B
    mods = (word, position, segment, norm)
    return [
        Case("two sentences of 7 tokens, token_type = None (all sentence A)", (ids, *mods)),
        Case("sentence pairs: token_type 0 for A, 1 for B", (ids, *mods), {"token_type": pair}),
        Case("one sentence of 12 tokens", (torch.randint(0, 50, (1, 12), generator=g), *mods)),
    ]


@torch.no_grad()
def bert_embeddings(ids, word, position, segment, norm, token_type=None) -> torch.Tensor:
    """minivlm.transformer.BertEncoder.embed, run with the given embedding tables and norm."""
    cfg = BertConfig(
        vocab_size=word.num_embeddings, hidden_size=word.embedding_dim, num_hidden_layers=0,
        num_attention_heads=1, intermediate_size=1,
        max_position_embeddings=position.num_embeddings, type_vocab_size=segment.num_embeddings,
    )  # fmt: skip
    bert = BertEncoder(cfg)
    bert.word, bert.position, bert.token_type, bert.emb_norm = word, position, segment, norm
    return bert.embed(ids, token_type)  # (B, T, D)


def _types(ids, token_type):
    return torch.zeros_like(ids) if token_type is None else token_type


def _positions_from_ids(ids, word, position, segment, norm, token_type=None):
    return norm(word(ids) + position(ids) + segment(_types(ids, token_type)))


def _no_norm(ids, word, position, segment, norm, token_type=None):
    pos = torch.arange(ids.shape[1])
    return word(ids) + position(pos) + segment(_types(ids, token_type))


def _no_segment_by_default(ids, word, position, segment, norm, token_type=None):
    h = word(ids) + position(torch.arange(ids.shape[1]))
    if token_type is not None:
        h = h + segment(token_type)
    return norm(h)


def _norm_first(ids, word, position, segment, norm, token_type=None):
    pos = torch.arange(ids.shape[1])
    return norm(word(ids)) + position(pos) + segment(_types(ids, token_type))


def _positions_from_one(ids, word, position, segment, norm, token_type=None):
    pos = torch.arange(1, ids.shape[1] + 1)
    return norm(word(ids) + position(pos) + segment(_types(ids, token_type)))


EXERCISES = [
    Exercise(
        "3.1", "LayerNorm by hand", layer_norm, _layer_norm_cases,
        mistakes=[
            Mistake("LayerNorm divides by D, not D - 1: use the biased variance, "
                    "x.var(-1, unbiased=False, keepdim=True)", _unbiased),
            Mistake("eps goes inside the square root, sqrt(var + eps): outside it, a token "
                    "whose features are almost equal is blown up", _eps_outside),
            Mistake("the statistics are per token, over its D features (the last axis), "
                    "not per feature over the tokens", _over_tokens),
            Mistake("after normalising, scale by gamma and shift by beta", _no_affine),
        ],
    ),
    Exercise(
        "3.2", "the encoder block, post-LN and pre-LN", encoder_block, _block_cases,
        mistakes=[
            Mistake("norm_first=False is post-LN: add first, then normalise, "
                    "x = norm1(x + attn(x))", _always_pre),
            Mistake("norm_first=True is pre-LN: normalise the sub-layer's input and add its "
                    "output to x itself, x = x + attn(norm1(x))", _always_post),
            Mistake("in pre-LN the residual adds x, not norm1(x): the identity road must go "
                    "around the LayerNorm", _residual_normed),
            Mistake("in post-LN the LayerNorm takes the sum x + attn(x), so the residual "
                    "stream itself is normalised, not only the branch", _branch_normed),
            Mistake("the sub-layers run one after the other: the FFN reads x after attention's "
                    "residual, not the block's input", _parallel),
            Mistake("each sub-layer has its own LayerNorm: norm1 around attention, norm2 "
                    "around the FFN", _one_norm),
        ],
    ),
    Exercise(
        "3.3", "BERT's embedding layer", bert_embeddings, _embedding_cases,
        mistakes=[
            Mistake("the position table is indexed by positions 0..T-1 (torch.arange(T)), "
                    "not by the token ids", _positions_from_ids),
            Mistake("BERT normalises the sum of the three embeddings with `norm`", _no_norm),
            Mistake("with token_type None every token is in sentence A: segment(zeros) is "
                    "still added", _no_segment_by_default),
            Mistake("add word, position and segment vectors first, then apply the LayerNorm "
                    "to the sum", _norm_first),
            Mistake("positions count from 0: the first token takes row 0 of the position "
                    "table", _positions_from_one),
        ],
    ),
]  # fmt: skip
