"""Freezing knobs for Qwen2.5-VL: keep the vision tower (and optionally the merger) fixed during RL.

Qwen2.5-VL (transformers 5.23, ``Qwen2_5_VLForConditionalGeneration``) nests its vision encoder at
``model.model.visual`` (``Qwen2_5_VisionTransformerPretrainedModel``): ``patch_embed`` (the 3-D
convolution over 14 px patches), ``rotary_pos_emb`` (no parameters), ``blocks`` (the ViT layers)
and ``merger`` (the 2x2 patch merger with its MLP: the projector into the language model's
hidden size). The "tower" is everything in ``visual`` except ``merger``.

Freezing sets ``requires_grad = False``. transformers' Trainer (hence TRL's GRPOTrainer) builds its
optimizer from the parameters that require grad only, so frozen parameters get neither gradients
nor optimizer state (no Adam moments: less memory) and stay bit-identical. Call it before the
trainer is built (before a PEFT wrap it is unnecessary: LoRA freezes the base model anyway).
"""

from __future__ import annotations

from typing import Any

__all__ = ["freeze_vision", "vision_modules"]


def vision_modules(model: Any) -> tuple[Any, Any]:
    """``(tower_parts, merger)`` of a Qwen2.5-VL model: the vision submodules outside the merger and
    the merger itself. Accepts the ForConditionalGeneration model, its inner ``Qwen2_5_VLModel``,
    or a PEFT-wrapped one; raises ``ValueError`` for a model without ``visual.merger``."""
    candidates = [model]
    if hasattr(model, "get_base_model"):  # PEFT
        candidates.append(model.get_base_model())
    for candidate in list(candidates):
        inner = getattr(candidate, "model", None)
        if inner is not None:
            candidates.append(inner)
    for candidate in candidates:
        visual = getattr(candidate, "visual", None)
        if visual is not None and hasattr(visual, "merger"):
            tower = [module for name, module in visual.named_children() if name != "merger"]
            return tower, visual.merger
    raise ValueError(
        f"{type(model).__name__} has no Qwen2.5-VL vision encoder (expected model.model.visual with a .merger, as "
        "in transformers' Qwen2_5_VLForConditionalGeneration); freeze_vision supports Qwen2.5-VL-style models only"
    )


def freeze_vision(model: Any, tower: bool = True, merger: bool = False) -> dict[str, int]:
    """Freeze Qwen2.5-VL's vision tower (patch embedding and ViT blocks) and/or its merger.

    Only freezes: a part passed as False is left as it is (never unfrozen).

    Args:
        model: a Qwen2.5-VL model (see :func:`vision_modules`).
        tower: freeze ``visual.patch_embed`` and ``visual.blocks`` (every vision parameter but the merger's).
        merger: freeze ``visual.merger``, the projector into the language model.

    Returns:
        Parameter counts (elements, not tensors): ``frozen`` and ``trainable`` over the whole model
        after the call, and ``tower`` / ``merger``, the size of each part.
    """
    tower_parts, merger_module = vision_modules(model)
    tower_params = [p for module in tower_parts for p in module.parameters()]
    merger_params = list(merger_module.parameters())
    for params, freeze in ((tower_params, tower), (merger_params, merger)):
        if freeze:
            for p in params:
                p.requires_grad_(False)
    everything = list(model.parameters())
    return {
        "frozen": sum(p.numel() for p in everything if not p.requires_grad),
        "trainable": sum(p.numel() for p in everything if p.requires_grad),
        "tower": sum(p.numel() for p in tower_params),
        "merger": sum(p.numel() for p in merger_params),
    }
