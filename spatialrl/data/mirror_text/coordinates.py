"""Boxes and points under a horizontal flip (SVQA-R1 appendix A.2).

Boxes ``[x1, y1, x2, y2]`` become ``[W - x2, y1, W - x1, y2]``, points ``(x, y)`` become
``(W - x, y)``, with W the image width in pixels, or 1 / 1000 for normalised coordinates
(``--coords``); ``[x, y, w, h]`` boxes with ``--box-format xywh``. One frame is chosen and
checked per row (:func:`resolve_frame`); a row whose coordinates fail the checks is left out
with its reason. Values are flipped in decimal arithmetic and written back with the places the
input had, so ``0.25`` stays a two-place number and no float noise appears.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from spatialrl.data.mirror_text.reasons import Skip

__all__ = ["COORD_MODES", "Coords", "Frame", "coord_spans", "flip_values", "resolve_frame", "scan_coords", "to_decimal"]


_NUM = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)"
_PTS2 = re.compile(
    rf"\(\s*(?P<a>{_NUM})\s*,\s*(?P<b>{_NUM})\s*\)\s*(?:,|to|and|-)?\s*\(\s*(?P<c>{_NUM})\s*,\s*(?P<d>{_NUM})\s*\)"
)
_BOX4 = re.compile(rf"[\[(]\s*(?P<a>{_NUM})\s*,\s*(?P<b>{_NUM})\s*,\s*(?P<c>{_NUM})\s*,\s*(?P<d>{_NUM})\s*[\])]")
_POINT = re.compile(rf"[\[(]\s*(?P<a>{_NUM})\s*,\s*(?P<b>{_NUM})\s*[\])]")
_NUMLIST = re.compile(rf"[\[(]\s*{_NUM}(?:\s*,\s*{_NUM}){{2,}}\s*[\])]")

COORD_MODES = ("pixel", "norm1", "norm1000", "auto")


@dataclass
class Coords:
    """One coordinate tuple: ``kind`` is "box" (x1,y1,x2,y2 or x,y,w,h), "corners"
    ((x1,y1),(x2,y2)) or "point" (x, y); ``spans`` are the number spans in the text (None
    for list values)."""

    kind: str
    values: list[Decimal]
    spans: list[tuple[int, int]] | None = None
    texts: list[str] | None = None


def scan_coords(text: str) -> list[Coords]:
    found: list[Coords] = []
    taken: list[tuple[int, int]] = []

    def free(s: int, e: int) -> bool:
        return all(e <= a or s >= b for a, b in taken)

    for kind, pattern in (("corners", _PTS2), ("box", _BOX4), ("point", _POINT)):
        for m in pattern.finditer(text):
            if not free(m.start(), m.end()):
                continue
            names = ("a", "b", "c", "d") if kind != "point" else ("a", "b")
            spans = [m.span(n) for n in names]
            texts = [m.group(n) for n in names]
            found.append(Coords(kind, [Decimal(t) for t in texts], spans, texts))
            taken.append(m.span())
    for m in _NUMLIST.finditer(text):
        if free(m.start(), m.end()):
            raise Skip("unsupported_coordinates", m.group(0))
    return found


def to_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise Skip("unsupported_value", repr(value))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Skip("bad_row", f"non-finite number {value!r} in the coordinates; every coordinate must be a finite number")
        return Decimal(repr(value))
    raise Skip("unsupported_value", repr(value))


def _xs_ys(c: Coords, box_format: str) -> tuple[list[Decimal], list[Decimal]]:
    v = c.values
    if c.kind == "point":
        return [v[0]], [v[1]]
    if c.kind == "box" and box_format == "xywh":
        return [v[0], v[0] + v[2]], [v[1], v[1] + v[3]]
    return [v[0], v[2]], [v[1], v[3]]


@dataclass(frozen=True)
class Frame:
    """The coordinate frame of one row: extent ``(W, H)`` of the x and y axes."""

    mode: str
    width: Decimal
    height: Decimal
    box_format: str


def resolve_frame(coords: list[Coords], width: float | None, height: float | None, mode: str, box_format: str) -> Frame | None:
    """Choose and validate the coordinate frame for all tuples of a row; ``None`` if none."""
    if not coords:
        return None
    for c in coords:
        v = c.values
        if c.kind in ("box", "corners"):
            if box_format == "xywh" and c.kind == "box":
                if v[2] < 0 or v[3] < 0:
                    raise Skip("invalid_box", f"negative width/height in {[str(x) for x in v]}")
            elif v[2] < v[0] or v[3] < v[1]:
                raise Skip("invalid_box", f"{[str(x) for x in v]} is not x1 <= x2, y1 <= y2")
    xs: list[Decimal] = []
    ys: list[Decimal] = []
    for c in coords:
        x, y = _xs_ys(c, box_format)
        xs += x
        ys += y
    allv = xs + ys
    if min(allv) < 0:
        raise Skip("box_out_of_bounds", f"negative coordinate {min(allv)}")
    fractional = any(v != v.to_integral_value() for v in allv)
    if mode == "auto":
        if max(allv) <= 1 and (fractional or width is None):
            mode = "norm1"
        elif width is None or height is None:
            raise Skip("no_image_size", "cannot tell the coordinate system without the image size")
        elif (max(xs) > Decimal(repr(width)) or max(ys) > Decimal(repr(height))) and max(allv) <= 1000:
            mode = "norm1000"
        elif width == 1000 and height == 1000:
            mode = "pixel"
        else:
            raise Skip(
                "ambiguous_box_coordinates",
                f"values up to {max(allv)} fit both a {width}x{height} pixel grid and a 0-1000 grid; pass --coords",
            )
    if mode == "pixel":
        if width is None or height is None:
            raise Skip("no_image_size", "pixel coordinates need the image size")
        W, H = Decimal(repr(width)), Decimal(repr(height))
        if max(allv) <= 1 and fractional:
            raise Skip("box_looks_normalised", "all values in [0,1]; pass --coords norm1 if they are normalised")
        if max(xs) > W or max(ys) > H:
            raise Skip(
                "box_out_of_bounds",
                f"max x {max(xs)} / max y {max(ys)} outside the {width}x{height} image "
                "(pass --coords norm1000 for a 0-1000 grid)",
            )
        return Frame("pixel", W, H, box_format)
    extent = Decimal(1) if mode == "norm1" else Decimal(1000)
    if max(allv) > extent:
        raise Skip("box_out_of_bounds", f"value {max(allv)} > {extent} with --coords {mode}")
    return Frame(mode, extent, extent, box_format)


def flip_values(c: Coords, frame: Frame) -> list[Decimal]:
    """x1' = W - x2, x2' = W - x1 (SVQA-R1 appendix A.2); points x' = W - x; y unchanged."""
    v = c.values
    W = frame.width
    if c.kind == "point":
        return [W - v[0], v[1]]
    if c.kind == "box" and frame.box_format == "xywh":
        return [W - v[0] - v[2], v[1], v[2], v[3]]
    return [W - v[2], v[1], W - v[0], v[3]]


def _fmt_decimal(value: Decimal, like: Sequence[str]) -> str:
    places = max((len(t.split(".", 1)[1]) if "." in t else 0) for t in like)
    if places == 0 and value == value.to_integral_value():
        return str(int(value))
    return format(value.quantize(Decimal(1).scaleb(-places)) if places else value, "f")


def coord_spans(coords: list[Coords], frame: Frame | None) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []
    if frame is None:
        return spans
    for c in coords:
        assert c.spans is not None and c.texts is not None
        new = flip_values(c, frame)
        if c.kind == "point":
            sources = [[c.texts[0]], [c.texts[1]]]
        elif c.kind == "box" and frame.box_format == "xywh":
            sources = [[c.texts[0], c.texts[2]], [c.texts[1]], [c.texts[2]], [c.texts[3]]]
        else:
            sources = [[c.texts[2]], [c.texts[1]], [c.texts[0]], [c.texts[3]]]
        for (s, e), value, like in zip(c.spans, new, sources):
            spans.append((s, e, _fmt_decimal(value, like)))
    return spans
