"""Resuming from a checkpoint must restore the weights; with Qwen2.5-VL in transformers 5.23 it did not.

``save_pretrained`` writes Qwen2.5-VL's weights under their legacy names (``model.layers.*``,
``visual.*``) while the module tree names them ``model.language_model.*`` and ``model.visual.*``.
``Trainer._load_from_checkpoint`` loads the file with a plain, non-strict ``load_state_dict``, so
on resume *no* weight matches: transformers only logs a warning and training continues from the
initial weights with the checkpoint's optimizer state (found by tests/train/test_resume.py).

``CheckpointWeightsMixin`` loads the checkpoint through ``from_pretrained``, which applies the
model's own key conversion, then copies the tensors into the training model strictly: any
mismatch is an error, never a warning. PEFT adapters, FSDP and DeepSpeed checkpoints keep the
library's own loading paths.

A checkpoint killed half-way must not break ``--resume`` (transformers 5.23 writes
``checkpoint-N`` in place and ``get_last_checkpoint`` returns the newest folder, complete or not):

- ``CheckpointWeightsMixin`` also makes the save atomic where the Trainer allows it (one process,
  no DeepSpeed/FSDP, no hyperparameter search, no hub push, no best-model tracking): the library's
  own ``_save_checkpoint`` writes into ``<output_dir>/.checkpoint-staging/checkpoint-N``, which is
  renamed to ``<output_dir>/checkpoint-N`` once every file is written. A kill leaves only the
  staging folder, which the next save clears and resume ignores. Elsewhere the library saves in place.
- ``last_complete_checkpoint`` picks the newest ``checkpoint-N`` that is complete and says which
  newer ones it skipped and why. Complete means: ``trainer_state.json`` (the Trainer writes it
  last) parses, and the weights are there (every shard an index names).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable

STAGING = ".checkpoint-staging"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "adapter_model.safetensors", "adapter_model.bin")
_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def checkpoint_problem(path: str | Path) -> str | None:
    """Why ``path`` is not a complete Trainer checkpoint, or None when it is."""
    path = Path(path)
    state = path / "trainer_state.json"
    if not state.is_file():
        return "it has no trainer_state.json (the Trainer writes it last: the save was interrupted)"
    try:
        json.loads(state.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"its trainer_state.json is unreadable ({type(exc).__name__}: the save was interrupted)"
    for index in _INDEXES:
        if (path / index).is_file():
            try:
                shards = set(json.loads((path / index).read_text())["weight_map"].values())
            except (OSError, UnicodeDecodeError, ValueError, KeyError, AttributeError, TypeError) as exc:
                return f"its {index} is unreadable ({type(exc).__name__})"
            missing = sorted(shard for shard in shards if not (path / shard).is_file())
            return f"weight shards named by {index} are missing: {', '.join(missing[:3])}" if missing else None
    if any((path / name).is_file() and (path / name).stat().st_size > 0 for name in _WEIGHTS):
        return None
    if any(entry.is_dir() and entry.name.startswith(("global_step", "pytorch_model_fsdp"))
           for entry in path.iterdir()):
        return None  # DeepSpeed / FSDP sharded state: the library checks it on load
    return f"it holds no model weights ({' or '.join(_WEIGHTS[:2])})"


def last_complete_checkpoint(output_dir: str | Path, log: Callable[[str], Any] = print) -> str | None:
    """The newest complete ``checkpoint-N`` under ``output_dir`` (None if there is none).

    Each newer, incomplete one is skipped with a line to ``log`` naming it and the reason; so is a
    staging folder a killed atomic save left behind.
    """
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None
    if (output_dir / STAGING).exists():
        log(f"--resume: ignoring {output_dir / STAGING} (a checkpoint save was interrupted; the next save clears it)")
    found = sorted(((int(m.group(1)), entry) for entry in output_dir.iterdir()
                    if entry.is_dir() and (m := _CHECKPOINT.match(entry.name))), reverse=True)
    for _, path in found:
        problem = checkpoint_problem(path)
        if problem is None:
            return str(path)
        log(f"--resume: skipping {path}: {problem}")
    return None


def load_checkpoint_weights(model: Any, checkpoint: str) -> None:
    """Copy the weights saved in ``checkpoint`` into ``model`` (strict; raises on any mismatch)."""
    import torch

    reference = next(model.parameters())
    fresh = type(model).from_pretrained(checkpoint, dtype=reference.dtype)
    state = fresh.state_dict()
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise RuntimeError(
            f"checkpoint {checkpoint} does not fit the model being trained: missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]} (was it written by another model or config?)"
        )
    del fresh, state
    if reference.device.type != "cpu":
        torch.cuda.empty_cache() if reference.device.type == "cuda" else None


class CheckpointWeightsMixin:
    """Put before a transformers ``Trainer`` subclass so ``resume_from_checkpoint`` restores weights
    and, where the Trainer allows it, checkpoints appear atomically (see the module docstring)."""

    def _atomic_save_possible(self, trial: Any) -> bool:
        args = self.args
        return (trial is None and args.world_size == 1 and not args.push_to_hub
                and args.metric_for_best_model is None and not getattr(self, "is_deepspeed_enabled", False)
                and not getattr(self, "is_fsdp_enabled", False))

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        if not self._atomic_save_possible(trial):
            return super()._save_checkpoint(model, trial)
        from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, rotate_checkpoints

        run_dir = Path(self.args.output_dir)
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        staging = run_dir / STAGING
        shutil.rmtree(staging, ignore_errors=True)  # what an interrupted save left
        staging.mkdir(parents=True)
        # the library's own save (and TRL's additions to it) write where _get_output_dir points
        self._get_output_dir = lambda trial=None: str(staging)
        try:
            super()._save_checkpoint(model, trial)
        finally:
            del self._get_output_dir
        final = run_dir / name
        if final.exists():  # a run resumed from an earlier checkpoint saves this step again
            final.rename(staging / f"replaced-{name}")
        os.replace(staging / name, final)
        shutil.rmtree(staging, ignore_errors=True)
        rotate_checkpoints(output_dir=str(run_dir), save_total_limit=self.args.save_total_limit,
                           best_model_checkpoint=self.state.best_model_checkpoint, use_mtime=True)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        target = model if model is not None else self.model
        if (getattr(self, "is_deepspeed_enabled", False) or getattr(self, "is_fsdp_enabled", False)
                or hasattr(target, "peft_config")):
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        load_checkpoint_weights(self.accelerator.unwrap_model(target), resume_from_checkpoint)
