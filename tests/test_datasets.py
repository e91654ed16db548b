"""Torch datasets and the collate function."""

import pytest
import torch
from torch.utils.data import DataLoader

from minivlm.data.captions import ALT_KINDS, caption, parse
from minivlm.data.datasets import AltTextPairs, CaptionCollate, ShapesCaptions
from minivlm.data.scenes import scene_facts
from minivlm.data.tokenizer import CaptionTokenizer


def test_caption_dataset_items_and_loader():
    ds = ShapesCaptions("train", 10, size=32)
    item = ds[3]
    assert item["image"].shape == (3, 32, 32) and item["text"] == caption(ds.scenes[3])
    tok = CaptionTokenizer.shapes_world()
    batch = next(iter(DataLoader(ds, batch_size=4, collate_fn=CaptionCollate(tok))))
    assert batch["image"].shape == (4, 3, 32, 32)
    assert batch["ids"].shape == batch["mask"].shape and batch["ids"].shape[0] == 4
    assert torch.equal(batch["index"], torch.arange(4))
    assert tok.batch_decode(batch["ids"]) == batch["text"]
    assert (batch["mask"].sum(1) == torch.tensor([len(tok.encode(t)) for t in batch["text"]])).all()


def test_datasets_are_deterministic():
    a, b = ShapesCaptions("val", 8, size=32, seed=5), ShapesCaptions("val", 8, size=32, seed=5)
    assert torch.equal(a[7]["image"], b[7]["image"]) and a.texts == b.texts


def test_paraphrase_dataset_states_the_same_facts():
    ds = ShapesCaptions("train", 30, size=32, captions="paraphrase")
    assert [parse(t) for t in ds.texts] == [scene_facts(s) for s in ds.scenes]
    assert ds.texts != [caption(s) for s in ds.scenes]


def test_alt_text_pairs_carry_their_kind():
    ds = AltTextPairs(200, size=32)
    assert set(ds.kinds) == set(ALT_KINDS)
    batch = CaptionCollate(CaptionTokenizer.shapes_world())([ds[i] for i in range(6)])
    assert batch["kind"] == ds.kinds[:6]


def test_bad_dataset_arguments():
    with pytest.raises(ValueError, match="'canonical' or 'paraphrase'"):
        ShapesCaptions("train", 4, captions="fancy")
    with pytest.raises(ValueError, match="empty batch"):
        CaptionCollate(CaptionTokenizer.shapes_world())([])
