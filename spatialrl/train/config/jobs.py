"""Training job configuration: the documented job dataclasses.

Two jobs, one dataclass each:

- :class:`GRPOJobConfig` (``job: grpo``, ``spatialrl train``): the RL stage. Defaults are Smooth
  Operator sec. 4.1 (AP-GRPO, G = 8, AdamW lr 1e-6, weight decay 0.01, beta_KL 0.02, SNRA with the
  sigmoid sharpness schedule k 1 -> 100, tau 0.5, s 10 (eq. 5), alpha 1, clip c 1.5 (eq. 8),
  lambda 0.1 (eq. 4) as ``rewards: {accuracy: 0.9, format: 0.1}``). SVQA-R1 (sec. 3.2-3.3, 4.1)
  is the same class with ``advantage: grpo``, ``rewards: {format: 0.5, semantic: 0.5}``,
  ``mirror_pairs: true`` and ``consistency_reward: semantic`` (eq. 2-4, delta 0.5, eta 1).
- :class:`SFTJobConfig` (``job: sft``, ``spatialrl sft``): the optional cold start on the
  dataset's canonical answers.

Every field carries a help text (``dataclasses.fields(cls)[i].metadata["help"]``). ``__post_init__``
coerces every field to its annotated type (YAML 1.1 reads ``1e-6`` as a string; float fields
accept such strings), validates it and raises :class:`ConfigError` (a ``ValueError``) naming the
field and saying how to fix it. Reading and writing them as YAML recipes with ``key=value``
overrides is :mod:`.recipe`.

Nothing here imports torch; ``extra_trl_args`` validation imports trl only when it is non-empty.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import os
import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Union

__all__ = [
    "GRPO_LOSS_TYPES",
    "JOBS",
    "REWARD_COMPONENTS",
    "THINK_MODES",
    "ConfigError",
    "GRPOJobConfig",
    "SFTJobConfig",
]

#: Reward components a GRPO job can weight (see ``spatialrl.rewards.trl``).
REWARD_COMPONENTS = ("accuracy", "format", "semantic", "iou")
#: ``GRPOConfig.loss_type`` values of trl 1.16.
GRPO_LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo")
#: What the <think> block of an SFT target holds.
THINK_MODES = ("template", "empty", "option", "option_text", "direction_text")
ERROR_MODES = ("absolute", "relative")
MIRROR_TWINS = ("drop", "keep")


class ConfigError(ValueError):
    """An invalid job configuration; the message names the field and how to fix it."""


def _opt(default: Any, help: str) -> Any:
    """A field with a default (copied per instance when mutable) and a help text."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: copy.deepcopy(d), metadata={"help": help})
    return field(default=default, metadata={"help": help})


def _req(help: str) -> Any:
    return field(metadata={"help": help, "required": True})


# --------------------------------------------------------------------------------------
# Type coercion (YAML and override values -> field types)
# --------------------------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}s"
    if origin is dict:
        k, v = typing.get_args(tp)
        return f"a mapping of {_type_name(k)} to {'anything' if v is Any else _type_name(v)}"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(tp, getattr(tp, "__name__", str(tp)))


class _Mismatch(Exception):
    pass


def _coerce(value: Any, tp: Any) -> Any:
    """``value`` converted to type ``tp`` (lossless conversions only); ``_Mismatch`` otherwise."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise _Mismatch
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg)
            except _Mismatch:
                continue
        raise _Mismatch
    if tp is type(None):
        if value is None:
            return None
        raise _Mismatch
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is int:
        if isinstance(value, bool):
            raise _Mismatch
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _Mismatch
    if tp is float:
        if isinstance(value, bool):
            raise _Mismatch
        if isinstance(value, (int, float)):
            out = float(value)
        elif isinstance(value, str):  # YAML 1.1 reads 1e-6 (no dot) as a string
            try:
                out = float(value.strip())
            except ValueError:
                raise _Mismatch from None
        else:
            raise _Mismatch
        if not math.isfinite(out):
            raise _Mismatch
        return out
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        return [_coerce(v, item) for v in value]
    if origin is dict:
        k_tp, v_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            raise _Mismatch
        return {_coerce(k, k_tp): _coerce(v, v_tp) for k, v in value.items()}
    raise TypeError(f"unsupported field type {tp!r}")  # pragma: no cover - a bug in this module


# --------------------------------------------------------------------------------------
# Shared behaviour of the job configs
# --------------------------------------------------------------------------------------


class _JobConfig:
    """Validation helpers shared by the job dataclasses."""

    JOB: typing.ClassVar[str] = ""

    # -- errors ------------------------------------------------------------------------
    def _fail(self, name: str, message: str) -> typing.NoReturn:
        raise ConfigError(f"{type(self).__name__}.{name} {message}")

    def _value_error(self, name: str, requirement: str, why: str = "") -> typing.NoReturn:
        value = getattr(self, name)
        why = f" ({why})" if why else ""
        self._fail(name, f"must be {requirement}{why}; got {value!r}")

    # -- types -------------------------------------------------------------------------
    def _coerce_fields(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            try:
                object.__setattr__(self, f.name, _coerce(value, hints[f.name]))
            except _Mismatch:
                shown = f"{value!r} ({type(value).__name__})"
                hint = ""
                if hints[f.name] in (float, float | None) and isinstance(value, str):
                    hint = " (write numbers without quotes, e.g. 1.0e-6)"
                self._fail(f.name, f"must be {_type_name(hints[f.name])}; got {shown}{hint}")

    # -- common checks -----------------------------------------------------------------
    def _check_nonempty(self, *names: str) -> None:
        for name in names:
            if not str(getattr(self, name)).strip():
                self._fail(name, "must not be empty")

    def _check_at_least(self, name: str, low: float, why: str = "", optional: bool = False) -> None:
        value = getattr(self, name)
        if value is None and optional:
            return
        if not value >= low:
            self._value_error(name, f">= {low}", why)

    def _check_positive(self, name: str, why: str = "", optional: bool = False) -> None:
        value = getattr(self, name)
        if value is None and optional:
            return
        if not value > 0:
            self._value_error(name, "> 0", why)

    def _check_data_fields(self) -> None:
        self._check_nonempty("model", "dataset", "output_dir", "train_split")
        self._check_at_least("max_samples", 1, optional=True)
        if self.question_types is not None:  # type: ignore[attr-defined]
            from spatialrl.world.questions import QUESTION_TYPES

            if not self.question_types:  # type: ignore[attr-defined]
                self._fail("question_types", "must be null (all types) or a non-empty list; got []")
            for qt in self.question_types:  # type: ignore[attr-defined]
                if qt not in QUESTION_TYPES:
                    self._fail("question_types", f"has an unknown question type {qt!r}{_did_you_mean(qt, QUESTION_TYPES)}; "
                               f"valid: {', '.join(QUESTION_TYPES)}")

    def _check_runtime_fields(self) -> None:
        self._check_positive("learning_rate")
        self._check_at_least("weight_decay", 0)
        self._check_at_least("per_device_train_batch_size", 1)
        self._check_at_least("gradient_accumulation_steps", 1)
        self._check_at_least("seed", 0)
        self._check_at_least("logging_steps", 1)
        self._check_at_least("save_steps", 1)
        self._check_at_least("save_total_limit", 1, "null keeps every checkpoint", optional=True)
        self._check_at_least("torch_threads", 1, "null leaves torch's default", optional=True)
        self._check_nonempty("report_to")

    def _check_lora(self) -> None:
        self._check_at_least("lora_r", 1)
        self._check_positive("lora_alpha")
        if not 0.0 <= self.lora_dropout < 1.0:  # type: ignore[attr-defined]
            self._value_error("lora_dropout", "in [0, 1)")
        targets = self.lora_target_modules  # type: ignore[attr-defined]
        if isinstance(targets, str):
            if not targets.strip():
                self._fail("lora_target_modules", "must be 'all-linear', a module-name regex, or a list of module names; got ''")
        elif not targets or not all(t.strip() for t in targets):
            self._fail("lora_target_modules", f"must be 'all-linear' or a non-empty list of module names; got {targets!r}")

    def _check_extra_args(self, trl_class: str, managed: Iterable[str]) -> None:
        extra = self.extra_trl_args  # type: ignore[attr-defined]
        if not extra:
            return
        import trl

        cls = getattr(trl, trl_class)
        valid = sorted(f.name for f in dataclasses.fields(cls) if f.init)
        own = {f.name for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        managed = set(managed)
        for key in extra:
            if key in own:
                self._fail("extra_trl_args", f"sets {key!r}, which is a field of this config: set it as the "
                           f"top-level key `{key}: ...` instead")
            if key in managed:
                self._fail("extra_trl_args", f"sets {key!r}, which {type(self).__name__} derives itself; remove it")
            if key not in valid:
                self._fail("extra_trl_args", f"has {key!r}, which is not a trl.{trl_class} field"
                           f"{_did_you_mean(key, valid)} (trl {trl.__version__})")

    def _lora_config(self, task_type: str = "CAUSAL_LM") -> Any:
        """A ``peft.LoraConfig`` from the ``lora_*`` fields, or ``None`` when ``lora`` is off."""
        if not self.lora:  # type: ignore[attr-defined]
            return None
        from peft import LoraConfig

        return LoraConfig(
            r=self.lora_r,  # type: ignore[attr-defined]
            lora_alpha=self.lora_alpha,  # type: ignore[attr-defined]
            lora_dropout=self.lora_dropout,  # type: ignore[attr-defined]
            target_modules=self.lora_target_modules,  # type: ignore[attr-defined]
            task_type=task_type,
        )

    def resolved_use_cpu(self) -> bool:
        """``use_cpu``, with ``None`` resolved to "no CUDA device is available" (imports torch)."""
        if self.use_cpu is not None:  # type: ignore[attr-defined]
            return bool(self.use_cpu)  # type: ignore[attr-defined]
        import torch

        return not torch.cuda.is_available()


def _checkpointing_arg() -> str:
    """``activation_checkpointing`` where transformers has it (>= 5.2x renamed
    ``gradient_checkpointing``, which still works but warns), else ``gradient_checkpointing``."""
    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _world_size() -> int:
    """Processes of the launch (``WORLD_SIZE``, set by accelerate and torchrun; 1 otherwise)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


# --------------------------------------------------------------------------------------
# GRPO
# --------------------------------------------------------------------------------------


@dataclass
class GRPOJobConfig(_JobConfig):
    """A GRPO training job (``spatialrl train``); defaults follow Smooth Operator sec. 4.1."""

    JOB: typing.ClassVar[str] = "grpo"

    # -- data and model ---------------------------------------------------------------------
    model: str = _req("policy to start from: a checkpoint directory (e.g. from `spatialrl model tiny` or "
                      "`spatialrl sft`) or a hub id such as Qwen/Qwen2.5-VL-3B-Instruct")
    dataset: str = _req("training data: a directory written by `spatialrl data build` (hf format)")
    output_dir: str = _req("where checkpoints, logs and the final model are written")
    train_split: str = _opt("train", "split of `dataset` to train on")
    max_samples: int | None = _opt(None, "use at most this many rows (whole original/mirror pairs with "
                                         "mirror_pairs); null: all")
    question_types: list[str] | None = _opt(None, "train only on these question types (see "
                                                  "spatialrl.world.questions.QUESTION_TYPES); null: all. Keep every "
                                                  "type in RL data: training on a subset erases the others")

    # -- advantages (Smooth Operator eq. 7-8) ------------------------------------------------------
    advantage: str = _opt("ap_grpo", "advantage estimator, a name in spatialrl.advantages.ADVANTAGE_ESTIMATORS: "
                                     "grpo (eq. 7), ap_grpo (eq. 8), absolute (Table 3) or one you registered")
    alpha: float = _opt(1.0, "AP-GRPO exponent of the absolute term r_hat**alpha (eq. 8; paper 1.0; 0 gives GRPO)")
    adv_clip: float | None = _opt(1.5, "symmetric advantage clip c: advantages are clipped to [-c, c] "
                                       "(sec. 3.4; paper 1.5); null: no clipping")
    adv_eps: float = _opt(1e-6, "epsilon added to the group reward std (eq. 7-8)")

    # -- rewards (eq. 2-4; SVQA-R1 eq. 1) -----------------------------------------------------------
    rewards: dict[str, float] = _opt({"accuracy": 0.9, "format": 0.1},
                                     "reward components and their weights; total R = sum of weight * component. "
                                     "Components: accuracy (SNRA r_hat), format (binary), semantic (Sentence-BERT "
                                     "cosine), iou (box IoU). Smooth Operator eq. 4 with lambda 0.1: "
                                     "{accuracy: 0.9, format: 0.1}; SVQA-R1 eq. 1: {format: 0.5, semantic: 0.5}")
    abs_rewards: list[str] = _opt(["accuracy"], "components whose value is AP-GRPO's absolute term r_hat "
                                                "(per sample, the first that applies to it wins); each must be in "
                                                "`rewards`. May be [] for estimators that do not use it (grpo)")

    # -- SNRA and its sharpness schedule (eq. 2, 5) ---------------------------------------------------
    sharpness_kind: str = _opt("sigmoid", "sharpness schedule k(t): sigmoid (eq. 5), linear, or fixed (k_min == k_max)")
    k_min: float = _opt(1.0, "sharpness at the start of training (eq. 5; paper 1.0)")
    k_max: float = _opt(100.0, "sharpness at the end of training (eq. 5; paper 100.0); >= k_min")
    tau: float = _opt(0.5, "centre of the sigmoid schedule as a fraction of training, in (0, 1) (eq. 5; paper 0.5)")
    steepness: float = _opt(10.0, "steepness s of the sigmoid schedule, > 0 (eq. 5; paper 10)")
    snra_operator: str = _opt("sigmoid", "SNRA operator: sigmoid (eq. 2, 2 / (1 + exp(k e))), tanh (1 - tanh(k e), Table 8) "
                                "or binary (Table 2's S1: 1 when e <= 0.01, else 0; ignores k)")
    error_mode: str = _opt("absolute", "numeric error: absolute (eq. 1, (y_hat - y)^2 in SI units) or relative "
                                       "(((y_hat - y) / y)^2; our addition)")
    e_max: float = _opt(5.3, "error given to an unparsable answer, and cap on any error (snra(1, 5.3) < 0.01)")
    require_think: bool = _opt(True, "the format reward requires <think>...</think> before <answer>...</answer>")

    # -- Spatial-GRPO (SVQA-R1 sec. 3.3) -----------------------------------------------------------
    mirror_pairs: bool = _opt(False, "sample each prompt and its mirrored twin in the same generation batch and "
                                     "process (needed by the consistency penalty)")
    mirror_twins: str = _opt("drop", "with mirror_pairs false: drop (default) trains each question once, on its "
                                     "original view (mirrored rows whose pair_id has an original are removed "
                                     "before max_samples; the log says how many); keep: every row is its own "
                                     "prompt, so one pass over the data trains each question twice, once per view. "
                                     "Unused with mirror_pairs, which needs both views")
    stratify_pairs_by: str | None = _opt(None, "dataset column (e.g. question_type) whose values the mirror pairs' "
                                               "order cycles through, so a short run sees each value about equally "
                                               "often (our addition); comma-separated columns nest "
                                               "(question_type,answer: within a type its answers alternate); "
                                               "requires mirror_pairs; null: one random order")
    consistency_reward: str | None = _opt(None, "component the view-consistency penalty acts on (SVQA-R1 eq. 2-4): "
                                                "semantic (the paper) or accuracy (combined); requires mirror_pairs "
                                                "and must be in `rewards`; null: no penalty")
    consistency_threshold: float = _opt(0.5, "only samples whose component reward exceeds this lose eta*|delta| "
                                             "(the paper's delta = 0.5)")
    consistency_eta: float = _opt(1.0, "penalty scale eta (paper 1.0)")

    # -- optimisation (eq. 9) ---------------------------------------------------------------------
    num_generations: int = _opt(8, "completions sampled per prompt, G (paper 8)")
    per_device_train_batch_size: int = _opt(8, "completions (not prompts) per device per optimisation step, "
                                               "as in TRL")
    gradient_accumulation_steps: int = _opt(1, "micro-steps per optimiser step; TRL also generates once every "
                                               "this many steps (steps_per_generation)")
    learning_rate: float = _opt(1e-6, "AdamW learning rate (paper 1e-6)")
    weight_decay: float = _opt(0.01, "AdamW weight decay (paper 0.01)")
    beta: float = _opt(0.02, "KL coefficient beta_KL against the reference model (eq. 9; paper 0.02); 0 drops "
                             "the reference model")
    epsilon: float = _opt(0.2, "PPO clip range epsilon of the ratio (eq. 9)")
    loss_type: str = _opt("grpo", "TRL loss aggregation: grpo (per-sequence mean, as eq. 9 and SVQA-R1 eq. 6), "
                                  "dapo, dr_grpo, bnpo, ...")
    max_steps: int = _opt(100, "optimiser steps; also T of the sharpness schedule (eq. 5)")
    max_seconds: float | None = _opt(None, "stop after this many seconds of training wall-clock time (checked after "
                                           "each optimiser step); null: no limit. T of the sharpness schedule stays "
                                           "max_steps, so a run cut short never reaches k_max")
    max_completion_length: int = _opt(256, "maximum new tokens per completion")
    temperature: float = _opt(1.0, "sampling temperature of the rollouts")
    seed: int = _opt(0, "random seed (sampling, shuffling, weights of new adapters)")
    logging_steps: int = _opt(1, "log metrics every this many steps")
    save_steps: int = _opt(50, "save a checkpoint every this many steps")
    save_total_limit: int | None = _opt(2, "keep at most this many checkpoints; null: keep all")
    gradient_checkpointing: bool = _opt(True, "recompute activations in the backward pass (TRL's default; saves "
                                              "memory on GPUs, costs time; turn off for tiny CPU models)")
    bf16: bool = _opt(False, "train in bfloat16 mixed precision (GPUs); ignored on CPU")
    use_cpu: bool | None = _opt(None, "train on the CPU; null: automatically when no CUDA device is available")
    torch_threads: int | None = _opt(None, "torch.set_num_threads for CPU runs; null: torch's default")
    report_to: str = _opt("none", "experiment trackers for the Trainer: none, tensorboard, wandb, ... "
                                  "(comma-separated)")
    share_prompt_pass: bool = _opt(False, "score the G completions of a prompt on one pass over their shared "
                                          "prompt (spatialrl.train.shared_prompt): the same log-probs for less "
                                          "compute (0.62x the demo's step time); Qwen2.5-VL-style models, one "
                                          "process, no gradient checkpointing; else TRL's pass runs")

    # -- LoRA (peft) -----------------------------------------------------------------------------
    lora: bool = _opt(False, "train LoRA adapters (peft) instead of all weights")
    lora_r: int = _opt(16, "LoRA rank r (size of the adapter matrices)")
    lora_alpha: int = _opt(32, "LoRA scaling alpha (updates are scaled by alpha / r)")
    lora_dropout: float = _opt(0.05, "dropout probability on the LoRA input, in [0, 1)")
    lora_target_modules: list[str] | str = _opt("all-linear", "modules that get adapters: 'all-linear' or a list "
                                                              "of module names")

    # -- pass-through -----------------------------------------------------------------------------
    extra_trl_args: dict[str, Any] = _opt({}, "further trl.GRPOConfig arguments, passed as is (e.g. "
                                              "warmup_steps, lr_scheduler_type, num_iterations); keys are checked "
                                              "against GRPOConfig's fields")

    #: ``trl.GRPOConfig`` arguments :meth:`to_grpo_args` sets (extra_trl_args may not).
    MANAGED_TRL_ARGS: typing.ClassVar[tuple[str, ...]] = (
        "output_dir", "learning_rate", "weight_decay", "beta", "epsilon", "loss_type", "num_generations",
        "per_device_train_batch_size", "gradient_accumulation_steps", "max_steps", "max_completion_length",
        "temperature", "seed", "logging_steps", "save_steps", "save_total_limit", "bf16", "use_cpu", "report_to",
        "gradient_checkpointing", "activation_checkpointing", "reward_weights",
    )  # fmt: skip

    def __post_init__(self) -> None:
        self._coerce_fields()
        self._check_data_fields()
        self._check_advantage()
        self._check_rewards()
        self._check_sharpness()
        self._check_consistency()
        self._check_optimisation()
        self._check_lora()
        self._check_extra_args("GRPOConfig", self.MANAGED_TRL_ARGS)
        self._check_batch()

    # -- checks -----------------------------------------------------------------------------------
    def _check_advantage(self) -> None:
        from spatialrl.advantages import ADVANTAGE_ESTIMATORS

        if self.advantage not in ADVANTAGE_ESTIMATORS:
            self._fail("advantage", f"must be one of {sorted(ADVANTAGE_ESTIMATORS)}{_did_you_mean(self.advantage, ADVANTAGE_ESTIMATORS)} "
                       f"(add your own with spatialrl.advantages.register_advantage); got {self.advantage!r}")
        self._check_at_least("alpha", 0, "0 turns AP-GRPO into GRPO")
        self._check_positive("adv_clip", "null disables clipping", optional=True)
        self._check_at_least("adv_eps", 0)

    def uses_abs_rewards(self) -> bool:
        """Whether the advantage estimator takes an absolute term (``abs_rewards``)."""
        import inspect

        from spatialrl.advantages import ADVANTAGE_ESTIMATORS

        fn = ADVANTAGE_ESTIMATORS[self.advantage]
        return "abs_rewards" in inspect.signature(fn).parameters

    def _check_rewards(self) -> None:
        if not self.rewards:
            self._fail("rewards", "must name at least one component with a weight, e.g. {accuracy: 0.9, format: 0.1}; got {}")
        for name, weight in self.rewards.items():
            if name not in REWARD_COMPONENTS:
                self._fail("rewards", f"has an unknown component {name!r}{_did_you_mean(name, REWARD_COMPONENTS)}; "
                           f"valid: {', '.join(REWARD_COMPONENTS)}")
            if weight < 0:
                self._fail("rewards", f"weight of {name!r} must be >= 0; got {weight}")
        if not sum(self.rewards.values()) > 0:
            self._fail("rewards", f"needs a positive weight on at least one component; got {self.rewards}")
        if len(set(self.abs_rewards)) != len(self.abs_rewards):
            self._fail("abs_rewards", f"lists a component twice; got {self.abs_rewards}")
        for name in self.abs_rewards:
            if name not in self.rewards:
                self._fail("abs_rewards", f"names {name!r}, which is not in rewards ({', '.join(self.rewards)}): add it "
                           f"to rewards or choose abs_rewards among them")
        if not self.abs_rewards and self.uses_abs_rewards():
            self._fail("abs_rewards", f"must name at least one component for advantage {self.advantage!r} (its absolute "
                       f"term r_hat**alpha), e.g. [accuracy]; got []")

    def _check_sharpness(self) -> None:
        from spatialrl.rewards.snra import OPERATORS

        try:
            self.sharpness_schedule()
        except ValueError as exc:
            text = str(exc)
            match = re.search(r"SharpnessSchedule\.(kind|k_min|k_max|tau|steepness)\b", text)
            culprit = match.group(1) if match else "k_max"  # "a fixed schedule has one k: set k_min == k_max"
            culprit = "sharpness_kind" if culprit == "kind" else culprit
            self._fail(culprit, f"is invalid for the sharpness schedule (eq. 5): {text}")
        if self.snra_operator not in OPERATORS:
            self._value_error("snra_operator", f"one of {sorted(OPERATORS)}")
        if self.error_mode not in ERROR_MODES:
            self._value_error("error_mode", f"one of {list(ERROR_MODES)}")
        self._check_positive("e_max")

    def _check_consistency(self) -> None:
        if self.consistency_reward is not None:
            if not self.mirror_pairs:
                self._fail("consistency_reward", f"is {self.consistency_reward!r} but mirror_pairs is false: the "
                           "view-consistency penalty compares a prompt's group with its mirrored twin's; set "
                           "mirror_pairs: true (or consistency_reward: null)")
            if self.consistency_reward not in self.rewards:
                self._fail("consistency_reward", f"names {self.consistency_reward!r}, which is not in rewards "
                           f"({', '.join(self.rewards)}); the penalty acts on a weighted component")
        self._check_at_least("consistency_eta", 0)
        if self.mirror_twins not in MIRROR_TWINS:
            self._value_error("mirror_twins", f"one of {list(MIRROR_TWINS)}")

    def _check_optimisation(self) -> None:
        self._check_at_least("num_generations", 2, "group-relative advantages need at least two samples per prompt")
        self._check_runtime_fields()
        self._check_at_least("beta", 0, "0 disables the KL term")
        self._check_positive("epsilon")
        if self.loss_type not in GRPO_LOSS_TYPES:
            self._value_error("loss_type", f"one of {list(GRPO_LOSS_TYPES)}")
        self._check_at_least("max_steps", 1)
        self._check_positive("max_seconds", "null: no time limit", optional=True)
        self._check_at_least("max_completion_length", 1)
        self._check_positive("temperature")

    def steps_per_generation(self) -> int:
        """Optimisation micro-steps served by one generation batch (TRL's ``steps_per_generation``)."""
        extra = self.extra_trl_args
        if extra.get("generation_batch_size") is not None:
            return int(extra["generation_batch_size"]) // (self.per_device_train_batch_size * _world_size())
        if extra.get("steps_per_generation") is not None:
            return int(extra["steps_per_generation"])
        return self.gradient_accumulation_steps

    def _check_batch(self) -> None:
        extra = self.extra_trl_args
        world = _world_size()
        procs = f" x {world} processes" if world > 1 else ""
        if extra.get("generation_batch_size") is not None and extra.get("steps_per_generation") is not None:
            self._fail("extra_trl_args", "sets both generation_batch_size and steps_per_generation; TRL takes one of them")
        if extra.get("generation_batch_size") is not None:
            gbs = int(extra["generation_batch_size"])
            if gbs % (self.per_device_train_batch_size * world):
                self._fail("extra_trl_args", f"generation_batch_size ({gbs}) must be a multiple of "
                           f"per_device_train_batch_size{procs} ({self.per_device_train_batch_size * world})")
            what = "extra_trl_args.generation_batch_size"
        elif extra.get("steps_per_generation") is not None:
            what = f"per_device_train_batch_size x extra_trl_args.steps_per_generation{procs}"
        else:
            what = f"per_device_train_batch_size x gradient_accumulation_steps{procs}"
        local = self.per_device_train_batch_size * self.steps_per_generation()
        total = local * world
        if total % self.num_generations:
            self._fail("per_device_train_batch_size", f"is {self.per_device_train_batch_size}, but {what} = {total} "
                       f"completions per generation must be a multiple of num_generations ({self.num_generations}) "
                       "so that every prompt's group is complete (TRL's rule); e.g. set per_device_train_batch_size "
                       f"to {self.num_generations}")
        if self.stratify_pairs_by is not None and not self.mirror_pairs:
            self._fail("stratify_pairs_by", f"is {self.stratify_pairs_by!r} but mirror_pairs is false: the stratified "
                       "order is an order of mirror pairs; set mirror_pairs: true (or stratify_pairs_by: null)")
        if self.mirror_pairs:
            if local % self.num_generations:
                self._fail("per_device_train_batch_size", f"x steps per generation = {local} completions per process "
                           f"must be a multiple of num_generations ({self.num_generations}) with mirror_pairs, so that "
                           "each process holds whole groups")
            prompts = local // self.num_generations
            if prompts % 2:
                self._fail("gradient_accumulation_steps", f"gives {prompts} prompt(s) per process per generation "
                           f"(per_device_train_batch_size {self.per_device_train_batch_size} x "
                           f"{self.steps_per_generation()} steps per generation / num_generations {self.num_generations}); "
                           "with mirror_pairs this must be even, because an original and its mirror are generated "
                           "in the same batch on the same process and pairs are never split; e.g. double "
                           "gradient_accumulation_steps or per_device_train_batch_size")

    # -- derived ----------------------------------------------------------------------------------
    def sharpness_schedule(self) -> Any:
        """The :class:`spatialrl.rewards.SharpnessSchedule` of ``sharpness_kind``, ``k_min`` ... ``steepness``."""
        from spatialrl.rewards.schedules import SharpnessSchedule

        return SharpnessSchedule(self.sharpness_kind, self.k_min, self.k_max, self.tau, self.steepness)

    def to_grpo_args(self) -> dict[str, Any]:
        """Keyword arguments for ``trl.GRPOConfig`` (bf16 forced off for CPU runs), then
        ``extra_trl_args``. ``use_cpu`` is resolved (importing torch when it is null)."""
        use_cpu = self.resolved_use_cpu()
        args: dict[str, Any] = {
            "output_dir": self.output_dir,
            "learning_rate": self.learning_rate,
            "weight_decay": self.weight_decay,
            "beta": self.beta,
            "epsilon": self.epsilon,
            "loss_type": self.loss_type,
            "num_generations": self.num_generations,
            "per_device_train_batch_size": self.per_device_train_batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "max_steps": self.max_steps,
            "max_completion_length": self.max_completion_length,
            "temperature": self.temperature,
            "seed": self.seed,
            "logging_steps": self.logging_steps,
            "save_steps": self.save_steps,
            "save_total_limit": self.save_total_limit,
            _checkpointing_arg(): self.gradient_checkpointing,
            "bf16": bool(self.bf16 and not use_cpu),
            "use_cpu": use_cpu,
            "report_to": self.report_to,
        }
        args.update(copy.deepcopy(self.extra_trl_args))
        return args

    def lora_config(self) -> Any:
        """A ``peft.LoraConfig`` from the ``lora_*`` fields, or ``None`` when ``lora`` is false."""
        return self._lora_config()


# --------------------------------------------------------------------------------------
# SFT
# --------------------------------------------------------------------------------------


@dataclass
class SFTJobConfig(_JobConfig):
    """A supervised cold start (``spatialrl sft``) on the dataset's canonical answers."""

    JOB: typing.ClassVar[str] = "sft"

    model: str = _req("model to start from: a checkpoint directory or a hub id")
    dataset: str = _req("training data: a directory written by `spatialrl data build` (hf format)")
    output_dir: str = _req("where checkpoints and the final model + processor are written")
    train_split: str = _opt("train", "split of `dataset` to train on")
    max_samples: int | None = _opt(None, "use at most this many rows (a seeded random subset); null: all")
    question_types: list[str] | None = _opt(None, "train only on these question types; null: all")
    think: str = _opt("template", "content of the <think> block of the targets: template (a short generic "
                                  "rationale per question type, never the answer), empty (<think></think>), "
                                  "option (a multiple-choice question's correct option text, as a checkpoint "
                                  "pretrained with think=option answers) or option_text (that text as the "
                                  "answer too, which parse_choice reads as the option) or direction_text (only "
                                  "rel_direction / rel_direction_allocentric answer by the option's text)")

    learning_rate: float = _opt(1e-4, "AdamW learning rate. 1e-4 suits LoRA on real checkpoints; use ~1e-5 for "
                                      "full fine-tuning of a 3B model; the random-init tiny CPU models learn much "
                                      "faster at 1e-3 (configs/sft_demo.yaml)")
    weight_decay: float = _opt(0.0, "AdamW weight decay")
    num_train_epochs: float = _opt(1.0, "passes over the data (ignored when max_steps is set)")
    max_steps: int | None = _opt(None, "optimiser steps; null: num_train_epochs decides")
    max_seconds: float | None = _opt(None, "stop after this many seconds of training wall-clock time (checked after "
                                           "each optimiser step; the learning-rate schedule still runs to max_steps); "
                                           "null: no limit")
    per_device_train_batch_size: int = _opt(8, "samples per device per micro-step")
    gradient_accumulation_steps: int = _opt(1, "micro-steps per optimiser step")
    max_length: int | None = _opt(1024, "maximum tokens of prompt + image + completion (longer samples are cut at "
                                        "the end, i.e. in the completion); null: no truncation")
    seed: int = _opt(0, "random seed")
    logging_steps: int = _opt(10, "log the loss every this many steps")
    save_steps: int = _opt(500, "save a checkpoint every this many steps")
    save_total_limit: int | None = _opt(2, "keep at most this many checkpoints; null: keep all")
    gradient_checkpointing: bool = _opt(False, "recompute activations in the backward pass (saves GPU memory for "
                                               "large models, slows tiny ones)")
    bf16: bool = _opt(False, "train in bfloat16 mixed precision (GPUs); ignored on CPU")
    use_cpu: bool | None = _opt(None, "train on the CPU; null: automatically when no CUDA device is available")
    torch_threads: int | None = _opt(None, "torch.set_num_threads for CPU runs; null: torch's default")
    report_to: str = _opt("none", "experiment trackers for the Trainer: none, tensorboard, wandb, ...")

    lora: bool = _opt(False, "train LoRA adapters (merged into the saved model at the end)")
    lora_r: int = _opt(16, "LoRA rank r (size of the adapter matrices)")
    lora_alpha: int = _opt(32, "LoRA scaling alpha (updates are scaled by alpha / r)")
    lora_dropout: float = _opt(0.05, "dropout probability on the LoRA input, in [0, 1)")
    lora_target_modules: list[str] | str = _opt("all-linear", "modules that get adapters: 'all-linear' or a list "
                                                              "of module names")

    extra_trl_args: dict[str, Any] = _opt({}, "further trl.SFTConfig arguments, passed as is (e.g. warmup_steps, "
                                              "lr_scheduler_type); keys are checked against SFTConfig's fields")

    MANAGED_TRL_ARGS: typing.ClassVar[tuple[str, ...]] = (
        "output_dir", "learning_rate", "weight_decay", "num_train_epochs", "max_steps", "per_device_train_batch_size",
        "gradient_accumulation_steps", "max_length", "seed", "logging_steps", "save_steps", "save_total_limit",
        "gradient_checkpointing", "activation_checkpointing", "bf16", "use_cpu", "report_to", "completion_only_loss",
    )  # fmt: skip

    def __post_init__(self) -> None:
        self._coerce_fields()
        self._check_data_fields()
        if self.think not in THINK_MODES:
            self._value_error("think", f"one of {list(THINK_MODES)}")
        self._check_runtime_fields()
        self._check_positive("num_train_epochs")
        self._check_at_least("max_steps", 1, "null: num_train_epochs decides", optional=True)
        self._check_positive("max_seconds", "null: no time limit", optional=True)
        self._check_at_least("max_length", 16, "it must hold the prompt, the image tokens and the answer",
                             optional=True)
        self._check_lora()
        self._check_extra_args("SFTConfig", self.MANAGED_TRL_ARGS)

    def to_sft_args(self) -> dict[str, Any]:
        """Keyword arguments for ``trl.SFTConfig``: completion-only loss, bf16 off on CPU, then
        ``extra_trl_args``. ``use_cpu`` is resolved (importing torch when it is null)."""
        use_cpu = self.resolved_use_cpu()
        args: dict[str, Any] = {
            "output_dir": self.output_dir,
            "learning_rate": self.learning_rate,
            "weight_decay": self.weight_decay,
            "num_train_epochs": self.num_train_epochs,
            "max_steps": -1 if self.max_steps is None else self.max_steps,
            "per_device_train_batch_size": self.per_device_train_batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "max_length": self.max_length,
            "seed": self.seed,
            "logging_steps": self.logging_steps,
            "save_steps": self.save_steps,
            "save_total_limit": self.save_total_limit,
            _checkpointing_arg(): self.gradient_checkpointing,
            "bf16": bool(self.bf16 and not use_cpu),
            "use_cpu": use_cpu,
            "report_to": self.report_to,
            "completion_only_loss": True,
        }
        args.update(copy.deepcopy(self.extra_trl_args))
        return args

    def lora_config(self) -> Any:
        """A ``peft.LoraConfig`` from the ``lora_*`` fields, or ``None`` when ``lora`` is false."""
        return self._lora_config()


JOBS: dict[str, type] = {"grpo": GRPOJobConfig, "sft": SFTJobConfig}
JobConfig = GRPOJobConfig | SFTJobConfig
