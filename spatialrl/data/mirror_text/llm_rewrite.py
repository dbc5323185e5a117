"""The LLM rewriter of SVQA-R1 sec. 3.1, and the rule check that verifies its rewrites.

The paper asks GPT-4o to adapt each question and answer to the flipped image with a
rewrite-and-verify prompt (its prompt table, :data:`SVQA_R1_REWRITE_PROMPT`, verbatim), because
naive left/right swapping gives inconsistent pairs. Here the reply is read leniently
(:func:`parse_rewrite_reply`) and accepted only when :func:`check_llm_rewrite` agrees with it.

Deviation from the paper: the paper uses GPT-4o alone; here the rules are the default and the
LLM (``--llm``, any OpenAI-compatible API through :mod:`spatialrl.data.llm`) is an option whose
output must pass the rule check, else the rule rewrite is used (or, when the rules could not
classify the row, it is skipped with its reason).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from spatialrl.data.mirror_text.reasons import Skip
from spatialrl.data.mirror_text.rules import direction_sequence, rewrite_with_frame

__all__ = ["SVQA_R1_REWRITE_PROMPT", "LLMState", "ask_llm", "build_rewrite_messages", "check_llm_rewrite",
           "parse_rewrite_reply"]

log = logging.getLogger(__name__)

_I = re.IGNORECASE
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?")
_FLIP_WORDS = re.compile(r"\b(?:flip|flips|flipped|flipping|mirror|mirrored|mirroring|reflected|reflection)\b", _I)


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
    if [_SWAP[w] for w in direction_sequence(original)] != direction_sequence(rewritten):
        return "left_right_mismatch"
    try:
        expected = rewrite_with_frame(original, lambda found: None, words=False)
    except Skip:
        expected = original
    if _numbers(expected) != _numbers(rewritten):
        return "numbers_changed"
    if _FLIP_WORDS.search(rewritten) and not _FLIP_WORDS.search(original):
        return "mentions_flip"
    if len(rewritten) > 3 * len(original) + 40:
        return "too_long"
    return None


# --------------------------------------------------------------------------------------------
# Asking the LLM during a run (worker threads)
# --------------------------------------------------------------------------------------------


@dataclass
class LLMState:
    client: Any
    workers: int
    temperature: float
    breaker: int = 5  # consecutive failed requests after which the LLM is given up for the run
    consecutive_failures: int = 0
    disabled: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    lock: Any = field(default_factory=threading.Lock)


def ask_llm(state: LLMState, question: str, answer: str) -> tuple[tuple[str, str] | None, str]:
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
