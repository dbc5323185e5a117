"""Held-out evaluation and model card of ``spatialrl pretrain``.

The held-out split is the ``test`` split of ``spatialrl data build --seed 0 --scenes 1000`` (the
world benchmark, scored with :mod:`spatialrl.eval.benchmarks.world`); the pretraining scenes use
another world seed, so none of them is ever a held-out scene. Beside the model's scores the card
shows the no-perception baselines of :mod:`spatialrl.eval.baselines` fitted on that build's
``train`` split.

A smaller fixed subset (:data:`REPRO_SUBSET`: every question of the first test scenes of that
build, both views) is scored too; its figure is written in the card on a line of its own so that a
test can load the checkpoint, score the same subset and compare (``card_subset_score``).

This module is also the ``spatialrl pretrain`` command (:func:`run`): it trains with
:mod:`spatialrl.train.pretrain` (whose :mod:`~spatialrl.train.pretrain.cli` holds the recipe
flags), then evaluates the checkpoint and writes its card. Training never imports evaluation;
evaluation builds on training.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spatialrl.train.pretrain import ImageIgnoredError, pretrain
from spatialrl.train.pretrain import cli as pretrain_cli
from spatialrl.train.pretrain.config import PretrainConfig

__all__ = [
    "EVAL_BUILD",
    "HELP",
    "REPRO_SUBSET",
    "Subset",
    "add_arguments",
    "card_subset_score",
    "evaluate",
    "model_card",
    "run",
    "score_subset",
    "subset_items",
    "write_card",
]

HELP = pretrain_cli.HELP

#: The evaluation build: ``spatialrl data build --seed 0 --scenes 1000`` (test fraction 0.1).
EVAL_BUILD = {"seed": 0, "scenes": 1000, "test_fraction": 0.1, "image_size": 112}
MAX_NEW_TOKENS = 48
BATCH_SIZE = 64


@dataclass(frozen=True)
class Subset:
    """Every question (both views) of the first ``scenes`` test scenes (in index order) of the
    evaluation build."""

    scenes: int = 12


REPRO_SUBSET = Subset()
_CARD_MARKER = "Fixed-subset overall score (reproduced by tests/train/test_pretrain.py):"


def subset_items(subset: Subset = REPRO_SUBSET) -> list[Any]:
    """The world benchmark's items of ``subset``, built in memory exactly as ``spatialrl data
    build`` writes those rows (same ids)."""
    import io

    from PIL import Image

    from spatialrl.data.build import BuildConfig, scene_rows, test_scenes
    from spatialrl.data.schema import row_images
    from spatialrl.eval.benchmarks.world import make_item

    cfg = BuildConfig(scenes=EVAL_BUILD["scenes"], seed=EVAL_BUILD["seed"], image_size=EVAL_BUILD["image_size"],
                      test_fraction=EVAL_BUILD["test_fraction"])
    indices = sorted(test_scenes(cfg.scenes, cfg.test_fraction, cfg.seed))[: subset.scenes]
    items = []
    for index in indices:
        for row in scene_rows(index, cfg):
            images = [Image.open(io.BytesIO(im["bytes"])).convert("RGB") for im in row_images(row)]
            items.append(make_item(row, images))
    return items


def _generate(model_path: str, items: list[Any], progress: bool = False) -> dict[str, str]:
    import torch
    from tqdm.auto import tqdm

    from spatialrl.eval.benchmarks import get_benchmark
    from spatialrl.models.generate import generate_batch
    from spatialrl.models import load_model_and_processor

    benchmark = get_benchmark("world")
    model, processor = load_model_and_processor(model_path, dtype=torch.float32)
    preds: dict[str, str] = {}
    bar = tqdm(total=len(items), desc="held-out", unit="item", disable=not progress, dynamic_ncols=True)
    for start in range(0, len(items), BATCH_SIZE):
        batch = items[start:start + BATCH_SIZE]
        texts = generate_batch(model, processor, [benchmark.prompt(it) for it in batch],
                               [list(it.images) for it in batch], MAX_NEW_TOKENS)
        preds.update({it.id: t for it, t in zip(batch, texts)})
        bar.update(len(batch))
    bar.close()
    return preds


def score_subset(model_path: str, subset: Subset = REPRO_SUBSET) -> dict[str, Any]:
    """The world benchmark's report of ``model_path`` on ``subset`` (greedy, float32)."""
    from spatialrl.eval.benchmarks import get_benchmark, score_predictions

    items = subset_items(subset)
    benchmark = get_benchmark("world")
    return score_predictions(benchmark, items, _generate(model_path, items))


def evaluate(model_path: str, data: str | None = None, progress: bool = True, log: Any = print) -> dict[str, Any]:
    """Scores of ``model_path`` on the evaluation build's test split (built into a temporary
    directory unless ``data`` names one), the no-perception baselines fitted on its train split,
    and the fixed-subset score."""
    from spatialrl.eval.baselines import load_items, score_baselines
    from spatialrl.eval.benchmarks import get_benchmark, score_predictions

    benchmark = get_benchmark("world")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="spatialrl-eval-") as tmp:
        if data is None:
            from spatialrl.data.build import BuildConfig, build_dataset

            data = str(Path(tmp) / "world")
            log(f"building the held-out evaluation set (spatialrl data build --seed {EVAL_BUILD['seed']} "
                f"--scenes {EVAL_BUILD['scenes']}) ...")
            build_dataset(data, BuildConfig(scenes=EVAL_BUILD["scenes"], seed=EVAL_BUILD["seed"],
                                            image_size=EVAL_BUILD["image_size"],
                                            test_fraction=EVAL_BUILD["test_fraction"]), progress=False)
        items = benchmark.load(data, split="test")
        baselines = score_baselines(load_items(data, "train"), load_items(data, "test"), benchmark)
        preds = _generate(model_path, items, progress)
        report = score_predictions(benchmark, items, preds)
    subset = score_subset(model_path, REPRO_SUBSET)
    return {"heldout": report, "baselines": baselines, "subset": subset, "items": len(items),
            "seconds": round(time.perf_counter() - t0, 1)}


def _fmt(x: Any, nd: int = 1) -> str:
    return "" if x is None else f"{x:.{nd}f}"


def _threads(cfg: dict[str, Any]) -> str:
    threads = int(cfg.get("threads", 1))
    return "one torch thread" if threads == 1 else f"{threads} torch threads"


def model_card(summary: dict[str, Any], evaluation: dict[str, Any] | None, command: str) -> str:
    """README.md of a pretrained checkpoint: how it was made, its held-out scores beside the
    no-perception baselines, and the true-vs-shuffled image loss gap."""
    from spatialrl.eval.baselines import baseline_table, numeric_mean

    cfg = summary["config"]
    minutes = summary["total_seconds"] / 60
    lines = [
        "---",
        "license: apache-2.0",
        "library_name: transformers",
        "pipeline_tag: image-text-to-text",
        "tags: [spatialrl, qwen2_5_vl, spatial-reasoning, synthetic]",
        "---",
        "",
        "# tiny-spatial-vlm",
        "",
        f"A {summary['parameters'] / 1e6:.1f} M-parameter Qwen2.5-VL (architecture `Qwen2_5_VLForConditionalGeneration`, "
        f"size `{cfg['size']}`) pretrained by `spatialrl pretrain` on the synthetic world's exact dense truth, "
        "grounding texts and spatial QA: the CPU starting point for RL with spatialrl (real users start from "
        "e.g. Qwen2.5-VL-3B-Instruct). It answers in the `<think></think><answer>...</answer>` format of the "
        "format reward. Recipe and measurements: `docs/pretraining.md`.",
        "",
        "```python",
        "import spatialrl  # registers the image-only processor (no torchvision needed)",
        "from transformers import AutoModelForImageTextToText, AutoProcessor",
        "model = AutoModelForImageTextToText.from_pretrained(PATH)  # float16 storage, loads as float32",
        "processor = AutoProcessor.from_pretrained(PATH)",
        "```",
        "",
        "## Reproduce",
        "",
        "```",
        command,
        "```",
        "",
        f"Seed {cfg['seed']} (weights, tokenizer corpus, batch order), world seed {cfg['world_seed']} "
        f"({cfg['scenes']} training scenes, each with its mirrored view). Training time on this machine "
        f"(2 CPU cores, {_threads(cfg)}): {minutes:.1f} min in all -- data {summary['data_seconds'] / 60:.1f} min, "
        f"stage 1 (vision tower on dense truth, {summary['dense_steps']} steps) {summary['dense_seconds'] / 60:.1f} min, "
        f"stages 2-3 (language, {summary['steps']} steps of {cfg['images_per_step']} images x "
        f"{cfg['questions_per_image']} questions) {summary['train_seconds'] / 60:.1f} min.",
        "",
        "Normalisation (in `processor_config.json`, so RL and eval see the same): image mean "
        f"{cfg.get('normalize')} statistics, the grey room maps to about 0.",
        "",
        "## Does it look at the image?",
        "",
        "Held-out answer loss (nats per answer token, 128 questions of held-out scenes; the shuffled column gives "
        "each question another scene's image):",
        "",
        "| true images | shuffled images | gap |",
        "|---:|---:|---:|",
        f"| {_fmt(summary.get('heldout_loss_true'), 3)} | {_fmt(summary.get('heldout_loss_shuffled'), 3)} | "
        f"{_fmt(summary.get('heldout_gap'), 3)} |",
        "",
    ]
    if evaluation:
        report = evaluation["heldout"]
        base = evaluation["baselines"]
        best_const = max(numeric_mean(base[k]["per_type"]) or 0.0 for k in ("mean", "median", "best_constant"))
        lines += [
            "## Held-out scores",
            "",
            f"World benchmark, test split of `spatialrl data build --seed {EVAL_BUILD['seed']} --scenes "
            f"{EVAL_BUILD['scenes']}` ({evaluation['items']} items; official-style scorer "
            "`spatialrl/eval/benchmarks/world.py`: mean relative accuracy for numbers, accuracy otherwise, percent), "
            "greedy decoding, float32. Baselines never look at the image: constants fitted on that build's train "
            "split (`python -m spatialrl.eval.baselines --data DIR`).",
            "",
            baseline_table(base, report, "this model"),
            "",
            f"Numeric types (mean relative accuracy): {_fmt(numeric_mean(report['per_type']))} vs "
            f"{_fmt(best_const)} for the best constant predictor.",
            "",
            *_template_lines(report),
            f"{_CARD_MARKER} {evaluation['subset']['overall']:.2f} "
            f"({evaluation['subset']['counts']['items']} items: every question of the first {REPRO_SUBSET.scenes} "
            "test scenes).",
            "",
        ]
    lines += [
        "## Limitations",
        "",
        "Trained only on the synthetic world (grey box rooms, 10 object categories, 8 colours, 112 px images); "
        "it knows nothing else. Its answers are a starting point for RL, not a spatial-reasoning model.",
        "",
        "## Recipe settings",
        "",
        "```json",
        json.dumps({k: v for k, v in cfg.items() if k != "out"}, indent=1),
        "```",
        "",
    ]
    return "\n".join(lines)


def _template_lines(report: dict[str, Any]) -> list[str]:
    """Per-template scores of the types asked in several templates (``metrics.by_template``)."""
    by_template = (report.get("metrics") or {}).get("by_template") or {}
    if not by_template:
        return []
    lines = ["Per question template (accuracy, percent; rel_direction: `lateral` = left/right, `depth` = in front "
             "of/behind, `quadrant` = both):", "", "| question type | template | this model |", "|---|---|---:|"]
    for qt, templates in by_template.items():
        lines += [f"| {qt} | {t} | {score:.1f} |" for t, score in templates.items()]
    return [*lines, ""]


def card_subset_score(card: str) -> float:
    """The fixed-subset overall score written in a model card."""
    m = re.search(re.escape(_CARD_MARKER) + r"\s*([0-9.]+)", card)
    if not m:
        raise ValueError("the model card has no fixed-subset score line")
    return float(m.group(1))


def write_card(summary: dict[str, Any], evaluation: dict[str, Any] | None, command: str) -> None:
    """Write the model card (``README.md``) and the evaluation (``eval.json``) into the checkpoint,
    each through a temporary file and a rename."""
    from spatialrl._fs import write_text_atomic
    from spatialrl.eval.predictions import write_json_atomic

    out = Path(summary["out"])
    write_text_atomic(out / "README.md", model_card(summary, evaluation, command))
    if evaluation is not None:
        write_json_atomic(out / "eval.json", {k: v for k, v in evaluation.items()})


# --------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pretrain_cli.add_arguments(parser)
    parser.add_argument("--eval-data", default=None, metavar="DIR",
                        help="held-out evaluation build (spatialrl data build --seed 0 --scenes 1000); built in a "
                             "temporary directory when not given")
    parser.add_argument("--no-eval", action="store_true",
                        help="skip the held-out evaluation (the model card then has no scores)")


def run(args: argparse.Namespace) -> int:
    """``spatialrl pretrain``: train, then score the checkpoint on the held-out split (unless
    ``--no-eval``) and write its model card."""
    if args.list_keys:
        print(PretrainConfig.describe())
        return 0
    try:
        cfg = pretrain_cli.config_from_args(args)
    except ValueError as exc:
        print(f"spatialrl pretrain: error: {exc}", file=sys.stderr)
        return 2
    log = lambda m: print(m, flush=True)  # noqa: E731
    try:
        summary = pretrain(cfg, progress=not args.quiet, log=log)
    except ImageIgnoredError as exc:
        print(f"spatialrl pretrain: error: {exc}", file=sys.stderr)
        return 3
    evaluation = None
    if not args.no_eval:
        evaluation = evaluate(summary["out"], args.eval_data, progress=not args.quiet, log=log)
        report = evaluation["heldout"]
        log(f"held-out ({evaluation['items']} items): overall {report['overall']:.1f}; "
            + ", ".join(f"{k} {v:.1f}" for k, v in report["per_type"].items()))
    write_card(summary, evaluation, pretrain_cli.command_line(args, cfg))
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=2))
    return 0
