"""Reward callables with TRL's reward-function signature, built by factories.

TRL (GRPOTrainer, trl 1.16) calls each reward function as
``f(prompts=..., completions=..., completion_ids=..., **columns, trainer_state=..., log_metric=..., ...)``
where ``columns`` are the dataset's non-prompt columns repeated per completion, and expects
``list[float | None]`` (``None``: the reward does not apply to that sample). The callables here
are module-level classes, so they pickle, and carry a ``__name__`` that TRL uses for logging
(``rewards/<name>/mean``).

- ``accuracy_reward``: SNRA (Smooth Operator eq. 2-3) of the numeric error (eq. 1) or of the
  discrete error ``Phi(1 - V)`` (sec. 3.1), with k(t) from a ``SharpnessSchedule`` driven by
  ``trainer_state.global_step / max_steps`` (eq. 5). Logs ``sharpness/k`` and
  ``accuracy/correct`` (the share answered correctly by the binary rule, the k-free series T_conv
  is measured on), and keeps the errors and k of its last call (``last_errors``, ``last_k``) for
  the trainer's counterfactual mechanisms (``spatialrl.train.mechanisms``). Open-ended rows
  are scored when they state a quantity (``answer_value``) or a relation whose reference is
  one of the world's relation sentences (left/right with yes/no, closer to the camera):
  ``spatialrl.answers.relations``; other free text gets ``None`` (the semantic reward's job).
  Operator ``"binary"`` gives Table 2's S1 0/1 reward. Answers are read with the strict
  reward policy of ``spatialrl.answers``: anything that is not one committed answer is wrong.
- ``format_reward_func``: the binary format reward (eq. 4's r_fmt; SVQA-R1's r^f).
- ``semantic_reward_func``: Sentence-BERT cosine with the reference answer (SVQA-R1 sec. 3.2).
- ``iou_reward_func``: box IoU for grounding samples, ``None`` for the others.

Dataset columns read (see ``spatialrl.data.schema``): ``answer_type`` (numerical | discrete |
grounding | open_ended), ``answer`` (canonical text), ``answer_value`` (SI float),
``dimension`` (length | area | count), ``options``, ``answer_index``, ``bbox``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from spatialrl.answers import (
    extract_answer,
    parse_bbox,
    parse_choice,
    parse_quantity,
    parse_yes_no,
    yes_no_keywords,
)
from spatialrl.answers.relations import parse_nearer, relation_reference, side_claims
from spatialrl.rewards.format import format_reward
from spatialrl.rewards.iou import box_iou
from spatialrl.rewards.schedules import SharpnessSchedule
from spatialrl.rewards.semantic import SemanticScorer
from spatialrl.rewards.snra import BINARY_TOLERANCE, DEFAULT_E_MAX, DISCRETE_ERROR_SCALE, OPERATORS, numeric_error

ANSWER_TYPES = ("numerical", "discrete", "grounding", "open_ended")
#: Logged per step by the accuracy reward: the share of its samples whose error is at most
#: ``BINARY_TOLERANCE`` (correct by Table 2's binary rule), independent of the sharpness k.
ACCURACY_CORRECT_KEY = "accuracy/correct"


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a plain string, or the last message of a conversation."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, (list, tuple)) and completion:
        content = completion[-1].get("content", "") if isinstance(completion[-1], dict) else completion[-1]
        if isinstance(content, str):
            return content
        if isinstance(content, (list, tuple)):
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _column(kwargs: dict, name: str, n: int) -> list:
    values = kwargs.get(name)
    if values is None:
        return [None] * n
    if len(values) != n:
        raise ValueError(f"reward column {name!r} has {len(values)} values but there are {n} completions")
    return list(values)


def _answer_of(text: str, require_tag: bool) -> str | None:
    answer = extract_answer(text)
    if answer is None and not require_tag:
        return text
    return answer


class AccuracyReward:
    """SNRA accuracy reward r_hat in (0, 1] (Smooth Operator eq. 2-3, 5); see ``accuracy_reward``."""

    def __init__(self, schedule: SharpnessSchedule, operator: str = "sigmoid", error_mode: str = "absolute",
                 e_max: float = DEFAULT_E_MAX, discrete_scale: float = DISCRETE_ERROR_SCALE,
                 require_answer_tag: bool = True, name: str = "accuracy") -> None:
        if operator not in OPERATORS:
            raise ValueError(f"operator must be one of {sorted(OPERATORS)}, got {operator!r}")
        if error_mode not in ("absolute", "relative"):
            raise ValueError(f"error_mode must be 'absolute' or 'relative', got {error_mode!r}")
        self.schedule = schedule
        self.operator = operator
        self.error_mode = error_mode
        self.e_max = float(e_max)
        self.discrete_scale = float(discrete_scale)
        self.require_answer_tag = require_answer_tag
        self.__name__ = name
        self.last_errors: list[float | None] | None = None
        self.last_k: float | None = None

    def sharpness(self, trainer_state: Any = None) -> float:
        """k(t) at the trainer's step; the schedule's start when no trainer state is given."""
        step = getattr(trainer_state, "global_step", 0) or 0
        total = getattr(trainer_state, "max_steps", 0) or 0
        return self.schedule(step, total if total > 0 else 1)

    def errors(self, completions: Sequence[Any], **columns: Any) -> list[float | None]:
        """The error e_i of each completion (eq. 1 or Phi(1 - V)); ``None`` where not applicable."""
        n = len(completions)
        kinds = _column(columns, "answer_type", n)
        values = _column(columns, "answer_value", n)
        dims = _column(columns, "dimension", n)
        options = _column(columns, "options", n)
        indices = _column(columns, "answer_index", n)
        answers = _column(columns, "answer", n)
        boxes = _column(columns, "bbox", n)
        out: list[float | None] = []
        for i, completion in enumerate(completions):
            kind = kinds[i]
            if kind not in ANSWER_TYPES:
                raise ValueError(f"answer_type[{i}] must be one of {ANSWER_TYPES}, got {kind!r}")
            answer = _answer_of(completion_text(completion), self.require_answer_tag)
            if kind == "numerical" or (kind == "open_ended" and values[i] is not None and dims[i]):
                predicted = None if answer is None else parse_quantity(answer, dims[i] or "length")
                out.append(numeric_error(predicted, float(values[i]), mode=self.error_mode, e_max=self.e_max))
            elif kind == "discrete":
                score = _discrete_score(answer, options[i], indices[i], answers[i])
                out.append(self.discrete_scale * (1.0 - score))
            elif kind == "grounding":
                box = None if answer is None else parse_bbox(answer)
                out.append(self.discrete_scale * (1.0 - box_iou(box, boxes[i])))
            else:
                score = _relation_score(answer, answers[i])
                out.append(None if score is None else self.discrete_scale * (1.0 - score))
        return out

    def __call__(self, prompts: Any = None, completions: Sequence[Any] = (), completion_ids: Any = None,
                 trainer_state: Any = None, log_metric: Any = None, **columns: Any) -> list[float | None]:
        k = self.sharpness(trainer_state)
        if callable(log_metric):
            log_metric("sharpness/k", k)
        errors = self.errors(completions, **columns)
        # Kept for the trainer's counterfactual mechanisms (spatialrl.train.mechanisms): this
        # process's errors and k of the last call, exact (the rewards TRL keeps are float32).
        self.last_errors, self.last_k = errors, k
        known = [i for i, e in enumerate(errors) if e is not None]
        if callable(log_metric) and known:
            # A k-free accuracy (the binary rule of Table 2's S1) for T_conv: r_hat itself falls as
            # k(t) rises, so its curve would peak early whatever the policy does.
            log_metric(ACCURACY_CORRECT_KEY, sum(errors[i] <= BINARY_TOLERANCE for i in known) / len(known))
        rewards: list[float | None] = [None] * len(errors)
        if known:
            values = OPERATORS[self.operator](np.array([errors[i] for i in known]), k)
            for i, v in zip(known, values.tolist()):
                rewards[i] = v
        return rewards


def _discrete_score(answer: str | None, options: Any, answer_index: Any, reference: Any) -> float:
    """Verifier V in {0, 1} for a discrete answer: a choice, a yes/no, or a short exact phrase."""
    if answer is None:
        return 0.0
    if options is not None and len(options) > 0:
        if answer_index is None or int(answer_index) < 0:
            raise ValueError("a discrete sample with options needs answer_index >= 0")
        return 1.0 if parse_choice(answer, list(options)) == int(answer_index) else 0.0
    ref = (reference or "").strip().lower()
    if ref in ("yes", "no"):
        said = parse_yes_no(answer)
        return 1.0 if said is not None and said == (ref == "yes") else 0.0
    return 1.0 if " ".join(answer.lower().split()).strip(" .") == ref else 0.0


def _relation_score(answer: str | None, reference: Any) -> float | None:
    """Verifier V in {0, 1} for an open-ended relation row (left/right, closer/farther);
    ``None`` when the reference states no such relation (free text: no accuracy reward)."""
    ref = relation_reference(reference)
    if ref is None:
        return None
    if answer is None:
        return 0.0
    if ref.kind == "nearer":
        return 1.0 if parse_nearer(answer, list(ref.names)) == 0 else 0.0
    said_yes = parse_yes_no(answer)
    sides, not_sides = side_claims(answer, ref.names)
    if len(sides) > 1 or sides & not_sides or (said_yes is None and len(yes_no_keywords(answer)[0]) > 1):
        return 0.0  # "left. Or right.", "left, not left", a yes and a no
    # A rejected side is never flipped into the other one ("not left" commits to nothing), but
    # rejecting the true side is wrong whatever else the answer says.
    side = next(iter(sides)) if sides else None
    if (said_yes is None and side is None) or ref.side in not_sides:
        return 0.0
    agrees = (said_yes is None or said_yes == ref.yes) and (side is None or side == ref.side)
    return 1.0 if agrees else 0.0


class FormatReward:
    """Binary structural format reward; see ``format_reward_func``."""

    def __init__(self, require_think: bool = True, name: str = "format") -> None:
        self.require_think = require_think
        self.__name__ = name

    def __call__(self, prompts: Any = None, completions: Sequence[Any] = (), completion_ids: Any = None,
                 **kwargs: Any) -> list[float]:
        return [format_reward(completion_text(c), self.require_think) for c in completions]


class SemanticReward:
    """Sentence-BERT reward of the extracted answer against the ``answer`` column (SVQA-R1 sec. 3.2)."""

    def __init__(self, model_path: str | None = None, device: str = "cpu", require_answer_tag: bool = True,
                 name: str = "semantic") -> None:
        self.scorer = SemanticScorer(model_path=model_path, device=device)
        self.require_answer_tag = require_answer_tag
        self.__name__ = name

    def __call__(self, prompts: Any = None, completions: Sequence[Any] = (), completion_ids: Any = None,
                 answer: Sequence[str] | None = None, **kwargs: Any) -> list[float]:
        if answer is None:
            raise ValueError("the semantic reward needs the dataset column 'answer' (the reference answer text)")
        predictions = [_answer_of(completion_text(c), self.require_answer_tag) for c in completions]
        return self.scorer.similarity(predictions, [str(a) for a in answer]).tolist()


class IoUReward:
    """Box IoU of the predicted box with the ``bbox`` column; ``None`` for non-grounding samples."""

    def __init__(self, require_answer_tag: bool = True, name: str = "iou") -> None:
        self.require_answer_tag = require_answer_tag
        self.__name__ = name

    def __call__(self, prompts: Any = None, completions: Sequence[Any] = (), completion_ids: Any = None,
                 answer_type: Sequence[str] | None = None, bbox: Sequence[Any] | None = None,
                 **kwargs: Any) -> list[float | None]:
        n = len(completions)
        kinds = answer_type if answer_type is not None else ["grounding"] * n
        boxes = _column({"bbox": bbox}, "bbox", n)
        out: list[float | None] = []
        for completion, kind, target in zip(completions, kinds, boxes):
            if kind != "grounding" or target is None or len(target) != 4:
                out.append(None)
                continue
            answer = _answer_of(completion_text(completion), self.require_answer_tag)
            out.append(box_iou(None if answer is None else parse_bbox(answer), target))
        return out


def accuracy_reward(schedule: SharpnessSchedule | None = None, *, operator: str = "sigmoid",
                    error_mode: str = "absolute", e_max: float = DEFAULT_E_MAX,
                    discrete_scale: float = DISCRETE_ERROR_SCALE, require_answer_tag: bool = True) -> AccuracyReward:
    """TRL reward: SNRA accuracy r_hat with scheduled sharpness (Smooth Operator eq. 2-3, 5).

    Args:
        schedule: k(t); default the paper's sigmoid 1 -> 100 (tau 0.5, s 10).
        operator: ``"sigmoid"`` (eq. 2) or ``"tanh"`` (eq. 12).
        error_mode: ``"absolute"`` (eq. 1) or ``"relative"`` (our addition).
        e_max: error for unparsable answers, and cap on any error.
        discrete_scale: slope of Phi for discrete and grounding samples.
        require_answer_tag: parse only the ``<answer>`` block (an untagged completion scores as unparsable).
    """
    return AccuracyReward(schedule or SharpnessSchedule.paper(), operator, error_mode, e_max, discrete_scale,
                          require_answer_tag)


def format_reward_func(require_think: bool = True) -> FormatReward:
    """TRL reward: 1.0 for ``<think>..</think><answer>..</answer>`` (or answer-only), else 0.0."""
    return FormatReward(require_think)


def semantic_reward_func(model_path: str | None = None, device: str = "cpu",
                         require_answer_tag: bool = True) -> SemanticReward:
    """TRL reward: Sentence-BERT cosine of the answer with the reference, in [0, 1] (SVQA-R1 sec. 3.2)."""
    return SemanticReward(model_path, device, require_answer_tag)


def iou_reward_func(require_answer_tag: bool = True) -> IoUReward:
    """TRL reward: box IoU for grounding samples, ``None`` elsewhere."""
    return IoUReward(require_answer_tag)
