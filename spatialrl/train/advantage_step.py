"""The reward -> advantage step of SpatialGRPOTrainer, as one pure function.

For a generation batch (all processes' completions, G consecutive rows per prompt):

1. Spatial-GRPO (SVQA-R1 eq. 2-4): the view-consistency penalty is applied to one reward
   component (``consistency_reward``, e.g. the semantic reward, or SNRA accuracy in the
   combined method) across each original/mirror pair of groups present in the batch.
2. The total reward ``R = sum_f w_f r_f`` over the components that apply to a row (Smooth
   Operator eq. 4 with weights 0.9 / 0.1; SVQA-R1 eq. 1 with 0.5 / 0.5). A row for which no
   component applies is unscorable: it gets advantage 0 and stays out of its group's baseline.
3. The absolute term ``r_hat`` for AP-GRPO (Smooth Operator eq. 8): the first component of
   ``abs_rewards`` that applies to the row, after the penalty, clipped to [0, 1]. Our choice: a
   row where none applies gets ``r_hat = 1``, i.e. plain GRPO for that row.
4. Advantages per group with the estimator chosen by name (``spatialrl.advantages``).

Keeping this apart from the trainer lets tests check that the advantages the loss consumes are
this formula applied to the logged rewards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from spatialrl.advantages import advantage_diagnostics, compute_advantages
from spatialrl.rewards.consistency import apply_view_consistency, as_mirror_flags


@dataclass
class AdvantageSettings:
    """How rewards become advantages.

    Attributes:
        estimator: a name registered in ``spatialrl.advantages`` (grpo, ap_grpo, absolute, ...).
        alpha: exponent of the absolute term (AP-GRPO).
        clip: symmetric advantage clip, or None.
        eps: added to the group std.
        abs_rewards: components that may serve as the absolute term, in order of preference.
        consistency_reward: the component the view-consistency penalty acts on, or None.
        consistency_threshold: SVQA-R1's delta (0.5).
        consistency_eta: SVQA-R1's eta (1.0).
    """

    estimator: str = "ap_grpo"
    alpha: float = 1.0
    clip: float | None = 1.5
    eps: float = 1e-6
    abs_rewards: Sequence[str] = field(default_factory=lambda: ["accuracy"])
    consistency_reward: str | None = None
    consistency_threshold: float = 0.5
    consistency_eta: float = 1.0


@dataclass
class AdvantageStep:
    """Everything computed for one generation batch (arrays of length N)."""

    advantages: np.ndarray
    total_rewards: np.ndarray  # NaN for unscorable rows
    abs_rewards: np.ndarray
    rewards_per_func: np.ndarray  # after the consistency penalty
    deltas: np.ndarray  # eq. 2's delta per complete pair in the batch
    metrics: dict[str, float]


def spatial_advantages(
    rewards_per_func: Any,
    names: Sequence[str],
    weights: Sequence[float],
    group_ids: Sequence[Any],
    settings: AdvantageSettings,
    pair_ids: Sequence[Any] | None = None,
    is_mirror: Sequence[bool] | None = None,
) -> AdvantageStep:
    """Rewards of a generation batch -> advantages (see the module docstring).

    Args:
        rewards_per_func: ``(N, F)`` rewards, NaN where a component does not apply.
        names: the F component names (``accuracy``, ``format``, ``semantic``, ``iou``, ...).
        weights: the F weights of the total reward.
        group_ids: ``(N,)`` prompt group of each row.
        settings: estimator and Spatial-GRPO settings.
        pair_ids: ``(N,)`` pair id of each row's prompt (needed with ``consistency_reward``).
        is_mirror: ``(N,)`` whether each row's prompt is the mirrored view (booleans or 0/1; strings are refused).
    """
    rpf = np.array(rewards_per_func, dtype=np.float64, copy=True)
    if rpf.ndim != 2 or rpf.shape[1] != len(names):
        raise ValueError(f"rewards_per_func must have shape (N, {len(names)}), got {rpf.shape}")
    if len(weights) != len(names):
        raise ValueError(f"weights has {len(weights)} entries but there are {len(names)} reward components")
    n = rpf.shape[0]
    groups = np.asarray(list(group_ids))
    if len(groups) != n:
        raise ValueError(f"group_ids has {len(groups)} entries but there are {n} rows")
    metrics: dict[str, float] = {}

    deltas = np.zeros(0)
    if settings.consistency_reward is not None:
        if pair_ids is None or is_mirror is None:
            raise ValueError("the view-consistency penalty needs pair_ids and is_mirror for every row")
        col = list(names).index(settings.consistency_reward)
        applies = ~np.isnan(rpf[:, col])
        if applies.any():
            pids = np.asarray(list(pair_ids), dtype=object)[applies]
            mirrored = as_mirror_flags(is_mirror, n)[applies]
            penalised, deltas = apply_view_consistency(
                rpf[applies, col], pids, mirrored, settings.consistency_threshold, settings.consistency_eta
            )
            rpf[applies, col] = penalised
        metrics["consistency/pairs"] = float(len(deltas))
        metrics["consistency/delta"] = float(deltas.mean()) if len(deltas) else 0.0
        metrics["consistency/abs_delta"] = float(np.abs(deltas).mean()) if len(deltas) else 0.0
        metrics[f"consistency/{settings.consistency_reward}_after_penalty"] = (
            float(np.nanmean(rpf[:, col])) if applies.any() else 0.0
        )

    scorable = ~np.all(np.isnan(rpf), axis=1)
    total = np.where(scorable, np.nansum(rpf * np.asarray(weights, dtype=np.float64)[None, :], axis=1), np.nan)

    abs_rewards = np.ones(n)
    chosen = np.zeros(n, dtype=bool)
    for name in settings.abs_rewards:
        if name not in names:
            continue
        col = rpf[:, list(names).index(name)]
        take = ~chosen & ~np.isnan(col)
        abs_rewards[take] = np.clip(col[take], 0.0, 1.0)
        chosen |= take

    advantages = np.zeros(n)
    if scorable.any():
        advantages[scorable] = np.asarray(compute_advantages(
            settings.estimator,
            rewards=total[scorable],
            abs_rewards=abs_rewards[scorable],
            group_ids=groups[scorable].tolist(),
            alpha=settings.alpha,
            clip=settings.clip,
            eps=settings.eps,
        ), dtype=np.float64)
        metrics.update(advantage_diagnostics(advantages[scorable], total[scorable], groups[scorable].tolist(),
                                             abs_rewards=abs_rewards[scorable]))
    metrics["adv/unscorable_frac"] = float((~scorable).mean()) if n else 0.0
    return AdvantageStep(advantages, total, abs_rewards, rpf, deltas, metrics)
