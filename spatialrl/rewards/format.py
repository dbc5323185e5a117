"""Structural format reward (Smooth Operator eq. 4's ``r_fmt``; SVQA-R1 sec. 3.2's ``r^f``).

Binary: 1.0 when the completion is exactly ``<think>...</think><answer>...</answer>``
(whitespace allowed around and between the blocks), with exactly one of each tag and no other
spelling of them (``<ANSWER>``, ``</ think>``), in that order, and an answer with visible
content (``spatialrl.answers.commitment.has_visible_content``: a letter or a digit once
zero-width spaces, BOM, word joiners, blank look-alikes such as the braille blank, and markup
that renders as nothing are removed); 0.0 otherwise. The answer-only variant requires exactly
``<answer>...</answer>``. Our choices: tags are case-sensitive (as the prompt asks for them),
the reasoning block may be empty, the answer may not (an empty answer would be a free point).
"""

from __future__ import annotations

import re

from spatialrl.answers.commitment import has_visible_content

_THINK_ANSWER = re.compile(r"\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*", re.DOTALL)
_ANY_TAG = re.compile(r"<\s*/?\s*(?:think|answer)\s*>", re.IGNORECASE)
_ANSWER_ONLY = re.compile(r"\s*<answer>(.*?)</answer>\s*", re.DOTALL)


def format_reward(text: object, require_think: bool = True) -> float:
    """1.0 if ``text`` follows the required structure, else 0.0. Never raises.

    >>> format_reward("<think>look</think><answer>2 m</answer>")
    1.0
    >>> format_reward("<answer>2 m</answer><answer>3 m</answer>")
    0.0
    """
    if not isinstance(text, str):
        return 0.0
    if require_think:
        if (text.count("<think>") != 1 or text.count("</think>") != 1 or text.count("<answer>") != 1
                or text.count("</answer>") != 1 or len(_ANY_TAG.findall(text)) != 4):
            return 0.0  # exactly the four tags, and no other spelling of them (<ANSWER>, </ think>)
        match = _THINK_ANSWER.fullmatch(text)
        return 1.0 if match is not None and has_visible_content(match.group(2)) else 0.0
    if text.count("<answer>") != 1 or text.count("</answer>") != 1 or len(_ANY_TAG.findall(text)) != 2:
        return 0.0
    match = _ANSWER_ONLY.fullmatch(text)
    return 1.0 if match is not None and has_visible_content(match.group(1)) else 0.0
