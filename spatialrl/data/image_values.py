"""One image value of an external record, read to its encoded bytes, safely.

``spatialrl data mirror`` and ``spatialrl data import`` read records written by other tools,
whose image fields take several forms: a path relative to the data root, a ``data:`` URI, raw
bytes, a ``{"bytes", "path"}`` mapping (Hugging Face's ``Image`` struct, bytes raw or base64)
or a decoded PIL image. :func:`read_image_value` reads any of them and refuses a path that
leaves the root (``..``, a symlink out of it, or, with ``allow_absolute=False``, any absolute
path). It raises :class:`ImageValueError` with a ``kind`` (``outside_root``, ``missing``,
``malformed``), and each command applies its own policy: ``data mirror`` stops with an error,
``data import`` counts the question as skipped.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["ImageValueError", "path_inside", "read_image_value"]


class ImageValueError(ValueError):
    """An image value that cannot be read; ``kind`` says why (``outside_root``, ``missing`` or
    ``malformed``) and the message names the value, not the record (the caller does that)."""

    def __init__(self, kind: str, message: str):
        self.kind = kind
        super().__init__(message)


def path_inside(root: Path, rel: str, allow_absolute: bool = True) -> Path:
    """The existing file ``rel`` names under ``root`` (resolved: a symlink may not lead out)."""
    candidate = Path(rel)
    if candidate.is_absolute() and not allow_absolute:
        raise ImageValueError("outside_root", f"image path {rel!r} is absolute; give it relative to the data root {root}")
    path = (candidate if candidate.is_absolute() else root / candidate).resolve()
    try:
        path.relative_to(root.resolve())
    except ValueError:
        raise ImageValueError("outside_root", f"image path {rel!r} is outside the data root {root}") from None
    if not path.is_file():
        raise ImageValueError("missing", f"image file {rel!r} not found")
    return path


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ImageValueError("malformed", what) from None


def read_image_value(value: Any, root: Path, *, allow_absolute: bool = True) -> tuple[bytes, str | None]:
    """``(encoded image bytes, file name or None)`` of one image value (module docstring)."""
    if isinstance(value, (bytes, bytearray)) and value:
        return bytes(value), None
    if isinstance(value, str) and value.strip():
        if value.startswith("data:"):
            if "," not in value:
                raise ImageValueError("malformed", "malformed data: URI")
            return _b64(value.split(",", 1)[1], "malformed data: URI"), None
        path = path_inside(root, value, allow_absolute)
        return path.read_bytes(), path.name
    if isinstance(value, Mapping):
        data, name = value.get("bytes"), value.get("path")
        label = Path(name).name if isinstance(name, str) and name else None
        if isinstance(data, (bytes, bytearray)) and data:
            return bytes(data), label
        if isinstance(data, str) and data:
            return _b64(data, "'bytes' is not valid base64"), label
        if isinstance(name, str) and name:
            path = path_inside(root, name, allow_absolute)
            return path.read_bytes(), path.name
        raise ImageValueError("malformed", "image has neither bytes nor path")
    if value is not None and hasattr(value, "save") and hasattr(value, "size"):  # a decoded PIL image
        buf = io.BytesIO()
        value.save(buf, format=getattr(value, "format", None) or "PNG")
        return buf.getvalue(), None
    raise ImageValueError("malformed", f"expected an image path, data: URI or {{'bytes','path'}}, got "
                                       f"{type(value).__name__} {value!r:.40}")
