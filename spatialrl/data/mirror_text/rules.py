"""Mirror a QA dataset that has no scene graph: flip each image, rewrite its text (SVQA-R1).

SVQA-R1 (sec. 3.1) pairs every sample with its horizontally flipped image and a question and
answer adapted to the flipped view; the pair feeds Spatial-GRPO's view-consistency reward
(sec. 3.3). The paper asks GPT-4o to do the adaptation with a rewrite-and-verify prompt
(sec. 3.1, its prompt table), because naive left/right swapping gives inconsistent pairs.
Appendix A names what has to change: left/right relations (A.1) and bounding boxes (A.2),
while attributes, counts and global scene questions are unaffected (A.3); distances are
mirror-invariant (sec. 3.3).

This module does the adaptation with deterministic rules, and optionally with an LLM whose
rewrite is accepted only when a rule-based check agrees with it. Rules (see
``docs/mirroring.md`` for the full table and the reasoning):

* words: left <-> right, also inside leftmost/rightmost, leftward(s), left-hand, top-left...
  capitalisation kept, swapped simultaneously in one pass; "right" as an intensifier
  ("right next to"), "all right", "right angle", "right side up" stay as they are;
* rotation: clockwise <-> counterclockwise / anticlockwise (a reflection reverses the sense
  of every rotation);
* clock directions: "at h o'clock" -> "at (12 - h) o'clock" (12 and 6 stay); h:mm likewise;
* coordinates: boxes ``[x1, y1, x2, y2]`` -> ``[W - x2, y1, W - x1, y2]``, points
  ``(x, y)`` -> ``(W - x, y)``, with W the image width in pixels or 1 / 1000 for normalised
  coordinates (``--coords``); the same for a box column;
* numbers otherwise (distances, sizes, counts) are never touched;
* left out, each with a counted reason: "left" meaning remaining or the verb to leave,
  "right" meaning correct, any left/right the rules cannot classify, compass east/west,
  port/starboard, text or clock-face reading, boxes that fail the coordinate checks.

Every output row also carries the typed answer columns the rewards read (``answer_type``,
``answer_value``, ``dimension``, ``unit``, ``options``, ``answer_index``, ``bbox``), derived from
that view's own text and box by ``spatialrl.data.typed_answers``. A non-finite number in a box
is malformed input (an error naming the row and field, or ``bad_row`` with --skip-bad-rows).

Deviation from the paper: the paper uses GPT-4o alone; here rules are the default and the
LLM (``--llm``) is an option whose output must pass the rule check, else the rule rewrite is
used (or, when the rules could not classify the row, it is skipped with its reason).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import io
import json
import logging
import math
import os
import re
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

__all__ = [
    "HELP",
    "MirrorInputError",
    "RowOutcome",
    "TextOutcome",
    "SVQA_R1_REWRITE_PROMPT",
    "add_arguments",
    "build_rewrite_messages",
    "check_llm_rewrite",
    "mirror_fields",
    "parse_rewrite_reply",
    "rewrite_text",
    "run",
]

HELP = "mirror an existing QA dataset: flip images, rewrite left/right text and boxes, keep pairs"

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Skip reasons (every row that is left out is counted under exactly one of these)
# --------------------------------------------------------------------------------------------

REASONS = {
    "text_reading": "asks to read text (signs, labels, writing): the flipped image shows mirrored text",
    "clock_reading": "asks for the time on a clock face: the flipped face is not a valid clock",
    "compass_direction": "east/west words: whether they follow the image's x axis is unknown",
    "nautical_side": "port/starboard: tied to the vessel, not to the view, and easily misread",
    "left_not_direction": "'left' means remaining or is the verb to leave",
    "right_not_direction": "'right' means correct",
    "ambiguous_left_right": "a left/right word the rules cannot classify with certainty",
    "invalid_box": "a box with x2 < x1 or y2 < y1 (or negative width/height)",
    "box_out_of_bounds": "coordinates outside the image (or outside [0,1] / [0,1000])",
    "box_looks_normalised": "pixel coordinates requested but all values are fractions in [0,1]",
    "ambiguous_box_coordinates": "--coords auto cannot tell pixel from 0-1000 coordinates",
    "unsupported_coordinates": "a bracketed number list that is neither a box nor a point",
    "no_image_size": "coordinates in the text but no image size to flip them with",
    "unsupported_value": "a field value of a type the rules do not handle",
    "multiple_images": "more than one image in the row",
    "animated_image": "an animated (multi-frame) image",
    "bad_row": "malformed input row (only with --skip-bad-rows; otherwise it is an error)",
}


class _Skip(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        assert reason in REASONS, reason
        self.reason = reason
        self.detail = detail


class MirrorInputError(ValueError):
    """Bad input; the message names the file, the line or row, and the field."""


# --------------------------------------------------------------------------------------------
# Content rules: questions whose answer the rules cannot adapt (appendix A has no such case;
# these are our additions, all counted)
# --------------------------------------------------------------------------------------------

_I = re.IGNORECASE
_TEXT_READING = [
    re.compile(r"\bwhat\s+(?:does|do|did)\b[^?.!]*\b(?:say|read|spell)\b", _I),
    re.compile(r"\b(?:sign|label|text|screen|board|banner|poster|shirt|display|plate|note|card)s?\s+(?:says?|reads?)\b", _I),
    re.compile(r"\b(?:written|writing|inscription|inscribed|lettering|handwriting|handwritten|ocr)\b", _I),
    re.compile(r"\b(?:reads|spells?|spelled|spelt)\b", _I),
    re.compile(r"\bread\s+(?:the|this|that|what|it)\b", _I),
    re.compile(r"\b(?:text|words?|letters?|characters?|numbers?|digits?)\s+(?:on|written|printed|displayed|shown|painted)\b", _I),
    re.compile(r"\bwhat\s+(?:number|letter|word|digit|text)s?\b", _I),
    re.compile(r"\b(?:text|brand|logo|license\s+plate|licence\s+plate|jersey\s+number|street\s+name|slogan|caption)\b", _I),
    re.compile(r"\btitle\s+of\b", _I),
]
_CLOCK_READING = [
    re.compile(r"\bwhat\s+time\b(?!\s+of\s+(?:the\s+)?(?:day|year))", _I),
    re.compile(r"\bclocks?\s+(?:say|says|show|shows|read|reads|display|displays|indicate|indicates)\b", _I),
    re.compile(r"\btime\s+(?:is\s+)?(?:shown|displayed|on\s+the\s+clock)\b", _I),
]
_COMPASS = re.compile(
    r"\b(?:east|west|eastern|western|eastward|eastwards|westward|westwards|easterly|westerly|"
    r"northeast\w*|northwest\w*|southeast\w*|southwest\w*)\b",
    _I,
)
_NAUTICAL = re.compile(r"\b(?:starboard|larboard|portside|port[- ]side|to\s+port|on\s+port)\b", _I)


def _content_check(text: str) -> None:
    for pattern in _TEXT_READING:
        m = pattern.search(text)
        if m:
            raise _Skip("text_reading", m.group(0))
    for pattern in _CLOCK_READING:
        m = pattern.search(text)
        if m:
            raise _Skip("clock_reading", m.group(0))
    m = _COMPASS.search(text)
    if m:
        raise _Skip("compass_direction", m.group(0))
    m = _NAUTICAL.search(text)
    if m:
        raise _Skip("nautical_side", m.group(0))


# --------------------------------------------------------------------------------------------
# Left / right words (appendix A.1)
# --------------------------------------------------------------------------------------------

_WORD = re.compile(r"\b(?P<base>left|right)(?P<suf>most|wards?|handed|hand)?\b", _I)

# Word before a left/right that makes it a direction: determiners, possessives, prepositions,
# position modifiers ("upper left", "far right", "top-left") and verbs of motion/orientation.
_SPATIAL_PREV = frozenset(
    """the its his her their my your our whose to toward towards from far upper lower top bottom
    front back rear middle center centre central extreme very slightly further farther
    turn turns turned turning go goes going went move moves moved moving head heads heading
    headed face faces facing faced look looks looking looked point points pointing pointed
    lean leans leaning leaned leant tilt tilts tilted tilting veer veers veered veering swerve
    swerves swerved swerving shift shifts shifted shifting glance glances glancing gaze gazes
    gazing oriented directed drift drifts drifting steer steers steering swipe swipes scroll
    scrolls bear bears keep keeps stay stays roll rolls rolled rolling slide slides slid sliding
    walk walks walked walking run runs ran running drive drives drove driving swing swings swung
    swinging fly flies flew flying""".split()
)
# Word after a left/right that makes it a direction ("left of", "right side", "left hand").
_SPATIAL_NEXT = frozenset(
    """of side sides hand hands handed edge edges corner corners part parts half halves portion
    portions section sections area areas region regions border borders margin margins wall walls
    column columns lane lanes arm arms leg legs foot feet eye eyes ear ears shoulder shoulders
    wing wings wrist wrists knee knees elbow elbows cheek cheeks hip hips turn turns field bank
    banks flank flanks panel panels page pages window windows door doors""".split()
)
_PAIR_WORDS = frozenset({"and", "or", "nor", "to", "vs", "versus"})
# "left" as remaining / the verb to leave: after be / have / get / quantity words / pronouns.
_LEFT_VERB_PREV = frozenset(
    """is are was were be been being has have had get gets got getting remain remains remained
    remaining still nothing anything something everything none much many few any some who he
    she they it we i you someone somebody everyone everybody nobody""".split()
)
_LEFT_HAVE = frozenset({"has", "have", "had", "who", "he", "she", "they", "we", "i", "you"})
_LEFT_NONDIR_NEXT = frozenset(
    """over behind alone unattended untouched uneaten unfinished undone open out home early
    empty""".split()
)
# "right" as an intensifier ("right next to", "right behind", "right now").
_RIGHT_INTENSIFIED = frozenset(
    """next behind beside besides above below under underneath beneath over on at in into onto
    near by there here now away after before up down through across along against outside
    inside between around off back where when alongside atop opposite within toward towards
    upon""".split()
)
_RIGHT_KEEP_NEXT = frozenset({"angle", "angles", "angled", "triangle", "triangles"})
_RIGHT_CORRECT_NEXT = frozenset({"answer", "answers", "choice", "choices", "option", "options", "decision", "solution"})
_IMAGE_WORDS = frozenset({"image", "picture", "photo", "photograph", "frame", "scene", "view", "shot"})

_PREV_WORD = re.compile(r"([A-Za-z][A-Za-z']*)[ \t\-]+$")
_NEXT_WORD = re.compile(r"^[ \t\-]+([A-Za-z][A-Za-z']*)")
_CLAUSE_START = re.compile(r"(?:^|[.?!;:(\"'\n])\s*$")
_CLAUSE_END = re.compile(r"^\s*(?:[.?!,;:)\"'\n]|$)")

SPATIAL, KEEP, NONDIR, UNSURE = "spatial", "keep", "nondir", "unsure"


def _prev_words(text: str, pos: int, n: int = 2) -> list[str]:
    out: list[str] = []
    prefix = text[max(0, pos - 80) : pos]
    for _ in range(n):
        m = _PREV_WORD.search(prefix)
        if not m:
            break
        out.append(m.group(1).lower())
        prefix = prefix[: m.start()]
    return out + [""] * (n - len(out))


def _next_words(text: str, pos: int, n: int = 3) -> list[str]:
    out: list[str] = []
    rest = text[pos : pos + 80]
    for _ in range(n):
        m = _NEXT_WORD.match(rest)
        if not m:
            break
        out.append(m.group(1).lower())
        rest = rest[m.end() :]
    return out + [""] * (n - len(out))


def _clause(text: str, pos: int) -> str:
    """The clause around ``pos`` (between sentence punctuation), lower-cased."""
    start = max(text.rfind(c, 0, pos) for c in ".?!;\n") + 1
    ends = [i for i in (text.find(c, pos) for c in ".?!;\n") if i >= 0]
    return text[start : min(ends) if ends else len(text)].lower()


def _classify(text: str, m: re.Match[str]) -> str:
    """Classify one left/right occurrence from its neighbouring words.

    SPATIAL: a direction, swapped. KEEP: not a direction and unambiguous ("right next to",
    "all right", "right angle"), kept. NONDIR: not a direction ("how many are left", "the
    right answer"); the row is left out, because telling these from directions by rules is
    error-prone and a wrong guess corrupts the pair. UNSURE: no rule applies; left out.
    """
    base = m.group("base").lower()
    if m.group("suf"):  # leftmost, rightwards, left-handed (no hyphen) ...
        return SPATIAL
    start, end = m.start(), m.end()
    prev1, prev2 = _prev_words(text, start)
    next1, next2, next3 = _next_words(text, end)
    after = text[end:]
    before = text[:start]
    hyphen_after = after.startswith("-")
    # left/right, right/left
    if re.match(r"\s*/\s*(?:left|right)\b", after, _I) or re.search(r"\b(?:left|right)\s*/\s*$", before, _I):
        return SPATIAL
    if base == "right":
        if hyphen_after and next1 in _RIGHT_KEEP_NEXT:
            return KEEP  # right-angled
        if re.match(r"[ \t\-]+(?:side|way)[ \t\-]+(?:up|out)\b", after, _I):
            return KEEP  # right side up
        if prev1 == "all" or next1 in _RIGHT_KEEP_NEXT:
            return KEEP  # all right, right angle
    if hyphen_after:
        if base == "left" and next1 == "over":
            return NONDIR  # left-over
        return SPATIAL  # left-hand, right-side, left-most, left-facing
    sides = ("left", "right")
    pair_next = next1 in _PAIR_WORDS and (next2 in sides or (next2 == "the" and next3 in sides))
    if pair_next or (prev1 in _PAIR_WORDS and prev2 in sides):
        return SPATIAL  # left or right, from left to right, left or the right
    if prev1 in ("is", "was") and prev2 in ("answer", "direction", "side", "position"):
        return SPATIAL  # the answer is left
    if base == "right" and next1 in _RIGHT_CORRECT_NEXT:
        return NONDIR  # the right answer
    if prev1 in _SPATIAL_PREV:
        return SPATIAL
    if base == "left":
        if prev1 in _LEFT_VERB_PREV:
            if prev1 in _LEFT_HAVE:
                return NONDIR  # has left, who left
            if next1 == "of":
                clause = _clause(text, start)
                if re.search(r"\b(?:what|how\s+much|how\s+many|nothing|anything|something|little|all)\b", clause):
                    return UNSURE  # "what is left of the cake" vs "what is left of the chair"
                return SPATIAL  # "the cup is left of the plate"
            return NONDIR  # how many are left, is there anything left
        if next1 in _LEFT_NONDIR_NEXT:
            return NONDIR  # left over, left behind, left open
        if re.match(r"\s*(?:there\s+(?:is|are|was|were)|how\s+(?:many|much))\b", _clause(text, start)) and (
            next1 in ("in", "on", "at", "for", "to") or _CLAUSE_END.match(after)
        ):
            return NONDIR  # there are 2 apples left in the bowl
    else:
        if next1 in ("in", "on") and (next2 in _IMAGE_WORDS or re.match(
                r"\s+(?:in|on)\s+(?:the|this|that)\s+(?:image|picture|photo|photograph|frame|scene|view|shot)\b", after, _I)):
            return UNSURE  # "is the dog right in the image"
        if next1 in _RIGHT_INTENSIFIED:
            return KEEP  # right next to, right behind
    if re.search(r"\b(?:left|right)\s*,\s*$", before, _I) or re.match(r"\s*,\s*(?:left|right)\b", after, _I):
        return SPATIAL  # "left, right, centre"
    if next1 in _SPATIAL_NEXT:
        return SPATIAL
    at_start = _CLAUSE_START.search(before) is not None
    if base == "left":
        if at_start and _CLAUSE_END.match(after):
            return SPATIAL  # bare answer "Left."
        if _CLAUSE_END.match(after) and re.search(r"\bhow\s+(?:many|much)\b", _clause(text, start)):
            return NONDIR
    elif at_start and re.match(r"^\s*[.!]?\s*$", after):
        return SPATIAL  # the whole remaining text is "Right." (an answer)
    return UNSURE


def _match_case(src: str, repl: str) -> str:
    if src.isupper() and len(src) > 1:
        return repl.upper()
    if src[:1].isupper():
        return repl[:1].upper() + repl[1:]
    return repl


# clockwise <-> counterclockwise: a reflection reverses the orientation of every rotation.
_ROTATION = re.compile(r"\b(?:(?P<counter>counter|anti)(?P<sep>[- ]?))?clockwise\b", _I)
_CLOCK_WORDS = ["twelve", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven"]
_CLOCK = re.compile(
    r"(?<![\w:.])(?P<h>1[0-2]|0?[1-9]|" + "|".join(_CLOCK_WORDS) + r")(?::(?P<m>[0-5]\d))?"
    r"(?=(?:\s*|-)(?:o['’]?\s?clock|oclock)\b)",
    _I,
)


def _clock_replacement(m: re.Match[str]) -> str:
    """Clock direction h (:mm) -> 12 - h: the position reflected about the 12-6 axis."""
    h_text = m.group("h")
    if h_text.isdigit():
        hour = int(h_text)
    else:
        hour = _CLOCK_WORDS.index(h_text.lower()) or 12
    minutes = int(m.group("m")) if m.group("m") else 0
    total = (720 - (hour % 12) * 60 - minutes) % 720
    new_hour, new_min = divmod(total, 60)
    new_hour = new_hour or 12
    if h_text.isdigit():
        new_h = f"{new_hour:0{len(h_text)}d}" if h_text.startswith("0") else str(new_hour)
    else:
        new_h = _match_case(h_text, _CLOCK_WORDS[new_hour % 12])
    return new_h + (f":{new_min:02d}" if m.group("m") else "")


# --------------------------------------------------------------------------------------------
# Coordinates (appendix A.2)
# --------------------------------------------------------------------------------------------

_NUM = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)"
_PTS2 = re.compile(
    rf"\(\s*(?P<a>{_NUM})\s*,\s*(?P<b>{_NUM})\s*\)\s*(?:,|to|and|-)?\s*\(\s*(?P<c>{_NUM})\s*,\s*(?P<d>{_NUM})\s*\)"
)
_BOX4 = re.compile(rf"[\[(]\s*(?P<a>{_NUM})\s*,\s*(?P<b>{_NUM})\s*,\s*(?P<c>{_NUM})\s*,\s*(?P<d>{_NUM})\s*[\])]")
_POINT = re.compile(rf"[\[(]\s*(?P<a>{_NUM})\s*,\s*(?P<b>{_NUM})\s*[\])]")
_NUMLIST = re.compile(rf"[\[(]\s*{_NUM}(?:\s*,\s*{_NUM}){{2,}}\s*[\])]")
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?")

COORD_MODES = ("pixel", "norm1", "norm1000", "auto")


@dataclass
class _Coords:
    """One coordinate tuple: ``kind`` is "box" (x1,y1,x2,y2 or x,y,w,h), "corners"
    ((x1,y1),(x2,y2)) or "point" (x, y); ``spans`` are the number spans in the text (None
    for list values)."""

    kind: str
    values: list[Decimal]
    spans: list[tuple[int, int]] | None = None
    texts: list[str] | None = None


def _scan_coords(text: str) -> list[_Coords]:
    found: list[_Coords] = []
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
            found.append(_Coords(kind, [Decimal(t) for t in texts], spans, texts))
            taken.append(m.span())
    for m in _NUMLIST.finditer(text):
        if free(m.start(), m.end()):
            raise _Skip("unsupported_coordinates", m.group(0))
    return found


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise _Skip("unsupported_value", repr(value))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Skip("bad_row", f"non-finite number {value!r} in the coordinates; every coordinate must be a finite number")
        return Decimal(repr(value))
    raise _Skip("unsupported_value", repr(value))


def _xs_ys(c: _Coords, box_format: str) -> tuple[list[Decimal], list[Decimal]]:
    v = c.values
    if c.kind == "point":
        return [v[0]], [v[1]]
    if c.kind == "box" and box_format == "xywh":
        return [v[0], v[0] + v[2]], [v[1], v[1] + v[3]]
    return [v[0], v[2]], [v[1], v[3]]


@dataclass(frozen=True)
class _Frame:
    """The coordinate frame of one row: extent ``(W, H)`` of the x and y axes."""

    mode: str
    width: Decimal
    height: Decimal
    box_format: str


def _resolve_frame(coords: list[_Coords], width: float | None, height: float | None, mode: str, box_format: str) -> _Frame | None:
    """Choose and validate the coordinate frame for all tuples of a row; ``None`` if none."""
    if not coords:
        return None
    for c in coords:
        v = c.values
        if c.kind in ("box", "corners"):
            if box_format == "xywh" and c.kind == "box":
                if v[2] < 0 or v[3] < 0:
                    raise _Skip("invalid_box", f"negative width/height in {[str(x) for x in v]}")
            elif v[2] < v[0] or v[3] < v[1]:
                raise _Skip("invalid_box", f"{[str(x) for x in v]} is not x1 <= x2, y1 <= y2")
    xs: list[Decimal] = []
    ys: list[Decimal] = []
    for c in coords:
        x, y = _xs_ys(c, box_format)
        xs += x
        ys += y
    allv = xs + ys
    if min(allv) < 0:
        raise _Skip("box_out_of_bounds", f"negative coordinate {min(allv)}")
    fractional = any(v != v.to_integral_value() for v in allv)
    if mode == "auto":
        if max(allv) <= 1 and (fractional or width is None):
            mode = "norm1"
        elif width is None or height is None:
            raise _Skip("no_image_size", "cannot tell the coordinate system without the image size")
        elif (max(xs) > Decimal(repr(width)) or max(ys) > Decimal(repr(height))) and max(allv) <= 1000:
            mode = "norm1000"
        elif width == 1000 and height == 1000:
            mode = "pixel"
        else:
            raise _Skip(
                "ambiguous_box_coordinates",
                f"values up to {max(allv)} fit both a {width}x{height} pixel grid and a 0-1000 grid; pass --coords",
            )
    if mode == "pixel":
        if width is None or height is None:
            raise _Skip("no_image_size", "pixel coordinates need the image size")
        W, H = Decimal(repr(width)), Decimal(repr(height))
        if max(allv) <= 1 and fractional:
            raise _Skip("box_looks_normalised", "all values in [0,1]; pass --coords norm1 if they are normalised")
        if max(xs) > W or max(ys) > H:
            raise _Skip(
                "box_out_of_bounds",
                f"max x {max(xs)} / max y {max(ys)} outside the {width}x{height} image "
                "(pass --coords norm1000 for a 0-1000 grid)",
            )
        return _Frame("pixel", W, H, box_format)
    extent = Decimal(1) if mode == "norm1" else Decimal(1000)
    if max(allv) > extent:
        raise _Skip("box_out_of_bounds", f"value {max(allv)} > {extent} with --coords {mode}")
    return _Frame(mode, extent, extent, box_format)


def _flip_values(c: _Coords, frame: _Frame) -> list[Decimal]:
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


# --------------------------------------------------------------------------------------------
# Text rewriting
# --------------------------------------------------------------------------------------------


@dataclass
class TextOutcome:
    """Result of :func:`rewrite_text`: the mirrored ``text``, or ``reason`` (a key of
    ``REASONS``) and ``detail`` when the text cannot be mirrored safely."""

    text: str | None
    reason: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.reason is None


def _word_spans(text: str) -> list[tuple[int, int, str]]:
    """Replacement spans for left/right words and rotation senses; raises _Skip."""
    spans: list[tuple[int, int, str]] = []
    for m in _WORD.finditer(text):
        cls = _classify(text, m)
        if cls == SPATIAL:
            base = m.group("base")
            swapped = "right" if base.lower() == "left" else "left"
            spans.append((m.start("base"), m.end("base"), _match_case(base, swapped)))
        elif cls == NONDIR:
            raise _Skip(f"{m.group('base').lower()}_not_direction", _snippet(text, m.start(), m.end()))
        elif cls == UNSURE:
            raise _Skip("ambiguous_left_right", _snippet(text, m.start(), m.end()))
    anti = re.search(r"\b(counter|anti)([- ]?)clockwise\b", text, _I)
    style = (anti.group(1).lower() + anti.group(2) + "clockwise") if anti else "counterclockwise"
    for m in _ROTATION.finditer(text):
        src = m.group(0)
        repl = "clockwise" if m.group("counter") else style
        spans.append((m.start(), m.end(), _match_case(src, repl)))
    return spans


def _clock_spans(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), _clock_replacement(m)) for m in _CLOCK.finditer(text)]


def _coord_spans(coords: list[_Coords], frame: _Frame | None) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []
    if frame is None:
        return spans
    for c in coords:
        assert c.spans is not None and c.texts is not None
        new = _flip_values(c, frame)
        if c.kind == "point":
            sources = [[c.texts[0]], [c.texts[1]]]
        elif c.kind == "box" and frame.box_format == "xywh":
            sources = [[c.texts[0], c.texts[2]], [c.texts[1]], [c.texts[2]], [c.texts[3]]]
        else:
            sources = [[c.texts[2]], [c.texts[1]], [c.texts[0]], [c.texts[3]]]
        for (s, e), value, like in zip(c.spans, new, sources):
            spans.append((s, e, _fmt_decimal(value, like)))
    return spans


def _apply(text: str, spans: list[tuple[int, int, str]]) -> str:
    """All replacements at once (simultaneous: nothing is rewritten twice)."""
    out: list[str] = []
    pos = 0
    for s, e, repl in sorted(spans):
        if s < pos:
            raise AssertionError(f"overlapping rewrite spans in {text!r}")
        out.append(text[pos:s])
        out.append(repl)
        pos = e
    out.append(text[pos:])
    return "".join(out)


def _snippet(text: str, s: int, e: int, width: int = 30) -> str:
    a, b = max(0, s - width), min(len(text), e + width)
    return ("..." if a else "") + text[a:b] + ("..." if b < len(text) else "")


def _rewrite(text: str, frame_for: Any, *, words: bool = True) -> str:
    """Mirror one text. ``frame_for(coords)`` resolves the coordinate frame; raises _Skip."""
    if words:
        _content_check(text)
    coords = _scan_coords(text)
    frame = frame_for(coords)
    spans = (_word_spans(text) if words else []) + _clock_spans(text) + _coord_spans(coords, frame)
    return _apply(text, spans)


def rewrite_text(
    text: str,
    *,
    width: float | None = None,
    height: float | None = None,
    coords: str = "pixel",
    box_format: str = "xyxy",
) -> TextOutcome:
    """Mirror one question or answer for the horizontally flipped image.

    ``width``/``height`` are the image size in pixels (needed for pixel coordinates);
    ``coords`` is "pixel", "norm1" ([0,1]), "norm1000" ([0,1000]) or "auto";
    ``box_format`` is "xyxy" or "xywh". Never raises on the text.
    """
    try:
        def frame_for(found: list[_Coords]) -> _Frame | None:
            return _resolve_frame(found, width, height, coords, box_format)

        return TextOutcome(_rewrite(text, frame_for))
    except _Skip as skip:
        return TextOutcome(None, skip.reason, skip.detail)


# --------------------------------------------------------------------------------------------
# Row-level rules
# --------------------------------------------------------------------------------------------


@dataclass
class RowOutcome:
    """The mirrored field values of one row, or the reason it is left out.

    ``has_coords``: some field holds coordinates; ``has_direction``: some text holds a
    left/right word, a rotation sense or a clock direction (rows the LLM may rewrite).
    """

    values: dict[str, Any] | None
    reason: str | None = None
    detail: str = ""
    field: str | None = None
    has_coords: bool = False
    has_direction: bool = False

    @property
    def ok(self) -> bool:
        return self.reason is None


def _value_coords(value: Any, is_text: bool) -> list[_Coords]:
    """Coordinate tuples held by a field value (a text, a number list, a list of lists)."""
    if value is None or isinstance(value, (bool, int, float)):
        return []
    if isinstance(value, str):
        return _scan_coords(value)
    if isinstance(value, (list, tuple)):
        if not value:
            return []
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            nums = [_decimal(v) for v in value]
            if len(nums) == 4:
                return [_Coords("box", nums)]
            if len(nums) == 2:
                return [_Coords("point", nums)]
            raise _Skip("unsupported_coordinates", f"a list of {len(nums)} numbers")
        out: list[_Coords] = []
        for v in value:
            if isinstance(v, (list, tuple, str)) or v is None:
                out += _value_coords(v, is_text)
            else:
                raise _Skip("unsupported_value", f"list item of type {type(v).__name__}")
        return out
    raise _Skip("unsupported_value", f"value of type {type(value).__name__}")


def _mirror_value(value: Any, frame: _Frame | None, words: bool) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value  # numbers (distances, sizes, counts) are mirror-invariant (sec. 3.3)
    if isinstance(value, str):
        return _rewrite(value, lambda found: frame if found else None, words=words)
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            kind = "box" if len(value) == 4 else "point"
            assert frame is not None
            flipped = _flip_values(_Coords(kind, [_decimal(v) for v in value]), frame)
            all_int = all(isinstance(v, int) for v in value)
            out = [int(x) if all_int and x == x.to_integral_value() else float(x) for x in flipped]
            return type(value)(out)
        return type(value)(_mirror_value(v, frame, words) for v in value)
    raise _Skip("unsupported_value", f"value of type {type(value).__name__}")


def _has_direction(text: str) -> bool:
    """A left/right word the rules do not keep as is, a rotation sense or a clock direction."""
    return bool(+_direction_counts(text)) or _CLOCK.search(text) is not None


def mirror_fields(
    values: dict[str, Any],
    *,
    text_fields: Sequence[str],
    coord_fields: Sequence[str] = (),
    width: float | None,
    height: float | None,
    coords: str = "pixel",
    box_format: str = "xyxy",
) -> RowOutcome:
    """Mirror the given fields of one row with the rules. ``text_fields`` get every rule,
    ``coord_fields`` (a box column) only the coordinate flip. One coordinate frame is chosen
    for the whole row (so ``--coords auto`` decides once per row). Never raises on content."""
    current = None
    has_direction = False
    try:
        found: list[_Coords] = []
        for name in list(text_fields) + list(coord_fields):
            current = name
            v = values.get(name)
            found += _value_coords(v, name in text_fields)
            if name in text_fields:
                for text in _texts(v):
                    has_direction = has_direction or _has_direction(text)
        current = None
        frame = _resolve_frame(found, width, height, coords, box_format)
        out: dict[str, Any] = {}
        for name in text_fields:
            current = name
            out[name] = _mirror_value(values.get(name), frame, True)
        for name in coord_fields:
            current = name
            out[name] = _mirror_value(values.get(name), frame, False)
        return RowOutcome(out, has_coords=bool(found), has_direction=has_direction)
    except _Skip as skip:
        return RowOutcome(None, skip.reason, skip.detail, current, has_direction=has_direction)


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _texts(v)]
    return []


# --------------------------------------------------------------------------------------------
# LLM rewriter (SVQA-R1 sec. 3.1) and its rule check
# --------------------------------------------------------------------------------------------

# The rewrite + verification instruction of SVQA-R1 sec. 3.1 (the paper's prompt table),
# verbatim; {question} and {answer} are replaced by the original texts.
SVQA_R1_REWRITE_PROMPT = (
    "You are a spatial reasoning assistant. You are given a question and its corresponding answer "
    "based on an image. Now assume that the image has been horizontally flipped. Your task is to "
    "rewrite the question and answer so that they remain logically correct for the flipped image. "
    "Write them as if the flipped image was the original, and do not mention the flip in your output. "
    "Also, verify the correctness of the left/right spatial relationship in the original answer. "
    "If the rewritten answer is inconsistent with the horizontal flip (i.e., the object that was on "
    "the left is still on the left), you must fix it. If you find an error, correct the "
    "object-direction mapping accordingly. Original question: {question}. Original answer: {answer}. "
    "Return your output as a valid JSON object, and nothing else."
)


def build_rewrite_messages(question: str, answer: str) -> list[dict[str, str]]:
    """The chat messages for one QA pair (one user turn holding the paper's prompt)."""
    filled = re.sub(
        r"\{(question|answer)\}",
        lambda m: question if m.group(1) == "question" else answer,
        SVQA_R1_REWRITE_PROMPT,
    )
    return [{"role": "user", "content": filled}]


_PREFER_KEY = ("rewrit", "flip", "mirror", "new", "revis", "updat", "adapt", "modif", "correct", "transform")


def _pick(obj: dict[str, Any], word: str) -> Any:
    """The value of the one key naming ``word`` (e.g. "question", "rewritten_question"),
    ignoring keys about the original; ``None`` when absent or ambiguous."""
    keys = [k for k in obj if isinstance(k, str) and word in k.lower() and "orig" not in k.lower()]
    if len(keys) > 1:
        keys = [k for k in keys if any(p in k.lower() for p in _PREFER_KEY)] or keys
    if len(keys) != 1:
        return None
    return obj[keys[0]]


def _as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool) or value is None:
        return None if value is None else ("yes" if value else "no")
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return json.dumps(value)
    return None


def parse_rewrite_reply(reply: Any) -> tuple[str, str] | None:
    """(question, answer) from the LLM's reply, or ``None`` when it cannot be read.

    The paper's prompt asks for "a valid JSON object" without naming its keys, so any key
    containing "question" / "answer" is accepted (keys naming the original are ignored;
    among several, one naming the rewrite is preferred), also one level down
    (``{"flipped": {"question": ..., "answer": ...}}``). Code fences and text around the
    object are tolerated. Never raises.
    """
    try:
        if not isinstance(reply, str):
            return None
        text = reply.strip()
        text = re.sub(r"^```[a-zA-Z]*\s*|\s*```$", "", text)
        candidates: list[Any] = []
        try:
            candidates.append(json.loads(text))
        except ValueError:
            decoder = json.JSONDecoder()
            for i, ch in enumerate(text):
                if ch == "{":
                    try:
                        obj, _ = decoder.raw_decode(text, i)
                    except ValueError:
                        continue
                    candidates.append(obj)
                    break
        for obj in candidates:
            if not isinstance(obj, dict):
                continue
            scopes = [obj]
            nested = [v for k, v in obj.items() if isinstance(v, dict) and "orig" not in str(k).lower()]
            scopes += nested
            for scope in scopes:
                q = _as_text(_pick(scope, "question"))
                a = _as_text(_pick(scope, "answer"))
                if q and a:
                    return q, a
        return None
    except Exception:  # model text is untrusted: never raise on it
        return None


_FLIP_WORDS = re.compile(r"\b(?:flip|flips|flipped|flipping|mirror|mirrored|mirroring|reflected|reflection)\b", _I)


def _direction_sequence(text: str) -> list[str]:
    """Left/right words (all but the ones the rules keep, e.g. "right next to") and rotation
    senses in ``text``, in reading order: e.g. ``["left", "right", "cw"]``."""
    found = [(m.start(), m.group("base").lower()) for m in _WORD.finditer(text) if _classify(text, m) != KEEP]
    found += [(m.start(), "ccw" if m.group("counter") else "cw") for m in _ROTATION.finditer(text)]
    return [word for _, word in sorted(found)]


def _direction_counts(text: str) -> Counter[str]:
    return Counter(_direction_sequence(text))


_SWAP = {"left": "right", "right": "left", "cw": "ccw", "ccw": "cw"}


def _numbers(text: str) -> Counter[Decimal]:
    out: Counter[Decimal] = Counter()
    for m in _NUMBER.finditer(text):
        try:
            out[Decimal(m.group(0)).normalize()] += 1
        except InvalidOperation:
            pass
    return out


def check_llm_rewrite(original: str, rewritten: str) -> str | None:
    """Rule check of an LLM rewrite of one text; ``None`` if it passes, else the reason.

    * the rewrite's left/right and clockwise/counterclockwise words, in reading order, are
      the swap of the original's (so "left of the right chair" must become "right of the
      left chair": a rewrite that reorders the relation is rejected, which is conservative);
    * its numbers equal the original's after the rules' number rewrite (clock directions
      h -> 12 - h); distances, sizes and counts must not change;
    * it does not mention the flip (the paper's prompt forbids it) and is not much longer.
    """
    if [_SWAP[w] for w in _direction_sequence(original)] != _direction_sequence(rewritten):
        return "left_right_mismatch"
    try:
        expected = _rewrite(original, lambda found: None, words=False)
    except _Skip:
        expected = original
    if _numbers(expected) != _numbers(rewritten):
        return "numbers_changed"
    if _FLIP_WORDS.search(rewritten) and not _FLIP_WORDS.search(original):
        return "mentions_flip"
    if len(rewritten) > 3 * len(original) + 40:
        return "too_long"
    return None


# --------------------------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------------------------


@dataclass
class _Row:
    index: int
    ref: str  # "data.jsonl:17" or "name[train] row 17"
    record: dict[str, Any]
    error: str | None = None  # a bad row (kept only with --skip-bad-rows)


@dataclass
class _Source:
    name: str
    root: Path  # image paths must resolve inside it
    num_rows: int
    features: Any  # datasets.Features of the passthrough columns (image column included)
    rows: Any  # callable -> Iterator[_Row]
    bad_rows: list[_Row] = field(default_factory=list)
    cleanup: Any = None  # callable run when the command ends


def _inside(root: Path, rel: str, ref: str, column: str) -> Path:
    candidate = Path(rel)
    path = (candidate if candidate.is_absolute() else root / candidate).resolve()
    try:
        path.relative_to(root.resolve())
    except ValueError:
        raise MirrorInputError(f"{ref}: field {column!r}: image path {rel!r} is outside the data root {root}") from None
    if not path.is_file():
        raise MirrorInputError(f"{ref}: field {column!r}: image file {rel!r} not found")
    return path


def _image_bytes(value: Any, root: Path, ref: str, column: str) -> tuple[bytes, str | None]:
    """(encoded image bytes, file name) for an image value: a path relative to ``root``, a
    ``data:`` URI, or a mapping with base64 / raw ``bytes`` and/or ``path``."""
    if isinstance(value, (list, tuple)):
        raise _Skip("multiple_images", f"{len(value)} images")
    if isinstance(value, str):
        if value.startswith("data:"):
            try:
                return base64.b64decode(value.split(",", 1)[1], validate=True), None
            except (IndexError, binascii.Error, ValueError):
                raise MirrorInputError(f"{ref}: field {column!r}: malformed data: URI") from None
        path = _inside(root, value, ref, column)
        return path.read_bytes(), path.name
    if isinstance(value, dict):
        data = value.get("bytes")
        name = value.get("path")
        if isinstance(data, (bytes, bytearray)) and data:
            return bytes(data), Path(name).name if isinstance(name, str) else None
        if isinstance(data, str) and data:
            try:
                return base64.b64decode(data, validate=True), Path(name).name if isinstance(name, str) else None
            except (binascii.Error, ValueError):
                raise MirrorInputError(f"{ref}: field {column!r}: 'bytes' is not valid base64") from None
        if isinstance(name, str) and name:
            path = _inside(root, name, ref, column)
            return path.read_bytes(), path.name
        raise MirrorInputError(f"{ref}: field {column!r}: image has neither bytes nor path")
    if value is not None and hasattr(value, "save") and hasattr(value, "size"):  # a decoded PIL image
        buf = io.BytesIO()
        fmt = getattr(value, "format", None) or "PNG"
        value.save(buf, format=fmt)
        return buf.getvalue(), None
    raise MirrorInputError(f"{ref}: field {column!r}: expected an image path, data: URI or {{'bytes','path'}}, got {type(value).__name__}")


def _check_record(record: Any, ref: str, args: argparse.Namespace) -> str | None:
    """The error message for a malformed record, or None."""
    if not isinstance(record, dict):
        return f"{ref}: expected a JSON object, got {type(record).__name__}"
    for column in (args.image_column, args.question_column, args.answer_column):
        if column not in record:
            return f"{ref}: field {column!r} missing"
        if record[column] is None:
            return f"{ref}: field {column!r} is null"
    if not isinstance(record[args.question_column], str):
        return f"{ref}: field {args.question_column!r} must be a string, got {type(record[args.question_column]).__name__}"
    for column in args.also_rewrite:
        if column not in record:
            return f"{ref}: field {column!r} missing"
    if args.bbox_column and args.bbox_column not in record:
        return f"{ref}: field {args.bbox_column!r} missing"
    return None


def _open_jsonl(path: Path, args: argparse.Namespace) -> _Source:
    import pyarrow as pa
    from datasets import Features, Image

    root = Path(args.data_root).resolve() if args.data_root else path.parent.resolve()
    lines: list[tuple[int, int, dict[str, Any]]] = []
    bad: list[_Row] = []
    meta: list[dict[str, Any]] = []
    keys: dict[str, None] = {}
    index = -1
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue  # blank lines are not rows
            index += 1
            ref = f"{path.name}:{lineno}"
            try:
                record = json.loads(line)
            except ValueError as exc:
                error: str | None = f"{ref}: invalid JSON ({exc})"
                record = None
            else:
                error = _check_record(record, ref, args)
            if error:
                if not args.skip_bad_rows:
                    raise MirrorInputError(error)
                bad.append(_Row(index, ref, {}, error))
                continue
            lines.append((index, lineno, record))
            meta.append({k: v for k, v in record.items() if k != args.image_column})
            keys.update(dict.fromkeys(meta[-1]))
    fields = []
    for key in keys:  # every key of any row (pyarrow alone would take the first row's keys)
        values = [m.get(key) for m in meta]
        try:
            fields.append(pa.field(key, pa.array(values).type))
            continue
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
        scalars = all(v is None or isinstance(v, (str, int, float, bool)) for v in values)
        if not scalars:
            raise MirrorInputError(
                f"{path.name}: field {key!r} mixes value types that cannot form one column "
                f"({sorted({type(v).__name__ for v in values if v is not None})})"
            )
        # e.g. answers that are sometimes "two" and sometimes 2: keep them all as text
        log.warning("%s: field %r mixes text and numbers; numbers are stored as text", path.name, key)
        for (_, _, record), m in zip(lines, meta):
            if record.get(key) is not None and not isinstance(record[key], str):
                record[key] = m[key] = str(record[key])
        fields.append(pa.field(key, pa.string()))
    features = Features.from_arrow_schema(pa.schema(fields))
    features = Features({args.image_column: Image(), **features})

    def rows() -> Iterator[_Row]:
        for index, lineno, record in lines:
            yield _Row(index, f"{path.name}:{lineno}", record)

    # the rows are held (without re-reading) only as parsed dicts; images stay on disk
    return _Source(path.name, root, len(lines), features, rows, bad)


def _open_hf(path: Path, args: argparse.Namespace) -> _Source:
    import datasets
    from datasets import Features, Image

    # A private, temporary cache: datasets' shared cache can serve stale data for local
    # directories (see _card) and would keep a prepared copy of every input.
    tmp = tempfile.TemporaryDirectory(prefix="spatialrl-mirror-")
    if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()):
        loaded = datasets.load_from_disk(str(path))
    elif path.is_file() and path.suffix == ".parquet":
        loaded = datasets.load_dataset("parquet", data_files=str(path), cache_dir=tmp.name)
    elif path.is_dir():
        loaded = datasets.load_dataset(str(path), cache_dir=tmp.name)
    else:
        raise MirrorInputError(f"{path}: not a JSON Lines file, a parquet file or a dataset directory")
    split = args.split
    if isinstance(loaded, datasets.DatasetDict):
        splits = list(loaded)
        if split is None:
            split = "train" if "train" in splits else (splits[0] if len(splits) == 1 else None)
        if split not in loaded:
            raise MirrorInputError(f"{path}: split {split!r} not found; choose one of {splits} with --split")
        ds = loaded[split]
    else:
        ds = loaded
        split = split or "train"
    args.split = split
    columns = list(ds.column_names)
    needed = [args.image_column, args.question_column, args.answer_column, *args.also_rewrite]
    if args.bbox_column:
        needed.append(args.bbox_column)
    for column in needed:
        if column not in columns:
            flag = {
                args.image_column: "--image-column",
                args.question_column: "--question-column",
                args.answer_column: "--answer-column",
                args.bbox_column: "--bbox-column",
            }.get(column, "--also-rewrite")
            raise MirrorInputError(f"{path}: column {column!r} not found (columns: {', '.join(columns)}); use {flag}")
    feature = ds.features[args.image_column]
    if isinstance(feature, Image):
        ds = ds.cast_column(args.image_column, Image(decode=False))
    features = Features({**ds.features, args.image_column: Image()})
    root = Path(args.data_root).resolve() if args.data_root else (path if path.is_dir() else path.parent).resolve()
    name = f"{path.name}[{split}]"

    def rows() -> Iterator[_Row]:
        i = 0
        for batch in ds.iter(batch_size=64):
            keys = list(batch)
            n = len(batch[keys[0]]) if keys else 0
            for j in range(n):
                record = {k: batch[k][j] for k in keys}
                ref = f"{name} row {i}"
                yield _Row(i, ref, record, _check_record(record, ref, args))
                i += 1

    return _Source(name, root, len(ds), features, rows, cleanup=tmp.cleanup)


def _open_source(args: argparse.Namespace) -> _Source:
    path = Path(args.data).expanduser()
    if not path.exists():
        raise MirrorInputError(f"{path}: no such file or directory")
    if path.is_file() and path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        return _open_jsonl(path, args)
    return _open_hf(path, args)


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------

_SAVE_FORMATS = {"PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF"}


def _open_image(data: bytes, ref: str, column: str) -> Any:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise MirrorInputError(f"{ref}: field {column!r}: cannot decode the image ({exc})") from None
    if getattr(img, "n_frames", 1) > 1:
        raise _Skip("animated_image", f"{img.n_frames} frames")
    fmt = img.format
    # Flip what a viewer shows: apply the EXIF orientation first (the mirror has none).
    shown = ImageOps.exif_transpose(img)
    shown.format = fmt
    return shown


def _flip_image(img: Any, jpeg_quality: int) -> tuple[bytes, str]:
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


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------

_OUR_FILES = ("README.md", "mirror_report.json", "skipped.jsonl")


class _ShardWriter:
    """Parquet shards ``data/<split>-NNNNN-of-MMMMM.parquet`` with Hugging Face features."""

    def __init__(self, out: Path, split: str, features: Any, max_rows: int) -> None:
        self.dir = out / "data"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.split = split
        self.features = features
        self.schema = features.arrow_schema
        self.max_rows = max_rows
        self.paths: list[Path] = []
        self._writer: Any = None
        self._rows_in_shard = 0
        self.rows = 0

    def _open(self) -> None:
        import pyarrow.parquet as pq

        path = self.dir / f".{self.split}-{len(self.paths):05d}.parquet.partial"
        self.paths.append(path)
        self._writer = pq.ParquetWriter(str(path), self.schema)
        self._rows_in_shard = 0

    def write(self, rows: list[dict[str, Any]]) -> None:
        import pyarrow as pa

        while rows:
            if self._writer is None or self._rows_in_shard >= self.max_rows:
                self._close_current()
                self._open()
            room = self.max_rows - self._rows_in_shard
            # keep pairs together in a shard: room is even because max_rows is even
            chunk, rows = rows[:room], rows[room:]
            batch = {name: [r.get(name) for r in chunk] for name in self.features}
            table = pa.Table.from_pydict(self.features.encode_batch(batch), schema=self.schema)
            self._writer.write_table(table)
            self._rows_in_shard += len(chunk)
            self.rows += len(chunk)

    def _close_current(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def abort(self) -> None:
        """Drop the partial shards (after an error)."""
        self._close_current()
        for path in self.paths:
            path.unlink(missing_ok=True)
        self.paths = []

    def close(self) -> list[Path]:
        if not self.paths:
            self._open()  # an empty dataset still has its schema
        self._close_current()
        total = len(self.paths)
        final = []
        for i, path in enumerate(self.paths):
            target = self.dir / f"{self.split}-{i:05d}-of-{total:05d}.parquet"
            os.replace(path, target)
            final.append(target)
        return final


def _prepare_out(out: Path, overwrite: bool) -> None:
    existing = [out / n for n in _OUR_FILES if (out / n).exists()]
    data = out / "data"
    shards = sorted(data.glob("*.parquet")) + sorted(data.glob(".*.parquet.partial")) if data.is_dir() else []
    if (existing or shards) and not overwrite:
        raise MirrorInputError(f"{out}: already holds a mirrored dataset; pass --overwrite to replace it")
    for p in existing + shards:
        p.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _write_json_atomic(path: Path, obj: Any) -> None:
    from spatialrl._fs import write_text_atomic

    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False) + "\n")


def _card(report: dict[str, Any], split: str) -> str:
    skipped = "\n".join(
        f"| `{reason}` | {n} | {REASONS.get(reason, '')} |" for reason, n in sorted(report["skipped"].items())
    ) or "| (none) | 0 | |"
    # No `configs:` block: with one, datasets 5.2.0's load_dataset(<local dir>) caches the
    # prepared data by directory *name* and config, and returns stale rows for another
    # directory of the same name. The shard names follow the default pattern
    # data/<split>-NNNNN-of-NNNNN.parquet, which load_dataset finds on its own.
    return f"""---
tags:
- spatial-reasoning
- mirror-augmentation
---

# Mirrored pairs of `{report['input_name']}`

Made by `spatialrl data mirror` (SVQA-R1 sec. 3.1): each kept row appears twice, as
`view = "original"` and `view = "mirror"` (horizontally flipped image, left/right words,
rotation senses, clock directions and x coordinates rewritten), linked by `pair_id`.
`mirror_rewrite` tells how the mirror's text was made (`rules`, `llm` or `unchanged`).
See `docs/mirroring.md` in spatialrl for the rules.

- rows read: {report['rows_in']}
- pairs kept: {report['pairs']} ({report['rewritten']} rewritten, {report['unchanged']} unchanged text)
- rows skipped: {report['skipped_total']}

| skipped because | rows | meaning |
| --- | --- | --- |
{skipped}

`mirror_report.json` has the full counts, `skipped.jsonl` one line per skipped row.
"""


def _safe_url(url: str | None) -> str | None:
    """A base URL without credentials or query string, for the report."""
    if not url:
        return url
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


# --------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="input: a JSON Lines file, a parquet file, or a Hugging Face dataset directory (load_dataset layout or save_to_disk)")
    parser.add_argument("--out", required=True, help="output directory (parquet shards under data/, README.md card, mirror_report.json, skipped.jsonl)")
    parser.add_argument("--split", default=None, help="split to read from a dataset directory (default: train, or the only split); also names the output split")
    parser.add_argument("--image-column", default="image", help="column holding the image: a path relative to the data root, a data: URI, or {bytes, path} (default: image)")
    parser.add_argument("--question-column", default="question", help="question column (default: question)")
    parser.add_argument("--answer-column", default="answer", help="answer column (default: answer)")
    parser.add_argument("--bbox-column", default=None, help="optional column of boxes [x1, y1, x2, y2] (or a list of them) to flip")
    parser.add_argument("--also-rewrite", action="append", default=[], metavar="COLUMN", help="another text column to rewrite with the rules (e.g. options); repeatable")
    parser.add_argument("--id-column", default=None, help="column whose value becomes pair_id (default: 'id' if present, else the row number)")
    parser.add_argument("--data-root", default=None, help="image paths must resolve inside this directory (default: the input's directory)")
    parser.add_argument("--coords", choices=COORD_MODES, default="pixel", help="coordinate system of boxes and points: pixel (x in [0, image width]), norm1 ([0,1]), norm1000 ([0,1000], Qwen2-VL style) or auto (per row; ambiguous rows are skipped) (default: pixel)")
    parser.add_argument("--box-format", choices=("xyxy", "xywh"), default="xyxy", help="4-number boxes are [x1, y1, x2, y2] or [x, y, w, h] (default: xyxy)")
    parser.add_argument("--jpeg-quality", type=int, default=95, help="quality for re-encoding flipped JPEG images (default: 95; PNG stays lossless)")
    parser.add_argument("--shard-rows", type=int, default=10000, help="rows per parquet shard (even; default: 10000)")
    parser.add_argument("--overwrite", action="store_true", help="replace a mirrored dataset already in --out")
    parser.add_argument("--skip-bad-rows", action="store_true", help="count malformed rows as skipped (reason bad_row) instead of stopping with an error")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    llm = parser.add_argument_group("LLM rewriter (SVQA-R1 sec. 3.1)")
    llm.add_argument("--llm", action="store_true", help="rewrite left/right text with an LLM through an OpenAI-compatible API; rewrites failing the rule check fall back to the rules")
    llm.add_argument("--base-url", default=None, help="API base URL including /v1 (default: $OPENAI_BASE_URL, else OpenAI's)")
    llm.add_argument("--model", default=None, help="model name (required with --llm)")
    llm.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key (default: OPENAI_API_KEY); the key is never written or logged")
    llm.add_argument("--llm-cache", default=None, help="reply cache directory (default: ~/.cache/spatialrl/llm)")
    llm.add_argument("--llm-workers", type=int, default=4, help="concurrent LLM requests (default: 4)")
    llm.add_argument("--llm-retries", type=int, default=4, help="retries per request on transport errors, with exponential back-off (default: 4)")
    llm.add_argument("--llm-backoff", type=float, default=1.0, help="first retry delay in seconds, doubled each retry (default: 1.0)")
    llm.add_argument("--llm-timeout", type=float, default=60.0, help="seconds per attempt: connect, reply and parse (default: 60); a whole call, retries included, also has an overall deadline (spatialrl.data.llm)")
    llm.add_argument("--llm-temperature", type=float, default=0.0, help="sampling temperature (default: 0)")


@dataclass
class _LLMState:
    client: Any
    workers: int
    temperature: float
    breaker: int = 5  # consecutive failed requests after which the LLM is given up for the run
    consecutive_failures: int = 0
    disabled: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    lock: Any = field(default_factory=threading.Lock)


def _ask_llm(state: _LLMState, question: str, answer: str) -> tuple[tuple[str, str] | None, str]:
    """(parsed rewrite or None, outcome label); runs in worker threads."""
    from spatialrl.data.llm import LLMError

    if state.disabled:
        return None, "not_sent_llm_given_up"
    try:
        reply = state.client.chat(build_rewrite_messages(question, answer), temperature=state.temperature)
    except LLMError as exc:
        with state.lock:
            state.consecutive_failures += 1
            if state.consecutive_failures >= state.breaker and not state.disabled:
                state.disabled = True
                log.warning("LLM failed %d times in a row; the remaining rows use the rules only", state.breaker)
        return None, "transport_error" if exc.transient else "request_refused"
    with state.lock:
        state.consecutive_failures = 0
    parsed = parse_rewrite_reply(reply)
    if parsed is None:
        return None, "malformed_reply"
    return parsed, "ok"


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except MirrorInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    args.also_rewrite = list(getattr(args, "also_rewrite", None) or [])
    if args.shard_rows < 2 or args.shard_rows % 2:
        raise MirrorInputError(f"--shard-rows must be an even number >= 2, got {args.shard_rows}")
    state: _LLMState | None = None
    if args.llm:
        if not args.model:
            raise MirrorInputError("--llm needs --model NAME")
        from spatialrl.data.llm import ChatClient

        try:
            client = ChatClient(
                args.model,
                base_url=args.base_url,
                api_key_env=args.api_key_env,
                cache_dir=args.llm_cache,
                timeout=args.llm_timeout,
                max_retries=args.llm_retries,
                backoff=args.llm_backoff,
            )
        except ValueError as exc:
            raise MirrorInputError(str(exc)) from None
        state = _LLMState(client, max(1, args.llm_workers), args.llm_temperature)

    source = _open_source(args)
    try:
        return _mirror(args, source, state)
    finally:
        if source.cleanup is not None:
            source.cleanup()


def _mirror(args: argparse.Namespace, source: _Source, state: _LLMState | None) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from datasets import List, Value
    from tqdm.auto import tqdm

    from spatialrl.data.typed_answers import TYPED_COLUMNS

    out = Path(args.out).expanduser()
    split = args.split or "train"

    features = source.features.copy()
    for extra in ("pair_id", "view", "mirror_rewrite"):
        if extra in features:
            raise MirrorInputError(f"{source.name}: input already has a {extra!r} column (is it mirrored already?)")
    id_column = args.id_column
    if id_column is None and "id" in features:
        id_column = "id"
    if id_column and id_column not in features:
        raise MirrorInputError(f"{source.name}: --id-column {id_column!r} not found")
    typed_clash = [c for c in TYPED_COLUMNS if c in features and c != args.bbox_column]
    if typed_clash:
        raise MirrorInputError(f"{source.name}: input already has a {typed_clash[0]!r} column; the output adds the typed "
                               f"answer columns {', '.join(TYPED_COLUMNS)} (spatialrl.data.typed_answers): rename it")
    features["pair_id"] = Value("string")
    features["view"] = Value("string")
    features["mirror_rewrite"] = Value("string")
    features.update(answer_type=Value("string"), answer_value=Value("float64"), dimension=Value("string"),
                    unit=Value("string"), options=List(Value("string")), answer_index=Value("int32"),
                    bbox=List(Value("float64")))
    _prepare_out(out, args.overwrite)

    text_fields = [args.question_column, args.answer_column, *args.also_rewrite]
    coord_fields = [args.bbox_column] if args.bbox_column else []
    writer = _ShardWriter(out, split, features, args.shard_rows)
    skipped: Counter[str] = Counter()
    method_counts: Counter[str] = Counter()
    skipped_path = out / "skipped.jsonl"
    seen_ids: set[str] = set()
    pairs = 0

    try:
        skipped_fh = skipped_path.open("w", encoding="utf-8")
    except OSError as exc:
        raise MirrorInputError(f"{out}: cannot write the output ({exc})") from None
    try:

        def skip(row: _Row, reason: str, detail: str = "", fld: str | None = None) -> None:
            skipped[reason] += 1
            skipped_fh.write(json.dumps({"row": row.ref, "index": row.index, "reason": reason, "field": fld, "detail": detail}, ensure_ascii=False) + "\n")

        for row in source.bad_rows:
            skip(row, "bad_row", row.error or "")

        progress = tqdm(total=source.num_rows, desc="mirror", unit="row", disable=args.quiet or None, file=sys.stderr)
        executor = ThreadPoolExecutor(max_workers=state.workers) if state else None
        try:
            batch: list[_Row] = []
            for row in source.rows():
                batch.append(row)
                if len(batch) >= 64:
                    pairs += _process_batch(batch, args, source, state, executor, writer, skip, method_counts, text_fields, coord_fields, id_column, seen_ids)
                    progress.update(len(batch))
                    batch = []
            if batch:
                pairs += _process_batch(batch, args, source, state, executor, writer, skip, method_counts, text_fields, coord_fields, id_column, seen_ids)
                progress.update(len(batch))
        finally:
            progress.close()
            if executor:
                executor.shutdown(wait=True, cancel_futures=True)
    except BaseException:
        skipped_fh.close()
        writer.abort()
        skipped_path.unlink(missing_ok=True)
        raise
    skipped_fh.close()
    shards = writer.close()

    rows_in = source.num_rows + len(source.bad_rows)
    skipped_total = sum(skipped.values())
    if pairs + skipped_total != rows_in:  # nothing may be dropped silently
        raise RuntimeError(f"internal error: {pairs} kept + {skipped_total} skipped != {rows_in} rows read")
    report: dict[str, Any] = {
        "input": str(args.data),
        "input_name": source.name,
        "split": split,
        "rows_in": rows_in,
        "pairs": pairs,
        "rows_out": 2 * pairs,
        "rewritten": method_counts["rules"] + method_counts["llm"],
        "unchanged": method_counts["unchanged"],
        "by_method": dict(sorted(method_counts.items())),
        "skipped_total": skipped_total,
        "skipped": dict(sorted(skipped.items())),
        "coords": args.coords,
        "box_format": args.box_format,
        "columns": {"image": args.image_column, "question": args.question_column, "answer": args.answer_column, "bbox": args.bbox_column, "also_rewrite": args.also_rewrite, "id": id_column},
        "shards": [p.relative_to(out).as_posix() for p in shards],
        "llm": None,
    }
    if state is not None:
        report["llm"] = {
            "model": args.model,
            "base_url": _safe_url(state.client.base_url),
            "client": dict(state.client.stats),
            "outcomes": dict(sorted(state.counts.items())),
            "gave_up": state.disabled,
        }
    _write_json_atomic(out / "mirror_report.json", report)
    (out / "README.md").write_text(_card(report, split), encoding="utf-8")

    parts = ", ".join(f"{r}={n}" for r, n in sorted(skipped.items())) or "none"
    print(
        f"mirrored {pairs} of {rows_in} rows ({report['rewritten']} rewritten, {report['unchanged']} unchanged) "
        f"-> {2 * pairs} rows in {out}; skipped {skipped_total}: {parts}"
    )
    if state is not None:
        print(f"llm: {report['llm']['outcomes']} (requests {state.client.stats['requests']}, cache hits {state.client.stats['cache_hits']})")
    return 0


def _process_batch(
    batch: list[_Row],
    args: argparse.Namespace,
    source: _Source,
    state: _LLMState | None,
    executor: Any,
    writer: _ShardWriter,
    skip: Any,
    method_counts: Counter[str],
    text_fields: list[str],
    coord_fields: list[str],
    id_column: str | None,
    seen_ids: set[str],
) -> int:
    """Rules for every row, LLM requests for the eligible ones (concurrently), then write."""
    from spatialrl.data.typed_answers import one_box, typed_answer

    prepared: list[tuple[_Row, Any, bytes, str | None, RowOutcome] | None] = []
    for row in batch:
        try:
            if row.error:
                raise MirrorInputError(row.error)
            data, name = _image_bytes(row.record[args.image_column], source.root, row.ref, args.image_column)
            image = _open_image(data, row.ref, args.image_column)
        except _Skip as s:
            skip(row, s.reason, s.detail, args.image_column)
            prepared.append(None)
            continue
        except MirrorInputError as exc:
            if not args.skip_bad_rows:
                raise
            skip(row, "bad_row", str(exc))
            prepared.append(None)
            continue
        outcome = mirror_fields(
            row.record,
            text_fields=text_fields,
            coord_fields=coord_fields,
            width=image.width,
            height=image.height,
            coords=args.coords,
            box_format=args.box_format,
        )
        if outcome.reason == "bad_row":
            if not args.skip_bad_rows:
                raise MirrorInputError(f"{row.ref}: field {outcome.field!r}: {outcome.detail}")
            skip(row, "bad_row", outcome.detail, outcome.field)
            prepared.append(None)
            continue
        prepared.append((row, image, data, name, outcome))

    # LLM: rows with direction words and no coordinates, that the rules rewrote or could not
    # classify (ambiguous_left_right). Content skips are never sent.
    def eligible(row: _Row, outcome: RowOutcome) -> bool:
        return (
            outcome.has_direction
            and not outcome.has_coords
            and (outcome.ok or outcome.reason == "ambiguous_left_right")
            and isinstance(row.record[args.answer_column], str)
        )

    jobs: dict[int, Any] = {}
    if state is not None:
        for i, item in enumerate(prepared):
            if item is not None and eligible(item[0], item[4]):
                if state.disabled:
                    state.counts["not_sent_llm_given_up"] += 1
                    continue
                q, a = item[0].record[args.question_column], item[0].record[args.answer_column]
                jobs[i] = executor.submit(_ask_llm, state, q, a)

    out_rows: list[dict[str, Any]] = []
    kept = 0
    for i, item in enumerate(prepared):
        if item is None:
            continue
        row, image, data, name, outcome = item
        values = outcome.values
        method = None
        if i in jobs:
            assert state is not None
            accepted = False
            parsed, label = jobs[i].result()
            if parsed is not None:
                q_new, a_new = parsed
                problem = check_llm_rewrite(row.record[args.question_column], q_new) or check_llm_rewrite(row.record[args.answer_column], a_new)
                if problem is None:
                    base = dict(values) if values is not None else {f: row.record.get(f) for f in text_fields}
                    if values is None:
                        # the rules could not classify the q/a; extra columns still need them
                        extra = mirror_fields(row.record, text_fields=args.also_rewrite, coord_fields=coord_fields, width=image.width, height=image.height, coords=args.coords, box_format=args.box_format)
                        if not extra.ok:
                            skip(row, extra.reason, extra.detail, extra.field)
                            state.counts["accepted_but_extra_column_skipped"] += 1
                            continue
                        base.update(extra.values or {})
                    base[args.question_column] = q_new
                    base[args.answer_column] = a_new
                    values = base
                    accepted = True
                    state.counts["accepted"] += 1
                    if q_new != row.record[args.question_column] or a_new != row.record[args.answer_column]:
                        method = "llm"  # else "unchanged" (or "rules" for extra columns), below
                else:
                    state.counts[f"rejected_{problem}"] += 1
            else:
                state.counts[label] += 1
            if not accepted and values is not None:
                state.counts["fallback_rules"] += 1
        if values is None:
            skip(row, outcome.reason or "ambiguous_left_right", outcome.detail, outcome.field)
            continue
        if method is None:
            changed = any(values.get(f) != row.record.get(f) for f in text_fields + coord_fields)
            method = "rules" if changed else "unchanged"
        if id_column:
            if row.record.get(id_column) is None:
                if not args.skip_bad_rows:
                    raise MirrorInputError(f"{row.ref}: field {id_column!r} is null (it names the pair)")
                skip(row, "bad_row", f"{row.ref}: field {id_column!r} is null")
                continue
            pair_id = str(row.record[id_column])
            if pair_id in seen_ids:
                raise MirrorInputError(f"{row.ref}: field {id_column!r}: duplicate id {pair_id!r} (pair ids must be unique; use --id-column)")
            seen_ids.add(pair_id)
        else:
            pair_id = f"{row.index:08d}"
        flipped, ext = _flip_image(image, args.jpeg_quality)
        stem = Path(name).stem if name else f"{pair_id}"
        original = dict(row.record)
        original[args.image_column] = {"bytes": data, "path": name}
        original.update(pair_id=pair_id, view="original", mirror_rewrite=None)
        mirror = dict(row.record)
        mirror.update(values)
        mirror[args.image_column] = {"bytes": flipped, "path": f"{stem}.mirror{ext}"}
        mirror.update(pair_id=pair_id, view="mirror", mirror_rewrite=method)
        for view in (original, mirror):  # typed answers of each view's own text and box
            box = view.get(args.bbox_column) if args.bbox_column else None
            if args.bbox_column == "bbox" and box not in (None, []) and one_box(box) is None:
                raise MirrorInputError(f"{row.ref}: field 'bbox' is not one box [x1, y1, x2, y2]; the output's typed "
                                       "'bbox' column holds one box: rename the column and pass --bbox-column NAME")
            view.update(typed_answer(view[args.question_column], view[args.answer_column], box))
        out_rows += [original, mirror]
        method_counts[method] += 1
        kept += 1
    writer.write(out_rows)
    return kept
