"""The report's sections on the tasks beyond captioning (bench/report.py): chapter 9's question
answerers (bench/vqa.py) and chapter 10's language model pretrained on text (bench/lm.py).

Each section reads one results file and is left out while that file does not exist yet.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.tables import ms, span, table

VQA_KINDS = ("exist", "count", "query", "relation", "compare")
VQA_ARMS = {  # the answerer's key in vqa.json -> how the table names it
    "blind rate": "the most common answer of each template (no model)",
    "blind": "BlindVQA: the question alone",
    "reader": "NSReader: caption, parse, execute",
    "short": "ClassifierVQA (glimpse), shorter budget",
    "full": "ClassifierVQA (glimpse), full budget",
}


def _share(scores: dict, kind: str) -> str:
    """One accuracy, or a dash where the split asks no question of that kind."""
    return f"{scores[kind]:.2f}" if kind in scores else "–"


def _source(r: dict) -> str:
    threads = f"{r['threads']} thread" + ("s" if r["threads"] > 1 else "")
    return f"`{r['command']}` ({r['machine']}, {threads}, torch {r['torch']})"


def vqa_section(r: dict) -> str:
    arms: dict[str, list[dict]] = {}
    for row in r["results"]:
        arms.setdefault(row["answerer"], []).append(row)
    rows = []
    for key, name in VQA_ARMS.items():
        runs = arms.get(key)
        if not runs:
            continue
        seconds = span(x["train_seconds"] for x in runs) if "train_seconds" in runs[0] else "–"
        rows.append([
            name, ms(x["test"]["all"] for x in runs), ms(x["comp"]["all"] for x in runs),
            *(ms((x["test"][k] for x in runs), 2) for k in VQA_KINDS), seconds,
        ])  # fmt: skip
    return "\n\n".join([
        "## Visual question answering (chapter 9)",
        f"{_source(r)}, seeds {', '.join(map(str, r['seeds']))}: accuracy on the questions of "
        "held-out scenes, all kinds and per kind, and on the compositional split. The glimpse "
        "classifier and the reader start from a quick-preset captioner, whose training is "
        "counted in their seconds.",
        table(["answerer", "held-out", "compositional", *VQA_KINDS, "training (s)"], rows),
    ])  # fmt: skip


LM_KINDS = ("describe", "colour", "shape", "size", "count", "exist", "relation", "compare", "all")


def lm_section(r: dict) -> str:
    def name(x: dict) -> str:
        return "names every pair" if x["name_held_out"] else "never names a held-out pair"

    curve = [
        [name(x), " → ".join(f"{p:.2f}" for _, p in x["curve"]), f"{x['pair_ppl']:.2f}",
         f"{x['train_seconds']:.0f}"] for x in r["results"]
    ]  # fmt: skip
    scores = [[name(x), split, *(_share(x[split], k) for k in LM_KINDS)]
              for x in r["results"] for split in ("test", "comp")]  # fmt: skip
    steps = r["results"][0]["curve"]
    return "\n\n".join([
        "## A language model pretrained on text alone (chapter 10)",
        f"{_source(r)}: held-out perplexity at steps {', '.join(str(s) for s, _ in steps)}, "
        "and the perplexity of texts that name a held-out colour-shape pair.",
        table(["corpus", "perplexity over training", "held-out pairs", "training (s)"], curve),
        "Given the true caption as text, what the model answers by greedy decoding, per kind "
        "(\"describe\": the caption copied back exactly).",
        table(["corpus", "split", *LM_KINDS], scores),
    ])  # fmt: skip


def tasks_sections(load: Callable[[str], dict | None]) -> str:
    parts = [(load("vqa"), vqa_section), (load("lm"), lm_section)]
    return "\n\n".join(section(r) for r, section in parts if r is not None)
