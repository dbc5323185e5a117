"""SpatialGRPOTrainer: TRL's GRPOTrainer with the papers' advantage step.

What changes against stock GRPO (trl 1.16, see ``SUPPORTED_TRL``: the methods below are private
in TRL, so :func:`check_trl_compatibility` checks them when the trainer is built):

- Advantages: ``_generate_and_score_completions`` runs TRL's generation and reward
  functions, then recomputes the advantages of the whole generation batch with
  ``spatialrl.train.advantage_step.spatial_advantages``: the Spatial-GRPO view-consistency
  penalty (SVQA-R1 eq. 2-4), the weighted total reward (Smooth Operator eq. 4 / SVQA-R1
  eq. 1), and an estimator chosen by name (AP-GRPO, Smooth Operator eq. 8, by default). The
  loss (TRL's clipped surrogate with beta-KL, Smooth Operator eq. 9) consumes exactly these.
- Logging: the completions table's advantages, ``reward``, ``reward_std`` and
  ``frac_reward_zero_std`` are replaced by the values the loss uses; ``adv/*`` (mean,
  variance per Smooth Operator sec. 4.3, zero-variance group fraction, near-miss use),
  ``consistency/*`` and the reward functions' ``sharpness/k`` are added, and ``mechanisms/*``:
  the same completions scored under the alternatives (binary vs SNRA reward, GRPO vs AP-GRPO;
  :mod:`spatialrl.train.mechanisms`), which the loss does not see.
- Sampling: with ``mirror_pairs`` a ``PairRepeatSampler`` keeps each original and its mirror
  in the same generation batch and on the same process. Without it, ``mirror_twins: drop``
  (default) keeps one view per question, so an epoch trains each question once.
- Dynamic sampling (optional, off by default; DAPO's, not in either paper): zero-spread groups
  are replaced by groups of further prompts (:mod:`spatialrl.train.dynamic_sampling`).

- Resume: checkpoint weights are restored through ``from_pretrained`` (strict), because
  transformers' own resume path silently skips Qwen2.5-VL's renamed weights; checkpoints are
  written atomically where the Trainer allows, and resume takes the newest *complete* one
  (``spatialrl.train.checkpoints``).

Everything else (generation, KL against the reference model, clipping, accumulation, multi-GPU
through accelerate, optimizer and RNG state on resume) is TRL's and transformers'.
"""

from __future__ import annotations

import inspect
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from spatialrl._extras import requires_extra

with requires_extra("train"):
    import torch
    from accelerate.utils import gather_object
    from trl import GRPOTrainer

from spatialrl.train.advantage_step import AdvantageSettings, spatial_advantages
from spatialrl.train.checkpoints import CheckpointWeightsMixin
from spatialrl.train.dynamic_sampling import (
    RoundGroups,
    assemble,
    needs_refill,
    pick_logged,
    plan_batch,
    units_of,
    zero_spread_groups,
)
from spatialrl.train.mechanisms import mechanism_metrics
from spatialrl.train.sampler import PairRepeatSampler
from spatialrl.train.shared_prompt import SharedPromptLogpsMixin

__all__ = ["SUPPORTED_TRL", "SpatialGRPOTrainer", "check_trl_compatibility", "left_pad", "vision_token_suppression"]

#: TRL versions whose private GRPOTrainer methods this trainer was written against and tested with
#: (read in trl 1.16.0's ``trl/trainer/grpo_trainer.py``).
SUPPORTED_TRL = ">=1.16.0,<1.17"

#: The private methods we override or call, with the parameters we rely on (annotations aside):
#: ``(owner, name) -> "(parameters)"``. ``_get_dataloader`` is transformers' Trainer's; dynamic
#: sampling builds its second data loader with it, as TRL's ``get_train_dataloader`` does.
PRIVATE_METHODS = {
    ("trl", "_generate_and_score_completions"): "(self, inputs)",
    ("trl", "_calculate_rewards"): "(self, inputs, prompts, completions, completion_ids_list)",
    ("trl", "_get_train_sampler"): "(self, dataset=None)",
    ("transformers", "_get_dataloader"): "(self, dataset, description, batch_size, sampler_fn=None, is_training=False, "
                                         "dataloader_key=None)",
}
#: Attributes of a built GRPOTrainer that the override reads.
TRAINER_ATTRIBUTES = ("reward_func_names", "reward_weights", "_logs", "_metrics", "num_generations",
                      "num_generations_eval", "num_iterations", "shuffle_dataset", "accelerator", "_train_batch_size",
                      "_tokenizer")
#: Keys of ``GRPOTrainer._logs`` the override rewrites.
LOG_KEYS = ("prompt", "completion", "advantages", "rewards", "extra")


def _parameters(fn: Any) -> str:
    """A signature without annotations, e.g. ``(self, dataset=None)``."""
    parts = []
    for p in inspect.signature(fn).parameters.values():
        name = {p.VAR_POSITIONAL: f"*{p.name}", p.VAR_KEYWORD: f"**{p.name}"}.get(p.kind, p.name)
        parts.append(name if p.default is p.empty else f"{name}={p.default!r}")
    return f"({', '.join(parts)})"


def check_trl_compatibility(trainer: Any = None) -> None:
    """Raise ``RuntimeError`` if the installed TRL no longer has what :class:`SpatialGRPOTrainer` relies on.

    Checks the signatures of the private methods in ``PRIVATE_METHODS`` on ``GRPOTrainer`` and,
    given a built ``trainer``, the attributes in ``TRAINER_ATTRIBUTES`` and ``_logs``' keys. The
    message names the method (or attribute), the expected and the found signature, the installed
    trl version and ``SUPPORTED_TRL``. A TRL outside ``SUPPORTED_TRL`` whose signatures still match
    gets a warning only: the checks cannot see a changed meaning behind the same signature.
    """
    import transformers
    import trl
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    installed = f"installed trl {trl.__version__} (transformers {transformers.__version__}); " \
                f"spatialrl supports trl{SUPPORTED_TRL}"
    for (owner, name), expected in PRIVATE_METHODS.items():
        method = getattr(GRPOTrainer, name, None)
        found = None if method is None else _parameters(method)
        if found != expected:
            raise RuntimeError(
                f"SpatialGRPOTrainer relies on {owner}'s private GRPOTrainer.{name}{expected}, found "
                f"{'no such method' if found is None else name + found}; "
                f"{installed}. Install a supported trl (pip install 'trl{SUPPORTED_TRL}') or port "
                "spatialrl/train/trainer.py to the new method (see docs/trainer.md, 'When TRL moves')."
            )
    if trainer is not None:
        for name in TRAINER_ATTRIBUTES:
            if not hasattr(trainer, name):
                raise RuntimeError(f"SpatialGRPOTrainer reads GRPOTrainer.{name}, which this TRL no longer sets; "
                                   f"{installed}.")
        missing = [key for key in LOG_KEYS if key not in trainer._logs]
        if missing:
            raise RuntimeError(f"SpatialGRPOTrainer rewrites GRPOTrainer._logs[{missing[0]!r}], which this TRL no "
                               f"longer keeps (it has {sorted(trainer._logs)}); {installed}.")
    if Version(trl.__version__) not in SpecifierSet(SUPPORTED_TRL, prereleases=True):
        warnings.warn(f"{installed}. The private methods it overrides still have the expected signatures, but "
                      "their behaviour is untested with this version.", stacklevel=2)


class SpatialGRPOTrainer(CheckpointWeightsMixin, SharedPromptLogpsMixin, GRPOTrainer):
    """TRL's ``GRPOTrainer`` with a named advantage estimator, Spatial-GRPO mirror pairs, optional
    dynamic sampling, and logs that show what the loss uses.

    Args:
        model (`str` or `PreTrainedModel`):
            The policy: a Qwen2.5-VL-style model or a path TRL can load (see ``GRPOTrainer``).
            ``spatialrl.models.load_model_and_processor`` loads the tiny CPU model and any Qwen2.5-VL.
        reward_funcs (callable or list of callables):
            TRL reward functions, called as ``f(prompts=, completions=, completion_ids=, **columns)``;
            ``spatialrl.rewards.trl`` provides ``accuracy_reward`` (SNRA under a sharpness schedule,
            Smooth Operator eq. 2 and 5), ``format_reward_func``, ``semantic_reward_func`` (SVQA-R1)
            and ``iou_reward_func``. A function's ``__name__`` is its component name in
            ``advantage_settings`` (``accuracy``, ``format``, ``semantic``, ``iou``).
        args (`trl.GRPOConfig`):
            TRL's config: ``num_generations`` (G), ``reward_weights`` (the total reward's weights,
            Smooth Operator eq. 4), ``beta`` (KL), ``generation_kwargs`` (add
            :func:`vision_token_suppression`), ``use_vllm``, batch sizes. With ``pairs`` every
            process must receive an even number of prompts per generation batch.
        train_dataset (`datasets.Dataset`):
            TRL's conversational vision format (``spatialrl.data.export.with_trl_prompts``):
            ``prompt`` (one image placeholder per image) and ``images``; for mirror pairs
            ``pair_id`` and ``view`` (``original`` / ``mirror``); and the columns the reward
            functions read (``answer``, ``answer_type``, ``answer_value``, ``dimension``, ``unit``,
            ``options``, ``answer_index``, ``bbox``, ``question_type`` ...). Every column but
            ``prompt`` reaches the reward functions.
        processing_class (`ProcessorMixin`):
            The model's processor; it is switched to left padding (:func:`left_pad`).
        peft_config (`peft.PeftConfig`, *optional*):
            Train a LoRA adapter instead of the full model (TRL's handling).
        callbacks (list of `TrainerCallback`, *optional*):
            As for any transformers Trainer (e.g. ``spatialrl.train.callbacks.wall_clock_limit``).
        advantage_settings (`AdvantageSettings`, *optional*):
            How rewards become advantages: estimator name (``ap_grpo`` by default, ``grpo``,
            ``absolute`` or a registered one), alpha, clip, eps, the absolute-term components, and
            the view-consistency penalty (``consistency_reward``, threshold, eta; needs ``pairs``).
        pairs (list of `(int, int)`, *optional*):
            ``(original, mirror)`` row indices of ``train_dataset``
            (``spatialrl.train.sampler.find_pairs(ds["pair_id"], ds["view"])``); generation batches
            then hold whole pairs, on one process (``PairRepeatSampler``).
        pair_strata (list of tuples of `str`, *optional*):
            A label per pair (e.g. its question type) for a stratified pair order.
        share_prompt (`bool`, defaults to `False`):
            Score each group with one pass over its shared prompt
            (:mod:`spatialrl.train.shared_prompt`).
        dynamic_sampling (`bool`, defaults to `False`):
            DAPO's dynamic sampling (:mod:`spatialrl.train.dynamic_sampling`): groups whose total
            rewards are all equal are dropped and replaced by groups of further prompts; mirror
            pairs are dropped only when both groups are silent.
        dynamic_sampling_max_rounds (`int`, defaults to `3`):
            At most this many extra generation rounds per generation batch; when they do not fill
            the batch, the zero-spread groups needed are kept (advantage 0) and counted.

    Logged (besides TRL's metrics): ``adv/mean``, ``adv/abs_mean``, ``adv/variance``,
    ``adv/zero_std_group_frac``, ``adv/near_miss_use``, ``adv/unscorable_frac``; with a consistency
    reward ``consistency/pairs``, ``consistency/delta``, ``consistency/abs_delta``,
    ``consistency/<reward>_after_penalty``; ``sharpness/k`` from the accuracy reward; with dynamic
    sampling ``dynamic_sampling/rounds``, ``dynamic_sampling/dropped_groups``,
    ``dynamic_sampling/kept_zero_std_groups``, ``dynamic_sampling/zero_std_groups_in_kept_pairs`` and
    ``dynamic_sampling/surplus_groups`` (group counts over all processes); ``mechanisms/*``
    (:mod:`spatialrl.train.mechanisms`: zero-variance group fractions under SNRA and binary rewards,
    near-miss use and advantage variance under AP-GRPO and GRPO, mean |delta| of mirror pairs). ``reward``,
    ``reward_std`` and ``frac_reward_zero_std`` are those of the advantage step; with dynamic
    sampling they and TRL's completion metrics describe every round generated, while the
    completions table holds the rows of the assembled batch. ``output_dir/generations.jsonl`` gets
    one line per generation round (step, prompts as ``pair_id:o|m``, mean reward).
    """

    def __init__(self, *args: Any, advantage_settings: AdvantageSettings | None = None,
                 pairs: list[tuple[int, int]] | None = None, pair_strata: list[tuple[str, ...]] | None = None,
                 share_prompt: bool = False, dynamic_sampling: bool = False, dynamic_sampling_max_rounds: int = 3,
                 **kwargs: Any) -> None:
        if isinstance(dynamic_sampling_max_rounds, bool) or not isinstance(dynamic_sampling_max_rounds, int) \
                or dynamic_sampling_max_rounds < 0:
            raise ValueError(f"dynamic_sampling_max_rounds must be an integer >= 0, got {dynamic_sampling_max_rounds!r}")
        self.advantage_settings = advantage_settings or AdvantageSettings()
        self.share_prompt = share_prompt
        self.pairs = pairs
        self.pair_strata = pair_strata
        self.dynamic_sampling = bool(dynamic_sampling)
        self.dynamic_sampling_max_rounds = dynamic_sampling_max_rounds
        self._captured_rewards: torch.Tensor | None = None
        self._refill_loader: Any = None
        self._refill_iterator: Any = None
        self._sampling_round = 0
        left_pad(kwargs.get("processing_class"))
        super().__init__(*args, **kwargs)
        check_trl_compatibility(self)
        if self.advantage_settings.consistency_reward is not None:
            if self.advantage_settings.consistency_reward not in self.reward_func_names:
                raise ValueError(
                    f"consistency_reward {self.advantage_settings.consistency_reward!r} is not one of the reward "
                    f"functions {self.reward_func_names}"
                )
            if pairs is None:
                raise ValueError("the view-consistency penalty needs mirror pairs (pass pairs=..., mirror_pairs: true)")
        if self.dynamic_sampling:
            local_rows = self.args.per_device_train_batch_size * self.args.steps_per_generation
            if local_rows % self.num_generations:
                raise ValueError(
                    f"dynamic_sampling needs whole groups on every process: per_device_train_batch_size x "
                    f"steps_per_generation = {local_rows} completions is not a multiple of num_generations "
                    f"{self.num_generations}"
                )
            if isinstance(self.train_dataset, torch.utils.data.IterableDataset):
                raise ValueError("dynamic_sampling needs a map-style train_dataset (it draws further prompts "
                                 "with its own sampler)")

    # -- sampling ---------------------------------------------------------------------
    def _get_train_sampler(self, dataset: Any = None) -> Any:
        if self.pairs is None:
            return super()._get_train_sampler(dataset)
        return self._sampler(dataset, self.num_iterations * self.args.steps_per_generation, self.args.seed)

    def _sampler(self, dataset: Any, repeat_count: int, seed: int) -> Any:
        """TRL's ``RepeatSampler`` (or ours, over pairs): ``generation_batch_size / G`` prompts per
        generation batch, each repeated G times, the batch yielded ``repeat_count`` times."""
        batch_size = self.args.generation_batch_size // self.num_generations
        if self.pairs is None:
            from trl.trainer.utils import RepeatSampler

            return RepeatSampler(dataset if dataset is not None else self.train_dataset, self.num_generations,
                                 batch_size=batch_size, repeat_count=repeat_count, shuffle=self.shuffle_dataset,
                                 seed=seed)
        return PairRepeatSampler(self.pairs, mini_repeat_count=self.num_generations, batch_size=batch_size,
                                 repeat_count=repeat_count, shuffle=self.shuffle_dataset, seed=seed,
                                 strata=self.pair_strata)

    def _next_refill_batch(self) -> list[dict[str, Any]]:
        """This process's share of one more generation batch, for dynamic sampling.

        A second loader over the training set, built like TRL's (same collator, per-process split by
        accelerate, generation-batch size), with its own sampler: each generation batch once
        (``repeat_count=1``) and seed ``args.seed + 1``, so refills do not replay the prompts the
        main stream is about to draw; it restarts (a new order) when exhausted. Refill prompts are
        extra: the main epoch still visits every prompt (DAPO samples "more", too).
        """
        if self._refill_loader is None:
            self._refill_loader = self._get_dataloader(
                dataset=self.train_dataset, description="Dynamic sampling",
                batch_size=self._train_batch_size * self.args.steps_per_generation,
                sampler_fn=lambda dataset: self._sampler(dataset, 1, self.args.seed + 1), is_training=True,
            )
        if self._refill_iterator is None:
            self._refill_iterator = iter(self._refill_loader)
        try:
            return next(self._refill_iterator)
        except StopIteration:
            self._refill_iterator = iter(self._refill_loader)
            return next(self._refill_iterator)

    # -- rewards -> advantages ---------------------------------------------------------
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._captured_rewards = rewards_per_func  # gathered over processes: (N_global, F)
        return rewards_per_func

    def _generate_and_score_completions(self, inputs):
        self._sampling_round = 0
        output = self._score_round(inputs)
        if self.dynamic_sampling and self.model.training:
            output = self._refill_silent_groups(inputs, output)
        return output

    def _score_round(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        """TRL's generation and scoring of ``inputs``, with the advantages replaced by ours."""
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
        # The papers' mechanisms on these same completions (logging only; the loss is untouched).
        accuracy = next((f for f in self.reward_funcs if hasattr(f, "last_errors")), None)
        errors = gather_object(list(accuracy.last_errors or [])) if accuracy is not None else None
        metrics_ = mechanism_metrics(
            rewards_per_func, self.reward_func_names, self.reward_weights.tolist(),
            group_ids=(np.arange(n_global) // num_generations).tolist(), settings=self.advantage_settings,
            errors=errors if errors is not None and len(errors) == n_global else None,
            k=getattr(accuracy, "last_k", None), operator=getattr(accuracy, "operator", "sigmoid"),
            accuracy=getattr(accuracy, "__name__", "accuracy"), pair_ids=pair_ids, is_mirror=is_mirror, trained=step)
        for key, value in metrics_.items():
            metrics[key].append(value)
        self.last_advantage_step = step
        return output

    # -- dynamic sampling (DAPO; spatialrl.train.dynamic_sampling) ------------------------
    def _refill_silent_groups(self, inputs: list[dict[str, Any]], output: dict[str, Any]) -> dict[str, Any]:
        """Replace zero-spread groups of this generation batch by groups of further prompts.

        Every process must run the same number of rounds: each round calls TRL's collectives
        (reward gathering, ``gather_object`` of logs, vLLM's generation). So whether another round
        runs is decided on a gathered flag: one more round while *any* process is short, and
        processes already full generate along (their extra groups count as surplus). Groups never
        move between processes, which is why every process must hold whole groups (checked in
        ``__init__``); the final batch has the same number of rows on every process.
        """
        group_size = self.num_generations
        n_groups = len(inputs) // group_size
        first = self.accelerator.process_index * n_groups
        rounds: list[RoundGroups] = []
        outputs: list[dict[str, Any]] = []
        logged: list[dict[Any, list]] = []

        def record(batch: list[dict[str, Any]], scored: dict[str, Any]) -> None:
            zero = zero_spread_groups(self.last_advantage_step.total_rewards, group_size)[first:first + n_groups]
            keys = None if self.pairs is None else [str(x.get("pair_id")) for x in batch[::group_size]]
            rounds.append(RoundGroups(zero, units_of(keys, n_groups)))
            outputs.append(scored)
            logged.append(self._logged_columns())

        record(inputs, output)
        while self._sampling_round < self.dynamic_sampling_max_rounds and self._on_any_process(
                needs_refill(rounds, n_groups)):
            self._sampling_round += 1
            batch = self._next_refill_batch()
            record(batch, self._score_round(batch))
        plan = plan_batch(rounds, n_groups)
        final = assemble(outputs, plan.picks, group_size, self._tokenizer.pad_token_id)
        loss_mask = final["completion_mask"] if "tool_mask" not in final else final["completion_mask"] * final["tool_mask"]
        final["num_items_in_batch"] = self.accelerator.gather(loss_mask.sum()).sum()  # as TRL counts it

        picks = gather_object([(r, (first + g) * group_size + j) for r, g in plan.picks for j in range(group_size)])
        self._restore_logged(pick_logged(logged, picks, len(inputs) * self.accelerator.num_processes))
        counts = torch.tensor([plan.dropped_groups, plan.kept_zero_std_groups, plan.zero_std_groups_in_kept_pairs,
                               plan.surplus_groups], dtype=torch.float32, device=self.accelerator.device)
        counts = self.accelerator.gather(counts).view(-1, 4).sum(0).tolist()
        metrics = self._metrics["train"]
        metrics["dynamic_sampling/rounds"].append(float(self._sampling_round))
        for name, value in zip(("dropped_groups", "kept_zero_std_groups", "zero_std_groups_in_kept_pairs",
                                "surplus_groups"), counts):
            metrics[f"dynamic_sampling/{name}"].append(value)
        return final

    def _on_any_process(self, flag: bool) -> bool:
        flags = self.accelerator.gather(torch.tensor([int(flag)], device=self.accelerator.device))
        return bool(flags.max().item())

    def _log_deques(self) -> dict[Any, Any]:
        """The per-completion columns of TRL's completions table (``_logs``), by a flat key."""
        columns = {key: self._logs[key] for key in ("prompt", "completion", "advantages", "images")
                   if key in self._logs}
        columns.update({("rewards", name): column for name, column in self._logs["rewards"].items()})
        columns.update({("extra", name): column for name, column in self._logs["extra"].items()})
        return columns

    def _logged_columns(self) -> dict[Any, list]:
        # the deques hold one generation batch (maxlen), so after a round they hold that round
        return {key: list(column) for key, column in self._log_deques().items()}

    def _restore_logged(self, picked: dict[Any, list]) -> None:
        for key, column in self._log_deques().items():
            if key in picked:
                column.clear()
                column.extend(picked[key])

    def _log_generation(self, pair_ids: list[str], is_mirror: list[bool], step: Any) -> None:
        """Append one line per generation round to ``output_dir/generations.jsonl``: the optimizer
        step it serves, the prompts (pair id and view, one per group) and the mean reward, so data
        order can be audited, also across a resume. Dynamic sampling's extra rounds add ``round``."""
        num_generations = self.num_generations
        prompts = [f"{pid}:{'m' if m else 'o'}" for pid, m in zip(pair_ids[::num_generations], is_mirror[::num_generations])]
        record = {"step": int(self.state.global_step) + 1, "prompts": prompts,
                  "reward_mean": float(np.nanmean(step.total_rewards)) if np.isfinite(step.total_rewards).any() else None}
        if self._sampling_round:
            record["round"] = self._sampling_round
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


#: Qwen2.5-VL's vision special tokens: none of them belongs in a completion.
VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")
_CONFIG_TOKEN_IDS = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")
#: vLLM's logit-bias bound (OpenAI's API range, and what ``SamplingParams.from_optional`` clamps to).
VLLM_SUPPRESS_BIAS = -100.0


def vision_token_suppression(model_config: Any, tokenizer: Any = None, use_vllm: bool = False) -> dict[str, Any]:
    """Generation kwargs that forbid the vision special tokens in completions, for the backend in use.

    TRL suppresses only the image token; a sampled ``<|vision_start|>`` or video token in a
    completion makes Qwen2.5-VL's 3-D rotary index count a phantom image and fail (seen with
    untrained policies). A trained model never emits them, so this costs nothing.

    The ids are the config's ``image_token_id``, ``video_token_id``, ``vision_start_token_id``,
    ``vision_end_token_id`` and, given ``tokenizer`` (a tokenizer or a processor), also the ids of
    ``VISION_TOKENS`` in its vocabulary (``<|vision_pad|>`` is in no config field). A config id the
    tokenizer spells as some other token is refused: config and tokenizer disagree, and the
    suppression would forbid an ordinary token.

    - HF generate (``use_vllm=False``): ``{"suppress_tokens": ids}`` (``GenerationConfig``).
    - vLLM (``use_vllm=True``): ``{"logit_bias": {id: -100.0}}``. TRL passes ``generation_kwargs``
      to ``vllm.SamplingParams(**kwargs)`` (colocate mode) or sends them as JSON (server mode), and
      SamplingParams has no ``suppress_tokens``. Why ``logit_bias`` and not ``bad_words``, read in
      vLLM's ``vllm/sampling_params.py`` and ``vllm/entrypoints/serve/disagg/protocol.py`` (the
      range trl 1.16 supports, 0.22-0.31): ``logit_bias`` takes the token ids we already have, while
      ``bad_words`` takes strings that vLLM re-tokenizes (``update_from_tokenizer``), so a special
      token is forbidden only if that tokenizer maps its text back to the single special id
      (tokenizers that split special tokens, or Mistral's, do not) and it counts against
      ``VLLM_MAX_NUM_BAD_WORDS``. JSON turns the keys into strings in server mode; vLLM converts
      them back on both routes TRL uses: ``/inference/v1/generate`` (prompts with images)
      validates ``sampling_params`` with pydantic against ``logit_bias: dict[int, float]`` (lax
      mode turns ``"1144"`` into 1144), and ``/v1/completions`` (text prompts) goes through
      ``SamplingParams.from_optional``, which applies ``int(token)``. -100 is the largest
      suppression the OpenAI-style API accepts (``from_optional`` clamps to [-100, 100]); it lowers
      the token's probability by a factor e^-100, i.e. it is never sampled in practice.
    """
    ids = {int(getattr(model_config, n)) for n in _CONFIG_TOKEN_IDS if getattr(model_config, n, None) is not None}
    tok = getattr(tokenizer, "tokenizer", tokenizer)
    if tok is not None:
        for token_id in sorted(ids):
            spelled = tok.convert_ids_to_tokens(token_id)
            if spelled not in VISION_TOKENS:
                raise ValueError(f"the model config names token id {token_id} as a vision token, but the tokenizer "
                                 f"spells it {spelled!r}: config and tokenizer do not belong together")
        vocab = tok.get_vocab()
        ids |= {int(vocab[token]) for token in VISION_TOKENS if token in vocab}
    ids_sorted = sorted(ids)
    if not ids_sorted:
        return {}
    if use_vllm:
        return {"logit_bias": {token_id: VLLM_SUPPRESS_BIAS for token_id in ids_sorted}}
    return {"suppress_tokens": ids_sorted}
