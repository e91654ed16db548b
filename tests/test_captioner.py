"""Caption decoders: teacher forcing, KV cache == recomputation, beam 1 == greedy, limits."""

import pytest
import torch

from minivlm.captioner import CaptionDecoder, PrefixLM

V, D = 30, 32


@pytest.fixture
def decoder():
    torch.manual_seed(0)
    return CaptionDecoder(V, d_model=D, n_heads=4, n_layers=2, d_image=24, max_len=40).eval()


def naive_greedy(model, image, steps):
    """Greedy decoding written the plain way: recompute, argmax over the words (never [BOS] or
    [PAD]), no EOS handling."""
    seqs = torch.full((image.shape[0], 1), model.bos_id)
    for _ in range(steps):
        logits = model(seqs, image)[:, -1]
        logits[:, [model.bos_id, model.pad_id]] = float("-inf")
        nxt = logits.argmax(-1, keepdim=True)
        seqs = torch.cat([seqs, nxt], dim=1)
    return seqs[:, 1:]


def test_kv_cache_gives_the_same_logits_as_recomputation(decoder):
    image = torch.randn(3, 16, 24)
    ids = torch.randint(3, V, (3, 9))
    full = decoder(ids, image)  # (3, 9, V), all positions at once
    caches = decoder.new_caches()
    steps = [decoder(ids[:, t : t + 1], image, caches=caches) for t in range(9)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)


def test_cached_and_uncached_generation_agree(decoder):
    image = torch.randn(4, 16, 24)
    for beam in (1, 3):
        a = decoder.generate(image, max_new=12, beam=beam, use_cache=True, stop_at_eos=False)
        b = decoder.generate(image, max_new=12, beam=beam, use_cache=False, stop_at_eos=False)
        assert torch.equal(a, b)


def test_beam_one_is_greedy(decoder):
    image = torch.randn(5, 16, 24)
    greedy = decoder.generate(image, max_new=10, beam=1, stop_at_eos=False)
    assert torch.equal(greedy, naive_greedy(decoder, image, 10))


def test_wide_beam_finds_the_most_probable_caption(decoder):
    """Beam search is a heuristic: a narrow beam can even drop the greedy path and end below
    it. A beam as wide as every prefix is exhaustive, so it must find the brute-force argmax."""
    image = torch.randn(2, 16, 24)
    words = [w for w in range(V) if w not in (decoder.bos_id, decoder.pad_id)]
    L = 3
    seqs = torch.cartesian_prod(*[torch.tensor(words)] * L)  # (W^L, L): every caption

    def logprob(seqs, img):
        full = torch.cat([torch.full((seqs.shape[0], 1), decoder.bos_id), seqs], dim=1)
        lp = decoder(full[:, :-1], img.expand(seqs.shape[0], -1, -1)).log_softmax(-1)
        return lp.gather(-1, full[:, 1:, None]).squeeze(-1).sum(-1)

    beam = decoder.generate(image, max_new=L, beam=len(words) ** (L - 1), stop_at_eos=False)
    for i in range(2):
        scores = logprob(seqs, image[i : i + 1])
        assert torch.equal(beam[i], seqs[scores.argmax()])
    greedy = decoder.generate(image, max_new=L, beam=1, stop_at_eos=False)
    assert (logprob(beam[:1], image[:1]) >= logprob(greedy[:1], image[:1]) - 1e-5).all()


def test_decoding_never_writes_bos_or_pad_mid_caption(decoder):
    with torch.no_grad():
        decoder.lm_head.bias[decoder.pad_id] = 10.0  # an untrained model that loves [PAD]
        decoder.lm_head.bias[decoder.bos_id] = 10.0
    for beam in (1, 3):
        out = decoder.generate(torch.randn(4, 16, 24), max_new=6, beam=beam, stop_at_eos=False)
        assert not torch.isin(out, torch.tensor([decoder.bos_id, decoder.pad_id])).any()


@pytest.mark.parametrize("beam", [1, 3])
def test_length_limit_and_eos_handling(decoder, beam):
    torch.manual_seed(1)
    with torch.no_grad():
        decoder.lm_head.bias[decoder.eos_id] = 3.0  # make [EOS] likely, so captions end early
    out = decoder.generate(torch.randn(8, 16, 24), max_new=7, beam=beam)
    assert out.shape[1] <= 7
    for row in out.tolist():
        if decoder.eos_id in row:
            after = row[row.index(decoder.eos_id) + 1 :]
            assert all(t == decoder.pad_id for t in after)  # nothing but padding after [EOS]
    long = decoder.generate(torch.randn(2, 16, 24), max_new=7, beam=beam, stop_at_eos=False)
    assert long.shape == (2, 7)


def test_teacher_forcing_loss_ignores_padding(decoder):
    image = torch.randn(2, 16, 24)
    ids = torch.tensor([[1, 5, 6, 7, 2, 0, 0], [1, 8, 9, 10, 11, 12, 2]])
    mask = ids != 0
    loss = decoder.loss(ids, mask, image)
    changed = ids.clone()
    changed[0, 5:] = 17  # garbage where the mask says padding
    assert torch.isclose(decoder.loss(changed, mask, image), loss)
    assert loss.item() == pytest.approx(torch.log(torch.tensor(float(V))).item(), rel=0.3)


def test_cross_attention_weights_cover_the_image(decoder):
    _, weights = decoder(torch.randint(3, V, (2, 5)), torch.randn(2, 16, 24), need_weights=True)
    assert len(weights) == 2 and weights[0].shape == (2, 4, 5, 16)
    torch.testing.assert_close(weights[0].sum(-1), torch.ones(2, 4, 5))


def test_prefix_lm_mask_and_causality():
    m = PrefixLM.prefix_mask(3, 4)
    assert m[:3, :3].all() and not m[:3, 3:].any()  # the image prefix sees only itself
    assert m[3:, :3].all()  # words see the whole image
    assert torch.equal(m[3:, 3:], torch.tril(torch.ones(4, 4, dtype=torch.bool)))
    torch.manual_seed(0)
    lm = PrefixLM(V, d_model=D, n_heads=4, max_len=20).eval()
    image, ids = torch.randn(2, 3, D), torch.randint(3, V, (2, 6))
    changed = ids.clone()
    changed[:, 4:] = 7  # future words must not change earlier predictions
    torch.testing.assert_close(
        lm(changed, image)[:, :4], lm(ids, image)[:, :4], atol=1e-5, rtol=1e-5
    )
    assert lm.generate(image, max_new=5).shape[1] <= 5
    assert lm.loss(ids, ids != 0, image).isfinite()


@pytest.mark.parametrize(
    "call, err, words",
    [
        (
            lambda m: m.generate(torch.randn(2, 16, 10)),
            ValueError,
            r"image tokens must be \(B, Ni, 24\)",
        ),
        (lambda m: m.generate(torch.randn(2, 16, 24), beam=0), ValueError, "beam must be >= 1"),
        (
            lambda m: m.generate(torch.randn(2, 16, 24), max_new=40),
            ValueError,
            "max_new must be in",
        ),
        (lambda m: m(torch.zeros(2, 3), torch.randn(2, 16, 24)), ValueError, r"\(B, T\) long"),
        (
            lambda m: m(torch.zeros(2, 50, dtype=torch.long), torch.randn(2, 16, 24)),
            ValueError,
            "exceed max_len",
        ),
    ],
)
def test_bad_input_is_a_clear_error(decoder, call, err, words):
    with pytest.raises(err, match=words):
        call(decoder)
