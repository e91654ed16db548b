"""Every measured figure of the course, rendered from bench/results/*.json.

    python bench/report.py           # writes bench/RESULTS.md and the README's results table
    python bench/report.py --check   # exits 1 if either differs from what this script makes

The bench scripts write the results files; this script only reads them, so the prose that
quotes a figure can never drift from the measurement. The site's Results page
(book/results.md) includes bench/RESULTS.md as it is. tests/test_report.py runs --check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import tables  # noqa: E402
from bench.machinery import machinery_sections  # noqa: E402
from bench.tables import groups, ms, per_seed, span, table  # noqa: E402
from bench.tasks import tasks_sections  # noqa: E402

RESULTS = ROOT / "bench" / "results"
REPORT = ROOT / "bench" / "RESULTS.md"
README = ROOT / "README.md"


def load(name: str) -> dict | None:
    return tables.load(name, RESULTS)  # RESULTS read at call time: the tests point it elsewhere


BEGIN, END = "<!-- results: begin (python bench/report.py) -->", "<!-- results: end -->"


# --- the capstone (bench/capstone.py) -------------------------------------------------------


def exact(rows: list[dict], split: str = "test") -> str:
    return ms(r[split]["exact"] for r in rows)


def headline(db: dict) -> str:
    """Three rows: the main job, the ablation, the low-caption regime."""
    g = groups(db)
    cpu, ci, ci0 = g["cpu/pretrained"], g["ci/pretrained"], g["ci/scratch"]
    low, low0 = g["lowcap100/pretrained"], g["lowcap100/scratch"]
    bench = "python bench/capstone.py --what"
    rows = [
        ["the main job: `make capstone` (cpu preset)", exact(cpu), exact(cpu, "comp"),
         "no caption-only arm", f"`{bench} cpu --seeds 0 1 2`"],
        ["the ablation: the ci preset with and without stage 1", exact(ci), exact(ci, "comp"),
         f"{exact(ci0)} / {exact(ci0, 'comp')}", f"`{bench} ablation --seeds 0 1 2 --threads 1`"],
        ["the low-caption regime: 100 captioned scenes (lowcap preset)", exact(low),
         exact(low, "comp"), f"{exact(low0)} / {exact(low0, 'comp')}",
         f"`{bench} lowcap --lowcap 100 --seeds 0 1 2 --threads 1`"],
    ]  # fmt: skip
    head = ["result (3 seeds)", "held-out exact", "compositional exact",
            "caption-only, same wall time (held-out / comp.)", "command"]  # fmt: skip
    return table(head, rows)


def arm_row(label: str, rows: list[dict]) -> list[str]:
    """One arm of a comparison: its scores, caption steps and training time."""
    return [label, exact(rows), exact(rows, "comp"), span((r["caption_steps"] for r in rows), ","),
            span(r["time"]["train"] for r in rows)]  # fmt: skip


def capstone_section(db: dict) -> str:
    g = groups(db)
    cpu = g["cpu/pretrained"]
    ci, ci0 = g["ci/pretrained"], g["ci/scratch"]
    out = [
        "## The capstone (chapter 8)",
        "Exact match is the share of captions whose parsed facts are all right; held-out scenes "
        "are new scenes of seen colour-shape pairs, the compositional split holds pairs never "
        "seen in training. Means are ± the sample standard deviation over seeds.",
        "### The main job",
        f"`python bench/capstone.py --what cpu --seeds 0 1 2`: the cpu preset that `make "
        f"capstone` runs, {cpu[0]['threads']} threads. Per seed, held-out exact "
        f"{per_seed(cpu, lambda r: r['test']['exact'])} and compositional "
        f"{per_seed(cpu, lambda r: r['comp']['exact'])}.",
        table(
            ["held-out exact", "held-out grounded", "compositional exact", "training (s)"],
            [
                [
                    exact(cpu),
                    ms(r["test"]["grounded"] for r in cpu),
                    exact(cpu, "comp"),
                    span(r["time"]["train"] for r in cpu),
                ]
            ],
        ),  # fmt: skip
        *quick_section(g),
        "### The ablation: what stage 1 buys on the ci preset",
        "`python bench/capstone.py --what ablation --seeds 0 1 2 --threads 1`. The caption-only "
        "arm trains for the wall time of the pretrained arm of the same seed: its caption steps "
        "are that run's training time over its measured caption step time.",
        table(
            ["arm", "held-out exact", "compositional exact", "caption steps", "training (s)"],
            [arm_row("stage 1 + stage 2", ci), arm_row("stage 2 only", ci0)],
        ),
        "With plenty of captions and a short budget, the time stage 1 takes is better spent on "
        "captions. Pretraining pays where captions are scarce, below.",
    ]
    return "\n\n".join([*out, lowcap_section(g), encoders_section(g)])


def quick_section(g: dict) -> list[str]:
    """Chapter 8's own run: the quick preset, over seeds (none until it is measured)."""
    quick = g.get("quick/pretrained")
    if not quick:
        return []
    return [
        "### Chapter 8's own run",
        f"`python bench/capstone.py --what quick --seeds 0 1 2`: the quick preset that chapter 8 "
        f"runs, {quick[0]['threads']} threads. Per seed, held-out exact "
        f"{per_seed(quick, lambda r: r['test']['exact'])} and compositional "
        f"{per_seed(quick, lambda r: r['comp']['exact'])}; training "
        f"{per_seed(quick, lambda r: r['time']['train'], 0)} s. Those seconds are the speed of "
        "the machine on the day of the run; the time budget is judged by the section on chapter "
        "8's time budget below, which times the preset in turns with a fixed reference run.",
        table(
            ["held-out exact", "compositional exact", "caption steps", "training (s)"],
            [
                [
                    exact(quick),
                    exact(quick, "comp"),
                    span((r["caption_steps"] for r in quick), ","),
                    span(r["time"]["train"] for r in quick),
                ]
            ],
        ),  # fmt: skip
    ]


LOWCAP_NS = (100, 250, 1000)


def lowcap_section(g: dict[str, list[dict]]) -> str:
    ns = [n for n in LOWCAP_NS if f"lowcap{n}/pretrained" in g]
    pre = {n: g[f"lowcap{n}/pretrained"] for n in ns}
    cap = {n: g[f"lowcap{n}/scratch"] for n in ns}
    rows = [
        ["pretrained, held-out exact", *(f"**{exact(pre[n])}**" for n in ns)],
        ["caption-only, held-out exact", *(exact(cap[n]) for n in ns)],
        ["pretrained, compositional exact", *(exact(pre[n], "comp") for n in ns)],
        ["caption-only, compositional exact", *(exact(cap[n], "comp") for n in ns)],
        ["pretrained, training (s)", *(span(r["time"]["train"] for r in pre[n]) for n in ns)],
        [
            "caption-only, caption steps",
            *(span((r["caption_steps"] for r in cap[n]), ",") for n in ns),
        ],  # fmt: skip
    ]
    first = pre[ns[0]]
    rounds = first[0]["self_labelled"] or []
    kept = [" / ".join(f"{r['self_labelled'][i]['kept']:,}" for r in first)
            for i in range(len(rounds))]  # fmt: skip
    right = [r2["right"] for r in first for r2 in r["self_labelled"]]
    stage_time = {k: span(r["time"][k] for r in first) for k in ("curated", "label", "selftrain")}
    return "\n\n".join([
        "### The low-caption regime",
        "`python bench/capstone.py --what lowcap --lowcap N --seeds 0 1 2 --threads 1`, N = "
        + ", ".join(map(str, ns)) + ". The lowcap preset: stage 1 on the alt-texts; stage 1b, "
        "the language-model loss on the alt-texts that `curate` keeps (complete sentences whose "
        "contrastive score is in the top half); stage 2 on the N captioned scenes; stage 3, "
        "self-training in rounds, where the captioner labels the alt-text images and "
        "`self_label` keeps a caption only where it names the same sizes, colours and shapes "
        "in the same order as the alt-text and each of its words is in the alt-text, in that "
        "order. The caption-only arm gets the same wall time. The rows at N = 100 ran three "
        "at once on two cores; the others ran on a faster machine, so compare arms within a "
        "column, not times across columns.",
        table(["3 seeds", *(f"N = {n:,}" for n in ns)], rows),
        f"At N = {ns[0]}, stage 3 kept (per seed) {kept[0]} labels in its first round and "
        f"{kept[-1]} in its last ({len(rounds)} rounds); {min(right):.1%} to {max(right):.1%} "
        "of the kept labels were true. Of the training time, stage 1b took "
        f"{stage_time['curated']} s, labelling {stage_time['label']} s and stage 3's training "
        f"{stage_time['selftrain']} s.",
    ])  # fmt: skip


ENCODERS = {"two_pathway": "two-pathway (silhouette CNN + colour MLP)", "cnn": "CNN grid",
            "vit": "ViT patches"}  # fmt: skip


def encoders_section(g: dict[str, list[dict]]) -> str:
    rows = []
    for name, label in ENCODERS.items():
        r = g.get(f"encoders/{name}")
        if not r:
            continue
        rows.append([label, str(len(r)), exact(r), exact(r, "comp"),
                     span((x["pretrain_steps"] for x in r), ","),
                     span((x["caption_steps"] for x in r), ","),
                     span(x["time"]["train"] for x in r)])  # fmt: skip
    if not rows:
        return ""
    times = {n: max(x["time"]["train"] for x in g.get(f"encoders/{n}", [])) for n in ENCODERS}
    base = min(x["time"]["train"] for x in g["encoders/two_pathway"])
    longer = [ENCODERS[n] for n in ("cnn", "vit") if times.get(n, 0) > base]
    note = (
        f"The {' and the '.join(longer)} arms ran while other work shared the machine, so "
        "their steps, fixed from the step times measured before, took longer than planned: "
        "they had more wall time than the two-pathway arm, not less. "
        if longer
        else ""
    )
    rows_text = (
        note + "In these runs, keeping colour and shape in separate tokens is what lets the "
        "decoder name colour-shape pairs it never saw. With one token per cell, the CNN grid "
        "learns the seen pairs (on one seed of two) but names few of the held-out ones, and "
        "the ViT's patches learn little of either within this budget."
    )
    return "\n\n".join(
        [
            "### What the image encoder's inductive bias buys",
            "`python bench/capstone.py --what encoders --seeds 0 1 --threads 1`: the cpu preset "
            "with each image encoder (`--set encoder=...`). Each encoder's steps are the "
            "two-pathway encoder's, scaled by the step times of both measured in the same "
            "process, so every arm trains for about the same wall time.",
            table(
                [
                    "encoder",
                    "seeds",
                    "held-out exact",
                    "compositional exact",
                    "stage 1 steps",
                    "stage 2 steps",
                    "training (s)",
                ],
                rows,
            ),  # fmt: skip
            rows_text,
        ]
    )


def resume_section(r: dict | None) -> str:
    if r is None:
        return ""
    stage = r["stage"]
    resumed = r["steps_run_on_resume"].get(stage)
    return "\n\n".join([
        "### What a kill costs",
        f"`python bench/resume.py --preset {r['preset']} --stage {stage} --at "
        f"{r['killed_after_step']} --threads {r['threads']}`: a SIGKILL once step "
        f"{r['killed_after_step']} of the {stage} stage is logged, the same command again, "
        "and an unbroken run beside it. The newest checkpoint before the kill was at step "
        f"{r['resumed_from_step']}: {r['steps_lost']} steps, about {r['seconds_lost']:.0f} s "
        f"of training, were lost. The resumed process trained {resumed} steps of that stage, "
        "and its captioner " + ("equals" if r["weights_equal"] else "does **not** equal")
        + " the unbroken run's bit for bit.",
    ])  # fmt: skip


def order_section(db: dict | None) -> str:
    if db is None:
        return ""
    g = groups(db)
    label = {"alt": "the curated alt-texts as they are",
             "forward": "paraphrases that always name the objects left to right, top to bottom",
             "canonical": "the canonical captions"}  # fmt: skip
    rows = []
    for t, text in label.items():
        runs = g[f"order-{t}100/pretrained"]
        rows.append([text, *(per_seed(runs, get) for get in (
            lambda r: r["zero_shot_grounded"], lambda r: r["test"]["exact"],
            lambda r: r["comp"]["exact"]))])  # fmt: skip
    return "\n\n".join([
        "### Where the low-caption gap lies: word order",
        "`python bench/capstone.py --what order --lowcap 100 --seeds 0 1 --threads 1` "
        "(bench/results/lowcap_order.json): stage 1 and curation once, then stage 1b on the "
        "same curated images with three kinds of text, then stage 2 on the same 100 captions, "
        "no stage 3. The two oracle texts are written from the generator's truth: a "
        "diagnostic, not data a learner would have. Per seed (0 / 1):",
        table(["stage 1b texts", "after stage 1b, grounded", "held-out exact",
               "compositional exact"], rows),  # fmt: skip
        "Half of the alt-text paraphrases name the objects backwards (\"right of\", "
        '"below"). A left-to-right writer reads the relation only after the first object, so '
        "for that object it must learn a mixture of the two ends of the scene. Stage 3's "
        "filter in order supplies the one-direction texts this diagnostic asks for.",
    ])  # fmt: skip


def probe_section(p: dict | None) -> str:
    if p is None:
        return ""
    last = p["rows"][-1]
    rows = [[f"{n} object{'s' * (n != '1')}", *(f"{last['probe'][n][k]:.2f}"
                                                for k in ("size", "colour", "shape"))]
            for n in sorted(last["probe"])]  # fmt: skip
    return "\n\n".join([
        "### What uncurated alt-text teaches",
        f"`python bench/pretrain_probe.py` ({p['config']['preset']} preset, {p['threads']} "
        f"thread): after {last['step']:,} stage-1 steps ({last['seconds']:.0f} s), at each "
        "size, colour and shape word of a canonical caption, is the multimodal stack's best "
        "word of that kind right? Chance is one in two sizes, six colours, three shapes.",
        table(["scene", "size", "colour", "shape"], rows),
        "Most alt-text never says in which order to describe the objects, and a canonical "
        "caption is all about order.",
    ])  # fmt: skip


EARLIER = {
    "subseq": "six rounds of stage 3, no longer last round",
    "ordered": "the same six rounds, a filter on the order of the content words only",
    "oneround": "one round of stage 3 with an order-blind filter",
    "curated": "no stage 3: stage 1 + 1b (curated) + 2",
    "uncurated": "no curation: stage 1 + stage 2",
}


def earlier_section(db: dict) -> str:
    g = groups(db)
    rows = []
    for tag, label in EARLIER.items():
        for n in LOWCAP_NS:
            pre, cap = g.get(f"{tag}{n}/pretrained"), g.get(f"{tag}{n}/scratch")
            if pre and cap:
                rows.append([label, f"{n:,}", exact(pre), exact(cap),
                             span(r["time"]["train"] for r in pre)])  # fmt: skip
    return "\n\n".join(
        [
            "## Earlier versions of the low-caption recipe",
            "How the lowcap preset came to be, kept for the record (same command with the "
            "earlier code; rows keyed by the tag in bench/results/capstone.json). Each row "
            "against caption-only training for the same wall time, 3 seeds.",
            table(
                ["version", "N", "pretrained, held-out exact", "caption-only", "training (s)"], rows
            ),  # fmt: skip
        ]
    )


# --- chapter 5 (bench/fusion.py) -----------------------------------------------------------

FAMILIES = {"late-product": "late fusion, product", "late-concat": "late fusion, concatenation",
            "concat": "single stream (concat)", "cross-attention": "cross-attention",
            "co-attention": "co-attention"}  # fmt: skip


def fusion_section(f: dict | None) -> str:
    if f is None:
        return ""
    rows = []
    for fam, label in FAMILIES.items():
        r = [x for x in f["results"] if x["family"] == fam]
        rows.append([label, *(ms((x[k] for x in r), 2) for k in ("colour", "binding", "relation")),
                     span(x["seconds"] for x in r)])  # fmt: skip
    return "\n\n".join([
        "## Which fusion can bind? (chapter 5)",
        f"`{f['command']}` ({f['machine']}). Every family reads the same frozen region "
        f"features (a CNN grid trained once; it names all three attributes of "
        f"{f['region_accuracy']:.0%} of occupied cells) and trains {f['budget']}. A test image "
        "counts when its true caption beats its edited twin (chance 0.5).",
        table(["family", "colour edit", "binding swap", "relation swap", "seconds per run"],
              rows),  # fmt: skip
        "Pooling throws the regions' positions away, so late fusion cannot tell relations "
        "apart; co-attention, where each stream queries the other, can.",
    ])  # fmt: skip


# --- the chapters (bench/chapters.py) ------------------------------------------------------


def chapters_section(c: dict | None) -> str:
    if c is None:
        return ""
    rows = [[x["notebook"], f"{x['words']:,}",
             f"{x['exercise_words']:,}" if "exercise_words" in x else "–",  # an old row
             str(x["code_lines"]), f"{x['run_seconds']:.0f} s"] for x in c["results"]]  # fmt: skip
    total = sum(x["run_seconds"] for x in c["results"])
    return "\n\n".join([
        "## The chapters",
        f"`{c['command']}` ({c['machine']}, torch {c['torch']}): each notebook executed top to "
        f"bottom in a fresh kernel, one after the other; {total / 60:.0f} minutes in all. Words "
        "of prose and lines of code (without blank lines and comments) are what a learner "
        "reads: the lesson's, and beside them the words of its exercises (from the "
        "\"Exercises\" heading on). Each chapter's opening states the time to read and run the "
        "lesson and, where it has exercises, the time to do them.",
        table(["notebook", "words", "exercise words", "code lines", "run time"], rows),
    ])  # fmt: skip


# --- the whole report ------------------------------------------------------------------------


def capstone_runs() -> dict:
    db = load("capstone")
    if db is None:
        raise SystemExit("bench/results/capstone.json: expected the capstone's results, found none")
    return db


def results_md() -> str:
    db = capstone_runs()
    parts = [
        "# Results",
        "Every figure of the course that a bench script measured, generated by "
        "`python bench/report.py` from `bench/results/*.json` (each row there also names its "
        "machine, thread count and, where recorded, its commit). Machines of this kind differ "
        "by up to about three times in speed from one day to the next, so compare times within "
        "a table, never across tables.",
        "## Headline",
        headline(db),
        chapters_section(load("chapters")),
        capstone_section(db),
        resume_section(load("resume")),
        order_section(load("lowcap_order")),
        probe_section(load("pretrain_probe")),
        fusion_section(load("fusion")),
        machinery_sections(load),
        tasks_sections(load),
        earlier_section(db),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def readme_md(readme: str) -> str:
    """The README with its results block replaced by the headline table."""
    if BEGIN not in readme or END not in readme:
        raise SystemExit(f"README.md: expected the markers {BEGIN!r} and {END!r}, found none")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{headline(capstone_runs())}\n{END}{tail}"


def outputs() -> dict[Path, str]:
    return {REPORT: results_md(), README: readme_md(README.read_text())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--check", action="store_true", help="fail if a file differs; write nothing")
    args = ap.parse_args()
    pages = outputs()
    stale = [p for p, text in pages.items() if not p.exists() or p.read_text() != text]
    if args.check:
        for p in stale:
            print(f"{p.relative_to(ROOT)}: differs from `python bench/report.py`; rerun it")
        sys.exit(1 if stale else 0)
    for p, text in pages.items():
        p.write_text(text)
        print(f"wrote {p.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
