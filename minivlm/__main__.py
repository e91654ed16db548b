"""The command line (chapter 8).

    python -m minivlm capstone [--preset ci|cpu|gpu|lowcap|coco] [--data coco:DIR] [--set F=V]
    python -m minivlm caption RUN_DIR [IMAGE ...] [--scene TEXT] [--attention FILE.png]
    python -m minivlm ask RUN_DIR IMAGE "question" [...]   (or: ask RUN_DIR --scene TEXT "q")

Bad input ends in one line, `error: <field>: expected ..., got ...`, with exit status 2, before
anything is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import InputError


class Parser(argparse.ArgumentParser):
    """argparse, whose errors are one line in the course's form, and exit status 2."""

    def error(self, message: str):
        raise InputError("arguments", f"the usage of `{self.prog}` (see --help)", message)


def parse_sets(items: list[str]) -> dict:
    """--set FIELD=VALUE items -> {field: value}; values are JSON (numbers, true, lists) or
    else plain strings."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError("--set", "FIELD=VALUE, e.g. --set caption_steps=500", repr(item))
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value  # a plain string, e.g. --set encoder=cnn
    return out


def capstone(args) -> int:
    from dataclasses import replace

    from .capstone import CocoData, override, preset, results_table, run, scratch
    from .capstone.pipeline import resolve_device

    name = args.preset or ("coco" if args.data.startswith("coco:") else "cpu")
    cfg = preset(name)
    if args.data != "shapes":
        kind, _, root = args.data.partition(":")
        if kind != "coco" or not root:
            raise InputError("--data", "shapes or coco:DIR", repr(args.data))
        cfg = replace(cfg, data=CocoData(root=root))
    values = parse_sets(args.set)
    for flag in ("seed", "device"):
        if getattr(args, flag) is not None:
            values[flag] = getattr(args, flag)
    if args.compile:
        values["compile"] = True
    cfg = override(cfg, **values)
    if args.no_pretrain:
        cfg = scratch(cfg, cfg.schedule.caption_steps)
    out = Path(args.out)
    for p in (out, *out.parents):
        if p.exists() and not p.is_dir():
            raise InputError("out", "a folder for the runs", f"{p}, which is a file")
    out = out / f"{cfg.name}-seed{cfg.seed}"
    device = resolve_device(cfg)
    print(f"capstone preset {cfg.name!r}, seed {cfg.seed}, device {device}; writing {out}")
    result, _ = run(cfg, out_dir=out)
    print()
    print(results_table([(f"{cfg.name} seed {cfg.seed}", result)]))
    print(f"\ntraining {result.train_seconds:.0f} s; results in {out / 'results.json'}")
    return 0


def caption(args) -> int:
    import numpy as np

    from .capstone import load_captioner
    from .data.images import load_image

    if not args.images and not args.scene:
        raise InputError("caption", "IMAGE files or --scene TEXT", "neither")
    cap = load_captioner(args.run_dir)
    images = [load_image(p, cap.size) for p in args.images]  # (S, S, 3) uint8 each
    said = cap.caption(np.stack(images)) if images else []
    pictures = list(zip(args.images, said, strict=True))
    if images and cap.config.shapes:
        print("note: this model knows only the shapes world; it describes any photo as shapes")
    for text in args.scene or []:
        said, image = cap.caption_scene(text)
        pictures.append((f"scene {text!r}", said))
        images.append(image)
    for what, said in pictures:
        print(f"{what}: {said}")
    if args.attention:
        target = Path(args.attention)
        for i, image in enumerate(images):
            path = target if len(images) == 1 else target.with_stem(f"{target.stem}-{i}")
            cap.save_attention(image, path)
            print(f"attention per word: {path}")
    return 0


def ask(args) -> int:
    """Answer questions about one picture (chapters 9 and 10), with the answerer saved in
    RUN_DIR: a VQA run, a capstone run (whose captioner answers as the neuro-symbolic reader),
    or a chapter 10 run, which can also "describe the image"."""
    from .capstone.use import render_text
    from .data.images import load_image
    from .llava import PrefixVLM, instruction
    from .llava import ask as vlm_ask
    from .vqa import answer
    from .vqa_runs import load_answerer

    image_file, questions = (None, args.items) if args.scene else (args.items[0], args.items[1:])
    if not questions:
        raise InputError("ask", 'IMAGE then one or more questions, e.g. "is there a red circle?"',
                         "no question")  # fmt: skip
    for q in questions:  # a malformed question fails before the model is loaded
        instruction(q)  # a question of chapter 9's grammar, or "describe the image"
    model = load_answerer(args.run_dir)
    reply = vlm_ask if isinstance(model, PrefixVLM) else answer
    if args.scene:
        picture = render_text(args.scene, model.image_size)  # (S, S, 3) uint8
    else:
        picture = load_image(image_file, model.image_size)  # (S, S, 3) uint8
    for q in questions:
        print(f"{q} {reply(model, picture, q)}")
    return 0


def build_parser() -> Parser:
    parser = Parser(prog="python -m minivlm")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    cap = sub.add_parser("capstone", help="pretrain on alt-text, then train a captioner")
    cap.add_argument("--preset", default=None, help="ci, quick, cpu (default), gpu, lowcap or coco")
    cap.add_argument("--data", default="shapes", help="shapes (default) or coco:DIR")
    cap.add_argument("--out", default="runs/capstone", help="checkpoints, logs, results.json")
    cap.add_argument("--seed", type=int, default=None)
    cap.add_argument("--device", default=None, help="auto (default), cpu, cuda, mps")
    cap.add_argument("--compile", action="store_true", help="torch.compile the models")
    cap.add_argument("--no-pretrain", action="store_true", help="no stage 1 (the ablation)")
    cap.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE",
        help="override any config field, e.g. --set caption_steps=500 --set encoder=cnn",
    )  # fmt: skip
    use = sub.add_parser("caption", help="caption pictures or a scene with a trained captioner")
    use.add_argument("run_dir", help="a finished capstone run, e.g. runs/capstone/cpu-seed0")
    use.add_argument("images", nargs="*", help="PNG or JPEG files, any size")
    use.add_argument("--scene", action="append", help="a scene to draw and caption, in words")
    use.add_argument("--attention", help="save each word's attention map to this PNG")
    qa = sub.add_parser("ask", help="answer questions about a picture (chapters 9 and 10)")
    qa.add_argument("run_dir", help="a VQA run, a finished capstone run or a chapter 10 run")
    qa.add_argument("items", nargs="+", metavar="IMAGE QUESTION", help="a picture, then questions")
    qa.add_argument("--scene", help="draw this scene (in words) instead of reading IMAGE")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "capstone" and args.preset is not None:
            from .capstone import PRESETS

            if args.preset not in PRESETS:
                raise InputError("--preset", f"one of {', '.join(PRESETS)}", repr(args.preset))
        commands = {"capstone": capstone, "caption": caption, "ask": ask}
        return commands[args.command](args)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
