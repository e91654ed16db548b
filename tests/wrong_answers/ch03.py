"""Wrong answers to chapter 3's exercises."""

import torch


def unbiased_variance(x, gamma, beta, eps=1e-5):
    centred = x - x.mean(dim=-1, keepdim=True)
    std = torch.sqrt(centred.pow(2).sum(-1, keepdim=True) / (x.shape[-1] - 1) + eps)
    return centred / std * gamma + beta


def eps_added_to_the_std(x, gamma, beta, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    sd = x.std(-1, unbiased=False, keepdim=True)
    return gamma * (x - mu) / (sd + eps) + beta


def statistics_over_the_sequence(x, gamma, beta, eps=1e-5):
    mu = x.mean(dim=1, keepdim=True)
    var = ((x - mu) ** 2).mean(dim=1, keepdim=True)
    return gamma * (x - mu) * torch.rsqrt(var + eps) + beta


def forgot_gamma_and_beta(x, gamma, beta, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) * torch.rsqrt(var + eps)


def pre_ln_only(x, attn, ff, norm1, norm2, norm_first):
    h = x + attn(norm1(x))
    return h + ff(norm2(h))


def post_ln_only(x, attn, ff, norm1, norm2, norm_first):
    h = norm1(x + attn(x))
    return norm2(h + ff(h))


def residual_from_the_norm(x, attn, ff, norm1, norm2, norm_first):
    if norm_first:
        x = norm1(x)
        x = x + attn(x)
        x = norm2(x)
        return x + ff(x)
    x = norm1(x + attn(x))
    return norm2(x + ff(x))


def norm_on_the_branch(x, attn, ff, norm1, norm2, norm_first):
    if norm_first:
        x = x + attn(norm1(x))
        return x + ff(norm2(x))
    x = x + norm1(attn(x))
    return x + norm2(ff(x))


def ffn_reads_the_input(x, attn, ff, norm1, norm2, norm_first):
    if norm_first:
        a = attn(norm1(x))
        f = ff(norm2(x))
        return x + a + f
    a = norm1(x + attn(x))
    return norm2(a + ff(x))


def one_layer_norm(x, attn, ff, norm1, norm2, norm_first):
    norm = norm1
    if norm_first:
        x = x + attn(norm(x))
        return x + ff(norm(x))
    x = norm(x + attn(x))
    return norm(x + ff(x))


def position_of_each_id(ids, word, position, segment, norm, token_type=None):
    types = token_type if token_type is not None else torch.zeros_like(ids)
    return norm(word.weight[ids] + position.weight[ids] + segment.weight[types])


def without_layer_norm(ids, word, position, segment, norm, token_type=None):
    types = token_type if token_type is not None else torch.zeros_like(ids)
    T = ids.size(1)
    return word(ids) + position.weight[:T] + segment(types)


def segments_only_when_given(ids, word, position, segment, norm, token_type=None):
    T = ids.size(1)
    h = word(ids) + position.weight[:T].unsqueeze(0)
    if token_type is not None:
        h += segment(token_type)
    return norm(h)


def normalised_word_vectors(ids, word, position, segment, norm, token_type=None):
    types = token_type if token_type is not None else torch.zeros_like(ids)
    T = ids.size(1)
    return norm(word(ids)) + position.weight[:T] + segment(types)


def positions_from_one(ids, word, position, segment, norm, token_type=None):
    types = token_type if token_type is not None else torch.zeros_like(ids)
    T = ids.size(1)
    return norm(word(ids) + position.weight[1 : T + 1] + segment(types))


WRONG = {
    "3.1": [(unbiased_variance, "not D - 1"), (eps_added_to_the_std, "inside the square root"),
            (statistics_over_the_sequence, "per token"), (forgot_gamma_and_beta, "gamma")],
    "3.2": [(pre_ln_only, "is post-LN"), (post_ln_only, "is pre-LN"),
            (residual_from_the_norm, "not norm1(x)"), (norm_on_the_branch, "not only the branch"),
            (ffn_reads_the_input, "one after the other"), (one_layer_norm, "its own LayerNorm")],
    "3.3": [(position_of_each_id, "not by the token ids"), (without_layer_norm, "normalises"),
            (segments_only_when_given, "sentence A"), (normalised_word_vectors, "to the sum"),
            (positions_from_one, "count from 0")],
}  # fmt: skip
