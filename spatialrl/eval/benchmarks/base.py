"""What every benchmark scorer provides, and the shared scoring of a predictions file.

A benchmark module reads the official files from a local path into ``EvalItem``s, builds the
official prompt, extracts the answer from model text with the official rule, scores one item
with the official metric, and aggregates as the official code does. ``score_predictions``
wraps any benchmark: it matches predictions to items by id, counts a missing prediction as the
official worst case, and reports missing and unknown ids.

Where the official extraction is stricter than ours, ``ItemScore.lenient`` carries the score
with ``spatialrl.answers`` parsing; the report then has ``overall_lenient`` beside ``overall``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Mapping, Sequence


class BenchmarkDataError(ValueError):
    """A malformed benchmark file; the message names the file, record and field."""


@dataclass
class EvalItem:
    """One benchmark question.

    Attributes:
        id: unique id as a string (the official id where there is one).
        question_type: the task type the official code aggregates by.
        prompt: the text prompt as the official evaluation builds it (no image tokens).
        answer: the ground truth as the official file stores it.
        images: image paths or PIL images, in order (empty for text-only scoring).
        options: answer options for multiple choice, else empty.
        meta: anything else the scorer needs.
    """

    id: str
    question_type: str
    prompt: str
    answer: Any
    images: list[Any] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ItemScore:
    """Score of one prediction: the official ``score`` in [0, 1], optional ``lenient`` score, parsed value."""

    score: float
    lenient: float | None = None
    parsed: Any = None


class Benchmark(ABC):
    """Base class of a benchmark scorer; register subclasses with ``register_benchmark``."""

    name: ClassVar[str] = ""
    #: Where the official rules come from (repository and file), cited in docs/benchmarks.md.
    source: ClassVar[str] = ""
    #: Prompt variants this benchmark accepts for ``prompt(item, variant)``.
    prompt_variants: ClassVar[tuple[str, ...]] = ("default",)

    @abstractmethod
    def load(self, path: str | Path) -> list[EvalItem]:
        """Read the official file(s) at ``path``; ``BenchmarkDataError`` names file, record and field."""

    @abstractmethod
    def score_item(self, item: EvalItem, prediction: str | None) -> ItemScore:
        """Score raw model text; ``None`` means the prediction is missing (official worst case)."""

    def prompt(self, item: EvalItem, variant: str = "default") -> str:
        """The text to send with the item's images."""
        if variant not in self.prompt_variants:
            raise ValueError(f"{self.name}: unknown prompt variant {variant!r}; choose from {self.prompt_variants}")
        return item.prompt

    def type_of(self, item: EvalItem) -> str:
        """The type an item is aggregated under (override to merge sub-types, e.g. VSI-Bench's three
        relative-direction levels)."""
        return item.question_type

    def prepare(self, items: Sequence[EvalItem], texts: Sequence[str | None]) -> None:
        """Called once with every prediction before ``score_item``, so a benchmark can batch
        expensive work (e.g. Sentence-BERT embeddings) instead of doing it item by item."""

    def extra_metrics(self, items: Sequence[EvalItem], texts: Sequence[str | None]) -> dict[str, Any]:
        """Benchmark-specific metrics beyond the per-type means (e.g. sMAPE, BLEU), reported under
        ``metrics``. ``texts`` holds the raw predictions aligned with ``items`` (``None`` if missing)."""
        return {}

    def aggregate(self, per_type: Mapping[str, float], counts: Mapping[str, int]) -> float:
        """Overall score from per-type means (fractions). Default: macro average over types."""
        return sum(per_type.values()) / len(per_type) if per_type else 0.0


BENCHMARKS: dict[str, type[Benchmark]] = {}


def register_benchmark(cls: type[Benchmark]) -> type[Benchmark]:
    """Class decorator adding a benchmark under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a non-empty class attribute 'name'")
    if cls.name in BENCHMARKS and BENCHMARKS[cls.name] is not cls:
        raise ValueError(f"a benchmark named {cls.name!r} is already registered")
    BENCHMARKS[cls.name] = cls
    return cls


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def score_predictions(benchmark: Benchmark, items: Sequence[EvalItem], predictions: Mapping[str, Any],
                      *, reasoning: bool = False) -> dict[str, Any]:
    """Score ``predictions`` (id -> raw text, or id -> record with ``prediction``) against ``items``.

    Returns the SCORES.json payload: ``overall`` and ``per_type`` in percent (as papers print
    them), ``overall_lenient``/``per_type_lenient`` when the benchmark reports a lenient score,
    ``metrics`` (benchmark-specific), with ``reasoning=True`` the SVQA-R1 appendix G statistics
    of the replies (``spatialrl.eval.reasoning.analyze``), ``counts`` and the ``missing_ids`` (scored as wrong) and ``unknown_ids`` (ignored).
    """
    item_ids = {item.id for item in items}
    by_type: dict[str, list[float]] = defaultdict(list)
    lenient_by_type: dict[str, list[float]] = defaultdict(list)
    has_lenient = False
    missing: list[str] = []
    texts: list[str | None] = []
    for item in items:
        record = predictions.get(item.id)
        text = record.get("prediction") if isinstance(record, Mapping) else record
        if item.id not in predictions:
            missing.append(item.id)
            text = None
        texts.append(text)
    benchmark.prepare(items, texts)
    for item, text in zip(items, texts):
        result = benchmark.score_item(item, text)
        kind = benchmark.type_of(item)
        by_type[kind].append(float(result.score))
        if result.lenient is not None:
            has_lenient = True
        lenient_by_type[kind].append(float(result.score if result.lenient is None else result.lenient))
    per_type = {k: _mean(v) for k, v in sorted(by_type.items())}
    counts = {k: len(v) for k, v in sorted(by_type.items())}
    report: dict[str, Any] = {
        "benchmark": benchmark.name,
        "overall": 100.0 * benchmark.aggregate(per_type, counts),
        "per_type": {k: 100.0 * v for k, v in per_type.items()},
    }
    if has_lenient:
        per_type_lenient = {k: _mean(v) for k, v in sorted(lenient_by_type.items())}
        report["overall_lenient"] = 100.0 * benchmark.aggregate(per_type_lenient, counts)
        report["per_type_lenient"] = {k: 100.0 * v for k, v in per_type_lenient.items()}
    extra = benchmark.extra_metrics(items, texts)
    if extra:
        report["metrics"] = extra
    if reasoning:
        # SVQA-R1 appendix G: reasoning-keyword counts and think-length statistics of the replies.
        from spatialrl.eval.reasoning import analyze

        report["reasoning"] = analyze([t for t in texts if t is not None])
    unknown = sorted(str(k) for k in predictions if k not in item_ids)
    report["counts"] = {
        "items": len(items),
        "predictions": len(predictions),
        "scored": len(items) - len(missing),
        "missing": len(missing),
        "unknown": len(unknown),
        "per_type": counts,
    }
    report["missing_ids"] = missing
    report["unknown_ids"] = unknown
    return report


def iter_types(items: Iterable[EvalItem]) -> list[str]:
    """Distinct question types in first-seen order."""
    return list(dict.fromkeys(item.question_type for item in items))
