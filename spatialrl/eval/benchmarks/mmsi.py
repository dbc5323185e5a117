"""MMSI-Bench (Yang et al. 2025, multi-image spatial intelligence), scored with the official rules.

Sources (docs/benchmarks.md cites each rule): the official repository's README
(InternRobotics/MMSI-Bench, formerly OpenRobotLab/MMSI-Bench, @ 5de2f3d2eb0159dbcc76790074029aa400143603,
section "Answer Extraction", whose extraction code is there since 42d56488) and the task the
authors contributed to EvolvingLMMs-Lab/lmms-eval (``lmms_eval/tasks/mmsi_bench/msr_bench.yaml``,
``utils.py`` as added in f12b79a1b57ce8bd2aec2f6eb4dbfc31a66e2843: ``msr_doc_to_text``,
``extract_single_choice_with_word_boundary``, ``msr_process_results``, ``msr_aggregate_results``).

Other versions of the rule, not followed: the repository's own VLMEvalKit fork
(``vlmeval/dataset/mmsi_bench.py``, 2025-05-29, older than the README's code) has no ``{...}``
step; lmms-eval since d8fcb9c3 (2026) matches ``[A-F]`` case-insensitively. The README is the
authors' latest statement of their rule, and the form lmms-eval shipped first.

- Data: ``MMSI_Bench.parquet`` of the HF dataset ``RunsenXu/MMSI-Bench`` (``id``, ``images`` as
  a list of encoded images, ``question_type``, ``question`` with its options, ``answer`` (a
  letter), ``thought``); the VLMEvalKit TSV of the same dataset (``MMSI_bench.tsv``: ``index``,
  ``image`` base64 or a JSON list of base64, ``category``) is read too.
- Prompt: ``question.strip()`` + ``"\\nAnswer with the option's letter from the given choices
  directly. Enclose the option's letter within ``."``. Variant ``think`` appends the SVQA-R1
  thinking instruction instead.
- Extraction: the content of the first double-backtick span, then of the first single-backtick
  span, then of the first ``{...}``, then the first capital ``A``-``D`` standing alone as a word
  and not followed by a space and a letter (so ``"A or B"`` reads as ``B``, ``"A chair"`` is no
  answer); none found means wrong.
- Metric: the extracted letter equals the answer, case-insensitively. Overall = accuracy over
  all items (``msr_aggregate_results`` pools the items); per category = per ``question_type``.

Deviation: where the extraction finds nothing, the official repository (through VLMEvalKit)
asks an LLM to extract the answer; lmms-eval scores 0, and so do we. Those items are counted
under ``metrics.extraction_failed``; ``overall_lenient`` reads them with ``spatialrl.answers``.
"""

from __future__ import annotations

import json
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
    image_from_base64,
    lenient_choice,
    read_all,
    weighted_mean,
)
from spatialrl.eval.benchmarks.base import Benchmark, EvalItem, ItemScore, register_benchmark

POST_PROMPT = (
    "\nAnswer with the option's letter from the given choices directly. Enclose the option's letter within ``."
)
N_OPTIONS = 4  # the official extraction only knows A-D

_DOUBLE_BACKTICK = re.compile(r"``([^`]*)``")
_BACKTICK = re.compile(r"`([^`]*)`")
_BRACES = re.compile(r"\{([^}]*)\}")
_LETTER = re.compile(r"\b[A-D]\b(?!\s[a-zA-Z])")
# "Options: A: left, B: right, C: ..., D: ..." at the end of a question (for the lenient parser).
_OPTION_START = re.compile(r"(?<![^\s,])([A-D])\s*[:.)]\s+")


def official_extract(pred: str) -> str | None:
    """``extract_single_choice_with_word_boundary`` up to the comparison: the letter, or ``None``."""
    for pattern in (_DOUBLE_BACKTICK, _BACKTICK, _BRACES):
        m = pattern.search(pred)
        if m:
            pred = m.group(1)
    m = _LETTER.search(pred)
    return m.group() if m else None


def options_from_question(question: str) -> list[str]:
    """Option texts ``A``..``D`` listed after the last ``Options:`` of a question, else ``[]``."""
    at = question.rfind("Options")
    if at < 0:
        return []
    tail = question[at:]
    starts = [m for m in _OPTION_START.finditer(tail)]
    # Keep the run A, B, C, D in order.
    run, want = [], 0
    for m in starts:
        if m.group(1) == LETTERS[want]:
            run.append(m)
            want += 1
            if want == N_OPTIONS:
                break
    if len(run) < 2:
        return []
    texts = []
    for i, m in enumerate(run):
        end = run[i + 1].start() if i + 1 < len(run) else len(tail)
        texts.append(tail[m.end():end].strip().rstrip(",").strip())
    return texts


@register_benchmark
class MMSIBench(Benchmark):
    """MMSI-Bench with the official post-prompt, extraction and accuracy."""

    name = "mmsi"
    source = "InternRobotics/MMSI-Bench README; EvolvingLMMs-Lab/lmms-eval lmms_eval/tasks/mmsi_bench/utils.py"
    prompt_variants = ("default", "think")

    def load(self, path: str | Path, *, with_images: bool = True) -> list[EvalItem]:
        """Read ``MMSI_Bench.parquet`` (or the VLMEvalKit ``MMSI_bench.tsv``), or their directory."""
        files = find_data_files(
            path,
            ("MMSI_Bench.parquet", "*.parquet", "MMSI_bench.tsv", "*.tsv", "*.jsonl", "*.json"),
            "MMSI-Bench file (MMSI_Bench.parquet)",
        )
        columns = ["id", "index", "question_type", "category", "question", "answer"]
        records = read_all(files, columns + (["images", "image"] if with_images else []))
        items = [self._item(rec, with_images) for rec in records]
        check_unique_ids(items, records, "id")
        return items

    def _item(self, rec: Record, with_images: bool) -> EvalItem:
        # parquet names them id / question_type, the VLMEvalKit TSV index / category
        id_field = "index" if rec.get("id") is None and rec.get("index") is not None else "id"
        tsv_type = rec.get("question_type") is None and rec.get("category") is not None
        type_field = "category" if tsv_type else "question_type"
        question = rec.text("question")
        answer = rec.text("answer").strip()
        if answer.upper() not in LETTERS[:N_OPTIONS]:
            raise rec.error("answer", f"is {answer!r}; expected a letter A-D")
        images: list[Any] = []
        if with_images:
            images = self._images(rec)
        item = EvalItem(
            id=rec.ident(id_field),
            question_type=rec.text(type_field),
            prompt="",
            answer=answer,
            images=images,
            options=options_from_question(question),
            meta={"question": question},
        )
        item.prompt = self.prompt(item)
        return item

    @staticmethod
    def _images(rec: Record) -> list[Any]:
        if rec.get("images") is not None:
            value = rec.get("images")
            if hasattr(value, "tolist"):
                value = value.tolist()
            if not isinstance(value, (list, tuple)):
                raise rec.error("images", "must be a list of images")
            return [image_from(v, rec.file.parent, rec, "images") for v in value]
        value = rec.get("image")
        if isinstance(value, str) and value.strip():
            if value.lstrip().startswith("["):
                try:
                    encoded = json.loads(value)
                except json.JSONDecodeError:
                    raise rec.error("image", "is not a JSON list of base64 images") from None
                return [image_from_base64(v, rec, "image") for v in encoded]
            return [image_from_base64(value, rec, "image")]
        return []

    def prompt(self, item: EvalItem, variant: str = "default") -> str:
        if variant not in self.prompt_variants:
            raise ValueError(f"{self.name}: unknown prompt variant {variant!r}; choose from {self.prompt_variants}")
        question = item.meta["question"].strip()
        return f"{question} {THINK_INSTRUCTION}" if variant == "think" else question + POST_PROMPT

    def score_item(self, item: EvalItem, prediction: str | None) -> ItemScore:
        if prediction is None:
            return ItemScore(score=0.0, lenient=0.0, parsed=None)
        letter = official_extract(prediction)
        gt = item.answer.lower().replace("\n", " ").strip()
        score = 1.0 if letter is not None and letter.lower() == gt else 0.0
        options = item.options if len(item.options) == N_OPTIONS else [""] * N_OPTIONS
        idx = lenient_choice(prediction, options)
        lenient = 1.0 if idx is not None and LETTERS[idx].lower() == gt else 0.0
        return ItemScore(score=score, lenient=lenient, parsed=letter)

    def aggregate(self, per_type: Mapping[str, float], counts: Mapping[str, int]) -> float:
        value = weighted_mean(per_type, counts, per_type.keys())
        return 0.0 if value is None else value

    def extra_metrics(self, items: Sequence[EvalItem], texts: Sequence[str | None]) -> dict[str, Any]:
        failed = [item.id for item, text in zip(items, texts) if text is not None and official_extract(text) is None]
        return {"extraction_failed": {"count": len(failed), "ids": failed}}
