"""Decoding an input image and flipping it left-right, in its own format."""

from __future__ import annotations

import io
from typing import Any

from spatialrl.data.mirror_text.reasons import MirrorInputError, Skip

__all__ = ["flip_image", "open_image"]


_SAVE_FORMATS = {"PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF"}


def open_image(data: bytes, ref: str, column: str) -> Any:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise MirrorInputError(f"{ref}: field {column!r}: cannot decode the image ({exc})") from None
    if getattr(img, "n_frames", 1) > 1:
        raise Skip("animated_image", f"{img.n_frames} frames")
    fmt = img.format
    # Flip what a viewer shows: apply the EXIF orientation first (the mirror has none).
    shown = ImageOps.exif_transpose(img)
    shown.format = fmt
    return shown


def flip_image(img: Any, jpeg_quality: int) -> tuple[bytes, str]:
    from PIL import Image

    flipped = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    fmt = (img.format or "PNG").upper()
    if fmt not in _SAVE_FORMATS:
        fmt = "PNG"
    buf = io.BytesIO()
    kwargs: dict[str, Any] = {}
    if fmt == "JPEG":
        kwargs = {"quality": jpeg_quality}
        if flipped.mode not in ("RGB", "L", "CMYK"):
            flipped = flipped.convert("RGB")
    elif fmt == "WEBP":
        kwargs = {"lossless": True}
    flipped.save(buf, format=fmt, **kwargs)
    ext = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tiff", "GIF": ".gif"}[fmt]
    return buf.getvalue(), ext
