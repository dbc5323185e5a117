"""Trainer callbacks and log files shared by the SFT and GRPO jobs.

- :class:`WallClockLimit`: stop training once a wall-clock budget is spent (the ``max_seconds``
  field of both job configs). ``spatialrl demo`` uses it to give its SFT control exactly the
  GRPO stage's measured training time.
- :func:`write_log_history`: ``trainer.state.log_history`` as JSON Lines, written atomically
  (``output_dir/log_history.jsonl``, what ``spatialrl report`` reads).

Nothing here imports torch; :func:`wall_clock_limit` imports transformers.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["WallClockLimit", "wall_clock_limit", "write_log_history"]


class WallClockLimit:
    """Stop a ``transformers.Trainer`` once ``max_seconds`` of wall-clock time have passed since
    ``on_train_begin``; checked after every optimiser step, so the last step always completes.
    The last step of the run (the clock's or ``max_steps``') is logged even between logging steps.

    Attributes after training: ``seconds`` (elapsed at the last check) and ``stopped`` (whether
    the limit, rather than ``max_steps``, ended the run). Use :func:`wall_clock_limit` to get an
    instance that is a ``transformers.TrainerCallback``.
    """

    def __init__(self, max_seconds: float, clock: Any = time.perf_counter) -> None:
        if not max_seconds > 0:
            raise ValueError(f"max_seconds must be > 0, got {max_seconds!r}")
        self.max_seconds = float(max_seconds)
        self.clock = clock
        self.start: float | None = None
        self.seconds = 0.0
        self.stopped = False

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        self.start = self.clock()
        self.seconds = 0.0
        self.stopped = False
        return control

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if self.start is None:  # pragma: no cover - the Trainer always calls on_train_begin first
            self.start = self.clock()
        self.seconds = self.clock() - self.start
        if self.seconds >= self.max_seconds and not control.should_training_stop:
            control.should_training_stop = True
            self.stopped = True
        if control.should_training_stop:
            # log the steps since the last logging step, whether the clock or max_steps ends the
            # run: a short run (the demo's control) would otherwise end without one loss logged
            control.should_log = True
        return control


def wall_clock_limit(max_seconds: float, clock: Any = time.perf_counter) -> Any:
    """A :class:`WallClockLimit` that is also a ``transformers.TrainerCallback``."""
    from transformers import TrainerCallback

    class _WallClockLimit(WallClockLimit, TrainerCallback):
        pass

    return _WallClockLimit(max_seconds, clock)


def write_log_history(path: str | os.PathLike, rows: list[dict[str, Any]]) -> Path:
    """Write ``rows`` (a trainer's ``state.log_history``) as JSON Lines, through a temporary file
    and a rename, so a reader never sees half a file."""
    from spatialrl._fs import write_text_atomic

    return write_text_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))
