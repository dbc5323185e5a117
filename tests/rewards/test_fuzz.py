"""Property-based fuzz of the reward path, as GRPO calls it: 10,000 generated completions.

No string may raise, and every reward must be ``None`` (does not apply) or lie in [0, 1].
``benchmarks/reward_fuzz.py`` runs the same check on a million strings and also reports
slow calls.
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spatialrl.answers import extract_answer, parse_bbox, parse_choice, parse_quantity, parse_yes_no
from spatialrl.answers.fuzz import FRAGMENTS, random_completion, row_for
from spatialrl.answers.relations import parse_nearer, parse_side
from spatialrl.rewards import SharpnessSchedule
from spatialrl.rewards.trl import accuracy_reward, format_reward_func

ACCURACY = accuracy_reward(SharpnessSchedule.constant(1.0))
FORMAT = format_reward_func()

texts = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=5)), max_size=20).map(" ".join),
)


pytestmark = pytest.mark.usefixtures("surface_parser_errors")


def _check_reward(value):
    assert value is None or (isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= 1.0), value


@settings(max_examples=10_000, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(texts, st.integers(min_value=0, max_value=2**32 - 1))
def test_reward_path_never_raises_and_stays_in_range(text, seed):
    rng = random.Random(seed)
    row = row_for(rng)
    for completion in (text, f"<answer>{text}</answer>", f"<think>x</think><answer>{text}</answer>"):
        _check_reward(ACCURACY(completions=[completion], **{k: [v] for k, v in row.items()})[0])
        assert FORMAT(completions=[completion])[0] in (0.0, 1.0)
    answer = extract_answer(f"<answer>{text}</answer>")
    assert answer is None or isinstance(answer, str)
    for dimension in ("length", "area", "count"):
        value = parse_quantity(text, dimension)
        assert value is None or (math.isfinite(value) and value >= 0)
    choice = parse_choice(text, ["chair", "table", "left", "right"])
    assert choice is None or 0 <= choice < 4
    assert parse_yes_no(text) in (None, True, False)
    box = parse_bbox(text)
    assert box is None or (len(box) == 4 and box[0] <= box[2] and box[1] <= box[3])
    assert parse_side(text) in (None, "left", "right")
    assert parse_nearer(text, ["chair", "table"]) in (None, 0, 1)


def test_generated_completions_in_one_batch():
    """The fragment generator of the 1M benchmark, scored in GRPO-sized batches."""
    rng = random.Random(0)
    for _ in range(20):
        completions = [random_completion(rng) for _ in range(64)]
        rows = [row_for(rng) for _ in range(64)]
        columns = {key: [row[key] for row in rows] for key in rows[0]}
        for value in ACCURACY(completions=completions, **columns):
            _check_reward(value)
        assert set(FORMAT(completions=completions)) <= {0.0, 1.0}
