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
    "print_help",
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
    """The options shared by ``spatialrl train``, ``spatialrl sft`` and ``spatialrl plan``. Every
    other token goes to TRL's parser (``--learning_rate 1e-6``) or is a ``key=value`` override;
    the command's module sets ``PASSTHROUGH = True`` so that ``spatialrl`` hands them over."""
    parser.add_argument("-h", "--help", action="store_true",
                        help="show this help and every field (spatialrl's and TRL's), then exit")
    parser.add_argument("--config", metavar="YAML",
                        help=f"job recipe (job: {job}), e.g. {_EXAMPLES[job]}; keys: --list-keys and --help")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the last checkpoint in output_dir")
    parser.add_argument("--dry-run", action="store_true",
                        help="load, validate and print the resolved config and the plan, then exit without training")
    parser.add_argument("--list-keys", action="store_true",
                        help="print spatialrl's keys with their type, default and meaning, then exit")
    parser.epilog = ("Any field of the recipe, spatialrl's or TRL's, can be set after --config by its own name: "
                     "--learning_rate 1e-6 --num_generations 8 --use_vllm true --max_pixels 200704; or as "
                     "key=value with a YAML value: rewards.accuracy=0.8 question_types=[object_count] adv_clip=null.")


def is_main_process() -> bool:
    """True on the rank-0 process of a distributed launch (and in a plain run)."""
    return os.environ.get("RANK", "0") in ("0", "")


def print_help(args: argparse.Namespace, job: str) -> None:
    """The command's own options, then every field TRL's parser takes for this job."""
    from spatialrl.train.config.recipe import job_parser

    own = getattr(args, "_own_parser", None)
    if own is not None:
        own.print_help()
    print("\nfields (in the recipe as `key: value`, on the command line as `--key value`):\n")
    text = job_parser(job).format_help()
    print(text[text.find("options:"):] if "options:" in text else text)


def load_job_config(args: argparse.Namespace, job: str,
                    check: Callable[[Any], str | None] | None = None) -> tuple[Any, int | None]:
    """``(job, None)``, or ``(None, exit code)`` after printing help, keys, an error, or the dry
    run (the resolved config and the plan). ``check`` (default :func:`input_problem`) says why the
    job's inputs cannot be read."""
    from spatialrl.train.config import ConfigError, describe, dump_yaml, load_config, parse_job

    if getattr(args, "help", False):
        print_help(args, job)
        return None, 0
    if args.list_keys:
        print(describe(job))
        return None, 0
    rest = list(getattr(args, "rest", None) or [])
    if not args.config and not rest:
        print(f"error: give a recipe, --config {_EXAMPLES[job]}, or its fields as flags (--model M --dataset D "
              "--output_dir O ...); see --help", file=sys.stderr)
        return None, 2
    try:
        cfg = load_config(args.config, rest, job=job) if args.config else parse_job(job, {}, rest)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None, 2
    if is_main_process():
        extra = f" with {len(rest)} command-line setting(s)" if rest else ""
        print(f"# {job} job from {args.config or 'the command line'}{extra}")
        for note in cfg.adjusted:
            print(f"# adjusted for this machine: {note}")
        print(dump_yaml(cfg, comments=False, resolved=True), end="", flush=True)
    if args.dry_run:
        from spatialrl.train.job_plan import plan_text

        if is_main_process():
            print(plan_text(cfg), flush=True)
        return None, 0
    problem = (check or input_problem)(cfg)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return None, 2
    return cfg, None


def input_problem(job: Any) -> str | None:
    """Why the job's ``dataset``, ``model`` or pixel budget cannot serve (one line naming the
    field and the fix), or None. Checked before anything heavy loads, so a typo is an error, not
    a traceback."""
    from spatialrl.data.load import check_readable
    from spatialrl.train.loading import pixel_problem

    cfg = job.spatial
    name = type(cfg).__name__
    try:
        check_readable(cfg.dataset, cfg.train_split)
    except FileNotFoundError as exc:
        return f"{name}.dataset: {exc} (set dataset: DIR in the recipe, or --dataset DIR on the command line)"
    except ValueError as exc:
        return f"{name}.dataset: {exc}"
    problem = model_problem(cfg.model)
    if problem:
        return f"{name}.model: {problem}"
    return pixel_problem(job)


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
