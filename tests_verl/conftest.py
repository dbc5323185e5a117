"""Tests run in verl 0.9.1's own environment (`make test-verl`, .venv-verl); `make test` does not
collect this folder (pyproject's testpaths is ["tests"])."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def verl_export(tmp_path_factory):
    """A small `spatialrl data build --format verl` dataset: DIR with train.parquet / test.parquet."""
    from spatialrl.cli import main

    out = tmp_path_factory.mktemp("data") / "verl"
    assert main(["data", "build", "--out", str(out), "--scenes", "4", "--format", "verl", "--quiet"]) == 0
    return out


class CharTokenizer:
    """A stand-in tokenizer: one token per character (id = code point), 0 is padding."""

    pad_token_id = 0

    def encode(self, text):
        return [ord(c) for c in text]

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(int(i)) for i in ids if int(i) != 0)


@pytest.fixture
def char_tokenizer():
    return CharTokenizer()
