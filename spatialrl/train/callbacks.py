"""Trainer callbacks and log files shared by the SFT and GRPO jobs.

- :class:`WallClockLimit`: stop training once a wall-clock budget is spent (the ``max_seconds``
  field of both job configs). ``spatialrl demo`` uses it to give its SFT control exactly the
  GRPO stage's measured training time.
- :func:`write_log_history`: ``trainer.state.log_history`` as JSON Lines, written atomically
  (``output_dir/log_history.jsonl``, what ``spatialrl report`` reads).
- :func:`training_diagnostics`: whole-run diagnostics computed from a log history, written by the
  GRPO job as ``output_dir/diagnostics.json`` and shown by ``spatialrl report``. Today: Smooth
  Operator's convergence steps ``T_conv = min{t : Acc_t >= 0.95 Acc_max}`` (sec. 4.3, Table 2).

  The accuracy series ``Acc_t`` is ``accuracy/correct``, logged by the accuracy reward each step:
  the share of its samples answered correctly by the binary rule (error at most 0.01, Table 2's
  S1), which does not depend on the sharpness k(t). The SNRA reward's own mean would not do: under
  a rising k(t) the same answers earn less r_hat later, so its curve peaks in the first steps
  whatever the policy learns. Logs written before that key existed fall back to
  ``rewards/accuracy/mean``, and the diagnostics say which series was used. The series is smoothed
  by a trailing mean over the last ``T_CONV_WINDOW`` = 5 logged values (fewer at the start),
  because one step's mean over a few dozen completions is noisy and its maximum would otherwise
  be one lucky step. Steps are the logged optimiser steps (with ``logging_steps`` > 1, T_conv is
  known to that resolution). The paper does not say which accuracy it tracks; ours is a training
  curve, not a benchmark score. A run without an accuracy reward (SVQA-R1's recipe) has no T_conv.

Nothing here imports torch; :func:`wall_clock_limit` imports transformers.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["T_CONV_KEY", "T_CONV_KEYS", "T_CONV_WINDOW", "WallClockLimit", "training_diagnostics", "wall_clock_limit",
           "write_diagnostics", "write_log_history"]

#: The logged accuracy series T_conv is computed on: the k-free share answered correctly.
T_CONV_KEY = "accuracy/correct"
#: The series tried in order (the second for logs written before the first existed).
T_CONV_KEYS = (T_CONV_KEY, "rewards/accuracy/mean")
#: Trailing-mean window, in logged values, applied to that series before T_conv.
T_CONV_WINDOW = 5


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


def _logged_series(rows: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """``(steps, values)`` of ``key`` in a log history, by step; a step's first row with the key wins."""
    by_step: dict[float, float] = {}
    for row in rows:
        step, value = row.get("step"), row.get(key)
        if key not in row or not isinstance(step, (int, float)) or isinstance(step, bool) or step in by_step:
            continue
        by_step[step] = float("nan") if value is None else float(value)
    steps = sorted(by_step)
    return [float(s) for s in steps], [by_step[s] for s in steps]


def training_diagnostics(rows: list[dict[str, Any]], accuracy_key: str | None = None,
                         window: int = T_CONV_WINDOW) -> dict[str, Any]:
    """Whole-run diagnostics of a GRPO log history (``trainer.state.log_history`` rows).

    Returns ``t_conv`` (Smooth Operator sec. 4.3; ``None`` when ``accuracy_key`` was never
    logged; by default the first of ``T_CONV_KEYS`` the rows hold), the smoothed ``t_conv_acc_max`` and ``t_conv_threshold`` it was measured against,
    and how: ``t_conv_series`` (the log key), ``t_conv_window``, ``t_conv_fraction`` and
    ``t_conv_logged_steps`` (how many logged values the curve had). See the module docstring
    for the choice of series.
    """
    from spatialrl.advantages import CONVERGENCE_FRACTION, convergence

    if accuracy_key is None:
        accuracy_key = next((k for k in T_CONV_KEYS if any(k in row for row in rows)), T_CONV_KEY)
    steps, values = _logged_series(rows, accuracy_key)
    result = convergence(values, steps, fraction=CONVERGENCE_FRACTION, window=window)
    return {
        "t_conv": result["t_conv"],
        "t_conv_acc_max": result["acc_max"],
        "t_conv_threshold": result["threshold"],
        "t_conv_series": accuracy_key,
        "t_conv_window": window,
        "t_conv_fraction": CONVERGENCE_FRACTION,
        "t_conv_logged_steps": len(steps),
    }


def write_diagnostics(path: str | os.PathLike, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Write :func:`training_diagnostics` of ``rows`` to ``path`` (JSON, atomically); returns them."""
    from spatialrl._fs import write_text_atomic

    diagnostics = training_diagnostics(rows)
    write_text_atomic(path, json.dumps(diagnostics, indent=2) + "\n")
    return diagnostics
