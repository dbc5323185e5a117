"""Parse open-ended relation answers: which side (left/right), which object is nearer.

Open-ended rows such as "Is the chair to the left of the table?" (reference "No, the chair is
to the right of the table.") or "Which is closer to the camera, the chair or the table?"
(reference "The table is closer to the camera than the chair.") have a verifiable answer
inside free text. These parsers read it under the reward policy of ``spatialrl.answers``
(strict: refusals, hedges, negated or several answers give ``None``); they never raise.

``parse_side(text)``             -> ``"left" | "right" | None``
``parse_nearer(text, names)``    -> index of the object said to be nearer, or ``None``
``relation_reference(answer)``   -> what a reference sentence states, or ``None``
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from spatialrl.answers import MAX_TEXT_CHARS, _lower, _never_raises, _normalize, _option_pattern, parse_yes_no
from spatialrl.answers.commitment import in_spans, is_hedged, is_refusal, negated_spans

__all__ = ["RelationReference", "parse_nearer", "parse_side", "relation_reference"]

_SIDE = re.compile(r"\b(left|right)\b")
_NEAR_WORDS = re.compile(r"\b(closer|nearer|nearest|closest)\b")
_FAR_WORDS = re.compile(r"\b(farther|further|farthest|furthest)\b")
_THAN = re.compile(r"\bthan\b")


def _prepare(text: Any) -> str | None:
    if not isinstance(text, str) or len(text) > MAX_TEXT_CHARS:
        return None
    t = _lower(_normalize(text)).strip()
    if not t or is_refusal(t) or is_hedged(t):
        return None
    return t


@_never_raises
def parse_side(text: Any) -> str | None:
    """The one side (``"left"`` / ``"right"``) the text asserts; ``None`` when it asserts
    none, both, or a side it also rejects ("left, not right" is left; "not left" is ``None``).

    >>> parse_side("The chair is to the left of the table.")
    'left'
    >>> parse_side("not left") is None
    True
    """
    t = _prepare(text)
    if t is None:
        return None
    rejected = negated_spans(t)
    said, denied = set(), set()
    for m in _SIDE.finditer(t):
        (denied if rejected and in_spans(m.start(), rejected) else said).add(m.group(1))
    if len(said) != 1 or said & denied:
        return None
    return said.pop()


@_never_raises
def parse_nearer(text: Any, names: Any) -> int | None:
    """Index in ``names`` of the object the text says is nearer, or ``None``.

    One name alone is the answer ("the table"), turned round by a far-word ("the chair is
    farther" names the other one). With both names, the one before the comparative is its
    subject and the one after "than" its object ("the table is closer than the chair").

    >>> parse_nearer("The table is closer to the camera than the chair.", ["chair", "table"])
    1
    >>> parse_nearer("the chair is farther away", ["chair", "table"])
    1
    >>> parse_nearer("not the chair", ["chair", "table"]) is None
    True
    """
    t = _prepare(text)
    if t is None or not isinstance(names, (list, tuple)) or len(names) != 2:
        return None
    keys = [_lower(_normalize(str(n))).strip() for n in names]
    if not all(keys) or keys[0] == keys[1]:
        return None
    spans = []
    for idx, key in enumerate(keys):
        spans += [(m.start(), m.end(), idx) for m in _option_pattern(key).finditer(t)]
    spans = [s for s in spans if not any(o[0] <= s[0] and s[1] <= o[1] and (o[1] - o[0]) > (s[1] - s[0])
                                          for o in spans)]
    rejected = negated_spans(t, masked=[(s, e) for s, e, _ in spans])
    near, far = _NEAR_WORDS.search(t), _FAR_WORDS.search(t)
    if near and far:
        return None
    comparative = near or far
    if rejected and comparative and in_spans(comparative.start(), rejected):
        return None  # "the chair is not closer": says what is not, not what is
    asserted = [(s, idx) for s, _, idx in spans if not (rejected and in_spans(s, rejected))]
    denied = {idx for s, _, idx in spans if rejected and in_spans(s, rejected)}
    named = {idx for _, idx in asserted}
    if not named:
        return None
    if len(named) == 1:
        idx = named.pop()
        if idx in denied:
            return None
        return 1 - idx if far else idx
    if comparative is None or len(denied):
        return None
    than = _THAN.search(t, comparative.end())
    before = {idx for s, idx in asserted if s < comparative.start()}
    after = {idx for s, idx in asserted if than is not None and s > than.start()}
    if len(before) != 1 or after != {1 - next(iter(before))}:
        return None
    subject = next(iter(before))
    return 1 - subject if far else subject


class RelationReference(NamedTuple):
    """What a reference sentence states: ``kind`` ``"side"`` (with ``yes`` and ``side``) or
    ``"nearer"`` (with ``names``, the nearer object first)."""

    kind: str
    yes: bool | None = None
    side: str | None = None
    names: tuple[str, str] | None = None


_NEARER_SENTENCE = re.compile(
    r"^\s*the\s+(.+?)\s+is\s+(?:closer|nearer)\s+to\s+the\s+camera\s+than\s+the\s+(.+?)\s*\.?\s*$",
    re.IGNORECASE,
)


def relation_reference(answer: Any) -> RelationReference | None:
    """Parse a reference answer of the world's open-ended relation templates, else ``None``.

    >>> relation_reference("No, the chair is to the right of the table.")
    RelationReference(kind='side', yes=False, side='right', names=None)
    >>> relation_reference("The table is closer to the camera than the chair.").names
    ('table', 'chair')
    """
    if not isinstance(answer, str):
        return None
    m = _NEARER_SENTENCE.match(answer)
    if m is not None:
        return RelationReference("nearer", names=(m.group(1).strip(), m.group(2).strip()))
    yes = parse_yes_no(answer.split(",")[0]) if "," in answer else None
    side = parse_side(answer)
    if yes is not None and side is not None:
        return RelationReference("side", yes=yes, side=side)
    return None
