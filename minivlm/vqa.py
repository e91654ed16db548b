"""Visual question answering: three answerers and `answer(model, image, question)` (chapter 9).

Every answerer maps (image, question) to one word of `ANSWERS` (17 of them):

* `BlindVQA`, the language prior: the question alone, encoded by a small Transformer and
  mean-pooled, into a softmax over the answers. It never looks at the image, so it scores what
  the question's wording gives away: about the blind rate of `minivlm.data.questions`.
* `ClassifierVQA`, classification VQA as in ViLBERT and UNITER: the capstone's image encoder
  gives region tokens, the question is fused with them into one vector, and an MLP maps it to
  the answers. fusion="stack" is the capstone's multimodal stack (chapter 5's cross-attention
  blocks) with the per-word outputs mean-pooled: it learns to *read* an attribute, but stays
  near the prior on checks ("is there ...", "is A above B"). fusion="glimpse" (the default)
  looks the way those questions need: a few glimpses, each a softmax over the cells that
  fetches one object's token and (x, y), kept apart so that A's position can be compared with
  B's; and a check of every cell against the question, max- and mean-pooled ("is there one?",
  "how many?"). `from_captioner` starts the image encoder (and the word embeddings) from a
  trained capstone captioner, which already knows what and where each object is.
* `NSReader`, a neuro-symbolic reader as in NS-VQA: a captioner writes the scene, chapter 1's
  parser reads the caption into facts, and the question grammar's executor answers from them.
  Every step can be read, so a wrong answer points at the step that failed.

The two trained answerers share one trick: the question says what *kind* of word answers it
("how many" wants a number, "what colour" a colour), so the logits of every other answer are
masked out (`answer_types`). The loss then teaches what to look at, not which words are answers.
Training and scoring are in `minivlm.vqa_train`.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import MultiHeadAttention
from .capstone.config import ModelConfig
from .capstone.encoders import TwoPathwayEncoder, image_encoder
from .capstone.evaluation import caption_images
from .capstone.model import Captioner, multimodal_stack
from .data import CaptionTokenizer, to_tensor
from .data.captions import try_parse
from .data.question_grammar import (
    ANSWERS,
    COUNT_ANSWERS,
    Program,
    execute,
    normalize_question,
    parse_question,
)
from .data.questions import question_tokenizer
from .data.scenes import COLORS, SHAPES, SIZES
from .errors import InputError
from .text import TextEmbedding
from .transformer import Encoder, masked_mean

# answer type -> the answers it allows; a question's type is read off its parsed program
ANSWER_TYPES: dict[str, tuple[str, ...]] = {
    "yes/no": ("yes", "no"),
    "count": COUNT_ANSWERS,
    "size": tuple(SIZES),
    "color": tuple(COLORS),
    "shape": SHAPES,
}
TYPE_NAMES: tuple[str, ...] = tuple(ANSWER_TYPES)
GLIMPSES = 3  # glimpse fusion: how many places one question looks at
UNKNOWN = "unknown"  # what the reader says when its caption cannot answer the question


def answer_type(p: Program) -> int:
    """The index (in TYPE_NAMES) of the kind of word that answers a parsed question."""
    if p.kind == "count":
        return TYPE_NAMES.index("count")
    if p.kind == "query":
        return TYPE_NAMES.index(p.attribute)  # type: ignore[arg-type]
    return TYPE_NAMES.index("yes/no")  # exist, relation, compare


def type_mask() -> torch.Tensor:
    """(len(TYPE_NAMES), len(ANSWERS)) bool: True where an answer fits the type."""
    return torch.tensor([[a in ANSWER_TYPES[t] for a in ANSWERS] for t in TYPE_NAMES])


def answer_types(questions: list[str]) -> torch.Tensor:
    """(Q,) long: the answer type of each question (InputError for one outside the grammar)."""
    return torch.tensor([answer_type(parse_question(q)) for q in questions], dtype=torch.long)


def answer_head(d_model: int) -> nn.Sequential:
    """The fused vector (B, D) -> one logit per answer (B, A): a small MLP."""
    return nn.Sequential(nn.Linear(d_model, d_model), nn.GELU(), nn.Linear(d_model, len(ANSWERS)))


class _Answerer(nn.Module):
    """What the trained answerers share: the masked answer head, the loss and `predict`.

    A subclass gives `logits(batch)`; the classifiers' are over ANSWERS (B, A), fed by `fused`
    and `head`. `GenerativeVQA` overrides `logits` (over its vocabulary), `target` and `word`."""

    tok: CaptionTokenizer
    image_size: int
    head: nn.Module

    def __init__(self):
        super().__init__()
        self.register_buffer("types", type_mask(), persistent=False)  # (n_types, A)

    def fused(self, images, which, ids, mask) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def logits(self, batch: dict) -> torch.Tensor:
        """Answer logits (B, A), -inf on the answers of another type than the question's."""
        z = self.fused(batch["image"], batch["which"], batch["ids"], batch["mask"])  # (B, D)
        logits = self.head(z)  # (B, A)
        return logits.masked_fill(~self.types[batch["type"]], float("-inf"))

    def target(self, batch: dict) -> torch.Tensor:
        """(B,) the index, among the logits, of each right answer."""
        return batch["answer"]

    def to_answers(self, best: torch.Tensor) -> torch.Tensor:
        """Argmax indices (B,) -> indices in ANSWERS (B,); -1 where the word answers nothing."""
        return best

    def word(self, best: int) -> str:
        """The word that an argmax index stands for."""
        return ANSWERS[best]

    def guess(self, batch: dict) -> torch.Tensor:
        """(B,) each question's answer as an index in ANSWERS (-1: not an answer word)."""
        return self.to_answers(self.logits(batch).argmax(-1))

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        logits = self.logits(batch)
        loss = F.cross_entropy(logits, self.target(batch))
        right = self.to_answers(logits.argmax(-1)) == batch["answer"]
        return {"loss": loss, "acc": right.float().mean()}

    def batch(self, images: torch.Tensor, questions: list[str]) -> dict:
        """A batch for `logits`: images (B, 3, S, S) float, one question each."""
        device = self.types.device
        questions = [normalize_question(q) for q in questions]  # "circle?" -> "circle ?"
        ids, mask = self.tok.batch_encode(questions)  # (B, T) each
        return {
            "image": images.to(device),
            "which": torch.arange(len(questions), device=device),
            "ids": ids.to(device),
            "mask": mask.to(device),
            "type": answer_types(questions).to(device),
        }

    @torch.no_grad()
    def predict(self, images: torch.Tensor, questions: list[str]) -> list[str]:
        """One answer word per (image, question) pair; images (B, 3, S, S) float."""
        was = self.training
        self.eval()
        try:
            best = self.logits(self.batch(images, questions)).argmax(-1)  # (B,)
        finally:
            self.train(was)
        return [self.word(i) for i in best.tolist()]


class BlindVQA(_Answerer):
    """The language prior: question words -> Transformer -> mean over words -> answers.

    It takes the image like the others do, and ignores it."""

    def __init__(
        self,
        tok: CaptionTokenizer | None = None,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        max_len: int = 32,
        image_size: int = 64,
    ):
        super().__init__()
        self.head = answer_head(d_model)
        self.tok = tok or question_tokenizer()
        self.image_size = image_size
        self.settings = {"d_model": d_model, "n_heads": n_heads, "n_layers": n_layers,
                         "max_len": max_len, "image_size": image_size}  # fmt: skip
        self.embed = TextEmbedding(len(self.tok), d_model, max_len=max_len)
        self.encoder = Encoder(n_layers, d_model, n_heads, 4 * d_model)

    def fused(self, images, which, ids, mask) -> torch.Tensor:
        h, _ = self.encoder(self.embed(ids), key_mask=mask)  # (B, T, D)
        return masked_mean(h, mask)  # (B, D): the image never enters


class ClassifierVQA(_Answerer):
    """Region tokens + question -> one fused vector -> answers. Two fusions:

    * "stack": the capstone's multimodal stack (chapter 7's CaptionDecoder run
      bidirectionally): every word attends to the other words and queries the 2*G*G region
      tokens, and the per-word outputs are mean-pooled. It learns to *read* an object's
      attribute quickly, but checking (is there ..., is A above B) stays near the prior.
    * "glimpse": a question encoder, then two ways to look. K glimpses: K learned queries pool
      the question words into K requests ("the blue triangle", "the green circle"), each
      request's softmax over the cells fetches a cell token and its (x, y): the K results are
      concatenated, never averaged, so "A above B" can compare A's y with B's. And a check of
      every cell: cell * request -> MLP, mean- and max-pooled over cells ("is there one?",
      "how many?"). Cells are merged tokens here: the shape and colour tokens of a cell added,
      so one softmax finds a red triangle.
    """

    def __init__(
        self, m: ModelConfig | None = None, tok: CaptionTokenizer | None = None,
        fusion: str = "glimpse",
    ):  # fmt: skip
        m = m or ModelConfig()
        if fusion not in ("stack", "glimpse"):
            raise InputError("fusion", "'stack' or 'glimpse'", repr(fusion))
        super().__init__()
        self.head = answer_head(m.d_model)
        self.tok, self.config, self.fusion = tok or question_tokenizer(), m, fusion
        self.image_size, d, V = m.image_size, m.d_model, len(self.tok)
        # images (B, 3, S, S) -> (B, Ni, D); every cell, since the glimpses know each by its place
        self.image = image_encoder(replace(m, keep_cells=0))
        if fusion == "stack":
            self.fuse = multimodal_stack(m, V)
            return
        self.embed = TextEmbedding(V, d, max_len=m.max_len)
        self.qenc = Encoder(m.text_layers, d, m.n_heads, 4 * d)
        self.slots = nn.Parameter(torch.randn(1, GLIMPSES, d) * 0.02)
        self.word_pool = MultiHeadAttention(d, m.n_heads)  # slots query the question words
        self.cell_key, self.ask = nn.Linear(d, d), nn.Linear(d, d)
        self.cell_mlp = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, d))
        self.pool = nn.Linear(3 * d + GLIMPSES * (d + 2), d)
        g = torch.linspace(-1, 1, m.grid)
        xy = torch.stack(torch.meshgrid(g, g, indexing="ij")[::-1], -1)  # (G, G, 2): x, y
        self.register_buffer("xy", xy.reshape(-1, 2), persistent=False)  # (G*G, 2) row-major

    @classmethod
    def from_captioner(
        cls, captioner: Captioner, m: ModelConfig, fusion: str = "glimpse"
    ) -> ClassifierVQA:
        """A classifier whose image encoder (and word embeddings; with "stack", the whole
        multimodal stack) start as a trained captioner's. The question vocabulary keeps the
        caption words' ids, so their embeddings carry over."""
        model = cls(m, fusion=fusion)
        model.image.load_state_dict(captioner.image.state_dict())
        old = captioner.decoder.embed
        if fusion == "stack":
            stack = copy.deepcopy(captioner.decoder)
            stack.embed.word = model.fuse.embed.word  # the larger question vocabulary
            model.fuse = stack
        with torch.no_grad():
            new = model.fuse.embed if fusion == "stack" else model.embed
            new.word.weight[: old.word.num_embeddings] = old.word.weight  # (V_caption, D)
            new.pos.copy_(old.pos[: new.max_len])
        return model.to(old.word.weight.device)  # where the captioner is (a GPU, say)

    def regions(self, images: torch.Tensor) -> torch.Tensor:
        """Region tokens (B, Ni, D); for "glimpse" one token per cell (shape + colour)."""
        img = self.image(images)  # (B, Ni, D)
        if self.fusion == "glimpse" and isinstance(self.image, TwoPathwayEncoder):
            n = img.shape[1] // 2
            img = img[:, :n] + img[:, n:]  # (B, G*G, D): shape + colour of each cell
        return img

    def fused(self, images, which, ids, mask) -> torch.Tensor:
        cells = self.regions(images)[which]  # (B, N, D): each question with its scene's image
        if self.fusion == "stack":
            h, _ = self.fuse.hidden(ids, cells, key_mask=mask, causal=False)  # (B, T, D)
            return masked_mean(h, mask)  # (B, D)
        q, h, words, where = self.glimpses(cells, ids, mask)
        seen, at = where @ cells, where @ self.xy  # (B, K, D), (B, K, 2)
        check = self.cell_mlp(cells * self.ask(q)[:, None])  # (B, N, D)
        z = [q, check.mean(1), check.amax(1), seen.flatten(1), at.flatten(1)]
        return self.pool(torch.cat(z, -1))  # (B, D)

    def glimpses(self, cells, ids, mask, need_weights: bool = False):
        """Glimpse fusion's reading of the question: the question vector q (B, D), the words
        (B, T, D), each glimpse's weights over the words (B, K, T; None unless need_weights,
        averaged over heads) and its softmax over the cells (B, K, N)."""
        h, _ = self.qenc(self.embed(ids), key_mask=mask)  # (B, T, D)
        q = masked_mean(h, mask)  # (B, D)
        slots = self.slots.expand(len(h), -1, -1)  # (B, K, D)
        requests, words = self.word_pool(
            slots, context=h, key_mask=mask, need_weights=need_weights
        )  # (B, K, D), (B, heads, K, T) or None
        score = requests @ self.cell_key(cells).transpose(1, 2) / cells.shape[-1] ** 0.5
        where = score.softmax(-1)  # (B, K, N): where each glimpse looks
        return q, h, None if words is None else words.mean(1), where

    @torch.no_grad()
    def looks(self, images: torch.Tensor, questions: list[str]):
        """Where glimpse fusion looks, for the chapter's figures: per question, each glimpse's
        weights over the question's tokens (B, K, T) and over the G*G cells (B, K, G, G)."""
        if self.fusion != "glimpse":
            raise InputError("fusion", "'glimpse' (only glimpses look at places)", self.fusion)
        b = self.batch(images, questions)
        cells = self.regions(b["image"])[b["which"]]  # (B, N, D)
        _, _, words, where = self.glimpses(cells, b["ids"], b["mask"], need_weights=True)
        G = self.config.grid
        return words, where.reshape(*where.shape[:2], G, G)


class NSReader:
    """Caption -> facts -> answer: a trained captioner, chapter 1's parser, the executor."""

    def __init__(self, captioner: Captioner, tok: CaptionTokenizer, image_size: int = 64):
        self.captioner, self.tok, self.image_size = captioner, tok, image_size

    def describe(self, images: np.ndarray) -> list[str]:
        """The captioner's caption of each uint8 image (N, S, S, 3)."""
        return caption_images(self.captioner, images, self.tok)

    @staticmethod
    def read(caption: str, question: str) -> str:
        """Answer a question from a caption alone: UNKNOWN if the caption is not a sentence of
        the grammar or does not allow the question (say, no unique "small square")."""
        facts = try_parse(caption)
        if facts is None:
            return UNKNOWN
        try:
            return execute(facts, parse_question(question))
        except InputError:
            return UNKNOWN

    def predict(self, images: np.ndarray, questions: list[str]) -> list[str]:
        """One answer per (uint8 image (S, S, 3), question) pair."""
        return [self.read(c, q) for c, q in zip(self.describe(images), questions, strict=True)]


Model = _Answerer | NSReader  # BlindVQA, ClassifierVQA, GenerativeVQA (vqa_generative)


def _image(image, size: int) -> torch.Tensor:
    """A uint8 picture (S, S, 3) or a float tensor (3, S, S) -> (1, 3, S, S) float."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.shape != (size, size, 3):
            got = f"{image.dtype} {image.shape}"
            raise InputError("image", f"a uint8 picture ({size}, {size}, 3)", got)
        return to_tensor(image[None])  # (1, 3, S, S)
    if isinstance(image, torch.Tensor):
        if not image.is_floating_point() or tuple(image.shape) != (3, size, size):
            got = f"{image.dtype} {tuple(image.shape)}"
            raise InputError("image", f"a float tensor (3, {size}, {size})", got)
        return image[None]
    kind = type(image).__name__
    raise TypeError(f"image must be a numpy uint8 array or a torch tensor, got {kind}")


def answer(model: Model, image, question: str) -> str:
    """The model's one-word answer to a question about one picture.

    image: uint8 (S, S, 3) as `render` draws it, or float (3, S, S) as `to_tensor` gives it.
    A question outside the grammar raises InputError (one line: what was expected, what came).
    """
    if not isinstance(model, (_Answerer, NSReader)):
        kind = type(model).__name__
        raise TypeError(f"model must be an answerer of chapter 9 or an NSReader, got {kind}")
    parse_question(question)  # a malformed question fails here, before any model runs
    x = _image(image, model.image_size)  # (1, 3, S, S)
    if isinstance(model, NSReader):
        pixels = image[None] if isinstance(image, np.ndarray) else _to_uint8(x)  # (1, S, S, 3)
        return model.predict(pixels, [question])[0]
    return model.predict(x, [question])[0]


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """(1, 3, S, S) float in [-1, 1] -> (1, S, S, 3) uint8, the inverse of `to_tensor`."""
    return ((x.permute(0, 2, 3, 1) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
