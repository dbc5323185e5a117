"""Lexical analysis of chain-of-thought responses (SVQA-R1 appendix G) and think-length statistics.

Appendix G counts occurrences of reasoning-related keywords (``COT_KEYWORDS``, the paper's list)
in the generated responses and reports the mean count per response (0.8 for SVQA-R1). Our
counting rules, which the paper leaves open:

- Case-insensitive, whole words/phrases (``\\b`` on both ends; inner spaces match any run of
  whitespace). Curly apostrophes are read as ``'`` (``I’m not sure``).
- Occurrences are found left to right and do not overlap; at one position the longest keyword
  wins. So ``"in the first step"`` counts once (not also ``"first"``), and ``"might be"`` counts
  once. Each keyword is counted under its own name in ``keyword_counts``.
- By default the whole response is scanned (the paper: "in the generated responses");
  ``scope="think"`` scans only the text inside ``<think>...</think>``.

Think statistics: the text of all complete ``<think>...</think>`` blocks of a response
(case-insensitive tags, joined by a newline, stripped) is its think text; a response with no
complete block has none (an unclosed ``<think>`` of a truncated response does not count).
Lengths are characters and whitespace-separated tokens; mean, median and 90th percentile
(numpy's linear interpolation) over the responses that have a think block, plus the share of
responses that have one.

Missing predictions (``None``) are left out of every statistic and counted as ``missing``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "COT_KEYWORDS",
    "analyze",
    "count_cot_keywords",
    "keyword_stats",
    "think_length_stats",
    "think_text",
]

# SVQA-R1 appendix G, in the paper's order.
COT_KEYWORDS: tuple[str, ...] = (
    "likely", "probably", "possibly", "maybe", "might be", "could be", "seems", "appears to",
    "I think", "I guess", "I'm not sure", "because", "since", "therefore", "thus", "so", "hence",
    "as a result", "that means", "which implies", "accordingly", "first", "next", "then", "finally",
    "in the first step", "in the second step", "after that", "subsequently", "clearly", "obviously",
    "evidently", "definitely", "in fact", "it is important to note", "if", "suppose",
    "assuming that", "in case", "let's say", "consider that",
)

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\uff07": "'"})


def _keyword_regex(keywords: Sequence[str]) -> re.Pattern:
    # Longest first so that, at one position, "in the first step" beats "first".
    ordered = sorted(dict.fromkeys(keywords), key=lambda k: (-len(k), k))
    alternatives = [r"\s+".join(re.escape(part) for part in k.split()) for k in ordered]
    return re.compile(r"\b(?:" + "|".join(f"({a})" for a in alternatives) + r")\b", re.IGNORECASE)


_COT_REGEX = _keyword_regex(COT_KEYWORDS)
_COT_ORDER = sorted(dict.fromkeys(COT_KEYWORDS), key=lambda k: (-len(k), k))
_WORD = re.compile(r"\w+")


def _phrase_parts(keyword: str) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    """Words of a keyword and the gaps between them (" " for any whitespace, else literal)."""
    lowered = keyword.lower()
    spans = [m.span() for m in _WORD.finditer(lowered)]
    gaps = tuple(" " if lowered[a:b].isspace() else lowered[a:b] for (_, a), (b, _) in zip(spans, spans[1:]))
    return tuple(lowered[a:b] for a, b in spans), gaps, lowered


_COT_BY_FIRST_WORD: dict[str, list[tuple[tuple[str, ...], tuple[str, ...], str]]] = {}
for _keyword in _COT_ORDER:  # longest first, as in the regex
    _parts = _phrase_parts(_keyword)
    _COT_BY_FIRST_WORD.setdefault(_parts[0][0], []).append(_parts)
_THINK = re.compile(r"<\s*think\s*>(.*?)<\s*/\s*think\s*>", re.IGNORECASE | re.DOTALL)


def count_cot_keywords(text: str | None, keywords: Sequence[str] | None = None) -> Counter:
    """Occurrences of each keyword in ``text`` (non-overlapping, longest match first).

    >>> dict(count_cot_keywords("In the first step, it might be a chair, so then..."))
    {'in the first step': 1, 'might be': 1, 'so': 1, 'then': 1}
    """
    if not isinstance(text, str) or not text:
        return Counter()
    if keywords is not None:
        regex, order = _keyword_regex(keywords), sorted(dict.fromkeys(keywords), key=lambda k: (-len(k), k))
        counts: Counter = Counter()
        for match in regex.finditer(text.translate(_APOSTROPHES)):
            counts[order[match.lastindex - 1].lower()] += 1
        return counts
    # The built-in list: exactly _COT_REGEX's matches, found by one walk over the word tokens
    # (several times faster than the 41-way alternation). A keyword can only start at a token
    # start (it begins with \b and a letter), so compare token runs: the words equal ignoring
    # case, and the gaps between them whitespace (where the keyword has a space) or literal.
    lowered = text.translate(_APOSTROPHES).lower()
    spans = [m.span() for m in _WORD.finditer(lowered)]
    words = [lowered[a:b] for a, b in spans]
    counts = Counter()
    i, n = 0, len(words)
    while i < n:
        for phrase_words, phrase_gaps, name in _COT_BY_FIRST_WORD.get(words[i], ()):
            k = len(phrase_words)
            if i + k <= n and all(words[i + j] == phrase_words[j] for j in range(1, k)) and all(
                (gap.isspace() if want == " " else gap == want)
                for want, gap in zip(phrase_gaps, (lowered[spans[i + j][1]:spans[i + j + 1][0]] for j in range(k - 1)))
            ):
                counts[name] += 1
                i += k
                break
        else:
            i += 1
    return counts


def think_text(text: str | None) -> str | None:
    """The joined content of all complete ``<think>`` blocks, or ``None`` when there is none."""
    if not isinstance(text, str):
        return None
    blocks = _THINK.findall(text)
    if not blocks:
        return None
    return "\n".join(b.strip() for b in blocks).strip()


def _summary(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "median": None, "p90": None}
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "median": float(np.median(arr)), "p90": float(np.percentile(arr, 90))}


def _present(texts: Iterable[str | None]) -> list[str]:
    return [t for t in texts if isinstance(t, str)]


def keyword_stats(texts: Sequence[str | None], scope: str = "response") -> dict[str, Any]:
    """Appendix G statistics over ``texts``: mean keyword count per response, share with >= 1,
    total count per keyword. ``scope`` is ``"response"`` or ``"think"``."""
    if scope not in ("response", "think"):
        raise ValueError(f"scope must be 'response' or 'think', got {scope!r}")
    present = _present(texts)
    totals: Counter = Counter()
    per_response = []
    for text in present:
        region = text if scope == "response" else (think_text(text) or "")
        counts = count_cot_keywords(region)
        totals.update(counts)
        per_response.append(sum(counts.values()))
    n = len(per_response)
    return {
        "responses": n,
        "mean_keywords_per_response": float(np.mean(per_response)) if n else None,
        "share_with_keyword": float(np.mean([c > 0 for c in per_response])) if n else None,
        "keyword_counts": {k: totals[k] for k in sorted(totals, key=lambda k: (-totals[k], k))},
    }


def think_length_stats(texts: Sequence[str | None]) -> dict[str, Any]:
    """Share of responses with a think block; characters and whitespace tokens inside it."""
    present = _present(texts)
    thinks = [t for t in (think_text(x) for x in present) if t is not None]
    return {
        "responses": len(present),
        "with_think": len(thinks),
        "share_with_think": (len(thinks) / len(present)) if present else None,
        "think_chars": _summary([len(t) for t in thinks]),
        "think_tokens": _summary([len(t.split()) for t in thinks]),
    }


def _texts(predictions: Any) -> list[str | None]:
    if isinstance(predictions, Mapping):
        predictions = list(predictions.values())
    out: list[str | None] = []
    for p in predictions:
        if isinstance(p, Mapping):
            p = p.get("prediction")
        out.append(p if isinstance(p, str) else None)
    return out


def analyze(predictions: Any, scope: str = "response") -> dict[str, Any]:
    """All reasoning statistics for ``predictions``.

    Args:
        predictions: raw texts (``None`` for missing), or records with a ``prediction`` field,
            or a mapping id -> text/record (as ``read_predictions`` returns).
        scope: where keywords are counted, ``"response"`` (default) or ``"think"``.

    Returns:
        ``{"responses", "missing", "cot": keyword_stats(...), "think": think_length_stats(...)}``.
    """
    texts = _texts(predictions)
    return {
        "responses": sum(t is not None for t in texts),
        "missing": sum(t is None for t in texts),
        "cot": keyword_stats(texts, scope=scope),
        "think": think_length_stats(texts),
    }
