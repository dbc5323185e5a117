"""Parse open-ended relation answers: which side (left/right), which object is nearer.

Open-ended rows such as "Is the chair to the left of the table?" (reference "No, the chair is
to the right of the table.") or "Which is closer to the camera, the chair or the table?"
(reference "The table is closer to the camera than the chair.") have a verifiable answer
inside free text. These parsers read it under the reward policy of ``spatialrl.answers``
(strict: refusals, hedges, negated or several answers give ``None``); they never raise.

``parse_side(text, names)``      -> ``"left" | "right" | None``
``side_claims(text, names)``     -> the sides asserted and the sides rejected
``parse_nearer(text, names)``    -> index of the object said to be nearer, or ``None``
``relation_reference(answer)``   -> what a reference sentence states, or ``None``
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from spatialrl.answers import (
    MAX_TEXT_CHARS,
    _lower,
    _markdown,
    _mentioned_options,
    _never_raises,
    _norm_for_match,
    _normalize,
    parse_yes_no,
)
from spatialrl.answers.commitment import clause_index, clauses, is_hedged, is_refusal, rejected

__all__ = ["RelationReference", "parse_nearer", "parse_side", "relation_reference", "side_claims"]

_SIDE = re.compile(r"\b(left|right)\b")
_COMPARATIVE = re.compile(r"\b(?:(?P<near>closer|nearer|nearest|closest)|(?P<far>farther|further|farthest|furthest))\b")
_THAN = re.compile(r"\bthan\b")


def _prepare(text: Any) -> str | None:
    if not isinstance(text, str) or len(text) > MAX_TEXT_CHARS:
        return None
    t = _lower(_markdown(_normalize(text))).strip()
    if not t or is_refusal(t) or is_hedged(t):
        return None
    return t


def _name_spans(t: str, names: Any) -> list[tuple[int, int, int]] | None:
    """``(start, end, index)`` of each mention of ``names`` in ``t`` (a mention inside a longer
    one left out); ``None`` when ``names`` is not two distinct names."""
    if not isinstance(names, (list, tuple)) or len(names) != 2:
        return None
    keys = [_norm_for_match(str(n)) for n in names]
    if not all(keys) or keys[0] == keys[1]:
        return None
    return _mentioned_options(t, keys)


@_never_raises
def parse_side(text: Any, names: Any = None) -> str | None:
    """The one side (``"left"`` / ``"right"``) the text asserts; ``None`` when it asserts
    none, both, or a side it also rejects ("left, not right" is left; "not left" is ``None``).

    ``names`` = (subject, object) of the question "is the subject left of the object?": a clause
    that names the object first states the converse ("the table is on the right" = the chair is
    on the left), so its side is turned round.

    >>> parse_side("The chair is to the left of the table.")
    'left'
    >>> parse_side("not left") is None
    True
    >>> parse_side("The table is to the right of the chair.", ("chair", "table"))
    'left'
    """
    said, denied = side_claims(text, names)
    if len(said) != 1 or said & denied:
        return None
    return next(iter(said))


def side_claims(text: Any, names: Any = None) -> tuple[frozenset[str], frozenset[str]]:
    """The sides a text asserts and the sides it rejects (see :func:`parse_side`); both empty
    when it refuses or hedges. ``"not to the left"`` rejects left."""
    t = _prepare(text)
    if t is None:
        return frozenset(), frozenset()
    sides = list(_SIDE.finditer(t))
    mentions = (_name_spans(t, names) or []) if names is not None else []
    spans = clauses(t)
    said, denied = set(), set()
    for m, no in zip(sides, rejected(t, [m.start() for m in sides], masked=[(a, b) for a, b, _ in mentions])):
        side = m.group(1)
        ci = clause_index(spans, m.start())
        before = [idx for a, _, idx in mentions if spans[ci][0] <= a < m.start()]
        if before and before[0] == 1:
            side = "right" if side == "left" else "left"  # the object named first: the converse
        (denied if no else said).add(side)
    return frozenset(said), frozenset(denied)


@_never_raises
def parse_nearer(text: Any, names: Any) -> int | None:
    """Index in ``names`` of the object the text says is nearer, or ``None``.

    Clause by clause: one name alone is the answer ("the table"), turned round by a far-word
    ("the chair is farther" names the other one); with both names, the one before the
    comparative is its subject and the one after "than" its object ("the table is closer than
    the chair"). Every clause must agree, and no rejected name may be the answer.

    >>> parse_nearer("The table is closer to the camera than the chair.", ["chair", "table"])
    1
    >>> parse_nearer("the chair is farther away", ["chair", "table"])
    1
    >>> parse_nearer("not the chair", ["chair", "table"]) is None
    True
    """
    t = _prepare(text)
    mentions = None if t is None else _name_spans(t, names)
    if not mentions:
        return None
    comparatives = list(_COMPARATIVE.finditer(t))
    flags = rejected(t, [a for a, _, _ in mentions] + [c.start() for c in comparatives],
                     masked=[(a, b) for a, b, _ in mentions])
    if any(flags[len(mentions):]):
        return None  # "the chair is not closer": says what is not, not what is
    denied = {idx for (_, _, idx), no in zip(mentions, flags) if no}
    asserted = [(a, idx) for (a, _, idx), no in zip(mentions, flags) if not no]
    spans = clauses(t)
    claims = set()
    for ci, (start, end, _) in enumerate(spans):
        named = [(a, idx) for a, idx in asserted if start <= a < end]
        if not named:
            continue
        comps = [c for c in comparatives if start <= c.start() < end]
        if len({c.lastgroup for c in comps}) > 1:
            return None
        far = bool(comps) and comps[0].lastgroup == "far"
        than = _THAN.search(t, comps[0].end(), end) if comps else None
        before = {idx for a, idx in named if comps and a < comps[0].start()}
        after = {idx for a, idx in named if than is not None and a > than.start()}
        if comps and not before and len(after) == 1 and len(named) == len([1 for a, _ in named if a > than.start()]):
            # "(the bed,) which is closer than the lamp": the object of "than" is the other one
            idx = 1 - next(iter(after))
        elif len({idx for _, idx in named}) == 1:
            idx = named[0][1]
        else:
            if len(before) != 1 or after != {1 - next(iter(before))}:
                return None
            idx = next(iter(before))
        claims.add(1 - idx if far else idx)
    if len(claims) != 1 or claims & denied:
        return None
    return claims.pop()


class RelationReference(NamedTuple):
    """What a reference sentence states: ``kind`` ``"side"`` (with ``yes``, ``side`` and
    ``names`` = (subject, object) when the sentence names them) or ``"nearer"`` (with
    ``names``, the nearer object first)."""

    kind: str
    yes: bool | None = None
    side: str | None = None
    names: tuple[str, str] | None = None


_NEARER_SENTENCE = re.compile(
    r"^\s*the\s+(.+?)\s+is\s+(?:closer|nearer)\s+to\s+the\s+camera\s+than\s+the\s+(.+?)\s*\.?\s*$",
    re.IGNORECASE,
)


_SIDE_SENTENCE = re.compile(
    r"^\s*(?:yes|no)\s*,\s*the\s+(.+?)\s+is\s+(?:to\s+the\s+)?(?:left|right)\s+of\s+the\s+(.+?)\s*\.?\s*$",
    re.IGNORECASE,
)


def relation_reference(answer: Any) -> RelationReference | None:
    """Parse a reference answer of the world's open-ended relation templates, else ``None``.

    >>> relation_reference("No, the chair is to the right of the table.")
    RelationReference(kind='side', yes=False, side='right', names=('chair', 'table'))
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
        m = _SIDE_SENTENCE.match(answer)
        names = (m.group(1).strip(), m.group(2).strip()) if m else None
        return RelationReference("side", yes=yes, side=side, names=names)
    return None
