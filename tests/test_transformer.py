"""The encoder block and BERT, proved against nn.TransformerEncoderLayer and transformers."""

import copy

import pytest
import torch
import torch.nn as nn

from minivlm.transformer import (
    BertEncoder,
    Encoder,
    EncoderBlock,
    FeedForward,
    hf_to_minivlm,
    load_minilm,
    mean_pool,
    minilm_folder,
)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("fast", [False, True])
def test_block_equals_nn_transformerencoderlayer(norm_first, activation, fast):
    torch.manual_seed(0)
    ref = nn.TransformerEncoderLayer(
        32, 4, 64, dropout=0.0, activation=activation, batch_first=True, norm_first=norm_first
    ).eval()
    ours = EncoderBlock(32, 4, 64, norm_first=norm_first, activation=activation, fast=fast).eval()
    ours.load_from_torch(ref)
    x = torch.randn(3, 7, 32)
    keep = torch.ones(3, 7, dtype=torch.bool)
    keep[1, 4:] = False
    expected = ref(x, src_key_padding_mask=~keep)
    got = ours(x, key_mask=keep)[0]
    # torch's fused "fast path" zeroes padded positions in eval mode; compare real tokens
    torch.testing.assert_close(got[keep], expected[keep], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        ours(x, causal=True)[0],
        ref(x, is_causal=True, src_mask=nn.Transformer.generate_square_subsequent_mask(7)),
        atol=1e-5,
        rtol=1e-5,
    )


@pytest.mark.parametrize("norm_first", [False, True])
def test_stack_equals_nn_transformerencoder(norm_first):
    torch.manual_seed(1)
    layer = nn.TransformerEncoderLayer(
        32, 4, 64, 0.0, "gelu", batch_first=True, norm_first=norm_first
    )
    ref = nn.TransformerEncoder(
        layer, 3, norm=nn.LayerNorm(32) if norm_first else None, enable_nested_tensor=False
    ).eval()
    ours = Encoder(3, 32, 4, 64, norm_first=norm_first).eval()
    ours.load_from_torch(ref)
    x = torch.randn(2, 9, 32)
    torch.testing.assert_close(ours(x)[0], ref(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("norm_first", [False, True])
def test_a_prefix_read_as_keys_gives_the_words_states_of_the_whole_sequence(norm_first):
    # block(x, prefix=p) is block(cat([p, x]))'s last T rows: p is read, not recomputed
    torch.manual_seed(0)
    block = EncoderBlock(32, 4, 64, norm_first=norm_first).eval()
    p, x = torch.randn(3, 5, 32), torch.randn(3, 7, 32)  # (B, P, D), (B, T, D)
    keep = torch.ones(3, 12, dtype=torch.bool)
    keep[1, -2:] = False  # padding at the end of one text
    whole, _ = block(torch.cat([p, x], dim=1), key_mask=keep, causal=True)
    words, _ = block(x, key_mask=keep, causal=True, prefix=p)
    torch.testing.assert_close(words, whole[:, 5:])


def test_block_gradcheck_float64():
    torch.manual_seed(0)
    block = EncoderBlock(8, 2, 16, fast=False).double()
    x = torch.randn(2, 3, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: block(x, causal=True)[0], (x,))


@pytest.fixture(scope="module")
def minilm():
    from transformers import BertModel

    ours, tok = load_minilm()
    ref = BertModel.from_pretrained(str(minilm_folder())).eval()
    return ours, tok, ref


SENTENCES = [
    "a small red circle left of a large blue square",
    "Hi",
    "The quick brown fox jumps over the lazy dog, then falls asleep under a tree.",
    "there are three shapes : a large green triangle above a small red circle above a small blue square",
]


@pytest.mark.parametrize("fast", [True, False])
def test_bert_reproduces_transformers_on_real_minilm_weights(minilm, fast):
    ours, tok, ref = minilm
    for layer in ours.encoder.layers:
        layer.attn.fast = fast
    ids, mask = tok(SENTENCES)
    assert mask.sum(1).unique().numel() == len(SENTENCES)  # different lengths, so padding
    with torch.no_grad():
        expected = ref(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        got = ours(ids, mask)
    assert (got - expected)[mask].abs().max() <= 1e-5  # every real token of every sentence


def test_bert_equals_transformers_everywhere_in_float64(minilm):
    """In float64 even the (meaningless) outputs at padded positions agree: the same maths."""
    ours, tok, ref = minilm
    ours64, ref64 = copy.deepcopy(ours).double(), copy.deepcopy(ref).double()
    ids, mask = tok(SENTENCES)
    with torch.no_grad():
        expected = ref64(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        assert (ours64(ids, mask) - expected).abs().max() <= 1e-10


def test_minilm_sentence_embeddings_follow_meaning(minilm):
    ours, tok, _ = minilm
    texts = [
        "a cat sits on the mat",
        "a kitten is sitting on a rug",
        "stock markets fell sharply today",
    ]
    ids, mask = tok(texts)
    with torch.no_grad():
        e = mean_pool(ours(ids, mask), mask)
    sim = e @ e.T
    assert sim[0, 1] > sim[0, 2] + 0.3


def test_hf_name_mapping():
    assert (
        hf_to_minivlm("encoder.layer.3.attention.self.query.weight")
        == "encoder.layers.3.attn.q_proj.weight"
    )
    assert hf_to_minivlm("bert.embeddings.LayerNorm.bias") == "emb_norm.bias"
    assert hf_to_minivlm("pooler.dense.weight") is None
    with pytest.raises(KeyError, match="unexpected BERT parameter"):
        hf_to_minivlm("encoder.layer.0.crossattention.self.query.weight")


def test_bad_input_is_a_clear_error(minilm, tmp_path):
    ours, tok, _ = minilm
    with pytest.raises(ValueError, match=r"\(B, T\) long"):
        ours(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="exceeds 512"):
        ours(torch.zeros(1, 513, dtype=torch.long))
    with pytest.raises(TypeError, match="list of str"):
        tok("one string")
    with pytest.raises(FileNotFoundError, match="not a BERT checkpoint"):
        BertEncoder.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="unknown activation"):
        FeedForward(4, 8, activation="swish")
