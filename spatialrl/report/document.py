"""The report as data: sections of blocks, which both templates (HTML and Markdown) render.

A block's text may hold two kinds of inline markup, the same in both outputs: `code` spans
and **bold**; everything else is plain text (the HTML template escapes it). Each block class
names its ``kind``, which the templates switch on. The number formatting shared by all
sections lives here too, so that a value reads the same wherever it appears.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass
class Cell:
    text: str
    cls: str = ""  # "num", "pos", "neg", "best", ...
    value: float | None = None  # exact value, written as data-value in HTML


@dataclass
class Table:
    kind: ClassVar[str] = "table"
    headers: list[str]
    rows: list[list[Cell]]
    row_classes: list[str] = field(default_factory=list)
    caption: str = ""

    def numeric_columns(self) -> list[bool]:
        """Per column: every row's cell is a number (``num`` class), so the column aligns right."""
        return [bool(self.rows) and all("num" in row[i].cls.split() for row in self.rows if i < len(row))
                for i in range(len(self.headers))]

    def row_class(self, i: int) -> str:
        return self.row_classes[i] if i < len(self.row_classes) else ""


@dataclass
class Card:
    label: str
    text: str
    detail: str
    key: str
    value: float | None
    cls: str = ""


@dataclass
class Fig:
    kind: ClassVar[str] = "fig"
    name: str  # file stem under report_files/
    png: bytes
    alt: str
    caption: str


@dataclass
class Para:
    kind: ClassVar[str] = "para"
    text: str  # `code` spans allowed


@dataclass
class Note:
    kind: ClassVar[str] = "note"
    text: str


@dataclass
class Bullets:
    kind: ClassVar[str] = "bullets"
    items: list[str]


@dataclass
class Cards:
    kind: ClassVar[str] = "cards"
    cards: list[Card]


@dataclass
class Section:
    id: str
    title: str
    blocks: list[Any]


def code_list(paths: tuple[str, ...]) -> str:
    return " or ".join(f"`{p}`" for p in paths)


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    if not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"


def fmt_diff(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:+.1f}".replace("-", "−")


def diff(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
        return None
    return a - b


def sign_cls(value: float | None) -> str:
    if value is None:
        return "num"
    return "num pos" if value > 0 else "num neg" if value < 0 else "num"


def finite(values: list[float]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]
