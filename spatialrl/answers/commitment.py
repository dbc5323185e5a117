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
   render as blanks (braille blank U+2800, Hangul fillers, combining grapheme joiner),
   whitespace, and markup that renders as nothing (``<br>``, ``&#8203;``, ``\\text{}``).
   ``"\\u200b\\u2060"`` is no answer.
2. **Refusals** give ``None`` for every kind: ``"I have no idea"``, ``"not sure"``,
   ``"I cannot say yes"``, ``"unknown"``, ``"impossible to tell"``, ``"n/a"``,
   ``"none of the above"``, ``"not confident"``.
3. **Hedges** give ``None`` for every kind: ``"maybe B"``, ``"perhaps 3 m"``, ``"B, presumably"``,
   ``"kind of yes"``, ``"3 m, give or take a meter"``, ``"3 or thereabouts"``, ``"either A or B"``,
   ``"both"``, ``"B or something"``, ``"3 m ± 0.5"``, ``"Yes (50% confident)"``, a question mark
   (``"B?"``), a self-correction or retraction (``"2 m, no wait 3 m"``, ``"B. Just kidding."``).
   Estimates stay answers: ``about``, ``approximately``, ``around``, ``roughly``, ``~`` commit
   to one value.
4. **Inequalities and bounds** give ``None`` for quantities: ``"more than 3 m"``, ``"< 3 m"``,
   ``"at least 3"``, ``"3 m or more"``, ``"3+ chairs"``, ``"3 m max"``, ``"3 m tops"``,
   ``"3 m (upper bound)"``, ``"3 m, if not more"``, ``"over 2 m"`` (``over``, ``under``,
   ``above``, ``below``, ``beyond`` only right before a number: ``"1.5 m above the floor"``
   is a height).
5. **Rejection is scoped.** Text is split into clauses at ``, ; : ! ?``, a sentence-ending
   ``.``, dashes between spaces, line breaks and ``but``/``however``/``whereas`` (not the
   ``but`` of ``"anything but B"``). Each candidate answer (a number, a letter, an option
   text, a keyword, a box, a side) is asserted unless its clause rejects it:

   * a *verdict* (``wrong``, ``incorrect``, ``false``, ``invalid``, ``a mistake``,
     ``inaccurate``, ``doubt``, ``unlikely``, ``not correct``, ``not right``...) rejects every
     candidate of its clause: ``"3 m is wrong"``, ``"B is incorrect"``;
   * a clause that holds only a verdict judges its neighbour: the clause before it when it
     starts with ``which``/``that``/``it`` or ends the text (``"3 m, which is wrong"``,
     ``"B. That's not right."``), the clause after it when a colon or a dash follows it or it
     opens the text (``"Wrong: B"``);
   * a *prefix* cue (``not``, ``n't``, ``never``, ``no``, ``hardly``, ``instead of``,
     ``rather than``, ``except``, ``anything but``...) rejects the candidates after it in its
     clause, or the whole clause when none follows it: ``"not left"``, ``"It is not B"``,
     ``"B is not closer"`` reject; ``"B, not A"``, ``"B and not C"``, ``"B instead of C"``
     are B.

   An answer is the one value asserted, provided nothing rejects that same value
   (``"B, not B"`` is ``None``). For yes/no answers ``no`` and ``false`` are answers, not cues.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "has_visible_content",
    "is_hedged",
    "is_inequality",
    "clause_index",
    "clauses",
    "is_refusal",
    "rejected",
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


_RENDERS_EMPTY = re.compile(
    r"<[^<>]*>|&#?\w+;|\\[a-zA-Z]+\s*\{\s*\}|\\(?:[hv]?phantom\s*\{[^{}]*\}|[hv]space\*?\s*\{[^{}]*\})"
    r"|\\(?:q?quad|enspace|thinspace|negthinspace|mathstrut|strut)\b|\\[,;:! ]|\$+"
)


def has_visible_content(text: object) -> bool:
    """True when ``text`` holds at least one letter or digit (rule 1) once markup that renders as
    nothing is removed: HTML tags and entities (``<br>``, ``&#8203;``), empty LaTeX groups
    (``\\text{}``), LaTeX spaces and ``$``."""
    if not isinstance(text, str):
        return False
    if "<" in text or "&" in text or "\\" in text or "$" in text:
        text = _RENDERS_EMPTY.sub("", text)
    if text.isascii():
        return _ASCII_ALNUM.search(text) is not None
    for c in text:
        if c in _BLANK_LOOKALIKES:
            continue
        if unicodedata.category(c)[0] in "LN" or any(d.isalnum() for d in unicodedata.normalize("NFKC", c)):
            return True  # a letter or digit, or a symbol that stands for one (circled "C")
    return False


_REFUSAL = re.compile(
    r"\b(?:no\s+idea|not\s+(?:sure|certain|clear|possible|enough|determinable|visible|known|confident)"
    r"|unsure|uncertain\w*|unclear|unknown|undetermined|indeterminate|unanswerable"
    r"|(?:don'?t|do\s+not|does\s+not|doesn'?t)\s+know|dunno"
    r"|cannot|can\s*not|can'?t|could\s*n[o']t|unable|impossible"
    r"|insufficient|sorry|no\s+answer|none\s+of\s+(?:the\s+)?(?:above|options|them|these|those)"
    r"|(?:no|zero)\s+(?:clue|idea|comment|information|info|data|telling|clear\s+answer|can\s+do)"
    r"|no\s+way\s+(?:to|of)\s+\w+|none\s+of\s+your\s+business"
    r"|no\s+(?:certain\w*|definit\w*|reliable|sufficient|basis|conclusion|determination|single\s+answer"
    r"|(?:good|obvious|clear|certain|correct|right)\s+(?:answer|view)|visible\s+(?:information|evidence|data)|visibility"
    r"|image\s+provided|one\s+(?:can|could|knows|would|is\s+able))"
    r"|(?:nothing|none)\s+(?:(?:can|could)\s+be\s+(?:determined|said|known|told|concluded)|certain|definite"
    r"|obvious|clear|is\s+clear|to\s+say)"
    r"|hard\s+to\s+(?:say|tell)|difficult\s+to\s+(?:say|tell|determine))\b"
    r"|\bn/a(?!\w)"
)

_HEDGE = re.compile(
    r"\b(?:maybe|perhaps|possibly|probably|likely|presumably|supposedly|arguably|seemingly|apparently"
    r"|might|could\s+be|either|both|neither|whichever|all\s+of\s+(?:the|them)|any\s+of"
    r"|guess\w*|i\s+suppose|sort\s+of|kind\s+of|somewhat|ish|a\s+(?:bit|little)\s+(?:more|less|larger|smaller)"
    r"|or\s+(?:so|thereabouts|something|whatever|similar|about)|thereabouts|something|and\s+(?:a\s+bit|change)"
    r"|give\s+or\s+take|plus\s+or\s+minus|more\s+or\s+less|somewhere|odd|vice\s+versa|if\s+not"
    r"|(?:low|some|little|limited)\s+confidence|confidence\s*(?::|of|is)?\s*(?:low|\d)"
    # self-corrections and retractions: the answer changes its mind ("2 m, no wait 3 m", "B. jk")
    r"|wait|actually|i\s+mean|scratch\s+that|second\s+thought|or\s+rather|correction|oops"
    r"|kidding|joking|jk)\b"
    r"|\b(?!100\b)\d{1,2}(?:\.\d+)?\s*%\s*(?:confiden\w*|sure|certain|probab\w*|chance|likel\w*)"
    r"|(?<=\d)-?ish\b|[±∓?]|\+\s*/\s*-|\+-"
)

_INEQUALITY = re.compile(
    r"\b(?:(?:more|less|fewer|greater|larger|bigger|smaller|shorter|longer|taller|higher|lower|wider"
    r"|narrower|farther|further|closer|nearer)\s+than"
    r"|at\s+(?:the\s+)?(?:very\s+)?(?:least|most|minimum|maximum|max|min)|up\s+to|upwards\s+of|in\s+excess\s+of|exceed\w*"
    r"|or\s+(?:(?:slightly|just|a\s+few|a\s+little|a\s+bit|somewhat)\s+)?(?:more|less|fewer|greater|above|below"
    r"|higher|lower|over|under|larger|smaller|longer|shorter|bigger|taller)"
    r"|and\s+(?:up|upwards?|above|over|more|below|under)|upwards?|shy\s+of|plus|tops|bound"
    r"|minimum|maximum|max|min|no\s+(?:more|less|fewer)"
    r"|(?:over|under|above|below|beyond|within)(?=\s*(?:about\s+|approximately\s+|around\s+|roughly\s+|~\s*)?[\d.]))\b"
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


# Clause breaks ("but" after "anything" / "all" / "any option" means "except": see clauses()).
_CLAUSE_BREAK = re.compile(r"[,;:!?\n]|\.(?=\s|$)|\s[-–—]+\s|\b(?:but|however|whereas|although|though|yet)\b")
_PREFIX_ONLY = r"not|never|neither|nor|hardly|rather\s+than|instead\s+of|except|other\s+than|excluding|far\s+from" \
               r"|nothing\s+(?:like|near|close\s+to)|nowhere\s+(?:near|close\s+to)|far\s+off(?:\s+from)?" \
               r"|a\s+long\s+way\s+(?:from|off)|way\s+off|miles\s+(?:from|off)" \
               r"|(?:anything|everything|all|any\s+\w+)\s+but|eliminate[sd]?|avoid|discard|skip|n't" \
               r"|nicht|kein\w*|pas|не|нет"  # German, French, Russian
# Words that judge the whole clause: every value in it is rejected.
_VERDICT = (r"wrong|incorrect|untrue|invalid|erroneous|mistake|mistaken|inaccurate|questionable|improbable"
            r"|implausible|unlikely|(?<!no\s)(?<!without\s)(?<!beyond\s)(?<!a\s)doubt\w*|bad|reject\w*"
            r"|rule[sd]?\s+out|ruled\s+out|exclude[sd]?|trap|decoy|distractor|red\s+herring|misleading")
# Marks and words that need no word boundary: a cross, logical not, Chinese and Japanese negation.
_MARKS = r"[✗✘❌❎¬]|不是|不对|没有|ではない|じゃない"
_CUES = re.compile(rf"\b(?:(?P<verdict>{_VERDICT}|false)|(?P<prefix>no|none|nope|{_PREFIX_ONLY}))\b|(?P<nt>n't)\b"
                   rf"|(?P<mark>{_MARKS})")
_CUES_YES_NO = re.compile(rf"\b(?:(?P<verdict>{_VERDICT})|(?P<prefix>{_PREFIX_ONLY}))\b|(?P<nt>n't)\b"
                          rf"|(?P<mark>{_MARKS})")
# A clause that is only "no" / "nope" / "not" after an answer takes it back ("D: no", "D - nope").
_BARE_DENIAL = re.compile(r"\s*(?:no|nope|not|nah)\s*[.!]*\s*$")
_BARE_NOT = re.compile(r"\s*not\s*$")  # "Not: B" rejects what follows; "No: B" / "No - B" answers no, then says more
# A clause that only judges what came before it ("..., which is wrong", "... but that's not right").
_BACKWARD = re.compile(r"\s*(?:and\s+|so\s+)?(?:which|that|this|it|that's|it's)\b")
# "not correct", "not right", "not true", "not it", "not the answer" judge like a verdict.
_NOT_VERDICT = re.compile(r"\b(?:not|n't)\s+(?:correct|right|true|it|the\s+(?:right\s+|correct\s+)?answer|the\s+case)\b")


_EXCEPT_BUT = re.compile(r"(?:anything|everything|all|any\s+\w+)\s+$")


def clauses(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, break that follows)`` of each clause of ``text`` (rule 5's split)."""
    out, start = [], 0
    for m in _CLAUSE_BREAK.finditer(text):
        if m.group() == "but" and _EXCEPT_BUT.search(text, max(0, m.start() - 40), m.start()):
            continue  # "anything but B", "any option but B": "but" means "except"
        out.append((start, m.start(), m.group().strip()))
        start = m.end()
    out.append((start, len(text), ""))
    return out


def clause_index(spans: list[tuple[int, int, str]], position: int) -> int:
    """The index in ``spans`` (from :func:`clauses`) of the clause holding ``position``."""
    for i, (_, end, _) in enumerate(spans):
        if position < end:
            return i
    return len(spans) - 1


def rejected(text: str, positions: list[int], *, yes_no: bool = False,
             masked: list[tuple[int, int]] | None = None) -> list[bool]:
    """For each candidate answer at ``positions`` in ``text``, whether the text rejects it (rule 5).

    Args:
        text: normalised lower-case text.
        positions: where each candidate (a number, a letter, an option text, a keyword...) starts.
        yes_no: ``no`` / ``false`` / ``nope`` are answers here, not cues.
        masked: spans (e.g. option texts) whose words are not read as cues.

    In a clause, a *verdict* (``wrong``, ``incorrect``, ``not correct``, ``doubt``...) rejects every
    candidate; a *prefix* cue (``not``, ``never``, ``instead of``, ``anything but``...) rejects the
    candidates after it, or the whole clause when none follows it. A clause that holds only a
    verdict rejects the clause before it (``"3 m, which is wrong"``), the one after it when a colon
    or a dash follows (``"Wrong: B"``), else both.
    """
    flags = [False] * len(positions)
    cues = _CUES_YES_NO if yes_no else _CUES
    if not positions or cues.search(text) is None:
        return flags
    spans = clauses(text)
    where = [clause_index(spans, p) for p in positions]
    reject_clause = [False] * len(spans)
    for ci, (s, e, brk) in enumerate(spans):
        found = [m for m in cues.finditer(text, s, e)
                 if not (masked and any(ms <= m.start() and m.end() <= me for ms, me in masked))]
        if not found:
            continue
        members = [k for k, w in enumerate(where) if w == ci]
        verdict = (any(m.group("verdict") or m.group("mark") for m in found)
                   or _NOT_VERDICT.search(text, s, e) is not None
                   or (not yes_no and not members and _BARE_DENIAL.match(text, s, e) is not None
                       and (ci > 0 or _BARE_NOT.match(text, s, e) is not None)))
        if verdict:
            if members:
                reject_clause[ci] = True
                continue
            backward = _BACKWARD.match(text, s, e) is not None
            forward = brk in (":", "-", "–", "—") or ci == 0
            if _BARE_DENIAL.match(text, s, e) and _BARE_NOT.match(text, s, e) is None:
                backward, forward = True, False  # "D: no", "D - nope": taken back
            if backward or not forward:
                if ci > 0:
                    reject_clause[ci - 1] = True
            if forward and not backward and ci + 1 < len(spans):
                reject_clause[ci + 1] = True
            continue
        first = found[0].start()
        after = [k for k in members if positions[k] >= first]
        for k in after or members:
            flags[k] = True
    for k, w in enumerate(where):
        if reject_clause[w]:
            flags[k] = True
    for ci, (s, e, _) in enumerate(spans):
        if 0 < ci < len(spans) - 1 and _BARE_DENIAL.match(text, s, e) and min(where) < ci < max(where):
            return [True] * len(positions)  # "5 - no, 6": a change of mind is no committed answer
    return flags
