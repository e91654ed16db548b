"""The modern recipe: a frozen image encoder, a projector, a pretrained LM (chapter 10).

LLaVA, nanoVLM and SmolVLM are not trained like the ViLBERT family of chapters 5 to 8. They take
a vision encoder that already sees and a language model that already writes, and connect them
with a small projector that maps image tokens into the language model's word-embedding space:

    image (B, 3, S, S) -> frozen encoder -> cells (B, Ni, D_img) -> merge 2x2 -> (B, Np, 4 D_img)
                       -> projector -> prefix (B, Np, D) -> CausalLM: [prefix] [BOS] . question

The encoder is chapter 8's (a trained captioner's `.image`), always frozen; the language model
is `minivlm.lm.CausalLM`, pretrained on text alone, frozen in stage 1 and optionally unfrozen
(whole, or its last k blocks) in stage 2 (`minivlm.llava_train`).

The dialogue reuses the language model's own question-and-answer format (`data.corpus`): its
texts read "<caption> . <question> <answer>", and here the image stands where the caption
stood, so nothing new is added to the tokenizer:

    <image> . what colour is the square ? red
    <image> . describe the image . a small red square left of a large blue circle

"<image>" is never a word: it marks where the projected image tokens go, before [BOS]. The
words keep the positions they had in pretraining; the prefix takes none.

The loss reads the answer only. The language model sees x = (v_1..v_N, w_0 = [BOS], w_1..w_T)
and gives p(w_{t+1} | v, w_0..w_t) at every word. Pretraining summed -log p over every word;
instruction tuning sums it over the answer's words and the [EOS] that ends it, the set A:

    L = -1/|A| * sum over t+1 in A of log p(w_{t+1} | v, w_0..w_t)

The image positions have no word to predict, and the prompt's words are given, not to be written:
a loss on them would spend the projector's gradient on modelling which questions get asked.
So the target of every other position is IGNORE (-100) and `F.cross_entropy(...,
ignore_index=IGNORE)` averages over A alone, which is exactly L (`answer_loss`). LLaVA writes
IGNORE_INDEX on its image positions too; `CausalLM.logits` never returns them at all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .capstone.config import ModelConfig
from .capstone.encoders import image_encoder
from .data import CaptionTokenizer
from .data.corpus import DESCRIBE, qa_prompt
from .data.question_grammar import normalize_question, parse_question
from .errors import InputError
from .files import load_run, save_run
from .lm import CausalLM, LMConfig, encode
from .train import evaluating
from .vqa import _image

IMAGE = "<image>"  # where the image tokens stand in a dialogue; never a word
IGNORE = -100  # the target of a position the loss skips
PROJECTORS = ("linear", "mlp")
FILES = ("vlm.json", "tokenizer.json", "vlm.safetensors")


# ---------------------------------------------------------------- the dialogue


def dialogue(question: str, answer: str = "") -> str:
    """One turn as text: the corpus's `qa_prompt` with the image where the caption stood,
    e.g. "<image> . what colour is the square ? red"."""
    return f"{qa_prompt(IMAGE, question)} {answer}".rstrip()


def encode_dialogues(
    tok: CaptionTokenizer, questions: list[str], answers: list[str] | None, max_len: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The words after the image, "[BOS] . question answer [EOS]", padded: ids (B, T),
    mask (B, T) True on real tokens, answer (B, T) True on the answer's words and its [EOS]
    (what the loss reads; all False with answers=None, the prompts alone)."""
    if isinstance(questions, str) or not all(isinstance(q, str) for q in questions):
        raise InputError("questions", "a list of str", repr(questions)[:40])
    if answers is not None and len(answers) != len(questions):
        raise InputError("answers", f"one per question ({len(questions)})", len(answers))
    if answers is not None and not all(isinstance(a, str) and a.split() for a in answers):
        raise InputError("answers", "non-empty str, one per question", repr(answers)[:40])
    prompts = [dialogue(q).removeprefix(IMAGE).strip() for q in questions]  # ". question"
    if answers is None:
        ids, mask = encode(tok, prompts, max_len)  # (B, T) each; unknown words: InputError
        return ids, mask, torch.zeros_like(mask)
    texts = [f"{p} {a}" for p, a in zip(prompts, answers, strict=True)]  # ". question answer"
    ids, mask = encode(tok, texts, max_len)  # (B, T) each
    prompt = torch.tensor([1 + len(p.split()) for p in prompts])  # (B,): [BOS] and the prompt
    answer = (torch.arange(ids.shape[1])[None] >= prompt[:, None]) & mask  # (B, T)
    return ids, mask, answer


def answer_loss(logits: torch.Tensor, ids: torch.Tensor, answer: torch.Tensor) -> torch.Tensor:
    """The mean -log p of the answer tokens (see the module docstring). logits (B, T-1, V) of
    words 0..T-2, ids (B, T), answer (B, T) bool: word t+1 is a target where answer[:, t+1]."""
    target = ids[:, 1:].masked_fill(~answer[:, 1:], IGNORE)  # (B, T-1)
    return F.cross_entropy(logits.transpose(1, 2), target, ignore_index=IGNORE)


def instruction(question: str) -> str:
    """A question of chapter 9's grammar, or "describe the image", in the corpus's spelling
    ("?" and "." words of their own, "colour"); InputError for anything else."""
    text = " ".join(normalize_question(question).replace(".", " . ").split())
    if text in (DESCRIBE, DESCRIBE.removesuffix(" .")):
        return DESCRIBE
    parse_question(text)  # one line: what was expected, what came
    return text


# ---------------------------------------------------------------- the model


def merge_cells(tokens: torch.Tensor, grid: int, pathways: int, k: int, pair: bool) -> torch.Tensor:
    """Concatenate each k x k block of neighbouring cells into one token (nanoVLM's "pixel
    shuffle"): (B, P*G*G, D), P pathways of G*G row-major cells each (the two-pathway encoder:
    shape tokens, then colour tokens) -> (B, P*(G/k)^2, k*k*D), still pathway by pathway.
    pair=True also puts a block's P pathways into one token: (B, (G/k)^2, P*k*k*D)."""
    B, _, D = tokens.shape
    g = grid // k
    x = tokens.reshape(B, pathways, g, k, g, k, D)  # (B, P, row, dy, col, dx, D)
    x = x.permute(0, 1, 2, 4, 3, 5, 6)  # (B, P, row, col, dy, dx, D)
    x = x.reshape(B, pathways, g * g, k * k * D)  # (B, P, g*g, k*k*D)
    if pair:
        return x.transpose(1, 2).reshape(B, g * g, pathways * k * k * D)  # (B, g*g, P*k*k*D)
    return x.reshape(B, pathways * g * g, k * k * D)  # (B, P*g*g, k*k*D)


@dataclass(frozen=True)
class VLMConfig:
    """Everything that rebuilds a PrefixVLM: the encoder's and the LM's shapes, the projector
    ("linear" or "mlp": Linear, GELU, Linear), the k of k x k merging (1: none), and `pair`:
    a cell's shape and colour tokens in one (two-pathway encoder only)."""

    vision: ModelConfig
    lm: LMConfig
    projector: str = "mlp"
    merge: int = 2
    pair: bool = False

    def __post_init__(self) -> None:
        if self.projector not in PROJECTORS:
            raise InputError("projector", f"one of {PROJECTORS}", repr(self.projector))
        grid = self.vision.grid
        if isinstance(self.merge, bool) or not isinstance(self.merge, int) or self.merge < 1:
            raise InputError("merge", "an int >= 1 (1: no merging)", repr(self.merge))
        if grid % self.merge:
            raise InputError("merge", f"a divisor of the encoder's grid {grid}", self.merge)
        if self.pair and self.pathways != 2:
            raise InputError("pair", "False unless the encoder is two_pathway", self.pair)

    @property
    def pathways(self) -> int:
        return 2 if self.vision.encoder == "two_pathway" else 1

    @property
    def n_image_tokens(self) -> int:
        cells = (self.vision.grid // self.merge) ** 2
        return cells if self.pair else self.pathways * cells


class PrefixVLM(nn.Module):
    """A frozen image encoder, a projector and a CausalLM that reads the projected image tokens
    as a prefix. forward(batch) -> {"loss": answer_loss, "acc": answer-token accuracy}."""

    def __init__(self, cfg: VLMConfig, tok: CaptionTokenizer):
        super().__init__()
        if len(tok) != cfg.lm.vocab_size:
            raise InputError("tok", f"a tokenizer of {cfg.lm.vocab_size} words", len(tok))
        self.cfg, self.tok, self.image_size = cfg, tok, cfg.vision.image_size
        # (B, 3, S, S) -> (B, P*G*G, D_img): every cell, since merge_cells needs the grid
        self.image = image_encoder(replace(cfg.vision, keep_cells=0))
        d_in = cfg.vision.d_model * cfg.merge**2 * (cfg.pathways if cfg.pair else 1)
        d = cfg.lm.d_model
        if cfg.projector == "linear":
            self.projector: nn.Module = nn.Linear(d_in, d)
        else:
            self.projector = nn.Sequential(nn.Linear(d_in, d), nn.GELU(), nn.Linear(d, d))
        self.lm = CausalLM(cfg.lm, tok.pad_id, tok.bos_id, tok.eos_id)
        self.image.requires_grad_(False)  # always frozen
        self.freeze_lm()

    @classmethod
    def from_parts(
        cls, image: nn.Module, vision: ModelConfig, lm: CausalLM, tok: CaptionTokenizer,
        projector: str = "mlp", merge: int = 2, pair: bool = False,
    ) -> PrefixVLM:  # fmt: skip
        """A VLM that starts from copies of a trained encoder (e.g. a captioner's `.image`,
        built from `vision`) and a pretrained LM: training it never changes the originals."""
        model = cls(VLMConfig(vision, lm.cfg, projector, merge, pair), tok)
        model.image.load_state_dict(image.state_dict())
        model.lm.load_state_dict(lm.state_dict())
        return model.to(lm.lm_head.weight.device)  # where the LM is (a GPU, say)

    @property
    def device(self) -> torch.device:
        return self.lm.lm_head.weight.device

    def freeze_lm(self) -> None:
        """Stage 1 (and a frozen stage 2): only the projector learns."""
        self.lm.requires_grad_(False)

    def unfreeze_lm(self, last: int | None = None) -> None:
        """The whole LM learns (last=None), or its last `last` blocks and what sits above them
        (the final LayerNorm and lm_head); the word and position embeddings stay as they are."""
        n = self.cfg.lm.n_layers
        if last is None:
            self.lm.requires_grad_(True)
            return
        if isinstance(last, bool) or not isinstance(last, int) or not 1 <= last <= n:
            raise InputError("last", f"None or a number of blocks in 1..{n}", repr(last))
        self.freeze_lm()
        for part in [*self.lm.encoder.layers[n - last :], self.lm.encoder.final_norm]:
            part.requires_grad_(True)
        self.lm.lm_head.requires_grad_(True)

    def train(self, mode: bool = True) -> PrefixVLM:
        super().train(mode)
        self.image.eval()  # frozen: always as it was trained
        return self

    def image_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, S, S) -> the prefix (B, Np, D) in the LM's word-embedding space."""
        with torch.no_grad():  # the encoder is frozen: no graph to keep
            cells = self.image(images)  # (B, P*G*G, D_img)
        c = self.cfg
        cells = merge_cells(cells, c.vision.grid, c.pathways, c.merge, c.pair)  # (B, Np, k*k*D_img)
        return self.projector(cells)  # (B, Np, D)

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        """batch: "image" (Bs, 3, S, S), "which" (B,) the image of each dialogue, "ids",
        "mask" and "answer" (B, T) from `encode_dialogues`."""
        ids, mask, answer = batch["ids"], batch["mask"], batch["answer"]
        prefix = self.image_tokens(batch["image"])  # (Bs, Np, D): once per image
        logits = self.lm.shared_logits(ids[:, :-1], mask[:, :-1], prefix, batch["which"])
        hit = (logits.argmax(-1) == ids[:, 1:])[answer[:, 1:]]  # (n answer tokens,)
        return {"loss": answer_loss(logits, ids, answer), "acc": hit.float().mean()}

    @torch.no_grad()
    def reply(
        self, images: torch.Tensor, which: torch.Tensor, questions: list[str], max_new: int = 32
    ) -> list[str]:
        """Greedy (argmax) answers, each up to [EOS]: question i about images[which[i]]; images
        (Bs, 3, S, S) float. Prompts of one length share a batch."""
        ids, mask, _ = encode_dialogues(self.tok, questions, None, self.cfg.lm.max_len)
        lengths = mask.sum(1) - 1  # (B,): [BOS] and the prompt's words, without [EOS]
        out = [""] * len(questions)
        with evaluating(self):
            prefix = self.image_tokens(images.to(self.device))  # (Bs, Np, D): once per image
            which = which.to(self.device)
            for n in lengths.unique().tolist():
                rows = (lengths == n).nonzero()[:, 0]  # (b,)
                room = min(max_new, self.cfg.lm.max_len - n)
                new = self.lm.generate(ids[rows, :n].to(self.device), room, prefix, which[rows])
                for i, r in zip(rows.tolist(), new, strict=True):
                    out[i] = self.tok.decode(r)
        return out


def ask(model: PrefixVLM, image, question: str) -> str:
    """The model's answer to a question of chapter 9's grammar or "describe the image", by
    greedy decoding up to [EOS]. image: uint8 (S, S, 3) as `render` draws it, or float
    (3, S, S) as `to_tensor` gives it (`minivlm.vqa.answer` takes the same)."""
    if not isinstance(model, PrefixVLM):
        raise TypeError(f"model must be a PrefixVLM, got {type(model).__name__}")
    text = instruction(question)  # a malformed question fails before the model runs
    x = _image(image, model.image_size)  # (1, 3, S, S)
    return model.reply(x, torch.zeros(1, dtype=torch.long), [text], max_new=model.cfg.lm.max_len)[0]


# ---------------------------------------------------------------- saving


def save_vlm(model: PrefixVLM, run_dir: str | Path, scores: dict | None = None) -> Path:
    """Write vlm.json (its VLMConfig and the scores given), tokenizer.json and vlm.safetensors
    (every weight, encoder included) into run_dir, each atomically; returns the folder."""
    if not isinstance(model, PrefixVLM):
        raise TypeError(f"model must be a PrefixVLM, got {type(model).__name__}")
    info = {"model": "prefix_vlm", **asdict(model.cfg), "scores": scores or {}}
    return save_run(run_dir, FILES, info, model, model.tok)


def load_vlm(run_dir: str | Path, device: str | torch.device = "cpu") -> PrefixVLM:
    """The PrefixVLM that `save_vlm` wrote into run_dir, in eval mode (no pickle)."""

    def build(info: dict, tok: CaptionTokenizer) -> PrefixVLM:
        cfg = VLMConfig(
            ModelConfig(**info["vision"]), LMConfig(**info["lm"]), info["projector"],
            info["merge"], info["pair"],
        )  # fmt: skip
        return PrefixVLM(cfg, tok)

    expected = f"a chapter 10 run ({', '.join(FILES)})"
    model = load_run(run_dir, FILES, build, expected, "chapter 10 run")
    return model.to(device).eval()
