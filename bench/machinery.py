"""The report's sections on the course's machinery (bench/report.py): data rendering speed,
parity with reference implementations, attention and decoding speed, torch.compile, and the
share of the CPU's matmul peak that a capstone training step reaches.

Each section reads one file written by its bench script through bench/common.py, and is left
out while that file does not exist yet.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.tables import table


def _source(r: dict) -> str:
    return f"`{r['command']}` ({r['machine']}, {r['threads']} threads, torch {r['torch']})"


def data_section(r: dict) -> str:
    rows = [[f"{x['size']} px", f"{x['images_per_s']:,.0f}"] for x in r["results"]]
    return "\n\n".join([
        "### Rendering the shapes world (chapter 1)",
        f"{_source(r)}, {r['cores']} core pinned: the median of {r['repeats']} batches of "
        f"{r['images']:,} images.",
        table(["image size", "images per second"], rows),
    ])  # fmt: skip


def parity_section(r: dict) -> str:
    rows = [[x["reference"], f"{x['max_abs_diff']:.1e}"] for x in r["results"]]
    return "\n\n".join([
        "### Proofs against reference implementations",
        f"{_source(r)}: the same weights in minivlm and in each reference, float32; the largest "
        "absolute difference of the outputs. The tests assert the same comparisons.",
        table(["reference", "max abs difference"], rows),
    ])  # fmt: skip


def attention_section(r: dict) -> str:
    rows = [[f"{x['size']}: ({x['batch']}, {x['tokens']}, {x['d_model']}) × {x['layers']}",
             f"{x['reference_ms']:.1f} ms", f"{x['fast_ms']:.1f} ms", f"{x['fast_ratio']:.2f}x",
             f"{x['scratch_ms']:.1f} ms", f"{x['scratch_ratio']:.2f}x"]
            for x in r["results"]]  # fmt: skip
    return "\n\n".join([
        "### Attention speed (chapters 2 and 3)",
        f"{_source(r)}: forward and backward of a minivlm encoder against "
        "`nn.TransformerEncoder` with the same weights, interleaved in one run; medians. A "
        "ratio below 1 is faster than the reference.",
        table(["size (batch, tokens, width) × layers", "reference", "minivlm fast path",
               "ratio", "from-scratch path", "ratio"], rows),  # fmt: skip
    ])  # fmt: skip


def decode_section(r: dict) -> str:
    runs = sorted({x["run"] for x in r["results"]})
    lengths = sorted({x["length"] for x in r["results"]})
    rows = []
    for batch in sorted({x["batch"] for x in r["results"]}, reverse=True):
        cells = []
        for n in lengths:
            s = [x["speedup"] for x in r["results"] if x["batch"] == batch and x["length"] == n]
            cells.append(" / ".join(f"{v:.1f}x" for v in s))
        rows.append([f"{batch} captions", *cells])
    m = r["model"]
    return "\n\n".join([
        "### The KV cache (chapter 7)",
        f"{_source(r)}: greedy decoding of exactly L words with the cache against recomputing "
        f"the prefix at every step (identical outputs asserted), a decoder of width "
        f"{m['d_model']}, {m['layers']} layers, {m['image_tokens']} image tokens; the speed-up "
        f"of the cache, {len(runs)} run{'s' * (len(runs) > 1)} of the table.",
        table(["batch", *(f"L = {n}" for n in lengths)], rows),
        "With few rows, each step costs about what reading the weights costs, which the cache "
        "does not save.",
    ])  # fmt: skip


def compile_section(r: dict) -> str:
    x = r["results"]
    saving = (x["eager_ms_per_step"] - x["compiled_ms_per_step"]) / 1e3  # seconds a step
    overhead = x["compiled_total_s"] - x["eager_total_s"] + x["steps"] * saving
    verdict = (
        f"Compiling saves {1e3 * saving:.1f} ms a step and costs about {overhead:.0f} s up "
        f"front, so it repays itself only after about {overhead / saving:,.0f} steps; "
        "`--compile` stays opt-in."
        if saving > 0
        else "On this CPU the compiled step is not faster, so `--compile` stays opt-in."
    )
    return "\n\n".join([
        "### torch.compile",
        f"{_source(r)}: {x['steps']} caption steps of the cpu preset, eager and then compiled. "
        f"In all, {x['eager_total_s']:.1f} s eager against {x['compiled_total_s']:.1f} s "
        f"compiled; over the last {x['timed_steps']} steps {x['eager_ms_per_step']:.1f} against "
        f"{x['compiled_ms_per_step']:.1f} ms per step ({x['ratio']:.2f}x). " + verdict,
    ])  # fmt: skip


def throughput_section(r: dict) -> str:
    rows = [[x["stage"], f"{x['gflop_per_step']:.2f}", f"{x['step_ms']:.1f} ms",
             f"{x['gflops']:.1f}", f"{x['peak_gflops']:.1f}", f"{x['share']:.0%}"]
            for x in r["results"]]  # fmt: skip
    cells = [f"{x['stage']}: {x['cells_ms']['kept']:.1f} ms per step reading the kept cells, "
             f"{x['cells_ms']['all']:.1f} ms reading every cell "
             f"({x['cells_ms']['all'] / x['cells_ms']['kept']:.2f}×)"
             for x in r["results"] if "cells_ms" in x]  # fmt: skip
    return "\n\n".join([
        f"### How much of the CPU a training step uses: the {r['preset']} preset (chapter 8)",
        f"{_source(r)}: the floating-point operations of one training step of each stage of the "
        f"{r['preset']} preset, counted by torch's `FlopCounterMode`, over the measured step "
        "time, against the peak of a 1024 × 1024 fp32 matmul timed around that stage.",
        table(["stage", "GFLOP per step", "step", "GFLOP/s", "matmul peak GFLOP/s",
               "share of the peak"], rows),  # fmt: skip
        *(["The encoder keeps only the cells that hold the most object (`keep_cells`); "
           "the same steps, timed in turns: " + "; ".join(cells) + "."] if cells else []),
    ])  # fmt: skip


def budget_section(r: dict) -> str:
    x = r["results"]
    rows = [[name, f"{x['step_ms'][name]['pretrain']:.1f} ms × {x['steps'][name]['pretrain']:,}",
             f"{x['step_ms'][name]['caption']:.1f} ms × {x['steps'][name]['caption']:,}",
             f"{x['seconds_today'][name]:.0f} s"] for name in x["step_ms"]]  # fmt: skip
    return "\n\n".join([
        f"### Chapter 8's time budget, on the day: the {r['preset']} preset",
        f"{_source(r)}: a training step of each stage, timed in turns with the reference run "
        "(the cpu preset cut to 2,400 caption steps), which trained in "
        f"{x['reference_seconds']:.0f} s on the day the budget of {x['budget_seconds']:.0f} s "
        "was set.",
        table(["run", "pretraining steps", "caption steps", "training today"], rows),
        f"The {r['preset']} preset takes {x['ratio']:.2f} of the reference run's time: "
        f"{x['budget_day_seconds']:.0f} s on the budget's day.",
    ])  # fmt: skip


SECTIONS: dict[str, Callable[[dict], str]] = {
    "data": data_section, "parity": parity_section, "attention": attention_section,
    "decode": decode_section, "compile": compile_section, "throughput": throughput_section,
    "throughput_quick": throughput_section, "budget": budget_section,
}  # fmt: skip


def machinery_sections(load: Callable[[str], dict | None]) -> str:
    parts = [make(r) for name, make in SECTIONS.items() if (r := load(name)) is not None]
    return "\n\n".join(["## The machinery", *parts]) if parts else ""
