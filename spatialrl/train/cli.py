"""The ``spatialrl train`` command: parse a GRPO recipe with TRL's parser (every
``GRPOConfig`` field by its own name, spatialrl's fields beside them), validate, print the
resolved job, and run :func:`spatialrl.train.grpo.train_grpo`.

    spatialrl train --config configs/demo.yaml [--learning_rate 1e-6 ...] [key=value ...] [--resume] [--dry-run]
    spatialrl train --list-keys | --help

Multi-GPU: ``accelerate launch --config_file configs/accelerate/ddp.yaml -m spatialrl train --config C``
(see ``docs/training.md``). The job helpers it shares with ``spatialrl sft`` are in
:mod:`spatialrl.train.job`.
"""

from __future__ import annotations

import argparse
import json

from spatialrl.train.job import add_job_arguments, input_problem, is_main_process, load_job_config

HELP = "GRPO training (SNRA rewards, AP-GRPO, Spatial-GRPO mirror pairs) from a TRL-native YAML recipe"
#: Tokens the command's own options do not take go to TRL's parser (spatialrl.cli).
PASSTHROUGH = True

__all__ = ["HELP", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_job_arguments(parser, "grpo")


def run(args: argparse.Namespace) -> int:
    # input_problem is looked up in this module at call time, so a test can stand in for it
    cfg, code = load_job_config(args, "grpo", check=input_problem)
    if cfg is None:
        return int(code or 0)
    from spatialrl.train.grpo import train_grpo

    result = train_grpo(cfg, resume=bool(args.resume))
    if is_main_process() and result:
        print(json.dumps(result, indent=2, default=str))
    return 0
