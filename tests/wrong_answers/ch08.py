"""Wrong answers to chapter 8's exercises."""

import math

import torch
import torch.nn.functional as F

# 8.1: the schedule


def cosine_from_the_start(step, cfg):
    t = min(step, cfg.steps) / cfg.steps
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * t)) / 2


def warmup_from_nothing(step, cfg):
    if step < cfg.warmup:
        return step / cfg.warmup * cfg.lr
    t = min(1.0, (step - cfg.warmup) / (cfg.steps - cfg.warmup))
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * t)) / 2


def warmup_inclusive(step, cfg):
    if step <= cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = min(1.0, (step - cfg.warmup) / (cfg.steps - cfg.warmup))
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * t)) / 2


def cosine_of_the_whole_run(step, cfg):
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = min(1.0, step / cfg.steps)  # the cosine clock started at step 0
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * t)) / 2


def cosine_too_slow(step, cfg):
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = min(1.0, (step - cfg.warmup) / cfg.steps)
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * t)) / 2


def cosine_to_zero(step, cfg):
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = min(1.0, (step - cfg.warmup) / (cfg.steps - cfg.warmup))
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * t))


def cosine_without_a_stop(step, cfg):
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / (cfg.steps - cfg.warmup)
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * t)) / 2


# 8.2: colour-word noise


def noise_on_every_token(ids, colours, p, seed):
    g = torch.Generator().manual_seed(seed)
    hit = torch.rand(ids.shape, generator=g) < p
    new = colours[torch.randint(0, len(colours), ids.shape, generator=g)]
    return ids.masked_scatter(hit, new[hit])


def noise_with_probability_one_minus_p(ids, colours, p, seed):
    g = torch.Generator().manual_seed(seed)
    keep = torch.rand(ids.shape, generator=g) < p
    new = colours[torch.randint(0, len(colours), ids.shape, generator=g)]
    out = ids.clone()
    swap = ~keep & torch.isin(ids, colours)
    out[swap] = new[swap]
    return out


def noise_per_caption(ids, colours, p, seed):
    g = torch.Generator().manual_seed(seed)
    noisy_caption = torch.rand(len(ids), generator=g) < p  # (B,)
    new = colours[torch.randint(len(colours), ids.shape, generator=g)]
    swap = noisy_caption[:, None] & torch.isin(ids, colours)
    return torch.where(swap, new, ids)


def noise_writes_the_index(ids, colours, p, seed):
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(ids.shape, generator=g)
    k = torch.randint(len(colours), ids.shape, generator=g)
    is_colour = (ids[..., None] == colours).any(-1)
    return torch.where((u < p) & is_colour, k, ids)


def noise_draws_the_colours_first(ids, colours, p, seed):
    g = torch.Generator().manual_seed(seed)
    k = torch.randint(len(colours), ids.shape, generator=g)
    u = torch.rand(ids.shape, generator=g)
    return torch.where((u < p) & torch.isin(ids, colours), colours[k], ids)


# 8.3: the colour of a cell


def _mask(images, background):
    d = torch.linalg.vector_norm(images - background[None, :, None, None], dim=1, keepdim=True)
    return torch.clamp((d - 0.15) / 0.3, 0, 1)


def _cells(x, cell):  # (B, C, S, S) -> the sum over each cell (B, C, G, G)
    b, c, s, _ = x.shape
    return x.reshape(b, c, s // cell, cell, s // cell, cell).sum((3, 5))


def average_colour(images, background, cell):
    return _cells(images, cell) / cell**2


def colour_over_the_cell_area(images, background, cell):
    return _cells(images * _mask(images, background), cell) / cell**2


def colour_over_the_bare_coverage(images, background, cell):
    m = _mask(images, background)
    return _cells(images * m, cell) / _cells(m, cell)


def colour_of_sums(images, background, cell):
    m = _mask(images, background)
    return _cells(images * m, cell) / (_cells(m, cell) + 1e-3)


def colour_with_a_mask_per_channel(images, background, cell):
    m = ((images - background[None, :, None, None]).abs() - 0.15).div(0.3).clamp(0, 1)
    return F.avg_pool2d(images * m, cell) / (F.avg_pool2d(m, cell) + 1e-3)


def colour_with_an_unclamped_mask(images, background, cell):
    m = ((images - background.view(1, 3, 1, 1)).pow(2).sum(1, keepdim=True).sqrt() - 0.15) / 0.3
    return F.avg_pool2d(images * m, cell) / (F.avg_pool2d(m, cell) + 1e-3)


# 8.4: self-labelling's agreement test

CONTENT = {"small", "large", "red", "green", "blue", "yellow", "purple", "orange", "circle",
           "square", "triangle"}  # fmt: skip


def agree_if_contained(caption, alt_text):
    return alt_text.endswith(caption)


def agree_if_same_sentence(caption, alt_text):
    return caption.strip() == alt_text.strip()


def agree_on_the_bag(caption, alt_text):
    return sorted(set(caption.split()) & CONTENT) == sorted(set(alt_text.split()) & CONTENT)


def agree_on_the_content_words(caption, alt_text):
    words = [w for w in caption.split() if w in CONTENT]
    return words == [w for w in alt_text.split() if w in CONTENT]


def agree_if_in_order(caption, alt_text):
    pos = 0
    said = alt_text.split()
    for w in caption.split():
        while pos < len(said) and said[pos] != w:
            pos += 1
        if pos == len(said):
            return False
        pos += 1
    return True


WRONG = {
    "8.1": [(cosine_from_the_start, "warm up first"), (warmup_from_nothing, "step 0 must"),
            (warmup_inclusive, "not <="), (cosine_of_the_whole_run, "starts where the warm-up"),
            (cosine_too_slow, "divide by steps - warmup"), (cosine_to_zero, "not at 0"),
            (cosine_without_a_stop, "climbs again")],
    "8.2": [(noise_on_every_token, "swap only colour words"),
            (noise_with_probability_one_minus_p, "below p"),
            (noise_per_caption, "not one per caption"), (noise_writes_the_index, "colours[pick]"),
            (noise_draws_the_colours_first, "first the coins")],
    "8.3": [(average_colour, "a plain average"), (colour_over_the_cell_area, "half of it"),
            (colour_over_the_bare_coverage, "0 / 0"), (colour_of_sums, "not to a sum"),
            (colour_with_a_mask_per_channel, "one number per pixel"),
            (colour_with_an_unclamped_mask, "clamp the silhouette")],
    "8.4": [(agree_if_contained, "others allowed between"),
            (agree_if_same_sentence, "others allowed between"),
            (agree_on_the_bag, "as sets"), (agree_on_the_content_words, "'left of' must be said"),
            (agree_if_in_order, "leaves out an object")],
}  # fmt: skip
