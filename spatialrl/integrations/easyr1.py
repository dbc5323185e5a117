"""EasyR1's batch reward function: SNRA accuracy with Spatial-GRPO's view-consistency penalty.

EasyR1 (hiyouga/EasyR1) loads a reward function from a file
(``worker.reward.reward_function=./examples/easyr1/reward_function.py:compute_score``; that file
re-exports :func:`compute_score`) and calls it once per batch with a list of
``{"response", "response_length", "ground_truth"}``; ``ground_truth`` is the ``answer`` column of
``spatialrl data build --format easyr1``, a JSON object with every reward field and the pair
(:mod:`spatialrl.data.export`). It returns one ``{"overall", "accuracy", "format", ...}`` per
input; EasyR1 puts ``overall`` on the last response token.

What each score is, as in the TRL path (the TRL reward callables, assembled by the verl adapter's
batch stage, :func:`spatialrl.integrations.verl.score_batch`, which is the TRL trainer's
advantage step):

- ``accuracy``: SNRA r_hat (Smooth Operator eq. 1-3) at sharpness ``k``;
- ``format``: the binary format reward (eq. 4's r_fmt);
- with ``consistency``, SVQA-R1 eq. 2-4 on the accuracy component across each original/mirror
  pair present in the batch (pairs are adjacent rows of the export; keep ``data.shuffle=false``
  and an even ``rollout_batch_size``, since EasyR1 has no pair sampler);
- ``overall = accuracy_weight * accuracy + format_weight * format`` (eq. 4, weights 0.9 / 0.1),
  over the components that apply: a row whose accuracy does not apply (free text with no
  quantity) gets its format part only, and reports ``accuracy`` 0 with ``accuracy_applies`` 0.

Deviations from the papers, forced by EasyR1's interface: the function sees no training step,
so ``k`` is fixed for a run (eq. 5's schedule needs the step: use the verl or TRL path, or
resume with a larger ``k`` in stages), and EasyR1's estimator receives only token-level rewards,
so the advantage is EasyR1's GRPO, not AP-GRPO (eq. 8). ``docs/verl.md`` compares the paths.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from spatialrl.integrations.verl import sample_errors, score_batch, settings_from
from spatialrl.rewards.snra import DEFAULT_E_MAX

__all__ = ["REWARD_NAME", "REWARD_TYPE", "compute_score", "reward_fields"]

#: Read by EasyR1's reward manager.
REWARD_NAME = "spatialrl"
REWARD_TYPE = "batch"


def reward_fields(ground_truth: Any, index: int = 0) -> dict[str, Any]:
    """The reward fields of one EasyR1 ``ground_truth`` (the export's JSON text, or its dict)."""
    fields = ground_truth
    if not isinstance(fields, dict):
        try:
            fields = json.loads(ground_truth)
        except (TypeError, ValueError):
            fields = None
    if not isinstance(fields, dict):
        raise ValueError(f"reward input {index}: ground_truth is not spatialrl's JSON answer (build the data with "
                         f"`spatialrl data build --format easyr1`); got {str(ground_truth)[:80]!r}")
    missing = [key for key in ("answer_type", "answer", "pair_id", "view") if key not in fields]
    if missing:
        raise ValueError(f"reward input {index}: ground_truth lacks {missing} (rebuild with --format easyr1)")
    return fields


def compute_score(reward_inputs: list[dict[str, Any]], k: float = 10.0, operator: str = "sigmoid",
                  error_mode: str = "absolute", e_max: float = DEFAULT_E_MAX, accuracy_weight: float = 0.9,
                  format_weight: float = 0.1, require_think: bool = True, consistency: bool = True,
                  consistency_threshold: float = 0.5, consistency_eta: float = 1.0) -> list[dict[str, float]]:
    """Scores of a batch of EasyR1 reward inputs (see the module doc); extra keyword arguments
    come from ``worker.reward.reward_function_kwargs``."""
    if not (isinstance(k, (int, float)) and math.isfinite(k) and k > 0):
        raise ValueError(f"k must be a positive number (the SNRA sharpness), got {k!r}")
    texts = [str(item.get("response", "")) for item in reward_inputs]
    rows = [reward_fields(item.get("ground_truth"), i) for i, item in enumerate(reward_inputs)]
    # The verl adapter's batch stage: the same reward assembly as the TRL trainer's advantage step.
    settings = settings_from(sharpness_kind="fixed", k_min=float(k), k_max=float(k), sharpness=float(k),
                             snra_operator=operator, error_mode=error_mode, e_max=e_max, require_think=require_think,
                             rewards={"accuracy": accuracy_weight, "format": format_weight},
                             consistency_reward="accuracy" if consistency else None,
                             consistency_threshold=consistency_threshold, consistency_eta=consistency_eta)
    errors, formats = sample_errors(texts, rows, settings)
    batch = score_batch(errors, formats, settings, float(k), pair_ids=[row["pair_id"] for row in rows],
                        views=[row["view"] for row in rows])
    accuracy = batch.components[:, 0]
    applies = ~np.isnan(accuracy)
    return [{"overall": float(batch.scores[i]), "accuracy": float(accuracy[i]) if applies[i] else 0.0,
             "format": float(formats[i]), "accuracy_applies": float(applies[i])} for i in range(len(texts))]
