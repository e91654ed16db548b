"""The capstone's data: the splits of a run, and batches that are a function of the step
(chapter 8).

`datasets(cfg)` builds the splits once: for the shapes world the alt-text pairs, the captioned
training scenes, the held-out test scenes and the compositional split; for COCO-format data on
disk the train and val splits, their images resized once to the model's size. `Batches` turns a
split into `get_batch(step)` for `minivlm.train.train`: batch s depends only on (seed, s), which
is what makes a resumed run equal an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data import AltTextPairs, CaptionTokenizer, ShapesCaptions, load_coco_captions, to_tensor
from ..data.coco import normalize_caption
from ..data.images import load_image
from ..errors import InputError
from ..train import rank_slice
from .config import CapstoneConfig, CocoData


@dataclass
class Pairs:
    """Images and texts that `Batches` can draw from. Text i belongs to image `which[i]`
    (default: image i), so an image with five captions is stored once."""

    images: np.ndarray  # (M, S, S, 3) uint8
    texts: list[str]
    which: np.ndarray | None = None  # (N,) image index of each text
    refs: list[list[str]] = field(default_factory=list)  # per image: every caption (scoring)


class Batches:
    """get_batch(step) for train(): batch `step` is a function of (seed, step) only.

    keep: indices of the texts to draw from (default: all of them), e.g. from `curate`.
    max_len: longer texts are cut to this many tokens, [EOS] kept (real captions can be long).
    """

    def __init__(self, data, tok: CaptionTokenizer, batch: int, seed: int, keep=None, max_len=None):
        which = getattr(data, "which", None)
        which = np.arange(len(data.texts)) if which is None else which
        keep = np.arange(len(data.texts)) if keep is None else np.asarray(keep)
        self.images, self.which = data.images, which[keep]  # (M, S, S, 3) uint8, (N,)
        texts = [data.texts[i] for i in keep]
        self.ids, self.mask = tok.batch_encode(texts, max_len=max_len)  # (N, T) each
        self.batch, self.seed = batch, seed

    def __call__(self, step: int) -> dict:
        idx = np.random.default_rng([self.seed, step]).integers(len(self.which), size=self.batch)
        idx = idx[rank_slice(self.batch)]  # under torchrun, this process's share of the batch
        width = int(self.mask[idx].sum(1).max())  # trim padding to this batch's longest text
        return {
            "image": to_tensor(self.images[self.which[idx]]),  # (B, 3, S, S)
            "ids": self.ids[idx, :width],
            "mask": self.mask[idx, :width],
        }


def datasets(cfg: CapstoneConfig) -> dict:
    """The splits of a run: shapes world {"alt", "captioned", "test", "comp"} (alt only when
    stage 1 runs), or COCO {"captioned", "val"} (also "alt": the same pairs, for stage 1)."""
    if isinstance(cfg.data, CocoData):
        return coco_datasets(cfg.data, cfg.model.image_size)
    d, s, seed = cfg.data, cfg.model.image_size, cfg.seed
    out = {
        "captioned": ShapesCaptions("train", d.n_captioned, size=s, seed=seed + 100),
        "test": ShapesCaptions("test", d.n_test, size=s),
        "comp": ShapesCaptions("comp", d.n_comp, size=s),
    }
    if cfg.schedule.pretrain_steps:
        out["alt"] = AltTextPairs(d.n_alt, size=s, seed=seed)
    return out


def coco_files(root: str | Path, split: str) -> tuple[Path, Path]:
    """(image folder, annotation JSON) of one split, in either layout that CocoData names."""
    root = Path(root)
    if not root.is_dir():
        raise InputError("data", "coco:DIR with DIR a folder of COCO captions", f"{root}")
    plain = root / f"{split}.json"
    if plain.is_file():
        return root / "images", plain
    coco = sorted((root / "annotations").glob(f"captions_{split}*.json"))
    if coco:
        return root / coco[0].stem.removeprefix("captions_"), coco[0]
    raise InputError(
        "data",
        f"{root}/{split}.json (images in {root}/images/) or "
        f"{root}/annotations/captions_{split}2017.json (images in {root}/{split}2017/)",
        "neither",
    )


def check_data(cfg: CapstoneConfig) -> None:
    """Fail early, before a run folder is touched, if COCO data is not where cfg says."""
    if isinstance(cfg.data, CocoData):
        for split in ("train", "val"):
            coco_files(cfg.data.root, split)


def coco_datasets(data: CocoData, size: int) -> dict:
    """COCO-format train and val splits, each image loaded once and resized to `size`."""
    out = {}
    for split, limit in (("train", data.max_train), ("val", data.max_val)):
        folder, annotations = coco_files(data.root, split)
        try:
            records = load_coco_captions(folder, annotations)
        except (FileNotFoundError, ValueError) as err:
            raise InputError("data", "a readable COCO caption set", str(err)) from err
        records = records[:limit] if limit else records
        if not records:
            raise InputError("data", f"captioned images in {annotations}", "none")
        images = np.stack([load_image(r.path, size) for r in records])  # (M, S, S, 3)
        refs = [[normalize_caption(c) for c in r.captions] for r in records]
        texts = [c for cs in refs for c in cs]
        which = np.repeat(np.arange(len(refs)), [len(cs) for cs in refs])
        out[split] = Pairs(images, texts, which, refs)
    return {"captioned": out["train"], "alt": out["train"], "val": out["val"]}


def tokenizer_for(cfg: CapstoneConfig, data: dict) -> CaptionTokenizer:
    """The shapes world's fixed vocabulary, or words of the COCO training captions."""
    if isinstance(cfg.data, CocoData):
        return CaptionTokenizer.from_texts(data["captioned"].texts, min_count=cfg.data.min_count)
    return CaptionTokenizer.shapes_world()
