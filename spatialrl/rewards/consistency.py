"""Spatial-GRPO view-consistency penalty (SVQA-R1 sec. 3.3, eq. 2-4).

For a prompt and its mirrored twin, each sampled as a group of G completions with semantic
rewards ``r`` and ``r_mirror``:

- eq. (2): ``delta = mean(r) - mean(r_mirror)``;
- eq. (3): if ``delta >= 0``, every original sample with ``r_i > threshold`` loses ``eta * |delta|``;
- eq. (4): if ``delta < 0``, every mirrored sample with ``r_mirror_i > threshold`` loses ``eta * |delta|``.

Paper values: threshold (delta in the paper) 0.5, eta 1. Only the better view's confident
samples are penalised, so the policy gains by closing the gap between views, not by lowering
both. Advantages are computed afterwards, per group (eq. 5-6). As in the paper the penalised
reward is not clipped at 0. Our extension (docs/design.md, "Combined method"): the penalty may act on any
accuracy component (e.g. SNRA), not only the semantic reward.

Arguments are validated, never coerced silently: ``threshold`` must be a finite number and
``eta`` a finite number >= 0 (a NaN would otherwise turn the penalty off or the rewards into
NaN). ``is_mirror`` holds real booleans, or the integers 0 and 1 (numpy and torch bool or
integer arrays included); anything else, strings such as ``"False"`` in particular (which
Python reads as true), is a ``ValueError`` naming the offending entry.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from spatialrl._arrays import _is_torch, as_group_index, as_vector, like_input


def _check_settings(threshold: Any, eta: Any) -> None:
    """``ValueError`` unless ``threshold`` is finite and ``eta`` finite and >= 0."""
    for name, value in (("threshold", threshold), ("eta", eta)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r} (paper values: threshold 0.5, eta 1.0)")
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta} (0 turns the penalty off)")


def as_mirror_flags(is_mirror: Any, n: int, name: str = "is_mirror") -> np.ndarray:
    """``is_mirror`` as an ``(n,)`` bool array: booleans or 0/1 only, else ``ValueError`` naming ``name``."""
    if _is_torch(is_mirror):
        is_mirror = is_mirror.detach().to("cpu").numpy()
    if isinstance(is_mirror, np.ndarray) and is_mirror.dtype == bool:
        flags = is_mirror.reshape(-1) if is_mirror.ndim <= 1 else is_mirror
    else:
        values = is_mirror.tolist() if isinstance(is_mirror, np.ndarray) else list(is_mirror)
        flags = np.empty(len(values), dtype=bool)
        for i, value in enumerate(values):
            if isinstance(value, (bool, np.bool_)):
                flags[i] = bool(value)
            elif isinstance(value, numbers.Integral) and value in (0, 1):
                flags[i] = value == 1
            else:
                raise ValueError(
                    f"{name}[{i}] = {value!r} is not a boolean; pass True/False (or 1/0) per row, True for rows "
                    "of the mirrored prompt" + (" (strings are refused: bool('False') is True)"
                                                if isinstance(value, str) else "")
                )
    if flags.shape != (n,):
        raise ValueError(f"{name} has {flags.size} entries but there are {n} rewards; pass one flag per completion")
    return flags


def view_consistency_penalty(r: Any, r_mirror: Any, threshold: float = 0.5, eta: float = 1.0) -> tuple[Any, Any]:
    """Apply SVQA-R1 eq. 2-4 to one original/mirror pair of groups.

    Args:
        r: rewards of the original view's group, shape ``(G,)``.
        r_mirror: rewards of the mirrored view's group, shape ``(G',)`` (usually ``G' = G``).
        threshold: only samples whose reward exceeds it are penalised (paper: 0.5).
        eta: penalty scale (paper: 1.0).

    Returns:
        ``(r, r_mirror)`` after the penalty, each the same kind as its input.
    """
    _check_settings(threshold, eta)
    a = as_vector(r, "r")
    b = as_vector(r_mirror, "r_mirror")
    if a.size == 0 or b.size == 0:
        raise ValueError("r and r_mirror must each hold at least one reward")
    delta = float(a.mean() - b.mean())
    penalty = eta * abs(delta)
    if delta >= 0:
        a = np.where(a > threshold, a - penalty, a)
    else:
        b = np.where(b > threshold, b - penalty, b)
    return like_input(a, r), like_input(b, r_mirror)


def apply_view_consistency(
    rewards: Any,
    pair_ids: Any,
    is_mirror: Any,
    threshold: float = 0.5,
    eta: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Batched eq. 2-4 over a flat batch holding whole original/mirror groups.

    Args:
        rewards: ``(N,)`` rewards the penalty acts on (e.g. the semantic reward).
        pair_ids: ``(N,)`` pair id of each completion's prompt (the original and its mirror share it).
        is_mirror: ``(N,)`` True (or 1) for completions of the mirrored prompt, False (or 0) otherwise.

    Returns:
        ``(penalised (N,), deltas (P,))`` where ``deltas`` holds eq. 2's delta for each pair with
        both views present, in first-seen pair order. Pairs missing one view are left unchanged
        and excluded from ``deltas``.
    """
    _check_settings(threshold, eta)
    original = as_vector(rewards, "rewards")
    values = original.copy()
    pair_index, n_pairs = as_group_index(pair_ids, len(values), "pair_ids")
    mirror = as_mirror_flags(is_mirror, len(values))
    deltas = []
    for p in range(n_pairs):
        in_pair = pair_index == p
        orig, mirr = in_pair & ~mirror, in_pair & mirror
        if not orig.any() or not mirr.any():
            continue
        values[orig], values[mirr] = view_consistency_penalty(values[orig], values[mirr], threshold, eta)
        deltas.append(float(original[orig].mean() - original[mirr].mean()))
    return values, np.asarray(deltas, dtype=np.float64)
