"""Chapter 10's schematic diagram: LLaVA's recipe on the shapes world (book/diagrams.py lists it
as 10_modern_vlm.svg and draws it with its helpers; see that file's docstring).

The facts drawn come from the package: the sizes of the image side (the encoder's grid and
width, its pathways, the k x k merging and the number of image tokens, from the default
ModelConfig and VLMConfig), the LM's width and depth (LMConfig), the dialogue's words and which
of them the loss reads (llava.encode_dialogues with the LM's tokenizer), the answer
(question_grammar) and the describe instruction of stage 1 (data.corpus.DESCRIBE).
"""

from __future__ import annotations

from diagrams import FONT, INK, PALETTE, Canvas

from minivlm.capstone.config import ModelConfig
from minivlm.data import Obj, Scene, scene_facts
from minivlm.data.corpus import DESCRIBE, lm_tokenizer
from minivlm.data.question_grammar import execute, parse_question
from minivlm.llava import IGNORE, VLMConfig, encode_dialogues
from minivlm.lm import LMConfig

QUESTION = "what colour is the square ?"
SCENE = Scene((Obj("square", "red", "small", 0.28, 0.5), Obj("circle", "blue", "large", 0.72, 0.5)))


def modern_vlm() -> Canvas:
    """Chapter 10: a frozen image encoder, 2 x 2 merging (a block's shape and colour tokens in
    one) and a projector write image tokens that a
    causal LM pretrained on text reads before the words; the loss reads the answer alone; the
    two stages (alignment, instruction tuning) and what learns in each."""
    tok = lm_tokenizer()
    cfg = VLMConfig(ModelConfig(), LMConfig(len(tok)), pair=True)  # the chapter's recipe
    grid, d_img, k, n_img = cfg.vision.grid, cfg.vision.d_model, cfg.merge, cfg.n_image_tokens
    cells, paths = grid * grid, cfg.pathways  # per pathway, before merging
    said = execute(scene_facts(SCENE), parse_question(QUESTION))  # "red"
    ids, mask, answer = encode_dialogues(tok, [QUESTION], [said], cfg.lm.max_len)
    n = int(mask[0].sum())
    words = [tok.tk.id_to_token(i) for i in ids[0, :n].tolist()]  # [BOS] . what … red [EOS]
    reads = answer[0, :n].tolist()  # True on the answer's words and its [EOS]
    ignored = str(IGNORE).replace("-", "−")  # −100, with a minus sign
    c = Canvas(5.7)
    x0, w, gap = 0.72, 0.48, 0.028  # the sequence's cells, in part 2
    x_image = x0 + w + gap + w / 2  # its middle image cell, under the projector
    orange = PALETTE["image"][1]

    # 1 . the image side, in two rows: encoder, then merge and projector back to the left
    c.panel(0.1, 3.65, 4.35, 5.6, f"1 · the picture → {n_img} tokens in the LM's word space")
    pic = c.scene(0.22, 4.5, 0.8, [(o.shape, o.color, o.x, o.y) for o in SCENE.objects], grid)
    enc = c.box(1.8, 4.9, 1.36, 0.8, f"chapter 8's, frozen:\ntwo pathways\nof {grid} × {grid}"
                " cells", title="encoder ❄", kind="image")  # fmt: skip
    c.link(pic, enc)
    shape = c.box(3.42, 5.1, 1.4, 0.34, f"{cells} shape tokens", kind="image")
    colour = c.box(3.42, 4.7, 1.4, 0.34, f"{cells} colour tokens", kind="image")
    c.arrow(enc.at("right", 0.2), shape.left)
    c.arrow(enc.at("right", -0.2), colour.left)
    merge = c.box(3.42, 4.0, 1.6, 0.56, f"{n_img} tokens of {paths * k * k} × {d_img}:\n"
                  "shapes + colours", title=f"merge {k} × {k}")  # fmt: skip
    c.link(colour, merge)
    side = merge.x + merge.w / 2 + 0.12  # the shape tokens join the colour tokens in one
    c.path([shape.right, (side, shape.y), (side, merge.y), merge.right])
    proj = c.box(x_image, 4.0, 1.75, 0.56, "Linear, GELU, Linear;\nlearns in both stages",
                 title=f"projector → {cfg.lm.d_model}", kind="fused")  # fmt: skip
    c.link(merge, proj)

    # 3 . the two stages (llava_train), beside the image side
    c.panel(4.45, 3.65, 7.4, 5.6, "3 · two stages (llava_train)")
    c.box(5.925, 4.88, 2.75, 0.66, f"“{DESCRIBE}” → its caption;\nlearns: the projector alone",
          title="stage 1 · alignment", kind="out")  # fmt: skip
    c.box(5.925, 4.1, 2.75, 0.66, "chapter 9's questions + describe;\nlearns: projector + LM",
          title="stage 2 · instruction tuning", kind="out")  # fmt: skip

    # 2 . the language model: the image tokens first, then the words; targets shifted by one
    c.panel(0.1, 0.1, 7.4, 3.55)
    c.label(2.2, 3.38, "2 · the causal LM reads the image tokens, then the words", size=FONT,
            ha="left", color=INK, weight="bold")  # fmt: skip
    image = ["v1", "…", f"v{n_img}"]
    kinds = ["image"] * len(image) + ["out" if r else "text" for r in reads]  # the answer: green
    row = c.cells(x0, 2.98, image + words, kinds, w=w, gap=gap)
    c.arrow(proj.bottom, (proj.x, row[0].y + row[0].h / 2), color=orange)
    c.label(0.4, 2.98, "input")
    lm = c.box(4.0, 2.25, 6.6, 0.72, f"{cfg.lm.n_layers} pre-LN blocks, D = {cfg.lm.d_model}: "
               "each position sees the image tokens and the words before it\n"
               "pretrained on shapes-world text alone; frozen in stage 1, learns in stage 2",
               title="CausalLM (minivlm.lm)", kind="text")  # fmt: skip
    for cell in row[:-1]:  # the LM reads ids[:, :-1]: [EOS] is a target, never an input
        c.arrow(cell.bottom, (cell.x, lm.y + lm.h / 2))
    # position i predicts word i + 1, the answer's words only; [EOS] predicts nothing
    targets = [ignored] * len(image) + [
        nxt if r else ignored for nxt, r in zip(words[1:], reads[1:], strict=True)
    ]
    kinds = ["pad"] * len(image) + ["out" if r else "pad" for r in reads[1:]]
    out = c.cells(x0, 1.5, targets, kinds, w=w, gap=gap)
    for cell in out:
        c.arrow((cell.x, lm.y - lm.h / 2), cell.top)
    c.label(0.4, 1.5, "target")

    kept = [cell for cell, kind in zip(out, kinds, strict=True) if kind == "out"]
    loss = c.box(5.6, 0.62, 3.3, 0.62, f"cross-entropy, ignore_index = {ignored}:\n"
                 "the mean −log p of the answer's tokens", title="answer_loss",
                 kind="loss")  # fmt: skip
    for cell in kept:
        c.arrow(cell.bottom, loss.at("top", cell.x - loss.x))
    c.label(2.05, 0.62, f"green: the answer, the loss's only targets.\n{ignored}: skipped. The "
            "image tokens have no\nword to predict; the prompt's words are given")  # fmt: skip
    return c
