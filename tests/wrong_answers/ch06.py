"""Wrong answers to chapter 6's exercises."""

import torch
import torch.nn.functional as F


def _logits(image_emb, text_emb, scale):
    i = image_emb / image_emb.norm(dim=1, keepdim=True)
    t = text_emb / text_emb.norm(dim=1, keepdim=True)
    return scale * i @ t.T


def image_to_text_only(image_emb, text_emb, scale):
    logits = _logits(image_emb, text_emb, scale)
    return -logits.log_softmax(dim=1).diagonal().mean()


def raw_dot_products(image_emb, text_emb, scale):
    logits = scale * torch.einsum("id,td->it", image_emb, text_emb)
    labels = torch.arange(logits.size(0))
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))


def first_column_labels(image_emb, text_emb, scale):
    logits = _logits(image_emb, text_emb, scale)
    labels = torch.zeros(logits.size(0)).long()
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))


def both_directions_added(image_emb, text_emb, scale):
    logits = _logits(image_emb, text_emb, scale)
    i2t = -(logits.diagonal() - logits.logsumexp(1)).mean()
    t2i = -(logits.diagonal() - logits.logsumexp(0)).mean()
    return i2t + t2i


def scale_as_temperature(image_emb, text_emb, scale):
    logits = _logits(image_emb, text_emb, 1.0) / scale
    labels = torch.arange(logits.size(0))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2


def greater_or_equal(sim, k):
    hits = [(sim[i] >= sim[i, i]).sum().item() < k for i in range(len(sim))]
    return sum(hits) / len(hits)


def off_by_one(sim, k):
    right = sim.diag().unsqueeze(1)
    beaten_by = (sim > right).long().sum(dim=1)
    return (beaten_by <= k).double().mean().item()


def diagonal_broadcast_along_rows(sim, k):
    beaten_by = torch.sum(sim > torch.diag(sim), dim=-1)
    return torch.mean((beaten_by < k).float()).item()


def counted_down_the_columns(sim, k):
    hits = [(sim[:, j] > sim[j, j]).sum().item() < k for j in range(sim.shape[1])]
    return sum(hits) / len(hits)


def _two_draws(w_text, w_image, seed):
    g = torch.Generator()
    g.manual_seed(seed)
    texts = torch.multinomial(w_text, num_samples=1, generator=g)[:, 0]
    images = torch.multinomial(w_image, num_samples=1, generator=g)[:, 0]
    return texts, images


def diagonal_not_excluded(logits, seed):
    return _two_draws(F.softmax(logits, dim=-1), F.softmax(logits.t(), dim=-1), seed)


def diagonal_set_to_zero(logits, seed):
    sim = logits.clone()
    sim.fill_diagonal_(0.0)
    return _two_draws(F.softmax(sim, dim=1), F.softmax(sim.t(), dim=1), seed)


def images_from_the_same_rows(logits, seed):
    off = logits.clone()
    off.fill_diagonal_(-float("inf"))
    w = F.softmax(off, dim=1)
    return _two_draws(w, w, seed)


def always_the_hardest(logits, seed):
    off = logits.clone()
    off.fill_diagonal_(-float("inf"))
    return off.max(dim=1).indices, off.max(dim=0).indices


def uniform_negatives(logits, seed):
    w = 1.0 - torch.eye(logits.size(0))
    return _two_draws(w, w, seed)


def softmax_down_the_columns(logits, seed):
    off = logits.masked_fill(torch.eye(len(logits)).bool(), float("-inf"))
    return _two_draws(off.softmax(dim=1), off.softmax(dim=0).T, seed)  # right weights, transposed


def _draws(ids, seed, low, vocab_size):
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(ids.shape, generator=g)
    action = torch.rand(ids.shape, generator=g)
    words = torch.randint(low, vocab_size, ids.shape, generator=g)
    return u, action, words


def specials_masked_too(ids, special, mask_id, vocab_size, prob, seed):
    u, action, words = _draws(ids, seed, mask_id + 1, vocab_size)
    chosen = u < prob
    out = ids.clone()
    out[chosen & (action < 0.8)] = mask_id
    swap = chosen & (action >= 0.8) & (action < 0.9)
    out[swap] = words[swap]
    return out, torch.where(chosen, ids, -100)


def labels_not_ignored(ids, special, mask_id, vocab_size, prob, seed):
    u, action, words = _draws(ids, seed, mask_id + 1, vocab_size)
    chosen = (u < prob) & ~special
    out = ids.clone()
    out[chosen & (action < 0.8)] = mask_id
    swap = chosen & (action >= 0.8) & (action < 0.9)
    out[swap] = words[swap]
    return out, ids.clone()


def labels_only_for_mask(ids, special, mask_id, vocab_size, prob, seed):
    u, action, words = _draws(ids, seed, mask_id + 1, vocab_size)
    chosen = (u < prob) & ~special
    out = ids.clone()
    out[chosen & (action < 0.8)] = mask_id
    swap = chosen & (action >= 0.8) & (action < 0.9)
    out[swap] = words[swap]
    labels = ids.clone()
    labels[out != mask_id] = -100
    return out, labels


def everything_masked(ids, special, mask_id, vocab_size, prob, seed):
    u, _, _ = _draws(ids, seed, mask_id + 1, vocab_size)
    chosen = (u < prob) & ~special
    return ids.masked_fill(chosen, mask_id), ids.masked_fill(~chosen, -100)


def random_word_from_the_whole_vocabulary(ids, special, mask_id, vocab_size, prob, seed):
    u, action, words = _draws(ids, seed, 0, vocab_size)
    chosen = (u < prob) & ~special
    out = ids.clone()
    out[chosen & (action < 0.8)] = mask_id
    swap = chosen & (action >= 0.8) & (action < 0.9)
    out[swap] = words[swap]
    return out, ids.masked_fill(~chosen, -100)


WRONG = {
    "6.1": [(image_to_text_only, "ITC is symmetric"), (raw_dot_products, "scaled cosines"),
            (first_column_labels, "torch.arange(B)"), (both_directions_added, "/ 2"),
            (scale_as_temperature, "do not divide")],
    "6.2": [(greater_or_equal, "strictly higher"), (off_by_one, "not rank <= k"),
            (diagonal_broadcast_along_rows, "its own diagonal entry"),
            (counted_down_the_columns, "count along the row")],
    "6.3": [(diagonal_not_excluded, "never be drawn as its own negative"),
            (diagonal_set_to_zero, "weight e^0"), (images_from_the_same_rows, "from its column"),
            (always_the_hardest, "argmax always takes the nearest miss"),
            (uniform_negatives, "equal weights give random negatives"),
            (softmax_down_the_columns, "non-contiguous")],
    "6.4": [(specials_masked_too, "never choose a special token"),
            (labels_not_ignored, "-100 wherever no token was chosen"),
            (labels_only_for_mask, "every chosen token gets its label"),
            (everything_masked, "only 80%"), (random_word_from_the_whole_vocabulary, "real words only")],
}  # fmt: skip
