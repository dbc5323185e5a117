"""Typed answer columns for external QA rows (free-text question and answer).

The reward functions (``spatialrl.rewards.trl``) read the typed columns of
``spatialrl.data.schema``: ``answer_type``, ``answer_value``, ``dimension``, ``unit``,
``options``, ``answer_index`` and ``bbox``. ``spatialrl data build`` computes them from the
scene. An external dataset (VQASynth, a LLaVA-style set, anything ``spatialrl data mirror``
reads) has only a question and an answer text, so :func:`typed_answer` derives them from the
text. It never guesses. Each rule needs the answer to state one committed value, read by
``spatialrl.answers``' strict reward policy, which is the same parser the reward applies to the
model's answer:

1. **grounding**: the answer holds exactly one box (``parse_bbox``). ``bbox`` is the box
   column's value when the row has one box there (``--bbox-column``, flipped with the image),
   otherwise the box in the answer. ``"The cup is at [10, 20, 40, 60]."`` gives grounding with
   ``[10, 20, 40, 60]``.
2. **a quantity**: the question asks for one, and the answer states exactly one of that
   dimension. The question decides the dimension (the patterns below; a count is asked with
   "how many" / "number of" and no unit word). The row stays ``open_ended``, because its answer
   is a sentence, with ``answer_value`` in SI units and its ``dimension``. That is the schema's
   form for open-ended rows that state a quantity, and the accuracy reward scores it with SNRA
   on the numeric error (Smooth Operator eq. 1-2). "How far is the chair from the table?" with
   "The chair is 1.2 meters from the table." gives ``open_ended``, 1.2, ``length``, ``m``.
   An answer with two quantities or a range ("1.2 m wide and 0.8 m deep", "2-3 m") gets no value.
3. **a bare yes/no**: the whole answer is yes or no, ignoring case, spaces and final
   punctuation. It becomes ``discrete`` with the canonical answer ``yes`` / ``no`` (the schema's
   rule for discrete rows without options). ``"Yes."`` becomes ``yes``.
4. Everything else is ``open_ended`` with no value. This includes yes/no sentences ("Yes, the cup
   is on the left."), because the sentence is the reference the semantic reward (SVQA-R1 sec.
   3.2) compares with, and rewriting it to a bare "yes" would change that reference. The
   accuracy reward gives ``None`` (not applicable) for such rows. It does not raise.

``options`` is always empty and ``answer_index`` is -1: free-text rows are not multiple choice.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["TYPED_COLUMNS", "one_box", "question_dimension", "typed_answer"]

#: The columns :func:`typed_answer` returns (``spatialrl.data.schema`` names and meanings).
TYPED_COLUMNS = ("answer_type", "answer_value", "dimension", "unit", "options", "answer_index", "bbox")

_UNITS = {"length": "m", "area": "m^2", "count": ""}
_I = re.IGNORECASE
_LENGTH_UNIT = r"(?:meters?|metres?|m|cm|centimet(?:er|re)s?|mm|millimet(?:er|re)s?|feet|foot|ft|inch(?:es)?|in|yards?|yd)"
_AREA = re.compile(rf"\barea\b|\bsquare\s+{_LENGTH_UNIT}\b|\b(?:m|ft|cm)\s*(?:\^\s*2|²)|\bsq\.?\s*{_LENGTH_UNIT}\b", _I)
_LENGTH = re.compile(
    r"\bhow\s+(?:far|tall|wide|high|long|deep|thick|close|big|large)\b|\bdistances?\b|\bheight\b|\bwidth\b|"
    rf"\blength\b|\bgap\b|\bspacing\b|\bdiameter\b|\bradius\b|\bmeasure\b|\bhow\s+many\s+{_LENGTH_UNIT}\b|"
    rf"\bin\s+{_LENGTH_UNIT}\b",
    _I,
)
_COUNT = re.compile(r"\bhow\s+many\b|\bnumber\s+of\b|\bcount\b", _I)
_BARE_YES_NO = re.compile(r"^\s*(yes|no)\s*[.!]?\s*$", _I)


def question_dimension(question: str) -> str | None:
    """``"area"``, ``"length"`` or ``"count"``: the quantity ``question`` asks for; ``None`` if none.

    Area wins over length ("the area in square meters"), and length over count ("how many
    meters").
    """
    if _AREA.search(question):
        return "area"
    if _LENGTH.search(question):
        return "length"
    if _COUNT.search(question):
        return "count"
    return None


def one_box(value: Any) -> list[float] | None:
    """``value`` as one finite ``[x1, y1, x2, y2]`` (also the single box of a one-element list)."""
    if isinstance(value, (list, tuple)) and len(value) == 1 and isinstance(value[0], (list, tuple)):
        value = value[0]
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        return None
    return [float(v) for v in value]


def typed_answer(question: str, answer: Any, box: Any = None) -> dict[str, Any]:
    """The typed answer columns of one row (rules in the module docstring).

    Args:
        question: the question text.
        answer: the answer, usually a text; a number is read as its text.
        box: the row's box column value, if the dataset has one (one ``[x1, y1, x2, y2]``).

    Returns:
        ``{column: value}`` for :data:`TYPED_COLUMNS`, plus ``"answer"`` when the answer is a bare
        yes/no and is written canonically (``"yes"`` / ``"no"``).
    """
    from spatialrl.answers import parse_bbox, parse_quantity

    text = answer if isinstance(answer, str) else ("" if answer is None or isinstance(answer, bool) else str(answer))
    out: dict[str, Any] = {"answer_type": "open_ended", "answer_value": None, "dimension": None, "unit": "",
                           "options": [], "answer_index": -1, "bbox": []}
    found = parse_bbox(text)
    if found is not None:
        out.update(answer_type="grounding", bbox=one_box(box) or [float(v) for v in found])
        return out
    dimension = question_dimension(question if isinstance(question, str) else "")
    if dimension is not None:
        value = parse_quantity(text, dimension)
        if value is not None and math.isfinite(value) and value >= 0:
            out.update(answer_value=float(value), dimension=dimension, unit=_UNITS[dimension])
            return out
    bare = _BARE_YES_NO.match(text)
    if bare:
        out.update(answer_type="discrete", answer=bare.group(1).lower())
    return out
