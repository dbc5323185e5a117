"""The reward policy's commitment rules: is an answer one committed answer?

A training reward must score as wrong anything a strict grader would not accept as one
committed answer, or GRPO learns to hedge. The parsers in ``spatialrl.answers`` read a value;
the rules here decide, before and around that, whether the text commits to it. Every rule
works on normalised, lower-cased text and never raises. Benchmark scorers do not use these
rules: they reproduce each benchmark's official scorer (``spatialrl.eval.benchmarks``).

Rules (each with an example; the parsers apply them, ``tests/answers`` checks them)
-----------------------------------------------------------------------------------
1. **Visible content.** An answer must hold a letter or a digit once invisible characters are
   removed: format characters (zero-width space, BOM, word joiner, bidi marks), fillers that
   render as blanks (braille blank U+2800, Hangul fillers, combining grapheme joiner) and
   whitespace. ``"\\u200b\\u2060"`` is no answer.
2. **Refusals** give ``None`` for every kind: ``"I have no idea"``, ``"not sure"``,
   ``"I cannot say yes"``, ``"unknown"``, ``"impossible to tell"``, ``"n/a"``,
   ``"none of the above"``.
3. **Hedges** give ``None`` for every kind: ``"maybe B"``, ``"perhaps 3 m"``,
   ``"3 m, give or take a meter"``, ``"either A or B"``, ``"both"``, ``"3 m ± 0.5"``,
   a question mark (``"B?"``), a self-correction (``"2 m, no wait 3 m"``, ``"A, I mean B"``). Estimates stay answers: ``about``, ``approximately``,
   ``around``, ``roughly``, ``~`` commit to one value.
4. **Inequalities** give ``None`` for quantities: ``"more than 3 m"``, ``"< 3 m"``,
   ``"at least 3"``, ``"3 m or more"``, ``"3+ chairs"``, ``"over 2 m"`` (``over``, ``under``,
   ``above``, ``below``, ``beyond`` only right before a number: ``"1.5 m above the floor"``
   is a height).
5. **Negation is scoped to its clause.** Clauses are split at ``, ; : ! ?``, a sentence-ending
   ``.``, dashes between spaces, line breaks and ``but``/``however``/``whereas``.
   A clause holding a negation cue (``not``, ``n't``, ``never``, ``no``, ``neither``/``nor``,
   ``wrong``, ``incorrect``, ``false``, ``rather than``, ``instead of``, ``except``...)
   *rejects* the values in it; the other clauses *assert* theirs. An answer is the one value
   asserted, provided no clause rejects that same value: ``"not left"`` and
   ``"3 m is wrong"`` assert nothing (``None``); ``"B, not A"`` is B; ``"B, not B"`` is
   ``None``. For yes/no answers ``no`` and ``false`` are answers, not cues. A clause that
   only judges what came before it rejects that too: ``"3 m, which is wrong"`` and
   ``"B. That's not right."`` give ``None``. One clause holding both an answer and a cue is
   rejected whole (``"B not A"``, ``"B (not A)"``): ``None`` rather than a guess.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "has_visible_content",
    "is_hedged",
    "is_inequality",
    "is_refusal",
    "negated_spans",
    "strip_invisible",
]

# Characters that render as nothing or as a blank but are not Unicode format/space
# characters (category Cf / Z*), so ``str.isspace`` and a Cf filter miss them.
_BLANK_LOOKALIKES = frozenset("\u2800\u3164\u115f\u1160\uffa0\u034f\u17b4\u17b5\u180e\u200b\ufeff")


def strip_invisible(text: str) -> str:
    """``text`` without format characters (Cf) and blank look-alikes; identity on ASCII."""
    if text.isascii():
        return text
    return "".join(c for c in text if c not in _BLANK_LOOKALIKES and unicodedata.category(c) != "Cf")


_ASCII_ALNUM = re.compile(r"[A-Za-z0-9]")


def has_visible_content(text: object) -> bool:
    """True when ``text`` holds at least one letter or digit (rule 1)."""
    if not isinstance(text, str):
        return False
    if text.isascii():
        return _ASCII_ALNUM.search(text) is not None
    for c in text:
        if c in _BLANK_LOOKALIKES:
            continue
        cat = unicodedata.category(c)
        if cat[0] in "LN":
            return True
    return False


_REFUSAL = re.compile(
    r"\b(?:no\s+idea|not\s+(?:sure|certain|clear|possible|enough|determinable|visible|known)"
    r"|unsure|uncertain|unclear|unknown|undetermined|indeterminate|unanswerable"
    r"|(?:don'?t|do\s+not|does\s+not|doesn'?t)\s+know|dunno"
    r"|cannot|can\s*not|can'?t|could\s*n[o']t|unable|impossible"
    r"|insufficient|sorry|no\s+answer|n/a|none\s+of\s+(?:the\s+)?(?:above|options|them|these|those)"
    r"|hard\s+to\s+(?:say|tell)|difficult\s+to\s+(?:say|tell|determine))\b"
    r"|\bn/a(?!\w)"
)

_HEDGE = re.compile(
    r"\b(?:maybe|perhaps|possibly|probably|likely|might|could\s+be|either|both|neither"
    r"|all\s+of\s+(?:the|them)|any\s+of|guess|or\s+so|give\s+or\s+take|plus\s+or\s+minus"
    r"|more\s+or\s+less|somewhere|whichever"
    # self-corrections: the answer changes its mind ("2 m, no wait 3 m")
    r"|wait|actually|i\s+mean|scratch\s+that|second\s+thought|or\s+rather|correction|oops)\b"
    r"|[±∓?]|\+\s*/\s*-|\+-"
)

_INEQUALITY = re.compile(
    r"\b(?:(?:more|less|fewer|greater|larger|bigger|smaller|shorter|longer|taller|higher|lower|wider"
    r"|narrower|farther|further|closer|nearer)\s+than"
    r"|at\s+(?:least|most|minimum|maximum)|up\s+to|upwards\s+of|in\s+excess\s+of|exceed\w*"
    r"|or\s+(?:more|less|fewer|greater|above|below|higher|lower|over|under|larger|smaller|longer"
    r"|shorter|bigger|taller|so)"
    r"|and\s+(?:up|above|over|more|below|under)|minimum|maximum|no\s+(?:more|less|fewer)"
    r"|(?:over|under|above|below|beyond)(?=\s*(?:about\s+|approximately\s+|around\s+|roughly\s+|~\s*)?[\d.]))\b"
    r"|[<>≤≥≦≧≲≳≪≫]"
    r"|\d\s*\+(?!\s*[\d.])"
)


def is_refusal(text: str) -> bool:
    """Rule 2 on normalised lower-case text."""
    return _REFUSAL.search(text) is not None


def is_hedged(text: str) -> bool:
    """Rule 3 on normalised lower-case text."""
    return _HEDGE.search(text) is not None


def is_inequality(text: str) -> bool:
    """Rule 4 on normalised lower-case text (quantities only)."""
    return _INEQUALITY.search(text) is not None


_CLAUSE_BREAK = re.compile(
    r"[,;:!?\n]|\.(?=\s|$)|\s[-–—]+\s|\b(?:but|however|whereas|although|though|yet)\b"
)
_NEGATION = re.compile(
    r"\b(?:not|never|no|neither|nor|none|wrong|incorrect|false|untrue|nope|rather\s+than|instead\s+of"
    r"|except|other\s+than|excluding|exclude[sd]?|rule[sd]?\s+out|ruled\s+out|reject(?:ed)?)\b"
    r"|n't\b"
)
_NEGATION_NO_YES_NO = re.compile(
    r"\b(?:not|never|neither|nor|wrong|incorrect|untrue|rather\s+than|instead\s+of"
    r"|except|other\s+than|excluding|exclude[sd]?|rule[sd]?\s+out|ruled\s+out|reject(?:ed)?)\b"
    r"|n't\b"
)


# A clause that only judges what came before it ("..., which is wrong", "... but that's not right").
_BACKWARD = re.compile(
    r"\s*(?:and\s+|so\s+)?(?:which|that|this|it|that's|it's|this's)\b[^\d\[]*?"
    r"\b(?:wrong|incorrect|untrue|false|(?:not|n't)\s+(?:correct|right|true|it|the\s+answer|the\s+case))\b"
)


def negated_spans(text: str, *, yes_no: bool = False, masked: list[tuple[int, int]] | None = None
                  ) -> list[tuple[int, int]]:
    """The ``(start, end)`` spans of the clauses of ``text`` that hold a negation cue (rule 5).

    Args:
        text: normalised lower-case text.
        yes_no: ``no`` / ``false`` / ``nope`` are answers here, not cues.
        masked: spans (e.g. option texts) whose words are not read as cues.
    """
    cue = _NEGATION_NO_YES_NO if yes_no else _NEGATION
    if cue.search(text) is None:
        return []
    spans = []
    start = 0
    for m in _CLAUSE_BREAK.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    out = []
    for i, (s, e) in enumerate(spans):
        for m in cue.finditer(text, s, e):
            if masked and any(ms <= m.start() and m.end() <= me for ms, me in masked):
                continue
            out.append((s, e))
            if i > 0 and _BACKWARD.match(text, s, e):
                out.append(spans[i - 1])  # "3 m, which is wrong": the verdict is on what came before
            break
    return out


def in_spans(position: int, spans: list[tuple[int, int]]) -> bool:
    """True when ``position`` falls inside one of ``spans``."""
    return any(s <= position < e for s, e in spans)
