"""An adversarial table: reward-hacking attempts and tricky formats, scored end to end.

Each row is an answer a policy could emit, the ground truth it is scored against, and the
outcome: ``correct`` (accuracy reward 1.0), ``wrong`` (the floor: exactly what an unparsable
answer gets), or a number. Hedges ("A or B", "2 or 3 m", a range spanning everything, two
boxes) must never score above a plain wrong answer.
"""

import pytest

from spatialrl.rewards import DISCRETE_ERROR_SCALE, SharpnessSchedule, snra
from spatialrl.rewards.trl import accuracy_reward, format_reward_func

K = 1.0  # the gentlest sharpness: if a hedge earns nothing here it earns nothing later
FLOOR = snra(DISCRETE_ERROR_SCALE, K)  # 0.0099: an unparsable or wrong answer
OPTIONS = ["chair", "table", "sofa", "lamp"]

LENGTH = dict(answer_type="numerical", answer_value=2.0, dimension="length", options=[], answer_index=-1,
              answer="2.0", bbox=[])
COUNT = dict(answer_type="numerical", answer_value=3.0, dimension="count", options=[], answer_index=-1,
             answer="3", bbox=[])
CHOICE = dict(answer_type="discrete", answer_value=None, dimension=None, options=OPTIONS, answer_index=1,
              answer="B", bbox=[])
YES = dict(answer_type="discrete", answer_value=None, dimension=None, options=[], answer_index=-1,
           answer="yes", bbox=[])
BOX = dict(answer_type="grounding", answer_value=None, dimension=None, options=[], answer_index=-1,
           answer="[0, 0, 2, 2]", bbox=[0.0, 0.0, 2.0, 2.0])

TABLE = [
    # numeric hedges and malformed numbers (truth: 2.0 m)
    ("2 m", LENGTH, "correct"),
    ("200 cm", LENGTH, "correct"),
    ("two meters", LENGTH, "correct"),
    ("2", LENGTH, "correct"),  # bare number: meters
    ("2 m (200 cm)", LENGTH, "correct"),  # one quantity restated
    ("2 or 3 m", LENGTH, "wrong"),
    ("either 2 m or 4 m", LENGTH, "wrong"),
    ("2 m, no wait 3 m", LENGTH, "wrong"),
    ("2m 3m 4m 5m", LENGTH, "wrong"),
    ("between 0 and 100 meters", LENGTH, "wrong"),  # a range that covers everything is a hedge
    ("0-1000 m", LENGTH, "wrong"),
    ("nan m", LENGTH, "wrong"),
    ("inf meters", LENGTH, "wrong"),
    ("1e400 m", LENGTH, "wrong"),
    ("-2 m", LENGTH, "wrong"),
    ("2 bananas", LENGTH, "wrong"),
    ("2 m²", LENGTH, "wrong"),  # an area is not a length
    ("eval('1+1')", LENGTH, "wrong"),  # text is never evaluated
    ("1+1 m", LENGTH, "wrong"),  # an expression is not a quantity
    ("4/2 m", LENGTH, "correct"),  # a fraction literal: 2 m
    ("sqrt(4) m", LENGTH, "wrong"),
    ("", LENGTH, "wrong"),
    ("2 " * 5000 + "m", LENGTH, "wrong"),
    ("2.5 m", LENGTH, snra(0.25, K)),  # a near miss keeps a graded reward
    ("9 m", LENGTH, "wrong"),  # far off: clipped at e_max, never below garbage
    # counts (truth: 3)
    ("3", COUNT, "correct"),
    ("three chairs", COUNT, "correct"),
    ("3.5", COUNT, "wrong"),
    ("3 or 4", COUNT, "wrong"),
    # choices (truth: B = table)
    ("B", CHOICE, "correct"),
    ("(B)", CHOICE, "correct"),
    ("B. table", CHOICE, "correct"),
    ("the answer is B", CHOICE, "correct"),
    ("table", CHOICE, "correct"),
    ("B B", CHOICE, "correct"),
    ("A table", CHOICE, "correct"),  # the article is not option A
    ("A or B", CHOICE, "wrong"),
    ("A or B or C", CHOICE, "wrong"),
    ("A, B, C, D", CHOICE, "wrong"),
    ("ABCD", CHOICE, "wrong"),
    ("all of the above", CHOICE, "wrong"),
    ("chair or table", CHOICE, "wrong"),
    ("E", CHOICE, "wrong"),
    ("B. chair", CHOICE, "wrong"),  # letter and text disagree
    # yes / no (truth: yes)
    ("yes", YES, "correct"),
    ("Yes, it is.", YES, "correct"),
    ("yes and no", YES, "wrong"),
    ("Yes/No", YES, "wrong"),
    ("maybe", YES, "wrong"),
    ("no", YES, "wrong"),
    # boxes (truth: [0, 0, 2, 2])
    ("[0, 0, 2, 2]", BOX, "correct"),
    ("[0,0,1,1] or [0,0,2,2]", BOX, "wrong"),
    ("[2, 2, 0, 0]", BOX, "wrong"),
    ("[0, 0, 1000, 1000]", BOX, snra(DISCRETE_ERROR_SCALE * (1 - 4 / 1e6), K)),  # whole-image hedge ~ floor
]


def _score(answer_text, truth, *, tagged=True):
    completion = f"<think>x</think><answer>{answer_text}</answer>" if tagged else answer_text
    reward = accuracy_reward(SharpnessSchedule.constant(K))
    return reward(completions=[completion], **{k: [v] for k, v in truth.items()})[0]


def test_table_is_large_enough():
    assert len(TABLE) >= 40


@pytest.mark.parametrize("answer,truth,expected", TABLE, ids=[repr(r[0])[:40] for r in TABLE])
def test_adversarial_answer(answer, truth, expected):
    got = _score(answer, truth)
    if expected == "correct":
        assert got == 1.0
    elif expected == "wrong":
        assert got == pytest.approx(FLOOR)
    else:
        assert got == pytest.approx(expected)
        assert got <= 1.0


@pytest.mark.parametrize(
    "completion,accuracy,fmt",
    [
        ("<think>x</think><answer>5 m</answer> oh <answer>2 m</answer>", FLOOR, 0.0),  # two answers: wrong, format fails
        ("<think><answer>2 m</answer></think>", FLOOR, 0.0),  # the answer inside the reasoning: not final
        ("2 m", FLOOR, 0.0),  # untagged: unparsable for the reward
        ("<ANSWER>2 m</ANSWER>", 1.0, 0.0),
        ("<think>x</think><answer>2 m</answer>", 1.0, 1.0),
    ],
)
def test_tag_games(completion, accuracy, fmt):
    reward = accuracy_reward(SharpnessSchedule.constant(K))
    assert reward(completions=[completion], **{k: [v] for k, v in LENGTH.items()})[0] == pytest.approx(accuracy)
    assert format_reward_func()(completions=[completion]) == [fmt]
