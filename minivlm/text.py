"""Turning words into vectors: word embeddings plus positions (chapter 4).

A token id picks a row of an embedding matrix; attention ignores order, so each position adds
a vector of its own, either learned or the fixed sinusoids of "Attention is all you need".
`pretrained_word_vectors` takes word vectors from the packaged MiniLM (today's stand-in for
GloVe) so a model can start from words whose meanings already relate.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn


def sinusoidal_positions(length: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    """(T, D): PE[t, 2i] = sin(t / base^(2i/D)), PE[t, 2i+1] = cos(t / base^(2i/D)).

    The wavelengths run from 2*pi positions up to about 2*pi*base. The Transformer's base of
    10000 suits texts of thousands of words; on a grid of 8 cells most of its features barely
    change from one cell to the next, and a base of a few cells tells neighbours apart
    (chapter 8's quick preset).
    """
    if d_model % 2:
        raise ValueError(f"d_model must be even for sinusoidal positions, got {d_model}")
    if not base > 1:
        raise ValueError(f"base must be > 1 for sinusoidal positions, got {base}")
    t = torch.arange(length, dtype=torch.float32)[:, None]  # (T, 1)
    freq = torch.exp(-math.log(base) * torch.arange(0, d_model, 2) / d_model)  # (D/2,)
    pe = torch.zeros(length, d_model)
    pe[:, 0::2] = torch.sin(t * freq)
    pe[:, 1::2] = torch.cos(t * freq)
    return pe


class TextEmbedding(nn.Module):
    """ids (B, T) -> word embedding + position embedding (B, T, D).

    positions="learned" trains one vector per position; "sinusoidal" uses fixed sinusoids.
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int,
        max_len: int = 64,
        positions: str = "learned",
        pad_id: int | None = 0,
    ):
        super().__init__()
        if positions not in ("learned", "sinusoidal"):
            raise ValueError(f"positions must be 'learned' or 'sinusoidal', got {positions!r}")
        self.max_len = max_len
        self.word = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        nn.init.normal_(self.word.weight, std=0.02)
        if positions == "learned":
            self.pos = nn.Parameter(torch.randn(max_len, d_model) * 0.02)
        else:
            self.register_buffer("pos", sinusoidal_positions(max_len, d_model), persistent=False)

    def forward(self, ids: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """offset: the position of the first token (a decoder with a KV cache continues)."""
        if not isinstance(ids, torch.Tensor) or ids.dtype != torch.long or ids.dim() != 2:
            got = f"{ids.dtype} {tuple(ids.shape)}" if isinstance(ids, torch.Tensor) else type(ids)
            raise ValueError(f"ids must be a (B, T) long tensor, got {got}")
        T = ids.shape[1]
        if offset + T > self.max_len:
            raise ValueError(f"positions {offset}..{offset + T - 1} exceed max_len={self.max_len}")
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.word.num_embeddings):
            raise ValueError(f"token ids must lie in [0, {self.word.num_embeddings})")
        return self.word(ids) + self.pos[offset : offset + T]  # (B, T, D)

    @torch.no_grad()
    def load_word_vectors(self, vectors: torch.Tensor) -> None:
        """Initialise the word embeddings from (vocab, D') vectors, D' >= D, via PCA to D."""
        if vectors.shape[0] != self.word.num_embeddings:
            raise ValueError(f"need {self.word.num_embeddings} vectors, got {vectors.shape[0]}")
        d = self.word.embedding_dim
        v = vectors - vectors.mean(0)
        if vectors.shape[1] != d:
            _, _, vt = torch.linalg.svd(v, full_matrices=False)  # principal directions
            v = v @ vt[:d].T  # (vocab, D)
        self.word.weight.copy_(v / v.std() * 0.02 * 5)  # a little above the random init scale


def pretrained_word_vectors(words: list[str]) -> torch.Tensor:
    """MiniLM's input embeddings for each word, (len(words), 384).

    A word that MiniLM splits into several word pieces gets the mean of their vectors; special
    tokens ("[PAD]", "[MASK]", ...) map to MiniLM's own special tokens.
    """
    from safetensors.torch import load_file

    from .transformer import MiniLMTokenizer, minilm_folder

    folder = minilm_folder()
    table = load_file(str(folder / "model.safetensors"))["embeddings.word_embeddings.weight"]
    tk = MiniLMTokenizer(folder).tk  # WordPiece, with the file's fixed padding switched off
    aliases = {"[BOS]": "[CLS]", "[EOS]": "[SEP]"}  # our frame tokens -> BERT's
    out = []
    for w in words:
        w = aliases.get(w, w)
        special = tk.token_to_id(w)
        if special is not None and w.startswith("["):
            ids = [special]
        else:
            ids = tk.encode(w, add_special_tokens=False).ids
        if not ids:
            raise ValueError(f"MiniLM has no word piece for {w!r}")
        out.append(table[ids].mean(0))
    return torch.stack(out)  # (V, 384)
