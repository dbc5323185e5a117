"""The ``spatialrl train`` command: load a GRPO job config, apply ``key=value`` overrides,
validate, print it, and run :func:`spatialrl.train.grpo.train_grpo`.

    spatialrl train --config configs/demo.yaml [key=value ...] [--resume] [--dry-run]
    spatialrl train --list-keys

Multi-GPU: ``accelerate launch --config_file configs/accelerate/ddp.yaml -m spatialrl train --config C``
(see ``docs/training.md``). The helpers here are shared with ``spatialrl sft``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

HELP = "GRPO training (SNRA rewards, AP-GRPO, Spatial-GRPO mirror pairs) from a YAML job config"

__all__ = ["HELP", "add_arguments", "add_job_arguments", "is_main_process", "load_job_config", "run"]

_EXAMPLES = {
    "grpo": "configs/demo.yaml",
    "sft": "configs/sft_demo.yaml",
}


def add_job_arguments(parser: argparse.ArgumentParser, job: str) -> None:
    """The options shared by ``spatialrl train`` and ``spatialrl sft``."""
    parser.add_argument("--config", metavar="YAML",
                        help=f"job config (job: {job}), e.g. {_EXAMPLES[job]}; keys: --list-keys")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="override config keys, values in YAML syntax: max_steps=20 lora=true "
                             "question_types=[object_count] rewards.accuracy=0.8 adv_clip=null")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the last checkpoint in output_dir")
    parser.add_argument("--dry-run", action="store_true",
                        help="load, validate and print the config, then exit without training")
    parser.add_argument("--list-keys", action="store_true",
                        help="print every config key with its type, default and meaning, then exit")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_job_arguments(parser, "grpo")


def is_main_process() -> bool:
    """True on the rank-0 process of a distributed launch (and in a plain run)."""
    return os.environ.get("RANK", "0") in ("0", "")


def load_job_config(args: argparse.Namespace, job: str) -> tuple[Any, int | None]:
    """``(config, None)``, or ``(None, exit code)`` after printing keys, an error, or the dry run."""
    from spatialrl.train.config import (
        JOBS,
        ConfigError,
        describe,
        dump_yaml,
        load_config,
    )

    if args.list_keys:
        print(describe(JOBS[job]))
        return None, 0
    if not args.config:
        print(f"error: --config is required (e.g. --config {_EXAMPLES[job]}); see --list-keys for the keys",
              file=sys.stderr)
        return None, 2
    try:
        cfg = load_config(args.config, args.overrides, job=job)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None, 2
    if is_main_process():
        extra = f" with {len(args.overrides)} override(s)" if args.overrides else ""
        print(f"# {job} job config from {args.config}{extra}")
        print(dump_yaml(cfg, comments=False), end="", flush=True)
    if args.dry_run:
        return None, 0
    return cfg, None


def run(args: argparse.Namespace) -> int:
    cfg, code = load_job_config(args, "grpo")
    if cfg is None:
        return int(code or 0)
    from spatialrl.train.grpo import train_grpo

    result = train_grpo(cfg, resume=bool(args.resume))
    if is_main_process() and result:
        print(json.dumps(result, indent=2, default=str))
    return 0
