"""MindCube (Yin et al. 2025, spatial mental modeling from limited views), scored with the official rules.

Sources (mll-lab-nu/MindCube at HEAD 6d8fd9acdf5b80769373a21cdbfcf068ab356e0f, read for this
module; docs/benchmarks.md cites each rule): ``src/prompt_generation/templates.py`` (prompts),
``src/evaluation/core/extractors.py`` (``extract_answer``, ``get_setting_from_id``; last changed
in cd682b45dff8748121b5b055c03db2294309865b), ``src/evaluation/core/base_metrics.py`` and
``src/evaluation/evaluator.py::BasicEvaluator`` (accuracy, settings, translation excluded from
the overall). EvolvingLMMs-Lab/lmms-eval ``lmms_eval/tasks/mindcube/utils.py`` (@ 75571cfe0fa3)
carries the same ``extract_answer``.

- Data: ``data/raw/MindCube_tinybench.jsonl`` of the HF dataset ``MLL-Lab/MindCube`` (unzip
  ``data.zip``; the full ``MindCube.jsonl`` has the same layout): ``id``, ``question`` (with the
  options, ``A. ... B. ...``), ``images`` (paths relative to ``data/``), ``gt_answer`` (a
  letter), ``category``, ``type``, ``meta_info``.
- Prompt (``RawQATemplate``, the "Raw-QA" setting of the paper's tables): the raw-QA task and
  answer instruction, a newline, ``"[Question]\\n"`` + question. Variants: ``ff_rsn``
  (``FFRSNTemplate``: reason in ``<think>``, answer in ``<answer>``) and ``think`` (task
  sentence + question + the SVQA-R1 thinking instruction).
- Extraction (``extract_answer``): in priority order -- the LAST ``X.`` (X in A-E) anywhere;
  else, after an ``<Answer>`` tag (case-sensitive), answer phrases then a lone letter; else a
  list of patterns (``X. text``, ``X`` at the start of the text or of a line before a dot /
  whitespace / the end, quoted or starred ``X``, ``Answer: X``, ``my answer is X``, ``answer is
  X``), each taking its last match; else per line. No letter: wrong. The repository's first
  commit (86500746) had one more pattern, ``X`` before a dot / whitespace / the end ANYWHERE
  (third in the list); cd682b45 removed it, and so do we: ``"A or B"`` now reads as ``A`` (the
  line-start pattern), not ``B``, and ``"THE END"`` finds no letter (it read ``D``).
  The official evaluator passes the reply unstripped (lmms-eval strips it first; this only
  matters for leading whitespace); we follow the repository.
- Metric: the extracted letter equals ``gt_answer``. Setting of an item from its ``id``
  (``around`` / ``rotation`` / ``translation`` / ``among`` / ``other``, first substring found
  in that order). Overall = item accuracy over every setting except ``translation``, which is
  reported but excluded from the overall (``apply_filtering_to_results``).

``per_type`` holds the settings; ``metrics.overall_all_settings`` is the accuracy with
translation included. Unlike the official evaluator (which scores only the responses present
in its file), a missing prediction counts as wrong here, as for every spatialrl benchmark.
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
    read_records,
    weighted_mean,
)
from spatialrl.eval.benchmarks.base import Benchmark, BenchmarkDataError, EvalItem, ItemScore, register_benchmark

SETTINGS = ("around", "rotation", "translation", "among", "other")
EXCLUDED_FROM_OVERALL = ("translation",)
N_OPTIONS = 5  # the official extractor knows A-E

TASK = (
    "[Task]\nYour task is to analyze the spatial arrangement of objects in the scene by examining the provided "
    "images, which show the scene from different viewpoints.\n"
)
RAW_QA_INSTRUCTION = TASK + (
    "[Answer Instruction]\nYou only need to provide *ONE* correct answer selecting from the options listed below. "
    "For example, if you think the correct answer is 'A. Above' from 'A. Above B. Under C. Front D. Behind', "
    "your response should **only** be '<answer>A. Above</answer>'.\n"
)
FF_RSN_INSTRUCTION = TASK + (
    "[Answer Instruction]\nPlease do step by step reasoning first, then give your final answer. For example, if you "
    "think the correct answer is 'A. Above' from 'A. Above B. Under C. Front D. Behind', your response should be "
    "this format: '<think>(replace with your reasoning here)</think><answer>A. Above</answer>'.\n"
)
QUESTION_HEADER = "[Question]\n"

_SIMPLE = re.compile(r"([A-E])\.")
_ANSWER_SECTION = re.compile(r"<Answer>(.*?)(?:<|$)", re.DOTALL)
_SECTION_PATTERNS = [re.compile(p) for p in (
    r"[Mm]y answer is ([A-E])",
    r"[Mm]y answer is ([A-E])\.",
    r"[Tt]he answer is ([A-E])",
    r"(?:Answer: )?([A-E])\.",
    r"\b([A-E])\b",
)]
_PATTERNS = [re.compile(p) for p in (
    r"(?:Answer: )?([A-E])\. [A-Za-z0-9 \-\(\)\'\",]+(?=(?:\n|$|\.|\"))",
    r"(?:Answer: )?([A-E])\. [A-Za-z0-9 \-\(\)\'\"]+",
    r"(?:^|\n)(?:Answer: )?([A-E])(?:\.|$|\s)",
    r"[\*\"]([A-E])[\*\"]",
    r"\bAnswer:?\s*([A-E])\b",
    r"[Mm]y answer is ([A-E])",
    r"[Mm]y answer is ([A-E])\.",
    r"answer is ([A-E])",
)]
_LINE_FULL = re.compile(r"([A-E])\. [A-Za-z0-9 \-\(\)\'\",]+")
_LINE_LETTER = re.compile(r"\b([A-E])\b")
_OPTION_START = re.compile(r"(?<![A-Za-z0-9])([A-E])\.\s+")


def official_extract(text: str | None) -> str | None:
    """MindCube ``extract_answer``: the answer letter by pattern priority, or ``None``."""
    if not text:
        return None
    simple = list(_SIMPLE.finditer(text))
    if simple:
        return simple[-1].group(1)
    section = _ANSWER_SECTION.search(text)
    if section:
        part = section.group(1)
        for pattern in _SECTION_PATTERNS:
            found = list(pattern.finditer(part))
            if found:
                return found[-1].group(1)
    for pattern in _PATTERNS:
        found = list(pattern.finditer(text))
        if found:
            return found[-1].group(1)
    lines = text.split("\n")
    line_hits = [m.group(1) for m in (_LINE_FULL.search(line) for line in lines) if m]
    if line_hits:
        return line_hits[-1]
    for line in reversed(lines):
        m = _LINE_LETTER.search(line)
        if m:
            return m.group(1)
    return None


def setting_from_id(item_id: str) -> str:
    """``get_setting_from_id``: the first of around / rotation / translation / among in the id."""
    low = item_id.lower()
    for name in ("around", "rotation", "translation", "among"):
        if name in low:
            return name
    return "other"


def options_from_question(question: str) -> list[str]:
    """Option texts of the last ``A. .. B. ..`` run in the question (for the lenient parser), else ``[]``."""
    starts = list(_OPTION_START.finditer(question))
    best: list[re.Match] = []
    for i, m in enumerate(starts):
        if m.group(1) != "A":
            continue
        run = [m]
        for n in starts[i + 1:]:
            if n.group(1) == LETTERS[len(run)]:
                run.append(n)
        if len(run) >= 2:
            best = run
    texts = []
    for i, m in enumerate(best):
        end = best[i + 1].start() if i + 1 < len(best) else len(question)
        texts.append(question[m.end():end].strip())
    return texts


@register_benchmark
class MindCube(Benchmark):
    """MindCube (Raw-QA prompt) with the official extraction, settings and overall."""

    name = "mindcube"
    source = ("mll-lab-nu/MindCube @ 6d8fd9ac: src/evaluation/core/extractors.py, base_metrics.py, "
              "evaluator.py; src/prompt_generation/templates.py")
    prompt_variants = ("default", "ff_rsn", "think")

    def load(self, path: str | Path, *, with_images: bool = True) -> list[EvalItem]:
        """Read ``MindCube_tinybench.jsonl`` (or another MindCube JSONL / parquet), or the ``data/`` directory."""
        files = find_data_files(path, ("MindCube_tinybench.jsonl", "*.jsonl", "*.json", "*.parquet"),
                                "MindCube file (data/raw/MindCube_tinybench.jsonl)")
        if len(files) > 1:
            listed = ", ".join(str(f) for f in files[:5])
            raise BenchmarkDataError(f"{path}: several MindCube files ({listed}); pass the one to score")
        file = files[0]
        base = file.parent.parent if file.parent.name == "raw" else file.parent
        records = read_records(file)
        items = [self._item(rec, base, with_images) for rec in records]
        check_unique_ids(items, records, "id")
        return items

    def _item(self, rec: Record, base: Path, with_images: bool) -> EvalItem:
        item_id = rec.ident("id")
        question = rec.text("question")
        gt = rec.text("gt_answer").strip()
        if gt not in LETTERS[:N_OPTIONS]:
            raise rec.error("gt_answer", f"is {gt!r}; expected a letter A-E")
        images: list[Any] = []
        if with_images and rec.get("images") is not None:
            value = rec.get("images")
            if hasattr(value, "tolist"):
                value = value.tolist()
            if isinstance(value, str) or not isinstance(value, (list, tuple)):
                raise rec.error("images", "must be a list of image paths")
            images = [image_from(v, base, rec, "images") for v in value]
        item = EvalItem(
            id=item_id,
            question_type=setting_from_id(item_id),
            prompt="",
            answer=gt,
            images=images,
            options=options_from_question(question),
            meta={"question": question, "category": rec.get("category"), "type": rec.get("type")},
        )
        item.prompt = self.prompt(item)
        return item

    def prompt(self, item: EvalItem, variant: str = "default") -> str:
        if variant not in self.prompt_variants:
            raise ValueError(f"{self.name}: unknown prompt variant {variant!r}; choose from {self.prompt_variants}")
        question = QUESTION_HEADER + item.meta["question"]
        if variant == "think":
            return f"{TASK}{question} {THINK_INSTRUCTION}"
        instruction = FF_RSN_INSTRUCTION if variant == "ff_rsn" else RAW_QA_INSTRUCTION
        return "\n".join([instruction, question])

    def score_item(self, item: EvalItem, prediction: str | None) -> ItemScore:
        if prediction is None:
            return ItemScore(score=0.0, lenient=0.0, parsed=None)
        letter = official_extract(prediction)
        options = item.options if len(item.options) >= 2 else [""] * N_OPTIONS
        idx = lenient_choice(prediction, options)
        lenient = 1.0 if idx is not None and LETTERS[idx] == item.answer else 0.0
        return ItemScore(score=1.0 if letter == item.answer else 0.0, lenient=lenient, parsed=letter)

    def aggregate(self, per_type: Mapping[str, float], counts: Mapping[str, int]) -> float:
        value = weighted_mean(per_type, counts, [k for k in per_type if k not in EXCLUDED_FROM_OVERALL])
        return 0.0 if value is None else value

    def extra_metrics(self, items: Sequence[EvalItem], texts: Sequence[str | None]) -> dict[str, Any]:
        scores = [self.score_item(item, text) for item, text in zip(items, texts)]
        unparsed = [item.id for item, text, s in zip(items, texts, scores) if text is not None and s.parsed is None]
        return {
            "overall_all_settings": 100.0 * sum(s.score for s in scores) / len(scores) if scores else 0.0,
            "excluded_from_overall": list(EXCLUDED_FROM_OVERALL),
            "unparsed": {"count": len(unparsed), "ids": unparsed},
        }
