"""CV-Bench (Tong et al. 2024, Cambrian-1), scored with the official rules.

Sources (docs/benchmarks.md cites each rule):

- Data: the HF dataset ``nyu-visionx/CV-Bench``: ``test.parquet`` (images embedded) or
  ``test.jsonl`` + ``img/`` (images by ``filename``), fields ``idx``, ``type`` (2D/3D), ``task``
  (Count, Relation, Depth, Distance), ``question``, ``choices``, ``answer`` (``"(A)"``),
  ``prompt`` (question with its lettered choices), ``filename``, ``source`` (ADE20K, COCO, Omni3D).
- Overall (the dataset card's "CV-Bench Accuracy", also ``cv_bench_default_aggregate_results`` in
  EvolvingLMMs-Lab/lmms-eval ``lmms_eval/tasks/cv_bench/utils.py``): accuracy per source, then
  ``((acc_ADE20K + acc_COCO) / 2 + acc_Omni3D) / 2`` -- 2D is the mean of the two 2D sources,
  3D is Omni3D.
- Prompt and answer matching: the dataset card leaves the per-item ``result`` to the user; the
  authors' own evaluation code is Cambrian-1's (cambrian-mllm/cambrian @ 539ffc3254bba004e5d012b65c0ad6cb308897c5,
  read for this module): ``eval/eval/ade/ade_test.py`` and ``eval/eval/coco/coco_test.py`` score
  the 2D questions (sources ADE20K and COCO), ``eval/eval/omni/omni_test.py`` the 3D ones
  (Omni3D). Prompt = the ``prompt`` field + ``"\\n"`` + ``"Answer with the option's letter from
  the given choices directly."`` (``--question_extension`` of ``ade_eval.py`` / ``omni_eval.py``).
  Matching, ``extract_mcq_answer`` then ``compute_metrics`` of the script of the item's source:

  * both: lower-case and strip; for ``"answer is"``, ``"answer is:"``, ``"answer:"`` in that
    order, keep what follows the last occurrence; strip; strip trailing characters (below);
    strip leading ``(``; strip trailing ``)``; keep the first character;
  * 2D (ADE20K, COCO): trailing ``.`` only; correct iff that equals the ground-truth letter
    (lower-case). A bare option text (``"1"`` on a Count item) is wrong.
  * 3D (Omni3D): trailing ``.:,``; correct iff it equals the ground-truth letter **or** the
    correct option's text as stored (not lower-cased; only one-character options can match).

  Quirks kept: ``"A or B"`` reads as ``a``; ``"The answer is: (C)."`` reads as ``:`` (``"answer
  is"`` is split off first, so the colon stays).
- Variant ``lmms_eval``: the prompt of lmms-eval's ``cv_bench`` task (``"Note: You only need to
  respond with A, B, ... without providing any additional information.\\n"`` + ``"\\n"`` +
  ``prompt``); lmms-eval matches with a different rule (first letter of the reply) and reports
  the plain item accuracy, so its numbers differ from ours (see the docs).

``per_type`` keys are ``"<source>/<task>"`` (``ADE20K/Count``, ``COCO/Relation``,
``Omni3D/Depth``...): ``aggregate`` recovers each source's accuracy from these means weighted by
their counts, exactly the per-source accuracy of the official formula. ``metrics`` adds the
accuracy per source, per task, 2D and 3D (official and lenient). On a subset missing a source
the formula is undefined; we average the sources present (2D) and the parts present (2D, 3D).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from spatialrl.eval.benchmarks._benchmark_files import (
    LETTERS,
    THINK_INSTRUCTION,
    Record,
    check_unique_ids,
    find_data_files,
    image_from,
    lenient_choice,
    read_all,
    weighted_mean,
)
from spatialrl.eval.benchmarks.base import Benchmark, EvalItem, ItemScore, register_benchmark

SOURCES_2D = ("ADE20K", "COCO")
SOURCES_3D = ("Omni3D",)
SOURCES = SOURCES_2D + SOURCES_3D
TASKS = ("Count", "Relation", "Depth", "Distance")

CAMBRIAN_QUESTION_EXTENSION = "Answer with the option's letter from the given choices directly."
LMMS_EVAL_PRE_PROMPT = "Note: You only need to respond with {} without providing any additional information.\n"
_ANSWER_LABEL = re.compile(r"^\(([A-Z])\)$")


def cambrian_extract(text: str, trailing: str = ".:,") -> str:
    """Cambrian-1 ``extract_mcq_answer``: at most one lower-case character.

    ``trailing`` is what is stripped from the end before the brackets: ``".:,"`` in
    ``eval/eval/omni/omni_test.py`` (3D, the default), ``"."`` in ``ade_test.py`` /
    ``coco_test.py`` (2D; ``TRAILING_2D``).
    """
    text = text.lower().strip()
    for keyword in ("answer is", "answer is:", "answer:"):
        if keyword in text:
            text = text.split(keyword)[-1]
    text = text.strip().rstrip(trailing).lstrip("(").rstrip(")")
    return text[:1]


TRAILING_2D = "."


def cambrian_correct(prediction: str, source: str, gt_letter: str, options: Sequence[str]) -> tuple[bool, str]:
    """``(correct, parsed)`` by the Cambrian-1 script of ``source``: letter only for ADE20K / COCO
    (``ade_test.py``, ``coco_test.py``), letter or correct option text for Omni3D (``omni_test.py``)."""
    gt_index = LETTERS.index(gt_letter)
    if source in SOURCES_3D:
        parsed = cambrian_extract(prediction)
        return parsed == gt_letter.lower() or parsed == options[gt_index], parsed
    parsed = cambrian_extract(prediction, TRAILING_2D)
    return parsed == gt_letter.lower(), parsed


@register_benchmark
class CVBench(Benchmark):
    """CV-Bench: official overall formula, Cambrian-1 prompt and answer matching."""

    name = "cvbench"
    source = ("nyu-visionx/CV-Bench dataset card (overall formula); cambrian-mllm/cambrian "
              "eval/eval/ade/ade_test.py, coco/coco_test.py (2D matching), omni/omni_test.py (3D matching), "
              "ade/ade_eval.py (prompt)")
    prompt_variants = ("default", "lmms_eval", "plain", "think")

    def load(self, path: str | Path, *, with_images: bool = True) -> list[EvalItem]:
        """Read ``test.parquet`` (images embedded) or ``test.jsonl`` (+ ``img/``), or their directory.

        In a directory, ``with_images=True`` prefers the parquet file (self-contained images),
        ``with_images=False`` the lighter JSON Lines file.
        """
        parquet = ("test.parquet", "test*.parquet", "*.parquet")
        jsonl = ("test.jsonl", "*.jsonl", "*.json")
        files = find_data_files(path, parquet + jsonl if with_images else jsonl + parquet, "CV-Bench test file")
        columns = ["idx", "type", "task", "question", "choices", "answer", "prompt", "filename", "source"]
        records = read_all(files, columns + (["image"] if with_images else []))
        items = [self._item(rec, with_images) for rec in records]
        check_unique_ids(items, records, "idx")
        return items

    def _item(self, rec: Record, with_images: bool) -> EvalItem:
        item_id = rec.ident("idx")
        source = rec.text("source")
        if source not in SOURCES:
            raise rec.error("source", f"is {source!r}; CV-Bench sources are {', '.join(SOURCES)}")
        task = rec.text("task")
        choices = rec.string_list("choices")
        answer = rec.text("answer").strip()
        m = _ANSWER_LABEL.match(answer)
        if m is None:
            raise rec.error("answer", f"is {answer!r}; expected an option label such as '(A)'")
        if LETTERS.index(m.group(1)) >= len(choices):
            raise rec.error("answer", f"is {answer!r} but the item has only {len(choices)} choices")
        prompt = rec.text("prompt")
        images: list[Any] = []
        if with_images:
            if rec.get("image") is not None:
                images = [image_from(rec.get("image"), rec.file.parent, rec, "image")]
            elif isinstance(rec.get("filename"), str) and rec.get("filename"):
                images = [image_from(rec.get("filename"), rec.file.parent, rec, "filename")]
        item = EvalItem(
            id=item_id,
            question_type=task,
            prompt="",
            answer=answer,
            images=images,
            options=choices,
            meta={"source": source, "task": task, "type": rec.get("type"), "cv_prompt": prompt,
                  "question": rec.get("question")},
        )
        item.prompt = self.prompt(item)
        return item

    def prompt(self, item: EvalItem, variant: str = "default") -> str:
        if variant not in self.prompt_variants:
            raise ValueError(f"{self.name}: unknown prompt variant {variant!r}; choose from {self.prompt_variants}")
        base = item.meta["cv_prompt"]
        if variant == "default":
            return f"{base}\n{CAMBRIAN_QUESTION_EXTENSION}"
        if variant == "lmms_eval":
            labels = ", ".join(LETTERS[: len(item.options)])
            return LMMS_EVAL_PRE_PROMPT.format(labels) + "\n" + base
        if variant == "think":
            return f"{base} {THINK_INSTRUCTION}"
        return base

    def type_of(self, item: EvalItem) -> str:
        return f"{item.meta['source']}/{item.meta['task']}"

    def score_item(self, item: EvalItem, prediction: str | None) -> ItemScore:
        if prediction is None:
            return ItemScore(score=0.0, lenient=0.0, parsed=None)
        gt_letter = item.answer[1]
        correct, parsed = cambrian_correct(prediction, item.meta["source"], gt_letter, item.options)
        # lenient (labelled as such): spatialrl.answers.parse_choice, never the official number
        idx = lenient_choice(prediction, item.options)
        lenient = 1.0 if idx == LETTERS.index(gt_letter) else 0.0
        return ItemScore(score=1.0 if correct else 0.0, lenient=lenient, parsed=parsed)

    def aggregate(self, per_type: Mapping[str, float], counts: Mapping[str, int]) -> float:
        return _overall(_by_source(per_type, counts))

    def extra_metrics(self, items: Sequence[EvalItem], texts: Sequence[str | None]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for label, pick in (("", lambda r: r.score), ("_lenient", lambda r: float(r.lenient or 0.0))):
            by_source: dict[str, list[float]] = {}
            by_task: dict[str, list[float]] = {}
            for item, text in zip(items, texts):
                value = pick(self.score_item(item, text))
                by_source.setdefault(item.meta["source"], []).append(value)
                by_task.setdefault(item.meta["task"], []).append(value)
            source_acc = {k: sum(v) / len(v) for k, v in sorted(by_source.items())}
            acc_2d, acc_3d = _parts(source_acc)
            out[f"per_source{label}"] = {k: 100.0 * v for k, v in source_acc.items()}
            out[f"per_task{label}"] = {k: 100.0 * sum(v) / len(v) for k, v in sorted(by_task.items())}
            if acc_2d is not None:
                out[f"accuracy_2d{label}"] = 100.0 * acc_2d
            if acc_3d is not None:
                out[f"accuracy_3d{label}"] = 100.0 * acc_3d
        return out


def _by_source(per_type: Mapping[str, float], counts: Mapping[str, int]) -> dict[str, float]:
    """Accuracy per source from the ``source/task`` means and counts (pooled over the source's items)."""
    out = {}
    for source in SOURCES:
        keys = [k for k in per_type if k.split("/", 1)[0] == source]
        value = weighted_mean(per_type, counts, keys)
        if value is not None:
            out[source] = value
    return out


def _parts(source_acc: Mapping[str, float]) -> tuple[float | None, float | None]:
    two = [source_acc[s] for s in SOURCES_2D if s in source_acc]
    three = [source_acc[s] for s in SOURCES_3D if s in source_acc]
    return (sum(two) / len(two) if two else None, sum(three) / len(three) if three else None)


def _overall(source_acc: Mapping[str, float]) -> float:
    """Official: ``((ADE20K + COCO) / 2 + Omni3D) / 2``."""
    parts = [p for p in _parts(source_acc) if p is not None]
    return sum(parts) / len(parts) if parts else 0.0
