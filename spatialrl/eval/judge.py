"""LLM judge for open-ended spatial VQA (SVQA-R1 sec. 4.3 "LLM" metric and appendix B.2).

Two judgements, each a single chat turn sent to any OpenAI-compatible server through
``spatialrl.data.llm.ChatClient`` (replies cached on disk, so a rerun sends zero requests):

- ``judge_yes_no(pred, gt)``: SVQA-R1 appendix B.2's prompt, verbatim
  (``YES_NO_PROMPT``; ``{pred}`` and ``{gt}`` are replaced by the predicted and ground-truth
  answers). Note that the paper's prompt mentions "a Yes/No question" but does not include
  the question itself; we keep it that way.
- ``judge_open(question, pred, gt)``: sec. 4.3 says only that GPT-4o "is asked to assess the
  correctness of the prediction"; the paper does not give that prompt. ``OPEN_ENDED_PROMPT``
  is **ours**: a short neutral instruction with the question, both answers and the same
  "0 or 1" output contract as B.2.

Replies are parsed by ``parse_verdict``, which never raises: ``1`` correct, ``0`` incorrect,
``None`` malformed (empty, both digits, anything else). ``Judge.stats`` counts requests made
(``calls``), malformed replies (``malformed``) and failed requests (``failed``: the server
could not be reached, refused, or sent an empty reply; nothing is cached, so a rerun retries
them). A failed or malformed judgement is returned as ``None``; callers count it as
incorrect and report the counts (see ``spatialrl.eval.benchmarks.vqasynth``).

Requests use ``temperature=0`` and ``max_tokens=16`` by default (both part of the cache key).
The API key is handled by ``ChatClient`` only (read from the environment, never logged or
cached).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = [
    "ENV_BASE_URL",
    "ENV_CACHE_DIR",
    "ENV_KEY_VAR",
    "ENV_MODEL",
    "OPEN_ENDED_PROMPT",
    "YES_NO_PROMPT",
    "Judge",
    "judge_from_env",
    "parse_verdict",
]

log = logging.getLogger(__name__)

# SVQA-R1 appendix B.2, verbatim.
YES_NO_PROMPT = (
    "You are an evaluator. Given a Yes/No question, a ground-truth answer, and a predicted answer, "
    "determine whether the predicted answer means the same as the ground-truth answer.\n"
    "Predicted answer: {pred}, ground-truth answer: {gt}.\n"
    "Output only 0 or 1, where 0 indicates incorrect and 1 indicates correct."
)

# Ours (SVQA-R1 sec. 4.3 does not print its prompt).
OPEN_ENDED_PROMPT = (
    "You are an evaluator. Given a question about an image, a ground-truth answer, and a predicted answer, "
    "determine whether the predicted answer is correct, i.e. consistent with the ground-truth answer. "
    "Ignore differences in wording, length and style.\n"
    "Question: {question}\n"
    "Ground-truth answer: {gt}\n"
    "Predicted answer: {pred}\n"
    "Output only 0 or 1, where 0 indicates incorrect and 1 indicates correct."
)

_THINK_BLOCK = re.compile(r"<\s*think\s*>.*?<\s*/\s*think\s*>", re.IGNORECASE | re.DOTALL)
_DIGIT = re.compile(r"(?<![\w.])([01])(?:\.0+)?(?!\w)(?!\.\d)")
_MAX_REPLY = 2000


def _fill(template: str, **fields: str) -> str:
    """Replace ``{name}`` placeholders literally (answers may contain braces)."""
    out = template
    # One pass per field, in a fixed order; a field's text is never re-scanned for placeholders
    # of later fields because we substitute through unique sentinels first.
    sentinels = {name: f"\x00{i}\x00" for i, name in enumerate(fields)}
    for name, sentinel in sentinels.items():
        out = out.replace("{" + name + "}", sentinel)
    for name, sentinel in sentinels.items():
        out = out.replace(sentinel, str(fields[name]))
    return out


def parse_verdict(reply: Any) -> int | None:
    """``1``/``0`` from a judge's reply, ``None`` when it is malformed. Never raises.

    Accepts the bare digit with surrounding whitespace, quotes, markdown, punctuation or a
    short lead-in (``"1"``, ``"**0**"``, ``"Output: 1."``, ``"1.0"``); a ``<think>...</think>``
    block (reasoning judges) is ignored. ``None`` when no standalone 0/1 is found, when both
    appear (``"0 or 1"``), when the reply is long (> 2000 characters) or not a string.

    >>> parse_verdict(" 1\\n"), parse_verdict("Answer: **0**"), parse_verdict("0 or 1")
    (1, 0, None)
    """
    try:
        if not isinstance(reply, str):
            return None
        text = _THINK_BLOCK.sub(" ", reply).strip()
        if not text or len(text) > _MAX_REPLY:
            return None
        found = {m.group(1) for m in _DIGIT.finditer(text)}
        if len(found) != 1:
            return None
        return int(found.pop())
    except Exception:  # noqa: BLE001  # pragma: no cover - model text must never crash scoring
        return None


class Judge:
    """Yes/no and open-ended correctness judgements through a chat client.

    Args:
        client: a ``spatialrl.data.llm.ChatClient`` (or any object with
            ``chat(messages, **params) -> str`` raising on failure).
        temperature, max_tokens: request parameters (part of the cache key).
        workers: threads used by ``judge_many``.
    """

    def __init__(self, client: Any, *, temperature: float = 0.0, max_tokens: int | None = 16,
                 workers: int = 8) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.client = client
        self.params: dict[str, Any] = {"temperature": float(temperature)}
        if max_tokens is not None:
            self.params["max_tokens"] = int(max_tokens)
        self.workers = int(workers)
        self.stats: dict[str, int] = {"calls": 0, "malformed": 0, "failed": 0}
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, model: str, *, base_url: str | None = None, api_key_env: str | None = "OPENAI_API_KEY",
                    cache_dir: Any = None, **kwargs: Any) -> Judge:
        """A judge over ``ChatClient(model, base_url=..., api_key_env=..., cache_dir=...)``."""
        from spatialrl.data.llm import ChatClient

        client = ChatClient(model, base_url=base_url, api_key_env=api_key_env, cache_dir=cache_dir)
        return cls(client, **kwargs)

    @property
    def name(self) -> str:
        return str(getattr(self.client, "model", type(self.client).__name__))

    def _bump(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    def _ask(self, prompt: str) -> int | None:
        self._bump("calls")
        try:
            reply = self.client.chat([{"role": "user", "content": prompt}], **self.params)
        except Exception as exc:  # noqa: BLE001 - LLMError and anything a custom client raises
            self._bump("failed")
            redact = getattr(self.client, "redact", None)
            message = redact(str(exc)) if callable(redact) else type(exc).__name__
            log.warning("judge request failed: %s", message)
            return None
        verdict = parse_verdict(reply)
        if verdict is None:
            self._bump("malformed")
        return verdict

    @staticmethod
    def yes_no_prompt(pred: str, gt: str) -> str:
        """SVQA-R1 appendix B.2's prompt for one pair."""
        return _fill(YES_NO_PROMPT, pred=pred, gt=gt)

    @staticmethod
    def open_prompt(question: str, pred: str, gt: str) -> str:
        """Our open-ended correctness prompt for one triple."""
        return _fill(OPEN_ENDED_PROMPT, question=question, gt=gt, pred=pred)

    def judge_yes_no(self, pred: str, gt: str) -> int | None:
        """1 if the judge says ``pred`` means the same as ``gt``, 0 if not, None if unusable."""
        return self._ask(self.yes_no_prompt(pred, gt))

    def judge_open(self, question: str, pred: str, gt: str) -> int | None:
        """1 if the judge says ``pred`` correctly answers ``question`` given ``gt``, else 0/None."""
        return self._ask(self.open_prompt(question, pred, gt))

    def judge_many(self, requests: Sequence[Mapping[str, str]]) -> list[int | None]:
        """Judge many requests concurrently, results in order.

        Each request is ``{"kind": "yes_no", "pred", "gt"}`` or
        ``{"kind": "open", "question", "pred", "gt"}``.
        """
        prompts = []
        for i, req in enumerate(requests):
            kind = req.get("kind")
            if kind == "yes_no":
                prompts.append(self.yes_no_prompt(req["pred"], req["gt"]))
            elif kind == "open":
                prompts.append(self.open_prompt(req["question"], req["pred"], req["gt"]))
            else:
                raise ValueError(f"requests[{i}]: kind must be 'yes_no' or 'open', got {kind!r}")
        if self.workers == 1 or len(prompts) <= 1:
            return [self._ask(p) for p in prompts]
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(self._ask, prompts))


ENV_MODEL = "SPATIALRL_JUDGE_MODEL"
ENV_BASE_URL = "SPATIALRL_JUDGE_BASE_URL"
ENV_KEY_VAR = "SPATIALRL_JUDGE_API_KEY_ENV"
ENV_CACHE_DIR = "SPATIALRL_JUDGE_CACHE"


def judge_from_env(environ: Mapping[str, str] | None = None) -> Judge | None:
    """A ``Judge`` configured from the environment, or ``None`` when ``SPATIALRL_JUDGE_MODEL`` is unset.

    ``SPATIALRL_JUDGE_MODEL`` (e.g. ``gpt-4o``), ``SPATIALRL_JUDGE_BASE_URL`` (e.g.
    ``http://127.0.0.1:8000/v1``; default: ``OPENAI_BASE_URL`` or OpenAI),
    ``SPATIALRL_JUDGE_API_KEY_ENV`` (name of the variable holding the key, default
    ``OPENAI_API_KEY``), ``SPATIALRL_JUDGE_CACHE`` (cache directory; default the ChatClient's).
    """
    env = os.environ if environ is None else environ
    model = env.get(ENV_MODEL)
    if not model:
        return None
    return Judge.from_config(
        model,
        base_url=env.get(ENV_BASE_URL) or None,
        api_key_env=env.get(ENV_KEY_VAR) or "OPENAI_API_KEY",
        cache_dir=env.get(ENV_CACHE_DIR) or None,
    )
