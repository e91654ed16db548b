"""Torch datasets of the shapes world and a collate function that pads captions (chapter 1).

Images are rendered once, when the dataset is built (tens of thousands per second), and kept as
uint8; `__getitem__` only converts one to a tensor. Every item is a dict with "image" (3, S, S)
and "text"; `CaptionCollate` stacks images and turns texts into padded ids plus a mask.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from .captions import alt_text, caption, paraphrase
from .images import to_tensor
from .render import render
from .scenes import Scene
from .splits import SPLITS, make_scenes, scene_rng
from .tokenizer import CaptionTokenizer


class ShapesCaptions(Dataset):
    """Scenes of one split with their captions.

    captions="canonical" gives the one caption a model is scored on; "paraphrase" gives a random
    paraphrase fixed per scene (the same facts in other words).
    """

    def __init__(
        self,
        split: str,
        n: int,
        size: int = 64,
        seed: int = 0,
        captions: str = "canonical",
        n_objects: int | None = None,
        noise: float = 0.02,
    ):
        if captions not in ("canonical", "paraphrase"):
            raise ValueError(f"captions must be 'canonical' or 'paraphrase', got {captions!r}")
        self.split, self.size = split, size
        self.scenes: list[Scene] = make_scenes(split, n, seed=seed, n_objects=n_objects)
        self.images = render(self.scenes, size=size, noise=noise, seed=seed * 10 + SPLITS[split])
        if captions == "canonical":
            self.texts = [caption(s) for s in self.scenes]
        else:
            self.texts = [
                paraphrase(s, scene_rng(split, i, seed + 1)) for i, s in enumerate(self.scenes)
            ]

    def __len__(self) -> int:
        return len(self.scenes)

    def __getitem__(self, i: int) -> dict:
        return {"image": to_tensor(self.images[i])[0], "text": self.texts[i], "index": i}


class AltTextPairs(ShapesCaptions):
    """Many noisy image/alt-text pairs from training scenes, for pretraining (chapter 6).

    Each item also says which kind of text it holds: full, partial, bag or wrong.
    """

    def __init__(self, n: int, size: int = 64, seed: int = 0, noise: float = 0.02):
        super().__init__("train", n, size=size, seed=seed, noise=noise)
        pairs = [alt_text(s, scene_rng("train", i, seed + 2)) for i, s in enumerate(self.scenes)]
        self.texts = [t for t, _ in pairs]
        self.kinds = [k for _, k in pairs]

    def __getitem__(self, i: int) -> dict:
        return {**super().__getitem__(i), "kind": self.kinds[i]}


class CaptionCollate:
    """Stack a list of items into a batch: images (B, 3, S, S), ids (B, T), mask (B, T)."""

    def __init__(self, tokenizer: CaptionTokenizer, max_len: int | None = None):
        self.tokenizer, self.max_len = tokenizer, max_len

    def __call__(self, items: Sequence[dict]) -> dict:
        if not items:
            raise ValueError("cannot collate an empty batch")
        ids, mask = self.tokenizer.batch_encode([it["text"] for it in items], self.max_len)
        batch = {
            "image": torch.stack([it["image"] for it in items]),  # (B, 3, S, S)
            "ids": ids,  # (B, T)
            "mask": mask,  # (B, T)
            "text": [it["text"] for it in items],
        }
        for key in ("index", "kind"):
            if key in items[0]:
                values = [it[key] for it in items]
                batch[key] = torch.tensor(values) if isinstance(values[0], int) else values
        return batch
