"""Trainer callbacks: the wall-clock limit stops training on the clock; log histories are written whole."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from spatialrl.train.callbacks import (
    WallClockLimit,
    wall_clock_limit,
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
