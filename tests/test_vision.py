"""Image tokens: patchify == conv, the CNN grid, and a ViT equal to torchvision's."""

import pytest
import torch
from torchvision.models import vit_b_16

from minivlm.vision import ConvStem, PatchEmbed, ViT, patchify, sinusoidal_positions_2d


def test_patchify_then_linear_equals_strided_conv():
    torch.manual_seed(0)
    embed = PatchEmbed(d_model=24, patch=4)
    images = torch.randn(2, 3, 16, 12)
    patches = patchify(images, 4)  # (2, 12, 48)
    assert patches.shape == (2, 12, 4 * 4 * 3)
    torch.testing.assert_close(embed.as_linear()(patches), embed(images), atol=1e-5, rtol=1e-5)


def test_patchify_is_row_major_over_the_grid():
    images = torch.zeros(1, 3, 8, 8)
    images[0, :, 0:4, 4:8] = 1.0  # the top-right patch of a 2x2 grid
    patches = patchify(images, 4)
    assert patches[0].sum(-1).nonzero().flatten().tolist() == [1]


@pytest.fixture(scope="module")
def vit_pair():
    torch.manual_seed(0)
    tv = vit_b_16(weights=None).eval()  # random weights: nothing is downloaded
    torch.nn.init.normal_(tv.heads.head.weight, std=0.02)  # torchvision zero-inits the head
    return tv, ViT.from_torchvision(tv).eval()


def test_vit_equals_torchvision_vit_b_16(vit_pair):
    tv, ours = vit_pair
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected_tokens = tv.encoder(
            torch.cat([tv.class_token.expand(2, -1, -1), tv._process_input(x)], 1)
        )
        torch.testing.assert_close(ours.tokens(x), expected_tokens, atol=2e-5, rtol=1e-5)
        torch.testing.assert_close(ours(x), tv(x), atol=2e-5, rtol=1e-5)
        assert tv(x).abs().max() > 0.1  # the comparison is not between zeros


def test_vit_loads_the_state_without_leftovers(vit_pair):
    tv, ours = vit_pair
    n_tv = sum(p.numel() for p in tv.parameters())
    assert sum(p.numel() for p in ours.parameters()) == n_tv


def test_conv_stem_grid_tokens():
    stem = ConvStem(image_size=64, d_model=32, grid=4, width=8)
    out = stem(torch.randn(3, 3, 64, 64))
    assert out.shape == (3, 16, 32)
    # tokens are laid out row-major: a change in the bottom-right corner moves the last token most
    x = torch.randn(2, 3, 64, 64)
    y = x.clone()
    y[0, :, 48:, 48:] += 1
    diff = (stem(x) - stem(y)).abs().sum(-1)
    assert diff[0].argmax() == 15 and diff[0, 15] > 3 * diff[0, 0]
    assert diff[1].max() == 0  # no batch statistics: example 1 is untouched


def test_sinusoidal_2d_positions_are_distinct():
    pe = sinusoidal_positions_2d(4, 4, 16)
    assert pe.shape == (16, 16)
    assert torch.cdist(pe, pe).add(torch.eye(16) * 10).min() > 0.1


def test_a_small_base_tells_neighbouring_cells_apart():
    """On an 8 x 8 grid, base 10000 gives neighbours nearly the same code; base 2.5 does not."""

    def neighbour_cosine(base):
        pe = torch.nn.functional.normalize(sinusoidal_positions_2d(8, 8, 96, base), dim=-1)
        return (pe[:-1] * pe[1:]).sum(-1)[torch.arange(63) % 8 != 7].mean().item()  # same row

    assert neighbour_cosine(10000.0) > 0.97
    assert neighbour_cosine(2.5) < 0.9


@pytest.mark.parametrize(
    "call, err, words",
    [
        (
            lambda: PatchEmbed(8, 4)(torch.randn(1, 3, 10, 8)),
            ValueError,
            "not a multiple of the patch",
        ),
        (lambda: PatchEmbed(8, 4)(torch.randn(1, 8, 8)), ValueError, r"\(B, 3, H, W\)"),
        (
            lambda: PatchEmbed(8, 4)(torch.zeros(1, 3, 8, 8, dtype=torch.uint8)),
            TypeError,
            "must be float",
        ),
        (lambda: ConvStem(48, 16, grid=4), ValueError, "power of two"),
        (lambda: ConvStem(32, 16)(torch.randn(1, 3, 64, 64)), ValueError, "expects 32x32"),
        (lambda: ViT(image_size=32, patch=5), ValueError, "not a multiple"),
        (lambda: sinusoidal_positions_2d(2, 2, 6), ValueError, "multiple of 4"),
    ],
)
def test_bad_input_is_a_clear_error(call, err, words):
    with pytest.raises(err, match=words):
        call()
