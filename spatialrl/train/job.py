"""What the training jobs share (``spatialrl train``, ``spatialrl sft``, the trainers they run):
the job options of the command line, loading and checking a job config, the process rank, and
the Trainer's progress display. No trainer imports another trainer's module for these.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

__all__ = [
    "add_job_arguments",
    "input_problem",
    "is_main_process",
    "load_job_config",
    "model_problem",
    "replace_progress",
]

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


def is_main_process() -> bool:
    """True on the rank-0 process of a distributed launch (and in a plain run)."""
    return os.environ.get("RANK", "0") in ("0", "")


def load_job_config(args: argparse.Namespace, job: str,
                    check: Callable[[Any], str | None] | None = None) -> tuple[Any, int | None]:
    """``(config, None)``, or ``(None, exit code)`` after printing keys, an error, or the dry run.
    ``check`` (default :func:`input_problem`) says why the config's inputs cannot be read."""
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
    problem = (check or input_problem)(cfg)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return None, 2
    return cfg, None


def input_problem(cfg: Any) -> str | None:
    """Why the job's ``dataset`` or ``model`` cannot be read (one line naming the field and the
    fix), or None. Checked before anything heavy loads, so a typo is an error, not a traceback."""
    from spatialrl.data.load import check_readable

    name = type(cfg).__name__
    try:
        check_readable(cfg.dataset, cfg.train_split)
    except FileNotFoundError as exc:
        return f"{name}.dataset: {exc} (set dataset: DIR in the recipe, or dataset=DIR on the command line)"
    except ValueError as exc:
        return f"{name}.dataset: {exc}"
    problem = model_problem(cfg.model)
    return f"{name}.model: {problem}" if problem else None


def model_problem(model: str) -> str | None:
    """Why ``model`` is neither a saved model directory nor a Hugging Face Hub model, or None."""
    from pathlib import Path

    fix = ("give a directory written by save_pretrained (`spatialrl model tiny --out DIR`, `spatialrl sft`, "
           "`spatialrl train`) or a Hub id such as Qwen/Qwen2.5-VL-3B-Instruct")
    path = Path(model).expanduser()
    if path.is_dir():
        return None if (path / "config.json").is_file() else f"{model!r} is a directory without config.json; {fix}"
    if path.exists():
        return f"{model!r} is a file, not a model directory; {fix}"
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(model)
    except HFValidationError:
        return f"{model!r}: no such directory (and not a Hub id); {fix}"
    if model.startswith((".", "/", "~")):
        return f"{model!r}: no such directory; {fix}"
    from transformers import AutoConfig

    try:  # a Hub id: found in the local cache, or on the Hub when online
        AutoConfig.from_pretrained(model)
    except (OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{model!r}: no such directory, and the Hub (or its cache) has no such model ({reason}); {fix}"
    return None


def replace_progress(trainer: Any, progress: Any) -> None:
    """Swap a Trainer's progress bar / log printer for the callback ``progress``."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.pop_callback(ProgressCallback)
    trainer.pop_callback(PrinterCallback)
    trainer.add_callback(progress)
