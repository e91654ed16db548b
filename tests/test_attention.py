"""Attention from scratch, proved against PyTorch's own implementations."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from minivlm.attention import KVCache, MultiHeadAttention, causal_mask, scaled_dot_product_attention

torch.set_default_dtype(torch.float32)


@pytest.fixture
def pair():
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    ours = MultiHeadAttention(32, 4).eval()
    ours.load_from_torch(ref)
    return ours, ref


@pytest.mark.parametrize("fast", [False, True])
def test_equals_nn_multiheadattention_with_padding_mask(pair, fast):
    ours, ref = pair
    ours.fast = fast
    x = torch.randn(3, 7, 32)
    keep = torch.ones(3, 7, dtype=torch.bool)
    keep[0, 5:] = False
    keep[2, 2:] = False
    out_ref, w_ref = ref(
        x, x, x, key_padding_mask=~keep, need_weights=True, average_attn_weights=False
    )
    out, w = ours(x, key_mask=keep, need_weights=True)
    torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w, w_ref, atol=1e-6, rtol=1e-5)
    out_fast, _ = ours(x, key_mask=keep)
    torch.testing.assert_close(out_fast, out_ref, atol=1e-5, rtol=1e-5)


def test_equals_nn_multiheadattention_causal_and_cross(pair):
    ours, ref = pair
    x, ctx = torch.randn(2, 6, 32), torch.randn(2, 9, 32)
    causal = causal_mask(6)
    out_ref, _ = ref(x, x, x, attn_mask=~causal, need_weights=False)
    torch.testing.assert_close(ours(x, causal=True)[0], out_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours(x, attn_mask=causal)[0], out_ref, atol=1e-5, rtol=1e-5)
    out_ref, _ = ref(x, ctx, ctx)
    torch.testing.assert_close(ours(x, context=ctx)[0], out_ref, atol=1e-5, rtol=1e-5)


def test_batch_first_false_would_mix_the_batch(pair):
    """The reference with batch_first=False, fed (B, T, D), treats B as time: our module does not."""
    ours, ref = pair
    ref_tf = nn.MultiheadAttention(32, 4, batch_first=False).eval()
    ref_tf.load_state_dict(ref.state_dict())
    x = torch.randn(3, 5, 32)
    y = x.clone()
    y[2] += 1.0  # change example 2 only
    wrong = ref_tf(y, y, y)[0][0] - ref_tf(x, x, x)[0][0]
    right = ours(y)[0][0] - ours(x)[0][0]
    assert wrong.abs().max() > 1e-3  # example 0 changed: examples were mixed
    assert right.abs().max() == 0  # example 0 untouched
    torch.testing.assert_close(
        ours(x)[0],
        ref_tf(x.transpose(0, 1), x.transpose(0, 1), x.transpose(0, 1))[0].transpose(0, 1),
        atol=1e-5,
        rtol=1e-5,
    )


@given(
    b=st.integers(1, 3), h=st.integers(1, 3), tq=st.integers(1, 6), tk=st.integers(1, 6),
    d=st.integers(1, 8), seed=st.integers(0, 10_000),
)  # fmt: skip
def test_sdpa_equals_torch_for_any_shapes_and_masks(b, h, tq, tk, d, seed):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, h, t, d, generator=g) for t in (tq, tk, tk))
    mask = torch.rand(b, 1, tq, tk, generator=g) > 0.4
    out, w = scaled_dot_product_attention(q, k, v, mask)
    assert torch.isfinite(out).all() and torch.isfinite(w).all()
    dead = ~mask.any(-1)  # (b, 1, tq) queries with no key to see
    assert (out[dead.expand(b, h, tq)] == 0).all()
    sums = w.sum(-1)
    torch.testing.assert_close(
        sums[~dead.expand(b, h, tq)], torch.ones_like(sums[~dead.expand(b, h, tq)])
    )
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    ref = torch.where(dead[..., None].expand_as(ref), 0.0, ref)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


@given(t=st.integers(1, 8), seed=st.integers(0, 1000))
def test_fully_masked_rows_are_zero_not_nan_in_both_paths(t, seed):
    torch.manual_seed(seed)
    mha = MultiHeadAttention(16, 2).eval()
    x = torch.randn(2, t, 16)
    keep = torch.ones(2, t, dtype=torch.bool)
    keep[1] = False  # example 1 has no real token at all
    for fast in (False, True):
        mha.fast = fast
        out = mha(x, key_mask=keep)[0]
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out[1], mha.out_proj.bias.expand(t, 16))  # only the bias left


def test_fully_masked_rows_have_finite_gradients():
    q = torch.randn(1, 1, 3, 4, requires_grad=True)
    mask = torch.tensor([[True, False], [False, False], [True, True]])
    out, _ = scaled_dot_product_attention(q, torch.randn(1, 1, 2, 4), torch.randn(1, 1, 2, 4), mask)
    out.sum().backward()
    assert torch.isfinite(q.grad).all() and (q.grad[0, 0, 1] == 0).all()


def test_gradcheck_float64():
    torch.manual_seed(0)
    mha = MultiHeadAttention(8, 2, fast=False).double()
    x = torch.randn(2, 4, 8, dtype=torch.float64, requires_grad=True)
    keep = torch.tensor([[True, True, True, False], [True, True, True, True]])
    assert torch.autograd.gradcheck(lambda x: mha(x, key_mask=keep, causal=True)[0], (x,))
    q, k, v = (torch.randn(1, 2, 3, 4, dtype=torch.float64, requires_grad=True) for _ in range(3))
    assert torch.autograd.gradcheck(
        lambda q, k, v: scaled_dot_product_attention(q, k, v)[0], (q, k, v)
    )


def test_kv_cache_equals_recomputation():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4).eval()
    x = torch.randn(2, 6, 16)
    full = mha(x, causal=True)[0]
    cache, steps = KVCache(), []
    for t in range(6):
        steps.append(mha(x[:, t : t + 1], causal=True, cache=cache)[0])
    assert len(cache) == 6
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-6, rtol=1e-5)
    # cross-attention: the context is projected once, then reused
    ctx = torch.randn(2, 5, 16)
    static = KVCache(static=True)
    first = mha(x[:, :1], context=ctx, cache=static)[0]
    again = mha(x[:, :1], context=ctx * 100, cache=static)[0]  # ignored: keys come from the cache
    torch.testing.assert_close(first, again)


def test_causal_mask_with_offset():
    assert causal_mask(2, 4).tolist() == [[True, True, True, False], [True, True, True, True]]


def test_dropout_only_in_training():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 2, dropout=0.5, fast=False)
    x = torch.randn(1, 8, 16)
    mha.eval()
    torch.testing.assert_close(mha(x)[0], mha(x)[0])
    mha.train()
    assert not torch.equal(mha(x)[0], mha(x)[0])


@pytest.mark.parametrize(
    "call, err, words",
    [
        (lambda m: m(torch.randn(2, 5)), ValueError, r"x must be \(B, T, 16\)"),
        (lambda m: m(torch.randn(2, 5, 8)), ValueError, r"x must be \(B, T, 16\)"),
        (
            lambda m: m(torch.randn(2, 5, 16), context=torch.randn(3, 4, 16)),
            ValueError,
            "context must be",
        ),
        (lambda m: m(torch.randn(2, 5, 16), key_mask=torch.ones(2, 5)), TypeError, "bool tensor"),
        (
            lambda m: m(torch.randn(2, 5, 16), key_mask=torch.ones(2, 4, dtype=torch.bool)),
            ValueError,
            "does not broadcast",
        ),
        (
            lambda m: m(torch.randn(2, 5, 16), attn_mask=torch.ones(5, dtype=torch.bool)),
            ValueError,
            "attn_mask must be",
        ),
        (
            lambda m: m(torch.randn(2, 5, 16), attn_mask=torch.ones(4, 4, dtype=torch.bool)),
            ValueError,
            "does not broadcast",
        ),
    ],
)
def test_bad_input_is_a_clear_error(call, err, words):
    with pytest.raises(err, match=words):
        call(MultiHeadAttention(16, 2))


def test_bad_construction_and_sdpa_shapes():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="same rank"):
        scaled_dot_product_attention(torch.randn(2, 3, 4), torch.randn(3, 4), torch.randn(3, 4))
    with pytest.raises(ValueError, match="need q"):
        scaled_dot_product_attention(torch.randn(3, 4), torch.randn(3, 5), torch.randn(3, 5))
