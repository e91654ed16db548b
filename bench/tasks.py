"""The report's sections on the tasks beyond captioning (bench/report.py): chapter 9's question
answerers (bench/vqa.py), chapter 10's language model pretrained on text (bench/lm.py) and its
prefix VLM, the modern recipe (bench/llava.py).

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
    "scratch": "ClassifierVQA (glimpse) from random weights, full budget",
    "stack": "ClassifierVQA (multimodal stack, mean over words), full budget",
    "generative": "GenerativeVQA: the decoder writes the answer, full budget",
}


def _share(scores: dict, kind: str) -> str:
    """One accuracy, or a dash where the split asks no question of that kind."""
    return f"{scores[kind]:.2f}" if kind in scores else "–"


def _source(r: dict) -> str:
    threads = f"{r['threads']} thread" + ("s" if r["threads"] > 1 else "")
    return f"`{r['command']}` ({r['machine']}, {threads}, torch {r['torch']})"


def seeds_of(runs: list[dict]) -> str:
    return ", ".join(str(x["seed"]) for x in runs)


def curve_table(arms: dict[str, list[dict]]) -> str | None:
    """Pretraining against scratch over the number of labelled scenes (rows curve/<arm>/<N>)."""
    ns = sorted({int(k.rsplit("/", 1)[1]) for k in arms if k.startswith("curve/")})
    if not ns:
        return None
    rows = []
    for n in ns:
        cells = []
        for arm in ("pretrained", "scratch"):
            runs = arms.get(f"curve/{arm}/{n}", [])
            cells += [ms(x[s]["all"] for x in runs) if runs else "–" for s in ("test", "comp")]
        runs = arms.get(f"curve/pretrained/{n}") or arms[f"curve/scratch/{n}"]
        rows.append([f"{n:,}", f"{5 * n:,}", *cells, seeds_of(runs)])
    return table(["scenes", "questions", "from the captioner: held-out", "compositional",
                  "from scratch: held-out", "compositional", "seeds"], rows)  # fmt: skip


def _sources(r: dict) -> str:
    """Every command whose rows the file holds (each row gives its seeds)."""
    threads = f"{r['threads']} thread" + ("s" if r["threads"] > 1 else "")
    commands = " and ".join(f"`{c}`" for c in r.get("commands", [r["command"]]))
    return f"{commands} ({r['machine']}, {threads}, torch {r['torch']})"


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
            *(ms((x["test"][k] for x in runs), 2) for k in VQA_KINDS), seconds, seeds_of(runs),
        ])  # fmt: skip
    curve = curve_table(arms)
    budget = next((x["budget_s"] for k, v in arms.items() if k.startswith("curve/") for x in v), 0)
    return "\n\n".join([
        "## Visual question answering (chapter 9)",
        f"{_sources(r)}: accuracy on the questions of "
        "held-out scenes, all kinds and per kind, and on the compositional split. The glimpse "
        "classifier and the reader start from a quick-preset captioner, whose training is "
        "counted in their seconds.",
        table(["answerer", "held-out", "compositional", *VQA_KINDS, "training (s)", "seeds"],
              rows),
        *([f"**Pretraining against scratch, over the number of labelled questions.** The glimpse "
           f"classifier from the captioner and from random weights, each for {budget:.0f} s of "
           "wall time (the captioner's training counted in the first), trained on the first N "
           "scenes' questions; accuracy held out and compositional.", curve] if curve else []),
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


LLAVA_ARMS = {  # the arm's key in llava.json -> how the table names it
    "main": "MLP projector on paired cells, stage 1, then stage 2 with the LM unfrozen",
    "no_stage1": "no stage 1 (its seconds go to stage 2)",
    "frozen": "stage 2 with the LM frozen",
    "last1": "stage 2 with the LM's last block unfrozen",
    "linear": "a linear projector",
    "unpaired": "a cell's shape and colour in two tokens (32 tokens)",
    "unnamed": "an LM whose text never names a held-out pair",
    "glimpse": "chapter 9's glimpse classifier, meant for the same seconds",
}


def llava_section(r: dict) -> str:
    arms: dict[str, list[dict]] = {}
    for row in r["results"]:
        arms.setdefault(row["arm"], []).append(row)
    rows = []
    for key, name in LLAVA_ARMS.items():
        runs = arms.get(key)
        if not runs:
            continue
        describe = [
            ms(x[s]["describe"] for x in runs) if "describe" in runs[0][s] else "–"
            for s in ("test", "comp")
        ]
        rows.append([
            name, ms(x["test"]["all"] for x in runs), describe[0],
            ms(x["comp"]["all"] for x in runs), describe[1],
            *(ms((x["test"][k] for x in runs), 2) for k in VQA_KINDS),
            span(x["train_seconds"] for x in runs),
            ", ".join(sorted({str(x.get("threads", r["threads"])) for x in runs})), seeds_of(runs),
        ])  # fmt: skip
    main = arms.get("main", [{}])[0]
    parts = ", ".join(f"{k} {v:.0f} s" for k, v in main.get("seconds", {}).items())
    return "\n\n".join([
        "## The modern recipe: a frozen encoder, a projector, a pretrained LM (chapter 10)",
        f"{_sources(r)}: accuracy on chapter 9's questions of held-out scenes, all kinds and "
        "per kind, and on the compositional split; \"describe\": caption exact match for "
        "\"describe the image .\". For each seed, a run trains one quick-preset captioner (the "
        "encoder) and one language model, shared by its arms, and every arm's seconds count them"
        + (f" (seed {main['seed']} of the main arm: {parts})" if parts else "") + ".",
        table(["recipe", "held-out", "describe", "compositional", "describe (comp)",
               *VQA_KINDS, "training (s)", "threads", "seeds"], rows),
    ])  # fmt: skip


def tasks_sections(load: Callable[[str], dict | None]) -> str:
    parts = [(load("vqa"), vqa_section), (load("lm"), lm_section), (load("llava"), llava_section)]
    return "\n\n".join(section(r) for r, section in parts if r is not None)
