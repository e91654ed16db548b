"""The capstone: pretrain on noisy alt-text, then fine-tune a captioner (chapter 8).

Stage 1 pretrains an image encoder and a text side on many image/alt-text pairs with the three
objectives of chapter 6: ITC (a unimodal text encoder against the pooled image), ITM with hard
negatives and MLM (both through a multimodal encoder that cross-attends to the image), plus
BLIP's image-grounded language modelling (the same multimodal stack, causal). Stage 2
fine-tunes a caption decoder on a small set of fully captioned scenes. As in BLIP, the decoder
*is* the multimodal encoder run causally: its cross-attention, which learned in stage 1 which
region a word names, is reused as it is.

Stage 1b (`curated_steps`, the low-caption recipe) curates the alt-text as web-scale
pretraining does: `curate` keeps the texts that are complete sentences and whose ITC score says
they match their image, and the multimodal stack then writes only those, word by word. Stage 3
(`self_train`, one entry per round) is the captioner half of BLIP's CapFilt: the captioner
captions the alt-text images, `self_label` keeps a caption where the alt-text beside the image
says the same thing in the same order, and the captioner trains on those and its real captions.

The image encoder has two pathways (`TwoPathwayEncoder`): a shape pathway that sees only the
silhouette and a colour pathway that sees only each cell's mean colour, their tokens kept
apart, so a word can read the shape of an object without its colour. That, noise on the
colour words the multimodal stack reads, and colour dropout (a share of the captions is learnt
with the colour tokens hidden) let the captioner name a red triangle although training never
showed one. `--set encoder=cnn|vit` swaps in chapter 4's generic encoders.

One job per module, imported in one direction:

    config      the three parts of a run's config, overrides with clear errors
    presets     ci, quick, cpu, lowcap, gpu, coco
    encoders    the three image encoders
    model       Pretrainer (stage 1) and Captioner (stages 1b, 2, 3)
    batches     the splits of a run and step-indexed batches
    evaluation  captions, exact match, grounded accuracy, retrieval, the attribute probe
    labels      curation (stage 1b) and self-labelling (stage 3)
    stages      the table of stages and the code that trains each, with resume
    pipeline    run(cfg) -> (RunResult, Trained), the run folder
    use         load_captioner(run_dir): caption pictures and scenes you write

`python -m minivlm capstone --preset ci|cpu|gpu|lowcap` runs it; `python -m minivlm caption`
uses the result.
"""

from .batches import Batches, Pairs, datasets
from .config import CapstoneConfig, CocoData, ModelConfig, Schedule, ShapesData, override
from .encoders import GridEncoder, PatchEncoder, TwoPathwayEncoder, image_encoder
from .evaluation import attribute_probe, caption_images, evaluate, evaluate_refs, retrieval_scores
from .labels import complete_sentences, content_words, curate, is_subsequence, self_label
from .model import Captioner, Pretrainer, TextEncoder, noisy_colours
from .pipeline import RunResult, Trained, results_table, run, scratch
from .presets import PRESETS, preset
from .stages import STAGES, Done, Stage1, curated_stage, pretrain_stage, stage_config
from .use import TrainedCaptioner, config_from_dict, load_captioner

__all__ = [
    "PRESETS", "CapstoneConfig", "CocoData", "ModelConfig", "Schedule", "ShapesData", "override",
    "preset", "GridEncoder", "PatchEncoder", "TwoPathwayEncoder", "image_encoder", "Captioner",
    "Pretrainer", "TextEncoder", "noisy_colours", "Batches", "Pairs", "datasets",
    "attribute_probe", "caption_images", "evaluate", "evaluate_refs", "retrieval_scores",
    "complete_sentences", "content_words", "curate", "is_subsequence", "self_label", "STAGES",
    "Done", "Stage1", "curated_stage", "pretrain_stage", "stage_config", "RunResult", "Trained",
    "results_table", "run", "scratch", "TrainedCaptioner", "config_from_dict", "load_captioner",
]  # fmt: skip
