"""Loading a job's model and processor for training, with its one pixel budget.

The budget (``min_pixels`` / ``max_pixels``, :mod:`spatialrl.models.pixels`) comes from the
recipe where it sets one, else from the dataset card (``spatialrl data build`` records the
budget its images were made for), else it is the processor's own. A recipe whose budget differs
from the card's is refused with an error naming both values. The processor gets the budget, so
the rollouts of HF generation, the training forward pass and the processor saved with every
checkpoint (which evaluation and vLLM load) all resize images the same way.

vLLM rollouts (``use_vllm``) load the model's own saved processor, which spatialrl cannot set:
a budget that processor would not leave unchanged is refused before anything loads.
"""

from __future__ import annotations

from typing import Any

from spatialrl.models.pixels import PixelBudget

__all__ = ["load_for_training", "pixel_budget", "pixel_problem"]


def pixel_budget(spatial: Any) -> PixelBudget | None:
    """The job's budget (see the module doc), or None to keep the processor's own.

    Raises:
        ValueError: the recipe's ``min_pixels`` / ``max_pixels`` differs from the dataset card's.
    """
    from spatialrl.data.load import dataset_pixel_budget

    card = dataset_pixel_budget(spatial.dataset) or {}
    for name in ("max_pixels", "min_pixels"):
        ours, theirs = getattr(spatial, name), card.get(name)
        if ours is not None and theirs is not None and ours != theirs:
            raise ValueError(
                f"pixel budget mismatch: the recipe's {name} is {ours} but the data in {spatial.dataset} was built "
                f"for {name} {theirs} (its README.md); the same image would become a different number of image "
                f"tokens than the data was made for. Set `{name}: {theirs}` in the recipe (or --{name} {theirs}), "
                f"or rebuild the data with `spatialrl data build --max-pixels {ours}`")
    high = spatial.max_pixels if spatial.max_pixels is not None else card.get("max_pixels")
    if high is None:
        return None
    low = spatial.min_pixels if spatial.min_pixels is not None else card.get("min_pixels")
    return PixelBudget(int(low) if low is not None else PixelBudget.min_pixels, int(high))


def pixel_problem(job: Any) -> str | None:
    """Why the job's pixel budget cannot hold (one line naming both values), or None."""
    try:
        budget = pixel_budget(job.spatial)
    except ValueError as exc:
        return str(exc)
    if budget is None or not getattr(job.trl, "use_vllm", False):
        return None
    from spatialrl.models.published import processor_pixels

    saved = processor_pixels(job.spatial.model)
    if saved is None:
        return None
    engine = PixelBudget(saved["min_pixels"], saved["max_pixels"])
    if engine.contains(budget):
        return None
    return (f"pixel budget mismatch: vLLM rollouts load {job.spatial.model}'s own processor (min_pixels="
            f"{engine.min_pixels}, max_pixels={engine.max_pixels}), which would resize images the trainer keeps "
            f"under the recipe's budget (min_pixels={budget.min_pixels}, max_pixels={budget.max_pixels}); rollouts "
            "and training would see different image tokens. Use a budget inside the model's range, or save the model "
            "with a processor whose range contains the recipe's")


def load_for_training(job: Any, log: Any = print) -> tuple[Any, Any, PixelBudget | None]:
    """``(model, processor, budget)`` for ``job``: the dtype from ``bf16`` (GRPO, or SFT with
    LoRA), ``attn_implementation``, the pixel budget set on the processor, and the vision
    tower / merger frozen where asked."""
    import torch

    from spatialrl.models import load_model_and_processor
    from spatialrl.models.pixels import set_processor_budget

    spatial, args = job.spatial, job.trl
    half = bool(args.bf16) and not args.use_cpu and (job.kind == "grpo" or spatial.lora)
    extra = {"attn_implementation": spatial.attn_implementation} if spatial.attn_implementation else {}
    model, processor = load_model_and_processor(spatial.model, dtype=torch.bfloat16 if half else torch.float32, **extra)
    budget = pixel_budget(spatial)
    if budget is not None:
        set_processor_budget(processor, budget)
        log(f"pixel budget: {budget}")
    if spatial.freeze_vision_tower or spatial.freeze_merger:
        from spatialrl.models.freezing import freeze_vision

        counts = freeze_vision(model, tower=spatial.freeze_vision_tower, merger=spatial.freeze_merger)
        log(f"frozen: {counts}")
    return model, processor, budget
