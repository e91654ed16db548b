"""Generative VQA: the caption decoder writes the answer after the question, as BLIP does
(chapter 9).

The classifiers of `minivlm.vqa` end in a softmax over the 17 answers. Here there is no answer
head: the decoder of a trained captioner reads "[BOS] is there a red circle ?" causally,
cross-attending to the image tokens at every word, and its next-word softmax over the *whole
vocabulary* writes the answer. Every answer of the shapes world is one word, so argmax decoding
stops after one step. Nothing forces that word to be an answer, or one of the right type: the
model learns that from the loss too, and a word that answers nothing counts as wrong.

    model = GenerativeVQA.from_captioner(trained.captioner, cfg.model)
    fit(model, train_questions, steps=600)                 # minivlm.vqa_train, as the others
    answer(model, picture, "how many circles are there ?")  # one word
"""

from __future__ import annotations

import copy

import torch

from .capstone.config import ModelConfig
from .capstone.encoders import image_encoder
from .capstone.model import Captioner, multimodal_stack
from .data import CaptionTokenizer
from .data.question_grammar import ANSWERS
from .data.questions import question_tokenizer
from .vqa import _Answerer


class GenerativeVQA(_Answerer):
    """Image encoder + caption decoder; logits(batch) -> the next word after the question (B, V)."""

    def __init__(self, m: ModelConfig | None = None, tok: CaptionTokenizer | None = None):
        super().__init__()
        m = m or ModelConfig()
        self.tok, self.config, self.image_size = tok or question_tokenizer(), m, m.image_size
        self.image = image_encoder(m)  # (B, 3, S, S) -> (B, Ni, D)
        self.decoder = multimodal_stack(m, len(self.tok))
        ids = [self.tok.tk.token_to_id(a) for a in ANSWERS]
        self.register_buffer("answer_ids", torch.tensor(ids), persistent=False)  # (A,)
        lookup = torch.full((len(self.tok),), -1, dtype=torch.long)  # word id -> answer index
        lookup[self.answer_ids] = torch.arange(len(ANSWERS))
        self.register_buffer("lookup", lookup, persistent=False)  # (V,)

    @classmethod
    def from_captioner(cls, captioner: Captioner, m: ModelConfig) -> GenerativeVQA:
        """A generative answerer that starts as a trained captioner: its image encoder and its
        decoder, whose word embeddings and output rows grow to the question vocabulary (a
        caption word keeps its id, so both carry over)."""
        model = cls(m)
        model.image = copy.deepcopy(captioner.image)
        old, new = captioner.decoder, copy.deepcopy(captioner.decoder)
        new.embed.word, new.lm_head = model.decoder.embed.word, model.decoder.lm_head
        V = old.embed.word.num_embeddings
        with torch.no_grad():
            new.embed.word.weight[:V] = old.embed.word.weight  # (V_caption, D)
            new.lm_head.weight[:V] = old.lm_head.weight
            new.lm_head.bias[:V] = old.lm_head.bias
        model.decoder = new
        return model.to(old.lm_head.weight.device)  # where the captioner is (a GPU, say)

    def logits(self, batch: dict) -> torch.Tensor:
        """Next-word logits (B, V) at the question's last word, "?": the answer's position."""
        cells = self.image(batch["image"])[batch["which"]]  # (B, Ni, D)
        ids, mask = batch["ids"], batch["mask"]  # [BOS] words ? [EOS] [PAD]...
        h, _ = self.decoder.hidden(ids, cells, key_mask=mask)  # (B, T, D), causal
        last = mask.sum(1) - 2  # (B,): the "?" (the [EOS] after it is never read, causally)
        return self.decoder.lm_head(h[torch.arange(len(ids), device=ids.device), last])

    def target(self, batch: dict) -> torch.Tensor:
        return self.answer_ids[batch["answer"]]  # (B,) word ids

    def to_answers(self, best: torch.Tensor) -> torch.Tensor:
        return self.lookup[best]

    def word(self, best: int) -> str:
        return self.tok.tk.id_to_token(best)
