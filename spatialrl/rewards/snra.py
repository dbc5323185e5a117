"""Smooth Numerical Reward Activation (SNRA) and the error maps it is applied to.

Implements Smooth Operator:

- eq. (1): numeric error ``e = (y_hat - y)^2`` in SI units (``numeric_error``);
- sec. 3.1 (ii): discrete error ``e = Phi(1 - V)`` for a verifier score ``V`` in [0, 1]
  (``discrete_error``);
- eq. (2): ``snra(e, k) = 2 / (1 + exp(k * e))``, in (0, 1], ``snra(0, k) = 1``;
- eq. (12) / Table 8: the shifted-tanh variant ``1 - tanh(k * e)`` (``snra_tanh``);
- eq. (4): the composite ``R = (1 - lambda) * r_hat + lambda * r_fmt`` (``composite_reward``);
- Table 2, S1: the binary 0/1 reward of plain GRPO (``binary_reward``), the limit of SNRA as
  ``k -> infinity`` (sec. 3.2, "reward hardening"), selectable as operator ``"binary"``.

Our choices (not in the paper):

- ``error_mode="relative"`` uses ``((y_hat - y) / max(|y|, min_scale))^2`` so that a room
  area and a cup height can share one k. Off by default.
- ``Phi`` is linear, ``Phi(x) = DISCRETE_ERROR_SCALE * x``. The paper only asks that a failed
  discrete answer land in "the high-penalty region"; we pick the scale so that ``V = 0`` gives
  ``snra(k_min=1, e) < 0.01``: ``2 / (1 + exp(5.3)) = 0.00993``.
- The parse-failure penalty ``e_max`` defaults to the same constant, and well-formed answers
  have their error clipped at ``e_max``: a wrong number must never score *below* an
  unparsable one, or the policy learns to emit garbage.
- The paper does not say when S1 counts a numeric answer as correct. ``binary_reward`` gives
  1.0 when the error is at most ``BINARY_TOLERANCE`` (0.01): within 10 cm in absolute mode,
  within 10 % in relative mode, an exact count, a correct discrete answer (``V = 1``), a box
  with IoU >= 0.998. It ignores k.
- In floating point the reward underflows to exactly 0.0 once ``k * e`` exceeds ~745; it is
  in (0, 1] only mathematically.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from spatialrl._arrays import as_float_array, like_input

#: Scale of the linear discrete-error map Phi: ``snra(1.0, DISCRETE_ERROR_SCALE) = 0.00993 < 0.01``.
DISCRETE_ERROR_SCALE = 5.3
#: Default parse-failure error (and the cap on any error): the same high-penalty point.
DEFAULT_E_MAX = DISCRETE_ERROR_SCALE


def _check_k(k: Any) -> float:
    try:
        k = float(k)
    except (TypeError, ValueError):
        raise ValueError(f"k (sharpness) must be a positive number, got {k!r}") from None
    if not (k > 0 and math.isfinite(k)):
        raise ValueError(f"k (sharpness) must be a positive finite number, got {k!r}")
    return k


def _check_error(error: Any) -> np.ndarray:
    e = as_float_array(error, "error")
    if e.size and e.min() < 0:
        raise ValueError(f"error must be >= 0 (a squared or verifier error), got min {e.min()!r}")
    return e


def snra(error: Any, k: Any) -> Any:
    """SNRA reward ``2 / (1 + exp(k * error))`` (Smooth Operator eq. 2).

    Args:
        error: non-negative error(s): float, sequence, numpy array or torch tensor of any shape.
        k: sharpness, a positive float (see ``SharpnessSchedule`` for k(t)).

    Returns:
        Same kind and shape as ``error``; 1.0 at zero error, decreasing in ``error``.

    Computed as ``2 * exp(-x) / (1 + exp(-x))`` with ``x = k * e >= 0``, which never overflows.

    >>> snra(0.0, 5.0)
    1.0
    >>> round(snra(1.0, 1.0), 6)
    0.537883
    """
    k = _check_k(k)
    e = _check_error(error)
    decay = np.exp(-k * e)
    return like_input(2.0 * decay / (1.0 + decay), error)


def snra_tanh(error: Any, k: Any) -> Any:
    """Shifted-tanh SNRA variant ``1 - tanh(k * error)`` (Smooth Operator eq. 12, Table 8).

    Same arguments and return kind as ``snra``; 1.0 at zero error, decays to 0.
    """
    k = _check_k(k)
    e = _check_error(error)
    return like_input(1.0 - np.tanh(k * e), error)


#: Error at or below which ``binary_reward`` counts an answer as correct.
BINARY_TOLERANCE = 0.01


def binary_reward(error: Any, k: Any = None) -> Any:
    """Binary 0/1 reward ``1[error <= BINARY_TOLERANCE]`` (Smooth Operator Table 2, S1).

    Same arguments and return kind as ``snra``; ``k`` is accepted for a common signature and
    ignored (the binary reward is SNRA's ``k -> infinity`` limit).

    >>> binary_reward(0.0), binary_reward(0.25)
    (1.0, 0.0)
    """
    e = _check_error(error)
    return like_input((e <= BINARY_TOLERANCE).astype(np.float64), error)


#: The reward operators by name, for configs (``operator: sigmoid | tanh | binary``).
OPERATORS = {"sigmoid": snra, "tanh": snra_tanh, "binary": binary_reward}


def numeric_error(
    prediction: Any,
    target: Any,
    *,
    mode: str = "absolute",
    e_max: float = DEFAULT_E_MAX,
    min_scale: float = 1e-3,
) -> Any:
    """Squared numeric error of a prediction in SI units (Smooth Operator eq. 1).

    Args:
        prediction: predicted value(s) in SI units; ``None`` (or NaN in an array) marks a parse
            failure, which gets ``e_max`` (sec. 3.1 (i)).
        target: ground-truth value(s) in SI units, finite.
        mode: ``"absolute"``: ``(y_hat - y)^2``; ``"relative"`` (our addition):
            ``((y_hat - y) / max(|y|, min_scale))^2``.
        e_max: the parse-failure error, also the cap on any error (see module docstring).
        min_scale: floor on ``|y|`` in relative mode, so ``y = 0`` does not divide by zero.

    Returns:
        A float for scalar inputs, else a float64 numpy array.
    """
    if mode not in ("absolute", "relative"):
        raise ValueError(f"mode must be 'absolute' or 'relative', got {mode!r}")
    if not (e_max > 0 and math.isfinite(e_max)):
        raise ValueError(f"e_max must be a positive finite number, got {e_max!r}")
    scalar = prediction is None or np.ndim(prediction) == 0
    if scalar and prediction is None:
        return float(e_max)
    if type(prediction) is float and type(target) in (float, int):
        return _scalar_error(prediction, float(target), mode, e_max, min_scale)  # the reward's hot path
    if not scalar and not isinstance(prediction, np.ndarray):
        prediction = [np.nan if p is None else p for p in prediction]
    pred = as_float_array(prediction, "prediction", allow_nan=True)
    y = as_float_array(target, "target")
    if pred.shape != y.shape and y.ndim != 0:
        raise ValueError(f"prediction has shape {pred.shape} but target has shape {y.shape}")
    diff = pred - y
    if mode == "relative":
        diff = diff / np.maximum(np.abs(y), min_scale)
    with np.errstate(over="ignore", invalid="ignore"):
        err = np.square(diff)
    err = np.where(np.isfinite(err), np.minimum(err, e_max), e_max)
    return float(err) if scalar else err


def _scalar_error(pred: float, y: float, mode: str, e_max: float, min_scale: float) -> float:
    """``numeric_error`` for two Python floats, without numpy (same result)."""
    if not math.isfinite(y):
        raise ValueError(f"target contains a non-finite value ({y!r}); rewards and errors must be finite numbers")
    diff = pred - y
    if mode == "relative":
        diff = diff / max(abs(y), min_scale)
    try:
        err = diff * diff
    except OverflowError:  # pragma: no cover - float multiplication gives inf, not an error
        return float(e_max)
    return min(err, e_max) if math.isfinite(err) else float(e_max)


def discrete_error(score: Any, scale: float = DISCRETE_ERROR_SCALE) -> Any:
    """Error of a discrete answer, ``Phi(1 - V)`` with linear ``Phi`` (Smooth Operator sec. 3.1 (ii)).

    Args:
        score: the verifier score ``V`` in [0, 1] (1 = correct; a box IoU gives partial credit);
            ``None`` (parse failure) counts as ``V = 0``.
        scale: the slope of ``Phi``; the default puts ``V = 0`` where ``snra(1, e) < 0.01``.
    """
    if score is None:
        return float(scale)
    v = as_float_array(score, "score")
    if v.size and (v.min() < 0 or v.max() > 1):
        raise ValueError(f"score (verifier V) must lie in [0, 1], got range [{v.min()}, {v.max()}]")
    return like_input(scale * (1.0 - v), score)


def composite_reward(accuracy: Any, format_score: Any, lam: float = 0.1) -> Any:
    """``R = (1 - lambda) * r_hat + lambda * r_fmt`` (Smooth Operator eq. 4, lambda = 0.1)."""
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam (lambda) must lie in [0, 1], got {lam!r}")
    r_hat = as_float_array(accuracy, "accuracy")
    r_fmt = as_float_array(format_score, "format_score")
    if r_hat.shape != r_fmt.shape:
        raise ValueError(f"accuracy has shape {r_hat.shape} but format_score has shape {r_fmt.shape}")
    return like_input((1.0 - lam) * r_hat + lam * r_fmt, accuracy)
