"""Trainer callbacks: the wall-clock limit stops training on the clock; log histories are written whole."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from spatialrl.train.callbacks import (
    T_CONV_KEY,
    WallClockLimit,
    training_diagnostics,
    wall_clock_limit,
    write_diagnostics,
    write_log_history,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_wall_clock_limit_stops_after_the_budget():
    clock = FakeClock()
    limit = WallClockLimit(10.0, clock=clock)
    control = SimpleNamespace(should_training_stop=False, should_log=False)
    limit.on_train_begin(None, None, control)
    clock.now += 9.9
    limit.on_step_end(None, None, control)
    assert not control.should_training_stop and not limit.stopped and not control.should_log
    clock.now += 0.2
    limit.on_step_end(None, None, control)
    assert control.should_training_stop and limit.stopped and limit.seconds == pytest.approx(10.1)
    assert control.should_log, "the last step is logged even between logging steps"
    # a run that max_steps ended is not reported as stopped by time
    other = WallClockLimit(10.0, clock=clock)
    done = SimpleNamespace(should_training_stop=True, should_log=False)
    other.on_train_begin(None, None, done)
    clock.now += 20
    other.on_step_end(None, None, done)
    assert not other.stopped and done.should_log, "the last step is logged whatever ended the run"


def test_wall_clock_limit_is_a_trainer_callback_and_rejects_bad_budgets():
    from transformers import TrainerCallback

    assert isinstance(wall_clock_limit(5), TrainerCallback)
    for bad in (0, -1.0):
        with pytest.raises(ValueError, match="max_seconds"):
            WallClockLimit(bad)


def test_write_log_history_round_trips(tmp_path):
    rows = [{"step": 1, "loss": 2.5}, {"step": 2, "loss": float("nan")}, {"train_runtime": 3.0}]
    path = write_log_history(tmp_path / "sub" / "log_history.jsonl", rows)
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[0]) == rows[0] and json.loads(lines[2]) == rows[2]
    assert [p.name for p in path.parent.iterdir()] == ["log_history.jsonl"], "no temporary file is left"


def _history(accuracy: list[float | None]) -> list[dict]:
    rows = [{"loss": 0.0, T_CONV_KEY: a, "rewards/format/mean": 1.0, "step": s} for s, a in enumerate(accuracy, 1)]
    rows.append({"train_runtime": 1.0, "train_loss": 0.0, "step": len(accuracy)})  # the trainer's summary row
    return rows


def test_training_diagnostics_records_t_conv_of_the_smoothed_accuracy_reward(tmp_path):
    # accuracy reward mean per step: rises to ~0.8, with one noisy spike at step 3
    acc = [0.2, 0.3, 0.9, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.8, 0.8, 0.8]
    d = training_diagnostics(_history(acc))
    assert d["t_conv_series"] == "accuracy/correct" and d["t_conv_window"] == 5
    assert d["t_conv_fraction"] == 0.95 and d["t_conv_logged_steps"] == 12
    # trailing means over 5: max 0.79 at step 12, threshold 0.7505; step 10: 0.73, step 11: 0.77
    assert d["t_conv_acc_max"] == pytest.approx(0.79) and d["t_conv"] == 11
    assert training_diagnostics(_history(acc), window=1)["t_conv"] == 3  # raw: the spike alone
    written = write_diagnostics(tmp_path / "diagnostics.json", _history(acc))
    assert json.loads((tmp_path / "diagnostics.json").read_text()) == written == d


def test_training_diagnostics_without_an_accuracy_reward():
    rows = [{"loss": 0.0, "rewards/semantic/mean": 0.5, "step": 1}]
    d = training_diagnostics(rows)
    assert d["t_conv"] is None and d["t_conv_logged_steps"] == 0


def test_t_conv_is_measured_on_the_k_free_accuracy_not_on_the_falling_snra_reward():
    """Under a rising sharpness k(t) the SNRA reward of an improving policy falls (its curve peaks
    at the start), while the share answered correctly rises: T_conv must follow the latter."""
    from spatialrl.rewards import SharpnessSchedule
    from spatialrl.rewards.trl import accuracy_reward

    reward, schedule = accuracy_reward(), SharpnessSchedule.paper()
    rows = []
    for step in range(1, 21):
        error = 0.3 * (1 - step / 20)  # the policy improves: 0.285 m off at step 1, exact at step 20
        completions = [f"<answer>{2.0 + error:.4f} m</answer>"] * 4 + ["<answer>2.0 m</answer>"] * (step // 5)
        n = len(completions)
        logged = {}
        state = type("State", (), {"global_step": step, "max_steps": 20})()
        r = reward(completions=completions, trainer_state=state, log_metric=logged.__setitem__,
                   answer_type=["numerical"] * n, answer_value=[2.0] * n, dimension=["length"] * n,
                   options=[[]] * n, answer_index=[-1] * n, answer=["2"] * n, bbox=[[]] * n)
        rows.append({"step": step, "rewards/accuracy/mean": sum(r) / n, **logged})
    assert schedule(1, 20) < schedule(20, 20)
    snra = training_diagnostics([{k: v for k, v in row.items() if k != "accuracy/correct"} for row in rows])
    correct = training_diagnostics(rows)
    assert correct["t_conv_series"] == "accuracy/correct" and correct["t_conv"] >= 15
    assert snra["t_conv_series"] == "rewards/accuracy/mean" and snra["t_conv"] < correct["t_conv"]
