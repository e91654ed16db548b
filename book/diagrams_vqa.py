"""Chapter 9's schematic diagram: one picture and one question, four answerers (book/diagrams.py
lists it as 09_vqa.svg and draws it with its helpers; see that file's docstring).

The facts drawn come from the package: the question's program and its answer (question_grammar),
the answers and their types (vqa.ANSWER_TYPES), the number of glimpses (vqa.GLIMPSES), the
caption a perfect captioner would write of the picture and what chapter 1's parser reads in it.
"""

from __future__ import annotations

from diagrams import FONT, INK, PALETTE, Box, Canvas, Point

from minivlm.data import Obj, Scene, caption, parse, scene_facts
from minivlm.data.question_grammar import ANSWERS, desc_text, execute, parse_question
from minivlm.vqa import ANSWER_TYPES, GLIMPSES

QUESTION = "is the blue triangle above the green circle ?"
SCENE = Scene(
    (Obj("triangle", "blue", "small", 0.5, 0.27), Obj("circle", "green", "large", 0.5, 0.72))
)


def _wrap(words: str, width: int) -> str:
    """Words on lines of at most `width` characters."""
    lines: list[str] = []
    for w in words.split():
        if lines and len(lines[-1]) + 1 + len(w) <= width:
            lines[-1] += " " + w
        else:
            lines.append(w)
    return "\n".join(lines)


def vqa() -> Canvas:
    """Chapter 9: the blind prior, the glimpse classifier, the generative decoder (BLIP) and the
    neuro-symbolic reader (NS-VQA), each from the same picture and question to one word."""
    program = parse_question(QUESTION)
    said = execute(scene_facts(SCENE), program)  # the right answer, which every route is after
    written = caption(SCENE)  # what the reader's captioner writes when it is right
    facts = parse(written)
    a, b = (desc_text(r.desc) for r in program.refs)
    c = Canvas(6.5)
    orange, blue, grey = PALETTE["image"][1], PALETTE["text"][1], PALETTE["pad"][1]

    # the inputs, shared by the four rows; each row's arrows start at the band's right edge
    edge, x0, x1 = 1.2, 1.3, 7.4  # the band's edge; the rows' panels
    c.panel(0.1, 0.1, edge, 6.4)
    c.label(0.65, 6.17, "one picture,\none question", size=FONT, color=INK, weight="bold")
    pic = c.scene(0.25, 4.8, 0.8, [(o.shape, o.color, o.x, o.y) for o in SCENE.objects])
    c.label(pic.x, 4.63, "the picture")
    c.box(0.65, 3.5, 1.04, 1.1, _wrap(f"“{QUESTION}”", 14), kind="text")
    types = "\n".join(
        ", ".join(ws) if len(ws) <= 2 else f"{ws[0]} … {ws[-1]}" if name == "count"
        else f"{len(ws)} {name.replace('color', 'colour')}s"
        for name, ws in ANSWER_TYPES.items()
    )  # fmt: skip
    c.box(0.65, 1.25, 1.04, 1.3, types, title=f"{len(ANSWERS)} answers,\n{len(ANSWER_TYPES)} types",
          kind="out")  # fmt: skip

    def feed(y: float, end: Point, colour: str, dashed: bool = False) -> None:
        c.arrow((edge, y), end, color=colour, dashed=dashed)

    # every row ends in the same two columns: its last step, then the one answer word
    xf, wf, xa, wa = 6.2, 1.02, 7.08, 0.4

    def ending(y: float, h: float, text: str, title: str) -> Box:
        last = c.box(xf, y, wf, h, text, title=title, kind="out")
        c.link(last, c.box(xa, y, wa, 0.4, "", title=said, kind="out"))
        return last

    masked = f"{len(ANSWERS)} answers,\nonly yes/no"  # the question's type masks the rest

    # 1 . BlindVQA: the question alone
    c.panel(x0, 5.2, x1, 6.4, "1 · BlindVQA: the language prior")
    y = 5.5
    feed(5.92, (1.6, 5.92), grey, dashed=True)
    c.label(1.65, 5.92, "✗ the image is not used", ha="left", style="italic")
    enc = c.box(2.03, y, 1.25, 0.52, "over the words", title="Transformer", kind="text")
    mean = c.box(3.4, y, 1.1, 0.52, "over the words", title="mean", kind="text")
    head = c.box(4.85, y, 1.3, 0.52, "a logit an answer", title="MLP head")
    feed(y, enc.left, blue)
    c.link(enc, mean)
    c.link(mean, head)
    c.link(head, ending(y, 0.56, masked, "softmax"))

    # 2 . ClassifierVQA with glimpse fusion
    c.panel(x0, 3.2, x1, 5.1, "2 · ClassifierVQA, glimpse fusion: the chapter's end-to-end model")
    yu, yl, ym = 4.25, 3.52, 3.885
    img = c.box(2.03, yu, 1.25, 0.7, "the captioner's:\na token a cell,\nshape + colour",
                title="encoder", kind="image")  # fmt: skip
    txt = c.box(2.03, yl, 1.25, 0.52, "over the words", title="Transformer", kind="text")
    feed(yu, img.left, orange)
    feed(yl, txt.left, blue)
    look = c.box(3.85, yu, 1.75, 0.84, "queries pool the words\n"
                 f"into {GLIMPSES} requests; each\npicks a cell by softmax:\nits token and (x, y)",
                 title=f"{GLIMPSES} glimpses", kind="fused")  # fmt: skip
    check = c.box(3.85, yl, 1.75, 0.52, "cell ⊙ question, MLP;\nmean and max pooled",
                  title="check each cell", kind="fused")  # fmt: skip
    c.link(img, look)
    c.link(txt, check)
    c.arrow(img.at("right", -0.22), check.at("left", 0.14), color=orange)
    c.arrow(txt.at("right", 0.14), look.at("left", -0.25), color=blue)
    cat = c.box(5.2, ym, 0.6, 1.0, "concat\n→\nMLP", kind="fused")
    c.arrow(look.right, cat.at("left", 0.25))
    c.arrow(check.right, cat.at("left", -0.25))
    c.link(cat, ending(ym, 0.56, masked, "softmax"))

    # 3 . GenerativeVQA: the captioner's decoder writes the word
    c.panel(x0, 1.8, x1, 3.1, "3 · GenerativeVQA: the captioner writes the answer (BLIP)")
    yu, yl, ym = 2.545, 2.105, 2.325
    img = c.box(2.03, yu, 1.25, 0.36, "image encoder", kind="image")
    ids = c.box(2.03, yl, 1.25, 0.36, "[BOS] is the … ?", kind="text")
    feed(yu, img.left, orange)
    feed(yl, ids.left, blue)
    dec = c.box(4.2, ym, 2.6, 0.8, "reads the words causally,\ncross-attends to the image",
                title="the captioner's decoder", kind="fused")  # fmt: skip
    c.arrow(img.right, dec.at("left", 0.22))
    c.arrow(ids.right, dec.at("left", -0.22))
    c.link(dec, ending(ym, 0.8, "next word,\nover the whole\nvocabulary", "softmax"))

    # 4 . NSReader: every step can be read
    c.panel(x0, 0.1, x1, 1.7, "4 · NSReader: caption → facts → program (NS-VQA)")
    yu, yl, ym = 1.0, 0.38, 0.69
    cap = c.box(1.87, yu, 0.92, 0.5, "writes", title="captioner", kind="fused")
    text = c.box(3.17, yu, 1.3, 0.72, _wrap(f"“{written}”", 19), kind="text")
    first, second = (", ".join(o) for o in facts.objects)
    read = c.box(4.75, yu, 1.5, 0.72, f"{first}\n{facts.relation}\n{second}", title="parse()")
    prog = c.box(3.45, yl, 4.1, 0.44, f"{program.kind}({a}, {program.phrase}, {b})",
                 title="parse_question() → program", kind="text")  # fmt: skip
    feed(yu, cap.left, orange)
    feed(yl, prog.left, blue)
    c.link(cap, text)
    c.link(text, read)
    last = ending(ym, 0.9, "facts +\nprogram\n→ answer", "execute()")
    c.arrow(read.right, last.at("left", yu - ym))
    c.arrow(prog.right, last.at("left", yl - ym))
    return c
