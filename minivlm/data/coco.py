"""Real captioned images in COCO caption format (chapter 1; the capstone trains on it too).

A COCO caption set is an image folder plus one JSON file:

    {"images": [{"id": 1, "file_name": "000001.jpg"}, ...],
     "annotations": [{"image_id": 1, "caption": "A cat on a mat."}, ...]}

`load_coco_captions` checks the file and returns one record per image with all its captions;
`CocoCaptions` is a torch Dataset over them that uses the same image pipeline as the shapes world.
Nothing here downloads anything: point it at data already on disk.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from .images import to_tensor


@dataclass(frozen=True)
class CocoRecord:
    image_id: int
    path: Path
    captions: tuple[str, ...]


def load_coco_captions(
    image_dir: str | os.PathLike, annotations: str | os.PathLike
) -> list[CocoRecord]:
    """Read a COCO caption JSON and match it to image files. Images without captions are dropped.

    Raises FileNotFoundError for a missing folder, JSON file or image, and ValueError for a JSON
    file that is not in COCO caption format.
    """
    image_dir, annotations = Path(image_dir), Path(annotations)
    if not image_dir.is_dir():
        raise FileNotFoundError(f"image folder not found: {image_dir}")
    if not annotations.is_file():
        raise FileNotFoundError(f"annotation file not found: {annotations}")
    try:
        data = json.loads(annotations.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{annotations} is not valid JSON: {err}") from err
    if not isinstance(data, dict) or not {"images", "annotations"} <= set(data):
        raise ValueError(
            f"{annotations}: expected a JSON object with keys 'images' and 'annotations'"
        )
    files: dict[int, str] = {}
    for i, img in enumerate(data["images"]):
        if (
            not isinstance(img, dict)
            or not isinstance(img.get("id"), int)
            or not isinstance(img.get("file_name"), str)
        ):
            raise ValueError(f"{annotations}: images[{i}] needs an int 'id' and a str 'file_name'")
        files[img["id"]] = img["file_name"]
    captions: dict[int, list[str]] = {}
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or not isinstance(ann.get("caption"), str):
            raise ValueError(f"{annotations}: annotations[{i}] needs a str 'caption'")
        if ann.get("image_id") not in files:
            raise ValueError(
                f"{annotations}: annotations[{i}] refers to image_id {ann.get('image_id')!r},"
                " which is not in 'images'"
            )
        captions.setdefault(ann["image_id"], []).append(ann["caption"].strip())
    records = []
    for image_id in sorted(captions):
        path = image_dir / files[image_id]
        if not path.is_file():
            raise FileNotFoundError(f"image {image_id} listed in {annotations} is missing: {path}")
        records.append(CocoRecord(image_id, path, tuple(captions[image_id])))
    return records


def normalize_caption(text: str) -> str:
    """Lower case, punctuation split off as its own word: "A cat." -> "a cat ."."""
    out = []
    for ch in text.lower():
        out.append(f" {ch} " if not (ch.isalnum() or ch in " '") else ch)
    return " ".join("".join(out).split())


class CocoCaptions(Dataset):
    """(image, caption) items from a COCO caption set: one item per caption."""

    def __init__(
        self, image_dir: str | os.PathLike, annotations: str | os.PathLike, size: int = 64
    ):
        self.records = load_coco_captions(image_dir, annotations)
        self.size = size
        self.items = [(r, normalize_caption(c)) for r in self.records for c in r.captions]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        from PIL import Image

        record, text = self.items[i]
        with Image.open(record.path) as im:
            pixels = np.asarray(im.convert("RGB"))  # (H, W, 3) uint8
        return {"image": to_tensor(pixels, self.size)[0], "text": text, "index": i}
