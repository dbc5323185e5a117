"""LLM judge against a real OpenAI-compatible HTTP server on 127.0.0.1 (started here, in a thread)."""

from __future__ import annotations

import logging

import pytest

from spatialrl.data.llm import ChatClient
from spatialrl.eval.judge import (
    OPEN_ENDED_PROMPT,
    YES_NO_PROMPT,
    Judge,
    judge_from_env,
    parse_verdict,
)
from tests.helpers.fake_openai import FakeOpenAI

SECRET = "sk-judge-test-4f1e-UNIQUE-a9b8"


def reply_by_prompt(prompt: str):
    if "Predicted answer: refuse" in prompt:
        return 400, ""
    if "Predicted answer: vague" in prompt:
        return 200, "It depends."
    if "Predicted answer: yes" in prompt and "ground-truth answer: Yes" in prompt:
        return 200, "1"
    if "Question: How far" in prompt:
        return 200, "<think>2.1 m vs 2 m: close</think>\n**1**"
    return 200, "0"


def _judge(server, cache, **kw):
    client = ChatClient("judge-model", base_url=server.base_url, api_key=SECRET, cache_dir=cache,
                        max_retries=0, backoff=0.0, timeout=5)
    return Judge(client, **kw)


def test_parse_verdict_never_raises():
    assert [parse_verdict(x) for x in ["1", "0", " 0 \n", "Output: 1.", "**1**", "1.0", "'0'"]] == [1, 1 - 1, 0, 1, 1, 1, 0]
    for bad in ["", "0 or 1", "10", "0.5", "yes", None, 3, b"1", "x" * 3000, "<think>1</think>"]:
        assert parse_verdict(bad) is None


def test_prompts_are_filled_literally():
    # SVQA-R1 appendix B.2, verbatim
    assert YES_NO_PROMPT.startswith("You are an evaluator. Given a Yes/No question, a ground-truth answer, and a "
                                    "predicted answer, determine whether the predicted answer means the same as "
                                    "the ground-truth answer.\nPredicted answer: {pred}, ground-truth answer: {gt}.\n")
    assert YES_NO_PROMPT.endswith("Output only 0 or 1, where 0 indicates incorrect and 1 indicates correct.")
    text = Judge.yes_no_prompt("yes {gt}", "Yes")  # braces in an answer are not placeholders
    assert "Predicted answer: yes {gt}, ground-truth answer: Yes.\n" in text
    assert "{question}" in OPEN_ENDED_PROMPT
    assert "Question: How far? {pred}" in Judge.open_prompt("How far? {pred}", "2 m", "2.1 m")


def test_judge_over_http_parsing_caching_malformed_and_key(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    cache = tmp_path / "cache"
    with FakeOpenAI(lambda body: reply_by_prompt(body["messages"][0]["content"])) as server:
        judge = _judge(server, cache, workers=3)
        assert judge.judge_yes_no("yes", "Yes, it is.") == 1
        assert judge.judge_yes_no("no", "Yes, it is.") == 0
        assert judge.judge_open("How far is the door?", "2.1 m", "2 m") == 1  # think block ignored
        assert judge.judge_yes_no("vague", "Yes") is None                    # malformed, counted
        assert judge.judge_yes_no("refuse", "Yes") is None                   # HTTP 400: failed, counted
        assert judge.stats == {"calls": 5, "malformed": 1, "failed": 1}
        assert len(server.requests) == 5
        body = server.requests[0]
        assert body["model"] == "judge-model" and body["temperature"] == 0.0 and body["max_tokens"] == 16
        assert body["messages"][0]["content"] == YES_NO_PROMPT.replace("{pred}", "yes").replace("{gt}", "Yes, it is.")

        # a rerun (new client, same cache): zero requests for what succeeded, the failure is retried
        again = _judge(server, cache, workers=3)
        verdicts = again.judge_many([
            {"kind": "yes_no", "pred": "yes", "gt": "Yes, it is."},
            {"kind": "yes_no", "pred": "no", "gt": "Yes, it is."},
            {"kind": "open", "question": "How far is the door?", "pred": "2.1 m", "gt": "2 m"},
            {"kind": "yes_no", "pred": "vague", "gt": "Yes"},
            {"kind": "yes_no", "pred": "refuse", "gt": "Yes"},
        ])
        assert verdicts == [1, 0, 1, None, None]
        assert len(server.requests) == 6  # only the refused one was sent again
        assert again.client.stats["cache_hits"] == 4
        assert again.stats == {"calls": 5, "malformed": 1, "failed": 1}
        with pytest.raises(ValueError, match="kind must be"):
            again.judge_many([{"kind": "other"}])

    # the key is never written: not in the cache files, not in the logs
    files = [p for p in cache.rglob("*") if p.is_file()]
    assert len(files) == 4
    assert all(SECRET not in p.read_text() for p in files)
    assert SECRET not in caplog.text
    assert "***" in caplog.text  # the server echoed the key in its error; it was masked


def test_judge_from_env(tmp_path):
    assert judge_from_env({}) is None
    judge = judge_from_env({"SPATIALRL_JUDGE_MODEL": "gpt-4o", "SPATIALRL_JUDGE_BASE_URL": "http://127.0.0.1:9/v1",
                            "SPATIALRL_JUDGE_CACHE": str(tmp_path)})
    assert judge.name == "gpt-4o"
    assert judge.client.base_url == "http://127.0.0.1:9/v1"
    with pytest.raises(ValueError, match="workers"):
        Judge(object(), workers=0)
