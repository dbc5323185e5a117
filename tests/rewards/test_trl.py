"""TRL-signature reward callables (spatialrl.rewards.trl)."""

import pickle
from types import SimpleNamespace

import pytest
from trl.trainer.utils import get_callable_name

from spatialrl.rewards import DEFAULT_E_MAX, DISCRETE_ERROR_SCALE, SharpnessSchedule, snra
from spatialrl.rewards.trl import (
    accuracy_reward,
    completion_text,
    format_reward_func,
    iou_reward_func,
    semantic_reward_func,
)

COLUMNS = {
    "answer_type": ["numerical", "numerical", "discrete", "discrete", "discrete", "grounding", "open_ended",
                    "numerical", "discrete"],
    "answer_value": [2.0, 2.0, None, None, None, None, None, 3.0, None],
    "dimension": ["length", "length", None, None, None, None, None, "count", None],
    "options": [[], [], ["chair", "table", "sofa"], ["chair", "table", "sofa"], [], [], [], [], []],
    "answer_index": [-1, -1, 1, 1, -1, -1, -1, -1, -1],
    "answer": ["2.0", "2.0", "B", "B", "yes", "[0, 0, 2, 2]", "The chair is about 1 m away.", "3", "left"],
    "bbox": [[], [], [], [], [], [0.0, 0.0, 2.0, 2.0], [], [], []],
}


def wrap(answer):
    return f"<think>reasoning</think><answer>{answer}</answer>"


COMPLETIONS = [wrap("2 m"), wrap("250 cm"), wrap("(B)"), wrap("A or B"), wrap("No."), wrap("[1, 1, 3, 3]"),
               wrap("one meter"), "3", [{"role": "assistant", "content": wrap("Left.")}]]


def test_accuracy_reward_uses_schedule_from_trainer_state():
    logged = {}
    reward = accuracy_reward(SharpnessSchedule("linear", 1.0, 11.0))
    state = SimpleNamespace(global_step=5, max_steps=10)  # k = 6
    out = reward(prompts=[None] * 9, completions=COMPLETIONS, trainer_state=state,
                 log_metric=lambda name, value: logged.setdefault(name, value), **COLUMNS)
    k = 6.0
    assert logged["sharpness/k"] == pytest.approx(k) and set(logged) == {"sharpness/k", "accuracy/correct"}
    expected = [
        1.0,  # 2 m == 2.0
        snra(0.25, k),  # 2.5 m vs 2.0: e = 0.25 (eq. 1)
        1.0,  # (B) is option 1
        snra(DISCRETE_ERROR_SCALE, k),  # "A or B" is ambiguous: scored as wrong
        snra(DISCRETE_ERROR_SCALE, k),  # no vs yes
        snra(DISCRETE_ERROR_SCALE * (1 - 1 / 7), k),  # IoU 1/7 -> Phi(1 - V)
        None,  # open-ended without a numeric truth: not this reward's business
        snra(DEFAULT_E_MAX, k),  # no answer tag: a parse failure gets e_max
        1.0,  # conversational completion, short phrase matched exactly
    ]
    assert out == pytest.approx(expected)


def test_accuracy_reward_sharpness_rises_with_steps():
    reward = accuracy_reward()  # paper sigmoid 1 -> 100
    cols = {k: v[1:2] for k, v in COLUMNS.items()}
    early = reward(completions=COMPLETIONS[1:2], trainer_state=SimpleNamespace(global_step=0, max_steps=100), **cols)
    late = reward(completions=COMPLETIONS[1:2], trainer_state=SimpleNamespace(global_step=100, max_steps=100), **cols)
    assert early[0] > late[0] > 0  # the same 0.5 m miss is punished harder late (reward hardening)
    assert reward(completions=COMPLETIONS[1:2], **cols)[0] == pytest.approx(early[0])  # no state: step 0


def test_format_iou_and_semantic_rewards():
    assert format_reward_func()(completions=COMPLETIONS) == [1.0] * 7 + [0.0, 1.0]
    iou = iou_reward_func()(completions=COMPLETIONS, **COLUMNS)
    assert iou[5] == pytest.approx(1 / 7) and all(v is None for i, v in enumerate(iou) if i != 5)
    semantic = semantic_reward_func()
    scores = semantic(completions=[wrap("couch"), wrap("lamp"), "couch"], answer=["sofa", "sofa", "sofa"])
    assert scores[0] > scores[1] and scores[2] == 0.0  # untagged: no answer to compare
    with pytest.raises(ValueError, match="answer"):
        semantic(completions=[wrap("x")])


def test_callables_are_named_and_picklable():
    for factory, name in [(accuracy_reward, "accuracy"), (format_reward_func, "format"),
                          (iou_reward_func, "iou"), (semantic_reward_func, "semantic")]:
        fn = factory()
        assert get_callable_name(fn) == name
        clone = pickle.loads(pickle.dumps(fn))
        assert get_callable_name(clone) == name


def test_bad_columns_are_named():
    reward = accuracy_reward()
    with pytest.raises(ValueError, match="answer_type"):
        reward(completions=[wrap("1 m")], answer_type=["numeric"], answer_value=[1.0], dimension=["length"])
    with pytest.raises(ValueError, match="answer_value"):
        reward(completions=[wrap("1 m"), wrap("2 m")], answer_type=["numerical"] * 2, answer_value=[1.0])
    with pytest.raises(ValueError, match="operator"):
        accuracy_reward(operator="relu")


def test_completion_text_shapes():
    assert completion_text("x") == "x"
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]) == "ab"
    assert completion_text(None) == "" and completion_text([]) == ""


def test_open_ended_relation_rows_get_an_accuracy_reward():
    """World rows with a left/right or closer-to-the-camera reference (about 3.6 % of rows) were
    None under the Smooth Operator recipes: once the format was learned their advantage was 0."""
    import json

    from spatialrl.data.build import BuildConfig, scene_rows
    from spatialrl.rewards import SharpnessSchedule
    from spatialrl.rewards.trl import accuracy_reward

    config = BuildConfig(scenes=40, seed=3, image_size=56, test_fraction=0.0)
    rows = [r for i in range(40) for r in scene_rows(i, config)
            if r["answer_type"] == "open_ended" and r["answer_value"] is None
            and json.loads(r["meta"])["template"] in ("left_right", "closer")]
    assert rows, "the world builds open-ended relation rows"
    keys = ("answer_type", "answer", "answer_value", "dimension", "options", "answer_index", "bbox")
    columns = {k: [r[k] for r in rows] for k in keys}
    reward = accuracy_reward(SharpnessSchedule.constant(1.0))
    right = reward(completions=[f"<answer>{r['answer']}</answer>" for r in rows], **columns)
    assert right == [1.0] * len(rows)
    flipped = []
    for r in rows:
        a = r["answer"]
        if a.startswith("The "):  # "The X is closer to the camera than the Y." -> swap X and Y
            near, far = a[4:].split(" is closer to the camera than the ")
            flipped.append(f"The {far.rstrip('.')} is closer to the camera than the {near}.")
        else:  # "Yes, ... left ..." <-> "No, ... right ..."
            flipped.append("No" if a.startswith("Yes") else "Yes")
    wrong = reward(completions=[f"<answer>{f}</answer>" for f in flipped], **columns)
    assert all(w is not None and w < 0.01 for w in wrong)
