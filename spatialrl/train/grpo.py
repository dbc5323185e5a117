"""The `train` job: a GRPO job config -> data, rewards, :class:`SpatialGRPOTrainer`, a summary.

The trainer itself (what changes against TRL's GRPOTrainer) is :mod:`spatialrl.train.trainer`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spatialrl._extras import requires_extra

with requires_extra("train"):
    import torch

from spatialrl.train.advantage_step import AdvantageSettings
from spatialrl.train.checkpoints import last_complete_checkpoint
from spatialrl.train.sampler import find_pairs, mirror_twins
from spatialrl.train.trainer import SpatialGRPOTrainer, left_pad, vision_token_suppression

__all__ = ["SpatialGRPOTrainer", "build_reward_functions", "last_checkpoint", "left_pad", "prepare_dataset",
           "train_grpo", "vision_token_suppression"]

#: Dataset columns the rewards do not need (large strings); dropped from the training set.
UNUSED_COLUMNS = ("scene_json", "meta")


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


def prepare_dataset(cfg: Any, log: Any = print, seed: int = 0) -> tuple[Any, list[tuple[int, int]] | None]:
    """The training split in TRL's conversational format, and its mirror pairs when requested.

    ``cfg``: spatialrl's fields of the job (``Job.spatial``); ``seed``: the run's (``Job.trl.seed``).

    ``max_samples`` takes a seeded subset of whole pairs (as the SFT stage does). Rows without a
    twin are dropped when ``mirror_pairs`` is on, and counted in the log. With ``mirror_pairs`` off
    and ``mirror_twins: drop`` (the default), mirrored rows whose question also has its original
    view are dropped before ``max_samples``, so an epoch trains each question once; also logged.
    """
    from spatialrl.data.load import load_split, sample_rows

    drop_twins = not cfg.mirror_pairs and cfg.mirror_twins == "drop"
    ds = load_split(cfg.dataset, cfg.train_split, max_samples=None if drop_twins else cfg.max_samples,
                    question_types=cfg.question_types, seed=seed, whole_pairs=True)
    if drop_twins and {"pair_id", "view"} <= set(ds.column_names):
        twins = set(mirror_twins(ds["pair_id"], ds["view"]))
        if twins:
            log(f"mirror_twins=drop: dropped {len(twins)} of {len(ds)} rows of {cfg.train_split}, the mirrored twins "
                "of questions whose original view stays (mirror_twins=keep trains both views)")
            ds = ds.select([i for i in range(len(ds)) if i not in twins])
    if drop_twins:
        ds = sample_rows(ds, cfg.max_samples, seed=seed, whole_pairs=True)
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


def train_grpo(job: Any, resume: bool = False, callbacks: list[Any] | None = None, log: Any = print,
               progress: Any = None) -> dict[str, Any]:
    """Run the GRPO job ``job`` (a :class:`spatialrl.train.config.Job`); returns a summary.

    With ``resume`` the run continues from the newest checkpoint in ``output_dir`` (same data
    order, schedule step, optimizer and RNG state); without one it starts fresh. With
    ``max_seconds`` training stops once that much wall-clock time has passed
    (:class:`spatialrl.train.callbacks.WallClockLimit`). The summary's ``seconds`` is the time
    spent in ``trainer.train()`` (generation and optimisation, not loading or saving).
    ``progress``: a ``TrainerCallback`` that replaces the Trainer's progress bar and its printing
    of every log dict (None keeps them).
    """
    import copy
    import time

    from spatialrl.train.callbacks import wall_clock_limit, write_diagnostics, write_log_history
    from spatialrl.train.loading import load_for_training

    cfg, trl_args = job.spatial, job.trl
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    output_dir = Path(trl_args.output_dir)
    checkpoint = last_checkpoint(output_dir, log=log) if resume else None
    if resume and checkpoint is None:
        log(f"--resume: no checkpoint in {output_dir}; starting from the beginning")
    model, processor, budget = load_for_training(job, log=log)
    dataset, pairs = prepare_dataset(cfg, log=log, seed=trl_args.seed)
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
    # The job's GRPOConfig has run TRL's validation; a copy takes what spatialrl derives.
    args = copy.copy(trl_args)
    args.reward_weights = weights
    args.generation_kwargs = {**vision_token_suppression(model.config, processor, use_vllm=args.use_vllm),
                              **(args.generation_kwargs or {})}
    settings = AdvantageSettings(
        estimator=cfg.advantage, alpha=cfg.alpha, clip=cfg.adv_clip, eps=cfg.adv_eps, abs_rewards=list(cfg.abs_rewards),
        consistency_reward=cfg.consistency_reward, consistency_threshold=cfg.consistency_threshold,
        consistency_eta=cfg.consistency_eta,
    )
    callbacks = list(callbacks or [])
    limit = None
    if cfg.max_seconds is not None:
        limit = wall_clock_limit(cfg.max_seconds)
        callbacks.append(limit)
    trainer = SpatialGRPOTrainer(
        model=model, reward_funcs=funcs, args=args, train_dataset=dataset, processing_class=processor,
        peft_config=cfg.lora_config(), callbacks=callbacks or None, advantage_settings=settings, pairs=pairs,
        pair_strata=pair_strata, share_prompt=cfg.share_prompt_pass, dynamic_sampling=cfg.dynamic_sampling,
        dynamic_sampling_max_rounds=cfg.dynamic_sampling_max_rounds,
    )
    if progress is not None:
        from spatialrl.train.job import replace_progress

        replace_progress(trainer, progress)
    output_dir.mkdir(parents=True, exist_ok=True)
    from spatialrl.train.config import save_config

    save_config(job, output_dir / "spatialrl_config.yaml")
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.perf_counter() - start
    stopped_by_time = bool(limit is not None and limit.stopped)
    if stopped_by_time:
        log(f"stopped by max_seconds ({cfg.max_seconds:g} s) at step {trainer.state.global_step} of {trainer.state.max_steps}")
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
        "pixel_budget": None if budget is None else {"min_pixels": budget.min_pixels, "max_pixels": budget.max_pixels},
        "seconds": round(seconds, 3),
        "stopped_by_time": stopped_by_time,
        "shared_prompt_passes": passes,
        "t_conv": diagnostics["t_conv"],
    }

