"""Word embeddings and positions."""

import pytest
import torch

from minivlm.data import CaptionTokenizer
from minivlm.text import TextEmbedding, pretrained_word_vectors, sinusoidal_positions


def test_sinusoidal_positions_follow_the_formula():
    pe = sinusoidal_positions(50, 8)
    t, i = 7, 2  # the pair (2i, 2i+1) = (4, 5)
    angle = t / 10000 ** (2 * i / 8)
    torch.testing.assert_close(pe[t, 4], torch.tensor(angle).sin())
    torch.testing.assert_close(pe[t, 5], torch.tensor(angle).cos())
    small = sinusoidal_positions(50, 8, base=2.5)  # the same formula with another base
    torch.testing.assert_close(small[t, 4], torch.tensor(t / 2.5 ** (2 * i / 8)).sin())
    # relative positions are a rotation: <pe[t], pe[t+k]> depends on k only
    dots = [(pe[t] @ pe[t + 3]).item() for t in range(10)]
    assert max(dots) - min(dots) < 1e-5


@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_text_embedding_adds_positions(positions):
    emb = TextEmbedding(20, 16, max_len=10, positions=positions)
    ids = torch.tensor([[5, 5, 5]])
    out = emb(ids)
    assert out.shape == (1, 3, 16)
    assert not torch.allclose(out[0, 0], out[0, 1])  # same word, other position
    torch.testing.assert_close(emb(ids[:, 1:], offset=1), out[:, 1:])


def test_pretrained_vectors_relate_words():
    words = ["red", "blue", "green", "circle", "square", "triangle"]
    v = torch.nn.functional.normalize(pretrained_word_vectors(words), dim=-1)
    sim = v @ v.T
    colours, shapes = slice(0, 3), slice(3, 6)
    within = (sim[colours, colours].sum() - 3) / 6
    across = sim[colours, shapes].mean()
    assert within > across + 0.1  # colours sit closer to colours than to shapes


def test_load_word_vectors_projects_to_the_model_width():
    tok = CaptionTokenizer.shapes_world()
    words = [tok.tk.id_to_token(i) for i in range(len(tok))]
    emb = TextEmbedding(len(tok), 16)
    emb.load_word_vectors(pretrained_word_vectors(words))
    assert torch.isfinite(emb.word.weight).all() and emb.word.weight.std() > 0.01


def test_bad_input_is_a_clear_error():
    emb = TextEmbedding(20, 16, max_len=4)
    with pytest.raises(ValueError, match=r"\(B, T\) long"):
        emb(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="exceed max_len=4"):
        emb(torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 20\)"):
        emb(torch.tensor([[25]]))
    with pytest.raises(ValueError, match="'learned' or 'sinusoidal'"):
        TextEmbedding(20, 16, positions="rope")
    with pytest.raises(ValueError, match="even"):
        sinusoidal_positions(4, 7)
    with pytest.raises(ValueError, match="base must be > 1 for sinusoidal positions, got 1"):
        sinusoidal_positions(4, 8, base=1)
    with pytest.raises(ValueError, match="need 20 vectors"):
        emb.load_word_vectors(torch.randn(3, 16))
