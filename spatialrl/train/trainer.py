"""SpatialGRPOTrainer: TRL's GRPOTrainer with the papers' advantage step.

What changes against stock GRPO (trl 1.16.0, pinned: the method below is private in TRL):

- Advantages: ``_generate_and_score_completions`` runs TRL's generation and reward
  functions, then recomputes the advantages of the whole generation batch with
  ``spatialrl.train.advantage_step.spatial_advantages``: the Spatial-GRPO view-consistency
  penalty (SVQA-R1 eq. 2-4), the weighted total reward (Smooth Operator eq. 4 / SVQA-R1
  eq. 1), and an estimator chosen by name (AP-GRPO, Smooth Operator eq. 8, by default). The
  loss (TRL's clipped surrogate with beta-KL, Smooth Operator eq. 9) consumes exactly these.
- Logging: the completions table's advantages, ``reward``, ``reward_std`` and
  ``frac_reward_zero_std`` are replaced by the values the loss uses; ``adv/*`` (mean,
  variance per Smooth Operator sec. 4.3, zero-variance group fraction, near-miss use),
  ``consistency/*`` and the reward functions' ``sharpness/k`` are added.
- Sampling: with ``mirror_pairs`` a ``PairRepeatSampler`` keeps each original and its mirror
  in the same generation batch and on the same process. Without it, ``mirror_twins: drop``
  (default) keeps one view per question, so an epoch trains each question once.

- Resume: checkpoint weights are restored through ``from_pretrained`` (strict), because
  transformers' own resume path silently skips Qwen2.5-VL's renamed weights; checkpoints are
  written atomically where the Trainer allows, and resume takes the newest *complete* one
  (``spatialrl.train.checkpoints``).

Everything else (generation, KL against the reference model, clipping, accumulation, multi-GPU
through accelerate, optimizer and RNG state on resume) is TRL's and transformers'.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate.utils import gather_object
from trl import GRPOTrainer

from spatialrl.train.advantage_step import AdvantageSettings, spatial_advantages
from spatialrl.train.checkpoints import CheckpointWeightsMixin
from spatialrl.train.sampler import PairRepeatSampler
from spatialrl.train.shared_prompt import SharedPromptLogpsMixin

__all__ = ["SpatialGRPOTrainer", "left_pad", "vision_token_suppression"]


class SpatialGRPOTrainer(CheckpointWeightsMixin, SharedPromptLogpsMixin, GRPOTrainer):
    """GRPOTrainer with a named advantage estimator, Spatial-GRPO pairs and honest logging.

    Args (besides GRPOTrainer's):
        advantage_settings: how rewards become advantages (estimator, alpha, clip, penalty).
        pairs: ``(original, mirror)`` dataset index pairs; when given, generation batches hold
            whole pairs (``PairRepeatSampler``).
        pair_strata: a label per pair, one value per `stratify_pairs_by` column (e.g. its question
            type), for a stratified pair order (``PairRepeatSampler``).
        share_prompt: score each group on one pass over its shared prompt
            (:mod:`spatialrl.train.shared_prompt`).
    """

    def __init__(self, *args: Any, advantage_settings: AdvantageSettings | None = None,
                 pairs: list[tuple[int, int]] | None = None, pair_strata: list[tuple[str, ...]] | None = None,
                 share_prompt: bool = False, **kwargs: Any) -> None:
        self.advantage_settings = advantage_settings or AdvantageSettings()
        self.share_prompt = share_prompt
        self.pairs = pairs
        self.pair_strata = pair_strata
        self._captured_rewards: torch.Tensor | None = None
        left_pad(kwargs.get("processing_class"))
        super().__init__(*args, **kwargs)
        if self.advantage_settings.consistency_reward is not None:
            if self.advantage_settings.consistency_reward not in self.reward_func_names:
                raise ValueError(
                    f"consistency_reward {self.advantage_settings.consistency_reward!r} is not one of the reward "
                    f"functions {self.reward_func_names}"
                )
            if pairs is None:
                raise ValueError("the view-consistency penalty needs mirror pairs (pass pairs=..., mirror_pairs: true)")

    # -- sampling ---------------------------------------------------------------------
    def _get_train_sampler(self, dataset: Any = None) -> Any:
        if self.pairs is None:
            return super()._get_train_sampler(dataset)
        return PairRepeatSampler(
            self.pairs,
            mini_repeat_count=self.num_generations,
            batch_size=self.args.generation_batch_size // self.num_generations,
            repeat_count=self.num_iterations * self.args.steps_per_generation,
            shuffle=self.shuffle_dataset,
            seed=self.args.seed,
            strata=self.pair_strata,
        )

    # -- rewards -> advantages ---------------------------------------------------------
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._captured_rewards = rewards_per_func  # gathered over processes: (N_global, F)
        return rewards_per_func

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        mode = "train" if self.model.training else "eval"
        num_generations = self.num_generations if mode == "train" else self.num_generations_eval
        rewards_per_func = self._captured_rewards.detach().float().cpu().numpy()
        n_global = rewards_per_func.shape[0]
        pair_ids = gather_object([str(x.get("pair_id", x.get("id", ""))) for x in inputs])
        is_mirror = gather_object([x.get("view") == "mirror" for x in inputs])
        step = spatial_advantages(
            rewards_per_func,
            self.reward_func_names,
            self.reward_weights.tolist(),
            group_ids=(np.arange(n_global) // num_generations).tolist(),
            settings=self.advantage_settings,
            pair_ids=pair_ids,
            is_mirror=is_mirror,
        )
        local = slice(self.accelerator.process_index * len(inputs), (self.accelerator.process_index + 1) * len(inputs))
        old = output["advantages"]
        output["advantages"] = torch.as_tensor(step.advantages[local], dtype=old.dtype, device=old.device)

        # The logs must show what the loss uses: replace TRL's entries for this batch.
        logged = self._logs["advantages"]
        for _ in range(min(n_global, len(logged))):
            logged.pop()
        logged.extend(step.advantages.tolist())
        self._logs["extra"]["pair_id"].extend(pair_ids)
        self._logs["extra"]["view"].extend("mirror" if m else "original" for m in is_mirror)
        if mode == "train" and self.accelerator.is_main_process:
            self._log_generation(pair_ids, is_mirror, step)
        metrics = self._metrics[mode]
        total = step.total_rewards
        finite = total[np.isfinite(total)]
        for key, value in (("reward", float(finite.mean()) if finite.size else 0.0),
                           ("reward_std", float(finite.std(ddof=1)) if finite.size > 1 else 0.0),
                           ("frac_reward_zero_std", step.metrics.get("adv/zero_std_group_frac", 0.0))):
            if metrics[key]:
                metrics[key][-1] = value
        for key, value in step.metrics.items():
            if isinstance(value, float) and math.isnan(value):
                continue
            metrics[key].append(value)
        self.last_advantage_step = step
        return output

    def _log_generation(self, pair_ids: list[str], is_mirror: list[bool], step: Any) -> None:
        """Append one line per generation batch to ``output_dir/generations.jsonl``: the optimizer
        step it serves, the prompts (pair id and view, one per group) and the mean reward, so data
        order can be audited, also across a resume."""
        num_generations = self.num_generations
        prompts = [f"{pid}:{'m' if m else 'o'}" for pid, m in zip(pair_ids[::num_generations], is_mirror[::num_generations])]
        record = {"step": int(self.state.global_step) + 1, "prompts": prompts,
                  "reward_mean": float(np.nanmean(step.total_rewards)) if np.isfinite(step.total_rewards).any() else None}
        path = Path(self.args.output_dir) / "generations.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


def left_pad(processing_class: Any) -> None:
    """Make a processor pad on the left, as TRL does when it loads one itself.

    TRL re-tokenizes VLM prompts for the forward pass with the processor's own padding side;
    with right padding, ``mm_token_type_ids`` no longer line up with TRL's left-padded prompt
    ids and Qwen2.5-VL's 3-D rotary index fails (or silently mis-positions image tokens).
    """
    tokenizer = getattr(processing_class, "tokenizer", processing_class)
    if tokenizer is not None and hasattr(tokenizer, "padding_side"):
        tokenizer.padding_side = "left"


def vision_token_suppression(model_config: Any) -> dict[str, Any]:
    """Generation kwargs that forbid the vision special tokens in completions.

    TRL suppresses only the image token; a sampled ``<|vision_start|>`` or video token in a
    completion makes Qwen2.5-VL's 3-D rotary index count a phantom image and fail (seen with
    untrained policies). A trained model never emits them, so this costs nothing.
    """
    names = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")
    ids = sorted({int(getattr(model_config, n)) for n in names if getattr(model_config, n, None) is not None})
    return {"suppress_tokens": ids} if ids else {}
