"""ChatClient against a real HTTP server on 127.0.0.1 speaking OpenAI's chat-completions JSON."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from spatialrl.data.llm import ChatClient, DiskCache, LLMError, cache_key
from tests.helpers.fake_openai import FakeOpenAI

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
