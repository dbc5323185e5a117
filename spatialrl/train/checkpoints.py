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
"""

from __future__ import annotations

from typing import Any


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
    """Put before a transformers ``Trainer`` subclass so ``resume_from_checkpoint`` restores weights."""

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        target = model if model is not None else self.model
        if (getattr(self, "is_deepspeed_enabled", False) or getattr(self, "is_fsdp_enabled", False)
                or hasattr(target, "peft_config")):
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        load_checkpoint_weights(self.accelerator.unwrap_model(target), resume_from_checkpoint)
