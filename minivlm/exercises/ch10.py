"""Chapter 10's auto-checked exercises: the answer-only loss, merging neighbouring cells, and the
image prefix before the words.

Each exercise names a reference (the package's own code of `minivlm.llava` and `minivlm.lm`) and
the mistakes a learner is likely to make, written out as the wrong code they would write.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.nn.functional as F

from ..data.corpus import lm_tokenizer
from ..llava import IGNORE, answer_loss, encode_dialogues, merge_cells
from ..lm import CausalLM
from .core import Case, Exercise, Mistake

# ---------------------------------------------------------------- 10.1 the answer-only loss

_QUESTIONS = ["what colour is the square ?", "describe the image .", "how many circles are there ?"]
_ANSWERS = ["red", "a small red square left of a large blue circle", "two"]


def _loss_cases() -> list[Case]:
    g = torch.Generator().manual_seed(10)
    tok = lm_tokenizer()  # the language model's words: V = 59
    ids, _, answer = encode_dialogues(tok, _QUESTIONS, _ANSWERS, 24)  # (3, T) each
    small_ids = torch.tensor([[1, 4, 5, 6, 3, 2]])  # [BOS] . a question ? answer [EOS]
    small_answer = torch.tensor([[False, False, False, False, True, True]])
    two_ids = torch.tensor([[1, 5, 7, 3, 8, 2, 0], [1, 6, 4, 3, 9, 8, 2]])
    two_answer = torch.tensor([[0, 0, 0, 0, 1, 1, 0], [0, 0, 0, 0, 1, 1, 1]], dtype=torch.bool)
    sure = torch.randn(2, 6, 10, generator=g)  # a model sure of every answer token only
    sure[F.one_hot(two_ids[:, 1:], 10).bool() & two_answer[:, 1:, None]] = 12.0
    return [
        Case("the chapter's three dialogues by encode_dialogues (V = 59), two of them padded",
             (torch.randn(3, ids.shape[1] - 1, len(tok), generator=g) * 2, ids, answer)),
        Case("one short dialogue, no padding: [BOS] . a question ? answer [EOS] (V = 7)",
             (torch.randn(1, 5, 7, generator=g) * 3, small_ids, small_answer)),
        Case("a model sure of every answer token and guessing the rest: the loss is nearly 0",
             (sure, two_ids, two_answer)),
    ]  # fmt: skip


def _nll(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.transpose(1, 2), target, reduction="none")  # (B, T-1)


def _unshifted_mask(logits, ids, answer):
    target = ids[:, 1:].masked_fill(~answer[:, :-1], IGNORE)  # the mask of the word read
    return F.cross_entropy(logits.transpose(1, 2), target)


def _unshifted_targets(logits, ids, answer):
    target = ids[:, :-1].masked_fill(~answer[:, :-1], IGNORE)  # the word read, not the next
    return F.cross_entropy(logits.transpose(1, 2), target)


def _over_all_positions(logits, ids, answer):
    keep = answer[:, 1:]
    return (_nll(logits, ids[:, 1:]) * keep).sum() / keep.numel()


def _over_real_words(logits, ids, answer):
    keep, real = answer[:, 1:], ids[:, 1:] != 0  # [PAD] is word 0
    return (_nll(logits, ids[:, 1:]) * keep).sum() / real.sum()


def _summed(logits, ids, answer):
    return (_nll(logits, ids[:, 1:]) * answer[:, 1:]).sum()


def _filled_with_zero(logits, ids, answer):
    target = ids[:, 1:].masked_fill(~answer[:, 1:], 0)  # word 0 ([PAD]) becomes a target
    return F.cross_entropy(logits.transpose(1, 2), target)


def _every_word(logits, ids, answer):
    return F.cross_entropy(logits.transpose(1, 2), ids[:, 1:])  # pretraining's loss


_SHIFTED = (
    "position t predicts word t+1: the targets are ids[:, 1:] and the words to keep are "
    "answer[:, 1:], both shifted by one from the words the logits read"
)
_PER_ANSWER = (
    "average over the answer tokens alone: divide by the number of True in answer[:, 1:], not "
    "by every position or every real word"
)

# ---------------------------------------------------------------- 10.2 merging k x k cells


def _merge_cases() -> list[Case]:
    g = torch.Generator().manual_seed(11)
    return [
        Case("B = 2, a 4 x 4 grid, k = 2, D = 3: four blocks of four cells",
             (torch.randn(2, 16, 3, generator=g), 4, 2)),
        Case("B = 1, a 6 x 6 grid, k = 3, D = 2: four blocks of nine cells",
             (torch.randn(1, 36, 2, generator=g), 6, 3)),
        Case("B = 1, a 6 x 6 grid, k = 2, D = 4: nine blocks of four cells",
             (torch.randn(1, 36, 4, generator=g), 6, 2)),
        Case("the cells numbered 0 to 15 (D = 1), a 4 x 4 grid, k = 2",
             (torch.arange(16.0).reshape(1, 16, 1), 4, 2)),
        Case("k = 1: nothing merged, the tokens come back as they are",
             (torch.randn(2, 9, 3, generator=g), 3, 1)),
    ]  # fmt: skip


def merge_blocks(tokens: torch.Tensor, grid: int, k: int) -> torch.Tensor:
    """(B, G*G, D) row-major cells -> (B, (G/k)^2, k*k*D): `merge_cells` of one pathway."""
    return merge_cells(tokens, grid, 1, k, False)


def _blocks(tokens, grid, k, order):
    B, _, D = tokens.shape
    g = grid // k
    x = tokens.reshape(B, g, k, g, k, D)  # (B, row, dy, col, dx, D)
    return x.permute(0, *order).reshape(B, g * g, k * k * D)


def _plain_reshape(tokens, grid, k):
    B, N, D = tokens.shape
    return tokens.reshape(B, N // (k * k), k * k * D)  # k*k cells in a row, not a square


def _dx_before_dy(tokens, grid, k):
    return _blocks(tokens, grid, k, (1, 3, 4, 2, 5))  # (B, row, col, dx, dy, D)


def _columns_of_blocks(tokens, grid, k):
    return _blocks(tokens, grid, k, (3, 1, 2, 4, 5))  # (B, col, row, dy, dx, D)


def _features_interleaved(tokens, grid, k):
    return _blocks(tokens, grid, k, (1, 3, 5, 2, 4))  # (B, row, col, D, dy, dx)


def _strided(tokens, grid, k):
    B, _, D = tokens.shape
    g = grid // k
    x = tokens.reshape(B, k, g, k, g, D)  # (B, dy, row, dx, col, D): cells g apart
    return x.permute(0, 2, 4, 1, 3, 5).reshape(B, g * g, k * k * D)


# ---------------------------------------------------------------- 10.3 the prefix before the words


def _prefix_cases() -> list[Case]:
    g = torch.Generator().manual_seed(12)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g)

    padded = torch.tensor([[True, True, True, True], [True, True, False, False]])
    return [
        Case("B = 2, four image tokens and four words, D = 3, the second text padded",
             (rand(2, 4, 3), rand(2, 4, 3), padded)),
        Case("B = 2, six image tokens and five words, D = 4, the second text padded",
             (rand(2, 6, 4), rand(2, 5, 4), torch.arange(5) < torch.tensor([[5], [3]]))),
        Case("B = 1, two image tokens and seven words, D = 2, no padding",
             (rand(1, 2, 2), rand(1, 7, 2), torch.ones(1, 7, dtype=torch.bool))),
    ]  # fmt: skip


class _Recording:
    """Just enough of a CausalLM for `CausalLM.logits` to run its own code: the embedding and
    the head pass their input on, and the encoder records what it was given."""

    def __init__(self, d_model: int):
        self.cfg = SimpleNamespace(d_model=d_model)
        self.seen: tuple = ()  # (x, key_mask), once logits has run

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return ids  # the word embeddings, passed in the ids' slot

    def encoder(self, x, key_mask=None, causal=False):
        self.seen = (x, key_mask)
        return x, None

    def lm_head(self, h: torch.Tensor) -> torch.Tensor:
        return h


def prefix_inputs(
    prefix: torch.Tensor, embeds: torch.Tensor, key_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """What `CausalLM.logits` gives its encoder: (x (B, Np+T, D), key mask (B, Np+T))."""
    lm = _Recording(embeds.shape[-1])
    CausalLM.logits(lm, embeds, key_mask, prefix)  # lm.py's own code, on the stand-in
    return lm.seen


def _words_first(prefix, embeds, key_mask):
    ones = key_mask.new_ones(prefix.shape[:2])
    return torch.cat([embeds, prefix], 1), torch.cat([key_mask, ones], 1)


def _image_masked_out(prefix, embeds, key_mask):
    zeros = key_mask.new_zeros(prefix.shape[:2])
    return torch.cat([prefix, embeds], 1), torch.cat([zeros, key_mask], 1)


def _words_mask_only(prefix, embeds, key_mask):
    return torch.cat([prefix, embeds], 1), key_mask


def _feature_axis(prefix, embeds, key_mask):
    ones = key_mask.new_ones(prefix.shape[:2])
    return torch.cat([prefix, embeds], -1), torch.cat([ones, key_mask], 1)  # (B, T, 2D)


def _float_mask(prefix, embeds, key_mask):
    ones = torch.ones(prefix.shape[:2])  # float32: the mask comes out float
    return torch.cat([prefix, embeds], 1), torch.cat([ones, key_mask.float()], 1)


EXERCISES = [
    Exercise(
        "10.1", "the answer-only loss", answer_loss, _loss_cases,
        mistakes=[
            *(Mistake(_SHIFTED, fn) for fn in (_unshifted_mask, _unshifted_targets)),
            *(Mistake(_PER_ANSWER, fn) for fn in (_over_all_positions, _over_real_words)),
            Mistake("the loss is a mean over the answer tokens, not their sum: a long answer "
                    "would otherwise weigh more than a short one", _summed),
            Mistake("a position to skip needs the target -100 (IGNORE), the ignore_index of "
                    "F.cross_entropy: 0 is a word id ([PAD]), so every skipped position becomes "
                    "a prediction of [PAD]", _filled_with_zero),
            Mistake("the loss reads the answer tokens only: keep ids[:, 1:] where answer[:, 1:] "
                    "is True and put IGNORE (-100) everywhere else; the question's words are "
                    "given, not to be written", _every_word),
        ],
        hint="targets = ids[:, 1:] with IGNORE where answer[:, 1:] is False, then "
             "F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=IGNORE)",
    ),
    Exercise(
        "10.2", "merging k x k cells", merge_blocks, _merge_cases,
        mistakes=[
            Mistake("a plain reshape puts k*k consecutive cells of one row together, not a "
                    "square block: split the rows and the columns first, "
                    "reshape(B, G/k, k, G/k, k, D)", _plain_reshape),
            Mistake("inside a block the cells go row by row: dy before dx, permute to "
                    "(B, row, col, dy, dx, D)", _dx_before_dy),
            Mistake("the blocks go in row-major order, like the cells: the block row before "
                    "the block column, (B, row, col, dy, dx, D)", _columns_of_blocks),
            Mistake("keep each cell's D features together: the feature axis stays last before "
                    "the final reshape, (B, row, col, dy, dx, D)", _features_interleaved),
            Mistake("a block is k neighbouring cells: split a row index as (block, offset) with "
                    "reshape(..., G/k, k, ...), not (k, G/k), which gathers cells G/k apart",
                    _strided),
        ],
        hint="reshape to (B, G/k, k, G/k, k, D), permute to (B, row, col, dy, dx, D), then "
             "reshape to (B, (G/k)^2, k*k*D)",
    ),
    Exercise(
        "10.3", "the prefix before the words", prefix_inputs, _prefix_cases,
        mistakes=[
            Mistake("the image tokens come first, then the words: with the causal mask, every "
                    "word can then read the whole image", _words_first),
            Mistake("True in the key mask means 'may be attended to': the image tokens are real "
                    "tokens, so their part of the mask is all True", _image_masked_out),
            Mistake("the key mask grows with x: (B, Np+T), True on the Np image tokens, then the "
                    "words' mask", _words_mask_only),
            Mistake("concatenate along the sequence axis (dim=1): the image tokens are tokens "
                    "placed before the words, not extra features of each word", _feature_axis),
            Mistake("keep the mask bool: key_mask.new_ones(B, Np) makes the image tokens' part "
                    "with key_mask's dtype; torch.ones gives float, and so does the cat",
                    _float_mask),
        ],
        hint="x = torch.cat([prefix, embeds], dim=1) and mask = torch.cat([all True (B, Np), "
             "key_mask], dim=1)",
    ),
]  # fmt: skip
