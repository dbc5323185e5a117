"""Dynamic sharpness schedules k(t) for SNRA (Smooth Operator sec. 3.3).

- ``sigmoid`` (eq. 5): ``k(t) = k_min + (k_max - k_min) * sigmoid(s * (t / T - tau))``,
  paper defaults k_min = 1, k_max = 100, tau = 0.5, s = 10 (sec. 3.3, 4.1).
- ``linear`` (Table 2, S4): ``k(t) = k_min + (k_max - k_min) * t / T``.
- ``fixed`` (Table 2, S2/S3): one k throughout; set ``k_min == k_max``.

Eq. 5 is used as written, so its endpoints are not exactly k_min and k_max:
``k(0) = k_min + (k_max - k_min) * sigmoid(-s * tau)`` (1.67 with the defaults) and
``k(T) = k_min + (k_max - k_min) * sigmoid(s * (1 - tau))`` (99.33). Steps past ``T`` are
clamped to ``T`` (a resumed run with extra steps keeps the final sharpness). The sigmoid is
evaluated in its numerically stable form, so any finite steepness works (a very large one
approaches a step from k_min to k_max at ``tau``); non-finite parameters are refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

KINDS = ("fixed", "linear", "sigmoid")


@dataclass(frozen=True)
class SharpnessSchedule:
    """Sharpness k(t) of the SNRA reward; call as ``schedule(step, total_steps) -> float``.

    Attributes:
        kind: ``"fixed"``, ``"linear"`` or ``"sigmoid"`` (eq. 5).
        k_min: sharpness at the start (> 0).
        k_max: sharpness at the end (>= k_min; equal to k_min for ``fixed``).
        tau: transition centre as a fraction of training, in (0, 1) (sigmoid only).
        steepness: ``s`` in eq. 5, > 0 (sigmoid only).
    """

    kind: str
    k_min: float
    k_max: float
    tau: float = 0.5
    steepness: float = 10.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"SharpnessSchedule.kind must be one of {KINDS}, got {self.kind!r}")
        for name in ("k_min", "k_max", "tau", "steepness"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"SharpnessSchedule.{name} must be a finite number, got {value!r}")
        if self.k_min <= 0:
            raise ValueError(f"SharpnessSchedule.k_min must be > 0, got {self.k_min}")
        if self.k_max < self.k_min:
            raise ValueError(f"SharpnessSchedule.k_max ({self.k_max}) must be >= k_min ({self.k_min})")
        if self.kind == "fixed" and self.k_max != self.k_min:
            raise ValueError(
                f"a fixed schedule has one k: set k_min == k_max (got k_min={self.k_min}, k_max={self.k_max}), "
                "or use SharpnessSchedule.constant(k)"
            )
        if not 0.0 < self.tau < 1.0:
            raise ValueError(f"SharpnessSchedule.tau must lie in (0, 1), got {self.tau}")
        if self.steepness <= 0:
            raise ValueError(f"SharpnessSchedule.steepness must be > 0, got {self.steepness}")

    @classmethod
    def constant(cls, k: float) -> "SharpnessSchedule":
        """A fixed schedule at ``k``."""
        return cls("fixed", k, k)

    @classmethod
    def paper(cls) -> "SharpnessSchedule":
        """The Smooth Operator default: sigmoid from 1 to 100, tau 0.5, s 10 (sec. 3.3, 4.1)."""
        return cls("sigmoid", 1.0, 100.0, 0.5, 10.0)

    def __call__(self, step: int | float, total_steps: int | float) -> float:
        if not total_steps > 0:
            raise ValueError(f"total_steps must be > 0, got {total_steps!r}")
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step!r}")
        progress = min(float(step) / float(total_steps), 1.0)
        span = self.k_max - self.k_min
        if self.kind == "fixed":
            return float(self.k_min)
        if self.kind == "linear":
            return self.k_min + span * progress
        return self.k_min + span * _sigmoid(self.steepness * (progress - self.tau))


def _sigmoid(z: float) -> float:
    """``1 / (1 + exp(-z))`` without overflow for any finite ``z`` (``math.exp`` only sees ``-|z|``)."""
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)
