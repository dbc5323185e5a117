"""spatialrl in verl 0.9.1: SNRA under k(t), Spatial-GRPO mirror pairs and AP-GRPO.

Read against verl 0.9.1's source (``verl/experimental/reward_loop``, ``verl/trainer/ppo/
core_algos.py``, ``ray_trainer.py``, ``main_ppo_v0.py``, ``utils.py``). What that version allows
shapes the design:

- Rewards are computed **per sample** by reward-loop workers (Ray actors), streamed during the
  rollout (``RewardManagerBase.run_single``): a reward manager sees neither the training step nor
  the other samples of the batch, so neither k(t) nor the mirror-pair penalty can act there.
- A registered advantage estimator is called by ``ray_trainer.compute_advantage`` with
  ``token_level_rewards``, ``response_mask``, ``config`` (the ``algorithm`` section), ``index``
  (the per-prompt ``uid``) and, when the batch holds the key, ``reward_baselines``; nothing else
  of the batch (``non_tensor_batch`` goes only to ``gdpo``).
- There is no data-sampler setting: ``create_rl_sampler`` makes a RandomSampler (``data.shuffle``)
  or a SequentialSampler, nothing else.
- The default trainer (``trainer.use_v1=true``) needs the TransferQueue package and hands the
  advantage step only ``uid``/``rm_scores``/log-probs; the per-sample fields our batch stage reads
  reach it only in the v0 trainer (``RayPPOTrainer``).

So the integration has two stages and one thin launcher:

1. **Per sample** (reward workers): the reward manager ``"spatialrl"``
   (:class:`SpatialRLRewardManager`, registered in ``verl.experimental.reward_loop``'s registry on
   import) parses each completion once and returns its reward at a fixed k (what verl logs and
   validates on) and, in ``reward_extra_info``, the k-free error ``spatialrl_error`` (NaN where the
   accuracy reward does not apply), the format reward ``spatialrl_format``, the binary
   correctness ``acc`` and the fixed-k accuracy ``spatialrl_accuracy``.
2. **Per batch** (the driver, just before the advantages): :class:`SpatialRLPPOTrainer` (a
   ``RayPPOTrainer``) rescores the whole batch with :meth:`SpatialRLRewardManager.__call__`:
   SNRA at k(t) from the trainer's step, the total reward, the Spatial-GRPO penalty across every
   original/mirror pair of groups in the batch, rewards on the last valid response token (as
   verl's managers put them), and r_hat for AP-GRPO.
3. **r_hat route** to the estimator: the batch stage writes r_hat, shape ``(batch,)``, to
   ``batch.batch["reward_baselines"]``, the one per-sample batch key verl 0.9.1's
   ``compute_advantage`` forwards to a registered estimator (``adv_kwargs["reward_baselines"]``;
   REMAX is its only other user, and the key is written only for ``ap_grpo``/``absolute``). The
   estimators ``"ap_grpo"`` and ``"absolute"`` (registered with ``register_adv_est`` on import)
   read it there and call :func:`spatialrl.advantages.ap_grpo` / ``absolute``. NaN in it marks a
   row no reward component applies to (see the None rule below): advantage 0, outside its group's
   baseline, as in the TRL trainer.

The launcher ``python -m spatialrl.integrations.verl`` is verl's ``main_ppo`` with its own config
(``verl/trainer/config/ppo_trainer.yaml``) and a TaskRunner (:func:`task_runner_class`) that, in
verl's TaskRunner process, imports this module (registrations), builds the trainer above and, with
``spatialrl.mirror_pairs`` (default true), :class:`MirrorPairSampler` in place of verl's sampler.
It runs the v0 trainer (``trainer.use_v1=false`` is set for you).

Launch (any other verl override as usual; the ``+spatialrl.*`` / ``+algorithm.spatialrl.*`` keys
are optional, shown with their defaults)::

    python -m spatialrl.integrations.verl \\
        data.train_files=DIR/train.parquet data.val_files=DIR/test.parquet \\
        data.shuffle=true data.filter_overlong_prompts=false data.train_batch_size=64 \\
        algorithm.adv_estimator=ap_grpo actor_rollout_ref.rollout.n=8 \\
        reward.reward_manager.source=importlib \\
        reward.reward_manager.module.path=pkg://spatialrl.integrations.verl \\
        reward.reward_manager.name=SpatialRLRewardManager \\
        +spatialrl.sharpness_kind=sigmoid +spatialrl.k_min=1.0 +spatialrl.k_max=100.0 \\
        +spatialrl.tau=0.5 +spatialrl.steepness=10.0 \\
        '+spatialrl.rewards={accuracy: 0.9, format: 0.1}' +spatialrl.consistency_reward=accuracy \\
        +spatialrl.mirror_pairs=true \\
        +algorithm.spatialrl.alpha=1.0 +algorithm.spatialrl.clip=1.5 +algorithm.spatialrl.eps=1e-6

The registry route works too: ``reward.reward_manager.name=spatialrl`` (source ``register``, the
default) with ``reward.custom_reward_function.path=pkg://spatialrl.integrations.verl
reward.custom_reward_function.name=compute_score``, which makes verl import this module in each
reward worker before it looks the name up. ``data.train_batch_size`` must be even (whole pairs);
``data.filter_overlong_prompts=false`` because verl's multimodal length filter imports
``qwen_vl_utils`` (torchvision) and silently drops every row when that import fails.
``algorithm.adv_estimator=grpo`` keeps verl's own GRPO on the rescored rewards.

Per-sample only (no launcher, no pairs, no schedule): ``reward.custom_reward_function.path=
pkg://spatialrl.integrations.verl reward.custom_reward_function.name=compute_score`` with verl's
``naive`` manager; k is ``+reward.custom_reward_function.reward_kwargs.sharpness=K``, else a row's
``extra_info["sharpness"]``, else :data:`DEFAULT_SHARPNESS`.

**Steps.** verl counts training steps from 1, TRL from 0; k(t) uses ``t = global_steps - 1`` and
``T = total_training_steps``, so both trainers give the same k at the same point of training.

**The None rule.** spatialrl's accuracy reward returns ``None`` where it does not apply (free-text
open-ended rows). As in the TRL trainer (``spatialrl.train.advantage_step``): a component that
does not apply adds 0 to the weighted total (NaN-sum), its r_hat for AP-GRPO is 1 (plain GRPO for
that row), and a row that no weighted component applies to (possible only without a format weight)
scores 0.0 and is marked unscorable (r_hat NaN). ``compute_score`` therefore always returns a
float, equal to the TRL total ``sum_f w_f r_f`` over the components that apply.

Only the ``accuracy`` (SNRA) and ``format`` components exist here (the semantic reward needs
sentence-transformers and a GPU-side model: use the TRL trainer for SVQA-R1's semantic variant),
so the consistency penalty acts on ``accuracy``, the combined method of docs/design.md.

Importing this module needs only the core (numpy, pint, pyyaml); the verl pieces are defined and
registered only when verl imports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from spatialrl.advantages import absolute as _absolute
from spatialrl.advantages import ap_grpo as _ap_grpo
from spatialrl.rewards.schedules import SharpnessSchedule
from spatialrl.rewards.snra import BINARY_TOLERANCE, DEFAULT_E_MAX, OPERATORS
from spatialrl.rewards.trl import AccuracyReward, FormatReward
from spatialrl.train.advantage_step import AdvantageSettings, spatial_advantages

__all__ = [
    "ABS_REWARD_KEY",
    "DEFAULT_SHARPNESS",
    "EXTRA_KEYS",
    "BatchScores",
    "MirrorPairSampler",
    "VerlSettings",
    "compute_score",
    "main",
    "score_batch",
    "settings_from",
    "task_runner_class",
]

#: The batch key the batch stage writes r_hat to, and the kwarg verl 0.9.1 passes it under.
ABS_REWARD_KEY = "reward_baselines"
#: ``reward_extra_info`` keys of the per-sample stage (they land in ``batch.non_tensor_batch``).
EXTRA_KEYS = ("spatialrl_error", "spatialrl_format", "spatialrl_accuracy", "acc")
#: Reward columns the accuracy reward reads from a row's ``extra_info`` (spatialrl's verl export).
_COLUMNS = ("answer_type", "answer", "answer_value", "dimension", "options", "answer_index", "bbox")
#: Estimators that take r_hat (the only ones the batch stage writes ``reward_baselines`` for).
ESTIMATORS = ("ap_grpo", "absolute")


@dataclass
class VerlSettings:
    """spatialrl's settings in a verl run: the ``spatialrl`` section of the config
    (``+spatialrl.<field>=value``). Names and defaults are those of ``spatialrl train``.

    Attributes:
        sharpness_kind: k(t): ``sigmoid`` (eq. 5), ``linear`` or ``fixed`` (k_min == k_max).
        k_min: sharpness at the start (paper 1.0).
        k_max: sharpness at the end (paper 100.0).
        tau: sigmoid centre as a fraction of training (paper 0.5).
        steepness: sigmoid steepness s (paper 10).
        sharpness: the fixed k of the per-sample stage (what verl logs and validates on) and of
            ``compute_score``; None: the schedule's start, k(0).
        snra_operator: ``sigmoid`` (eq. 2), ``tanh`` or ``binary``.
        error_mode: ``absolute`` (eq. 1) or ``relative``.
        e_max: error of an unparsable answer, and cap on any error.
        require_think: the format reward requires ``<think>..</think>`` before the answer.
        rewards: components and weights of the total (``accuracy``, ``format``).
        consistency_reward: the component the Spatial-GRPO penalty acts on (``accuracy``) or None.
        consistency_threshold: SVQA-R1's delta (0.5).
        consistency_eta: SVQA-R1's eta (1.0).
        mirror_pairs: the launcher replaces verl's sampler with :class:`MirrorPairSampler`.
    """

    sharpness_kind: str = "sigmoid"
    k_min: float = 1.0
    k_max: float = 100.0
    tau: float = 0.5
    steepness: float = 10.0
    sharpness: float | None = None
    snra_operator: str = "sigmoid"
    error_mode: str = "absolute"
    e_max: float = DEFAULT_E_MAX
    require_think: bool = True
    rewards: dict[str, float] = field(default_factory=lambda: {"accuracy": 0.9, "format": 0.1})
    consistency_reward: str | None = "accuracy"
    consistency_threshold: float = 0.5
    consistency_eta: float = 1.0
    mirror_pairs: bool = True

    def __post_init__(self) -> None:
        self.rewards = {str(k): float(v) for k, v in dict(self.rewards).items()}
        unknown = set(self.rewards) - {"accuracy", "format"}
        if unknown:
            raise ValueError(f"spatialrl.rewards: the verl integration has the components accuracy and format; "
                             f"got {sorted(unknown)} (the semantic and IoU rewards run in the TRL trainer)")
        if not self.rewards:
            raise ValueError("spatialrl.rewards must name at least one component (accuracy, format)")
        if self.consistency_reward is not None and self.consistency_reward not in self.rewards:
            raise ValueError(f"spatialrl.consistency_reward={self.consistency_reward!r} is not in spatialrl.rewards "
                             f"({', '.join(self.rewards)}); set it to null or add the component")
        if self.snra_operator not in OPERATORS:
            raise ValueError(f"spatialrl.snra_operator must be one of {sorted(OPERATORS)}, got {self.snra_operator!r}")
        if self.sharpness is not None and not (math.isfinite(self.sharpness) and self.sharpness > 0):
            raise ValueError(f"spatialrl.sharpness must be a number > 0 or null, got {self.sharpness!r}")
        self.schedule()  # validates the schedule fields
        self._accuracy = AccuracyReward(self.schedule(), self.snra_operator, self.error_mode, self.e_max)
        self._format = FormatReward(self.require_think)

    def schedule(self) -> SharpnessSchedule:
        """The :class:`SharpnessSchedule` of these settings."""
        return SharpnessSchedule(self.sharpness_kind, self.k_min, self.k_max, self.tau, self.steepness)

    def fixed_k(self) -> float:
        """k of the per-sample stage: ``sharpness``, else the schedule's start (as TRL without a step)."""
        return float(self.sharpness) if self.sharpness is not None else self.schedule()(0, 1)

    def k_at(self, global_steps: int, total_steps: int) -> float:
        """k(t) at verl's (1-based) ``global_steps`` of ``total_steps``: t = global_steps - 1."""
        return self.schedule()(max(int(global_steps) - 1, 0), max(int(total_steps), 1))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


#: k of ``compute_score`` when neither a kwarg nor ``extra_info["sharpness"]`` gives one: the
#: paper schedule's start, k(0) = 1.67 (what TRL's accuracy reward uses without a trainer state).
DEFAULT_SHARPNESS = SharpnessSchedule.paper()(0, 1)


def _plain(value: Any) -> Any:
    """OmegaConf containers and numpy arrays as plain Python values."""
    if hasattr(value, "_metadata") and hasattr(value, "items"):  # DictConfig without importing omegaconf
        from omegaconf import OmegaConf

        return OmegaConf.to_container(value, resolve=True)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def settings_from(config: Any = None, **overrides: Any) -> VerlSettings:
    """:class:`VerlSettings` from a verl config's ``spatialrl`` section (absent: defaults), then
    ``overrides``. Unknown keys are refused with the list of known ones."""
    values: dict[str, Any] = {}
    section = None if config is None else (config.get("spatialrl") if hasattr(config, "get") else None)
    if section is not None:
        values.update(_plain(section))
    values.update(overrides)
    known = {f.name for f in fields(VerlSettings)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown spatialrl setting(s) {sorted(unknown)}; known: {sorted(known)}")
    return VerlSettings(**values)


def _columns(infos: Sequence[Mapping[str, Any]], ground_truths: Sequence[Any] | None = None) -> dict[str, list]:
    """The accuracy reward's columns from the rows' ``extra_info`` (spatialrl's verl export)."""
    out: dict[str, list] = {name: [] for name in _COLUMNS}
    for i, info in enumerate(infos):
        info = _plain(info) or {}
        if "answer_type" not in info:
            raise ValueError(
                "extra_info has no 'answer_type': spatialrl's verl reward reads the reward fields that "
                "`spatialrl data build --format verl` writes to extra_info (answer_type, answer, answer_value, ...)"
            )
        for name in _COLUMNS:
            value = _plain(info.get(name))
            if name == "answer" and value is None and ground_truths is not None:
                value = ground_truths[i]
            out[name].append(value)
    return out


def sample_errors(texts: Sequence[str], infos: Sequence[Mapping[str, Any]], settings: VerlSettings,
                  ground_truths: Sequence[Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per completion: the k-free error e (NaN where the accuracy reward does not apply) and the
    format reward, both ``(N,)`` float64, computed by the TRL reward callables themselves."""
    errors = settings._accuracy.errors(list(texts), **_columns(infos, ground_truths))
    formats = settings._format(completions=list(texts))
    return (np.array([np.nan if e is None else e for e in errors], dtype=np.float64),
            np.asarray(formats, dtype=np.float64))


def _components(errors: np.ndarray, formats: np.ndarray, k: float, settings: VerlSettings) -> np.ndarray:
    """``(N, F)`` component rewards in the order of ``settings.rewards``; NaN where one does not apply."""
    columns = []
    for name in settings.rewards:
        if name == "accuracy":
            acc = np.full(len(errors), np.nan)
            known = ~np.isnan(errors)
            if known.any():
                acc[known] = OPERATORS[settings.snra_operator](errors[known], k)
            columns.append(acc)
        else:
            columns.append(formats)
    return np.stack(columns, axis=1) if columns else np.zeros((len(errors), 0))


def _total(rpf: np.ndarray, settings: VerlSettings) -> np.ndarray:
    """The None rule: NaN-sum of the weighted components; 0.0 where none applies."""
    weights = np.asarray(list(settings.rewards.values()), dtype=np.float64)
    scorable = ~np.all(np.isnan(rpf), axis=1)
    return np.where(scorable, np.nansum(rpf * weights[None, :], axis=1), 0.0)


def compute_score(data_source: Any, solution_str: str, ground_truth: Any, extra_info: Mapping[str, Any] | None = None,
                  *, sharpness: float | None = None, step: int | None = None, total_steps: int | None = None,
                  **settings: Any) -> float:
    """verl's per-sample reward: the spatialrl total reward of one completion, a float.

    ``sum_f w_f r_f`` over the components that apply (default 0.9 SNRA accuracy + 0.1 format,
    Smooth Operator eq. 4), with the TRL reward callables of :mod:`spatialrl.rewards.trl`; a
    component that does not apply adds 0 and a row none applies to scores 0.0 (module docstring).

    Args:
        data_source: verl's ``data_source`` (unused: the row's ``extra_info`` says how to score).
        solution_str: the decoded completion.
        ground_truth: ``reward_model.ground_truth`` (used when ``extra_info`` has no ``answer``).
        extra_info: the row's ``extra_info`` from spatialrl's verl export.
        sharpness: k; else ``extra_info["sharpness"]``; else k(t) at TRL's ``step`` of
            ``total_steps`` when both are given; else ``settings["sharpness"]``; else
            :data:`DEFAULT_SHARPNESS` (the default schedule's start).
        settings: :class:`VerlSettings` fields (``reward_kwargs``), e.g. ``rewards``, ``e_max``.
    """
    info = _plain(extra_info) or {}
    s = _settings_cached(settings)
    if sharpness is None:
        sharpness = info.get("sharpness")
    if sharpness is None and step is not None and total_steps is not None:
        sharpness = s.schedule()(step, total_steps)
    k = float(sharpness) if sharpness is not None else s.fixed_k()
    errors, formats = sample_errors([solution_str], [info], s, [ground_truth])
    return float(_total(_components(errors, formats, k, s), s)[0])


_SETTINGS_CACHE: dict[str, VerlSettings] = {}


def _settings_cached(overrides: dict[str, Any]) -> VerlSettings:
    key = repr(sorted((k, repr(v)) for k, v in overrides.items()))
    if key not in _SETTINGS_CACHE:
        _SETTINGS_CACHE[key] = settings_from(None, **overrides)
    return _SETTINGS_CACHE[key]


@dataclass
class BatchScores:
    """The batch stage's output, arrays of length N."""

    scores: np.ndarray  # the total reward per completion (0.0 where nothing applies)
    abs_rewards: np.ndarray  # r_hat for AP-GRPO, in [0, 1]; NaN for unscorable rows
    components: np.ndarray  # (N, F) after the consistency penalty, NaN where a component does not apply
    errors: np.ndarray
    formats: np.ndarray
    k: float
    deltas: np.ndarray  # eq. 2's delta per complete pair in the batch
    metrics: dict[str, float]


def score_batch(errors: np.ndarray, formats: np.ndarray, settings: VerlSettings, k: float,
                pair_ids: Sequence[Any] | None = None, views: Sequence[Any] | None = None,
                group_ids: Sequence[Any] | None = None) -> BatchScores:
    """SNRA at ``k``, the Spatial-GRPO penalty across the pairs present, totals and r_hat.

    The reward assembly is :func:`spatialrl.train.advantage_step.spatial_advantages` (the TRL
    trainer's), so both trainers turn the same components into the same rewards and r_hat.

    Args:
        errors: ``(N,)`` k-free errors (NaN: accuracy does not apply); formats: ``(N,)``.
        pair_ids / views: ``(N,)`` the row's ``pair_id`` and ``view`` (``original``/``mirror``);
            needed for the penalty (None: no penalty).
        group_ids: ``(N,)`` prompt groups (verl's ``uid``); only for the diagnostics.
    """
    errors = np.asarray(errors, dtype=np.float64)
    formats = np.asarray(formats, dtype=np.float64)
    n = len(errors)
    rpf = _components(errors, formats, k, settings)
    names = list(settings.rewards)
    use_pairs = settings.consistency_reward is not None and pair_ids is not None and views is not None
    adv = AdvantageSettings(
        estimator="grpo", abs_rewards=["accuracy"] if "accuracy" in names else [],
        consistency_reward=settings.consistency_reward if use_pairs else None,
        consistency_threshold=settings.consistency_threshold, consistency_eta=settings.consistency_eta,
    )
    mirror = None if not use_pairs else [str(v) == "mirror" for v in views]
    step = spatial_advantages(rpf, names, list(settings.rewards.values()),
                              list(range(n)) if group_ids is None else list(group_ids), adv,
                              pair_ids=None if not use_pairs else [str(p) for p in pair_ids], is_mirror=mirror)
    scorable = ~np.isnan(step.total_rewards)
    metrics = {k_: v for k_, v in step.metrics.items() if k_.startswith("consistency/")}
    metrics["sharpness/k"] = float(k)
    known = ~np.isnan(errors)
    if known.any():
        metrics["accuracy/correct"] = float((errors[known] <= BINARY_TOLERANCE).mean())
    return BatchScores(
        scores=np.where(scorable, step.total_rewards, 0.0),
        abs_rewards=np.where(scorable, step.abs_rewards, np.nan),
        components=step.rewards_per_func, errors=errors, formats=formats, k=float(k), deltas=step.deltas,
        metrics=metrics,
    )


# -- the sampler (plain Python: torch's DataLoader takes any sized iterable as a sampler) ---------


class MirrorPairSampler:
    """Dataset indices with each original directly followed by its mirrored twin.

    The pairs' order is shuffled per epoch from ``(seed, epoch)`` (``shuffle``), so verl's
    ``data.shuffle=true`` stays meaningful while a batch of an even size never splits a pair.
    Rows without a twin are left out (counted in ``lonely``). Built on
    :class:`spatialrl.train.sampler.PairRepeatSampler` (the TRL trainer's), one index per row.

    Constructor as verl calls a sampler: ``MirrorPairSampler(data_source=dataset,
    data_config=config.data)``; ``pair_ids``/``views`` are read from the dataset's ``pair_id`` and
    ``view`` columns (``dataset.dataframe`` of verl's ``RLHFDataset``) unless given. ``seed`` and
    ``shuffle`` default to ``data_config.seed`` (None: 0) and ``data_config.shuffle`` (True).
    Stateful (``state_dict``/``load_state_dict``) for verl's ``StatefulDataLoader``: a resumed
    run continues the same epoch order.
    """

    def __init__(self, data_source: Any = None, data_config: Any = None, *, pair_ids: Sequence[Any] | None = None,
                 views: Sequence[Any] | None = None, seed: int | None = None, shuffle: bool | None = None) -> None:
        from spatialrl.train.sampler import PairRepeatSampler, find_pairs

        if pair_ids is None or views is None:
            frame = getattr(data_source, "dataframe", data_source)
            try:
                pair_ids, views = list(frame["pair_id"]), list(frame["view"])
            except (KeyError, TypeError, IndexError) as error:
                raise ValueError("MirrorPairSampler needs the dataset's pair_id and view columns (spatialrl's verl "
                                 "export has them), or pair_ids= and views=") from error
        get = (lambda k, d: data_config.get(k, d)) if data_config is not None and hasattr(data_config, "get") else (
            lambda k, d: d)
        if seed is None:
            seed = get("seed", None)
        if shuffle is None:
            shuffle = bool(get("shuffle", True))
        batch_size = get("gen_batch_size", None) or get("train_batch_size", None)
        if batch_size is not None and int(batch_size) % 2:
            raise ValueError(f"data.train_batch_size={batch_size} is odd: MirrorPairSampler keeps an original and "
                             "its mirror in one batch, so the batch size must be even")
        pairs, self.lonely = find_pairs([str(p) for p in pair_ids], [str(v) for v in views])
        if not pairs:
            raise ValueError("MirrorPairSampler found no original/mirror pair (pair_id, view) in the dataset")
        self._inner = PairRepeatSampler(sorted(pairs), mini_repeat_count=1, batch_size=2, shuffle=shuffle,
                                        seed=int(seed or 0))
        self._skip = 0
        self._yielded = 0

    @property
    def pairs(self) -> list[tuple[int, int]]:
        return list(self._inner.pairs)

    @property
    def epoch(self) -> int:
        return self._inner.epoch

    def set_epoch(self, epoch: int) -> None:
        self._inner.set_epoch(epoch)

    def __len__(self) -> int:
        return 2 * len(self._inner.pairs)

    def __iter__(self) -> Iterator[int]:
        skip, self._skip = self._skip, 0
        self._yielded = 0
        for position, index in enumerate(self._inner):
            self._yielded = position + 1
            if position >= skip:
                yield index

    def state_dict(self) -> dict[str, int]:
        """The epoch and how many indices of it were handed out (a resumed run skips them)."""
        yielded = self._yielded if self._yielded < len(self) else 0
        return {"epoch": self._inner.epoch, "yielded": yielded}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self._inner.set_epoch(int(state.get("epoch", 0)))
        self._skip = int(state.get("yielded", 0))


# -- verl pieces: defined and registered only when verl imports ------------------------------------


def _estimator_options(config: Any) -> dict[str, Any]:
    """alpha / clip / eps from ``algorithm.spatialrl`` (paper defaults 1.0 / 1.5 / 1e-6)."""
    section = None
    if config is not None:
        section = config.get("spatialrl", None) if hasattr(config, "get") else getattr(config, "spatialrl", None)
    section = _plain(section) or {}
    unknown = set(section) - {"alpha", "clip", "eps"}
    if unknown:
        raise ValueError(f"algorithm.spatialrl: unknown key(s) {sorted(unknown)}; known: alpha, clip, eps")
    clip = section.get("clip", 1.5)
    return {"alpha": float(section.get("alpha", 1.0)), "clip": None if clip is None else float(clip),
            "eps": float(section.get("eps", 1e-6))}


def _abs_input(reward_baselines: Any, abs_rewards: Any, name: str) -> np.ndarray:
    values = abs_rewards if abs_rewards is not None else reward_baselines
    if values is None:
        raise ValueError(
            f"advantage estimator {name!r} needs r_hat (the accuracy component) in batch['{ABS_REWARD_KEY}']: "
            "launch with `python -m spatialrl.integrations.verl` and the spatialrl reward manager "
            "(see spatialrl.integrations.verl's docstring)"
        )
    if hasattr(values, "detach"):
        values = values.detach().float().cpu().numpy()
    return np.asarray(values, dtype=np.float64).reshape(-1)


def _outcome_estimator(name: str):
    def estimator(token_level_rewards: Any, response_mask: Any, index: Any = None, config: Any = None,
                  reward_baselines: Any = None, abs_rewards: Any = None, **kwargs: Any) -> tuple[Any, Any]:
        import torch

        scores = token_level_rewards.sum(dim=-1).detach().double().cpu().numpy()
        r_hat = _abs_input(reward_baselines, abs_rewards, name)
        if len(r_hat) != len(scores):
            raise ValueError(f"{name}: r_hat has {len(r_hat)} entries but the batch has {len(scores)} rows")
        groups = np.arange(len(scores)) if index is None else np.asarray(index, dtype=object)
        options = _estimator_options(config)
        scorable = ~np.isnan(r_hat)
        adv = np.zeros(len(scores))
        if scorable.any():
            if name == "ap_grpo":
                adv[scorable] = _ap_grpo(scores[scorable], r_hat[scorable], groups[scorable].tolist(), **options)
            else:
                options.pop("eps")
                adv[scorable] = _absolute(r_hat[scorable], groups[scorable].tolist(), **options)
        advantages = torch.as_tensor(adv, dtype=token_level_rewards.dtype, device=token_level_rewards.device)
        advantages = advantages.unsqueeze(-1) * response_mask
        return advantages, advantages

    estimator.__name__ = f"compute_{name}_outcome_advantage"
    estimator.__doc__ = (
        f"verl advantage estimator {name!r}: ``spatialrl.advantages.{name}`` on the outcome reward "
        "(``token_level_rewards.sum(-1)``) and r_hat (``reward_baselines``, NaN rows get 0), per ``index`` "
        "group, broadcast over the response tokens; options from ``algorithm.spatialrl``. Returns "
        "``(advantages, returns)``, both ``(batch, response_length)``."
    )
    return estimator


compute_ap_grpo_outcome_advantage = _outcome_estimator("ap_grpo")
compute_absolute_outcome_advantage = _outcome_estimator("absolute")


def _decode(tokenizer: Any, data: Any) -> tuple[list[str], np.ndarray]:
    """Decoded valid responses and their valid lengths, as verl's managers compute them."""
    prompt_length = data.batch["prompts"].shape[-1]
    lengths = data.batch["attention_mask"][:, prompt_length:].sum(dim=-1)
    texts = [tokenizer.decode(data.batch["responses"][i][: int(lengths[i])], skip_special_tokens=True)
             for i in range(len(lengths))]
    return texts, lengths.cpu().numpy()


def _batch_columns(data: Any) -> tuple[list[Any], list[Any], list[Any]]:
    nt = data.non_tensor_batch
    infos = [_plain(x) or {} for x in nt["extra_info"]]
    truths = [(_plain(x) or {}).get("ground_truth") for x in nt.get("reward_model", [None] * len(infos))]
    return infos, truths, [i.get("pair_id") for i in infos]


def _define_verl_pieces() -> dict[str, Any]:
    """Define the verl-facing classes and register the manager and estimators (verl importable)."""
    from verl.experimental.reward_loop.reward_manager import register as register_manager
    from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase
    from verl.trainer.ppo.core_algos import register_adv_est

    register_adv_est("ap_grpo")(compute_ap_grpo_outcome_advantage)
    register_adv_est("absolute")(compute_absolute_outcome_advantage)

    @register_manager("spatialrl")
    class SpatialRLRewardManager(RewardManagerBase):
        """verl reward manager ``"spatialrl"`` (module docstring: per-sample and batch stages).

        ``run_single`` (verl's reward loop, one sample): reward at the fixed k plus
        ``reward_extra_info`` (:data:`EXTRA_KEYS`). ``__call__(data, return_dict=False)`` (the
        batch stage, like verl's legacy batch managers): the whole batch at k(t) of
        ``data.meta_info["global_steps"]`` (1-based) of ``meta_info["total_steps"]``, the
        penalty across the pairs present (``extra_info.pair_id`` / ``view``), token-level rewards
        on the last valid response token, and ``reward_extra_info["spatialrl_accuracy"]`` = r_hat.
        Errors and formats come from ``non_tensor_batch`` when the per-sample stage left them
        there, else the responses are decoded and parsed here.
        """

        def __init__(self, config: Any, tokenizer: Any, compute_score: Any = None, reward_router_address: Any = None,
                     reward_model_tokenizer: Any = None, **kwargs: Any) -> None:
            super().__init__(config, tokenizer, compute_score)
            self.settings = settings_from(config)

        async def run_single(self, data: Any) -> dict[str, Any]:
            data = data[-1:]
            import asyncio

            loop = asyncio.get_running_loop()  # verl's reward-loop worker's loop (decode off the loop, as verl does)
            texts, _ = await loop.run_in_executor(None, lambda: _decode(self.tokenizer, data))
            infos, truths, _ = _batch_columns(data)
            errors, formats = sample_errors(texts, infos, self.settings, truths)
            k = self.settings.fixed_k()
            rpf = _components(errors, formats, k, self.settings)
            score = float(_total(rpf, self.settings)[0])
            accuracy = float(rpf[0, list(self.settings.rewards).index("accuracy")]) \
                if "accuracy" in self.settings.rewards else float("nan")
            error = float(errors[0])
            return {"reward_score": score, "reward_extra_info": {
                "spatialrl_error": error, "spatialrl_format": float(formats[0]), "spatialrl_accuracy": accuracy,
                "acc": float(not math.isnan(error) and error <= BINARY_TOLERANCE),
            }}

        def __call__(self, data: Any, return_dict: bool = False) -> Any:
            import torch

            nt = data.non_tensor_batch
            infos, truths, pair_ids = _batch_columns(data)
            prompt_length = data.batch["prompts"].shape[-1]
            lengths = data.batch["attention_mask"][:, prompt_length:].sum(dim=-1)
            if "spatialrl_error" in nt and "spatialrl_format" in nt:
                errors = np.asarray(nt["spatialrl_error"], dtype=np.float64)
                formats = np.asarray(nt["spatialrl_format"], dtype=np.float64)
            else:
                texts, _ = _decode(self.tokenizer, data)
                errors, formats = sample_errors(texts, infos, self.settings, truths)
            meta = data.meta_info
            if "global_steps" in meta and "total_steps" in meta:
                k = self.settings.k_at(meta["global_steps"], meta["total_steps"])
            else:
                k = self.settings.fixed_k()
            views = [i.get("view") for i in infos]
            uids = nt.get("uid")
            out = score_batch(errors, formats, self.settings, k, pair_ids, views,
                              None if uids is None else list(uids))
            reward = torch.zeros_like(data.batch["responses"], dtype=torch.float32)
            rows = torch.arange(len(lengths), device=reward.device)
            reward[rows, (lengths - 1).clamp(min=0)] = torch.as_tensor(out.scores, dtype=torch.float32,
                                                                       device=reward.device)
            self.last_scores = out
            if not return_dict:
                return reward
            return {"reward_tensor": reward, "reward_extra_info": {
                "spatialrl_accuracy": out.abs_rewards, "spatialrl_error": out.errors,
                "spatialrl_format": out.formats, "spatialrl_score": out.scores,
            }, "metrics": out.metrics}

    return {"SpatialRLRewardManager": SpatialRLRewardManager}


def _rescore(trainer: Any, manager: Any, data: Any, adv_estimator: Any) -> None:
    """The batch stage inside ``compute_advantage``: rewards at k(t) with pairs, r_hat to the estimator."""
    import torch

    data.meta_info["global_steps"] = trainer.global_steps
    data.meta_info["total_steps"] = trainer.total_training_steps
    result = manager(data, return_dict=True)
    new = result["reward_tensor"].to(data.batch["token_level_scores"].device)
    old = data.batch["token_level_scores"]
    data.batch["token_level_rewards"] = data.batch["token_level_rewards"] - old + new  # keeps a KL-in-reward term
    data.batch["token_level_scores"] = new
    for key, values in result["reward_extra_info"].items():
        data.non_tensor_batch[key] = np.asarray(values)
    name = getattr(adv_estimator, "value", adv_estimator)
    if name in ESTIMATORS:
        data.batch[ABS_REWARD_KEY] = torch.as_tensor(result["reward_extra_info"]["spatialrl_accuracy"],
                                                     dtype=torch.float32, device=new.device)
    trainer.spatialrl_metrics = result["metrics"]  # the last batch's sharpness/k, consistency/* (not logged by verl)


def _trainer_class() -> type:
    from verl.trainer.ppo import ray_trainer

    class SpatialRLPPOTrainer(ray_trainer.RayPPOTrainer):
        """verl's ``RayPPOTrainer`` whose advantage step first runs spatialrl's batch stage
        (module docstring). Only ``compute_advantage`` of ``verl.trainer.ppo.ray_trainer`` is
        wrapped, and only during :meth:`fit`, in the TaskRunner process."""

        def fit(self) -> Any:
            manager = SpatialRLRewardManager(self.config, self.tokenizer, None)
            original = ray_trainer.compute_advantage

            def compute_advantage(data: Any, adv_estimator: Any, *args: Any, **kwargs: Any) -> Any:
                _rescore(self, manager, data, adv_estimator)
                return original(data, adv_estimator, *args, **kwargs)

            ray_trainer.compute_advantage = compute_advantage
            try:
                return super().fit()
            finally:
                ray_trainer.compute_advantage = original

    return SpatialRLPPOTrainer


def _create_pair_sampler(data_config: Any, dataset: Any) -> MirrorPairSampler:
    """Stands in for ``verl.trainer.ppo.utils.create_rl_sampler(data_config, dataset)``."""
    return MirrorPairSampler(dataset, data_config)


def task_runner_class() -> Any:
    """A Ray actor class for ``verl.trainer.main_ppo.run_ppo(config, task_runner_class())``: verl's
    v0 TaskRunner with :class:`SpatialRLPPOTrainer` and, with ``spatialrl.mirror_pairs``,
    :class:`MirrorPairSampler` (patched into ``main_ppo_v0`` inside the TaskRunner process only)."""
    import ray
    from verl.trainer import main_ppo_v0

    base = main_ppo_v0.TaskRunner.__ray_metadata__.modified_class

    class SpatialRLTaskRunner(base):
        def run(self, config: Any) -> Any:
            import spatialrl.integrations.verl as this  # registrations in this process

            settings = this.settings_from(config)
            main_ppo_v0.RayPPOTrainer = this._trainer_class()
            if settings.mirror_pairs:
                main_ppo_v0.create_rl_sampler = this._create_pair_sampler
            return super().run(config)

    return ray.remote(SpatialRLTaskRunner)


def compose_config(overrides: Sequence[str] = ()) -> Any:
    """verl 0.9.1's PPO config (``ppo_trainer.yaml``) with ``overrides``, the v0 trainer selected."""
    import os

    from hydra import compose, initialize_config_dir
    from verl.trainer import main_ppo

    config_dir = os.path.join(os.path.dirname(os.path.abspath(main_ppo.__file__)), "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        config = compose(config_name="ppo_trainer", overrides=list(overrides))
    config.trainer.use_v1 = False
    settings_from(config)  # refuse bad spatialrl settings before any worker starts
    return config


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m spatialrl.integrations.verl [hydra overrides]``: verl's PPO with spatialrl."""
    import sys

    from verl.trainer.main_ppo import run_ppo
    from verl.utils.device import auto_set_device

    argv = list(sys.argv[1:] if argv is None else argv)
    if {"-h", "--help"} & set(argv):
        print(__doc__)
        return
    config = compose_config(argv)
    auto_set_device(config)
    run_ppo(config, task_runner_class=task_runner_class())


VERL_AVAILABLE = False
if __name__ != "__main__":  # under `python -m`, the launcher imports the module itself (one registration)
    try:  # registration on import, when verl is installed
        import verl  # noqa: F401
    except ImportError:  # pragma: no cover - the main environment has no verl
        pass
    else:
        VERL_AVAILABLE = True
        SpatialRLRewardManager = _define_verl_pieces()["SpatialRLRewardManager"]
        __all__ += ["SpatialRLRewardManager", "compute_absolute_outcome_advantage",
                    "compute_ap_grpo_outcome_advantage"]

if __name__ == "__main__":  # pragma: no cover
    from spatialrl.integrations.verl import main as _main

    _main()
