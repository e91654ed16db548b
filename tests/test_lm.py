"""Chapter 10's language model: its corpus, tokenizer, causal mask, perplexity and pretraining."""

import math

import pytest
import torch

from minivlm.data import HELD_OUT_PAIRS
from minivlm.data.corpus import KINDS_OF_TEXT, TextCorpus, lm_tokenizer, named_pairs
from minivlm.data.questions import question_tokenizer
from minivlm.errors import InputError
from minivlm.lm import (
    CausalLM,
    LMConfig,
    PretrainConfig,
    answer_accuracy,
    complete,
    encode,
    perplexity,
    pretrain_lm,
)
from minivlm.train import TrainConfig

TOK = lm_tokenizer()


def tiny(seed: int = 0, **kw) -> CausalLM:
    torch.manual_seed(seed)
    cfg = LMConfig(len(TOK), **{"d_model": 32, "n_heads": 2, "n_layers": 2, **kw})
    return CausalLM(cfg, TOK.pad_id, TOK.bos_id, TOK.eos_id).eval()


def test_a_later_word_never_changes_the_logits_of_earlier_ones():
    model = tiny()
    ids = torch.randint(5, len(TOK), (3, 12))
    changed = ids.clone()
    changed[:, 7:] = torch.randint(5, len(TOK), (3, 5))
    prefix = torch.randn(3, 4, 32)
    for p in (None, prefix):
        a, b = model.logits(ids, prefix=p), model.logits(changed, prefix=p)
        torch.testing.assert_close(a[:, :7], b[:, :7])
        assert not torch.allclose(a[:, 7:], b[:, 7:])  # the changed positions did change
    # the prefix comes first: every word reads it
    assert not torch.allclose(model.logits(ids, prefix=prefix)[:, 0], model.logits(ids)[:, 0])
    mask = torch.ones_like(ids, dtype=torch.bool)
    mask[0, 9:] = False  # padding costs nothing
    nll = model.token_nll(ids, mask, prefix)  # (3, 11)
    assert nll.shape == (3, 11) and (nll[0, 8:] == 0).all() and (nll[1:] > 0).all()


def test_named_pairs_reads_descriptions_and_answers():
    assert named_pairs("a small red triangle left of a large blue circle") == {
        ("red", "triangle"),
        ("blue", "circle"),
    }
    assert named_pairs("a large red triangle . what colour is the triangle ? red") == {
        ("red", "triangle")
    }
    assert named_pairs("a small red circle . how many red triangles are there ? zero") == {
        ("red", "circle"),
        ("red", "triangle"),
    }
    assert named_pairs("a small red circle . what shape is the red thing ? circle") == {
        ("red", "circle")
    }


def test_a_corpus_without_the_held_out_pairs_never_names_one():
    never = TextCorpus(seed=3, name_held_out=False, chunk=512).texts(0, 1500)
    assert not any(named_pairs(t.text) & HELD_OUT_PAIRS for t in never)
    every = TextCorpus(seed=3, name_held_out=True, chunk=512).texts(0, 1500)
    named = set().union(*(named_pairs(t.text) for t in every))
    assert HELD_OUT_PAIRS <= named  # every held-out pair is named somewhere
    assert sum(bool(named_pairs(t.text) & HELD_OUT_PAIRS) for t in every) > 150


def test_the_corpus_is_a_seeded_stream_of_every_kind():
    a, b = TextCorpus(seed=1, chunk=256), TextCorpus(seed=1, chunk=256)
    assert a.texts(250, 20) == b.texts(250, 20)  # across a chunk boundary
    assert a[300] == a.texts(0, 301)[300]  # index i never depends on what was read before
    assert a.texts(0, 50) != TextCorpus(seed=2, chunk=256).texts(0, 50)
    assert a.texts(0, 50) != TextCorpus(seed=1, chunk=256, stream="val").texts(0, 50)
    kinds = {t.kind for t in a.texts(0, 600)}
    assert kinds == set(KINDS_OF_TEXT)


def test_the_tokenizer_covers_the_corpus_and_keeps_chapter_9s_ids():
    texts = [t.text for t in TextCorpus(seed=0, chunk=512).texts(0, 1000)]
    for t in texts:
        assert TOK.unk_id not in TOK.encode(t)
        assert TOK.decode(TOK.encode(t)) == t
    q = question_tokenizer()
    assert all(TOK.tk.token_to_id(w) == i for w, i in q.tk.get_vocab().items())


def test_a_uniform_model_has_the_vocabulary_size_as_perplexity():
    model = tiny()
    with torch.no_grad():
        model.lm_head.weight.zero_()
        model.lm_head.bias.zero_()
    texts = [t.text for t in TextCorpus(chunk=64).texts(0, 40)]
    assert perplexity(model, TOK, texts, batch_size=16) == pytest.approx(len(TOK), rel=1e-5)


def test_bucketed_greedy_completion_equals_one_prompt_at_a_time():
    model = tiny(1)
    prompts = ["a small red circle .", "a large blue square left of a small red circle .", "a"]
    together = complete(model, TOK, prompts, max_new=6)
    alone = [complete(model, TOK, [p], max_new=6)[0] for p in prompts]
    assert together == alone
    scores = answer_accuracy(model, TOK, "val", n_scenes=4)
    assert {"describe", "all"} <= scores.keys() and all(0 <= v <= 1 for v in scores.values())


def test_a_short_pretraining_lowers_held_out_perplexity_and_resumes(tmp_path):
    train = TrainConfig(steps=60, lr=3e-3, warmup=10, eval_every=30, progress=False)
    cfg = PretrainConfig(d_model=32, n_heads=2, n_layers=1, batch_size=32, n_eval=64, train=train)
    run = pretrain_lm(cfg, out_dir=tmp_path)
    steps, ppl = zip(*run.curve, strict=True)
    assert steps == (0, 30, 60)
    assert ppl[0] > 0.8 * len(TOK) and ppl[-1] < ppl[0] / 4, ppl
    again = pretrain_lm(cfg, out_dir=tmp_path)  # finds the final checkpoint: trains nothing
    assert again.curve == run.curve
    torch.testing.assert_close(again.model.lm_head.weight, run.model.lm_head.weight)


def test_bad_input_raises_one_line_errors():
    model = tiny()
    with pytest.raises(InputError, match="name_held_out"):
        TextCorpus(name_held_out="no")
    with pytest.raises(InputError, match="mix"):
        TextCorpus(mix=(0.5, 0.5, 0.5))
    with pytest.raises(InputError, match="stream"):
        TextCorpus(stream="test")
    with pytest.raises(InputError, match="vocabulary"):
        perplexity(model, TOK, ["a small red hexagon"])
    with pytest.raises(InputError, match="texts"):
        perplexity(model, TOK, [])
    with pytest.raises(InputError, match="at most"):
        encode(TOK, ["a " * 60], max_len=48)
    with pytest.raises(InputError, match="prefix"):
        model.logits(torch.ones(2, 3, dtype=torch.long), prefix=torch.randn(2, 4, 16))
    with pytest.raises(InputError, match="max_new"):
        model.generate(torch.ones(1, 3, dtype=torch.long), max_new=100)
    assert math.isfinite(perplexity(model, TOK, ["a small red circle"]))
