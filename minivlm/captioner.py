"""Caption decoders: a causal Transformer with cross-attention to the image, and a prefix-LM
(chapter 7).

* CaptionDecoder: word t attends to words < t (causal self-attention) and to every image token
  (cross-attention), then predicts word t + 1. Trained by teacher forcing: the true caption is
  fed in, shifted by one, and every position is scored at once with cross-entropy.
* PrefixLM: one stack over [image tokens ; words]; the image tokens form a bidirectional
  prefix, the words attend to the whole prefix and causally to each other.

Decoding: greedy (argmax each step) and beam search, both with a length limit and EOS handling.
The KV cache keeps each layer's keys and values of the words written so far (and the image's
keys and values, computed once), so each new word costs one token's work instead of the whole
prefix again; its outputs equal recomputation.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import KVCache
from .fusion import CrossAttentionBlock
from .text import TextEmbedding
from .transformer import Encoder


def _check_image(image: torch.Tensor, d_image: int) -> None:
    if not isinstance(image, torch.Tensor) or image.dim() != 3 or image.shape[-1] != d_image:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"image tokens must be (B, Ni, {d_image}), got {shape}")


def teacher_forcing_loss(
    model: nn.Module,
    ids: torch.Tensor,
    mask: torch.Tensor,
    image: torch.Tensor,
    read: torch.Tensor | None = None,
    unscored: torch.Tensor | None = None,
) -> torch.Tensor:
    """Read [BOS] w1 .. wn, predict w1 .. wn [EOS] at every position at once; padding ignored.

    ids, mask: (B, T) with mask True on real tokens; model(ids, image, key_mask) -> (B, T, V).
    read: the words the model reads, if not ids (a noisy copy, chapter 8); targets are always ids.
    unscored: (B, T) bool, True on words that are not targets (chapter 8's colour dropout).
    """
    read = ids if read is None else read
    logits = model(read[:, :-1], image, key_mask=mask[:, :-1])  # (B, T-1, V)
    skip = ~mask if unscored is None else ~mask | unscored  # (B, T)
    target = ids[:, 1:].masked_fill(skip[:, 1:], -100)  # (B, T-1): the next word, or ignore
    return F.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100)


@torch.no_grad()
def caption_logprob(
    model: nn.Module, image: torch.Tensor, seqs: torch.Tensor, free_after_eos: bool = False
) -> torch.Tensor:
    """The total log-probability of each caption, sum_t log p(w_t | w_<t, image) (chapter 7a).

    seqs (B, L): the words after [BOS], as `generate` returns them; image (B, Ni, D).
    free_after_eos: score the [PAD]s after [EOS] as `generate` does, at no cost. -> (B,)
    """
    full = torch.cat([torch.full((seqs.shape[0], 1), model.bos_id, device=seqs.device), seqs], 1)
    logp = model(full[:, :-1], image).log_softmax(-1)  # (B, L, V)
    lp = logp.gather(-1, full[:, 1:, None]).squeeze(-1)  # (B, L)
    if free_after_eos:
        lp = lp.masked_fill((full[:, :-1] == model.eos_id).cumsum(1) > 0, 0.0)
    return lp.sum(-1)  # (B,)


class CaptionDecoder(nn.Module):
    """Causal decoder over caption ids (B, T) with cross-attention to image tokens (B, Ni, Di)."""

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 128,
        n_heads: int = 4,
        n_layers: int = 2,
        d_image: int | None = None,
        max_len: int = 40,
        dropout: float = 0.0,
        pad_id: int = 0,
        bos_id: int = 1,
        eos_id: int = 2,
    ):
        super().__init__()
        self.d_image = d_image or d_model
        self.pad_id, self.bos_id, self.eos_id, self.max_len = pad_id, bos_id, eos_id, max_len
        self.embed = TextEmbedding(vocab_size, d_model, max_len=max_len, pad_id=pad_id)
        self.layers = nn.ModuleList(
            CrossAttentionBlock(d_model, n_heads, dropout, d_context=self.d_image)
            for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size)

    def new_caches(self) -> list[tuple[KVCache, KVCache]]:
        """Empty (self-attention, cross-attention) caches, one pair per layer."""
        return [(KVCache(), KVCache(static=True)) for _ in self.layers]

    def hidden(
        self,
        ids: torch.Tensor,
        image: torch.Tensor,
        key_mask: torch.Tensor | None = None,
        caches: list[tuple[KVCache, KVCache]] | None = None,
        need_weights: bool = False,
        causal: bool = True,
    ) -> tuple[torch.Tensor, list]:
        """Final hidden states (B, T, D) and per-layer cross-attention weights (or Nones).

        causal=False reads the words bidirectionally: the same weights then serve as a
        multimodal encoder for masked language modelling and matching (chapter 8, as in BLIP).
        """
        _check_image(image, self.d_image)
        offset = len(caches[0][0]) if caches is not None else 0
        x = self.embed(ids, offset=offset)  # (B, T, D)
        weights = []
        for i, layer in enumerate(self.layers):
            cache = caches[i] if caches is not None else None
            x, w = layer(
                x, image, key_mask=key_mask, causal=causal, need_weights=need_weights, cache=cache
            )
            weights.append(w)
        return self.norm(x), weights

    def forward(
        self,
        ids: torch.Tensor,
        image: torch.Tensor,
        key_mask: torch.Tensor | None = None,
        caches: list[tuple[KVCache, KVCache]] | None = None,
        need_weights: bool = False,
        causal: bool = True,
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Next-word logits (B, T, V). With caches, ids are the new words only and positions
        continue after the cached ones. need_weights adds each layer's cross-attention
        weights (B, h, T, Ni)."""
        x, weights = self.hidden(ids, image, key_mask, caches, need_weights, causal)
        logits = self.lm_head(x)  # (B, T, V)
        return (logits, weights) if need_weights else logits

    def loss(self, ids: torch.Tensor, mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return teacher_forcing_loss(self, ids, mask, image)

    @torch.no_grad()
    def generate(
        self,
        image: torch.Tensor,
        max_new: int = 24,
        beam: int = 1,
        use_cache: bool = True,
        stop_at_eos: bool = True,
    ) -> torch.Tensor:
        """Decode captions: (B, L) ids after [BOS], L <= max_new, [EOS] then [PAD] at the end.

        beam=1 is greedy decoding; beam>1 keeps the `beam` most probable partial captions and
        returns the best finished one. use_cache=False recomputes the whole prefix every step
        (the same result, slower). stop_at_eos=False always writes max_new words (benchmarks).
        """
        _check_image(image, self.d_image)
        if beam < 1:
            raise ValueError(f"beam must be >= 1, got {beam}")
        if not 1 <= max_new < self.max_len:
            raise ValueError(f"max_new must be in 1..{self.max_len - 1} (positions), got {max_new}")
        B, K = image.shape[0], beam
        img = image.repeat_interleave(K, dim=0)  # (B*K, Ni, Di): one copy per beam
        seqs = torch.full((B * K, 1), self.bos_id, dtype=torch.long, device=image.device)
        scores = torch.zeros(B, K, device=image.device)
        scores[:, 1:] = float("-inf")  # at the start, only one hypothesis per image
        done = torch.zeros(B * K, dtype=torch.bool, device=image.device)
        caches = self.new_caches() if use_cache else None
        for _ in range(max_new):
            step_in = seqs[:, -1:] if use_cache else seqs
            logp = self(step_in, img, caches=caches)[:, -1].log_softmax(-1)  # (B*K, V)
            logp[:, [self.bos_id, self.pad_id]] = float("-inf")  # never words of a caption
            if stop_at_eos:  # a finished caption only continues with free [PAD]s
                logp[done] = float("-inf")
                logp[done, self.pad_id] = 0.0
            V = logp.shape[-1]
            total = (scores.view(-1, 1) + logp).view(B, K * V)  # (B, K*V)
            scores, flat = total.topk(K, dim=-1)  # (B, K)
            rows = (torch.arange(B, device=image.device)[:, None] * K + flat // V).view(-1)
            tokens = (flat % V).view(-1, 1)  # (B*K, 1)
            seqs = torch.cat([seqs[rows], tokens], dim=1)
            done = done[rows] | (tokens.squeeze(1) == self.eos_id)
            if caches is not None and K > 1:  # with one beam per image the rows never move
                for self_cache, _ in caches:
                    self_cache.reorder(rows)
            if stop_at_eos and done.all():
                break
        best = scores.argmax(-1) + torch.arange(B, device=image.device) * K  # (B,)
        return seqs[best, 1:]  # drop [BOS]


class PrefixLM(nn.Module):
    """One Transformer over [image prefix ; words]: bidirectional on the prefix, causal on words.

    forward(ids (B, T), image (B, Ni, D)) -> next-word logits (B, T, V) for the word positions.
    """

    def __init__(self, vocab_size: int, d_model: int = 128, n_heads: int = 4, n_layers: int = 2,
                 max_len: int = 40, pad_id: int = 0, bos_id: int = 1, eos_id: int = 2):  # fmt: skip
        super().__init__()
        self.d_image = d_model
        self.pad_id, self.bos_id, self.eos_id, self.max_len = pad_id, bos_id, eos_id, max_len
        self.embed = TextEmbedding(vocab_size, d_model, max_len=max_len, pad_id=pad_id)
        self.type_emb = nn.Parameter(torch.randn(2, d_model) * 0.02)  # image, text
        self.encoder = Encoder(n_layers, d_model, n_heads, 4 * d_model, norm_first=True)
        self.lm_head = nn.Linear(d_model, vocab_size)

    @staticmethod
    def prefix_mask(n_image: int, n_text: int, device=None) -> torch.Tensor:
        """(L, L) bool, True = may attend: image <-> image; words -> image and earlier words."""
        L = n_image + n_text
        allowed = torch.zeros(L, L, dtype=torch.bool, device=device)
        allowed[:, :n_image] = True  # everything sees the whole image prefix
        allowed[n_image:, n_image:] = torch.tril(
            torch.ones(n_text, n_text, dtype=torch.bool, device=device)
        )
        return allowed

    def forward(
        self, ids: torch.Tensor, image: torch.Tensor, key_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        _check_image(image, self.d_image)
        B, Ni, _ = image.shape
        x = torch.cat(
            [image + self.type_emb[0], self.embed(ids) + self.type_emb[1]], dim=1
        )  # (B, Ni+T, D)
        keep = None
        if key_mask is not None:
            keep = torch.cat([key_mask.new_ones(B, Ni), key_mask], dim=1)
        h, _ = self.encoder(
            x, key_mask=keep, attn_mask=self.prefix_mask(Ni, ids.shape[1], x.device)
        )
        return self.lm_head(h[:, Ni:])  # (B, T, V)

    def loss(self, ids: torch.Tensor, mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return teacher_forcing_loss(self, ids, mask, image)

    @torch.no_grad()
    def generate(self, image: torch.Tensor, max_new: int = 24) -> torch.Tensor:
        """Greedy decoding, recomputing the sequence each step; (B, L) ids after [BOS]."""
        _check_image(image, self.d_image)
        if not 1 <= max_new < self.max_len:
            raise ValueError(f"max_new must be in 1..{self.max_len - 1}, got {max_new}")
        seqs = torch.full((image.shape[0], 1), self.bos_id, dtype=torch.long, device=image.device)
        done = torch.zeros(image.shape[0], dtype=torch.bool, device=image.device)
        for _ in range(max_new):
            logits = self(seqs, image)[:, -1]
            logits[:, [self.bos_id, self.pad_id]] = float("-inf")  # never words of a caption
            nxt = logits.argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, self.pad_id), nxt)
            seqs = torch.cat([seqs, nxt[:, None]], dim=1)
            done |= nxt == self.eos_id
            if done.all():
                break
        return seqs[:, 1:]
