"""SpatialGRPOTrainer: TRL's GRPOTrainer with the papers' advantage step, and the `train` job.

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
from trl import GRPOConfig, GRPOTrainer

from spatialrl.train.advantage_step import AdvantageSettings, spatial_advantages
from spatialrl.train.checkpoints import CheckpointWeightsMixin, last_complete_checkpoint
from spatialrl.train.sampler import PairRepeatSampler, find_pairs, mirror_twins
from spatialrl.train.shared_prompt import SharedPromptLogpsMixin

#: Dataset columns the rewards do not need (large strings); dropped from the training set.
UNUSED_COLUMNS = ("scene_json", "meta")


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


# ------------------------------------------------------------------------------------------
# The `train` job
# ------------------------------------------------------------------------------------------


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


def build_reward_functions(cfg: Any) -> tuple[list[Any], list[float]]:
    """The TRL reward callables and weights named in ``cfg.rewards``."""
    from spatialrl.rewards.trl import (
        accuracy_reward,
        format_reward_func,
        iou_reward_func,
        semantic_reward_func,
    )

    factories = {
        "accuracy": lambda: accuracy_reward(cfg.sharpness_schedule(), operator=cfg.snra_operator,
                                            error_mode=cfg.error_mode, e_max=cfg.e_max),
        "format": lambda: format_reward_func(require_think=cfg.require_think),
        "semantic": semantic_reward_func,
        "iou": iou_reward_func,
    }
    funcs, weights = [], []
    for name, weight in cfg.rewards.items():
        if name not in factories:
            raise ValueError(f"rewards: unknown component {name!r}; choose from {sorted(factories)}")
        funcs.append(factories[name]())
        weights.append(float(weight))
    return funcs, weights


def prepare_dataset(cfg: Any, log: Any = print) -> tuple[Any, list[tuple[int, int]] | None]:
    """The training split in TRL's conversational format, and its mirror pairs when requested.

    ``max_samples`` takes a seeded subset of whole pairs (as the SFT stage does). Rows without a
    twin are dropped when ``mirror_pairs`` is on, and counted in the log. With ``mirror_pairs`` off
    and ``mirror_twins: drop`` (the default), mirrored rows whose question also has its original
    view are dropped before ``max_samples``, so an epoch trains each question once; also logged.
    """
    from spatialrl.data.load import load_split, sample_rows

    drop_twins = not cfg.mirror_pairs and cfg.mirror_twins == "drop"
    ds = load_split(cfg.dataset, cfg.train_split, max_samples=None if drop_twins else cfg.max_samples,
                    question_types=cfg.question_types, seed=getattr(cfg, "seed", 0), whole_pairs=True)
    if drop_twins and {"pair_id", "view"} <= set(ds.column_names):
        twins = set(mirror_twins(ds["pair_id"], ds["view"]))
        if twins:
            log(f"mirror_twins=drop: dropped {len(twins)} of {len(ds)} rows of {cfg.train_split}, the mirrored twins "
                "of questions whose original view stays (mirror_twins=keep trains both views)")
            ds = ds.select([i for i in range(len(ds)) if i not in twins])
    if drop_twins:
        ds = sample_rows(ds, cfg.max_samples, seed=getattr(cfg, "seed", 0), whole_pairs=True)
    ds = ds.remove_columns([c for c in UNUSED_COLUMNS if c in ds.column_names])
    pairs = None
    if cfg.mirror_pairs:
        pairs, lonely = find_pairs(ds["pair_id"], ds["view"])
        if lonely:
            log(f"mirror_pairs: dropped {len(lonely)} of {len(ds)} rows that have no twin in {cfg.train_split}")
            ds = ds.select(sorted(i for p in pairs for i in p))
            pairs, _ = find_pairs(ds["pair_id"], ds["view"])

    from spatialrl.data.export import with_trl_prompts
    from spatialrl.models import prompt_separator

    separator = prompt_separator(cfg.model)  # the prompt the start model learned, else Table 9's
    # One placeholder per image and TRL's ``images`` column (several per row for a multi-frame
    # row): GRPOTrainer fills each prompt's placeholders from its own list, so one batch may mix
    # rows with different image counts.
    return with_trl_prompts(ds, separator), pairs


def last_checkpoint(output_dir: str | Path, log: Any = print) -> str | None:
    """The newest complete ``checkpoint-N`` folder under ``output_dir``, or None; newer incomplete
    ones (a save that was killed) are skipped with a line to ``log`` saying why."""
    return last_complete_checkpoint(output_dir, log=log)


def train_grpo(cfg: Any, resume: bool = False, callbacks: list[Any] | None = None, log: Any = print,
               progress: Any = None) -> dict[str, Any]:
    """Run the GRPO job described by ``cfg`` (a ``GRPOJobConfig``); returns a summary.

    With ``resume`` the run continues from the newest checkpoint in ``cfg.output_dir`` (same
    data order, schedule step, optimizer and RNG state); without one it starts fresh. With
    ``cfg.max_seconds`` training stops once that much wall-clock time has passed
    (:class:`spatialrl.train.callbacks.WallClockLimit`). The summary's ``seconds`` is the time
    spent in ``trainer.train()`` (generation and optimisation, not loading or saving).
    ``progress``: a ``TrainerCallback`` that replaces the Trainer's progress bar and its printing
    of every log dict (None keeps them).
    """
    import time

    from spatialrl.train.callbacks import wall_clock_limit, write_diagnostics, write_log_history

    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    from spatialrl.models import load_model_and_processor

    output_dir = Path(cfg.output_dir)
    checkpoint = last_checkpoint(output_dir, log=log) if resume else None
    if resume and checkpoint is None:
        log(f"--resume: no checkpoint in {output_dir}; starting from the beginning")
    dtype = torch.bfloat16 if cfg.bf16 and not cfg.resolved_use_cpu() else torch.float32
    model, processor = load_model_and_processor(cfg.model, dtype=dtype)
    dataset, pairs = prepare_dataset(cfg, log=log)
    pair_strata = None
    if pairs is not None and cfg.stratify_pairs_by is not None:
        names = [name.strip() for name in cfg.stratify_pairs_by.split(",")]
        missing = [name for name in names if name not in dataset.column_names]
        if missing:
            raise ValueError(f"stratify_pairs_by: the training split has no column {missing[0]!r}; "
                             f"its columns are {dataset.column_names}")
        columns = [dataset[name] for name in names]
        pair_strata = [tuple(str(column[original]) for column in columns) for original, _ in pairs]
        log(f"stratify_pairs_by={cfg.stratify_pairs_by}: {len({label[0] for label in pair_strata})} strata "
            f"over {len(pairs)} pairs")
    funcs, weights = build_reward_functions(cfg)
    grpo_args = cfg.to_grpo_args()
    grpo_args["generation_kwargs"] = {**vision_token_suppression(model.config), **(grpo_args.get("generation_kwargs") or {})}
    args = GRPOConfig(**grpo_args, reward_weights=weights)
    peft_config = cfg.lora_config()
    settings = AdvantageSettings(
        estimator=cfg.advantage, alpha=cfg.alpha, clip=cfg.adv_clip, eps=cfg.adv_eps, abs_rewards=list(cfg.abs_rewards),
        consistency_reward=cfg.consistency_reward, consistency_threshold=cfg.consistency_threshold,
        consistency_eta=cfg.consistency_eta,
    )
    callbacks = list(callbacks or [])
    limit = None
    if getattr(cfg, "max_seconds", None) is not None:
        limit = wall_clock_limit(cfg.max_seconds)
        callbacks.append(limit)
    trainer = SpatialGRPOTrainer(
        model=model, reward_funcs=funcs, args=args, train_dataset=dataset, processing_class=processor,
        peft_config=peft_config, callbacks=callbacks or None, advantage_settings=settings, pairs=pairs,
        pair_strata=pair_strata, share_prompt=cfg.share_prompt_pass,
    )
    if progress is not None:
        from spatialrl.train.job import replace_progress

        replace_progress(trainer, progress)
    output_dir.mkdir(parents=True, exist_ok=True)
    from spatialrl.train.config import save_config

    save_config(cfg, output_dir / "spatialrl_config.yaml")
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.perf_counter() - start
    stopped_by_time = bool(limit is not None and limit.stopped)
    if stopped_by_time:
        log(f"stopped by max_seconds ({cfg.max_seconds:g} s) at step {trainer.state.global_step} of {cfg.max_steps}")
    passes = dict(getattr(trainer, "shared_prompt_calls", {"shared": 0, "fallback": 0}))
    if cfg.share_prompt_pass and passes.get("fallback"):
        log(f"share_prompt_pass: {passes['fallback']} of {passes['shared'] + passes['fallback']} log-prob passes "
            "fell back to TRL's (gradient checkpointing, several processes, several images per prompt, or a "
            "model without get_rope_index); see spatialrl/train/shared_prompt.py")
    final = output_dir / "final"
    trainer.save_model(str(final))
    processor.save_pretrained(str(final))
    history = trainer.state.log_history
    write_log_history(output_dir / "log_history.jsonl", history)
    diagnostics = write_diagnostics(output_dir / "diagnostics.json", history)  # T_conv (Smooth Operator sec. 4.3)
    return {
        "output_dir": str(output_dir),
        "final_model": str(final),
        "global_step": trainer.state.global_step,
        "resumed_from": checkpoint,
        "train_loss": float(result.training_loss),
        "pairs": len(pairs) if pairs is not None else 0,
        "processes": trainer.accelerator.num_processes,
        "rows": len(dataset),
        "seconds": round(seconds, 3),
        "stopped_by_time": stopped_by_time,
        "shared_prompt_passes": passes,
        "t_conv": diagnostics["t_conv"],
    }

