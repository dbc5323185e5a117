"""``spatialrl plan``: what a recipe will ask of the GPUs, before launch.

    spatialrl plan --config configs/smoothop_qwen2_5_vl_3b.yaml [--num_processes 8 --distributed zero3 ...]

Also printed by ``spatialrl train --config C --dry-run`` and ``spatialrl sft ... --dry-run``. For
the recipe's model (its ``config.json``: a local directory, the published configuration of a
Qwen2.5-VL hub id, or the hub cache), data and pixel budget it prints the image tokens per
sample, the prompt and sequence lengths, the rollout batch and an estimate of peak GPU memory
per device for the recipe's ``distributed`` stage, with and without vLLM colocate, and warns
when that will not fit ``gpu_memory_gib`` (:mod:`spatialrl.train.job_plan` reads the job,
:mod:`spatialrl.train.plan` computes the estimate; ``docs/plan.md``).
"""

from __future__ import annotations

import argparse
import sys

from spatialrl.train.job import add_job_arguments, load_job_config

HELP = "estimate what a training recipe needs (image tokens, sequence lengths, rollout batch, GPU memory) before launch"
#: Tokens the command's own options do not take go to TRL's parser (spatialrl.cli).
PASSTHROUGH = True

__all__ = ["HELP", "PASSTHROUGH", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_job_arguments(parser, "grpo")
    parser.add_argument("--job", choices=("grpo", "sft"), default=None,
                        help="the recipe's kind when it has no top-level `job:` (default grpo)")


def run(args: argparse.Namespace) -> int:
    kind = args.job
    if kind is None and args.config:
        from spatialrl.train.config.recipe import _read_recipe

        try:
            kind = _read_recipe(args.config).get("job", "grpo")
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    kind = kind or "grpo"
    args.dry_run = True  # plan only: load_job_config prints the resolved job, then this plan
    _, code = load_job_config(args, kind)  # a dry run: prints the resolved job and its plan
    return int(code or 0)
