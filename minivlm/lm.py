"""A small causal language model, pretrained on shapes-world text alone (chapter 10).

This is the "pretrained language model" of the modern recipe (LLaVA, nanoVLM): chapter 7's
caption decoder with its cross-attention taken out. What is left is a stack of chapter 3's
pre-LN blocks in which word t attends to words 0..t (causal self-attention) and predicts word
t + 1. It reads no image; it learns the world from `data.corpus`'s captions, paraphrases and
question-and-answer texts. Chapter 10 then places projected image tokens before its words
(`prefix`), the way LLaVA feeds a frozen LM.

Perplexity is exp(mean negative log-likelihood per predicted token): a model that spreads its
probability evenly over V words scores exactly V, a perfect one scores 1.

    python -m minivlm.lm        # pretrain the default model for a few hundred steps
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .data.captions import caption
from .data.corpus import DESCRIBE, TextCorpus, lm_tokenizer, qa_prompt
from .data.questions import make_questions
from .data.tokenizer import CaptionTokenizer
from .errors import InputError
from .text import TextEmbedding
from .train import TrainConfig, evaluating, train
from .transformer import Encoder


@dataclass(frozen=True)
class LMConfig:
    vocab_size: int
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 3
    max_len: int = 48  # word positions (an image prefix takes none)
    dropout: float = 0.0


class CausalLM(nn.Module):
    """Words (B, T) -> next-word logits (B, T, V); word t sees the prefix and words 0..t.

    forward(batch) returns {"loss"} so that `train.train` can run it; `logits` is the model.
    """

    def __init__(self, cfg: LMConfig, pad_id: int = 0, bos_id: int = 1, eos_id: int = 2):
        super().__init__()
        self.cfg = cfg
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        d = cfg.d_model
        self.embed = TextEmbedding(cfg.vocab_size, d, max_len=cfg.max_len, pad_id=pad_id)
        self.encoder = Encoder(cfg.n_layers, d, cfg.n_heads, 4 * d, cfg.dropout, norm_first=True)
        self.lm_head = nn.Linear(d, cfg.vocab_size)

    def logits(
        self,
        ids: torch.Tensor,
        key_mask: torch.Tensor | None = None,
        prefix: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """ids (B, T), key_mask (B, T) True on real words; prefix (B, Np, D): vectors placed
        before the words (image tokens, chapter 10), read causally like words. The words keep
        positions 0..T-1, the ones they had in pretraining. -> logits (B, T, V) of the words."""
        x = self.embed(ids)  # (B, T, D)
        n_prefix = 0
        if prefix is not None:
            B, D = ids.shape[0], self.cfg.d_model
            shape = tuple(prefix.shape) if isinstance(prefix, torch.Tensor) else type(prefix)
            if len(shape) != 3 or shape[0] != B or shape[2] != D:
                raise InputError("prefix", f"a (B={B}, Np, D={D}) tensor", shape)
            n_prefix = prefix.shape[1]
            x = torch.cat([prefix, x], dim=1)  # (B, Np+T, D)
            if key_mask is not None:
                key_mask = torch.cat([key_mask.new_ones(B, n_prefix), key_mask], dim=1)
        h, _ = self.encoder(x, key_mask=key_mask, causal=True)  # (B, Np+T, D)
        return self.lm_head(h[:, n_prefix:])  # (B, T, V)

    def shared_logits(
        self, ids: torch.Tensor, key_mask: torch.Tensor, prefix: torch.Tensor, which: torch.Tensor
    ) -> torch.Tensor:
        """`logits(ids, key_mask, prefix[which])`, with each prefix run through the blocks once.

        prefix (Bs, Np, D): one per image; which (B,): the image of each text. Under the causal
        mask a prefix token reads only the prefix, so its hidden states are the same for every
        text that shares the image: each block computes them once per image (Bs x Np tokens,
        not B x Np) and every text's words read them as keys and values, the prefix caching of
        LLM serving. Chapter 10 asks five questions of each image, so this is most of a step."""
        blocks = self.encoder.layers
        x, v = self.embed(ids), prefix  # (B, T, D), (Bs, Np, D)
        n_prefix = prefix.shape[1]
        mask = torch.cat([key_mask.new_ones(ids.shape[0], n_prefix), key_mask], dim=1)  # (B, Np+T)
        for i, block in enumerate(blocks):
            x, _ = block(x, key_mask=mask, causal=True, prefix=v[which])  # word t: prefix, 0..t
            if i < len(blocks) - 1:  # the last block's prefix states are never read
                v, _ = block(v, causal=True)  # (Bs, Np, D): the prefix reads only itself
        return self.lm_head(self.encoder.final_norm(x))  # (B, T, V)

    def token_nll(
        self, ids: torch.Tensor, mask: torch.Tensor, prefix: torch.Tensor | None = None
    ) -> torch.Tensor:
        """-log p(word t+1 | prefix, words 0..t) for each predicted word (B, T-1); 0 on padding.
        A loss on some words only (answers, chapter 10) is this times their mask."""
        logits = self.logits(ids[:, :-1], mask[:, :-1], prefix)  # (B, T-1, V)
        nll = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")  # (B, T-1)
        return nll * mask[:, 1:]

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        nll = self.token_nll(batch["ids"], batch["mask"])
        return {"loss": nll.sum() / batch["mask"][:, 1:].sum()}

    @torch.no_grad()
    def generate(
        self,
        ids: torch.Tensor,
        max_new: int = 20,
        prefix: torch.Tensor | None = None,
        which: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Greedy continuation of prompts of one length, ids (B, T) starting with [BOS]:
        -> (B, L) new ids, L <= max_new, [EOS] then [PAD] once a text has ended. prefix
        (B, Np, D), or (Bs, Np, D) with which (B,) the prefix of each text (`shared_logits`)."""
        if max_new < 1 or ids.shape[1] + max_new > self.cfg.max_len:
            raise InputError("max_new", f"1..{self.cfg.max_len - ids.shape[1]}", max_new)
        seqs, done = ids, torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
        for _ in range(max_new):
            if which is None:
                logits = self.logits(seqs, prefix=prefix)[:, -1]  # (B, V)
            else:
                real = torch.ones_like(seqs, dtype=torch.bool)  # no padding inside a prompt
                logits = self.shared_logits(seqs, real, prefix, which)[:, -1]  # (B, V)
            logits[:, [self.bos_id, self.pad_id]] = float("-inf")  # never inside a text
            nxt = logits.argmax(-1).masked_fill(done, self.pad_id)  # (B,)
            seqs = torch.cat([seqs, nxt[:, None]], dim=1)
            done |= nxt == self.eos_id
            if done.all():
                break
        return seqs[:, ids.shape[1] :]


def encode(tok: CaptionTokenizer, texts: list[str], max_len: int) -> tuple[torch.Tensor, ...]:
    """[BOS] text [EOS], padded: ids (B, T), mask (B, T). Unknown words and texts longer than
    max_len raise InputError (a text is never cut short)."""
    if isinstance(texts, str) or not isinstance(texts, list | tuple) or not texts:
        raise InputError("texts", "a non-empty list of str", type(texts).__name__)
    for t in texts:
        if not isinstance(t, str) or not t.split():
            raise InputError("texts", "non-empty str", repr(t))
        unknown = [w for w in t.split() if tok.tk.token_to_id(w) is None]
        if unknown:
            raise InputError("texts", "words of the tokenizer's vocabulary", repr(unknown[0]))
        if len(t.split()) + 2 > max_len:
            raise InputError("texts", f"at most {max_len - 2} words", f"{len(t.split())}")
    return tok.batch_encode(list(texts))


@torch.no_grad()
def perplexity(
    model: CausalLM, tok: CaptionTokenizer, texts: list[str], batch_size: int = 256
) -> float:
    """exp(mean -log p) over every predicted token of the texts, [EOS] included."""
    if isinstance(texts, str) or not isinstance(texts, list | tuple) or not texts:
        raise InputError("texts", "a non-empty list of str", repr(texts)[:40])
    device = next(model.parameters()).device
    total, count = 0.0, 0
    with evaluating(model):
        for s in range(0, len(texts), batch_size):
            ids, mask = encode(tok, texts[s : s + batch_size], model.cfg.max_len)
            ids, mask = ids.to(device), mask.to(device)
            total += float(model.token_nll(ids, mask).sum())
            count += int(mask[:, 1:].sum())
    return math.exp(total / count)


@torch.no_grad()
def complete(
    model: CausalLM, tok: CaptionTokenizer, prompts: list[str], max_new: int = 20
) -> list[str]:
    """Greedy continuation of each prompt, up to [EOS]; prompts of one length share a batch."""
    device = next(model.parameters()).device
    ids, _ = encode(tok, prompts, model.cfg.max_len)  # validates every prompt
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, p in enumerate(prompts):
        by_length[len(p.split())].append(i)
    out = [""] * len(prompts)
    with evaluating(model):
        for n, rows in by_length.items():
            prompt = ids[rows, : n + 1].to(device)  # (b, 1 + n): [BOS] and the words
            room = min(max_new, model.cfg.max_len - n - 1)
            for i, new in zip(rows, model.generate(prompt, room), strict=True):
                out[i] = tok.decode(new)
    return out


def answer_accuracy(
    model: CausalLM, tok: CaptionTokenizer, split: str = "test", n_scenes: int = 300, seed: int = 0
) -> dict[str, float]:
    """Given the true caption as text, how often greedy decoding answers right, per kind:
    chapter 9's questions of a split (query also split by attribute: colour, shape, size), and
    "describe the image ." whose answer is the caption, word for word. "all": the questions."""
    qs = make_questions(split, n_scenes, 5, seed=seed)
    captions = [caption(s) for s in qs.scenes]
    prompts = [qa_prompt(captions[w], q) for w, q in zip(qs.which, qs.questions, strict=True)]
    prompts += [qa_prompt(c, DESCRIBE) for c in captions]
    truth = qs.answers + captions
    kinds = list(qs.kinds) + ["describe"] * len(captions)
    attribute = {"query_color": "colour", "query_shape": "shape", "query_size": "size"}
    kinds2 = [attribute.get(t.removesuffix("_rel")) for t in qs.templates] + [None] * len(captions)
    hits: dict[str, list[bool]] = defaultdict(list)
    for got, want, k, k2 in zip(complete(model, tok, prompts), truth, kinds, kinds2, strict=True):
        for key in (k, k2, "all" if k != "describe" else None):
            if key:
                hits[key].append(got == want)
    return {k: sum(v) / len(v) for k, v in hits.items()}


# ---------------------------------------------------------------- pretraining


@dataclass
class PretrainConfig:
    """The language model, its corpus and its training (one seed: train.seed)."""

    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 3
    max_len: int = 48
    name_held_out: bool = True
    mix: tuple[float, float, float] = (0.15, 0.15, 0.7)  # caption, paraphrase, qa
    batch_size: int = 128  # an answer is 1 word in ~25: small batches drown it in caption noise
    n_eval: int = 512  # held-out texts for the perplexity curve
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            steps=600, lr=3e-3, warmup=100, eval_every=100, log_every=50, progress=False
        )
    )


@dataclass
class Pretrained:
    model: CausalLM
    tokenizer: CaptionTokenizer
    curve: list[tuple[int, float]]  # (step, held-out perplexity)
    seconds: float  # of training


def pretrain_lm(
    cfg: PretrainConfig, out_dir: str | Path | None = None, device: str = "cpu"
) -> Pretrained:
    """Pretrain a CausalLM on a TextCorpus with `train.train` (checkpoints in out_dir, resumed
    from there), scoring held-out perplexity (the "val" stream) every train.eval_every steps."""
    if cfg.batch_size < 1 or cfg.n_eval < 1:
        raise InputError("batch_size, n_eval", ">= 1", (cfg.batch_size, cfg.n_eval))
    seed = cfg.train.seed
    tok = lm_tokenizer()
    torch.manual_seed(seed)
    lm_cfg = LMConfig(len(tok), cfg.d_model, cfg.n_heads, cfg.n_layers, cfg.max_len)
    model = CausalLM(lm_cfg, tok.pad_id, tok.bos_id, tok.eos_id)
    corpus = TextCorpus(seed=seed, name_held_out=cfg.name_held_out, mix=cfg.mix)
    val = TextCorpus(seed=seed, name_held_out=cfg.name_held_out, mix=cfg.mix, stream="val")
    val_texts = [t.text for t in val.texts(0, cfg.n_eval)]

    def get_batch(step: int) -> dict:
        texts = [t.text for t in corpus.texts(step * cfg.batch_size, cfg.batch_size)]
        ids, mask = encode(tok, texts, cfg.max_len)  # (B, T) each
        return {"ids": ids, "mask": mask}

    def evaluate(m: nn.Module, step: int) -> dict[str, float]:
        return {"ppl": perplexity(m, tok, val_texts)}  # type: ignore[arg-type]

    start = [(0, perplexity(model, tok, val_texts))]
    records = train(model, get_batch, cfg.train, out_dir, evaluate=evaluate, device=device)
    if out_dir is not None:  # a resumed run: the whole curve is in the log
        from .train import read_log

        records = read_log(Path(out_dir) / "metrics.jsonl")
    curve = start + [(r["step"], r["ppl"]) for r in records if r.get("eval")]
    seconds = max((r["time"] for r in records if "time" in r), default=0.0)
    return Pretrained(model, tok, curve, seconds)


if __name__ == "__main__":
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    run = pretrain_lm(PretrainConfig(train=TrainConfig(steps=300, eval_every=100, progress=False)))
    print("held-out perplexity by step:", [(s, round(p, 3)) for s, p in run.curve])
    scores = answer_accuracy(run.model, run.tokenizer, n_scenes=100)
    print("answers given the caption:", {k: round(v, 3) for k, v in scores.items()})
    print(f"{time.perf_counter() - t0:.0f} s")
