"""The word-level tokenizer: round trips, specials, padding masks, save/load."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minivlm.data.captions import alt_text, caption, paraphrase, vocabulary
from minivlm.data.scenes import sample_scene
from minivlm.data.tokenizer import SPECIALS, CaptionTokenizer

TOK = CaptionTokenizer.shapes_world()


def test_specials_take_the_first_ids():
    assert [TOK.pad_id, TOK.bos_id, TOK.eos_id, TOK.unk_id, TOK.mask_id] == [0, 1, 2, 3, 4]
    assert len(TOK) == len(SPECIALS) + len(vocabulary())


@given(st.integers(0, 2**32 - 1))
def test_round_trip_of_every_kind_of_text(seed):
    rng = np.random.default_rng(seed)
    scene = sample_scene(rng)
    for text in (caption(scene), paraphrase(scene, rng), alt_text(scene, rng)[0]):
        ids = TOK.encode(text)
        assert ids[0] == TOK.bos_id and ids[-1] == TOK.eos_id
        assert TOK.unk_id not in ids
        assert TOK.decode(ids) == text


def test_unknown_words_become_unk_and_case_folds():
    ids = TOK.encode("A Small RED zebra", add_special=False)
    assert ids[-1] == TOK.unk_id
    assert TOK.decode(ids) == "a small red [UNK]"


def test_batch_padding_and_mask():
    texts = ["a small red circle", "a large blue square left of a small green triangle"]
    ids, mask = TOK.batch_encode(texts)
    assert ids.shape == mask.shape == (2, 12)
    assert ids.dtype == torch.long and mask.dtype == torch.bool
    assert mask[0].sum() == 6 and mask[1].all()
    assert (ids[0, 6:] == TOK.pad_id).all()
    assert TOK.batch_decode(ids) == texts


def test_truncation_keeps_eos():
    ids, mask = TOK.batch_encode(["a large blue square left of a small green triangle"], max_len=5)
    assert ids.shape == (1, 5) and ids[0, -1] == TOK.eos_id and mask.all()


def test_save_and_load(tmp_path):
    path = tmp_path / "tok.json"
    TOK.save(path)
    loaded = CaptionTokenizer.load(path)
    text = "there are two shapes : a small red circle above a large blue square"
    assert loaded.encode(text) == TOK.encode(text)
    assert loaded.decode(TOK.encode(text)) == text
    assert not list(tmp_path.glob("*.tmp"))


def test_from_texts_builds_a_corpus_vocabulary():
    tok = CaptionTokenizer.from_texts(["a cat on a mat", "a dog"], min_count=1)
    assert tok.decode(tok.encode("a cat on a dog")) == "a cat on a dog"
    assert (
        len(CaptionTokenizer.from_texts(["a cat on a mat", "a dog"], min_count=2))
        == len(SPECIALS) + 1
    )


def test_bad_input_is_a_clear_error(tmp_path):
    with pytest.raises(TypeError, match="encode takes a str"):
        TOK.encode(3)
    with pytest.raises(TypeError, match="list of str"):
        TOK.batch_encode("a small red circle")
    with pytest.raises(ValueError, match="at least one text"):
        TOK.batch_encode([])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        TOK.decode([1, 999])
    with pytest.raises(ValueError, match=r"\(T,\)"):
        TOK.decode(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(FileNotFoundError, match="no tokenizer JSON"):
        CaptionTokenizer.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not a tokenizer JSON"):
        CaptionTokenizer.load(bad)
    with pytest.raises(ValueError, match="single words"):
        CaptionTokenizer.from_words(["red", "two words"])
