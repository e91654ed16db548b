"""Wrong answers to chapter 10's exercises."""

import torch
import torch.nn.functional as F

# 10.1: the answer-only loss


def _token_nll(logits, targets):
    logp = torch.log_softmax(logits, dim=-1)
    return -logp.gather(-1, targets[..., None])[..., 0]  # (B, T-1)


def loss_with_the_mask_unshifted(logits, ids, answer):
    nll = _token_nll(logits, ids[:, 1:])
    keep = answer[:, :-1].float()
    return (nll * keep).sum() / keep.sum()


def loss_predicting_the_word_read(logits, ids, answer):
    nll = _token_nll(logits, ids[:, :-1])
    keep = answer[:, :-1].float()
    return (nll * keep).sum() / keep.sum()


def loss_over_every_position(logits, ids, answer):
    nll = _token_nll(logits, ids[:, 1:])
    return (nll * answer[:, 1:]).mean()


def loss_over_the_real_words(logits, ids, answer):
    nll = _token_nll(logits, ids[:, 1:])
    real = (ids[:, 1:] > 0).float()  # everything but [PAD]
    return (nll * answer[:, 1:]).sum() / real.sum()


def loss_summed(logits, ids, answer):
    nll = _token_nll(logits, ids[:, 1:])
    return nll[answer[:, 1:]].sum()


def loss_masked_with_zero(logits, ids, answer):
    targets = torch.where(answer[:, 1:], ids[:, 1:], torch.zeros_like(ids[:, 1:]))
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def loss_on_every_word(logits, ids, answer):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


# 10.2: merging k x k cells


def merge_by_reshape(tokens, grid, k):
    return tokens.reshape(tokens.shape[0], -1, k * k * tokens.shape[-1])


def _gather(tokens, grid, k, blocks_by_column=False, columns_first=False):
    g = grid // k
    out = []
    for a in range(g):
        for b in range(g):
            r, c = (b, a) if blocks_by_column else (a, b)
            cells = []
            for i in range(k):
                for j in range(k):
                    dy, dx = (j, i) if columns_first else (i, j)
                    cells.append(tokens[:, (r * k + dy) * grid + c * k + dx])  # (B, D)
            out.append(torch.cat(cells, dim=-1))  # (B, k*k*D)
    return torch.stack(out, dim=1)


def merge_columns_first(tokens, grid, k):
    return _gather(tokens, grid, k, columns_first=True)


def merge_blocks_by_column(tokens, grid, k):
    return _gather(tokens, grid, k, blocks_by_column=True)


def merge_features_interleaved(tokens, grid, k):
    B, _, D = tokens.shape
    g = grid // k
    x = tokens.reshape(B, g, k, g, k, D).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(B, g * g, k * k * D)


def merge_strided_cells(tokens, grid, k):
    B, _, D = tokens.shape
    g = grid // k
    x = tokens.reshape(B, k, g, k, g, D).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(B, g * g, k * k * D)


# 10.3: the prefix before the words


def words_then_image(prefix, embeds, key_mask):
    B, Np, _ = prefix.shape
    mask = torch.cat([key_mask, torch.ones(B, Np, dtype=torch.bool)], dim=1)
    return torch.cat([embeds, prefix], dim=1), mask


def image_not_attended(prefix, embeds, key_mask):
    B, Np, _ = prefix.shape
    mask = torch.cat([torch.zeros(B, Np, dtype=torch.bool), key_mask], dim=1)
    return torch.cat([prefix, embeds], dim=1), mask


def mask_left_as_it_was(prefix, embeds, key_mask):
    return torch.cat([prefix, embeds], dim=1), key_mask


def image_as_features(prefix, embeds, key_mask):
    B, Np, _ = prefix.shape
    mask = torch.cat([torch.ones(B, Np, dtype=torch.bool), key_mask], dim=1)
    return torch.cat([prefix, embeds], dim=2), mask


def mask_of_ones(prefix, embeds, key_mask):
    B, Np, _ = prefix.shape
    return torch.cat([prefix, embeds], dim=1), torch.cat([torch.ones(B, Np), key_mask], dim=1)


WRONG = {
    "10.1": [(loss_with_the_mask_unshifted, "predicts word t+1"),
             (loss_predicting_the_word_read, "predicts word t+1"),
             (loss_over_every_position, "answer tokens alone"),
             (loss_over_the_real_words, "answer tokens alone"),
             (loss_summed, "not their sum"), (loss_masked_with_zero, "target -100"),
             (loss_on_every_word, "answer tokens only")],
    "10.2": [(merge_by_reshape, "plain reshape"), (merge_columns_first, "dy before dx"),
             (merge_blocks_by_column, "block row before"),
             (merge_features_interleaved, "D features together"),
             (merge_strided_cells, "(block, offset)")],
    "10.3": [(words_then_image, "image tokens come first"),
             (image_not_attended, "may be attended to"), (mask_left_as_it_was, "grows with x"),
             (image_as_features, "sequence axis"), (mask_of_ones, "keep the mask bool")],
}  # fmt: skip
