"""Open-ended spatial VQA on VQASynth data (SVQA-R1 sec. 4.2-4.3, 4.5, Table 4, appendix B).

Data: the Hugging Face datasets ``remyxai/vqasynth_spacellava`` (benchmark ``vqasynth``) and
``remyxai/OpenSpaces`` (benchmark ``openspaces``; same format and rules), as published:
parquet shards ``data/{train,test}-NNNNN-of-NNNNN.parquet`` with a ``messages`` column -- a list
of ``{"role": "user"|"assistant", "content": [{"type": "image"|"text", "index", "text"}]}``
turns, the first user turn carrying the image part (VQASynth ``docker/prompt_stage/process_prompts.py``)
-- and ``images`` (a list of images; an older revision had a single ``image``). LLaVA-style rows
(``conversations`` of ``{"from": "human"|"gpt", "value"}``, ``<image>`` tokens) and JSON Lines
exports are read too. ``load(path)`` takes a file or a directory (searched recursively); from a
directory holding several splits only ``test`` is read when present (SVQA-R1 evaluates on the
test sets). Every dialogue is split into single-turn items, one per user/assistant pair, each
with all images of its row (SVQA-R1 sec. 4.2). Ids: ``"<split>/<row>/<turn>"`` (0-based).

SVQA-R1 sampled "approximately 1,000" test dialogues per dataset (3,120 and 5,000 pairs); how
they were drawn is not published, so we score every dialogue of the files given.

Task types (appendix B; keyword lists verbatim, matched case-insensitively as whole
words/phrases). The paper gives the lists but not the precedence nor what to do with an item
whose ground truth cannot be scored by its type's metric; our rule, in this order:

1. ``bbox``: a ``BBOX_KEYWORDS`` phrase in the question **and** the ground truth holds a box
   (``parse_bbox``);
2. ``distance``: a ``DISTANCE_KEYWORDS`` phrase in the question **and** the ground truth holds
   one length (``parse_quantity``), since the metric needs a number;
3. ``yes_no``: a ``YES_ALIASES``/``NO_ALIASES`` phrase in the ground-truth answer (the aliases
   are answer phrases) **and** no digit in it (``"It is 2 m"`` is not a yes/no answer);
4. ``other``: everything else, excluded from the type-specific metrics (appendix B).

Metrics (Table 4), in percent:

- ``sbert`` (the benchmark's ``overall`` and the per-item score, so ``per_type`` is sBERT by
  type): Sentence-BERT cosine (all-MiniLM-L6-v2, ``spatialrl.rewards.semantic``; negative cosines
  clipped to 0, a missing/blank answer scores 0) between the answer text and the ground truth.
- ``bleu1``, ``bleu2``: corpus BLEU-1/2 (``spatialrl.eval.metrics.bleu``) over all items.
- ``bbox_miou``, ``bbox_acc_0.75``: on bbox items; IoU in the ground truth's frame. Ours: when
  the ground truth is normalised (all coordinates <= 1) and the predicted box is in pixels (a
  coordinate > 1), or the reverse, the prediction is converted with the image size when known.
- ``yes_no_acc``: on yes/no items, rule-based: the polarity of the answer text equals the
  ground truth's, polarity = ``parse_yes_no`` and, when that gives nothing, the appendix B.2
  aliases (a NO alias -> no, else a YES alias -> yes). ``yes_no_acc_llm`` (when a judge is
  configured): appendix B.2's GPT-4o judgement (``spatialrl.eval.judge``), as the paper does.
- ``distance_acc``: on distance items, ``0.5 * gt <= pred <= 2 * gt`` with both lengths parsed
  by ``parse_quantity`` (sec. 4.3: "within the range from 50% to 200% of the ground truth";
  inclusive ends are our reading).
- ``llm`` (when a judge is configured): share of items the judge calls correct (our prompt,
  ``OPEN_ENDED_PROMPT``; the paper's is not published). Missing answers count as incorrect, and
  so do judgements that fail or are malformed (their counts are reported under ``judge``).

The answer text of a prediction is ``extract_answer(text)`` when it has an ``<answer>`` block,
else the text without its ``<think>...</think>`` blocks.

The judge: ``VQASynthBench(judge=Judge(...))``, or set ``SPATIALRL_JUDGE_MODEL`` (and optionally
``SPATIALRL_JUDGE_BASE_URL``, ``SPATIALRL_JUDGE_API_KEY_ENV``, ``SPATIALRL_JUDGE_CACHE``) for
``spatialrl eval score`` (see ``spatialrl.eval.judge.judge_from_env``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from spatialrl.eval.benchmarks.base import (
    Benchmark,
    BenchmarkDataError,
    EvalItem,
    ItemScore,
    register_benchmark,
)
from spatialrl.eval.benchmarks.qspatial import (
    data_files,
    image_from,
    iter_records,
    split_of,
)
from spatialrl.prompts import apply_prompt

__all__ = [
    "BBOX_KEYWORDS",
    "DISTANCE_KEYWORDS",
    "NO_ALIASES",
    "YES_ALIASES",
    "OpenSpacesBench",
    "VQASynthBench",
    "answer_text",
    "split_dialogue",
    "task_type",
    "yes_no_polarity",
]

# SVQA-R1 appendix B.1-B.3, verbatim.
BBOX_KEYWORDS: tuple[str, ...] = (
    "bounding box", "box coordinates", "coordinates", "bbox", "where is", "x coordinate", "y coordinate",
    "draw a box", "top left", "bottom right", "region of",
)
YES_ALIASES: tuple[str, ...] = (
    "yes", "it is", "appears to be", "looks like", "seems like", "definitely", "likely", "indeed",
)
NO_ALIASES: tuple[str, ...] = (
    "no", "not", "doesn't", "isn't", "unlikely", "I don't think", "probably not",
)
DISTANCE_KEYWORDS: tuple[str, ...] = (
    "how far", "distance between", "distance from", "which is closer", "which is farther", "closer", "further",
    "nearer", "farthest", "measure the distance", "what is the distance", "spacing between", "gap between",
)

TYPES = ("bbox", "yes_no", "distance", "other")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
_THINK = re.compile(r"<\s*think\s*>.*?<\s*/\s*think\s*>", re.IGNORECASE | re.DOTALL)
_DIGIT = re.compile(r"\d")


def _phrases(words: Sequence[str]) -> re.Pattern:
    parts = sorted(words, key=len, reverse=True)
    alt = "|".join(r"\s+".join(re.escape(w) for w in p.split()) for p in parts)
    return re.compile(rf"(?<!\w)(?:{alt})(?!\w)", re.IGNORECASE)


_BBOX = _phrases(BBOX_KEYWORDS)
_DISTANCE = _phrases(DISTANCE_KEYWORDS)
_YES = _phrases(YES_ALIASES)
_NO = _phrases(NO_ALIASES)


def _has(pattern: re.Pattern, text: str) -> bool:
    return pattern.search(text.translate(_APOSTROPHES)) is not None


def task_type(question: str, answer: str) -> str:
    """``"bbox"``, ``"distance"``, ``"yes_no"`` or ``"other"`` (appendix B lists; precedence in the module doc)."""
    from spatialrl.answers import parse_bbox, parse_quantity

    if _has(_BBOX, question) and parse_bbox(answer) is not None:
        return "bbox"
    if _has(_DISTANCE, question) and parse_quantity(answer, "length") is not None:
        return "distance"
    if (_has(_YES, answer) or _has(_NO, answer)) and not _DIGIT.search(answer):
        return "yes_no"
    return "other"


def yes_no_polarity(text: str | None) -> bool | None:
    """``parse_yes_no(text)``, else the appendix B.2 aliases (a NO alias wins), else ``None``."""
    from spatialrl.answers import parse_yes_no

    if not isinstance(text, str) or not text.strip():
        return None
    value = parse_yes_no(text)
    if value is not None:
        return value
    if _has(_NO, text):
        return False
    if _has(_YES, text):
        return True
    return None


def answer_text(text: str | None) -> str | None:
    """The ``<answer>`` content, else the text without ``<think>`` blocks (stripped); ``None`` if missing."""
    from spatialrl.answers import extract_answer

    if not isinstance(text, str):
        return None
    answer = extract_answer(text)
    if answer is not None:
        return answer
    return _THINK.sub(" ", text).strip()


# --------------------------------------------------------------------------------------------
# Dialogues
# --------------------------------------------------------------------------------------------


def split_dialogue(where: str, record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``[(question, answer), ...]`` of a row (``spatialrl.data.dialogues.split_dialogue``);
    a malformed dialogue is a ``BenchmarkDataError`` naming the file, record and field."""
    from spatialrl.data.dialogues import DialogueError
    from spatialrl.data.dialogues import split_dialogue as split

    try:
        return split(where, record)[0]
    except DialogueError as exc:
        raise BenchmarkDataError(str(exc)) from None


def _row_images(where: str, record: Mapping[str, Any], base: Path) -> list[Any]:
    if record.get("images") is not None:
        value = record["images"]
        if not isinstance(value, list):
            value = [value]
        images = [image_from(v, base, where, f"images[{k}]") for k, v in enumerate(value)]
        return [im for im in images if im is not None]
    if record.get("image") is not None:
        image = image_from(record["image"], base, where, "image")
        return [image] if image is not None else []
    return []


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------


@register_benchmark
class VQASynthBench(Benchmark):
    """remyxai/vqasynth_spacellava test split, single-turn, SVQA-R1 Table 4 metrics.

    Args:
        judge: a ``spatialrl.eval.judge.Judge`` for the LLM metrics; ``None`` reads
            ``SPATIALRL_JUDGE_MODEL`` (unset: no LLM metrics).
        scorer: a ``SemanticScorer`` (default: the shared all-MiniLM-L6-v2 scorer).
    """

    name = "vqasynth"
    source = ("SVQA-R1 (Wang & Ling) sec. 4.2-4.3, Table 4, appendix B; data format: "
              "remyxai/VQASynth docker/prompt_stage/process_prompts.py, HF remyxai/vqasynth_spacellava")
    #: ``default`` = the dataset's question; SVQA-R1 Table 9 (a) and (b).
    prompt_variants = ("default", "original", "spatial_reasoning")
    dataset_hint = "remyxai/vqasynth_spacellava"

    #: Scorer used when none is given (``None``: the shared all-MiniLM-L6-v2 scorer).
    default_scorer: Any = None

    def __init__(self, judge: Any = None, scorer: Any = None) -> None:
        self.judge = judge
        self._judge_resolved = judge is not None
        self.scorer = scorer if scorer is not None else type(self).default_scorer
        self._sbert: dict[tuple[str, str], float] = {}

    # -- loading ---------------------------------------------------------------------------------

    def load(self, path: str | Path, *, with_images: bool = True) -> list[EvalItem]:
        """Read the files at ``path``; ``with_images=False`` keeps only each image's size (for the
        box frame), not the image (``spatialrl eval score`` needs no pixels)."""
        path = Path(path).expanduser()
        files = data_files(path, self.dataset_hint)
        splits = {split_of(f) for f in files}
        if len(splits) > 1 and "test" in splits:
            files = [f for f in files if split_of(f) == "test"]
        rows: dict[str, int] = defaultdict(int)
        items: list[EvalItem] = []
        for file in files:
            split = split_of(file)
            for where, record, _ in iter_records(file, ()):
                if not isinstance(record, Mapping):
                    raise BenchmarkDataError(f"{where}: expected an object")
                row = rows[split]
                rows[split] += 1
                pairs = split_dialogue(where, record)
                images = _row_images(where, record, file.parent)
                size = None
                if images and hasattr(images[0], "size"):
                    size = tuple(int(v) for v in images[0].size)
                if not with_images:
                    images = []
                for turn, (question, answer) in enumerate(pairs):
                    items.append(EvalItem(
                        id=f"{split}/{row}/{turn}",
                        question_type=task_type(question, answer),
                        prompt=question,
                        answer=answer,
                        images=list(images),
                        meta={"split": split, "row": row, "turn": turn, "image_size": size},
                    ))
        if not items:
            raise BenchmarkDataError(f"{path}: no questions found")
        return items

    def prompt(self, item: EvalItem, variant: str = "default") -> str:
        if variant not in self.prompt_variants:
            raise ValueError(f"{self.name}: unknown prompt variant {variant!r}; choose from {self.prompt_variants}")
        if variant == "default":
            return item.prompt
        return apply_prompt(item.prompt, variant)

    def aggregate(self, per_type: Mapping[str, float], counts: Mapping[str, int]) -> float:
        """Mean sBERT over all items (micro), as Table 4's sBERT column."""
        total = sum(counts.values())
        return sum(per_type[k] * counts[k] for k in per_type) / total if total else 0.0

    # -- per-item score: sBERT -------------------------------------------------------------------

    def _similarities(self, preds: Sequence[str | None], refs: Sequence[str]) -> list[float]:
        from spatialrl.rewards.semantic import semantic_similarity

        return [float(v) for v in semantic_similarity(list(preds), list(refs), self.scorer)]

    def prepare(self, items: Sequence[EvalItem], texts: Sequence[str | None]) -> None:
        """Compute every item's sBERT in one batch, so that ``score_item`` only looks it up.

        Meant to be called by ``score_predictions`` before its ``score_item`` loop (a hook the
        base class does not have yet); without it ``score_item`` encodes one pair at a time,
        which is correct but slow on CPU (one model call per item).
        """
        answers = [answer_text(t) for t in texts]
        sims = self._similarities(answers, [str(it.answer) for it in items])
        for it, text, sim in zip(items, texts, sims):
            if text is not None:
                self._sbert[(it.id, text)] = sim

    def score_item(self, item: EvalItem, prediction: str | None) -> ItemScore:
        if prediction is None:
            return ItemScore(score=0.0)
        key = (item.id, prediction)
        if key not in self._sbert:
            self._sbert[key] = self._similarities([answer_text(prediction)], [str(item.answer)])[0]
        return ItemScore(score=self._sbert[key], parsed=answer_text(prediction))

    # -- Table 4 metrics -------------------------------------------------------------------------

    def _get_judge(self) -> Any:
        if not self._judge_resolved:
            from spatialrl.eval.judge import judge_from_env

            self.judge = judge_from_env()
            self._judge_resolved = True
        return self.judge

    @staticmethod
    def _box_in_frame(pred: tuple[float, ...], gt: tuple[float, ...], size: Any) -> tuple[float, ...]:
        if not size:
            return pred
        w, h = size
        gt_norm, pred_norm = max(gt) <= 1.0, max(pred) <= 1.0
        if gt_norm and not pred_norm:
            return (pred[0] / w, pred[1] / h, pred[2] / w, pred[3] / h)
        if pred_norm and not gt_norm:
            return (pred[0] * w, pred[1] * h, pred[2] * w, pred[3] * h)
        return pred

    def extra_metrics(self, items: Sequence[EvalItem], texts: Sequence[str | None]) -> dict[str, Any]:
        import numpy as np

        from spatialrl.answers import parse_bbox, parse_quantity
        from spatialrl.eval import metrics

        if len(items) != len(texts):
            raise ValueError(f"{len(items)} items but {len(texts)} predictions")
        if not items:
            return {}
        answers = [answer_text(t) for t in texts]
        refs = [str(it.answer) for it in items]
        by_type: dict[str, list[int]] = defaultdict(list)
        for i, it in enumerate(items):
            by_type[it.question_type].append(i)

        def pct(values: Sequence[float]) -> float | None:
            return 100.0 * float(np.mean(values)) if len(values) else None

        sims = []
        for it, text in zip(items, texts):
            sims.append(0.0 if text is None else self._sbert.get((it.id, text)))
        todo = [i for i, s in enumerate(sims) if s is None]
        if todo:
            fresh = self._similarities([answers[i] for i in todo], [refs[i] for i in todo])
            for i, s in zip(todo, fresh):
                sims[i] = s

        out: dict[str, Any] = {
            "sbert": pct(sims),
            "bleu1": metrics.bleu(answers, refs, 1),
            "bleu2": metrics.bleu(answers, refs, 2),
            "counts": {t: len(by_type.get(t, [])) for t in TYPES},
        }

        bbox = by_type.get("bbox", [])
        pred_boxes, gt_boxes = [], []
        for i in bbox:
            gt = parse_bbox(refs[i])
            pred = parse_bbox(answers[i]) if answers[i] else None
            if pred is not None and gt is not None:
                pred = self._box_in_frame(pred, gt, items[i].meta.get("image_size"))
            pred_boxes.append(pred)
            gt_boxes.append(gt)
        out["bbox_miou"] = 100.0 * metrics.box_miou(pred_boxes, gt_boxes) if bbox else None
        out["bbox_acc_0.75"] = 100.0 * metrics.box_accuracy_at(pred_boxes, gt_boxes, 0.75) if bbox else None

        yes_no = by_type.get("yes_no", [])
        out["yes_no_acc"] = 100.0 * metrics.yes_no_accuracy(
            [yes_no_polarity(answers[i]) for i in yes_no], [bool(yes_no_polarity(refs[i])) for i in yes_no]
        ) if yes_no else None

        distance = by_type.get("distance", [])
        hits = []
        for i in distance:
            gt_m = parse_quantity(refs[i], "length")
            pred_m = parse_quantity(answers[i], "length") if answers[i] else None
            hits.append(pred_m is not None and gt_m is not None and 0.5 * gt_m <= pred_m <= 2.0 * gt_m)
        out["distance_acc"] = pct(hits)

        judge = self._get_judge()
        if judge is not None:
            out.update(self._judge_metrics(judge, items, answers, refs, yes_no))
        return out

    def _judge_metrics(self, judge: Any, items: Sequence[EvalItem], answers: Sequence[str | None],
                       refs: Sequence[str], yes_no: Sequence[int]) -> dict[str, Any]:
        before = dict(judge.stats)
        open_idx = [i for i, a in enumerate(answers) if a]
        verdicts = judge.judge_many([{"kind": "open", "question": items[i].prompt, "pred": answers[i],
                                      "gt": refs[i]} for i in open_idx])
        correct = sum(v == 1 for v in verdicts)
        yn_idx = [i for i in yes_no if answers[i]]
        yn_verdicts = judge.judge_many([{"kind": "yes_no", "pred": answers[i], "gt": refs[i]} for i in yn_idx])
        yn_correct = sum(v == 1 for v in yn_verdicts)
        return {
            "llm": 100.0 * correct / len(items),
            "yes_no_acc_llm": 100.0 * yn_correct / len(yes_no) if yes_no else None,
            "judge": {
                "model": judge.name,
                "judgements": len(verdicts) + len(yn_verdicts),
                "not_sent_empty_or_missing": (len(items) - len(open_idx)) + (len(yes_no) - len(yn_idx)),
                "malformed": judge.stats["malformed"] - before.get("malformed", 0),
                "failed": judge.stats["failed"] - before.get("failed", 0),
            },
        }


@register_benchmark
class OpenSpacesBench(VQASynthBench):
    """remyxai/OpenSpaces test split: same format and rules as ``vqasynth`` (SVQA-R1 Table 4, bottom)."""

    name = "openspaces"
    source = ("SVQA-R1 (Wang & Ling) sec. 4.2-4.3, Table 4, appendix B; data format: "
              "remyxai/VQASynth docker/prompt_stage/process_prompts.py, HF remyxai/OpenSpaces")
    dataset_hint = "remyxai/OpenSpaces"
