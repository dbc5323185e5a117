"""The metrics of one finished cell, read from its files.

A trained cell's directory holds the GRPO run's ``log_history.jsonl`` and ``diagnostics.json``
and the evaluation's ``scores.json`` and sampled answers; a start cell only the evaluation. Each
metric is a number or ``None`` (not measured: a start cell has no training metrics, a run
without the accuracy reward no ``T_conv``). What each one is (:data:`METRICS`):

- held-out accuracy, greedy and sampled (the world scorer's macro average over question types,
  percent; sampled is the mean over ``sample_k`` answers per item at the GRPO temperature);
- Smooth Operator sec. 4.3: ``t_conv`` (``min{t : Acc_t >= 0.95 Acc_max}`` on the training
  accuracy curve, :mod:`spatialrl.train.callbacks`) and ``adv_variance`` (the group-wise variance
  of the advantages, ``adv/variance``, mean over steps);
- ``zero_var_frac`` (groups whose rewards are all equal, ``adv/zero_std_group_frac``) and
  ``near_miss_use`` (imperfect answers that get a non-zero advantage, ``adv/near_miss_use``),
  means over steps of the estimator trained;
- SVQA-R1: ``pair_consistency`` (held-out mirror pairs with both views right or both wrong) and
  ``consistency_gap`` (mean ``|s_original - s_mirror|`` over held-out pairs), both from the world
  scorer's ``metrics.pairs``;
- ``train_seconds``: the GRPO stage's training wall-clock (generation included).

Pure functions over files and dicts; nothing here imports torch.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

__all__ = ["METRICS", "TRAINING_LOG_KEYS", "cell_metrics", "mean_logged", "sampled_scores"]

#: metric -> (what it is, unit). The verdict rule reads ``expect`` from the claim, not from here.
METRICS: dict[str, tuple[str, str]] = {
    "greedy": ("held-out accuracy, greedy answers (macro over question types)", "%"),
    "sampled": ("held-out accuracy, sampled answers at the GRPO temperature (mean over k per item)", "%"),
    "pair_consistency": ("held-out mirror pairs answered right on both views or wrong on both", "%"),
    "consistency_gap": ("mean |score(original) - score(mirror)| over held-out mirror pairs", "points"),
    "t_conv": ("T_conv: first step whose smoothed training accuracy reaches 0.95 of its maximum", "steps"),
    "adv_variance": ("advantage variance within groups (adv/variance), mean over steps", ""),
    "zero_var_frac": ("groups whose rewards are all equal (adv/zero_std_group_frac), mean over steps", "fraction"),
    "near_miss_use": ("imperfect answers with a non-zero advantage (adv/near_miss_use), mean over steps", "fraction"),
    "train_seconds": ("GRPO training wall-clock, generation included", "s"),
}

#: Training metrics read as means over the logged steps: metric -> log key.
TRAINING_LOG_KEYS = {
    "adv_variance": "adv/variance",
    "zero_var_frac": "adv/zero_std_group_frac",
    "near_miss_use": "adv/near_miss_use",
}


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def mean_logged(rows: Sequence[dict[str, Any]], key: str) -> float | None:
    """Mean of ``key`` over the training rows of a log history (one value per step; the
    first row of a step wins; evaluation rows and non-finite values are skipped)."""
    by_step: dict[Any, float] = {}
    for row in rows:
        step, value = row.get("step"), _finite(row.get(key))
        if value is None or step is None or step in by_step:
            continue
        by_step[step] = value
    return sum(by_step.values()) / len(by_step) if by_step else None


def sampled_scores(benchmark: Any, items: Sequence[Any], samples_path: Path) -> dict[str, Any]:
    """Held-out sampled accuracy from a samples file (``{"id", "samples": [k texts]}`` lines):
    each item scores the mean over its samples; ``overall`` is the macro average over types."""
    from spatialrl.demo import item_scores, overall_of

    rows: dict[str, list[str | None]] = {}
    with open(samples_path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                rows[row["id"]] = row["samples"]
    missing = [item.id for item in items if item.id not in rows]
    if missing:
        raise ValueError(f"{samples_path}: no samples for {len(missing)} evaluation items (e.g. {missing[0]}); "
                         "the cell did not finish: delete its directory and run again")
    k = len(rows[items[0].id]) if items else 0
    flat_items = [item for item in items for _ in range(k)]
    flat = item_scores(benchmark, flat_items, [text for item in items for text in rows[item.id]])
    per_item = [sum(flat[i * k:(i + 1) * k]) / k for i in range(len(items))]
    return {**overall_of(per_item, [benchmark.type_of(item) for item in items]), "k": k, "items": len(items)}


def cell_metrics(scores: dict[str, Any], sampled: dict[str, Any] | None, log_rows: Sequence[dict[str, Any]] | None,
                 diagnostics: dict[str, Any] | None, train_seconds: float | None) -> dict[str, Any]:
    """Every :data:`METRICS` value of one cell (``None`` where not measured), plus the per-type
    scores. ``scores`` is the world scorer's report of the greedy answers; ``sampled`` is
    :func:`sampled_scores`' result; the training arguments are ``None`` for a start cell."""
    pairs = (scores.get("metrics") or {}).get("pairs") or {}
    values: dict[str, Any] = {name: None for name in METRICS}
    values["greedy"] = _finite(scores.get("overall"))
    values["pair_consistency"] = _finite(pairs.get("consistency")) if pairs.get("count") else None
    values["consistency_gap"] = _finite(pairs.get("mean_score_gap")) if pairs.get("count") else None
    if sampled is not None:
        values["sampled"] = _finite(sampled.get("overall"))
    if log_rows is not None:
        for name, key in TRAINING_LOG_KEYS.items():
            values[name] = mean_logged(log_rows, key)
    if diagnostics is not None:
        values["t_conv"] = _finite(diagnostics.get("t_conv"))
    values["train_seconds"] = _finite(train_seconds)
    return {
        "metrics": values,
        "per_type": {"greedy": dict(scores.get("per_type") or {}),
                     "sampled": dict((sampled or {}).get("per_type") or {})},
        "per_view": dict((scores.get("metrics") or {}).get("per_view") or {}),
    }
