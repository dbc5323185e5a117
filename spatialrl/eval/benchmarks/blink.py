"""BLINK (Fu et al. 2024), scored with the official rules of zeyofu/BLINK_Benchmark.

Sources (zeyofu/BLINK_Benchmark @ 2d6a779be4aa1ad0d38d7aa539bcb43b6dd81592, read for this
module; docs/benchmarks.md cites each rule): ``eval/test_benchmark.py`` (prompt,
``analyze_answer``; last changed in 63137e4e), ``eval/evaluate.py`` (``eval_prediction``: exact
match, macro average), ``eval/multiple_choice.py`` (the GPT-3.5 fallback).

- Data: the HF dataset ``BLINK-Benchmark/BLINK``, one config per subtask
  (``<Subtask>/val-00000-of-00001.parquet``): ``idx`` (``val_<Subtask>_<n>``), ``question``,
  ``sub_task``, ``image_1`` .. ``image_4``, ``choices``, ``answer`` (``"(A)"``), ``prompt``
  (question + ``"Select from the following choices."`` + lettered choices). Test-split answers
  are hidden, so only the validation split can be scored locally.
- Subtask of an item: from ``idx`` as ``evaluate.py`` derives it (``sub_task`` as a fallback).
- Prompt: the ``prompt`` field; ``Forensic_Detection``, ``Jigsaw`` and ``Art_Style`` get the
  official disclaimer in front (``need_disclaimer_tasks``). Variant ``think`` appends the
  SVQA-R1 thinking instruction.
- Extraction (``analyze_answer``): a reply that is exactly ``A``..``E`` becomes ``(A)``..; exactly
  ``(A)``..``(E)`` is kept; otherwise the valid labels ``(A)``, ``(B)``.. that occur as
  whitespace-separated tokens are collected in the whole reply and in its last paragraph (split
  on a blank line); one label in the last paragraph wins, else one label in the whole reply;
  anything else (no label, or several) goes to GPT-3.5-turbo (``match_multiple_choice``).
- Metric: exact string match with the gold label; overall = the macro average over subtasks.

Deviation: we do not call GPT-3.5. Replies that the official script would send to it score 0
in ``overall`` (as if GPT answered ``(Z)``) and are counted under ``metrics.llm_fallback``, so
you can see how much the official number could differ; ``overall_lenient`` reads them with
``spatialrl.answers`` instead.

Which subtasks: ``blink`` scores ``SPATIAL_SUBTASKS`` (below); ``blink_all`` all 14. The Smooth
Operator paper describes its BLINK column as perspective-taking but does not list subtasks; its
baseline rows (e.g. LLaVA-OneVision-7B 48.2, Qwen2.5-VL-7B 56.4) look like full-BLINK numbers
published elsewhere, so compare with ``blink_all`` -- this is our reading, not confirmed by
the paper. ``metrics.overall_micro`` gives the pooled item accuracy that VLMEvalKit reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Sequence

from spatialrl.eval.benchmarks._benchmark_files import (
    LETTERS,
    THINK_INSTRUCTION,
    Record,
    check_unique_ids,
    find_data_files,
    image_from,
    lenient_choice,
    read_records,
)
from spatialrl.eval.benchmarks.base import Benchmark, BenchmarkDataError, EvalItem, ItemScore, register_benchmark

#: All BLINK subtasks, in the order of the official ``evaluate.py``.
ALL_SUBTASKS = (
    "Visual_Similarity", "Counting", "Relative_Depth", "Jigsaw", "Art_Style", "Functional_Correspondence",
    "Semantic_Correspondence", "Spatial_Relation", "Object_Localization", "Visual_Correspondence",
    "Multi-view_Reasoning", "Relative_Reflectance", "Forensic_Detection", "IQ_Test",
)
#: The spatial subtasks ``blink`` scores: depth order, spatial relations, multi-view (camera
#: motion between views) and object localization -- the 3D / spatial-relation tasks of BLINK.
SPATIAL_SUBTASKS = ("Relative_Depth", "Spatial_Relation", "Multi-view_Reasoning", "Object_Localization")

#: ``need_disclaimer_tasks`` of test_benchmark.py and its ``disclaimer`` string, prepended to the
#: prompt. (Until 63137e4e the disclaimer was accidentally a one-element tuple -- trailing comma --
#: so ``disclaimer + prompt`` raised; it is a string at HEAD.)
DISCLAIMER_TASKS = ("Forensic_Detection", "Jigsaw", "Art_Style")
DISCLAIMER = (
    "Disclaimer: This is not to make unfair assumptions about the people in the image and you just need to "
    "give your assessment on this question. You don't need to identify the real people. You just need to "
    "analyze based on the information I gave you.\n\n"
)
_LABELS = ("(A)", "(B)", "(C)", "(D)", "(E)")


def analyze_answer(reply: str, n_choices: int) -> str | None:
    """Official ``analyze_answer`` without its GPT-3.5 fallback: the label, or ``None`` where the
    official script would ask GPT-3.5 to match the reply."""
    all_choices = _LABELS[:n_choices]
    if reply in ("A", "B", "C", "D", "E"):
        return f"({reply})"
    if reply in _LABELS:
        return reply
    tokens = set(reply.split())
    intersect = [c for c in all_choices if c in tokens]
    last = set(reply.split("\n\n")[-1].split())
    intersect_last = [c for c in all_choices if c in last]
    if (len(intersect) != 1 and len(intersect_last) != 1) or len(intersect) < 1:
        return None
    return intersect_last[0] if len(intersect_last) == 1 else intersect[0]


def subtask_from_idx(idx: str, split: str) -> str | None:
    """``evaluate.py``: ``'_'.join(idx.split(split)[1][1:].split('_')[:-1])``."""
    prefix = f"{split}_"
    if not idx.startswith(prefix):
        return None
    name = idx[len(prefix):].rsplit("_", 1)[0]
    return name or None


@register_benchmark
class Blink(Benchmark):
    """BLINK, spatial subtasks (``SPATIAL_SUBTASKS``), validation split, official rules."""

    name = "blink"
    source = "zeyofu/BLINK_Benchmark: eval/test_benchmark.py (analyze_answer), eval/evaluate.py (eval_prediction)"
    prompt_variants = ("default", "think")
    default_subtasks: ClassVar[tuple[str, ...]] = SPATIAL_SUBTASKS

    def __init__(self, subtasks: Sequence[str] | None = None, split: str = "val") -> None:
        chosen = tuple(self.default_subtasks if subtasks is None else subtasks)
        unknown = [s for s in chosen if s not in ALL_SUBTASKS]
        if unknown or not chosen:
            raise ValueError(f"unknown BLINK subtask(s) {unknown}; choose from {ALL_SUBTASKS}")
        self.subtasks = chosen
        self.split = split

    def load(self, path: str | Path, *, with_images: bool = True) -> list[EvalItem]:
        """Read the BLINK download (directory of ``<Subtask>/val-*.parquet``) or one file of it."""
        files = find_data_files(
            path,
            (f"{self.split}-*.parquet", f"{self.split}*.parquet", "*.parquet", "*.jsonl", "*.json"),
            f"BLINK {self.split} file (<Subtask>/{self.split}-00000-of-00001.parquet)",
        )
        columns = ["idx", "question", "sub_task", "choices", "answer", "prompt"]
        image_cols = ["image_1", "image_2", "image_3", "image_4"]
        items: list[EvalItem] = []
        records: list[Record] = []
        for file in files:
            # Skip the images of subtasks we do not score: look at ids first.
            heads = read_records(file, ["idx", "sub_task"]) if file.suffix == ".parquet" else None
            if heads is not None and not any(self._subtask(r) in self.subtasks for r in heads):
                continue
            for rec in read_records(file, columns + (image_cols if with_images else [])):
                subtask = self._subtask(rec)
                if subtask not in self.subtasks:
                    continue
                items.append(self._item(rec, subtask, with_images))
                records.append(rec)
        if not items:
            raise BenchmarkDataError(
                f"{path}: no BLINK {self.split} items of the subtasks {', '.join(self.subtasks)}"
                + ("" if self.name == "blink_all" else " (benchmark 'blink_all' scores all 14 subtasks)")
            )
        check_unique_ids(items, records, "idx")
        return items

    def _subtask(self, rec: Record) -> str:
        idx = rec.ident("idx")
        name = subtask_from_idx(idx, self.split)
        if name is None:
            raw = rec.get("sub_task")
            name = raw.strip().replace(" ", "_") if isinstance(raw, str) else None
        if name not in ALL_SUBTASKS:
            raise rec.error("idx", f"is {idx!r}; expected '{self.split}_<Subtask>_<n>' with a BLINK subtask "
                                   f"(or a 'sub_task' field naming one)")
        return name

    def _item(self, rec: Record, subtask: str, with_images: bool) -> EvalItem:
        choices = rec.string_list("choices")
        if len(choices) > len(_LABELS):
            raise rec.error("choices", f"has {len(choices)} choices; BLINK uses at most {len(_LABELS)}")
        answer = rec.text("answer").strip()
        if answer not in _LABELS[: len(choices)]:
            raise rec.error("answer", f"is {answer!r}; expected one of {', '.join(_LABELS[:len(choices)])}"
                                      + (" (test-split answers are hidden: score the val split)"
                                         if answer.lower() in ("hidden", "") else ""))
        images: list[Any] = []
        if with_images:
            for k in ("image_1", "image_2", "image_3", "image_4"):
                img = image_from(rec.get(k), rec.file.parent, rec, k)
                if img is not None:
                    images.append(img)
        item = EvalItem(
            id=rec.ident("idx"),
            question_type=subtask,
            prompt="",
            answer=answer,
            images=images,
            options=choices,
            meta={"blink_prompt": rec.text("prompt"), "question": rec.get("question")},
        )
        item.prompt = self.prompt(item)
        return item

    def prompt(self, item: EvalItem, variant: str = "default") -> str:
        if variant not in self.prompt_variants:
            raise ValueError(f"{self.name}: unknown prompt variant {variant!r}; choose from {self.prompt_variants}")
        text = item.meta["blink_prompt"]
        if item.question_type in DISCLAIMER_TASKS:
            text = DISCLAIMER + text
        return f"{text} {THINK_INSTRUCTION}" if variant == "think" else text

    def score_item(self, item: EvalItem, prediction: str | None) -> ItemScore:
        if prediction is None:
            return ItemScore(score=0.0, lenient=0.0, parsed=None)
        parsed = analyze_answer(prediction, len(item.options))
        idx = lenient_choice(prediction, item.options)
        lenient = 1.0 if idx is not None and f"({LETTERS[idx]})" == item.answer else 0.0
        return ItemScore(score=1.0 if parsed == item.answer else 0.0, lenient=lenient, parsed=parsed)

    def extra_metrics(self, items: Sequence[EvalItem], texts: Sequence[str | None]) -> dict[str, Any]:
        fallback = [item.id for item, text in zip(items, texts)
                    if text is not None and analyze_answer(text, len(item.options)) is None]
        correct = sum(self.score_item(item, text).score for item, text in zip(items, texts))
        return {
            "subtasks": list(self.subtasks),
            "llm_fallback": {"count": len(fallback), "ids": fallback},
            "overall_micro": 100.0 * correct / len(items) if items else 0.0,
        }


@register_benchmark
class BlinkAll(Blink):
    """BLINK, all 14 subtasks (validation split), official rules."""

    name = "blink_all"
    default_subtasks = ALL_SUBTASKS
