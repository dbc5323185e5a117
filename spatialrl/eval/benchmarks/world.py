"""``world``: the synthetic world's own benchmark (a split of a ``spatialrl data build``),
scored VSI-Bench style (Yang et al. 2025: mean relative accuracy for numbers, accuracy for the
rest, macro average over question types).

This is our benchmark, so the rules are ours; ``docs/benchmarks.md`` states them for
users. In short:

- Data (``load``): ``DIR`` (a directory written by ``spatialrl data build --format hf`` or
  ``trl``) reads the ``test`` split, ``DIR:train`` (any ``DIR:<split>``) another split, and a
  path to one ``.parquet`` shard reads that shard. Every row is checked with
  ``spatialrl.data.schema.validate_row``; errors name the file, the row and the column.
  Items carry the row's PIL images (lazily decoded; ``spatialrl.data.schema.row_images``: the one
  image of a single-image row, the K frames of a multi-frame row, in order; builds written
  before the ``frames`` column existed read as single-image rows),
  ``prompt = spatialrl.prompts.prompt_text``.
- Extraction: the content of the one ``<answer>...</answer>`` block
  (``spatialrl.answers.extract_answer``); with no answer tag at all, the whole text; a
  malformed tag (unclosed, empty, nested) makes the prediction unparsable (score 0).
- Scoring per ``answer_type``:
    * ``numerical``: ``parse_quantity(text, dimension)`` (SI; a bare number is in meters /
      square meters, the unit the questions ask for) against the exact ``answer_value`` by
      mean relative accuracy (VSI-Bench, ``spatialrl.eval.metrics``). ``gt = 0`` scores 0
      (its ids are listed under ``metrics.gt_zero_ids``).
    * ``discrete``: with options, ``parse_choice`` against ``answer_index``; without options
      and a ``yes``/``no`` truth, ``parse_yes_no``; otherwise ``exact_match`` on ``answer``.
    * ``grounding``: ``parse_bbox`` (pixels of the stored image), correct iff IoU >= 0.5 with
      ``bbox``; mIoU and Acc@0.75 go to ``metrics.grounding``.
    * ``open_ended`` with a numeric truth (``answer_value`` set: distance, height, size,
      count phrasings): MRA of ``parse_quantity`` on the extracted text, as for numerical.
      Aggregated as type ``open_ended_numeric``.
    * ``open_ended`` without a numeric truth (templates ``left_right``, ``closer``):
      aggregated as type ``open_ended_relation``, scored by the verdict with no model: 1 when
      the normalised text equals the reference sentence; else for ``left_right`` the
      ``parse_yes_no`` verdict must equal the reference's, for ``closer`` the text must name
      exactly one of the two objects (``parse_choice`` over their names) and it must be the
      nearer one; other templates need the exact sentence. BLEU-1/2 of all open-ended
      answers are reported under ``metrics.open_ended`` (sacrebleu; Sentence-BERT is left to
      the caller: it needs a model).
- Aggregation: ``per_type`` = mean score per type (the 15 non-open-ended question types plus
  the two open-ended ones above); ``overall`` = macro average over the types present.
- ``metrics``: ``per_view`` (the same macro average over the ``original`` and ``mirror`` items
  alone), ``pairs`` (pairs with both views among the items: ``consistency`` = share where both
  views are right or both wrong, ``both_right``, ``both_wrong``, ``mean_score_gap`` = mean
  ``|s_original - s_mirror|``; a view is "right" when its score is >= 0.5, i.e. correct for
  accuracy types and relative error <= 0.30 for MRA types), ``by_answer_type`` (mean item
  score per answer type), ``by_template`` (mean score per question template of the types asked
  in several, e.g. ``rel_direction``'s ``lateral`` left/right, ``depth`` and ``quadrant``), ``unparsed`` (predictions given but not parsable, per answer type),
  ``grounding``, ``open_ended``. Percentages throughout, like ``overall``.
"""

from __future__ import annotations

import bisect
import io
import json
import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from spatialrl._extras import require
from spatialrl.answers import (
    extract_answer,
    parse_bbox,
    parse_choice,
    parse_quantity,
    parse_yes_no,
)
from spatialrl.eval.benchmarks.base import (
    Benchmark,
    BenchmarkDataError,
    EvalItem,
    ItemScore,
    register_benchmark,
)
from spatialrl.eval.metrics import MRA_THRESHOLDS, bleu, box_miou, exact_match
from spatialrl.prompts import prompt_text
from spatialrl.rewards.iou import box_iou

DEFAULT_SPLIT = "test"
IOU_THRESHOLD = 0.5
"""A grounding answer is correct when its IoU with the true box is at least this."""
RIGHT_THRESHOLD = 0.5
"""For pair consistency, a view is "right" when its item score is at least this."""
OPEN_NUMERIC = "open_ended_numeric"
OPEN_RELATION = "open_ended_relation"

_CACHE_MAX = 1_000_000
_ANSWER_TAG = re.compile(r"<\s*/?\s*answer\s*>", re.IGNORECASE)
_SPLIT_SUFFIX = re.compile(r"^(?P<path>.+):(?P<split>[A-Za-z0-9_.-]+)$")
_SPACES = re.compile(r"\s+")
# The MRA bounds ``1 - theta`` as Python floats in ascending order (the same float64 values
# metrics.py compares against), so that scoring one item does not pay numpy's per-call overhead.
_MRA_BOUNDS = tuple(sorted(float(b) for b in (1.0 - MRA_THRESHOLDS)))


def answer_text(prediction: str | None) -> str | None:
    """The text that is parsed: the last ``<answer>`` block, else (no answer tag anywhere) the
    whole stripped text; ``None`` for a missing prediction or a malformed answer tag."""
    if not isinstance(prediction, str):
        return None
    ans = extract_answer(prediction)
    if ans is not None:
        return ans
    if _ANSWER_TAG.search(prediction):
        return None
    return prediction.strip() or None


def mra(pred: float | None, gt: float) -> float:
    """``spatialrl.eval.metrics.mean_relative_accuracy`` for one pair, in pure Python.

    Same thresholds and comparisons (``|pred - gt| / gt <= 1 - theta``); ``None``, NaN and
    ``gt = 0`` score 0. About 20 times faster than the numpy version on scalars.
    """
    if pred is None or gt == 0:
        return 0.0
    rel = abs(pred - gt) / gt
    if math.isnan(rel):
        return 0.0
    # bounds >= rel are those from the first one not below rel
    return (len(_MRA_BOUNDS) - bisect.bisect_left(_MRA_BOUNDS, rel)) / len(_MRA_BOUNDS)


def _norm_sentence(text: str) -> str:
    return _SPACES.sub(" ", text).strip().rstrip(".").strip().casefold()


def make_item(row: Mapping[str, Any], images: Any = None) -> EvalItem:
    """The ``EvalItem`` of one dataset row (a dict with the columns of ``spatialrl.data.schema``;
    ``scene_json``, ``source``, ``unit``, ``image`` and ``frames`` are not needed). ``images``:
    the row's PIL images in order (a list; one image alone is taken as a list of one)."""
    meta_raw = row.get("meta") or "{}"
    meta = json.loads(meta_raw) if isinstance(meta_raw, str) else dict(meta_raw)
    value = row.get("answer_value")
    bbox = row.get("bbox") or []
    return EvalItem(
        id=str(row["id"]),
        question_type=str(row["question_type"]),
        prompt=prompt_text(str(row["question"])),
        answer=row["answer"],
        images=[] if images is None else list(images) if isinstance(images, (list, tuple)) else [images],
        options=[str(o) for o in (row.get("options") or [])],
        meta={
            "answer_type": row["answer_type"],
            "answer_value": None if value is None else float(value),
            "dimension": row.get("dimension"),
            "answer_index": int(row.get("answer_index", -1)),
            "bbox": [float(v) for v in bbox],
            "pair_id": row.get("pair_id"),
            "view": row.get("view"),
            "template": meta.get("template"),
            "object_names": list(meta.get("object_names") or []),
        },
    )


@register_benchmark
class WorldBenchmark(Benchmark):
    """The synthetic world's test split with VSI-Bench-style scoring (see the module docstring)."""

    name = "world"
    source = "spatialrl synthetic world (docs/data.md); rules: spatialrl/eval/benchmarks/world.py"

    def __init__(self) -> None:
        # score_item results of the current scoring pass, so that extra_metrics (called by
        # score_predictions after every score_item) does not parse every prediction again.
        self._cache: dict[str, tuple[EvalItem, str | None, ItemScore]] = {}

    # -- data -------------------------------------------------------------------------

    def load(self, path: str | Path, *, split: str | None = None, with_images: bool = True) -> list[EvalItem]:
        """Read a split of a ``spatialrl data build`` directory.

        Args:
            path: ``DIR`` (split ``split``, default ``test``), ``DIR:<split>``, or one parquet file.
            split: the split when ``path`` names none.
            with_images: attach the PIL images to each item (decoded lazily); False skips them.
        """
        files = _data_files(path, split)
        from spatialrl.data.schema import COLUMNS, row_images, validate_row

        items: list[EvalItem] = []
        seen: dict[str, str] = {}
        for file in files:
            for where, row in _read_rows(file, [*COLUMNS, "images"], optional=("image", "frames", "images")):
                if "images" in row:  # a trl build: every image of a row in one list
                    images = row.pop("images") or []
                    row["image"], row["frames"] = (images[0], []) if len(images) == 1 else (None, images)
                row.setdefault("frames", [])  # a build from before multi-frame rows
                try:
                    validate_row(row)
                    item = make_item(row, [_image(im) for im in row_images(row)] if with_images else None)
                except BenchmarkDataError:
                    raise
                except (ValueError, TypeError, KeyError) as exc:
                    raise BenchmarkDataError(f"{file}: {where}: {exc}") from None
                if item.id in seen:
                    raise BenchmarkDataError(f"{file}: {where}: field 'id' repeats {item.id!r} "
                                             f"(already in {seen[item.id]})")
                seen[item.id] = f"{file.name} {where}"
                items.append(item)
        if not items:
            raise BenchmarkDataError(f"{', '.join(map(str, files))}: the split has no rows")
        return items

    # -- scoring ----------------------------------------------------------------------

    def type_of(self, item: EvalItem) -> str:
        if item.meta["answer_type"] == "open_ended":
            return OPEN_NUMERIC if item.meta["answer_value"] is not None else OPEN_RELATION
        return item.question_type

    def score_item(self, item: EvalItem, prediction: str | None) -> ItemScore:
        result = self._score(item, prediction)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[item.id] = (item, prediction, result)
        return result

    def _score(self, item: EvalItem, prediction: str | None) -> ItemScore:
        text = answer_text(prediction)
        if text is None:
            return ItemScore(score=0.0, parsed=None)
        meta = item.meta
        kind = meta["answer_type"]
        if kind == "numerical" or (kind == "open_ended" and meta["answer_value"] is not None):
            value = parse_quantity(text, meta["dimension"] or "length")
            return ItemScore(score=mra(value, meta["answer_value"]), parsed=value)
        if kind == "discrete":
            if item.options:
                idx = parse_choice(text, item.options)
                return ItemScore(score=float(idx is not None and idx == meta["answer_index"]), parsed=idx)
            truth = str(item.answer).strip().lower()
            if truth in ("yes", "no"):
                yn = parse_yes_no(text)
                return ItemScore(score=float(yn is not None and yn == (truth == "yes")), parsed=yn)
            return ItemScore(score=exact_match(text, str(item.answer)), parsed=text)
        if kind == "grounding":
            box = parse_bbox(text)
            iou = box_iou(box, meta["bbox"])
            return ItemScore(score=float(box is not None and iou >= IOU_THRESHOLD), parsed=box)
        return self._score_relation(item, text)

    def _score_relation(self, item: EvalItem, text: str) -> ItemScore:
        """Open-ended answer without a numeric truth: exact sentence, else the verdict."""
        truth = str(item.answer)
        if _norm_sentence(text) == _norm_sentence(truth):
            return ItemScore(score=1.0, parsed=text)
        template, names = item.meta.get("template"), item.meta.get("object_names") or []
        if template == "left_right":
            want, got = parse_yes_no(truth), parse_yes_no(text)
            return ItemScore(score=float(got is not None and got == want), parsed=got)
        if template == "closer" and len(names) == 2:
            near = next((n for n in names if _norm_sentence(truth).startswith(f"the {n.casefold()} is closer")), None)
            idx = parse_choice(text, names)
            named = None if idx is None else names[idx]
            return ItemScore(score=float(near is not None and named == near), parsed=named)
        return ItemScore(score=0.0, parsed=text)

    def _scored(self, item: EvalItem, text: str | None) -> ItemScore:
        hit = self._cache.get(item.id)
        if hit is not None and hit[0] is item and hit[1] == text:
            return hit[2]
        return self._score(item, text)

    # -- reporting --------------------------------------------------------------------

    def extra_metrics(self, items: Sequence[EvalItem], texts: Sequence[str | None]) -> dict[str, Any]:
        scores = [self._scored(item, text) for item, text in zip(items, texts)]
        self._cache.clear()
        out: dict[str, Any] = {}

        by_view: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        by_answer: dict[str, list[float]] = defaultdict(list)
        by_template: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        unparsed: dict[str, int] = defaultdict(int)
        pairs: dict[str, dict[str, float]] = defaultdict(dict)
        gt_zero: list[str] = []
        boxes: tuple[list[Any], list[Any]] = ([], [])
        open_texts: tuple[list[str | None], list[str]] = ([], [])
        for item, text, result in zip(items, texts, scores):
            meta = item.meta
            kind = meta["answer_type"]
            view = meta.get("view") or "unknown"
            by_view[view][self.type_of(item)].append(result.score)
            by_answer[kind].append(result.score)
            if meta.get("template"):
                by_template[self.type_of(item)][meta["template"]].append(result.score)
            if text is not None and result.parsed is None:
                unparsed[kind] += 1
            if meta.get("pair_id") is not None:
                pairs[meta["pair_id"]][view] = result.score
            if meta["answer_value"] == 0.0:
                gt_zero.append(item.id)
            if kind == "grounding":
                boxes[0].append(result.parsed)
                boxes[1].append(meta["bbox"])
            elif kind == "open_ended":
                open_texts[0].append(answer_text(text))
                open_texts[1].append(str(item.answer))

        out["per_view"] = {view: 100.0 * self.aggregate({k: _mean(v) for k, v in types.items()}, {})
                           for view, types in sorted(by_view.items())}
        out["by_answer_type"] = {k: 100.0 * _mean(v) for k, v in sorted(by_answer.items())}
        # Types asked in several templates (rel_direction: left/right, in front/behind, both) per template.
        out["by_template"] = {qt: {t: 100.0 * _mean(v) for t, v in sorted(templates.items())}
                              for qt, templates in sorted(by_template.items()) if len(templates) > 1}
        complete = [(p["original"], p["mirror"]) for p in pairs.values() if "original" in p and "mirror" in p]
        right = [(a >= RIGHT_THRESHOLD, b >= RIGHT_THRESHOLD) for a, b in complete]
        out["pairs"] = {
            "count": len(complete),
            "consistency": 100.0 * _mean([float(a == b) for a, b in right]),
            "both_right": 100.0 * _mean([float(a and b) for a, b in right]),
            "both_wrong": 100.0 * _mean([float(not a and not b) for a, b in right]),
            "mean_score_gap": 100.0 * _mean([abs(a - b) for a, b in complete]),
        }
        out["unparsed"] = {k: unparsed.get(k, 0) for k in sorted(by_answer)}
        if boxes[0]:
            ious = [box_iou(p, g) for p, g in zip(*boxes)]
            out["grounding"] = {
                "miou": 100.0 * box_miou(*boxes),
                "acc_at_0.5": 100.0 * _mean([float(i >= 0.5) for i in ious]),
                "acc_at_0.75": 100.0 * _mean([float(i >= 0.75) for i in ious]),
            }
        if open_texts[0]:
            out["open_ended"] = {"bleu1": bleu(*open_texts, max_order=1), "bleu2": bleu(*open_texts, max_order=2)}
        if gt_zero:
            out["gt_zero_ids"] = gt_zero
        return out


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


# -- reading a build ----------------------------------------------------------------------


def _data_files(path: str | Path, split: str | None) -> list[Path]:
    """The parquet shard(s) of the requested split (see ``WorldBenchmark.load``)."""
    raw = str(path)
    p = Path(raw)
    named = None
    if not p.exists():
        m = _SPLIT_SUFFIX.match(raw)
        if m is not None and Path(m.group("path")).exists():
            p, named = Path(m.group("path")), m.group("split")
        else:
            raise BenchmarkDataError(f"{raw}: not found (give the directory written by `spatialrl data build`, "
                                     f"optionally as DIR:train or DIR:test, or one of its parquet files)")
    if split is not None and named is not None and split != named:
        raise BenchmarkDataError(f"{raw}: names split {named!r} but split={split!r} was also given")
    if p.is_file():
        if named is not None:
            raise BenchmarkDataError(f"{raw}: a split suffix applies to a dataset directory, not to a file")
        if p.suffix.lower() != ".parquet":
            raise BenchmarkDataError(f"{p}: not a parquet file (give the directory written by `spatialrl data build`)")
        return [p]
    wanted = named or split or DEFAULT_SPLIT
    for folder in (p / "data", p):
        files = sorted(f for f in folder.glob(f"{wanted}-*.parquet") if f.is_file())
        if files:
            return files
    available = sorted({f.name.split("-", 1)[0] for folder in (p / "data", p) if folder.is_dir()
                        for f in folder.glob("*-*.parquet")})
    if available:
        raise BenchmarkDataError(f"{p}: no split {wanted!r} (found {', '.join(available)}; "
                                 f"choose one with {p}:<split>)")
    raise BenchmarkDataError(f"{p}: no data/{wanted}-*.parquet here; is this a directory written by "
                             f"`spatialrl data build` (--format hf or trl)?")


def _read_rows(file: Path, columns: Sequence[str], optional: Sequence[str] = ()) -> list[tuple[str, dict[str, Any]]]:
    """The rows of ``file`` with ``columns`` (those in ``optional`` only where the file has them)."""
    pq = require("eval", "pyarrow.parquet")

    try:
        names = pq.read_schema(file).names
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise BenchmarkDataError(f"{file}: not a readable parquet file ({exc})") from None
    columns = [c for c in columns if c in names or c not in optional]
    missing = [c for c in columns if c not in names]
    if missing:
        raise BenchmarkDataError(f"{file}: column(s) {', '.join(repr(c) for c in missing)} missing; "
                                 f"expected the schema of spatialrl.data.schema (an hf or trl build)")
    try:
        table = pq.read_table(file, columns=list(columns))
    except Exception as exc:
        raise BenchmarkDataError(f"{file}: not a readable parquet file ({exc})") from None
    return [(f"row {i}", row) for i, row in enumerate(table.to_pylist())]


def _image(value: Any) -> Any:
    """A lazily decoded PIL image from the stored ``{"bytes", "path"}`` struct."""
    Image = require("eval", "PIL.Image")

    if isinstance(value, Mapping) and value.get("bytes"):
        try:
            return Image.open(io.BytesIO(value["bytes"]))
        except OSError:
            raise ValueError("image: the stored bytes are not an image") from None
    raise ValueError("image: no embedded image bytes")
