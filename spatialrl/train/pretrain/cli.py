"""The training half of the ``spatialrl pretrain`` command: its recipe flags (budget, seed,
``--set KEY=VALUE`` overrides of :class:`PretrainConfig`), the config they give, and the command
line that reproduces a config. The command itself (training, then the held-out evaluation and
the model card) is :mod:`spatialrl.eval.pretrain_eval`."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from spatialrl.train.pretrain.config import SIZES, PretrainConfig

__all__ = ["DEFAULT_STEPS", "HELP", "add_arguments", "command_line", "config_from_args"]

HELP = "pretrain a tiny Qwen2.5-VL on the world's dense truth, grounding texts and QA (a start for RL)"

#: Default step counts per size (fit the 60-minute budget on a 2-core CPU; docs/pretraining.md).
DEFAULT_STEPS = {"small": 3000, "base": 1000}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The recipe flags (the evaluation's own are added by :mod:`spatialrl.eval.pretrain_eval`)."""
    parser.add_argument("--out", required=True, metavar="DIR", help="checkpoint directory to write")
    parser.add_argument("--size", choices=SIZES, default="small", help="model size (default small, ~3.9 M parameters)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, default=None, metavar="N", help="language-stage optimizer steps (reproducible; default "
                        + ", ".join(f"{n} for {size}" for size, n in DEFAULT_STEPS.items())
                        + "; small's default takes ~57 min on a 2-core CPU)")
    budget.add_argument("--minutes", type=float, default=None, metavar="M", help="training wall-clock budget")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of weights, tokenizer corpus, batches")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe field (JSON value), e.g. --set scenes=2000 --set lr_llm=1e-3; "
                             "--list-keys shows them all")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--list-keys", action="store_true", help="print every recipe field and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _parse_overrides(items: list[str]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(PretrainConfig)}
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        key, raw = item.split("=", 1)
        key = key.strip()
        if key not in names:
            raise ValueError(f"--set {key}: unknown field; choose from {', '.join(sorted(names))}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def config_from_args(args: argparse.Namespace) -> PretrainConfig:
    """The recipe the flags give (the size's default step count when neither ``--steps`` nor
    ``--minutes`` is given). Raises ``ValueError`` on an unknown or invalid field, or when
    ``--out`` exists, is not empty and ``--overwrite`` is not given."""
    overrides = _parse_overrides(args.overrides)
    steps, minutes = args.steps, args.minutes
    if steps is None and minutes is None:
        steps = DEFAULT_STEPS[args.size]
    cfg = PretrainConfig(out=args.out, size=args.size, seed=args.seed, steps=steps, minutes=minutes, **overrides)
    out = Path(cfg.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise ValueError(f"--out {out} exists and is not empty; choose another directory or pass --overwrite")
    return cfg


def command_line(args: argparse.Namespace, cfg: PretrainConfig) -> str:
    """The ``spatialrl pretrain`` command that reproduces ``cfg`` (budget, seed, overrides)."""
    parts = ["spatialrl pretrain --out DIR", f"--size {cfg.size}"]
    parts.append(f"--steps {cfg.steps}" if cfg.steps is not None else f"--minutes {cfg.minutes:g}")
    parts.append(f"--seed {cfg.seed}")
    parts += [f"--set {item}" for item in args.overrides]
    return " ".join(parts)


