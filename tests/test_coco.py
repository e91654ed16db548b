"""The COCO caption loader, on a tiny fixture written by the test."""

import json

import numpy as np
import pytest
from PIL import Image

from minivlm.data.coco import CocoCaptions, load_coco_captions, normalize_caption


@pytest.fixture
def coco(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i, shape in ((1, (40, 60, 3)), (2, (50, 50, 3)), (3, (30, 30, 3))):
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(images / f"{i:06d}.png")
    ann = {
        "images": [{"id": i, "file_name": f"{i:06d}.png"} for i in (1, 2, 3)],
        "annotations": [
            {"id": 10, "image_id": 1, "caption": "A cat sits on a mat."},
            {"id": 11, "image_id": 1, "caption": "A cat, resting."},
            {"id": 12, "image_id": 2, "caption": "Two dogs play."},
        ],
    }
    path = tmp_path / "captions.json"
    path.write_text(json.dumps(ann))
    return images, path, ann


def test_loader_matches_images_and_captions(coco):
    images, path, _ = coco
    records = load_coco_captions(images, path)
    assert [r.image_id for r in records] == [1, 2]  # image 3 has no caption
    assert records[0].captions == ("A cat sits on a mat.", "A cat, resting.")
    ds = CocoCaptions(images, path, size=32)
    assert len(ds) == 3
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and item["text"] == "a cat sits on a mat ."


def test_normalize_caption():
    assert normalize_caption("  A Cat, on the MAT!") == "a cat , on the mat !"


def test_missing_files_are_clear_errors(coco, tmp_path):
    images, path, ann = coco
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        load_coco_captions(tmp_path / "nope", path)
    with pytest.raises(FileNotFoundError, match="annotation file not found"):
        load_coco_captions(images, tmp_path / "nope.json")
    (images / "000002.png").unlink()
    with pytest.raises(FileNotFoundError, match="image 2 .* is missing"):
        load_coco_captions(images, path)


@pytest.mark.parametrize(
    "content, words",
    [
        ("{not json", "not valid JSON"),
        ("[]", "keys 'images' and 'annotations'"),
        ('{"images": [{"id": "1"}], "annotations": []}', r"images\[0\] needs an int 'id'"),
        (
            '{"images": [], "annotations": [{"image_id": 1}]}',
            r"annotations\[0\] needs a str 'caption'",
        ),
        (
            '{"images": [{"id": 1, "file_name": "a.png"}],'
            ' "annotations": [{"image_id": 9, "caption": "x"}]}',
            "image_id 9",
        ),
    ],
)
def test_malformed_json_is_a_clear_error(coco, tmp_path, content, words):
    images, _, _ = coco
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    with pytest.raises(ValueError, match=words):
        load_coco_captions(images, bad)
