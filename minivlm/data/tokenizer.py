"""A word-level tokenizer on Hugging Face `tokenizers` (chapter 1).

Each word of the shapes-world grammar is one token; five special tokens frame and fill the rest:
[PAD] (id 0, fills a batch to one length), [BOS] and [EOS] (start and end of a caption), [UNK]
(a word outside the vocabulary) and [MASK] (hidden words for masked language modelling). A batch
comes back as ids (B, T) plus an attention mask (B, T) that is True on real tokens.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from ..files import atomic_write_text
from .captions import vocabulary

PAD, BOS, EOS, UNK, MASK = "[PAD]", "[BOS]", "[EOS]", "[UNK]", "[MASK]"
SPECIALS = (PAD, BOS, EOS, UNK, MASK)


class CaptionTokenizer:
    """Word-level tokenizer with pad/bos/eos/unk/mask, saved and loaded as one JSON file."""

    def __init__(self, tokenizer: Tokenizer):
        for tok in SPECIALS:
            if tokenizer.token_to_id(tok) is None:
                raise ValueError(f"tokenizer lacks the special token {tok}")
        self.tk = tokenizer
        self.pad_id, self.bos_id, self.eos_id, self.unk_id, self.mask_id = (
            tokenizer.token_to_id(t) for t in SPECIALS
        )

    @classmethod
    def from_words(cls, words: Iterable[str]) -> CaptionTokenizer:
        """Build from a word list: specials take ids 0-4, then the words in the order given."""
        vocab = {tok: i for i, tok in enumerate(SPECIALS)}
        for w in words:
            if not isinstance(w, str) or not w or w != w.strip() or " " in w:
                raise ValueError(f"vocabulary entries must be single words, got {w!r}")
            vocab.setdefault(w.lower(), len(vocab))
        tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
        tk.normalizer = normalizers.Lowercase()
        tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        tk.post_processor = processors.TemplateProcessing(
            single=f"{BOS} $A {EOS}", special_tokens=[(BOS, vocab[BOS]), (EOS, vocab[EOS])]
        )
        return cls(tk)

    @classmethod
    def shapes_world(cls) -> CaptionTokenizer:
        """The tokenizer for every caption and alt-text of the shapes world."""
        return cls.from_words(vocabulary())

    @classmethod
    def from_texts(cls, texts: Iterable[str], min_count: int = 1) -> CaptionTokenizer:
        """Build a vocabulary from a corpus (e.g. real captions): words seen min_count times."""
        counts: dict[str, int] = {}
        for text in texts:
            for w in text.lower().split():
                counts[w] = counts.get(w, 0) + 1
        words = sorted(w for w, c in counts.items() if c >= min_count)
        return cls.from_words(words)

    def __len__(self) -> int:
        return self.tk.get_vocab_size()

    @property
    def vocab_size(self) -> int:
        return len(self)

    def encode(self, text: str, add_special: bool = True) -> list[int]:
        """Text to ids; with add_special the ids are framed by [BOS] ... [EOS]."""
        if not isinstance(text, str):
            raise TypeError(f"encode takes a str, got {type(text).__name__}")
        return self.tk.encode(text, add_special_tokens=add_special).ids

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Ids to text: stops at the first [EOS], drops [BOS] and [PAD]."""
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1:
                shape = tuple(ids.shape)
                raise ValueError(f"decode takes one sequence of ids (T,), got shape {shape}")
            ids = ids.tolist()
        out: list[int] = []
        for i in ids:
            if not 0 <= int(i) < len(self):
                raise ValueError(f"token id {i} is outside the vocabulary [0, {len(self)})")
            if i == self.eos_id:
                break
            if i not in (self.bos_id, self.pad_id):
                out.append(int(i))
        return self.tk.decode(out, skip_special_tokens=False)

    def batch_decode(self, ids: torch.Tensor) -> list[str]:
        if not isinstance(ids, torch.Tensor) or ids.dim() != 2:
            raise ValueError("batch_decode takes a (B, T) tensor of ids")
        return [self.decode(row) for row in ids]

    def batch_encode(
        self, texts: Sequence[str], max_len: int | None = None, add_special: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pad a batch to its longest text (or truncate to max_len).

        Returns ids (B, T) long and attention_mask (B, T) bool, True on real tokens.
        A truncated text keeps its [EOS] as the last token.
        """
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("batch_encode takes a list of str")
        if len(texts) == 0:
            raise ValueError("batch_encode needs at least one text")
        if max_len is not None and max_len < (3 if add_special else 1):
            raise ValueError(f"max_len must leave room for a token plus [BOS]/[EOS], got {max_len}")
        seqs = [self.encode(t, add_special) for t in texts]
        if max_len is not None:
            seqs = [s if len(s) <= max_len else s[: max_len - 1] + s[-1:] for s in seqs]
        T = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), T), self.pad_id, dtype=torch.long)  # (B, T)
        for b, s in enumerate(seqs):
            ids[b, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask = ids != self.pad_id  # (B, T)
        return ids, mask

    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer as JSON (atomically: a temp file, then a rename)."""
        atomic_write_text(path, self.tk.to_str(pretty=True))

    @classmethod
    def load(cls, path: str | os.PathLike) -> CaptionTokenizer:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no tokenizer JSON at {path}")
        try:
            json.loads(path.read_text())
            tk = Tokenizer.from_file(str(path))
        except Exception as err:  # json.JSONDecodeError or the tokenizers' own Exception
            raise ValueError(f"{path} is not a tokenizer JSON file: {err}") from err
        return cls(tk)
