"""Fixtures shared across the test packages."""

from __future__ import annotations

import pytest

import spatialrl.answers as answers


@pytest.fixture(scope="module")
def surface_parser_errors():
    """A parser bug must raise in tests instead of hiding as ``None`` behind the never-raise guard."""
    old = answers._RAISE_INTERNAL_ERRORS
    answers._RAISE_INTERNAL_ERRORS = True
    yield
    answers._RAISE_INTERNAL_ERRORS = old
