"""Extract and parse model output under the strict *reward policy*.

Model output is **untrusted input**. Every public function here is pure (no state besides
caches, no I/O), never evaluates text (no ``eval``, no symbolic parsing), never raises on
any text (``None`` or a non-``str`` gives ``None``) and returns ``None`` for anything that is
not **one committed answer**. ``None`` scores as wrong in training. Parsing is kept apart from
scoring: nothing here computes a reward.

Two policies, kept apart
------------------------
* The **reward policy** (this package) is strict, for training rewards: a policy that hedges,
  negates, refuses or lists several answers must never earn what a committed right answer
  earns. Graders such as math_verify or lm-evaluation-harness's filters take the first or last
  match; here ambiguity is ``None``.
* **Benchmark policies** (``spatialrl.eval.benchmarks.<name>``) reproduce each benchmark's
  official scorer, quirks included, and never call these parsers for an official score (the
  ``*_lenient`` extras do, and say so).

Public functions
----------------
``extract_answer(text)``                      -> ``str | None``
``parse_quantity(text, dimension, default_unit)`` -> ``float | None`` (SI: m, m^2, count)
``parse_choice(text, options)``               -> ``int | None`` (0-based index)
``parse_yes_no(text)``                        -> ``bool | None``
``parse_bbox(text)``                          -> ``(x1, y1, x2, y2) | None``
``relations.parse_side`` / ``relations.parse_nearer`` for open-ended relation answers.

Rules of the reward policy (each one is tested in ``tests/answers/``)
--------------------------------------------------------------------
Commitment (all parsers; ``spatialrl.answers.commitment``, with examples there)
    * An answer holds a letter or digit once invisible characters are removed
      (``"\\u200b"``, BOM, word joiner, braille blank are no answer).
    * Refusals (``"I have no idea"``, ``"not sure"``, ``"I cannot say yes"``) and hedges
      (``"maybe B"``, ``"either A or B"``, ``"both"``, ``"3 m, give or take a meter"``,
      ``"3 m ± 0.5"``, ``"B?"``) give ``None``. ``about``/``approximately``/``~`` are fine.
    * Rejection is scoped: a verdict (``wrong``, ``incorrect``, ``not correct``...) rejects the
      values of its clause, or of the clause it judges (``"3 m, which is wrong"``,
      ``"Wrong: B"``); a prefix cue (``not``, ``n't``, ``never``, ``instead of``...) rejects the
      values after it, or its whole clause when none follows. One value must be asserted and
      not also rejected: ``"not left"``, ``"3 m is wrong"``, ``"B is incorrect"``,
      ``"the box is not [10, 20, 30, 40]"`` give ``None``; ``"B, not A"``, ``"B and not C"``
      are B; ``"3 m, not 4 m"`` is 3 m.

Input hygiene (all parsers)
    * Text longer than ``MAX_TEXT_CHARS`` (2048) characters gives ``None`` (an answer is
      short; this caps the work). ``extract_answer`` has no cap (it is a linear scan), and
      Q-Spatial-Bench's ``\\scalar{}`` form is located with ``str.rfind`` in text of any
      length.
    * Non-ASCII text is NFKC-normalised (full-width characters become ASCII), invisible
      characters are removed, Unicode decimal digits (``"٣"``) become ASCII digits, Unicode
      dashes and the minus sign become ``-``, primes and curly quotes become ``'`` and ``"``,
      ``²``/``³`` become ``^2``/``^3``, and vulgar fractions become decimals (``½`` -> 0.5,
      ``3½`` and ``3 and ½`` -> 3.5).
    * Markup is read as it renders: struck-out text (``~~A~~ B``) is gone, HTML-like tags and
      special tokens (``<b>``, ``<box>``, ``<|box_start|>``) are spaces, ``_`` emphasis is a
      space (``_yes_``), ``$...$`` around a number is dropped (``$3$ m``).
    * Fractions of whole numbers are number literals, not arithmetic: ``1/2 m``, ``3 1/2 m``,
      ``3 and 1/2 m``, ``\\frac{7}{2}`` are 0.5, 3.5, 3.5, 3.5.

``extract_answer``
    * Exactly one ``<answer>...</answer>`` block, or ``None``: two blocks (even one inside
      ``<think>``), an unclosed ``<answer>`` before or after a closed one, nesting, a block that
      crosses the reasoning block (``<think><answer></think>B</answer>``), or no block at all
      give ``None``. The answer is the final word: after ``</answer>`` only whitespace,
      punctuation and special tokens (``<|im_end|>``) may follow (``"<answer>C</answer> The
      answer is D."`` and ``"<answer>C</answer><think>no</think>"`` give ``None``). Tags are case-insensitive (``<ANSWER>``) and may carry
      inner whitespace (``<answer >``). An empty or invisible-only content gives ``None``.

``parse_quantity``
    * Units come from ``pint`` (any pint unit of the right dimension: ``m``, ``cm``, ``mm``,
      ``km``, ``in``, ``ft``, ``yd``, ``mi``, spelled-out and plural forms, ``parsec``...).
      Pint is consulted once per distinct unit word (``functools.lru_cache``), never per
      completion; the registry is built lazily on first use.
    * Units are case-insensitive (text is lower-cased before lookup): ``Mm`` is read as
      ``mm``. ``'`` / ``"`` (or primes) right after a number are feet / inches, unless the
      number is quoted with the same mark (``"2"`` is a bare 2).
    * Area: ``m^2``, ``m2``, ``m²``, ``m**2``, ``sq ft``, ``sq. m``, ``sqft``, ``square meters``,
      ``meters squared``, and pint's own area units (``acre``, ``hectare``). Volumes
      (``cubic``, ``^3``) are rejected.
    * No unit and no ``default_unit``: the SI unit is assumed (meters for length, square
      meters for area). ``default_unit`` (e.g. ``"cm"``, ``"sq ft"``) applies to bare
      numbers; for ``dimension="area"`` a length ``default_unit`` means its square
      (``default_unit="m"`` -> m^2). An unknown ``default_unit`` or ``dimension`` raises
      ``ValueError``: those are caller arguments, not model text.
    * Dimension checks: a unit of the wrong dimension (``"3 m"`` for area, ``"3 m^2"`` for
      length, ``"3 s"``), or an unknown word right after a number (``"3 bananas"``) gives
      ``None`` for length/area. ``in`` followed by an ordinary word (``"2 in the box"``) is
      the preposition, not inches (that 2 is then a bare number).
    * ``dimension="count"``: non-negative integers (``"3"``, ``"3.0"``, ``"1,000"``) and
      number words; any noun may follow (``"3 chairs"``), except a length/area/volume unit
      (``"3 m"`` -> ``None``). ``"none"``, ``"zero"`` and ``"no chairs"`` are 0.
      Non-integers (``"2.5"``) give ``None``.
    * Number words: ``zero`` .. ``nineteen``, tens, hyphenated or spaced compounds
      (``twenty-one``, ``twenty one``), ``hundred``/``thousand``/``million`` with ``and``
      (``two hundred and five``), ``a hundred`` / ``a thousand``, ``a dozen`` (counts),
      decimals in words (``three point five``, ``point five``) and the fractions
      ``N and a half`` / ``and a quarter`` / ``and three quarters``, ``half a`` / ``one half``.
      Malformed sequences (``"two three"``) and any other fraction word (``"a third"``,
      ``"3 halves"``) give ``None``.
    * Numbers: decimals, scientific notation (``2e-3``), thousands separators only in
      exact groups of three (``1,200`` is 1200; ``2,5`` is two numbers, hence ``None``), an
      explicit sign ``+3 m``.
    * Compound lengths add up: ``5 ft 6 in``, ``5'6"``, ``5 feet and 6 inches``,
      ``1 m 20 cm`` (the second unit must be smaller and the second part less than one of
      the first unit). After feet, a bare number below 12 is inches (``5'6``).
    * Ranges are not one value: ``2-3 m``, ``2 to 3 meters``, ``between 2 and 3 m`` give
      ``None``. So do inequalities: ``more than 3 m``, ``< 3 m``, ``at least 3``,
      ``3 m or more``, ``3+``, ``over 2 m`` (``"1.5 m above the floor"`` is 1.5 m).
    * Several quantities: ``None`` unless they all agree after conversion, within ``REL_TOL``
      (1e-6, relative) in the same unit and within ``CONVERSION_TOL`` (5 %) in another unit (a
      rounded conversion), so ``"2 m (2 meters)"``, ``"2 m (200 cm)"`` and
      ``"1.8 m (about 5.9 ft)"`` give the first value, but ``"2 or 3 m"``, ``"2 m (2.05 m)"`` and
      ``"2 m (8 ft)"`` give ``None``.
      Every number in the text counts, including number words (``"the one on the left is
      2 m"`` is ``None``): the answer block should hold only the answer.
    * Arithmetic signs ``+ × ÷`` between or after numbers, and ``* ^`` between two numbers,
      give ``None`` (``"2+2 m"``, ``"2*3"``; markdown ``**2 m**`` is fine), and so does a
      function call around a number (``"sqrt(4) m"``, ``"eval('3')"``): text is never
      evaluated.
    * NaN, inf (``1e400``), overflow after conversion, and negative values give ``None``
      (a ``-`` glued to a number after a space or at the start is a minus sign; a ``-``
      followed by a space is a list bullet).
    * Q-Spatial-Bench's form ``\\scalar{3.5} \\distance_unit{feet}``: the scalar's content is
      parsed like any quantity with the distance unit as its unit; several ``\\scalar{}`` or
      ``\\distance_unit{}`` that differ give ``None``, and the text around them is ignored.
      Other LaTeX (``\\text{m}``, ``\\,``, ``$``, ``m^{2}``) is reduced to plain text.

``parse_choice``
    * A letter is an option label when (1) the whole answer is that letter, possibly
      wrapped in brackets/markdown/punctuation (``B``, ``(B)``, ``B.``, ``**B**``);
      (2) it is in brackets anywhere (``(B)``, ``[B]``); (3) it is followed by ``.``, ``)`` or
      ``:`` and not by a letter or digit (``B. table``, ``B)``; ``e.g.`` does not count) and
      is upper-case, or lower-case at the start of a line; (4) it follows ``option`` /
      ``choice`` (``Option B``) or ``answer is`` / ``answer:``; (5) it is any other
      stand-alone capital within the options (``"B C"``, ``"A (B)"``, ``"C. B"``: two letters).
      ``A`` and ``I`` followed by a word are English words: ``"A chair is closer"`` is not A.
    * Two different asserted letters give ``None`` (``A or B``, ``A, B, C``, ``B (or C)``);
      the same letter repeated is fine. A letter beyond the options gives ``None``.
    * Option texts match case-insensitively as whole words/phrases (``"the table"`` matches
      ``"table"``); a match inside a longer matching option (``chair`` in ``red chair``)
      does not count; a leading label in an option (``"A. chair"``) is ignored. Without a
      letter, exactly one option must be asserted (``"the table, not the chair"`` is table).
      With a letter, asserted option texts must include that letter's option
      (``"A. table"`` with ``["chair", "table"]`` is ``None``).

``parse_yes_no``
    * Keywords (whole words, case-insensitive): yes/true/yeah/yep/yup and no/false/nope.
      Both polarities asserted -> ``None``; none -> ``None``. A negated keyword
      (``"not yes"``, ``"isn't true"``) is rejected, never flipped. ``no`` as a determiner
      still counts (``"There is no chair"`` -> ``False``); ``"no idea"`` is a refusal.

``parse_bbox``
    * ``[x1, y1, x2, y2]`` or ``(x1, y1, x2, y2)`` (commas or spaces), and Qwen's two-point
      form ``(x1,y1),(x2,y2)``, anywhere in the text, or an answer that is just the four
      numbers ``x1, y1, x2, y2`` (JSON such as
      ``{"bbox_2d": [1, 2, 3, 4]}`` works). Floats, ``+``/``-`` signs and exponents are
      allowed; negative coordinates are accepted (clipping is the scorer's job).
    * ``x2 < x1`` or ``y2 < y1``, NaN/inf, or two different asserted boxes -> ``None``; the
      same box repeated is fine; degenerate boxes (``x1 == x2``) are accepted.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from typing import Any, Literal, NamedTuple

from spatialrl.answers.commitment import (
    has_visible_content,
    is_hedged,
    is_inequality,
    is_refusal,
    rejected,
    strip_invisible,
)

__all__ = [
    "clear_caches",
    "MAX_OPTIONS",
    "MAX_TEXT_CHARS",
    "REL_TOL",
    "CONVERSION_TOL",
    "extract_answer",
    "parse_bbox",
    "parse_choice",
    "parse_quantity",
    "parse_yes_no",
]

MAX_TEXT_CHARS = 2048
"""Longer texts give ``None`` in every parser (except ``extract_answer`` and ``\\scalar{}``)."""
REL_TOL = 1e-6
"""Two quantities in one answer, in the same unit, must agree within this relative tolerance."""
CONVERSION_TOL = 0.05
"""The same quantity restated in another unit may be rounded this much: ``1.8 m (5.9 ft)``."""
MAX_OPTIONS = 100
"""``parse_choice`` gives ``None`` for more options than this."""

Dimension = Literal["length", "area", "count"]

# Answers up to this length are cached (a group's answers repeat); the caches stay small.
_CACHED_CHARS = 160


def clear_caches() -> None:
    """Empty the parsers' answer caches (for benchmarks that time the parsing itself)."""
    for cache in (_choice, _quantity, _yes_no):
        cache.cache_clear()

# Tests set this to True so that internal bugs surface instead of being turned into None.
_RAISE_INTERNAL_ERRORS = False


class _ArgumentError(ValueError):
    """Invalid caller argument (not model text); always propagated."""


def _never_raises(fn):
    """Turn any unexpected internal error into ``None`` (a crash must not stop training)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _ArgumentError:
            raise
        except Exception:
            if _RAISE_INTERNAL_ERRORS:
                raise
            return None

    return wrapper


# --------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------

_CHAR_MAP = str.maketrans(
    {
        "\u2212": "-",  # minus sign
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",  # en dash
        "\u2014": "-",  # em dash
        "\u2015": "-",
        "\ufe63": "-",
        "\u2032": "'",  # prime
        "\u2033": '"',  # double prime
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2044": "/",  # fraction slash: "1⁄2"
        "\u00b2": "^2",
        "\u00b3": "^3",
    }
)


_VULGAR = {
    "\u00bd": 1 / 2, "\u2153": 1 / 3, "\u2154": 2 / 3, "\u00bc": 1 / 4, "\u00be": 3 / 4,
    "\u2155": 1 / 5, "\u2156": 2 / 5, "\u2157": 3 / 5, "\u2158": 4 / 5, "\u2159": 1 / 6,
    "\u215a": 5 / 6, "\u2150": 1 / 7, "\u215b": 1 / 8, "\u215c": 3 / 8, "\u215d": 5 / 8,
    "\u215e": 7 / 8, "\u2151": 1 / 9, "\u2152": 1 / 10,
}  # fmt: skip
_VULGAR_RE = re.compile(r"(?<![\d.])(?:(\d+)(?:[ \u00a0]?|\s+and\s+)|)([" + "".join(_VULGAR) + r"])")


def _vulgar_to_decimal(m: re.Match) -> str:
    whole = int(m.group(1)) if m.group(1) else 0
    return repr(whole + _VULGAR[m.group(2)])


_RTL_OVERRIDE = re.compile("\u202e([^\u202c\u202d]*)\u202c?")


def _normalize(text: str) -> str:
    """NFKC, strip invisible characters, ASCII digits/dashes/quotes, vulgar fractions as decimals
    (``3\u00bd`` -> ``3.5``). Identity on ASCII."""
    if text.isascii():
        return text
    if any(c in _VULGAR for c in text):
        text = _VULGAR_RE.sub(_vulgar_to_decimal, text)
    if "\u202e" in text:  # right-to-left override: "\u202eD ton" is seen as "not D"
        text = _RTL_OVERRIDE.sub(lambda m: m.group(1)[::-1], text)
    text = unicodedata.normalize("NFKC", strip_invisible(text).translate(_CHAR_MAP)).translate(_CHAR_MAP)
    if text.isascii():
        return text
    if any(c in _STROKES for c in text):
        text = _STRUCK_LETTER.sub("", text)  # "D\u0336": a letter struck through is withdrawn
    text = unicodedata.normalize("NFKD", text)  # accents and dots as separate marks
    out: list[str] = []
    for c in text:
        if c.isascii():
            out.append(c)
            continue
        cat = unicodedata.category(c)
        if cat == "Cf" or (cat in ("Mn", "Me") and out and out[-1].isascii()):
            continue  # a mark on a Latin letter ("no\u1e6b" reads "not"); other scripts keep theirs
        if cat == "Nd":
            out.append(str(unicodedata.decimal(c, 0)))
            continue
        out.append(_LOOKALIKES.get(c, c))
    return unicodedata.normalize("NFC", "".join(out))


# Letters that render like Latin ones (Cyrillic, Greek, Armenian, Coptic, small capitals):
# read as what a reader sees, so "n\u043et" is "not" and "\u0421" is the letter C.
_LOOKALIKES = dict(zip(
    "\u0430\u0435\u043e\u0440\u0441\u0443\u0445\u0456\u0458\u0455\u0501\u04bb\u0410\u0412\u0415\u041a\u041c\u041d"
    "\u041e\u0420\u0421\u0422\u0425\u0406\u0408\u0405\u03bf\u03b1\u03b9\u03ba\u03bd\u03c1\u03c4\u03c5\u0391\u0392"
    "\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7\u0585\u2c9f\u1d00\u0299\u1d04"
    "\u1d05\u1d07\u0262\u029c\u026a\u1d0a\u1d0b\u029f\u1d0d\u0274\u1d0f\u1d18\u0280\ua731\u1d1b\u1d1c\u1d20"
    "\u1d21\u028f\u1d22\u13a0\u13a1\u13a2\u13a9\u13aa\u13ab\u13b3\u13b7\u13bb\u13bc",
    "aeopcyxijsdhABEKMHOPCTXIJSoaiknptuABEZHIKMNOPTYXooabcdeghijklmnoprstuvwyzDRTYAJWMHP",
))
_STROKES = "\u0335\u0336\u0337\u0338"
_STRUCK_LETTER = re.compile("[^\\s][" + _STROKES + "]+")


_STRUCK = re.compile(r"~~.*?~~|<(s|del|strike)\b[^<>]*>.*?</\1\s*>|<!--.*?-->", re.DOTALL | re.IGNORECASE)
_SUPERSCRIPT = re.compile(r"<sup>\s*([23])\s*</sup>", re.IGNORECASE)


_MARKUP_TAG = re.compile(r"</?[A-Za-z][\w-]*\s*/?>|<\|[^|<>]{1,40}\|>")


def _markdown(text: str) -> str:
    """Markup read as a reader sees it: struck-out or commented-out text (``~~A~~``, ``<s>A</s>``,
    ``<!-- A -->``) is gone, ``<sup>2</sup>`` is ``^2``, HTML-like tags and
    special tokens (``<b>``, ``<box>``, ``<|box_start|>``) are spaces, ``_`` emphasis is a space
    (``_yes_``)."""
    if "~~" in text or "<" in text:
        text = _STRUCK.sub(" ", text)  # "~~C~~", "<s>C</s>", "<del>C</del>", "<!-- C -->"
    if "<" in text:
        text = _MARKUP_TAG.sub(" ", _SUPERSCRIPT.sub(r"^\1", text))  # "m<sup>2</sup>" is m^2
    return text.replace("_", " ") if "_" in text else text


_EXPLICIT_PLUS = re.compile(r"(?<![\w.)\]}])\+\s?(?=\.?\d)")


def _drop_explicit_plus(text: str) -> str:
    """``+3 m`` is 3 m; a ``+`` after a number (``2 +3``, ``3+``) stays and is rejected later."""
    if "+" not in text:
        return text
    out, last = [], 0
    for m in _EXPLICIT_PLUS.finditer(text):
        before = text[: m.start()].rstrip()
        if before and (before[-1].isdigit() or before[-1] == "+"):
            continue
        out.append(text[last : m.start()])
        last = m.end()
    out.append(text[last:])
    return "".join(out)


# --------------------------------------------------------------------------------------
# extract_answer
# --------------------------------------------------------------------------------------

_ANS_OPEN = re.compile(r"<\s*answer\s*>", re.IGNORECASE)
_ANS_CLOSE = re.compile(r"<\s*/\s*answer\s*>", re.IGNORECASE)
_ANS_ANY = re.compile(r"<\s*/?\s*answer\s*/?\s*>", re.IGNORECASE)
_SPECIAL_TOKEN = re.compile(r"<\|[^|<>]{1,40}\|>")  # "<|im_end|>", "<|endoftext|>"
_TRAILING_WORDS = re.compile(r"[^\W_]|<", re.UNICODE)
_THINK_TAG = re.compile(r"<\s*/?\s*think\s*>", re.IGNORECASE)


@_never_raises
def extract_answer(text: Any) -> str | None:
    """Return the stripped content of the one ``<answer>...</answer>`` block, which must end the
    text, else ``None``.

    >>> extract_answer("<think>about 2 m</think><answer> 2.5 m </answer>")
    '2.5 m'
    >>> extract_answer("<answer>A</answer> ... <ANSWER>B</ANSWER>") is None  # two answers
    True
    >>> extract_answer("<answer>2 m") is None           # unclosed
    True
    >>> extract_answer("<answer>A <answer>B</answer>") is None  # unclosed, then closed
    True
    >>> extract_answer("<answer> \u200b </answer>") is None   # nothing visible
    True
    >>> extract_answer("<answer>C</answer> The answer is D.") is None  # not the final word
    True
    """
    if not isinstance(text, str):
        return None
    i = text.find("<answer>")
    j = text.find("</answer>")
    if (i >= 0 and j > i and text.find("<answer>", i + 8) < 0 and text.find("</answer>", j + 9) < 0
            and "<" not in text[i + 8 : j] and _ANS_ANY.search(text, 0, i) is None):
        content, end = text[i + 8 : j], j + 9  # fast path: one lower-case block, no other answer tag
    else:
        tags = []
        for m in _ANS_ANY.finditer(text):  # stop at the third tag: one block has two
            tags.append(m)
            if len(tags) > 2:
                return None
        if len(tags) != 2 or not _ANS_OPEN.fullmatch(tags[0].group()) or not _ANS_CLOSE.fullmatch(tags[1].group()):
            return None
        content, end = text[tags[0].end() : tags[1].start()], tags[1].end()
    if end < len(text) and _TRAILING_WORDS.search(_SPECIAL_TOKEN.sub("", text[end:])):
        return None  # more after the answer ("... The answer is D.", "<think>no, D</think>")
    content = content.strip()
    if not content or not has_visible_content(content) or ("<" in content and _THINK_TAG.search(content)):
        return None  # empty, invisible, or crossing the reasoning block ("<answer></think>B</answer>")
    return content


# --------------------------------------------------------------------------------------
# Units (pint, cached per unit word)
# --------------------------------------------------------------------------------------


class _Unit(NamedTuple):
    kind: str  # "length", "area", "volume", "other" (pint, other dimension), "unknown"
    factor: float  # to SI (m, m^2); nan unless length/area


_UNKNOWN = _Unit("unknown", math.nan)
_COMPOUND = _Unit("length", 1.0)  # "5 ft 6 in", already in meters; told apart by identity
_UREG = None

# Words pint reads as lengths but that are ordinary English nouns in an answer
# ("3 points", "2 hands"): treated as unknown words, never as units.
_NOT_UNITS = frozenset(
    "point points pt line lines hand hands link links chain chains pole poles span spans "
    "cable cables rod rods perch league leagues finger fingers pace paces step steps".split()
)


def _ureg():
    global _UREG
    if _UREG is None:
        import pint

        _UREG = pint.UnitRegistry()
    return _UREG


@functools.lru_cache(maxsize=8192)
def _word_unit(word: str) -> _Unit:
    """Classify one lower-case unit word with pint (cached). Never raises."""
    if not word or len(word) > 32 or not word.isalpha() or word in _NOT_UNITS:
        return _UNKNOWN
    try:
        ureg = _ureg()
        unit = ureg.parse_units(word)
        dim = dict(unit.dimensionality)
        if dim == {"[length]": 1}:
            kind, target = "length", "meter"
        elif dim == {"[length]": 2}:
            kind, target = "area", "meter ** 2"
        elif dim == {"[length]": 3}:
            return _Unit("volume", math.nan)
        else:
            return _Unit("other", math.nan)
        # Round away pint's float noise from chained definitions (0.30479999999999996 ft).
        factor = float(f"{float(ureg.Quantity(1.0, unit).to(target).magnitude):.15g}")
    except Exception:
        return _UNKNOWN
    if not (math.isfinite(factor) and factor > 0):
        return _UNKNOWN
    return _Unit(kind, factor)


# --------------------------------------------------------------------------------------
# Tokenizer for quantities
# --------------------------------------------------------------------------------------

_NW_VALUES = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
    "million": 1000000,
}  # fmt: skip
_NW_ALT = "|".join(sorted(_NW_VALUES, key=len, reverse=True))
_NW_SEP = r"(?:-|(?:(?<=hundred)|(?<=thousand)|(?<=million))\s+and\s+|\s+)"

_TOKEN_RE = re.compile(
    rf"""
    (?P<num>\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?(?!\d)|\d+(?:\.\d+)?(?:e[+-]?\d+)?|\.\d+(?:e[+-]?\d+)?)
    |(?P<nw>(?:a\s+(?=(?:hundred|thousand|million)\b))?(?:{_NW_ALT})(?:{_NW_SEP}(?:{_NW_ALT}))*\b)
    |(?P<word>[^\W\d_]+)
    |(?P<pow>(?:(?<=[^\W\d_])|(?<=[^\W\d_]\s))(?:\^|\*\*)\s*\{{?\s*[23](?!\d|\.\d)\s*\}}?)
    |(?P<inch>''|")
    |(?P<foot>')
    |(?P<dash>-)
    |(?P<other>\S)
    """,
    re.VERBOSE,
)

_NUMERIC = ("num", "nw")
_CONNECTORS = frozenset({"to", "and", "or", "till", "until", "through", "thru"})
_RANGE_WORDS = frozenset({"to", "till", "until", "through", "thru"})
# "6 in tall": `in` is the inch when followed by one of these words (or by no word).
_AFTER_INCH = frozenset(
    "tall long wide high away apart deep thick across from of and or to by x in wide "
    "diameter length width height long".split()
)
_BAD_AFTER_NUMBER = frozenset("%°$€£¥#")
_ARITHMETIC = frozenset("+×÷")

_Token = tuple  # (kind, text, start, end)


def _tokenize(text: str) -> list[_Token]:
    return [(m.lastgroup, m.group(), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]


def _words_to_number(phrase: str) -> float | None:
    """Value of a number-word phrase matched by the tokenizer, or None if malformed."""
    words = [w for w in re.split(r"[\s-]+", phrase) if w]
    if not words:
        return None
    if words == ["zero"]:
        return 0.0
    total = 0
    group = 0
    last: str | None = None
    last_scale = math.inf
    start = 0
    if words[0] == "a":
        group, last, start = 1, "unit", 1
    for w in words[start:]:
        if w == "and":
            if last not in ("hundred", "scale"):
                return None
            continue
        v = _NW_VALUES.get(w)
        if v is None or v == 0:
            return None
        if v < 10:
            if last not in (None, "tens", "hundred", "scale"):
                return None
            group += v
            last = "unit"
        elif v < 100:
            if last not in (None, "hundred", "scale"):
                return None
            group += v
            last = "teen" if v < 20 else "tens"
        elif v == 100:
            if last != "unit" or group >= 10:
                return None
            group *= 100
            last = "hundred"
        else:
            if last in (None, "scale") or group == 0 or v >= last_scale:
                return None
            total += group * v
            group = 0
            last = "scale"
            last_scale = v
    if last is None:
        return None
    return float(total + group)


def _number_value(tok: _Token) -> float | None:
    if tok[0] == "num":
        v = float(tok[1].replace(",", ""))
        return v if math.isfinite(v) else None
    return _words_to_number(tok[1])


def _quoted(text: str, num_start: int, mark: str) -> bool:
    """True when the number is opened by the same quote mark that follows it."""
    if mark == "'":
        return num_start >= 1 and text[num_start - 1] == "'"
    return (num_start >= 1 and text[num_start - 1] == '"') or text[
        max(0, num_start - 2) : num_start
    ] == "''"


def _unit_at(toks: list[_Token], j: int, text: str, num_tok: _Token) -> tuple[_Unit | None, int, bool]:
    """Unit right after the number ``num_tok`` at token ``j``: (unit or None, next j, bad)."""
    n = len(toks)
    if j >= n:
        return None, j, False
    kind, s, st, en = toks[j]
    adjacent = st == num_tok[3]
    if kind == "foot":
        if adjacent and not _quoted(text, num_tok[2], "'"):
            return _word_unit("foot"), j + 1, False
        return None, j, False
    if kind == "inch":
        if adjacent and not _quoted(text, num_tok[2], '"'):
            return _word_unit("inch"), j + 1, False
        return None, j, False
    if kind == "other":
        if adjacent and s in _BAD_AFTER_NUMBER:
            return None, j + 1, True
        return None, j, False
    if kind == "dash":
        # hyphenated adjective: "2-foot", "10-meter"
        if adjacent and j + 1 < n and toks[j + 1][0] == "word" and toks[j + 1][2] == en:
            u = _word_unit(toks[j + 1][1])
            if u.kind in ("length", "area"):
                return u, j + 2, False
        return None, j, False
    if kind != "word":
        return None, j, False
    if s in _CONNECTORS:
        return None, j, False
    if s in ("sq", "square"):
        k = j + 1
        if k < n and toks[k][1] == ".":
            k += 1
        if k < n and toks[k][0] == "word":
            base = _word_unit(toks[k][1])
            if base.kind == "length":
                return _Unit("area", base.factor * base.factor), k + 1, False
        return None, k, True
    if s in ("cubic", "cu"):
        return None, j + 1, True
    if s == "in" and j + 1 < n and toks[j + 1][0] in ("word", "nw") and toks[j + 1][1] not in _AFTER_INCH:
        return None, j, False  # the preposition: "2 in the box"
    u = _word_unit(s)
    k = j + 1
    power = 1
    if k < n:
        tk = toks[k]
        if tk[0] == "pow":
            power = 2 if "2" in tk[1] else 3
            k += 1
        elif (
            tk[0] == "num"
            and tk[2] == en
            and tk[1] in ("2", "3")
            and not (k + 1 < n and toks[k + 1][2] == tk[3] and toks[k + 1][0] in ("word", "nw", "foot", "inch"))
        ):
            power = int(tk[1])  # "m2"
            k += 1
        elif tk[0] == "word" and tk[1] == "squared":
            power = 2
            k += 1
        elif tk[0] == "word" and tk[1] == "cubed":
            power = 3
            k += 1
    if k + 1 < n and toks[k][1] == "/" and toks[k + 1][0] == "word":
        return None, k + 1, True  # a rate such as "m/s"
    if power == 2:
        if u.kind == "length":
            return _Unit("area", u.factor * u.factor), k, False
        return None, k, True
    if power == 3:
        return None, k, True
    if u.kind == "unknown" and len(s) > 2 and s.startswith("sq"):
        base = _word_unit(s[2:])  # "sqft", "sqm"
        if base.kind == "length":
            return _Unit("area", base.factor * base.factor), k, False
    return u, k, False


_Q = tuple  # (value, unit | None)
_BAD = None


def _simple_at(toks: list[_Token], i: int, text: str) -> tuple[_Q | None, int]:
    v = _number_value(toks[i])
    if v is None:
        return _BAD, i + 1
    unit, j, bad = _unit_at(toks, i + 1, text, toks[i])
    if bad:
        return _BAD, j
    return (v, unit), j


def _is_foot(u: _Unit) -> bool:
    return u.kind == "length" and u.factor == _word_unit("foot").factor


def _quantity_at(toks: list[_Token], i: int, text: str) -> tuple[_Q | None, int]:
    """A number with its unit, merged with a following smaller part (``5 ft 6 in``)."""
    q, j = _simple_at(toks, i, text)
    if q is _BAD or q[1] is None or q[1].kind != "length":
        return q, j
    v, ua = q
    n = len(toks)
    k = j
    joined = False
    if k < n and ((toks[k][0] == "word" and toks[k][1] == "and") or toks[k][1] == ","):
        k += 1
        joined = True
    if k >= n or toks[k][0] not in _NUMERIC:
        return q, j
    v2 = _number_value(toks[k])
    if v2 is None:
        return q, j
    u2, k2, bad2 = _unit_at(toks, k + 1, text, toks[k])
    if bad2:
        return q, j
    if u2 is not None:
        if u2.kind == "length" and u2.factor < ua.factor and v2 * u2.factor < ua.factor * (1 - 1e-12):
            return (v * ua.factor + v2 * u2.factor, _COMPOUND), k2
        return q, j
    if _is_foot(ua) and not joined and 0 <= v2 < 12:
        nxt = toks[k2] if k2 < n else None
        if nxt is None or not (nxt[0] == "dash" or (nxt[0] == "word" and nxt[1] in _RANGE_WORDS)):
            return (v * ua.factor + v2 * _word_unit("inch").factor, _COMPOUND), k2  # 5'6
    return q, j


_LATEX_WRAP = re.compile(r"\\(?:text|mathrm|mbox|rm|textrm|operatorname|mathit|textit|textbf|mathbf)\s*\{([^{}]*)\}")
_LATEX_CMD = re.compile(r"\\(?:[a-z]+|[,;:! ])")
_SCALAR_CONTENT = re.compile(r"\{([^{}]{0,200})\}")
_SCALAR_ALL = re.compile(r"\\scalar\s*\{([^{}]{0,200})\}")
_UNIT_ALL = re.compile(r"\\distance_unit\s*\{([^{}]{0,200})\}")


def _scan_items(text: str) -> list | None:
    """Find quantities and ranges in lower-case normalised text; None if one is invalid."""
    toks = _tokenize(text)
    n = len(toks)
    items: list = []
    i = 0
    while i < n:
        kind, s = toks[i][0], toks[i][1]
        between = kind == "word" and s == "between" and i + 1 < n and toks[i + 1][0] in _NUMERIC
        if kind in _NUMERIC or between:
            # "2-3 m" / "2 to 3 m" join a range; after "between", only "and" does.
            start = i + 1 if between else i
            q, j = _quantity_at(toks, start, text)
            if q is _BAD:
                return None
            link = toks[j] if j + 1 < n and toks[j + 1][0] in _NUMERIC else None
            if link is not None and (
                (link[0] == "word" and link[1] == "and")
                if between
                else (link[0] == "dash" or (link[0] == "word" and link[1] in _RANGE_WORDS))
            ):
                q2, k = _quantity_at(toks, j + 1, text)
                if q2 is _BAD:
                    return None
                items.append(("range", q, q2, toks[start][2]))
                i = k
                continue
            items.append(("q", q, toks[start][2]))
            i = j
            continue
        if kind == "other" and (
            s in _ARITHMETIC
            or (s in "*^/" and 0 < i < n - 1 and toks[i - 1][0] in _NUMERIC and toks[i + 1][0] in _NUMERIC)
        ):
            return None  # arithmetic ("2+2 m", "2*3") is not an answer and is never evaluated
        if (
            kind == "other"
            and s == "("
            and 0 < i < n - 1
            and toks[i - 1][0] == "word"
            and toks[i - 1][3] == toks[i][2]
            and toks[i + 1][0] in _NUMERIC
        ):
            return None  # a function call ("sqrt(4) m", "max(2, 3)") is code, not a quantity
        if kind == "dash" and i + 1 < n and toks[i + 1][0] == "num" and toks[i + 1][2] == toks[i][3]:
            prev = toks[i - 1] if i > 0 else None
            if prev is None or prev[3] < toks[i][2] or prev[0] == "other":
                return None  # a minus sign: negative quantities are invalid
        i += 1
    return items


def _resolve(q: _Q, dimension: str, default_factor: float) -> float | None:
    v, unit = q
    if not math.isfinite(v) or v < 0:
        return None
    if dimension == "count":
        if unit is not None and unit.kind in ("length", "area", "volume"):
            return None
        if v != math.floor(v):
            return None
        return float(v)
    if unit is None:
        factor = default_factor
    elif unit.kind == dimension:
        factor = unit.factor
    else:
        return None
    x = v * factor
    if not math.isfinite(x) or x < 0:
        return None
    return x


def _quantity_from_text(text: str, dimension: str, default_factor: float) -> float | None:
    """Parse normalised text (no ``\\scalar``) into one SI value or None (reward policy)."""
    if "\\" in text:
        if "frac" in text:
            text = _numeric_fractions(text)  # before the commands are stripped
        text = _LATEX_WRAP.sub(r" \1 ", text)
        text = _LATEX_CMD.sub(" ", text)
    text = text.lower()
    if "$" in text and text.count("$") % 2 == 0:
        text = text.replace("$", " ")  # LaTeX math: "$3$ m"
    if is_refusal(text) or is_hedged(text) or is_inequality(text) or _CODE_CALL.search(text):
        return None
    if "point" in text:
        text = _POINT_WORDS.sub(_point_to_decimal, text)  # "three point five" -> 3.5
    if "/" in text or "frac" in text:
        text = _numeric_fractions(text)  # "3 1/2", "7/2", "\frac{7}{2}" -> 3.5
    if _FRACTION_WORD.search(text):
        text = _fraction_words(text)
        if text is None:
            return None
    if " of a" in text:
        text = _OF_A.sub(r"\1", text)  # "0.75 of a meter" (from "three quarters of a meter")
    if dimension == "count":
        text = _count_words(text)
    items = _scan_items(text)
    if not items:
        return None
    if any(item[0] != "q" for item in items):
        return None  # a range is not one committed value
    asserted: list[tuple[float, Any]] = []
    denied: list[float] = []
    for item, no in zip(items, rejected(text, [item[2] for item in items])):
        x = _resolve(item[1], dimension, default_factor)
        if x is None:
            return None
        if no:
            denied.append(x)
        else:
            asserted.append((x, item[1][1]))
    if not asserted:
        return None
    first, first_unit = asserted[0]
    for x, unit in asserted[1:]:
        # The same quantity in another unit may be rounded: "1.8 m (about 5.9 ft)"
        tolerance = CONVERSION_TOL if _unit_factor(unit) != _unit_factor(first_unit) else REL_TOL
        if abs(x - first) > tolerance * max(abs(x), abs(first)):
            return None
    if any(_same_value(x, first) for x in denied):
        return None
    return first


def _unit_factor(unit: Any) -> Any:
    """What tells two units apart: the factor, or "compound" for ``5 ft 6 in``."""
    return "compound" if unit is _COMPOUND else (None if unit is None else unit.factor)


_CODE_CALL = re.compile(r"[a-z_][a-z0-9_]*\((?=[^)]*\d)")  # eval('3'), sqrt(9): code, never evaluated


_NUMBER_PHRASE = rf"\d+(?:\.\d+)?|(?:{_NW_ALT})(?:{_NW_SEP}(?:{_NW_ALT}))*"
_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_DIGITS_AFTER_POINT = rf"\d+|(?:{'|'.join(_DIGIT_WORDS)})(?:[\s-]+(?:{'|'.join(_DIGIT_WORDS)}))*"
_POINT_WORDS = re.compile(rf"(?:\b({_NUMBER_PHRASE})\s+|(?<![\w.]))point\s+({_DIGITS_AFTER_POINT})\b")


def _point_to_decimal(m: re.Match) -> str:
    """``three point five`` -> ``3.5``, ``point five`` -> ``0.5``; anything else unchanged."""
    if m.group(1) is None:
        whole: float | None = 0.0
    else:
        whole = float(m.group(1)) if m.group(1)[0].isdigit() else _words_to_number(m.group(1))
    if whole is None or whole != int(whole) or "." in (m.group(1) or ""):
        return m.group()
    tail = m.group(2)
    digits = tail if tail.isdigit() else "".join(str(_DIGIT_WORDS.index(w)) for w in re.split(r"[\s-]+", tail) if w)
    return f"{int(whole)}.{digits}"


_DENOMINATORS = {"half": 2, "halves": 2, "third": 3, "quarter": 4, "fourth": 4, "fifth": 5, "sixth": 6,
                 "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10}
_DENOMINATOR = r"(?:halfs?|halves|(?:third|quarter|fourth|fifth|sixth|seventh|eighth|ninth|tenth)s?)"
_FRACTION_WORD = re.compile(rf"\b{_DENOMINATOR}\b")
_NUMERATOR = r"a|an|one|two|three|four|five|six|seven|eight|nine|\d+"
# "[3 and] [a|two] half/fifths", "two-fifths"; "half a meter" is handled first.
_WORD_FRACTION = re.compile(
    rf"\b(?:({_NUMBER_PHRASE})\s+and\s+)?({_NUMERATOR})[\s-]+({_DENOMINATOR})\b(?:\s+of\s+an?\b)?"
)
_LONE_HALF = re.compile(r"\bhalf\s+(?:of\s+)?an?\b")
_OF_A = re.compile(r"(\d)\s+of\s+an?\b")
_MIXED = re.compile(r"(?<![\d.])(\d+)(?:\s+|\s+and\s+)(\d+)\s*/\s*(\d+)(?![\d.])")
_SIMPLE = re.compile(r"(?<![\d./])(\d+)\s*/\s*(\d+)(?![\d./])")
_LATEX_FRAC = re.compile(r"(?:(?<![\d.])(\d+)\s*)?\\[dt]?frac\s*\{\s*(\d+)\s*\}\s*\{\s*(\d+)\s*\}")


def _numeric_fractions(text: str) -> str:
    """A fraction of whole numbers is a number literal: ``3 1/2`` and ``3 and 1/2`` -> 3.5,
    ``7/2`` -> 3.5, ``\\frac{7}{2}`` -> 3.5. A zero denominator stays (and is refused later)."""
    def value(n: str, d: str, whole: str | None = None) -> str:
        den = int(d)
        if den < 2 or (int(n) == 0 and not whole):
            return "\x00"  # "x/0", "3/1", "0/1" read as a choice between two numbers, not fractions
        return repr((int(whole) if whole else 0) + int(n) / den)

    text = _LATEX_FRAC.sub(lambda m: " " + value(m.group(2), m.group(3), m.group(1)) + " ", text)
    text = _MIXED.sub(lambda m: value(m.group(2), m.group(3), m.group(1)) if int(m.group(2)) < int(m.group(3))
                      else m.group(), text)
    return _SIMPLE.sub(lambda m: value(m.group(1), m.group(2)), text)


def _fraction_words(text: str) -> str | None:
    """``3 and a half`` -> ``3.5``, ``two and two-fifths`` -> ``2.4``, ``three quarters of a meter``
    -> ``0.75 meter``, ``half a meter`` -> ``0.5 meter``; ``None`` when a fraction word is left
    that this cannot read."""
    def fraction(m: re.Match) -> str:
        whole: float | None = 0.0
        if m.group(1):
            whole = float(m.group(1)) if m.group(1)[0].isdigit() else _words_to_number(m.group(1))
        num_word = m.group(2)
        num = 1.0 if num_word in ("a", "an") else (float(num_word) if num_word.isdigit()
                                                   else _words_to_number(num_word))
        den = _DENOMINATORS.get(m.group(3).rstrip("s") if m.group(3) != "halves" else "halves")
        if whole is None or num is None or den is None:
            return "\x00"
        return " " + repr(whole + num / den) + " "

    text = _LONE_HALF.sub(" 0.5 ", text)
    text = _WORD_FRACTION.sub(fraction, text)
    if "\x00" in text or _FRACTION_WORD.search(text):
        return None
    return text


def _same_value(a: float, b: float) -> bool:
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b))


_NONE_COUNT = re.compile(
    r"\bnothing\b|\bnil\b|\b(?:are|is|do|does)\s*n[o']t\s+(?:(?:see|have|contain|show)\s+)?any\b"
    r"|\bno\b(?=\s+[a-z])(?!\s+(?:idea|answer)\b)"
)
_NOT_ONE = re.compile(r"\bnot\s+(?:even\s+)?(?:a\s+single\s+one|one|a\s+single\s+\w+)\b")
_HAS_NUMBER = re.compile(r"\d|\b(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|hundred)\b")


_DOZEN = re.compile(r"\b(?:a|(\d+))\s+dozen\b")


def _count_words(text: str) -> str:
    """``none``, ``not (even) one``, and, when the text states no other number, ``nothing``,
    ``nil``, ``no <noun>``, ``there aren't any``, ``I don't see any`` are a count of 0;
    ``a dozen`` is 12."""
    if "dozen" in text:
        text = _DOZEN.sub(lambda m: str(12 * (int(m.group(1)) if m.group(1) else 1)), text)
    if "none" in text:
        text = re.sub(r"\bnone\b", "0", text)
    if "not" in text and _HAS_NUMBER.search(_NOT_ONE.sub("", text).replace("0", "")) is None:
        text = _NOT_ONE.sub("0", text)  # "no chairs, not even one" (but "2 chairs, not one" is 2)
    if _HAS_NUMBER.search(text.replace("0", "")) is None and ("n" in text):
        return _NONE_COUNT.sub("0", text)
    return text


@functools.lru_cache(maxsize=1024)
def _unit_string_factor(unit: str, dimension: str) -> float | None:
    """SI factor of a unit string (``"cm"``, ``"sq ft"``, ``"m^2"``) for ``dimension``.

    For area, a length unit means its square. None when not a single valid unit.
    """
    s = _normalize(unit).strip().lower()
    if not s or len(s) > 64:
        return None
    toks = _tokenize(s)
    if not toks or toks[0][0] not in ("word", "foot", "inch"):
        return None
    # Pretend a number stands right before the unit.
    fake = ("num", "1", -1, toks[0][2])
    u, j, bad = _unit_at(toks, 0, s, fake)
    if bad or u is None or j != len(toks):
        return None
    if u.kind == dimension:
        return u.factor
    if dimension == "area" and u.kind == "length":
        return u.factor * u.factor
    return None


def _default_factor(dimension: str, default_unit: Any) -> float:
    if dimension not in ("length", "area", "count"):
        raise _ArgumentError(f"dimension must be 'length', 'area' or 'count', got {dimension!r}")
    if default_unit is None or dimension == "count":
        return 1.0
    if not isinstance(default_unit, str):
        raise _ArgumentError(f"default_unit must be a unit string such as 'm' or 'cm', got {default_unit!r}")
    f = _unit_string_factor(default_unit, dimension)
    if f is None:
        raise _ArgumentError(
            f"default_unit {default_unit!r} is not a known {dimension} unit; use e.g. 'm', 'cm', 'ft'"
            + (" or 'm^2', 'sq ft'" if dimension == "area" else "")
        )
    return f


_FAST_QUANTITY = re.compile(
    r"\s*(?:(?:about|approximately|approx\.?|around|roughly|~)\s*)?(\d+(?:\.\d+)?)\s*([a-zA-Z]+)?\s*\.?\s*"
)


def _scalar_form(text: str, dimension: str, default_factor: float) -> float | None:
    """Q-Spatial-Bench's form: the last ``\\scalar{..}`` with the last ``\\distance_unit{..}``;
    every ``\\scalar{}`` and ``\\distance_unit{}`` in the text must state the same thing."""
    if len({m.group(1).strip() for m in _SCALAR_ALL.finditer(text)}) > 1:
        return None
    if len({m.group(1).strip().lower() for m in _UNIT_ALL.finditer(text)}) > 1:
        return None
    i = text.rfind("\\scalar")
    m = _SCALAR_CONTENT.match(text, i + len("\\scalar"))
    if m is None:
        return None
    content = _normalize(m.group(1))
    factor = default_factor
    k = text.rfind("\\distance_unit")
    if k >= 0:
        mu = _SCALAR_CONTENT.match(text, k + len("\\distance_unit"))
        if mu is None:
            return None
        if dimension != "count":
            f = _unit_string_factor(mu.group(1), dimension)
            if f is None:
                return None
            factor = f
    return _quantity_from_text(content, dimension, factor)


@_never_raises
def parse_quantity(text: Any, dimension: Dimension = "length", default_unit: str | None = None) -> float | None:
    """Parse one quantity into SI (meters, square meters, or a plain count); else ``None``.

    Raises ``ValueError`` only for a bad ``dimension`` or ``default_unit`` (caller
    arguments); any text gives a float or ``None``.

    >>> parse_quantity("2.5 m")
    2.5
    >>> parse_quantity("about 150 cm")
    1.5
    >>> round(parse_quantity("5'6\\""), 4)
    1.6764
    >>> parse_quantity("2-3 meters") is None             # a range is not one value
    True
    >>> parse_quantity("3\u00bd m")
    3.5
    >>> round(parse_quantity("\\\\scalar{3} \\\\distance_unit{feet}"), 6)
    0.9144
    >>> parse_quantity("12 m^2", dimension="area")
    12.0
    >>> parse_quantity("3 m", dimension="area") is None
    True
    >>> parse_quantity("twenty-one chairs", dimension="count")
    21.0
    >>> parse_quantity("40", default_unit="cm")
    0.4
    >>> parse_quantity("2 or 3 m") is None
    True
    """
    default_factor = _default_factor(dimension, default_unit)
    if not isinstance(text, str):
        return None
    if "\\scalar" in text and _SCALAR_CONTENT.match(text, text.rfind("\\scalar") + 7):
        return _scalar_form(text, dimension, default_factor)
    if len(text) > MAX_TEXT_CHARS:
        return None
    if dimension != "count":
        m = _FAST_QUANTITY.fullmatch(text)
        if m is not None and m.group(2) is not None:
            # Fast path for the common "2.5 m": only when the unit is of the right
            # dimension; everything else takes the general path below.
            unit = _word_unit(m.group(2).lower())
            if unit.kind == dimension:
                x = float(m.group(1)) * unit.factor
                if math.isfinite(x):
                    return x
    return (_quantity if len(text) <= _CACHED_CHARS else _quantity.__wrapped__)(text, dimension, default_factor)


@functools.lru_cache(maxsize=65536)
def _quantity(text: str, dimension: str, default_factor: float) -> float | None:
    """``parse_quantity``'s general path, cached: a group's answers repeat."""
    return _quantity_from_text(_drop_explicit_plus(_markdown(_normalize(text))), dimension, default_factor)


# --------------------------------------------------------------------------------------
# parse_choice
# --------------------------------------------------------------------------------------

_WRAP_CHARS = " \t\r\n*_`'\"()[]{}.:;!,?"
_LETTER_START = re.compile(r"[\s*_`]*([A-Z])\s+(?=[A-Za-z])")
_LETTER_PAREN = re.compile(r"(?<![A-Za-z0-9])[(\[]\s*([A-Za-z])\s*[)\]](?![A-Za-z0-9])")
_LETTER_LABEL = re.compile(r"(?<![^\s*\[])([A-Za-z])[.):](?![A-Za-z0-9])")
_LETTER_KEYWORD = re.compile(
    r"\b(?:(option|choice)\b\s*(is\b\s*:?\s*|:\s*|#\s*|=\s*)?|answer\s*(?:is\b\s*:?\s*|:\s*|=\s*)(?:(?:option|choice)\b\s*)?)"
    r"[(\[]?\s*([A-Za-z])(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_LETTER_LIST = re.compile(
    r"(?<![A-Za-z0-9])([A-Z])[)\]]?\.?\s*(?:,|/|&|\+|;|\bor\b|\band\b)\s*(?=[(\[]?([A-Z])(?![A-Za-z0-9]))"
)
_WORD_FOLLOWS = re.compile(r"\s+[A-Za-z]")
_VERB_FOLLOWS = re.compile(r"\s+(?:is|was|would|will|should|must|seems|looks|appears|fits|matches|wins|it)\b")
_OPTION_LABEL = re.compile(r"^\s*[(\[]?[a-z][)\].:]\s+")
_SPACES = re.compile(r"\s+")


def _article_like(text: str, letter: str, end: int) -> bool:
    """``A`` / ``I`` followed by a word are English words, not option labels, unless that word
    is a verb said of the letter (``"A is correct"``, ``"A fits"``)."""
    return (letter in "aAiI" and _WORD_FOLLOWS.match(text, end) is not None
            and not (letter in "aA" and _VERB_FOLLOWS.match(text, end) is not None))


def _choice_letters(text: str, n_options: int) -> list[tuple[str, int]]:
    """Upper-case letters used as option labels in ``text``, each with its position."""
    found: list[tuple[str, int]] = []
    core = text.strip(_WRAP_CHARS)
    if len(core) == 1 and core.isascii() and core.isalpha():
        found.append((core.upper(), text.find(core)))
    m = _LETTER_START.match(text)
    if m is not None and m.group(1) not in "AI":
        found.append((m.group(1), m.start(1)))
    for m in _LETTER_PAREN.finditer(text):
        found.append((m.group(1).upper(), m.start(1)))
    for m in _LETTER_LABEL.finditer(text):
        c = m.group(1)
        if c.islower():
            line_start = text.rfind("\n", 0, m.start()) + 1
            if text[line_start : m.start()].strip(" \t*#>-") != "":
                continue
        found.append((c.upper(), m.start(1)))
    for m in _LETTER_KEYWORD.finditer(text):
        c = m.group(3)
        keyword, connector = m.group(1), m.group(2)
        if (keyword is None or connector) and _article_like(text, c, m.end()):
            continue
        found.append((c.upper(), m.start(3)))
    for m in _LETTER_LIST.finditer(text):
        found.append((m.group(1), m.start(1)))
        if not _article_like(text, m.group(2), m.end(2)):  # "B, I think": the pronoun
            found.append((m.group(2), m.start(2)))
    # Any other stand-alone capital that names an option ("B C", "A (B)"); "A"/"I" before a
    # word are English words.
    for m in _LETTER_ALONE.finditer(text):
        c = m.group(1)
        if ord(c) - 65 < n_options and not _article_like(text, c, m.end()):
            found.append((c, m.start(1)))
    return found


_LONE_LETTER = re.compile(r"\s*[(\[*_`]*\s*([A-Za-z])\s*[)\]*_`.:]*\s*")
_LETTER_ALONE = re.compile(r"(?<![A-Za-z0-9'_\-])([A-Z])(?![A-Za-z0-9'_\-])")


@functools.lru_cache(maxsize=4096)
def _option_pattern(option_norm: str) -> re.Pattern:
    return re.compile(r"(?<!\w)" + re.escape(option_norm) + r"(?!\w)")


def _lower(s: str) -> str:
    """Lower case, one character for one, so positions stay valid (``"ß"`` stays)."""
    if s.isascii():
        return s.lower()
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in s)


def _norm_for_match(s: str) -> str:
    return _SPACES.sub(" ", _lower(_markdown(_normalize(s)))).strip()


def _mentioned_options(t: str, options: list[str]) -> list[tuple[int, int, int]]:
    """``(start, end, option index)`` of each option text mentioned in ``t`` (normalised,
    case-folded), leaving out mentions inside a longer mentioned option."""
    spans: list[tuple[int, int, int]] = []
    for idx, opt in enumerate(options):
        o = _OPTION_LABEL.sub("", _norm_for_match(opt)).strip().rstrip(".").strip()
        if not o:
            continue
        for m in _option_pattern(o).finditer(t):
            spans.append((m.start(), m.end(), idx))
    return [
        (s, e, idx) for s, e, idx in spans
        if not any(s2 <= s and e <= e2 and (e2 - s2) > (e - s) and idx2 != idx for s2, e2, idx2 in spans)
    ]


@_never_raises
def parse_choice(text: Any, options: Any) -> int | None:
    """Return the 0-based index of the chosen option, or ``None``.

    >>> parse_choice("B", ["chair", "table"])
    1
    >>> parse_choice("The answer is (A).", ["chair", "table"])
    0
    >>> parse_choice("the table", ["chair", "table"])
    1
    >>> parse_choice("A chair is closer", ["left", "right"]) is None
    True
    >>> parse_choice("A or B", ["chair", "table"]) is None
    True
    >>> parse_choice("E", ["a", "b", "c", "d"]) is None
    True
    """
    if not isinstance(text, str) or options is None or isinstance(options, (str, bytes, dict)):
        return None
    if len(text) > MAX_TEXT_CHARS:
        return None
    try:
        opts = [o if isinstance(o, str) else str(o) for o in options]
    except TypeError:  # not iterable
        return None
    if not opts or len(opts) > MAX_OPTIONS:
        return None
    m = _LONE_LETTER.fullmatch(text)
    if m is not None and not any(len(o.strip()) == 1 for o in opts):
        idx = ord(m.group(1).upper()) - 65  # fast path: "B", "(B)", "B.", "**B**"
        return idx if idx < len(opts) else None
    return (_choice if len(text) <= _CACHED_CHARS else _choice.__wrapped__)(text, tuple(opts))


@functools.lru_cache(maxsize=65536)
def _choice(text: str, opts: tuple[str, ...]) -> int | None:
    """``parse_choice`` past its argument checks, cached: a group's answers repeat."""
    t = _SPACES.sub(" ", _markdown(_normalize(text))).strip()
    low = _lower(t)
    if is_refusal(low) or is_hedged(low):
        return None
    mentions = _mentioned_options(low, list(opts))
    letters = _choice_letters(t, len(opts))
    flags = rejected(low, [pos for _, pos in letters] + [s for s, _, _ in mentions],
                     masked=[(s, e) for s, e, _ in mentions])
    said: set[int] = set()
    denied: set[int] = set()
    for (letter, _), no in zip(letters, flags):
        idx = ord(letter) - ord("A")
        if no:
            denied.add(idx)
        elif idx >= len(opts):
            return None  # a letter beyond the options
        else:
            said.add(idx)
    named: set[int] = set()
    for (_, _, idx), no in zip(mentions, flags[len(letters):]):
        (denied if no else named).add(idx)
    if len(said) > 1 or said & denied or named & denied:
        return None
    if said:
        idx = next(iter(said))
        return idx if not named or idx in named else None
    return next(iter(named)) if len(named) == 1 else None


# --------------------------------------------------------------------------------------
# parse_yes_no
# --------------------------------------------------------------------------------------

_BARE_NO = re.compile(
    r"(?:^|[,;:.!]\s*)(?:(?:definitely|certainly|absolutely|of\s+course|surely|clearly)\s+)?"
    r"not(?:\s+at\s+all)?\s*[.!]?\s*(?:[,;:]|$)"
)
_YES_WORDS = frozenset({"yes", "true", "yeah", "yep", "yup"})
# Whole answers that are a yes or a no without the keyword.
_YN_WHOLE = {w: True for w in ("affirmative", "correct", "indeed", "certainly", "absolutely", "definitely",
                               "of course", "no doubt", "no doubt about it", "without a doubt")} | {
    w: False for w in ("negative", "nah", "incorrect", "certainly not", "absolutely not", "of course not")}
_NO_IDIOM = re.compile(r"no\s+(?:doubt|question|problem|worries|way\s+it\s+isn't)\b")  # "no doubt" affirms
_DETERMINER_NO = re.compile(r"no\s+(?=[a-z])")
_YN_RE = re.compile(r"\b(yes|no|true|false|yeah|yep|yup|nope)\b")
_YN_FAST = {"yes": True, "yes.": True, "no": False, "no.": False, "yes!": True, "no!": False,
            "Yes": True, "Yes.": True, "No": False, "No.": False, "true": True, "false": False}


@_never_raises
def parse_yes_no(text: Any) -> bool | None:
    """Return True for yes/true, False for no/false, ``None`` if absent, mixed, negated or refused.

    >>> parse_yes_no("Yes, it is.")
    True
    >>> parse_yes_no("No.")
    False
    >>> parse_yes_no("yes and no") is None
    True
    >>> parse_yes_no("not true") is None
    True
    >>> parse_yes_no("I have no idea") is None
    True
    """
    if not isinstance(text, str) or len(text) > MAX_TEXT_CHARS:
        return None
    fast = _YN_FAST.get(text)
    if fast is not None:
        return fast
    return (_yes_no if len(text) <= _CACHED_CHARS else _yes_no.__wrapped__)(text)


@functools.lru_cache(maxsize=65536)
def _yes_no(text: str) -> bool | None:
    """``parse_yes_no`` past its argument checks, cached."""
    said, denied = yes_no_keywords(text)
    if len(said) != 1 or said & denied:
        return None
    return next(iter(said))


def yes_no_keywords(text: str) -> tuple[frozenset[bool], frozenset[bool]]:
    """The polarities a text asserts and rejects (``True`` = yes); both empty when it refuses or
    hedges. ``parse_yes_no`` is the one asserted polarity; a relation answer that names a side
    must not also say both yes and no."""
    t = _lower(_markdown(_normalize(text))).strip()
    fast = _YN_FAST.get(t)
    if fast is None:
        fast = _YN_WHOLE.get(t.strip(" .!"))
    if fast is not None:
        return frozenset((fast,)), frozenset()
    if is_refusal(t) or is_hedged(t):
        return frozenset(), frozenset()
    keywords = [m for m in _YN_RE.finditer(t) if not _NO_IDIOM.match(t, m.start())]
    if any(m.group(1) != "no" for m in keywords):
        # "Yes, there are no other chairs": beside another keyword, a determiner "no" is no answer
        keywords = [m for m in keywords if not (m.group(1) == "no" and _DETERMINER_NO.match(t, m.start()))]
    said, denied = set(), set()
    if _BARE_NO.search(t):
        said.add(False)  # "definitely not", "not at all": a no without the keyword
    # "not yes", "isn't true": a negated keyword is rejected, never flipped
    for m, no in zip(keywords, rejected(t, [m.start() for m in keywords], yes_no=True)):
        (denied if no else said).add(m.group(1) in _YES_WORDS)
    return frozenset(said), frozenset(denied)


# --------------------------------------------------------------------------------------
# parse_bbox
# --------------------------------------------------------------------------------------

_N = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_S = r"(?:\s*,\s*|\s+)"
_BOX_RE = re.compile(
    rf"\[\s*({_N}){_S}({_N}){_S}({_N}){_S}({_N})\s*\]"
    rf"|\(\s*({_N}){_S}({_N}){_S}({_N}){_S}({_N})\s*\)"
    rf"|\(\s*({_N})\s*,\s*({_N})\s*\)\s*,?\s*\(\s*({_N})\s*,\s*({_N})\s*\)"
)


_BARE_BOX = re.compile(rf"\s*({_N})\s*,\s*({_N})\s*,\s*({_N})\s*,\s*({_N})\s*\.?\s*")
_PLAIN_BOX = re.compile(rf"\s*\[\s*({_N})\s*,\s*({_N})\s*,\s*({_N})\s*,\s*({_N})\s*\]\s*")


@_never_raises
def parse_bbox(text: Any) -> tuple[float, float, float, float] | None:
    """Return one box ``(x1, y1, x2, y2)`` or ``None``.

    >>> parse_bbox("[10, 20, 30.5, 40]")
    (10.0, 20.0, 30.5, 40.0)
    >>> parse_bbox('{"bbox_2d": [1, 2, 3, 4]}')
    (1.0, 2.0, 3.0, 4.0)
    >>> parse_bbox("(1,2),(3,4)")
    (1.0, 2.0, 3.0, 4.0)
    >>> parse_bbox("[30, 20, 10, 40]") is None   # x2 < x1
    True
    >>> parse_bbox("[0,0,1,1] or [2,2,3,3]") is None
    True
    """
    if not isinstance(text, str) or len(text) > MAX_TEXT_CHARS:
        return None
    m = _PLAIN_BOX.fullmatch(text) or _BARE_BOX.fullmatch(text)
    if m is not None:  # fast path: just "[x1, y1, x2, y2]" (or the four numbers alone)
        x1, y1, x2, y2 = (float(g) for g in m.groups())
        ok = x1 <= x2 and y1 <= y2 and all(math.isfinite(v) for v in (x1, y1, x2, y2))
        return (x1, y1, x2, y2) if ok else None
    t = _markdown(_normalize(text))
    found = []
    for m in _BOX_RE.finditer(t):
        nums = [g for g in m.groups() if g is not None]
        vals = tuple(float(g) for g in nums)
        if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
            return None
        x1, y1, x2, y2 = vals
        if x2 < x1 or y2 < y1:
            return None
        found.append((m.start(), m.end(), vals))
    if not found:
        return None
    # Read the words around the boxes, each box replaced by a neutral placeholder.
    words, last = [], 0
    for start, end, _ in found:
        words.append(t[last:start] + "#" * (end - start))
        last = end
    words.append(t[last:])
    low = _lower("".join(words))
    if is_refusal(low) or is_hedged(low) or is_inequality(low):
        return None  # "roughly [..] or a bit larger", "at least [..]"
    flags = rejected(low, [start for start, _, _ in found])
    said = {vals for (_, _, vals), no in zip(found, flags) if not no}
    if len(said) != 1 or any(vals in said for (_, _, vals), no in zip(found, flags) if no):
        return None
    return said.pop()  # type: ignore[return-value]
