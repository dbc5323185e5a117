"""A small, cached client for OpenAI-compatible chat-completion servers.

Used by the mirror rewriter (SVQA-R1 sec. 3.1 asks an LLM to rewrite a QA pair for the
flipped image) and meant for any other caller that needs "messages in, text out", e.g. an
LLM judge in evaluation (SVQA-R1 appendix B.2). One entry point::

    client = ChatClient(model="gpt-4o", base_url="http://127.0.0.1:8000/v1", cache_dir="~/.cache/x")
    text = client.chat([{"role": "user", "content": "..."}], temperature=0.0)

What it guarantees (each has a regression test in ``tests/data/test_llm.py`` against a real
HTTP server on loopback):

* **A reply or an** :class:`LLMError`. ``chat`` returns non-empty text or raises
  :class:`LLMError`, nothing else from the transport: a 200 whose body is not JSON, has no
  choices, or whose content is empty or whitespace only is a failure (``transient=True``),
  retried like a transport error, and never cached.
* **Deadlines.** One attempt (connect, send, status line, headers, body, parse) ends within
  ``timeout`` seconds, and a whole ``chat`` call, retries and waits included, within
  ``deadline`` seconds, even against a server that trickles one byte at a time (httpx's own
  time-outs are per read, so they cannot bound that). Attempts run on the ``openai``
  package's async client, on one event-loop thread per :class:`ChatClient`; the calling
  thread waits for an attempt at most the time it has left, then cancels it (asyncio task
  cancellation, which closes its connection). The bound is the caller's wall clock, so it
  holds however the server behaves, give or take thread-scheduling jitter.
* **Cache.** Every successful reply is stored on disk under ``sha256(model, messages,
  params)`` (canonical JSON), one file per key, written atomically (temporary file +
  ``os.replace``), so a crash never leaves a torn entry and a rerun never repeats a call.
  The base URL is *not* part of the key: the same model name behind another endpoint reuses
  the cache (pass a different ``cache_dir`` if that is not what you want). A corrupt entry is
  treated as a miss and rewritten. Failures and empty replies are never cached.
* **Single flight.** Threads that ask the same uncached question at the same time (same
  key, ``use_cache=True``) share one HTTP request and its outcome; ``stats["shared"]``
  counts the calls that waited on another thread's request.
* **Retries.** Which HTTP errors are worth another try is the ``openai`` client's own rule
  (``_should_retry``: 408, 409, 429, 5xx, the ``x-should-retry`` header, and no retry when the
  server's ``Retry-After`` exceeds its two-minute cap); connection errors, time-outs and the
  bad 200s above are retried too. The wait before a retry is the server's ``Retry-After`` /
  ``retry-after-ms`` (parsed by the ``openai`` client, HTTP dates included) capped at
  ``max_retry_after``, else ``backoff * 2**attempt`` capped at ``max_backoff``; at most
  ``max_retries`` retries, and none whose wait would pass the deadline (that call fails at
  once). The ``openai`` client's own retry loop is off (``max_retries=0`` there) because it
  cannot retry a bad 200, knows no overall deadline and sleeps with a fixed schedule; the
  loop here is the only one. Other HTTP errors (400, 401, 404...) fail at once.
  ``LLMError.transient`` tells a failure worth trying later (transport, 408/409/425/429/5xx,
  bad 200) from a definite refusal.
* **Secrets.** The API key is read from the environment (``api_key_env``, default
  ``OPENAI_API_KEY``) or given in code; it is never logged, never part of the cache key or a
  cache file, never shown by ``repr``, and is masked in every error message this module
  raises or logs.

The ``openai`` package is imported lazily, on the first request. Call :meth:`ChatClient.close`
(or use the client as a context manager) to stop its event-loop thread early; otherwise it
stops when the client is garbage-collected.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import logging
import math
import os
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["ChatClient", "DiskCache", "LLMError", "cache_key", "default_cache_dir", "resolve_api_key"]

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
# HTTP statuses that make a failure transient (worth trying later): request time-out, conflict,
# too early, rate limit; 5xx below. Whether to retry *now* is the openai client's rule.
_TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})


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


class _BadReply(Exception):
    """An HTTP 200 that carries no usable reply (no choices, no content, empty text)."""


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.close()


async def _close_and_stop(client: Any) -> None:
    try:
        await client.close()
    finally:
        asyncio.get_running_loop().stop()


def _shutdown(loop: asyncio.AbstractEventLoop, client: Any) -> None:
    """Close the async client's connections, then stop its loop. Never blocks, so it is safe
    from any thread (a finalizer may run on the loop's own thread)."""
    try:
        asyncio.run_coroutine_threadsafe(_close_and_stop(client), loop)
    except RuntimeError:  # the loop is already closed
        pass


async def _create(client: Any, kwargs: dict[str, Any]) -> Any:
    return await client.chat.completions.create(**kwargs)


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
        timeout: seconds for one attempt, whole: connect, send, headers, body and parse.
        max_retries: retries after the first attempt, for transient failures only.
        backoff, max_backoff: without a ``Retry-After`` from the server, the wait before
            retry ``n`` (0-based) is ``min(max_backoff, backoff * 2**n)``.
        deadline: seconds for one :meth:`chat` call, retries and waits included; ``None``
            means ``timeout * (max_retries + 1) + max_backoff * max_retries``.
        max_retry_after: the longest server-requested wait (``Retry-After``) honoured as is;
            longer ones (up to openai's own 120 s limit) are shortened to it, so a retry may come
            earlier than the server asked. Above 120 s the ``openai`` rule does not retry at all.
        default_params: request parameters merged under each call's (e.g. temperature).
        sleep: the sleep function for waits between retries (tests pass a fake).
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
        deadline: float | None = None,
        max_retry_after: float = 120.0,
        default_params: Mapping[str, Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not model:
            raise ValueError("ChatClient needs a model name (e.g. --model gpt-4o)")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if not (backoff >= 0 and max_backoff >= 0 and max_retry_after >= 0):
            raise ValueError("backoff, max_backoff and max_retry_after must be >= 0")
        if not (math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
        if deadline is not None and not (math.isfinite(deadline) and deadline > 0):
            raise ValueError(f"deadline must be a positive number of seconds (or None), got {deadline}")
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
        self.max_retry_after = float(max_retry_after)
        self.deadline = (
            float(deadline) if deadline is not None
            else self.timeout * (self.max_retries + 1) + self.max_backoff * self.max_retries
        )
        self.default_params = dict(default_params or {})
        self._sleep = sleep
        if cache_dir is False:
            self.cache: DiskCache | None = None
        else:
            self.cache = DiskCache(default_cache_dir() if cache_dir in (None, True) else cache_dir)  # type: ignore[arg-type]
        self._lock = threading.Lock()
        self._inflight: dict[str, concurrent.futures.Future[str]] = {}
        # The openai async client and the event-loop thread it runs on, made on first use.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._pid: int | None = None
        self._finalizer: weakref.finalize | None = None
        self.stats: dict[str, int] = {
            "calls": 0, "cache_hits": 0, "shared": 0, "requests": 0, "retries": 0, "failures": 0,
        }

    def __repr__(self) -> str:
        return f"ChatClient(model={self.model!r}, base_url={self.base_url!r}, cache={getattr(self.cache, 'root', None)!r})"

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections and stop the event-loop thread; call it when no
        :meth:`chat` is running (a later call starts a new thread)."""
        with self._lock:
            finalizer, thread = self._finalizer, self._thread
            self._loop = self._thread = self._client = self._finalizer = None
        if finalizer is not None:
            finalizer()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)

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

    def _runtime(self) -> tuple[asyncio.AbstractEventLoop, Any]:
        """The event loop (on its own daemon thread) and the ``openai.AsyncOpenAI`` on it."""
        with self._lock:
            if self._loop is None or self._pid != os.getpid():  # a forked child starts its own
                import openai

                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=_run_loop, args=(loop,), name="spatialrl-llm", daemon=True)
                thread.start()
                client = openai.AsyncOpenAI(
                    api_key=self.__key,
                    base_url=self.base_url,
                    timeout=self.timeout,  # httpx's per-read limits; the whole attempt is bounded in _attempt
                    max_retries=0,  # one retry loop only: ours (see the module docstring)
                )
                self._loop, self._thread, self._client, self._pid = loop, thread, client, os.getpid()
                self._finalizer = weakref.finalize(self, _shutdown, loop, client)
                self._finalizer.atexit = False
            return self._loop, self._client

    @staticmethod
    def _attempt(loop: asyncio.AbstractEventLoop, client: Any, kwargs: dict[str, Any], budget: float) -> Any:
        """One request on ``loop``; ``TimeoutError`` when ``budget`` seconds pass first, after
        cancelling it (the cancelled request closes its connection)."""
        future = asyncio.run_coroutine_threadsafe(_create(client, kwargs), loop)
        try:
            return future.result(timeout=budget)
        finally:
            future.cancel()  # a no-op once done

    @staticmethod
    def _is_transient_status(status: int) -> bool:
        return status in _TRANSIENT_STATUSES or status >= 500

    @staticmethod
    def _reply_text(response: Any) -> str:
        """The reply's text; :class:`_BadReply` when there is none (no choices, empty content)."""
        choices = getattr(response, "choices", None)
        if not choices:
            raise _BadReply("the server's reply has no choices")
        message = getattr(choices[0], "message", None)
        content = getattr(message, "content", None)
        if isinstance(content, list):  # content parts
            parts = []
            for part in content:
                text = part.get("text") if isinstance(part, dict) else getattr(part, "text", None)
                if isinstance(text, str):
                    parts.append(text)
            content = "".join(parts)
        elif content is not None and not isinstance(content, str):
            content = str(content)
        if not content or not content.strip():
            raise _BadReply("the server's reply is empty")
        return content

    def _request(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
        import openai

        kwargs = {"model": self.model, "messages": messages, **params}
        end = time.monotonic() + self.deadline
        attempt = 0
        while True:
            loop, client = self._runtime()  # the first call imports openai: on the clock too
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise LLMError(f"no reply within the {self.deadline:g} s deadline ({attempt} attempts)", transient=True)
            budget = min(self.timeout, remaining)
            self._bump("requests")
            retry_after: float | None = None
            try:
                response = self._attempt(loop, client, kwargs, budget)
                return self._reply_text(response)
            except TimeoutError:
                what, transient, retry = f"no complete reply within {budget:.3g} s", True, True
            except openai.APIStatusError as exc:
                what = f"{type(exc).__name__}: {exc}"
                transient = self._is_transient_status(int(getattr(exc, "status_code", 0) or 0))
                # the openai client's own rules: which statuses to retry, and the Retry-After it reads
                retry = client._should_retry(exc.response)
                retry_after = client._parse_retry_after_header(exc.response.headers)
                if retry_after is not None and not retry and transient:
                    what += f" (Retry-After {retry_after:g} s: longer than the openai client retries for)"
            except openai.APIConnectionError as exc:  # includes the client's APITimeoutError
                what, transient, retry = f"{type(exc).__name__}: {exc}", True, True
            except openai.APIResponseValidationError as exc:
                what, transient, retry = f"the reply does not fit the API schema: {exc}", True, True
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                what, transient, retry = f"HTTP 200 whose body is not JSON ({exc})", True, True
            except _BadReply as exc:
                what, transient, retry = str(exc), True, True
            except openai.OpenAIError as exc:
                what, transient, retry = f"{type(exc).__name__}: {exc}", False, False
            what = self.redact(what)
            if not retry:
                raise LLMError(f"request failed: {what}", transient=transient) from None
            if attempt >= self.max_retries:
                raise LLMError(f"request failed after {attempt + 1} attempts: {what}", transient=True) from None
            if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
                delay = min(retry_after, self.max_retry_after)  # the server's wait, capped
            else:
                delay = min(self.max_backoff, self.backoff * (2**attempt))
            if time.monotonic() + delay >= end:
                raise LLMError(
                    f"request failed after {attempt + 1} attempts: {what}; a retry in {delay:.3g} s "
                    f"would pass the {self.deadline:g} s deadline",
                    transient=True,
                ) from None
            log.warning("LLM request failed (%s); retry %d/%d in %.2fs", what, attempt + 1, self.max_retries, delay)
            self._bump("retries")
            attempt += 1
            if delay > 0:
                self._sleep(delay)

    def _cached(self, key: str) -> str | None:
        if self.cache is None:
            return None
        entry = self.cache.get(key)
        if entry is None:
            return None
        self._bump("cache_hits")
        return entry["reply"]

    def _fetch(self, key: str, msgs: list[dict[str, Any]], params: dict[str, Any]) -> str:
        """Request, then store the reply (a failure is counted and raised, never stored)."""
        try:
            reply = self._request(msgs, params)
        except LLMError:
            self._bump("failures")
            raise
        if self.cache is not None:
            try:
                self.cache.put(
                    key,
                    {"model": self.model, "messages": msgs, "params": params, "reply": reply, "created": time.time()},
                )
            except OSError as exc:  # a full disk must not lose the reply we already paid for
                log.warning("could not write LLM cache entry: %s", exc)
        return reply

    # -- public ----------------------------------------------------------------------------

    def chat(self, messages: Sequence[Mapping[str, Any]], *, use_cache: bool = True, **params: Any) -> str:
        """Send ``messages`` and return the reply's text (never empty).

        ``params`` (temperature, max_tokens, seed, response_format, ...) are passed to the
        server and are part of the cache key. ``use_cache=False`` skips the cache look-up
        (and the sharing of concurrent identical requests) but still stores the reply.
        Raises :class:`LLMError` when no reply could be had within ``deadline`` seconds; the
        text itself is returned as is (the caller parses it).
        """
        self._bump("calls")
        msgs = [dict(m) for m in messages]
        merged = {**self.default_params, **params}
        key = cache_key(self.model, msgs, merged)
        if not use_cache:
            return self._fetch(key, msgs, merged)
        hit = self._cached(key)
        if hit is not None:
            return hit
        with self._lock:
            pending = self._inflight.get(key)
            owner = pending is None
            if pending is None:
                pending = self._inflight[key] = concurrent.futures.Future()
        if not owner:  # single flight: wait for the thread already asking this
            self._bump("shared")
            try:
                return pending.result(timeout=self.deadline)
            except LLMError as exc:
                self._bump("failures")
                raise LLMError(str(exc), transient=exc.transient) from None
            except concurrent.futures.TimeoutError:
                self._bump("failures")
                raise LLMError(
                    f"no reply within the {self.deadline:g} s deadline (shared request)", transient=True
                ) from None
        try:
            hit = self._cached(key)  # another thread may have stored it since our look-up
            reply = hit if hit is not None else self._fetch(key, msgs, merged)
        except BaseException as exc:
            shared = exc if isinstance(exc, LLMError) else LLMError(
                f"the shared request was interrupted ({type(exc).__name__})", transient=True
            )
            pending.set_exception(shared)
            raise
        else:
            pending.set_result(reply)
            return reply
        finally:
            with self._lock:
                self._inflight.pop(key, None)
