"""One pixel budget (``min_pixels`` / ``max_pixels``) for data, processor, rollouts and evaluation.

Qwen2.5-VL turns an image into ``(h / 28) * (w / 28)`` tokens after its processor resizes it
with ``smart_resize``: each side rounded to a multiple of 28, the area scaled into
``[min_pixels, max_pixels]``. When the data build, the trainer's processor, the rollout engine
(vLLM loads its own processor) and the evaluation disagree on these two numbers, the same
image becomes a different number of tokens in different places: an image-token count mismatch
error at best, a policy trained on one resolution and sampled at another at worst. So a
recipe declares the budget once, the data build records it in the dataset card, and every
consumer either applies it or refuses a mismatch with an error naming both values.

An image the build already sized with ``smart_resize`` under a budget passes unchanged through
any processor whose range contains that image's area, which is what :func:`budget_problem`
checks for a rollout engine whose processor we cannot set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spatialrl._image_size import smart_resize

__all__ = ["PATCH", "PixelBudget", "processor_budget", "set_processor_budget", "smart_resize"]

#: Qwen2.5-VL's patch side (14) times its 2 x 2 token merge: one image token per 28 x 28 pixels.
PATCH = 28


@dataclass(frozen=True)
class PixelBudget:
    """The image processor's pixel range.

    Attributes:
        min_pixels: smallest area an image is scaled up to (Qwen2.5-VL's default 3,136 = 56 x 56).
        max_pixels: largest area an image is scaled down to (256 tokens: 200,704 = 256 x 28 x 28).
    """

    min_pixels: int = 3136
    max_pixels: int = 12845056

    def __post_init__(self) -> None:
        if self.min_pixels < PATCH * PATCH:
            raise ValueError(f"min_pixels must be at least {PATCH * PATCH} (one {PATCH} x {PATCH} token); got {self.min_pixels}")
        if self.max_pixels < self.min_pixels:
            raise ValueError(f"max_pixels ({self.max_pixels}) must be >= min_pixels ({self.min_pixels})")

    def resized(self, width: int, height: int) -> tuple[int, int]:
        """The processor's size for a ``width x height`` image."""
        return smart_resize(width, height, self.min_pixels, self.max_pixels, PATCH)

    def image_tokens(self, width: int, height: int) -> int:
        """Image tokens of a ``width x height`` image under this budget."""
        w, h = self.resized(width, height)
        return (w // PATCH) * (h // PATCH)

    @property
    def max_image_tokens(self) -> int:
        """The most tokens one image can take."""
        return self.max_pixels // (PATCH * PATCH)

    def contains(self, other: "PixelBudget") -> bool:
        """Whether every image already sized under ``other`` passes this budget unchanged."""
        return self.min_pixels <= other.min_pixels and self.max_pixels >= other.max_pixels

    def __str__(self) -> str:
        return f"min_pixels={self.min_pixels}, max_pixels={self.max_pixels} (<= {self.max_image_tokens} image tokens an image)"


def processor_budget(processor: Any) -> PixelBudget | None:
    """The budget a processor (or image processor) applies, or None if it has none."""
    image_processor = getattr(processor, "image_processor", processor)
    size = getattr(image_processor, "size", None) or {}
    low = size.get("shortest_edge", getattr(image_processor, "min_pixels", None))
    high = size.get("longest_edge", getattr(image_processor, "max_pixels", None))
    if low is None or high is None:
        return None
    return PixelBudget(int(low), int(high))


def set_processor_budget(processor: Any, budget: PixelBudget) -> None:
    """Make ``processor`` resize every image to ``budget`` (its ``size`` and, where the class
    keeps them, its ``min_pixels`` / ``max_pixels`` attributes, which it would otherwise prefer)."""
    image_processor = getattr(processor, "image_processor", processor)
    if image_processor is None or not hasattr(image_processor, "size"):
        raise ValueError(f"{type(processor).__name__} has no image processor to give a pixel budget")
    image_processor.size = {"shortest_edge": budget.min_pixels, "longest_edge": budget.max_pixels}
    for name, value in (("min_pixels", budget.min_pixels), ("max_pixels", budget.max_pixels)):
        if getattr(image_processor, name, None) is not None:
            setattr(image_processor, name, value)
