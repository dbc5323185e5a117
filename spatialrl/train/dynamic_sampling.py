"""Dynamic sampling: drop prompt groups whose rewards do not differ and refill the batch.

This is DAPO's "dynamic sampling" (Yu et al. 2025, *DAPO: An Open-Source LLM Reinforcement
Learning System at Scale*, sec. 3.2, the constraint ``0 < |{o_i : is_equivalent(a, o_i)}| < G``),
**not** a method of either paper this package implements (Smooth Operator, SVQA-R1); neither
compares against it. It is here as a baseline for SNRA: a smooth reward leaves fewer groups with
zero spread, so it wastes fewer rollouts, and dynamic sampling is the other way to stop those
groups from diluting the batch.

A group whose G total rewards are all equal has zero advantage under every group-relative
estimator (``spatialrl.advantages``), so it adds nothing to the policy gradient but still counts
in the loss normaliser. With dynamic sampling on, :class:`spatialrl.train.trainer.SpatialGRPOTrainer`
drops such groups after a generation batch is scored and generates further prompts (up to
``max_rounds`` extra rounds) until the batch is full of groups with spread; if it is still short,
it keeps the zero-spread groups needed to fill it (their advantages are 0) and logs how many.
Deviations from DAPO: the criterion is the spread of the *total* reward the advantages use
(after the view-consistency penalty), not the accuracy alone; the number of extra rounds is
bounded.

Mirror pairs (Spatial-GRPO, SVQA-R1 eq. 2-4) are kept or dropped whole: a *unit* is one group, or
the consecutive groups of one pair. A pair is dropped only when **both** of its groups have zero
spread. Why: the consistency penalty compares the two views' mean rewards, so a pair must stay
whole; and a pair with one informative view still carries a gradient (DAPO drops only what
carries none), so dropping it would throw away signal just to remove its silent half.

This module holds the pure parts (no trainer state): which groups have zero spread, which units
fill the batch, and joining TRL 1.16 generation outputs (the dict returned by
``GRPOTrainer._generate_and_score_completions``) of several rounds into one: prompt ids/masks are
left-padded, completion ids/masks and per-token tensors right-padded, ``mm_token_type_ids`` (prompt
part left, completion part right), images follow their rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from spatialrl._extras import requires_extra

with requires_extra("train"):
    import torch

__all__ = ["BatchPlan", "RoundGroups", "assemble", "concat_outputs", "needs_refill", "pick_logged", "plan_batch",
           "take_rows", "units_of", "zero_spread_groups"]

#: Row tensors padded on the left (value: the pad token id for ids, 0 for masks).
LEFT_PADDED = ("prompt_ids", "prompt_mask")
#: Row tensors padded on the right, with their padding value (None: the pad token id). TRL pads
#: ``tool_mask`` with 1; every padded position is masked out by ``completion_mask`` anyway.
RIGHT_PADDED = {"completion_ids": None, "completion_mask": 0, "old_per_token_logps": 0.0,
                "ref_per_token_logps": 0.0, "sampling_per_token_logps": 0.0, "importance_sampling_ratio": 0.0,
                "tool_mask": 1}
#: Row tensors over prompt + completion positions: the prompt part is left-padded, the completion
#: part right-padded, with 0.
SPLIT_PADDED = ("mm_token_type_ids", "token_type_ids")
#: One value per row.
PER_ROW = ("advantages",)
#: Batch-level values the caller recomputes for the assembled batch.
RECOMPUTED = ("num_items_in_batch",)
#: Image-indexed tensors (Qwen2.5-VL): ``image_grid_thw`` has one row per image, ``pixel_values``
#: ``prod(grid)`` rows per image; ``num_images`` (a list, one entry per row) links them to rows.
IMAGE_KEYS = ("pixel_values", "image_grid_thw", "num_images")
KNOWN_KEYS = (*LEFT_PADDED, *RIGHT_PADDED, *SPLIT_PADDED, *PER_ROW, *RECOMPUTED, *IMAGE_KEYS)


def zero_spread_groups(total_rewards: Any, group_size: int, tol: float = 1e-8) -> np.ndarray:
    """Which groups carry no learning signal: ``(N,)`` total rewards, G consecutive rows per group
    -> ``(N / G,)`` booleans, True where the finite rewards of the group span at most ``tol`` (fewer
    than two finite rewards counts as zero spread: unscorable rows get advantage 0)."""
    rewards = np.asarray(total_rewards, dtype=np.float64).reshape(-1)
    if group_size < 1 or rewards.size % group_size:
        raise ValueError(f"{rewards.size} rewards do not split into groups of {group_size}")
    flags = []
    for group in rewards.reshape(-1, group_size):
        finite = group[np.isfinite(group)]
        flags.append(finite.size < 2 or float(finite.max() - finite.min()) <= tol)
    return np.asarray(flags, dtype=bool)


def units_of(keys: Sequence[Any] | None, n_groups: int) -> list[list[int]]:
    """The units kept or dropped together: runs of consecutive groups with the same key (a mirror
    pair's ``pair_id``; ``PairRepeatSampler`` lays a pair's two groups side by side), or one unit per
    group when ``keys`` is None."""
    if keys is None:
        return [[g] for g in range(n_groups)]
    if len(keys) != n_groups:
        raise ValueError(f"{len(keys)} keys for {n_groups} groups")
    units: list[list[int]] = []
    for g, key in enumerate(keys):
        if units and keys[units[-1][-1]] == key:
            units[-1].append(g)
        else:
            units.append([g])
    return units


@dataclass
class RoundGroups:
    """One generation round on this process: ``zero_spread`` per group, and its ``units``."""

    zero_spread: np.ndarray
    units: list[list[int]]

    def informative(self, unit: Sequence[int]) -> bool:
        # a unit carries a gradient unless every group in it has zero spread
        return not all(bool(self.zero_spread[g]) for g in unit)


@dataclass
class BatchPlan:
    """Which ``(round, group)`` fill the batch, and what happened to the rest.

    Attributes:
        picks: the groups of the assembled batch, in order.
        dropped_groups: zero-spread groups generated and left out.
        kept_zero_std_groups: zero-spread groups of uninformative units kept because the rounds
            ran out before the batch was full (their advantages are 0).
        zero_std_groups_in_kept_pairs: zero-spread groups kept as the silent half of an informative
            pair (see the module docstring).
        surplus_groups: informative groups generated but not needed (the last round overshot).
    """

    picks: list[tuple[int, int]]
    dropped_groups: int
    kept_zero_std_groups: int
    zero_std_groups_in_kept_pairs: int
    surplus_groups: int


def informative_groups(rounds: Sequence[RoundGroups]) -> int:
    """Groups in informative units over all rounds."""
    return sum(len(u) for r in rounds for u in r.units if r.informative(u))


def needs_refill(rounds: Sequence[RoundGroups], target_groups: int) -> bool:
    """Whether the informative groups generated so far are fewer than the batch holds."""
    return informative_groups(rounds) < target_groups


def plan_batch(rounds: Sequence[RoundGroups], target_groups: int) -> BatchPlan:
    """Fill ``target_groups`` with informative units, in generation order; if there are too few,
    top up with uninformative units, earliest first. Raises if units cannot fill it exactly."""
    informative = [(r, unit) for r, rg in enumerate(rounds) for unit in rg.units if rg.informative(unit)]
    silent = [(r, unit) for r, rg in enumerate(rounds) for unit in rg.units if not rg.informative(unit)]
    picks: list[tuple[int, int]] = []
    kept_zero = 0
    for pool, is_filler in ((informative, False), (silent, True)):
        for r, unit in pool:
            if len(picks) + len(unit) <= target_groups:
                picks += [(r, g) for g in unit]
                kept_zero += len(unit) if is_filler else 0
        if len(picks) == target_groups:
            break
    if len(picks) != target_groups:
        raise ValueError(f"units of sizes {sorted({len(u) for rg in rounds for u in rg.units})} cannot fill "
                         f"exactly {target_groups} groups")
    zero_total = sum(int(rg.zero_spread[g]) for rg in rounds for unit in rg.units for g in unit)
    zero_kept = sum(int(rounds[r].zero_spread[g]) for r, g in picks)
    all_groups = sum(len(u) for rg in rounds for u in rg.units)
    return BatchPlan(
        picks=picks,
        dropped_groups=zero_total - zero_kept,
        kept_zero_std_groups=kept_zero,
        zero_std_groups_in_kept_pairs=zero_kept - kept_zero,
        surplus_groups=all_groups - len(picks) - (zero_total - zero_kept),
    )


def _rows(output: dict[str, Any]) -> int:
    return int(output["prompt_ids"].shape[0])


def _pad(t: torch.Tensor, width: int, left: bool, value: float) -> torch.Tensor:
    extra = width - t.shape[1]
    if extra <= 0:
        return t
    fill = t.new_full((t.shape[0], extra, *t.shape[2:]), value)
    return torch.cat([fill, t] if left else [t, fill], dim=1)


def _check_keys(output: dict[str, Any]) -> None:
    unknown = sorted(k for k, v in output.items() if k not in KNOWN_KEYS and v is not None)
    if unknown:
        raise ValueError(f"dynamic sampling cannot re-pad generation outputs with {unknown}: it knows "
                         f"{sorted(KNOWN_KEYS)} (Qwen2.5-VL-style batches of trl 1.16); a newer TRL or another "
                         "model family needs this module extended")
    if "pixel_values" in output and ("image_grid_thw" not in output or "num_images" not in output):
        raise ValueError("pixel_values without image_grid_thw and num_images: rows cannot be matched to images")


def concat_outputs(outputs: Sequence[dict[str, Any]], pad_token_id: int) -> dict[str, Any]:
    """Stack several generation outputs row-wise, re-padding to the widest (``num_items_in_batch``
    is left out: it depends on the final batch, over all processes)."""
    for output in outputs:
        _check_keys(output)
    keys = [k for k in outputs[0] if outputs[0][k] is not None and k not in RECOMPUTED]
    for output in outputs[1:]:
        if sorted(k for k in output if output[k] is not None and k not in RECOMPUTED) != sorted(keys):
            raise ValueError("generation outputs of different rounds carry different keys")
    prompt_width = max(o["prompt_ids"].shape[1] for o in outputs)
    completion_width = max(o["completion_ids"].shape[1] for o in outputs)
    merged: dict[str, Any] = {}
    for key in keys:
        parts = [o[key] for o in outputs]
        if key in LEFT_PADDED:
            value = pad_token_id if key == "prompt_ids" else 0
            merged[key] = torch.cat([_pad(p, prompt_width, True, value) for p in parts])
        elif key in RIGHT_PADDED:
            value = pad_token_id if RIGHT_PADDED[key] is None else RIGHT_PADDED[key]
            # A sequence-level importance ratio is (B, 1) in every round; per-token tensors span the
            # completion, and when all of those are one wide there is nothing to pad either.
            sequence_level = all(p.shape[1] == 1 for p in parts)
            merged[key] = torch.cat(parts if sequence_level else [_pad(p, completion_width, False, value) for p in parts])
        elif key in SPLIT_PADDED:
            pieces = []
            for o, p in zip(outputs, parts):
                cut = o["prompt_ids"].shape[1]
                pieces.append(torch.cat([_pad(p[:, :cut], prompt_width, True, 0),
                                         _pad(p[:, cut:], completion_width, False, 0)], dim=1))
            merged[key] = torch.cat(pieces)
        elif key == "num_images":
            merged[key] = [n for p in parts for n in p]
        else:  # advantages, pixel_values, image_grid_thw: first dimension only
            merged[key] = torch.cat(parts)
    return merged


def take_rows(output: dict[str, Any], rows: Sequence[int]) -> dict[str, Any]:
    """The given rows of a generation output, in that order, with their images."""
    _check_keys(output)
    index = torch.as_tensor(list(rows), dtype=torch.long)
    taken: dict[str, Any] = {}
    for key, value in output.items():
        if value is None or key in RECOMPUTED or key in IMAGE_KEYS:
            continue
        taken[key] = value[index.to(value.device)]
    if "num_images" in output and output["num_images"] is not None:
        counts = [int(n or 0) for n in output["num_images"]]
        taken["num_images"] = [counts[r] for r in rows]
        if "pixel_values" in output:
            first_image = np.concatenate([[0], np.cumsum(counts)])
            patches = output["image_grid_thw"].prod(-1).tolist()
            first_patch = np.concatenate([[0], np.cumsum(patches)]).astype(int)
            images = [i for r in rows for i in range(first_image[r], first_image[r + 1])]
            patch_rows = [p for i in images for p in range(first_patch[i], first_patch[i + 1])]
            grid, pixels = output["image_grid_thw"], output["pixel_values"]
            taken["image_grid_thw"] = grid[torch.as_tensor(images, dtype=torch.long, device=grid.device)]
            taken["pixel_values"] = pixels[torch.as_tensor(patch_rows, dtype=torch.long, device=pixels.device)]
    return taken


def assemble(outputs: Sequence[dict[str, Any]], picks: Sequence[tuple[int, int]], group_size: int,
             pad_token_id: int) -> dict[str, Any]:
    """One generation output holding the picked ``(round, group)`` groups, G rows each, in order."""
    offsets = np.concatenate([[0], np.cumsum([_rows(o) for o in outputs])]).astype(int)
    rows = [int(offsets[r]) + g * group_size + j for r, g in picks for j in range(group_size)]
    return take_rows(concat_outputs(outputs, pad_token_id), rows)


def pick_logged(round_columns: Sequence[dict[Any, list]], picks: Sequence[tuple[int, int]],
                n_rows: int) -> dict[Any, list]:
    """The logged per-completion columns of the assembled batch: ``round_columns[r][column]`` holds
    round r's ``n_rows`` values over all processes; ``picks`` are ``(round, global row)``. A column
    that does not hold ``n_rows`` values in every round (not logged, or logged only in some rounds)
    is left out: its values cannot be matched to rows."""
    columns = set.intersection(*(set(c) for c in round_columns)) if round_columns else set()
    return {column: [round_columns[r][column][row] for r, row in picks] for column in columns
            if all(len(c[column]) == n_rows for c in round_columns)}
