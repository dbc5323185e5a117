"""The rule rewriter: a question or answer as it reads for the horizontally flipped image.

SVQA-R1 appendix A names what a horizontal flip changes: left/right relations (A.1) and
bounding boxes (A.2); attributes, counts and global scene questions are unaffected (A.3), and
distances are mirror-invariant (sec. 3.3). The rules (``docs/mirroring.md`` has the full table
and the reasoning):

* words: left <-> right, also inside leftmost/rightmost, leftward(s), left-hand, top-left...
  capitalisation kept, swapped simultaneously in one pass; "right" as an intensifier
  ("right next to"), "all right", "right angle", "right side up" stay as they are;
* rotation: clockwise <-> counterclockwise / anticlockwise (a reflection reverses the sense
  of every rotation);
* clock directions: "at h o'clock" -> "at (12 - h) o'clock" (12 and 6 stay); h:mm likewise;
* coordinates: boxes and points flip their x (:mod:`.coordinates`), in the text and in a box
  column;
* numbers otherwise (distances, sizes, counts) are never touched;
* left out, each with a counted reason (:data:`.reasons.REASONS`): "left" meaning remaining or
  the verb to leave, "right" meaning correct, any left/right the rules cannot classify, compass
  east/west, port/starboard, text or clock-face reading, boxes that fail the coordinate checks.

:func:`rewrite_text` mirrors one text, :func:`mirror_fields` the fields of one row with one
coordinate frame for the whole row.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from spatialrl.data.mirror_text.coordinates import (
    Coords,
    Frame,
    coord_spans,
    flip_values,
    resolve_frame,
    scan_coords,
    to_decimal,
)
from spatialrl.data.mirror_text.reasons import Skip

__all__ = ["RowOutcome", "TextOutcome", "direction_sequence", "mirror_fields", "rewrite_text", "rewrite_with_frame"]


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
            raise Skip("text_reading", m.group(0))
    for pattern in _CLOCK_READING:
        m = pattern.search(text)
        if m:
            raise Skip("clock_reading", m.group(0))
    m = _COMPASS.search(text)
    if m:
        raise Skip("compass_direction", m.group(0))
    m = _NAUTICAL.search(text)
    if m:
        raise Skip("nautical_side", m.group(0))


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
    """Replacement spans for left/right words and rotation senses; raises Skip."""
    spans: list[tuple[int, int, str]] = []
    for m in _WORD.finditer(text):
        cls = _classify(text, m)
        if cls == SPATIAL:
            base = m.group("base")
            swapped = "right" if base.lower() == "left" else "left"
            spans.append((m.start("base"), m.end("base"), _match_case(base, swapped)))
        elif cls == NONDIR:
            raise Skip(f"{m.group('base').lower()}_not_direction", _snippet(text, m.start(), m.end()))
        elif cls == UNSURE:
            raise Skip("ambiguous_left_right", _snippet(text, m.start(), m.end()))
    anti = re.search(r"\b(counter|anti)([- ]?)clockwise\b", text, _I)
    style = (anti.group(1).lower() + anti.group(2) + "clockwise") if anti else "counterclockwise"
    for m in _ROTATION.finditer(text):
        src = m.group(0)
        repl = "clockwise" if m.group("counter") else style
        spans.append((m.start(), m.end(), _match_case(src, repl)))
    return spans


def _clock_spans(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), _clock_replacement(m)) for m in _CLOCK.finditer(text)]


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


def rewrite_with_frame(text: str, frame_for: Any, *, words: bool = True) -> str:
    """Mirror one text. ``frame_for(coords)`` resolves the coordinate frame; raises Skip."""
    if words:
        _content_check(text)
    coords = scan_coords(text)
    frame = frame_for(coords)
    spans = (_word_spans(text) if words else []) + _clock_spans(text) + coord_spans(coords, frame)
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
        def frame_for(found: list[Coords]) -> Frame | None:
            return resolve_frame(found, width, height, coords, box_format)

        return TextOutcome(rewrite_with_frame(text, frame_for))
    except Skip as skip:
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


def _value_coords(value: Any, is_text: bool) -> list[Coords]:
    """Coordinate tuples held by a field value (a text, a number list, a list of lists)."""
    if value is None or isinstance(value, (bool, int, float)):
        return []
    if isinstance(value, str):
        return scan_coords(value)
    if isinstance(value, (list, tuple)):
        if not value:
            return []
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            nums = [to_decimal(v) for v in value]
            if len(nums) == 4:
                return [Coords("box", nums)]
            if len(nums) == 2:
                return [Coords("point", nums)]
            raise Skip("unsupported_coordinates", f"a list of {len(nums)} numbers")
        out: list[Coords] = []
        for v in value:
            if isinstance(v, (list, tuple, str)) or v is None:
                out += _value_coords(v, is_text)
            else:
                raise Skip("unsupported_value", f"list item of type {type(v).__name__}")
        return out
    raise Skip("unsupported_value", f"value of type {type(value).__name__}")


def _mirror_value(value: Any, frame: Frame | None, words: bool) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value  # numbers (distances, sizes, counts) are mirror-invariant (sec. 3.3)
    if isinstance(value, str):
        return rewrite_with_frame(value, lambda found: frame if found else None, words=words)
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            kind = "box" if len(value) == 4 else "point"
            assert frame is not None
            flipped = flip_values(Coords(kind, [to_decimal(v) for v in value]), frame)
            all_int = all(isinstance(v, int) for v in value)
            out = [int(x) if all_int and x == x.to_integral_value() else float(x) for x in flipped]
            return type(value)(out)
        return type(value)(_mirror_value(v, frame, words) for v in value)
    raise Skip("unsupported_value", f"value of type {type(value).__name__}")


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
        found: list[Coords] = []
        for name in list(text_fields) + list(coord_fields):
            current = name
            v = values.get(name)
            found += _value_coords(v, name in text_fields)
            if name in text_fields:
                for text in _texts(v):
                    has_direction = has_direction or _has_direction(text)
        current = None
        frame = resolve_frame(found, width, height, coords, box_format)
        out: dict[str, Any] = {}
        for name in text_fields:
            current = name
            out[name] = _mirror_value(values.get(name), frame, True)
        for name in coord_fields:
            current = name
            out[name] = _mirror_value(values.get(name), frame, False)
        return RowOutcome(out, has_coords=bool(found), has_direction=has_direction)
    except Skip as skip:
        return RowOutcome(None, skip.reason, skip.detail, current, has_direction=has_direction)


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _texts(v)]
    return []


# --------------------------------------------------------------------------------------------
# Direction words, in reading order (also what the LLM rewrite check compares)
# --------------------------------------------------------------------------------------------


def direction_sequence(text: str) -> list[str]:
    """Left/right words (all but the ones the rules keep, e.g. "right next to") and rotation
    senses in ``text``, in reading order: e.g. ``["left", "right", "cw"]``."""
    found = [(m.start(), m.group("base").lower()) for m in _WORD.finditer(text) if _classify(text, m) != KEEP]
    found += [(m.start(), "ccw" if m.group("counter") else "cw") for m in _ROTATION.finditer(text)]
    return [word for _, word in sorted(found)]


def _direction_counts(text: str) -> Counter[str]:
    return Counter(direction_sequence(text))
