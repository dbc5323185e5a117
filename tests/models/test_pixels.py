"""The pixel budget: Qwen2.5-VL's smart_resize, token counts the processor agrees with, and a
mismatch refused naming both values."""

from __future__ import annotations

import pytest
from PIL import Image

from spatialrl.models.pixels import PixelBudget, processor_budget, set_processor_budget, smart_resize


@pytest.mark.parametrize("size,budget,expected", [
    ((640, 480), (3136, 200704), (504, 364)),     # shrunk: floor of the common factor
    ((1296, 968), (3136, 401408), (728, 532)),    # ScanNet's colour frame at 512 tokens
    ((112, 112), (3136, 12544), (112, 112)),      # already a multiple of 28 and within: unchanged
    ((30, 20), (3136, 12544), (84, 56)),          # grown to min_pixels: ceil
])  # fmt: skip
def test_smart_resize_known_sizes(size, budget, expected):
    w, h = smart_resize(*size, *budget)
    assert (w, h) == expected and w % 28 == 0 and h % 28 == 0 and budget[0] <= w * h <= budget[1]


def test_the_processor_gives_the_budget_s_token_count():
    from spatialrl.models import load_processor

    processor = load_processor("spatialrl/assets/tiny-spatial-vlm")
    assert processor_budget(processor) == PixelBudget(3136, 12544)
    budget = PixelBudget(3136, 200704)
    set_processor_budget(processor, budget)
    assert processor_budget(processor) == budget
    for size in ((640, 480), (448, 448), (1296, 968), (50, 40)):
        grid = processor.image_processor(images=[Image.new("RGB", size)])["image_grid_thw"][0]
        assert int(grid[1] * grid[2]) // 4 == budget.image_tokens(*size), size
    assert budget.max_image_tokens == 256


def test_containment_and_invalid_budgets():
    data, engine = PixelBudget(3136, 401408), PixelBudget(3136, 12845056)
    assert engine.contains(data) and not data.contains(engine)
    with pytest.raises(ValueError, match="max_pixels"):
        PixelBudget(3136, 1000)
    with pytest.raises(ValueError, match="min_pixels"):
        PixelBudget(100, 200704)
