"""Binary format reward (Smooth Operator eq. 4 r_fmt, SVQA-R1 sec. 3.2 r^f)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spatialrl.rewards import format_reward

CASES = [
    ("<think>the chair is near</think><answer>2.5 m</answer>", True, 1.0),
    ("  <think>\nmulti\nline\n</think>\n<answer> B </answer>\n", True, 1.0),
    ("<think></think><answer>B</answer>", True, 1.0),  # empty reasoning allowed
    ("<think>x</think><answer>  </answer>", True, 0.0),  # blank answer is a free point: refused
    ("<answer>B</answer><think>x</think>", True, 0.0),  # wrong order
    ("<think>x</think>", True, 0.0),
    ("<answer>B</answer>", True, 0.0),  # think required
    ("<think>a</think><think>b</think><answer>B</answer>", True, 0.0),  # two thinks
    ("<think>x</think><answer>A</answer><answer>B</answer>", True, 0.0),  # two answers
    ("<think>x<answer>A</answer></think><answer>B</answer>", True, 0.0),  # nested
    ("prefix <think>x</think><answer>B</answer>", True, 0.0),  # text outside the blocks
    ("<think>x</think><answer>B</answer> trailing", True, 0.0),
    ("<THINK>x</THINK><ANSWER>B</ANSWER>", True, 0.0),  # tags are case-sensitive
    ("<think>x</think><answer>B", True, 0.0),  # unclosed
    ("<answer>3 m</answer>", False, 1.0),
    ("<think>x</think><answer>3 m</answer>", False, 0.0),  # answer-only variant forbids think
    ("<answer>3 m</answer><answer>3 m</answer>", False, 0.0),
    ("", True, 0.0),
]


@pytest.mark.parametrize("text,require_think,expected", CASES)
def test_format_table(text, require_think, expected):
    assert format_reward(text, require_think) == expected


def test_non_strings_score_zero():
    assert format_reward(None) == 0.0
    assert format_reward(123) == 0.0


@given(st.text())
def test_never_raises(text):
    assert format_reward(text) in (0.0, 1.0)
    assert format_reward(text, require_think=False) in (0.0, 1.0)
