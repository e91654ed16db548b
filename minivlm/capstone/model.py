"""The capstone's two models, which share their parts (chapter 8).

* `Pretrainer` (stage 1): an image encoder, a unimodal text encoder for ITC, and a multimodal
  stack (chapter 7's `CaptionDecoder`) that cross-attends to the image. One forward computes
  chapter 6's ITC, ITM with hard negatives and MLM, plus BLIP's image-grounded language
  modelling (LM): the multimodal stack, run causally, writes the alt-text word by word.
* `Captioner` (stages 1b, 2, 3): the image encoder and the multimodal stack as a caption
  decoder. As in BLIP, the decoder *is* the multimodal stack of stage 1, so its cross-attention
  starts out knowing which region a word names.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..captioner import CaptionDecoder, teacher_forcing_loss
from ..data import CaptionTokenizer
from ..data.scenes import COLORS
from ..objectives import Temperature, itc_loss, itm_pairs, mask_tokens, similarity
from ..text import TextEmbedding
from ..transformer import Encoder, masked_mean
from .config import ModelConfig, Schedule
from .encoders import TwoPathwayEncoder, image_encoder


class TextEncoder(nn.Module):
    """Unimodal text encoder for ITC: embeddings, a pre-LN Transformer, masked mean."""

    def __init__(self, vocab_size: int, d_model: int, n_heads: int, n_layers: int, max_len: int):
        super().__init__()
        self.embed = TextEmbedding(vocab_size, d_model, max_len=max_len)
        self.encoder = Encoder(n_layers, d_model, n_heads, 4 * d_model, norm_first=True)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h, _ = self.encoder(self.embed(ids), key_mask=mask)  # (B, T, D)
        return masked_mean(h, mask)  # (B, D)


def colour_ids(tok: CaptionTokenizer) -> torch.Tensor:
    """The ids of the colour words the tokenizer knows (all six in the shapes world)."""
    ids = [tok.tk.token_to_id(c) for c in COLORS]
    return torch.tensor([i for i in ids if i is not None and i != tok.unk_id], dtype=torch.long)


def noisy_colours(
    ids: torch.Tensor, colours: torch.Tensor, p: float | torch.Tensor
) -> torch.Tensor:
    """Replace each colour word of ids (B, T) by a random colour with probability p (a number,
    or a tensor that broadcasts to (B, T), e.g. one probability per row (B, 1)).

    The decoder reads these words but must still write the true next word, so it cannot learn
    "after 'red' comes no triangle" from the text: it has to look at the image.
    """
    if len(colours) == 0 or (not isinstance(p, torch.Tensor) and p <= 0):
        return ids
    swap = (torch.rand(ids.shape, device=ids.device) < p) & torch.isin(ids, colours)
    pick = torch.randint(len(colours), ids.shape, device=ids.device)
    return torch.where(swap, colours[pick], ids)


def multimodal_stack(m: ModelConfig, vocab_size: int) -> CaptionDecoder:
    return CaptionDecoder(vocab_size, m.d_model, m.n_heads, m.fuse_layers, max_len=m.max_len)


class Pretrainer(nn.Module):
    """Stage 1: forward(batch) -> {"loss": itc + itm + mlm + lm, "itc", "itm", "mlm", "lm"}.

    lm is BLIP's image-grounded language modelling: the same multimodal stack, run causally,
    writes the alt-text word by word. It is the objective closest to captioning.
    """

    def __init__(self, m: ModelConfig, s: Schedule, tok: CaptionTokenizer):
        super().__init__()
        d, V = m.d_model, len(tok)
        self.tok, self.itm_share, self.mlm_prob, self.noise = (
            tok,
            s.itm_share,
            s.mlm_prob,
            s.colour_noise,
        )
        self.image = image_encoder(m)
        self.text = TextEncoder(V, d, m.n_heads, m.text_layers, m.max_len)
        self.image_proj, self.text_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.scale = Temperature()
        self.fuse = multimodal_stack(m, V)
        self.itm_head = nn.Linear(d, 2)
        self.register_buffer("colour_ids", colour_ids(tok), persistent=False)

    def embed(self, images: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor):
        """Image tokens (B, Ni, D) and the ITC embeddings of images and texts (B, D) each."""
        img = self.image(images)
        return img, self.image_proj(img.mean(1)), self.text_proj(self.text(ids, mask))

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        ids, mask = batch["ids"], batch["mask"]
        img, v, t = self.embed(batch["image"], ids, mask)
        sim = similarity(v, t)  # (B, B)
        itc = itc_loss(self.scale() * sim)
        # ITM: a share of the images, each with its text, a hard negative text and image
        k = max(2, int(len(ids) * self.itm_share))
        i_idx, t_idx, labels = itm_pairs(sim[:k, :k].detach())
        h, _ = self.fuse.hidden(ids[t_idx], img[i_idx], key_mask=mask[t_idx], causal=False)
        itm = F.cross_entropy(self.itm_head(h[:, 0]), labels)  # the [BOS] position decides
        # MLM: hide some words, predict them from the rest and the image. The stack reads
        # colour words with noise, as the captioner will (see noisy_colours): otherwise it
        # learns "red is never followed by triangle" right here
        read = noisy_colours(ids, self.colour_ids, self.noise)
        special = ids <= self.tok.mask_id  # pad, bos, eos, unk, mask are never chosen
        corrupted, target = mask_tokens(
            ids, special, self.tok.mask_id, len(self.tok), prob=self.mlm_prob
        )
        corrupted = torch.where(target == -100, read, corrupted)  # noise only where unmasked
        logits = self.fuse(corrupted, img, key_mask=mask, causal=False)  # (B, T, V)
        mlm = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100)
        lm = teacher_forcing_loss(self.fuse, ids, mask, img, read=read)  # write the alt-text
        return {"loss": itc + itm + mlm + lm, "itc": itc, "itm": itm, "mlm": mlm, "lm": lm}


class Captioner(nn.Module):
    """An image encoder and a caption decoder; forward(batch) -> {"loss": teacher forcing}.

    Two guards keep the decoder from naming a shape by its colour (training pairs "red" only with
    circles and squares, so "red" would predict "not a triangle"):

    * noise: the share of colour words it reads as a random colour (`noisy_colours`);
    * colour_drop: the share of captions whose image loses its colour tokens (two-pathway
      encoder only). On those the decoder must name each shape from the silhouettes alone, and
      their colour words are read at random and not scored. A shape circuit trained that way
      predicts its words so well that the colour tokens have little left to add.
    """

    def __init__(
        self,
        image: nn.Module,
        decoder: CaptionDecoder,
        colours,
        noise: float = 0.0,
        colour_drop: float = 0.0,
    ):
        super().__init__()
        self.image, self.decoder, self.noise = image, decoder, noise
        if colour_drop and not isinstance(image, TwoPathwayEncoder):
            raise ValueError(f"colour_drop needs a TwoPathwayEncoder, got {type(image).__name__}")
        self.colour_drop = colour_drop
        self.register_buffer("colour_ids", torch.as_tensor(colours), persistent=False)

    @classmethod
    def build(cls, m: ModelConfig, tok: CaptionTokenizer, noise: float = 0.0) -> Captioner:
        """A fresh captioner of shape m (e.g. to load trained weights into)."""
        return cls(image_encoder(m), multimodal_stack(m, len(tok)), colour_ids(tok), noise)

    @classmethod
    def from_pretrainer(cls, pre: Pretrainer, noise: float, colour_drop: float = 0.0) -> Captioner:
        """Copies of stage 1's image encoder and multimodal stack, the latter as the decoder."""
        image, fuse = copy.deepcopy(pre.image), copy.deepcopy(pre.fuse)
        return cls(image, fuse, pre.colour_ids, noise, colour_drop)

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        ids, mask = batch["ids"], batch["mask"]
        if not (self.training and self.colour_drop):
            read = noisy_colours(ids, self.colour_ids, self.noise) if self.training else ids
            image = self.image(batch["image"])
            return {"loss": teacher_forcing_loss(self.decoder, ids, mask, image, read=read)}
        hide = torch.rand(len(ids), device=ids.device) < self.colour_drop  # (B,)
        image = self.image(batch["image"], hide_colour=hide)  # (B, 2*K, D): K cells kept
        noise = torch.where(hide[:, None], 1.0, self.noise)  # (B, 1): hidden rows read at random
        read = noisy_colours(ids, self.colour_ids, noise)
        unscored = hide[:, None] & torch.isin(ids, self.colour_ids)  # (B, T)
        loss = teacher_forcing_loss(self.decoder, ids, mask, image, read=read, unscored=unscored)
        return {"loss": loss}

    @torch.no_grad()
    def caption(self, images: torch.Tensor, beam: int = 1, max_new: int = 24) -> torch.Tensor:
        """Caption ids (B, L) after [BOS] for images (B, 3, S, S)."""
        max_new = min(max_new, self.decoder.max_len - 1)
        return self.decoder.generate(self.image(images), max_new=max_new, beam=beam)
