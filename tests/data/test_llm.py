"""ChatClient against a real HTTP server on 127.0.0.1 speaking OpenAI's chat-completions JSON."""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai  # noqa: F401  (imported once here, so no timed call pays for it)
import pytest

from spatialrl.data.llm import ChatClient, DiskCache, LLMError, cache_key
from tests.helpers.fake_openai import FakeOpenAI, Raw, completion

SECRET = "sk-test-Zq8-DISTINCTIVE-7f3a9c"


def _client(server: FakeOpenAI, cache: Path, **kw) -> ChatClient:
    kw.setdefault("max_retries", 3)
    return ChatClient("fake-model", base_url=server.base_url, api_key=SECRET, cache_dir=cache, backoff=0.0, timeout=5, **kw)


MSGS = [{"role": "user", "content": "say hello"}]


def test_chat_returns_text_and_sends_key(tmp_path):
    with FakeOpenAI(lambda body: "hi " + body["messages"][0]["content"]) as server:
        client = _client(server, tmp_path / "cache")
        assert client.chat(MSGS, temperature=0.0) == "hi say hello"
    assert server.auth == [f"Bearer {SECRET}"]
    assert server.requests[0]["model"] == "fake-model"
    assert server.requests[0]["temperature"] == 0.0
    assert SECRET not in repr(client)


def test_cache_second_call_makes_no_request(tmp_path):
    cache = tmp_path / "cache"
    with FakeOpenAI() as server:
        assert _client(server, cache).chat(MSGS, temperature=0.0) == "hello"
        again = _client(server, cache)  # a fresh process / rerun
        assert again.chat(MSGS, temperature=0.0) == "hello"
        assert len(server.requests) == 1
        assert again.stats["cache_hits"] == 1 and again.stats["requests"] == 0
        again.chat(MSGS, temperature=0.5)  # other params: other key
        assert len(server.requests) == 2
    assert cache_key("m", MSGS, {"a": 1, "b": 2}) == cache_key("m", MSGS, {"b": 2, "a": 1})
    assert cache_key("m", MSGS, {}) != cache_key("m2", MSGS, {})


def test_corrupt_cache_entry_is_a_miss(tmp_path):
    cache = DiskCache(tmp_path)
    key = cache_key("fake-model", MSGS, {})
    path = tmp_path / key[:2] / f"{key}.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"key": "' + key + '", "reply": "torn')  # a torn write
    assert cache.get(key) is None
    with FakeOpenAI() as server:
        assert _client(server, tmp_path).chat(MSGS) == "hello"
    assert json.loads(path.read_text())["reply"] == "hello"
    assert not list(path.parent.glob("*.tmp"))  # atomic write leaves no temp file


def test_transient_500_is_retried(tmp_path):
    sleeps: list[float] = []
    with FakeOpenAI(statuses=[500, 503]) as server:
        client = ChatClient(
            "fake-model", base_url=server.base_url, api_key=SECRET, cache_dir=tmp_path,
            max_retries=3, backoff=0.25, max_backoff=0.3, sleep=sleeps.append, timeout=5,
        )
        assert client.chat(MSGS) == "hello"
    assert len(server.requests) == 3
    assert sleeps == [0.25, 0.3]  # exponential, capped
    assert client.stats["retries"] == 2


def test_retries_are_bounded_and_key_is_masked(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with FakeOpenAI(statuses=[500] * 10) as server:
        client = _client(server, tmp_path / "cache", max_retries=2)
        with pytest.raises(LLMError) as err:
            client.chat(MSGS)
    assert err.value.transient
    assert len(server.requests) == 3
    assert SECRET not in str(err.value)
    assert SECRET not in caplog.text
    assert not (tmp_path / "cache").exists() or not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))


def test_client_error_is_not_retried(tmp_path):
    with FakeOpenAI(statuses=[401]) as server:
        client = _client(server, tmp_path)
        with pytest.raises(LLMError) as err:
            client.chat(MSGS)
    assert not err.value.transient
    assert len(server.requests) == 1
    assert SECRET not in str(err.value)


def test_connection_refused_is_a_transient_error(tmp_path):
    with FakeOpenAI() as server:
        url = server.base_url
    client = ChatClient("m", base_url=url, api_key=SECRET, cache_dir=tmp_path, max_retries=1, backoff=0.0, timeout=2)
    with pytest.raises(LLMError) as err:
        client.chat(MSGS)
    assert err.value.transient
    assert client.stats["requests"] == 2


def test_key_never_written_to_cache(tmp_path):
    with FakeOpenAI() as server:
        _client(server, tmp_path).chat(MSGS)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files
    for p in files:
        assert SECRET not in p.read_text()


def test_missing_key_without_base_url_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("SPATIALRL_TEST_NO_SUCH_KEY", raising=False)
    with pytest.raises(ValueError, match="SPATIALRL_TEST_NO_SUCH_KEY"):
        ChatClient("m", api_key_env="SPATIALRL_TEST_NO_SUCH_KEY", cache_dir=False)


def test_key_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_LLM_KEY", SECRET)
    with FakeOpenAI() as server:
        ChatClient("m", base_url=server.base_url, api_key_env="MY_LLM_KEY", cache_dir=False).chat(MSGS)
    assert server.auth == [f"Bearer {SECRET}"]


# -- regression tests for issue 20 (each failed on the client before the fix) ----------------

def _in_thread(fn, limit: float):
    """Run ``fn`` in a daemon thread; ``(finished, result or exception, seconds)``. A call that
    outlives ``limit`` is reported unfinished instead of hanging the test."""
    out: dict = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            out["value"] = exc

    t0 = time.monotonic()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(limit)
    return not thread.is_alive(), out.get("value"), time.monotonic() - t0


def _cache_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.mark.parametrize("raw", [
    Raw(b"<html><body>502 Bad Gateway</body></html>", content_type="text/html"),
    Raw(b"not json{", content_type="application/json"),
    Raw(b"", content_type="application/json"),
], ids=["html", "broken-json", "empty-body"])
def test_non_json_200_is_a_transient_llm_error_and_retried(tmp_path, raw):
    cache = tmp_path / "cache"
    with FakeOpenAI(statuses=[raw]) as server:  # one bad 200, then a good reply
        client = _client(server, cache)
        assert client.chat(MSGS) == "hello"
        assert server.count == 2 and client.stats["retries"] == 1
    with FakeOpenAI(lambda body: raw) as server:  # only bad 200s: the module's own error
        client = _client(server, tmp_path / "c2", max_retries=1)
        with pytest.raises(LLMError) as err:
            client.chat(MSGS)
        assert err.value.transient and server.count == 2
    assert not _cache_files(tmp_path / "c2")


@pytest.mark.parametrize("raw", [
    Raw(completion("")), Raw(completion("  \n\t ")), Raw(completion(None)),
    Raw({"choices": []}), Raw({"id": "x"}), Raw([1, 2]),
], ids=["empty", "whitespace", "null-content", "no-choices", "no-choices-key", "not-an-object"])
def test_empty_reply_is_a_failure_and_never_cached(tmp_path, raw):
    cache = tmp_path / "cache"
    with FakeOpenAI(lambda body: raw) as server:
        client = _client(server, cache, max_retries=1)
        with pytest.raises(LLMError) as err:
            client.chat(MSGS)
        assert err.value.transient and server.count == 2  # retried like a transport failure
    assert not _cache_files(cache)
    with FakeOpenAI() as server:  # a later run asks again instead of reading "" from the cache
        assert _client(server, cache).chat(MSGS) == "hello"
        assert server.count == 1
    with FakeOpenAI(statuses=[raw]) as server:  # one empty reply, then a good one
        assert _client(server, tmp_path / "c2").chat(MSGS) == "hello"
        assert server.count == 2


@pytest.mark.parametrize("trickle_headers", [False, True], ids=["body", "status-line-and-headers"])
def test_trickling_server_cannot_outlast_the_deadline(tmp_path, trickle_headers):
    # one byte every 0.5 s: each read finishes well inside httpx's per-read timeout of 1 s
    slow = Raw(completion("hello"), trickle=0.5, trickle_headers=trickle_headers)
    with FakeOpenAI(lambda body: slow) as server:
        client = ChatClient("m", base_url=server.base_url, api_key=SECRET, cache_dir=tmp_path,
                            timeout=1.0, max_retries=0, backoff=0.0)
        done, value, seconds = _in_thread(lambda: client.chat(MSGS), limit=12.0)
        assert done, "the call outlived its 1 s deadline by far"
        assert isinstance(value, LLMError) and value.transient
        assert seconds < 5.0  # the reply trickles for a minute; slack for a loaded CI machine
        # with retries: the overall deadline bounds the whole call
        client = ChatClient("m", base_url=server.base_url, api_key=SECRET, cache_dir=tmp_path,
                            timeout=0.6, max_retries=10, backoff=0.0, deadline=1.5)
        done, value, seconds = _in_thread(lambda: client.chat(MSGS), limit=12.0)
        assert done and isinstance(value, LLMError) and value.transient
        assert seconds < 6.0
        assert "deadline" in str(value)
        client.close()
    assert not _cache_files(tmp_path)


def test_slow_attempt_is_cut_at_timeout_and_retried(tmp_path):
    with FakeOpenAI(statuses=[Raw(completion("slow"), trickle=0.3)]) as server:
        client = ChatClient("m", base_url=server.base_url, api_key=SECRET, cache_dir=tmp_path,
                            timeout=0.5, max_retries=2, backoff=0.0, deadline=5.0)
        done, value, seconds = _in_thread(lambda: client.chat(MSGS), limit=12.0)
        assert done and value == "hello"
        assert seconds < 6.0 and server.count == 2  # the slow reply alone trickles for ~30 s


def _rate_limited(**headers) -> Raw:
    return Raw({"error": {"message": "slow down", "type": "rate_limit"}}, status=429, headers=headers)


@pytest.mark.parametrize("headers, waited", [
    ({"Retry-After": "0.4"}, 0.4),
    ({"Retry-After": "1"}, 1.0),
    ({"retry-after-ms": "250"}, 0.25),
    ({"Retry-After": "60"}, 1.5),  # capped at max_retry_after
])
def test_retry_after_is_honoured_and_capped(tmp_path, headers, waited):
    sleeps: list[float] = []
    with FakeOpenAI(statuses=[_rate_limited(**headers)]) as server:
        client = ChatClient("m", base_url=server.base_url, api_key=SECRET, cache_dir=tmp_path, timeout=5,
                            max_retries=2, backoff=0.0, max_retry_after=1.5, sleep=sleeps.append)
        assert client.chat(MSGS) == "hello"
    assert sleeps == [pytest.approx(waited)]
    assert server.count == 2


def test_retry_after_beyond_the_deadline_fails_at_once(tmp_path):
    sleeps: list[float] = []
    with FakeOpenAI(statuses=[_rate_limited(**{"Retry-After": "30"})] * 5) as server:
        client = ChatClient("m", base_url=server.base_url, api_key=SECRET, cache_dir=tmp_path, timeout=1,
                            max_retries=4, backoff=0.0, deadline=3.0, sleep=sleeps.append)
        with pytest.raises(LLMError) as err:
            client.chat(MSGS)
    assert err.value.transient and "deadline" in str(err.value)
    assert sleeps == [] and server.count == 1  # no early retry against the server's wish


def test_single_flight_concurrent_identical_requests_share_one(tmp_path):
    workers = 4
    barrier = threading.Barrier(workers)
    with FakeOpenAI(delay=1.5) as server:  # long enough for every thread to arrive on a loaded machine
        client = _client(server, tmp_path)

        def ask():
            barrier.wait()
            return client.chat(MSGS, temperature=0.0)

        with ThreadPoolExecutor(workers) as pool:
            replies = list(pool.map(lambda _: ask(), range(workers)))
        assert replies == ["hello"] * workers
        assert server.count == 1
        assert client.stats["requests"] == 1 and client.stats["shared"] == workers - 1
        # different questions are not merged
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda i: client.chat([{"role": "user", "content": f"q{i}"}]), range(2)))
        assert server.count == 3


def test_single_flight_shares_the_failure_too(tmp_path):
    workers = 4
    barrier = threading.Barrier(workers)
    with FakeOpenAI(statuses=[401], delay=1.5) as server:
        client = _client(server, tmp_path)

        def ask():
            barrier.wait()
            try:
                return client.chat(MSGS)
            except LLMError as exc:
                return exc

        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(lambda _: ask(), range(workers)))
        assert server.count == 1
        assert all(isinstance(r, LLMError) and not r.transient for r in results)
        assert client.stats["failures"] == workers
        assert client.chat(MSGS) == "hello"  # nothing was cached: the next call asks again
        assert server.count == 2


def test_close_stops_the_event_loop_thread(tmp_path):
    with FakeOpenAI() as server:
        with _client(server, tmp_path) as client:
            assert client.chat(MSGS) == "hello"
            thread = client._thread
            assert thread is not None and thread.is_alive()
        assert not thread.is_alive()
        assert client.chat(MSGS, use_cache=False) == "hello"  # a closed client starts anew
        client.close()
