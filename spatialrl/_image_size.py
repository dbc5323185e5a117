"""Qwen2.5-VL's ``smart_resize``: the size its image processor gives an image.

Re-implemented (``qwen_vl_utils`` and transformers' Qwen2-VL image-processor module import
torchvision, which has no CPU build here). Shared by the scan builder, which stores frames at
that size (:func:`spatialrl.data.scan_frames.output_size`), and the pixel budget
(:mod:`spatialrl.models.pixels`), which counts image tokens with it.
"""

from __future__ import annotations

import math

__all__ = ["smart_resize"]


def smart_resize(width: int, height: int, min_pixels: int, max_pixels: int, factor: int = 28) -> tuple[int, int]:
    """``(width, height)``: both sides rounded to multiples of ``factor``, then scaled down
    (floor) or up (ceil) by one common factor until the area is within ``[min_pixels,
    max_pixels]``, the aspect ratio kept as nearly as rounding allows."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width} x {height}")
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return int(w), int(h)
