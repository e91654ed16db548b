"""Chapter 5's auto-checked exercises: late fusion, the single-stream input, a co-attention layer.

Each exercise names a reference (the package's own fusion modules of `minivlm.fusion`) and the
mistakes a learner is likely to make, written out as the wrong code they would write.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..fusion import CoAttentionBlock, ConcatFusion, LateFusion
from .core import Case, Exercise, Mistake


def _late_cases() -> list[Case]:
    g = torch.Generator().manual_seed(5)
    img, txt = torch.randn(3, 4, 6, generator=g), torch.randn(3, 5, 6, generator=g)  # (B, N, D)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2, [True] * 2 + [False] * 3])  # (B, Nt)
    one = torch.randn(2, 1, 4, generator=g)  # a single image token each
    return [
        Case("product, two of three captions padded", (img, txt, mask, "product")),
        Case("concatenation, two of three captions padded", (img, txt, mask, "concat")),
        Case("product, one image token, one padded caption",
             (one, torch.randn(2, 3, 4, generator=g), torch.tensor([[1, 1, 0], [1, 1, 1]]).bool(),
              "product")),
    ]  # fmt: skip


def late_fuse(img: torch.Tensor, txt: torch.Tensor, txt_mask: torch.Tensor, mode: str):
    """Pool (image: mean; text: mean of the real tokens), then combine: (B, D) for "product",
    (B, 2D) = [v; t] for "concat". It is `LateFusion` of section 1 with its MLP taken out."""
    fuser = LateFusion(img.shape[-1], mode)
    fuser.mlp = nn.Identity()  # what goes into the MLP: the fused vector itself
    return fuser(img, txt, txt_mask)


def _combine(v, t, mode):
    return v * t if mode == "product" else torch.cat([v, t], dim=-1)


def _mean_with_padding(img, txt, txt_mask, mode):
    return _combine(img.mean(1), txt.mean(1), mode)  # the padding is averaged in


def _divide_by_length(img, txt, txt_mask, mode):
    m = txt_mask.unsqueeze(-1).float()  # (B, Nt, 1)
    return _combine(img.mean(1), (txt * m).sum(1) / txt.shape[1], mode)  # divided by Nt


def _text_first(img, txt, txt_mask, mode):
    m = txt_mask.unsqueeze(-1).float()
    t = (txt * m).sum(1) / m.sum(1)
    return t * img.mean(1) if mode == "product" else torch.cat([t, img.mean(1)], dim=-1)


def _dot_product(img, txt, txt_mask, mode):
    m = txt_mask.unsqueeze(-1).float()
    v, t = img.mean(1), (txt * m).sum(1) / m.sum(1)
    return (v * t).sum(-1) if mode == "product" else torch.cat([v, t], dim=-1)  # (B,): summed


def _fusion(d: int, n_layers: int, seed: int) -> ConcatFusion:
    """A ConcatFusion with its own seeded weights (the learner's global RNG is left alone), and
    type embeddings large enough that leaving them out shows."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        fusion = ConcatFusion(d, n_heads=2, n_layers=n_layers).eval()
        with torch.no_grad():
            fusion.cls.normal_()
            fusion.type_emb.weight.normal_(std=0.5)
    return fusion


def _single_cases() -> list[Case]:
    g = torch.Generator().manual_seed(6)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2, [True] * 4 + [False]])  # (B, Nt)
    return [
        Case("B = 3, 4 image and 5 text tokens, two captions padded",
             (_fusion(8, 1, 0), torch.randn(3, 4, 8, generator=g),
              torch.randn(3, 5, 8, generator=g), mask)),
        Case("two layers, 6 image tokens, no padding",
             (_fusion(8, 2, 1), torch.randn(2, 6, 8, generator=g),
              torch.randn(2, 3, 8, generator=g),
              torch.ones(2, 3, dtype=torch.bool))),
        Case("two layers, 2 image tokens, one caption padded",
             (_fusion(8, 2, 2), torch.randn(2, 2, 8, generator=g),
              torch.randn(2, 4, 8, generator=g),
              torch.tensor([[True, True, False, False], [True] * 4]))),
    ]  # fmt: skip


def single_stream(fusion: ConcatFusion, img, txt, txt_mask) -> torch.Tensor:
    """The [CLS] output (B, D) of the single-stream encoder: `ConcatFusion.forward` itself."""
    return fusion(img, txt, txt_mask)


def _run_single(fusion, img, txt, txt_mask, types=(0, 1), keep="right", pool="cls"):
    """The single-stream forward with one thing done differently (what the mistakes share)."""
    B, Ni, _ = img.shape
    e = fusion.type_emb.weight  # (2, D)
    x = torch.cat([fusion.cls.expand(B, -1, -1), img + e[types[0]], txt + e[types[1]]], dim=1)
    front = torch.ones(B, 1 + Ni, dtype=torch.bool)
    key_mask = {"right": torch.cat([front, txt_mask], 1), "none": None,
                "inverted": torch.cat([~front, ~txt_mask], 1)}[keep]  # fmt: skip
    h, _ = fusion.encoder(x, key_mask=key_mask)  # (B, 1 + Ni + Nt, D)
    return h[:, 0] if pool == "cls" else h.mean(1)


def _no_types(fusion, img, txt, txt_mask):
    B = img.shape[0]
    x = torch.cat([fusion.cls.expand(B, -1, -1), img, txt], dim=1)  # no type embeddings
    keep = torch.cat([torch.ones(B, 1 + img.shape[1], dtype=torch.bool), txt_mask], 1)
    return fusion.encoder(x, key_mask=keep)[0][:, 0]


def _types_swapped(fusion, img, txt, txt_mask):
    return _run_single(fusion, img, txt, txt_mask, types=(1, 0))


def _no_mask(fusion, img, txt, txt_mask):
    return _run_single(fusion, img, txt, txt_mask, keep="none")


def _inverted_mask(fusion, img, txt, txt_mask):
    return _run_single(fusion, img, txt, txt_mask, keep="inverted")


def _mean_pooled(fusion, img, txt, txt_mask):
    return _run_single(fusion, img, txt, txt_mask, pool="mean")


def _block(d: int, seed: int) -> CoAttentionBlock:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return CoAttentionBlock(d, n_heads=2).eval()


def _co_cases() -> list[Case]:
    g = torch.Generator().manual_seed(7)
    mask = torch.tensor([[True] * 5, [True] * 2 + [False] * 3])  # (B, Nt)
    return [
        Case("4 image and 5 text tokens, the second caption padded",
             (_block(8, 0), torch.randn(2, 4, 8, generator=g), torch.randn(2, 5, 8, generator=g),
              mask)),
        Case("no padding",
             (_block(8, 1), torch.randn(3, 6, 8, generator=g), torch.randn(3, 4, 8, generator=g),
              torch.ones(3, 4, dtype=torch.bool))),
        Case("3 image tokens, captions of 4, 2 and 1 real tokens",
             (_block(8, 2), torch.randn(3, 3, 8, generator=g), torch.randn(3, 4, 8, generator=g),
              torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]]).bool())),
    ]  # fmt: skip


def co_attention(block: CoAttentionBlock, img, txt, txt_mask):
    """One co-attention layer: (image stream, text stream) after the block, as it returns them."""
    return block(img, txt, txt_mask)


def _co_layer(block, img, txt, txt_mask, order="together", exch_mask=True, ctx="normed",
              text_mask=True):  # fmt: skip
    """One co-attention layer with one thing done differently (what the mistakes share)."""
    nt, ni = block.norm_t(txt), block.norm_i(img)
    t_ctx, i_ctx = (nt, ni) if ctx == "normed" else (txt, img)
    txt_new = txt + block.t_from_i(nt, context=i_ctx)[0]
    if order == "text first":  # the image reads the text already updated
        t_ctx = block.norm_t(txt_new)
    img_new = img + block.i_from_t(ni, context=t_ctx, key_mask=txt_mask if exch_mask else None)[0]
    txt_new = block.text_block(txt_new, key_mask=txt_mask if text_mask else None)[0]
    return block.image_block(img_new)[0], txt_new


def _reads_updated_text(block, img, txt, txt_mask):
    return _co_layer(block, img, txt, txt_mask, order="text first")


def _exchange_unmasked(block, img, txt, txt_mask):
    return _co_layer(block, img, txt, txt_mask, exch_mask=False)


def _raw_context(block, img, txt, txt_mask):
    return _co_layer(block, img, txt, txt_mask, ctx="raw")


def _text_block_unmasked(block, img, txt, txt_mask):
    return _co_layer(block, img, txt, txt_mask, text_mask=False)


def _streams_swapped(block, img, txt, txt_mask):
    nt, ni = block.norm_t(txt), block.norm_i(img)
    txt_new = txt + block.i_from_t(nt, context=ni)[0]  # each stream asks with the other's weights
    img_new = img + block.t_from_i(ni, context=nt, key_mask=txt_mask)[0]
    return block.image_block(img_new)[0], block.text_block(txt_new, key_mask=txt_mask)[0]


EXERCISES = [
    Exercise(
        "5.1", "late fusion: pool, then combine", late_fuse, _late_cases,
        mistakes=[
            Mistake("average the text over its real tokens only: sum txt * mask over the tokens "
                    "and divide by mask.sum(1); txt.mean(1) averages the padding in",
                    _mean_with_padding),
            Mistake("divide the masked sum by the number of real tokens, mask.sum(1), not by the "
                    "padded length Nt", _divide_by_length),
            Mistake("the image vector comes first: torch.cat([v, t], dim=-1)", _text_first),
            Mistake("the element-wise product keeps all D features, v * t; summing them gives a "
                    "dot product, one number per pair", _dot_product),
        ],
    ),
    Exercise(
        "5.2", "the single-stream encoder", single_stream, _single_cases,
        mistakes=[
            Mistake("add the type embedding to every token of its modality: type_emb.weight[0] "
                    "to the image tokens, type_emb.weight[1] to the text tokens", _no_types),
            Mistake("row 0 of the type embedding tags the image tokens and row 1 the text "
                    "tokens, not the other way round", _types_swapped),
            Mistake("mask the text's padding as keys: key_mask is the text mask with 1 + Ni "
                    "Trues in front, for [CLS] and the image tokens", _no_mask),
            Mistake("in minivlm True means a real token that may be attended to (the opposite "
                    "of nn.MultiheadAttention's key_padding_mask): do not invert the mask",
                    _inverted_mask),
            Mistake("the fused vector is the [CLS] output, row 0 of the encoder's output, "
                    "not the mean of all rows", _mean_pooled),
        ],
    ),
    Exercise(
        "5.3", "a co-attention layer", co_attention, _co_cases,
        mistakes=[
            Mistake("both exchanges read the old streams: compute the image's update from "
                    "norm_t(txt), not from the text you have just updated", _reads_updated_text),
            Mistake("when the image queries the text, pass key_mask=txt_mask so that no image "
                    "token attends to the text's padding", _exchange_unmasked),
            Mistake("normalise each stream once and use the normalised streams as keys and "
                    "values too: context=norm_i(img) and context=norm_t(txt)", _raw_context),
            Mistake("the text stream's own encoder block masks its padding too: "
                    "text_block(txt, key_mask=txt_mask)", _text_block_unmasked),
            Mistake("each direction has its own weights: the text's queries go through "
                    "t_from_i, the image's through i_from_t", _streams_swapped),
        ],
    ),
]  # fmt: skip
