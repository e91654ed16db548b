"""Multimodal fusion: four ways to let text and image tokens meet (chapter 5).

notebooks/05_fusion.ipynb derives and compares them. Every fuser takes image tokens
(B, Ni, D), text tokens (B, Nt, D) and the text mask (B, Nt) and returns one fused vector
(B, D) per pair, which a head turns into a score (here: do this caption and image match?).

* LateFusion: pool each modality to one vector, then combine them by an element-wise product
  or by concatenation. Cheap, but pooling throws away *which* word went with *which* region.
* ConcatFusion (single stream, VisualBERT / UNITER): one sequence [CLS] + image + text, each
  token tagged with a modality (type) embedding, through one Transformer encoder.
* CrossAttentionFusion (ALBEF / BLIP): text tokens attend to themselves, then query the image
  tokens by cross-attention, layer after layer.
* CoAttentionFusion (ViLBERT): two streams; in each layer the text queries the image and the
  image queries the text (the streams exchange keys and values).

TutorialViLBERT reproduces the tutorial's sample with its two bugs; FixedViLBERT repairs them.
masked_mean, the pooling of late fusion, is chapter 3's (`minivlm.transformer`), where
mean_pool normalises it into a sentence embedding.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .attention import MultiHeadAttention
from .transformer import BertEncoder, Encoder, EncoderBlock, FeedForward, masked_mean


def _check_pair(img: torch.Tensor, txt: torch.Tensor, txt_mask: torch.Tensor | None) -> None:
    if img.dim() != 3 or txt.dim() != 3:
        raise ValueError(
            f"need image tokens (B, Ni, D) and text tokens (B, Nt, D), got {tuple(img.shape)} "
            f"and {tuple(txt.shape)}"
        )
    if img.shape[0] != txt.shape[0] or img.shape[-1] != txt.shape[-1]:
        raise ValueError(
            f"image and text tokens must share batch and width, got {tuple(img.shape)} and "
            f"{tuple(txt.shape)}"
        )
    if txt_mask is not None and (txt_mask.dtype != torch.bool or txt_mask.shape != txt.shape[:2]):
        raise ValueError(
            f"text mask must be bool {tuple(txt.shape[:2])} (True = real token), got "
            f"{txt_mask.dtype} {tuple(txt_mask.shape)}"
        )


class LateFusion(nn.Module):
    """Pool, then combine: mode="product" (v * t) or "concat" ([v; t]), then an MLP."""

    def __init__(self, d_model: int, mode: str = "product"):
        super().__init__()
        if mode not in ("product", "concat"):
            raise ValueError(f"mode must be 'product' or 'concat', got {mode!r}")
        self.mode = mode
        d_in = d_model if mode == "product" else 2 * d_model
        self.mlp = nn.Sequential(nn.Linear(d_in, d_model), nn.GELU(), nn.Linear(d_model, d_model))

    def forward(self, img, txt, txt_mask=None):
        _check_pair(img, txt, txt_mask)
        v, t = img.mean(1), masked_mean(txt, txt_mask)  # (B, D) each
        z = v * t if self.mode == "product" else torch.cat([v, t], dim=-1)
        return self.mlp(z)  # (B, D)


class ConcatFusion(nn.Module):
    """Single stream: [CLS] + image tokens + text tokens, tagged by type, one encoder."""

    def __init__(self, d_model: int, n_heads: int, n_layers: int, dropout: float = 0.0):
        super().__init__()
        self.cls = nn.Parameter(torch.randn(1, 1, d_model) * 0.02)
        self.type_emb = nn.Embedding(2, d_model)  # 0 = image, 1 = text
        nn.init.normal_(self.type_emb.weight, std=0.02)  # N(0, 1) would drown the word vectors
        self.encoder = Encoder(n_layers, d_model, n_heads, 4 * d_model, dropout)

    def forward(self, img, txt, txt_mask=None, need_weights: bool = False):
        _check_pair(img, txt, txt_mask)
        B, Ni, _ = img.shape
        x = torch.cat(
            [
                self.cls.expand(B, -1, -1),
                img + self.type_emb.weight[0],
                txt + self.type_emb.weight[1],
            ],
            dim=1,
        )  # (B, 1 + Ni + Nt, D)
        keep = None
        if txt_mask is not None:
            keep = torch.cat([txt_mask.new_ones(B, 1 + Ni), txt_mask], dim=1)  # (B, 1 + Ni + Nt)
        h, weights = self.encoder(x, key_mask=keep, need_weights=need_weights)
        return (h[:, 0], weights) if need_weights else h[:, 0]  # the [CLS] output (B, D)


class CrossAttentionBlock(nn.Module):
    """Pre-LN: self-attention over x, cross-attention from x to a context, feed-forward.

    With causal=True this is a decoder block (chapter 7); here x is text, the context image.
    """

    def __init__(
        self, d_model: int, n_heads: int, dropout: float = 0.0, d_context: int | None = None
    ):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model) for _ in range(3))
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout, d_context=d_context)
        self.ff = FeedForward(d_model, 4 * d_model, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor,
        key_mask: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
        causal: bool = False,
        need_weights: bool = False,
        cache: tuple | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, T, D), context (B, Tc, Dc) -> (B, T, D), cross-attention weights (B, h, T, Tc).

        cache: (self-attention KVCache, cross-attention static KVCache) for decoding.
        """
        self_cache, cross_cache = cache if cache is not None else (None, None)
        a, _ = self.self_attn(self.norm1(x), key_mask=key_mask, causal=causal, cache=self_cache)
        x = x + self.drop(a)
        a, w = self.cross_attn(
            self.norm2(x), context=context, key_mask=context_mask, need_weights=need_weights,
            cache=cross_cache,
        )  # fmt: skip
        x = x + self.drop(a)
        return x + self.drop(self.ff(self.norm3(x))), w


class CrossAttentionFusion(nn.Module):
    """Text tokens query the image in every layer; the first text token ([BOS]) is pooled."""

    def __init__(self, d_model: int, n_heads: int, n_layers: int, dropout: float = 0.0):
        super().__init__()
        self.layers = nn.ModuleList(
            CrossAttentionBlock(d_model, n_heads, dropout) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, img, txt, txt_mask=None, need_weights: bool = False):
        _check_pair(img, txt, txt_mask)
        weights = []
        for layer in self.layers:
            txt, w = layer(txt, img, key_mask=txt_mask, need_weights=need_weights)
            weights.append(w)
        out = self.norm(txt)[:, 0]  # (B, D)
        return (out, weights) if need_weights else out


class CoAttentionBlock(nn.Module):
    """ViLBERT's co-attention: text queries image keys/values and image queries text keys/values
    at the same time, then each stream applies its own self-attention and feed-forward."""

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        self.t_from_i = MultiHeadAttention(d_model, n_heads, dropout)
        self.i_from_t = MultiHeadAttention(d_model, n_heads, dropout)
        self.norm_t, self.norm_i = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.text_block = EncoderBlock(d_model, n_heads, 4 * d_model, dropout)
        self.image_block = EncoderBlock(d_model, n_heads, 4 * d_model, dropout)

    def forward(self, img, txt, txt_mask=None):
        nt, ni = self.norm_t(txt), self.norm_i(img)
        txt_new = txt + self.t_from_i(nt, context=ni)[0]  # text asks the image
        img_new = img + self.i_from_t(ni, context=nt, key_mask=txt_mask)[0]  # image asks the text
        txt_new, _ = self.text_block(txt_new, key_mask=txt_mask)
        img_new, _ = self.image_block(img_new)
        return img_new, txt_new


class CoAttentionFusion(nn.Module):
    """Two streams exchanging keys and values; fused = product of the pooled streams."""

    def __init__(self, d_model: int, n_heads: int, n_layers: int, dropout: float = 0.0):
        super().__init__()
        self.layers = nn.ModuleList(
            CoAttentionBlock(d_model, n_heads, dropout) for _ in range(n_layers)
        )
        self.norm_t, self.norm_i = nn.LayerNorm(d_model), nn.LayerNorm(d_model)

    def forward(self, img, txt, txt_mask=None):
        _check_pair(img, txt, txt_mask)
        for layer in self.layers:
            img, txt = layer(img, txt, txt_mask)
        return self.norm_t(txt)[:, 0] * self.norm_i(img).mean(1)  # (B, D), as ViLBERT's ITM head


class TutorialViLBERT(nn.Module):
    """The tutorial's "ViLBERT", reproduced as written, bugs included:

    1. nn.TransformerEncoderLayer defaults to batch_first=False, but the tensors are
       batch-first, so the encoder reads (B, T, D) as (T=B, batch=T, D): it attends across the
       examples of the batch, and example 1's output depends on example 2.
    2. The whole image goes through an MLP into ONE token (unsqueeze(1)): no word can attend to
       a region, because there are no regions.
    """

    def __init__(
        self,
        image_dim: int,
        text_encoder: BertEncoder,
        n_heads: int = 6,
        n_layers: int = 2,
        n_labels: int = 2,
    ):
        super().__init__()
        hidden = text_encoder.cfg.hidden_size
        self.visual_encoder = nn.Sequential(
            nn.Linear(image_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden)
        )
        self.text_encoder = text_encoder
        layer = nn.TransformerEncoderLayer(d_model=hidden, nhead=n_heads)  # batch_first=False!
        self.fusion = nn.TransformerEncoder(layer, num_layers=n_layers, enable_nested_tensor=False)
        self.classifier = nn.Linear(hidden, n_labels)

    def forward(self, images: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        v = self.visual_encoder(images.flatten(1)).unsqueeze(1)  # (B, 1, H): one image token
        t = self.text_encoder(ids, mask)  # (B, T, H)
        x = torch.cat([v, t], dim=1)  # (B, 1 + T, H)
        x = self.fusion(x)  # read as (seq=B, batch=1+T, H): attention runs across the batch
        return self.classifier(x[:, 0])  # (B, n_labels)


class FixedViLBERT(nn.Module):
    """The tutorial's model repaired: region tokens from a CNN grid (each word can attend to a
    region), a batch-first fusion encoder with the text padding mask, type embeddings."""

    def __init__(
        self,
        vision: nn.Module,
        text_encoder: BertEncoder,
        n_heads: int = 6,
        n_layers: int = 2,
        n_labels: int = 2,
    ):
        super().__init__()
        hidden = text_encoder.cfg.hidden_size
        self.vision = vision  # images (B, 3, S, S) -> region tokens (B, G*G, hidden)
        self.text_encoder = text_encoder
        self.fusion = ConcatFusion(hidden, n_heads, n_layers)
        self.classifier = nn.Linear(hidden, n_labels)

    def forward(
        self,
        images: torch.Tensor,
        ids: torch.Tensor,
        mask: torch.Tensor,
        need_weights: bool = False,
    ):
        regions = self.vision(images)  # (B, G*G, H)
        t = self.text_encoder(ids, mask)  # (B, T, H)
        fused = self.fusion(regions, t, mask, need_weights=need_weights)
        if need_weights:
            return self.classifier(fused[0]), fused[1]
        return self.classifier(fused)  # (B, n_labels)
