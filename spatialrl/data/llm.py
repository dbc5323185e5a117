"""A small, cached client for OpenAI-compatible chat-completion servers.

Used by the mirror rewriter (SVQA-R1 sec. 3.1 asks an LLM to rewrite a QA pair for the
flipped image) and meant for any other caller that needs "messages in, text out", e.g. an
LLM judge in evaluation (SVQA-R1 appendix B.2). One entry point::

    client = ChatClient(model="gpt-4o", base_url="http://127.0.0.1:8000/v1", cache_dir="~/.cache/x")
    text = client.chat([{"role": "user", "content": "..."}], temperature=0.0)

What it guarantees:

* **Cache.** Every successful reply is stored on disk under ``sha256(model, messages,
  params)`` (canonical JSON), one file per key, written atomically (temporary file +
  ``os.replace``), so a crash never leaves a torn entry and a rerun never repeats a call.
  The base URL is *not* part of the key: the same model name behind another endpoint reuses
  the cache (pass a different ``cache_dir`` if that is not what you want). A corrupt entry is
  treated as a miss and rewritten. Failures are never cached.
* **Retries.** Transport errors (connection errors, time-outs, HTTP 408/409/425/429 and 5xx)
  are retried with exponential back-off, ``backoff * 2**attempt`` seconds capped at
  ``max_backoff``, at most ``max_retries`` times; the ``openai`` client's own retries are
  switched off so that the bound here is the only one. Other HTTP errors (400, 401, 404...)
  fail at once. Every failure surfaces as :class:`LLMError`.
* **Secrets.** The API key is read from the environment (``api_key_env``, default
  ``OPENAI_API_KEY``) or given in code; it is never logged, never part of the cache key or a
  cache file, never shown by ``repr``, and is masked in every error message this module
  raises or logs.

The ``openai`` package is imported lazily, on the first request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["ChatClient", "DiskCache", "LLMError", "cache_key", "default_cache_dir", "resolve_api_key"]

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
# HTTP statuses worth retrying: request time-out, conflict, too early, rate limit; 5xx below.
_RETRY_STATUSES = frozenset({408, 409, 425, 429})


class LLMError(RuntimeError):
    """A request that did not produce a reply. ``transient`` tells whether it was a transport
    failure (worth trying again later) or a definite refusal (bad request, bad key...)."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def default_cache_dir() -> Path:
    """``$SPATIALRL_CACHE/llm``, else ``$XDG_CACHE_HOME/spatialrl/llm``, else ``~/.cache/spatialrl/llm``."""
    root = os.environ.get("SPATIALRL_CACHE")
    if root:
        return Path(root).expanduser() / "llm"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "spatialrl" / "llm"


def resolve_api_key(api_key: str | None = None, api_key_env: str | None = "OPENAI_API_KEY") -> str | None:
    """The key given, else the value of the environment variable ``api_key_env``."""
    if api_key:
        return api_key
    if api_key_env:
        value = os.environ.get(api_key_env)
        if value:
            return value
    return None


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def cache_key(model: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the canonical JSON of ``(model, messages, params)``: the cache key."""
    payload = {"v": CACHE_FORMAT, "model": model, "messages": list(messages), "params": dict(params)}
    return hashlib.sha256(_canonical(payload).encode("utf-8")).hexdigest()


class DiskCache:
    """One JSON file per key under ``root/<key[:2]>/<key>.json``, written atomically."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored entry, or ``None`` when absent or unreadable (a corrupt file is a miss)."""
        path = self._path(key)
        try:
            with path.open("r", encoding="utf-8") as fh:
                entry = json.load(fh)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            log.warning("ignoring unreadable LLM cache entry %s", path)
            return None
        if not isinstance(entry, dict) or entry.get("key") != key or not isinstance(entry.get("reply"), str):
            return None
        return entry

    def put(self, key: str, entry: Mapping[str, Any]) -> None:
        """Write ``entry`` (plus its key) atomically: a reader sees the old file or the new one."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = dict(entry)
        data["key"] = key
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:8]}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, ensure_ascii=False, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


class ChatClient:
    """Chat completions against any OpenAI-compatible server, with an on-disk cache.

    Args:
        model: model name sent to the server (and part of the cache key).
        base_url: server root including ``/v1``; ``None`` reads ``OPENAI_BASE_URL``, else
            the ``openai`` default.
        api_key: the key itself (prefer ``api_key_env``); never stored or logged.
        api_key_env: environment variable holding the key. When no key is found and a base
            URL is set, a placeholder is sent (local servers such as vLLM ignore it).
        cache_dir: where replies are cached; ``None`` uses :func:`default_cache_dir`;
            ``False`` disables the cache.
        timeout: seconds per HTTP request.
        max_retries: retries after the first attempt, for transport errors only.
        backoff, max_backoff: the retry delay is ``min(max_backoff, backoff * 2**attempt)``.
        default_params: request parameters merged under each call's (e.g. temperature).
        sleep: the sleep function (tests pass a fake).
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",
        cache_dir: str | os.PathLike[str] | None | bool = None,
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        default_params: Mapping[str, Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not model:
            raise ValueError("ChatClient needs a model name (e.g. --model gpt-4o)")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if backoff < 0 or max_backoff < 0:
            raise ValueError("backoff and max_backoff must be >= 0")
        self.model = model
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        key = resolve_api_key(api_key, api_key_env)
        if key is None and self.base_url is None:
            raise ValueError(
                f"no API key: set the environment variable {api_key_env or 'OPENAI_API_KEY'} "
                "(or give a --base-url for a local server that needs none)"
            )
        # Kept in a closure-like private slot; never in repr, logs, cache or errors.
        self.__key = key or "no-key"
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.default_params = dict(default_params or {})
        self._sleep = sleep
        if cache_dir is False:
            self.cache: DiskCache | None = None
        else:
            self.cache = DiskCache(default_cache_dir() if cache_dir in (None, True) else cache_dir)  # type: ignore[arg-type]
        self._client: Any = None
        self._lock = threading.Lock()
        self.stats: dict[str, int] = {"calls": 0, "cache_hits": 0, "requests": 0, "retries": 0, "failures": 0}

    def __repr__(self) -> str:
        return f"ChatClient(model={self.model!r}, base_url={self.base_url!r}, cache={getattr(self.cache, 'root', None)!r})"

    # -- internals -------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        """``text`` with the API key (if any) masked."""
        key = self.__key
        if key and key != "no-key" and len(key) >= 4:
            text = text.replace(key, "***")
        return text

    def _bump(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.stats[name] += n

    def _openai(self) -> Any:
        with self._lock:
            if self._client is None:
                import openai

                self._client = openai.OpenAI(
                    api_key=self.__key,
                    base_url=self.base_url,
                    timeout=self.timeout,
                    max_retries=0,  # retries are ours (bounded, logged, counted)
                )
            return self._client

    @staticmethod
    def _is_transient(exc: BaseException) -> bool:
        import openai

        if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
            return True
        if isinstance(exc, openai.APIStatusError):
            status = int(getattr(exc, "status_code", 0) or 0)
            return status in _RETRY_STATUSES or status >= 500
        return False

    @staticmethod
    def _reply_text(response: Any) -> str:
        choices = getattr(response, "choices", None)
        if not choices:
            raise LLMError("the server's reply has no choices", transient=False)
        message = getattr(choices[0], "message", None)
        content = getattr(message, "content", None)
        if content is None:
            return ""
        if isinstance(content, str):
            return content
        if isinstance(content, list):  # content parts
            parts = []
            for part in content:
                text = part.get("text") if isinstance(part, dict) else getattr(part, "text", None)
                if isinstance(text, str):
                    parts.append(text)
            return "".join(parts)
        return str(content)

    def _request(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
        import openai

        client = self._openai()
        attempt = 0
        while True:
            self._bump("requests")
            try:
                response = client.chat.completions.create(model=self.model, messages=messages, **params)
                return self._reply_text(response)
            except LLMError:
                raise
            except openai.OpenAIError as exc:
                transient = self._is_transient(exc)
                what = self.redact(f"{type(exc).__name__}: {exc}")
                if not transient:
                    raise LLMError(f"request failed: {what}", transient=False) from None
                if attempt >= self.max_retries:
                    raise LLMError(
                        f"request failed after {attempt + 1} attempts: {what}", transient=True
                    ) from None
                delay = min(self.max_backoff, self.backoff * (2**attempt))
                log.warning("LLM request failed (%s); retry %d/%d in %.2fs", what, attempt + 1, self.max_retries, delay)
                self._bump("retries")
                attempt += 1
                if delay > 0:
                    self._sleep(delay)

    # -- public ----------------------------------------------------------------------------

    def chat(self, messages: Sequence[Mapping[str, Any]], *, use_cache: bool = True, **params: Any) -> str:
        """Send ``messages`` and return the reply's text (``""`` for an empty reply).

        ``params`` (temperature, max_tokens, seed, response_format, ...) are passed to the
        server and are part of the cache key. Raises :class:`LLMError` when no reply could
        be had; the text itself is returned as is (the caller parses it).
        """
        self._bump("calls")
        msgs = [dict(m) for m in messages]
        merged = {**self.default_params, **params}
        key = cache_key(self.model, msgs, merged)
        if use_cache and self.cache is not None:
            entry = self.cache.get(key)
            if entry is not None:
                self._bump("cache_hits")
                return entry["reply"]
        try:
            reply = self._request(msgs, merged)
        except LLMError:
            self._bump("failures")
            raise
        if self.cache is not None:
            try:
                self.cache.put(
                    key,
                    {"model": self.model, "messages": msgs, "params": merged, "reply": reply, "created": time.time()},
                )
            except OSError as exc:  # a full disk must not lose the reply we already paid for
                log.warning("could not write LLM cache entry: %s", exc)
        return reply
