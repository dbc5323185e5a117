"""spatialrl's own job fields: the documented dataclasses beside TRL's config.

A training recipe is parsed by TRL's own parser (:class:`trl.TrlParser`, an
``HfArgumentParser``) into two dataclasses (:mod:`.recipe`):

- TRL's ``GRPOConfig`` (``spatialrl train``) or ``SFTConfig`` (``spatialrl sft``): every TRL
  and transformers field by its own name (``learning_rate``, ``num_generations``, ``beta``,
  ``use_vllm``, ``gradient_checkpointing``, ...), validated by TRL;
- ours, here: :class:`SpatialGRPOArguments` and :class:`SpatialSFTArguments`, the fields TRL does
  not have: data, the method (SNRA and its sharpness schedule, AP-GRPO, Spatial-GRPO mirror
  pairs and the view-consistency penalty), the pixel budget, freezing, LoRA and the plan.

Defaults of the GRPO method fields follow Smooth Operator sec. 4.1 (AP-GRPO, alpha 1, clip
c 1.5 (eq. 8), SNRA with the sigmoid sharpness schedule k 1 -> 100, tau 0.5, s 10 (eq. 5),
lambda 0.1 (eq. 4) as ``rewards: {accuracy: 0.9, format: 0.1}``). SVQA-R1 (sec. 3.2-3.3, 4.1)
is the same class with ``advantage: grpo``, ``rewards: {format: 0.5, semantic: 0.5}``,
``mirror_pairs: true`` and ``consistency_reward: semantic`` (eq. 2-4, delta 0.5, eta 1). The
papers' optimisation values (lr 1e-6, weight decay 0.01, beta_KL 0.02, G 8; eq. 9) are TRL
fields, which the recipes set.

Every field carries a help text (``dataclasses.fields(cls)[i].metadata["help"]``), which the
command line's ``--help`` shows. ``__post_init__`` coerces every field to its annotated type
(the command line gives mappings and lists as YAML text; YAML 1.1 reads ``1e-6`` as a string),
validates it and raises :class:`ConfigError` (a ``ValueError``) naming the field and saying how
to fix it. Checks that need both dataclasses (batch shapes with mirror pairs) are in
:mod:`.recipe`.

Nothing here imports torch.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Union

__all__ = [
    "ATTENTION_IMPLEMENTATIONS",
    "DISTRIBUTED",
    "REWARD_COMPONENTS",
    "THINK_MODES",
    "ConfigError",
    "SpatialGRPOArguments",
    "SpatialSFTArguments",
]

#: Reward components a GRPO job can weight (see ``spatialrl.rewards.trl``).
REWARD_COMPONENTS = ("accuracy", "format", "semantic", "iou")
#: What the <think> block of an SFT target holds.
THINK_MODES = ("template", "empty", "option", "option_text", "direction_text")
ERROR_MODES = ("absolute", "relative")
MIRROR_TWINS = ("drop", "keep")
#: How the plan assumes a job is spread over GPUs (``spatialrl plan``; configs/accelerate/).
DISTRIBUTED = ("ddp", "zero2", "zero3", "fsdp2")
#: ``attn_implementation`` values transformers accepts for Qwen2.5-VL.
ATTENTION_IMPLEMENTATIONS = ("eager", "sdpa", "flash_attention_2", "flash_attention_3")


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


def _yaml_text(value: Any) -> Any:
    """A mapping or list given as YAML flow text on the command line (``--rewards
    "{accuracy: 0.9, format: 0.1}"``), parsed; anything else as is."""
    if not isinstance(value, str) or not value.strip().startswith(("{", "[")):
        return value
    import yaml

    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        raise _Mismatch from None


def _coerce(value: Any, tp: Any) -> Any:
    """``value`` converted to type ``tp`` (lossless conversions only); ``_Mismatch`` otherwise."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if type(None) in args and value in ("null", "None", "~"):  # `--consistency_reward null` on the command line
            value = None
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
        value = _yaml_text(value)
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        return [_coerce(v, item) for v in value]
    if origin is dict:
        k_tp, v_tp = typing.get_args(tp)
        value = _yaml_text(value)
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
    #: Fields whose annotation widens the value's type so that TRL's parser (HfArgumentParser,
    #: one argparse type per field) reads them as text from the command line; the value's type.
    VALUE_TYPES: typing.ClassVar[dict[str, Any]] = {}

    def _coerce_fields(self) -> None:
        hints = {**typing.get_type_hints(type(self)), **self.VALUE_TYPES}
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
        self._check_nonempty("model", "dataset", "train_split")
        self._check_at_least("max_samples", 1, optional=True)
        if self.question_types is not None:  # type: ignore[attr-defined]
            from spatialrl.data.schema import QUESTION_TYPES

            if not self.question_types:  # type: ignore[attr-defined]
                self._fail("question_types", "must be null (all types) or a non-empty list; got []")
            for qt in self.question_types:  # type: ignore[attr-defined]
                if qt not in QUESTION_TYPES:
                    self._fail("question_types", f"has an unknown question type {qt!r}{_did_you_mean(qt, QUESTION_TYPES)}; "
                               f"valid: {', '.join(QUESTION_TYPES)}")

    def _check_lora(self) -> None:
        if self.lora_target_modules == ["all-linear"]:  # type: ignore[attr-defined]  # `--lora_target_modules all-linear`
            object.__setattr__(self, "lora_target_modules", "all-linear")
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

def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""




class _SpatialArguments(_JobConfig):
    """The checks of the fields :class:`SpatialGRPOArguments` and :class:`SpatialSFTArguments` share."""

    def _check_shared(self) -> None:
        self._coerce_fields()
        self._check_data_fields()
        self._check_positive("max_seconds", "null: no time limit", optional=True)
        self._check_at_least("torch_threads", 1, "null leaves torch's default", optional=True)
        self._check_lora()
        self._check_pixels()
        if self.attn_implementation is not None and self.attn_implementation not in ATTENTION_IMPLEMENTATIONS:  # type: ignore[attr-defined]
            self._value_error("attn_implementation", f"null or one of {list(ATTENTION_IMPLEMENTATIONS)}")
        if self.distributed not in DISTRIBUTED:  # type: ignore[attr-defined]
            self._value_error("distributed", f"one of {list(DISTRIBUTED)}")
        self._check_at_least("num_processes", 1)
        self._check_at_least("num_nodes", 1)
        if self.num_processes % self.num_nodes:  # type: ignore[attr-defined]
            self._fail("num_processes", f"({self.num_processes}) must be a multiple of num_nodes ({self.num_nodes})")  # type: ignore[attr-defined]
        self._check_positive("gpu_memory_gib")

    def _check_pixels(self) -> None:
        from spatialrl.models.pixels import PATCH

        self._check_at_least("min_pixels", PATCH * PATCH, f"one {PATCH} x {PATCH} image token; null: the data's", optional=True)
        self._check_at_least("max_pixels", PATCH * PATCH, f"one {PATCH} x {PATCH} image token; null: the data's", optional=True)
        low, high = self.min_pixels, self.max_pixels  # type: ignore[attr-defined]
        if low is not None and high is not None and high < low:
            self._fail("max_pixels", f"({high}) must be >= min_pixels ({low})")

    def lora_config(self) -> Any:
        """A ``peft.LoraConfig`` from the ``lora_*`` fields, or ``None`` when ``lora`` is false."""
        return self._lora_config()


@dataclass
class _DataAndModelArguments:
    model: str = _req("policy to start from: a checkpoint directory (e.g. from `spatialrl model tiny` or "
                      "`spatialrl sft`) or a hub id such as Qwen/Qwen2.5-VL-3B-Instruct")
    dataset: str = _req("training data: a directory written by `spatialrl data build` (hf format)")
    train_split: str = _opt("train", "split of `dataset` to train on")
    max_samples: int | None = _opt(None, "use at most this many rows (a seeded subset of whole original/mirror "
                                         "pairs); null: all")
    question_types: list[str] | None = _opt(None, "train only on these question types (see "
                                                  "spatialrl.data.schema.QUESTION_TYPES); null: all. Keep every "
                                                  "type in RL data: training on a subset erases the others")

    # -- the pixel budget (spatialrl.models.pixels) --------------------------------------------
    min_pixels: int | None = _opt(None, "smallest image area, in pixels, the processor scales images up to; one "
                                        "budget for data, processor, rollouts and evaluation. null: the dataset "
                                        "card's (else the model processor's)")
    max_pixels: int | None = _opt(None, "largest image area, in pixels (image tokens = pixels / 784): e.g. "
                                        "200704 = 256 tokens, 401408 = 512. Must equal the max_pixels the data was "
                                        "built with (its dataset card); a mismatch is refused. null: the card's")

    # -- model loading and what trains -------------------------------------------------------------
    attn_implementation: str | None = _opt(None, "attention kernel: eager, sdpa, flash_attention_2 (GPUs, "
                                                 "`pip install flash-attn`); null: transformers' default")
    freeze_vision_tower: bool = _opt(False, "keep the vision encoder's blocks and patch embedding fixed (common for "
                                            "RL on 7B+; saves their gradients and optimizer states)")
    freeze_merger: bool = _opt(False, "keep the merger (the vision-to-language projector) fixed")
    lora: bool = _opt(False, "train LoRA adapters (peft) instead of all weights (merged into the saved model)")
    lora_r: int = _opt(16, "LoRA rank r (size of the adapter matrices)")
    lora_alpha: int = _opt(32, "LoRA scaling alpha (updates are scaled by alpha / r)")
    lora_dropout: float = _opt(0.05, "dropout probability on the LoRA input, in [0, 1)")
    # a list default: TRL's parser gives a list-typed field no default otherwise; ["all-linear"] reads as "all-linear"
    lora_target_modules: list[str] | str = _opt(["all-linear"], "modules that get adapters: 'all-linear', a "
                                                              "module-name regex, or a list of module names")

    # -- run control ----------------------------------------------------------------------------
    max_seconds: float | None = _opt(None, "stop after this many seconds of training wall-clock time (checked after "
                                           "each optimiser step; the schedules still run to max_steps); null: no limit")
    torch_threads: int | None = _opt(None, "torch.set_num_threads for CPU runs; null: torch's default")

    # -- what `spatialrl plan` assumes (a launch's real world size wins at run time) -------------
    distributed: str = _opt("ddp", "how the job is spread over GPUs, for the plan's memory estimate: ddp, zero2, "
                                   "zero3 or fsdp2 (launch with the matching configs/accelerate/*.yaml)")
    num_processes: int = _opt(1, "GPUs the job runs on in total (accelerate's num_processes), for the plan")
    num_nodes: int = _opt(1, "machines the job runs on, for the plan")
    gpu_memory_gib: float = _opt(80.0, "memory of one GPU in GiB (80 for an A100/H100 80GB); the plan warns "
                                       "when its estimate does not fit")

# --------------------------------------------------------------------------------------
# GRPO
# --------------------------------------------------------------------------------------


@dataclass
class SpatialGRPOArguments(_DataAndModelArguments, _SpatialArguments):
    """spatialrl's fields of a GRPO job (``spatialrl train``), beside TRL's ``GRPOConfig``;
    defaults follow Smooth Operator sec. 4.1."""

    JOB: typing.ClassVar[str] = "grpo"
    VALUE_TYPES: typing.ClassVar[dict[str, Any]] = {"rewards": dict[str, float]}

    # -- advantages (Smooth Operator eq. 7-8) ------------------------------------------------------
    advantage: str = _opt("ap_grpo", "advantage estimator, a name in spatialrl.advantages.ADVANTAGE_ESTIMATORS: "
                                     "grpo (eq. 7), ap_grpo (eq. 8), absolute (Table 3) or one you registered")
    alpha: float = _opt(1.0, "AP-GRPO exponent of the absolute term r_hat**alpha (eq. 8; paper 1.0; 0 gives GRPO)")
    adv_clip: float | None = _opt(1.5, "symmetric advantage clip c: advantages are clipped to [-c, c] "
                                       "(sec. 3.4; paper 1.5); null: no clipping")
    adv_eps: float = _opt(1e-6, "epsilon added to the group reward std (eq. 7-8)")

    # -- rewards (eq. 2-4; SVQA-R1 eq. 1) -----------------------------------------------------------
    # typed for the command line (--rewards "{accuracy: 0.9, format: 0.1}"); the value's type is in VALUE_TYPES
    rewards: dict[str, float] | str | None = _opt({"accuracy": 0.9, "format": 0.1},
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

    # -- trainer extras -------------------------------------------------------------------------
    share_prompt_pass: bool = _opt(False, "score the G completions of a prompt on one pass over their shared "
                                          "prompt (spatialrl.train.shared_prompt): the same log-probs for less "
                                          "compute (0.62x the demo's step time); Qwen2.5-VL-style models, one "
                                          "process, no gradient checkpointing; else TRL's pass runs")
    dynamic_sampling: bool = _opt(False, "drop groups whose G rewards are all equal (no learning signal) and refill "
                                         "the batch from further prompts, as DAPO does; a baseline the papers never "
                                         "compared against SNRA (spatialrl.train.dynamic_sampling)")
    dynamic_sampling_max_rounds: int = _opt(3, "extra generation rounds dynamic sampling may spend refilling one "
                                               "batch; what is still missing is filled with zero-spread groups")

    def __post_init__(self) -> None:
        self._check_shared()
        self._check_advantage()
        self._check_rewards()
        self._check_sharpness()
        self._check_consistency()
        self._check_at_least("dynamic_sampling_max_rounds", 0)

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

    # -- derived ----------------------------------------------------------------------------------
    def sharpness_schedule(self) -> Any:
        """The :class:`spatialrl.rewards.SharpnessSchedule` of ``sharpness_kind``, ``k_min`` ... ``steepness``."""
        from spatialrl.rewards.schedules import SharpnessSchedule

        return SharpnessSchedule(self.sharpness_kind, self.k_min, self.k_max, self.tau, self.steepness)


# --------------------------------------------------------------------------------------
# SFT
# --------------------------------------------------------------------------------------


@dataclass
class SpatialSFTArguments(_DataAndModelArguments, _SpatialArguments):
    """spatialrl's fields of a supervised cold start (``spatialrl sft``) on the dataset's canonical
    answers, beside TRL's ``SFTConfig``."""

    JOB: typing.ClassVar[str] = "sft"

    think: str = _opt("template", "content of the <think> block of the targets: template (a short generic "
                                  "rationale per question type, never the answer), empty (<think></think>), "
                                  "option (a multiple-choice question's correct option text, as a checkpoint "
                                  "pretrained with think=option answers) or option_text (that text as the "
                                  "answer too, which parse_choice reads as the option) or direction_text (only "
                                  "rel_direction / rel_direction_allocentric answer by the option's text)")

    def __post_init__(self) -> None:
        self._check_shared()
        if self.think not in THINK_MODES:
            self._value_error("think", f"one of {list(THINK_MODES)}")


SPATIAL_ARGUMENTS: dict[str, type] = {"grpo": SpatialGRPOArguments, "sft": SpatialSFTArguments}
