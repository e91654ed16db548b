"""Command line: `python -m minivlm capstone --preset ci|cpu|gpu|lowcap` (chapter 8)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from .capstone import PRESETS, preset, results_table, run

    parser = argparse.ArgumentParser(prog="python -m minivlm")
    sub = parser.add_subparsers(dest="command", required=True)
    cap = sub.add_parser("capstone", help="pretrain on alt-text, then train a captioner")
    cap.add_argument("--preset", choices=tuple(PRESETS), default="cpu")
    cap.add_argument("--out", default="runs/capstone", help="checkpoints, logs, results.json")
    cap.add_argument("--seed", type=int, default=None)
    cap.add_argument("--device", default=None, help="override the preset's device (cpu, cuda)")
    cap.add_argument("--compile", action="store_true", help="torch.compile the models")
    cap.add_argument("--no-pretrain", action="store_true", help="skip stage 1 (the ablation)")
    cap.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE",
        help="override any CapstoneConfig field, e.g. --set caption_steps=500",
    )  # fmt: skip
    args = parser.parse_args(argv)

    overrides: dict = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or key not in PRESETS[args.preset].__dataclass_fields__:
            parser.error(f"--set expects FIELD=VALUE with a CapstoneConfig field, got {item!r}")
        try:
            overrides[key] = json.loads(value)  # numbers, true/false, lists
        except json.JSONDecodeError:
            overrides[key] = value  # a plain string, e.g. --set device=cuda
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.device:
        overrides["device"] = args.device
    if args.compile:
        overrides["compile"] = True
    cfg = preset(args.preset, **overrides)
    out = Path(args.out) / f"{cfg.name}-seed{cfg.seed}{'-scratch' if args.no_pretrain else ''}"
    print(f"capstone preset {cfg.name!r}, seed {cfg.seed}, device {cfg.device}; writing {out}")
    results = run(cfg, out_dir=out, pretrain=not args.no_pretrain)
    print()
    print(results_table([(f"{cfg.name} seed {cfg.seed}", results)]))
    print(f"\ntotal wall time {results['time']['total']:.0f} s; results in {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
