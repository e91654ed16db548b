"""Largest absolute differences between minivlm and each reference implementation (issue 4, 5).

Prints one line per reference: the same weights in both, the same inputs (with padding), and
the largest |ours - reference| over the outputs that carry meaning (real tokens). Writes
bench/results/parity.json: one row {reference, max_abs_diff} per line printed.

Run: python bench/parity.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import command, write_results  # noqa: E402
from minivlm.attention import MultiHeadAttention, scaled_dot_product_attention  # noqa: E402
from minivlm.transformer import Encoder, EncoderBlock, load_minilm, minilm_folder  # noqa: E402
from minivlm.vision import ViT  # noqa: E402


def main() -> None:
    torch.manual_seed(0)
    rows = []
    x = torch.randn(4, 12, 64)
    keep = torch.ones(4, 12, dtype=torch.bool)
    keep[1, 8:] = False
    keep[3, 5:] = False

    ref = nn.MultiheadAttention(64, 8, batch_first=True).eval()
    ours = MultiHeadAttention(64, 8).eval().load_from_torch(ref)
    with torch.no_grad():
        for fast in (False, True):
            ours.fast = fast
            a = ours(x, key_mask=keep)[0]
            b = ref(x, x, x, key_padding_mask=~keep)[0]
            rows.append((f"nn.MultiheadAttention (fast={fast})", (a - b).abs().max()))
            a = ours(x, causal=True)[0]
            b = ref(x, x, x, attn_mask=~torch.tril(torch.ones(12, 12, dtype=torch.bool)))[0]
            rows.append((f"nn.MultiheadAttention causal (fast={fast})", (a - b).abs().max()))

    q, k, v = (torch.randn(4, 8, 12, 16) for _ in range(3))
    mask = keep[:, None, None, :]
    ours_out = scaled_dot_product_attention(q, k, v, mask)[0]
    ref_out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    rows.append(("F.scaled_dot_product_attention", (ours_out - ref_out).abs().max()))

    for norm_first in (False, True):
        layer = nn.TransformerEncoderLayer(
            64, 8, 256, 0.0, "gelu", batch_first=True, norm_first=norm_first
        )
        block = EncoderBlock(64, 8, 256, norm_first=norm_first).load_from_torch(layer.eval()).eval()
        stack_ref = nn.TransformerEncoder(layer, 3, norm=nn.LayerNorm(64) if norm_first else None,
                                          enable_nested_tensor=False).eval()  # fmt: skip
        stack = Encoder(3, 64, 8, 256, norm_first=norm_first).load_from_torch(stack_ref).eval()
        with torch.no_grad():
            d1 = (
                (block(x, key_mask=keep)[0] - layer(x, src_key_padding_mask=~keep))[keep]
                .abs()
                .max()
            )
            d2 = (
                (stack(x, key_mask=keep)[0] - stack_ref(x, src_key_padding_mask=~keep))[keep]
                .abs()
                .max()
            )
        rows.append((f"nn.TransformerEncoderLayer (norm_first={norm_first})", d1))
        rows.append((f"nn.TransformerEncoder x3 (norm_first={norm_first})", d2))

    from transformers import BertModel
    from transformers.utils import logging

    logging.disable_progress_bar()
    bert, tok = load_minilm()
    hf = BertModel.from_pretrained(str(minilm_folder())).eval()
    sentences = [
        "a small red circle left of a large blue square",
        "Hi!",
        "The quick brown fox jumps over the lazy dog, then falls asleep under a tree.",
    ]
    ids, m = tok(sentences)
    with torch.no_grad():
        d = (
            (bert(ids, m) - hf(input_ids=ids, attention_mask=m.long()).last_hidden_state)[m]
            .abs()
            .max()
        )
    rows.append(("transformers BertModel, real MiniLM weights (float32, real tokens)", d))

    from torchvision.models import vit_b_16

    tv = vit_b_16(weights=None).eval()
    nn.init.normal_(tv.heads.head.weight, std=0.02)
    vit = ViT.from_torchvision(tv).eval()
    img = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        rows.append(
            ("torchvision vit_b_16 (logits, random weights)", (vit(img) - tv(img)).abs().max())
        )

    width = max(len(name) for name, _ in rows)
    for name, diff in rows:
        print(f"{name:<{width}}  max |diff| = {float(diff):.2e}")
    results = [{"reference": name, "max_abs_diff": float(diff)} for name, diff in rows]
    write_results("parity", command("parity.py"), results)


if __name__ == "__main__":
    main()
