"""``spatialrl data import``: existing spatial QA sets as dataset rows with typed, verifiable answers.

Reads LLaVA / ShareGPT conversation records (JSON, JSON Lines or parquet), which is how
VSI-590K, SPAR-7M and VLM-3R ship their training sets, and two question/answer layouts: MindCube's
raw ``MindCube_train.jsonl`` and SAT's parquet (``array/SAT``). Every question/answer pair becomes
one row of :mod:`spatialrl.data.schema` (``source="import"``, ``view="original"``) whose typed
columns the rewards can check, written in the layout ``spatialrl data build`` writes, so
``spatialrl sft``, ``train`` and ``eval run`` read it. User page: ``docs/importing.md``.

Record layouts (``--format llava``, the default, tells them apart record by record;
``--format mindcube`` / ``sat`` insists on one):

- **llava**: ``conversations: [{"from": "human"|"gpt", "value": ...}]`` (or ``role`` /
  ``content`` turns, or a ``messages`` list); images in ``image`` (a path or a list of paths),
  ``images`` (a list), or a ``video`` path. ``<image>`` / ``<video>`` tokens are removed from the
  question. A multi-turn dialogue gives one row per (question, answer) pair, as in
  ``spatialrl data vqasynth`` (:mod:`spatialrl.data.dialogues` reads it).
- **mindcube**: ``id``, ``question`` (options inside it, ``A. ... B. ...``), ``images`` (list),
  ``gt_answer`` (a letter). When the file sits in a folder named ``raw``, image paths are relative
  to its parent (``data/``), as in the MindCube release.
- **sat**: ``question``, ``answers`` (the choices), ``correct_answer`` (the choice's text),
  ``image_bytes`` (list of images), ``question_type``.

Typing rules (:func:`type_answer`; the first that applies wins):

1. **choice**: the record lists options (SAT ``answers``) or the question does (a run of ``A.``,
   ``(B)``, ``C)`` or ``D:`` markers starting at A). The answer must name exactly one option: a
   letter (``"B"``, ``"(B)"``, ``"B. table"`` whose text must then match option B), the text of
   one option, or what ``spatialrl.answers.parse_choice`` (the reward's strict parser) reads.
   Row: ``compare_choice``, ``discrete``, ``options``, ``answer_index`` and the letter.
   Otherwise the question is skipped (``choice_unresolved``).
2. **grounding**: the answer holds one box (``typed_answer``) in the pixel coordinates of the
   row's single image. Row: ``grounding_bbox``. Otherwise skipped (``box_not_pixels``).
3. **yes/no**: the whole answer is yes or no. Row: ``compare_yes_no`` with ``yes`` / ``no``.
4. **a quantity**: the question asks for one and the answer states exactly one
   (``spatialrl.data.typed_answers``). A bare number takes its unit from the question ("in
   centimeters", "(in square meters)"); a length or area question that names none is skipped
   (``unit_unknown``). When the question maps clearly to a numerical type (:func:`numeric_type`:
   counts, distances, depths, heights, sizes, room areas) the row is ``numerical`` with the SI
   value as its answer (``"1.20"``, ``"3"``); otherwise ``open_ended`` with ``answer_value``.
5. anything else is free text: skipped (``free_text``), or kept as ``open_ended`` with no value
   under ``--keep-free-text`` (for the semantic reward; the accuracy reward does not score it).

Nothing is dropped silently: every question left out is counted under one key of
:data:`REASONS`, with example record ids, in ``import_report.json`` and the dataset card. A
malformed record (no dialogue, a field of the wrong type) is an error naming the file, the record
and the field; with ``--skip-bad-records`` it is counted as ``bad_record`` instead.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spatialrl.data.image_values import ImageValueError, path_inside, read_image_value

HELP = "import LLaVA-style spatial QA sets (VSI-590K, SPAR, MindCube, SAT) as rows with typed answers"

__all__ = ["HELP", "FORMATS", "REASONS", "ImportInputError", "Skip", "add_arguments", "import_dataset",
           "numeric_type", "options_in_question", "read_inputs", "run", "type_answer"]

FORMATS = ("llava", "mindcube", "sat")
LETTERS = "ABCDEFGH"  # the schema's option letters

#: Why a question is left out; every skipped question is counted under exactly one key.
REASONS: dict[str, str] = {
    "video": "video input (use --video-frames K to sample K frames with PyAV)",
    "unreadable_video": "the video file is missing or PyAV cannot decode it",
    "no_image": "the record has no image",
    "missing_image": "an image file is not found under the image root",
    "image_outside_root": "an image path is absolute or leaves the image root ('..')",
    "unreadable_image": "an image cannot be decoded",
    "choice_unresolved": "the question lists options but the answer names none of them (or several)",
    "too_many_options": "more than 8 options (the schema's letters are A-H)",
    "box_not_pixels": "a box answer that is not in the pixel coordinates of one image",
    "unit_unknown": "a bare number answers a length/area question that names no unit",
    "free_text": "free-text answer: no option, box, yes/no or single quantity (kept with --keep-free-text)",
    "bad_image_field": "the questions of a record whose image or video field is malformed (only with "
                       "--skip-bad-records; otherwise an error)",
    "bad_record": "malformed record, counted in records, not questions (only with --skip-bad-records; "
                  "otherwise an error)",
}
MAX_EXAMPLES = 5


class ImportInputError(ValueError):
    """Malformed input; the message names the file, the record and the field."""


class Skip(Exception):
    """A question left out for ``reason`` (a key of :data:`REASONS`)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        assert reason in REASONS, reason
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


# --------------------------------------------------------------------------------------
# Typing an answer
# --------------------------------------------------------------------------------------

_OPTION_MARK = re.compile(r"(?:(?<=\s)|(?<=^)|(?<=[:?]))\(?([A-H])(?:\)|\.|:)\s+")
_LETTER_ANSWER = re.compile(r"^\s*\(?([A-H])\)?\s*(?:[.:)]\s*(.*?))?\s*$", re.DOTALL)
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.IGNORECASE | re.DOTALL)
_BARE_NUMBER = re.compile(r"\s*\d+(?:\.\d+)?\s*\.?\s*")
_UNIT_WORD = (r"(meters?|metres?|centimet(?:er|re)s?|cm|millimet(?:er|re)s?|mm|m|feet|foot|ft|inch(?:es)?|"
              r"yards?|yd)")
_QUESTION_UNIT = re.compile(rf"\b(?:in|measured\s+in|using|unit:?)\s+(?:square\s+|sq\.?\s+)?{_UNIT_WORD}\b", re.I)
_I = re.IGNORECASE
#: (question type, pattern) for length questions, first match wins.
_LENGTH_TYPES = (
    ("object_size", re.compile(r"\blongest\s+(?:dimension|side|edge)\b", _I)),  # VSI: "(length, width, or height)"
    ("camera_depth", re.compile(r"\b(?:from|to)\s+the\s+(?:camera|viewer)\b|\bdepth\b(?=.*\b(?:camera|viewer)\b)", _I)),
    ("vertical_distance", re.compile(r"\bvertical(?:ly)?\b", _I)),
    ("horizontal_distance", re.compile(r"\bhorizontal(?:ly)?\b", _I)),
    ("abs_distance", re.compile(r"\bdistances?\b|\bhow\s+far\b|\bapart\b", _I)),
    ("object_height", re.compile(r"\bheight\b|\bhow\s+(?:tall|high)\b", _I)),
    ("object_size", re.compile(r"\bsize\b|\blength\b|\bwidth\b|\blongest\s+dimension\b|"
                               r"\bhow\s+(?:long|wide|big|large)\b", _I)),
)
_ROOM = re.compile(r"\broom\b|\bspace\b|\bfloor\b", _I)


def options_in_question(question: str) -> list[str]:
    """Option texts of the last run of markers ``A.`` / ``(A)`` / ``A)`` / ``A:``, ``B...`` in
    ``question`` (at least two, in letter order); ``[]`` if none. An option ends at the next
    marker or at the end of its line."""
    marks = list(_OPTION_MARK.finditer(question))
    best: list[re.Match] = []
    for i, m in enumerate(marks):
        if m.group(1) != "A":
            continue
        run = [m]
        for n in marks[i + 1:]:
            if len(run) < len(LETTERS) and n.group(1) == LETTERS[len(run)]:
                run.append(n)
        if len(run) >= 2:
            best = run
    texts = []
    for i, m in enumerate(best):
        end = best[i + 1].start() if i + 1 < len(best) else len(question)
        text = question[m.end():end].split("\n", 1)[0].strip().rstrip(",;").strip()
        texts.append(text)
    return texts if all(texts) else []


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().strip(".").strip().lower()


def choice_index(answer: str, options: list[str]) -> int | None:
    """The option ``answer`` names (rule 1 of the module docstring), else ``None``."""
    from spatialrl.answers import parse_choice

    m = _LETTER_ANSWER.match(answer)
    if m is not None:
        idx = LETTERS.index(m.group(1))
        rest = m.group(2)
        if idx >= len(options):
            return None
        if rest and _norm(rest) != _norm(options[idx]):
            return None
        return idx
    same = [i for i, o in enumerate(options) if _norm(o) == _norm(answer)]
    if len(same) == 1:
        return same[0]
    return parse_choice(answer, options)


def question_unit(question: str) -> str | None:
    """The one unit a question names for its answer ("in centimeters" -> ``"centimeters"``)."""
    units = {m.group(1).lower() for m in _QUESTION_UNIT.finditer(question)}
    return units.pop() if len(units) == 1 else None


def numeric_type(question: str, dimension: str) -> str | None:
    """The numerical question type a quantity question maps to clearly, else ``None``: counts are
    ``object_count``; areas of a room / space / floor ``room_size``; lengths by their words
    (depth or distance from the camera, vertical, horizontal, distance, height, size)."""
    if dimension == "count":
        return "object_count"
    if dimension == "area":
        return "room_size" if _ROOM.search(question) else None
    for qt, pattern in _LENGTH_TYPES:
        if pattern.search(question):
            return qt
    return None


def _box_in_pixels(box: list[float], sizes: list[tuple[int, int]]) -> bool:
    if len(sizes) != 1:
        return False
    w, h = sizes[0]
    x1, y1, x2, y2 = box
    if max(box) <= 1.0 and max(w, h) > 2:  # fractions of the image, not pixels
        return False
    return 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h


def type_answer(question: str, answer: str, options: list[str] | None = None, *,
                image_sizes: list[tuple[int, int]] = (), keep_free_text: bool = False) -> dict[str, Any]:
    """The typed columns of one imported question (module docstring), or :class:`Skip`.

    Returns ``question_type``, ``answer_type``, ``answer``, ``answer_value``, ``dimension``,
    ``unit``, ``options``, ``answer_index``, ``bbox``.
    """
    from spatialrl.answers import parse_quantity
    from spatialrl.data.typed_answers import typed_answer

    tag = _ANSWER_TAG.search(answer)
    text = (tag.group(1) if tag else answer).strip()
    out: dict[str, Any] = {"answer": text, "answer_value": None, "dimension": None, "unit": "", "options": [],
                           "answer_index": -1, "bbox": []}
    opts = list(options) if options else options_in_question(question)
    if opts:
        if len(opts) > len(LETTERS):
            raise Skip("too_many_options", f"{len(opts)} options")
        idx = choice_index(text, opts)
        if idx is None:
            raise Skip("choice_unresolved", f"answer {text!r:.60} among {len(opts)} options")
        return out | {"question_type": "compare_choice", "answer_type": "discrete", "answer": LETTERS[idx],
                      "options": opts, "answer_index": idx}
    typed = typed_answer(question, text)
    if typed["answer_type"] == "grounding":
        if not _box_in_pixels(typed["bbox"], list(image_sizes)):
            raise Skip("box_not_pixels", f"box {typed['bbox']} for image sizes {list(image_sizes)}")
        return out | {"question_type": "grounding_bbox", "answer_type": "grounding", "bbox": typed["bbox"]}
    if typed["answer_type"] == "discrete":
        return out | {"question_type": "compare_yes_no", "answer_type": "discrete", "answer": typed["answer"]}
    value, dim = typed["answer_value"], typed["dimension"]
    if value is not None:
        # an answer without a unit of its own ("120", "about 120", "~1,200") is in the question's
        # unit: it reads the same whatever unit is assumed only when it names one itself
        unitless = (dim != "count" and parse_quantity(text, dim, default_unit="m")
                    != parse_quantity(text, dim, default_unit="cm"))  # fmt: skip
        if unitless:
            unit = question_unit(question)
            if unit is None:
                raise Skip("unit_unknown", f"answer {text!r} to a {dim} question")
            value = parse_quantity(text, dim, default_unit=unit)
        qt = numeric_type(question, dim)
        num = {"answer_value": float(value), "dimension": dim, "unit": typed["unit"]}
        if qt is None:
            return out | num | {"question_type": "open_ended", "answer_type": "open_ended"}
        canonical = str(int(round(value))) if dim == "count" else f"{value:.2f}"
        return out | num | {"question_type": qt, "answer_type": "numerical", "answer": canonical}
    if not keep_free_text:
        raise Skip("free_text", f"answer {text!r:.60}")
    return out | {"question_type": "open_ended", "answer_type": "open_ended"}


# --------------------------------------------------------------------------------------
# Reading records
# --------------------------------------------------------------------------------------


@dataclass
class Record:
    """One input record: ``where`` (``file:line`` / ``file record i``) names it in every message."""

    where: str
    file: Path
    index: int  # 0-based within its file
    data: Mapping[str, Any]


def _input_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix in (".json", ".jsonl", ".parquet"))
        if not files:
            raise ImportInputError(f"{path}: no .json, .jsonl or .parquet files")
        return files
    raise ImportInputError(f"{path}: no such file or directory")


def _records_of(file: Path) -> Iterator[Record]:
    if file.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        from spatialrl.data.load import unreadable_shard

        try:
            pf = pq.ParquetFile(file)
            i = 0
            for batch in pf.iter_batches(batch_size=64):
                for data in batch.to_pylist():
                    yield Record(f"{file} row {i}", file, i, data)
                    i += 1
        except (pa.ArrowException, OSError) as exc:
            raise ImportInputError(str(unreadable_shard(file, exc))) from None
        return
    with file.open(encoding="utf-8") as fh:
        head = fh.read(4096).lstrip()
    if file.suffix == ".json" and head[:1] == "[":  # a JSON list; JSON Lines are read line by line
        try:
            records = json.loads(file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ImportInputError(f"{file}: invalid JSON ({exc})") from None
        for i, data in enumerate(records):
            if not isinstance(data, Mapping):
                raise ImportInputError(f"{file} record {i}: expected a JSON object, got {type(data).__name__}")
            yield Record(f"{file} record {i}", file, i, data)
        return
    i = 0
    with file.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError as exc:
                raise ImportInputError(f"{file}:{lineno}: invalid JSON ({exc})") from None
            if not isinstance(data, Mapping):
                raise ImportInputError(f"{file}:{lineno}: expected a JSON object, got {type(data).__name__}")
            yield Record(f"{file}:{lineno}", file, i, data)
            i += 1


def read_inputs(paths: list[str | Path]) -> Iterator[Record]:
    """Every record of ``paths`` (files, or directories searched for .json / .jsonl / .parquet)."""
    for path in paths:
        for file in _input_files(Path(path).expanduser()):
            yield from _records_of(file)


def layout_of(record: Record, fmt: str) -> str:
    """``llava``, ``mindcube`` or ``sat``: the record's layout under ``--format fmt`` (``llava``
    recognises the other two layouts as well)."""
    d = record.data
    if fmt != "llava":
        return fmt
    if d.get("conversations") is not None or d.get("messages") is not None:
        return "llava"
    if "gt_answer" in d and "question" in d:
        return "mindcube"
    if "correct_answer" in d and "answers" in d:
        return "sat"
    raise ImportInputError(f"{record.where}: unknown record layout (fields {sorted(d)[:8]}): expected "
                           "'conversations' (LLaVA), 'question' + 'gt_answer' (MindCube) or "
                           "'question' + 'answers' + 'correct_answer' (SAT)")


_EXTRA_TOKENS = re.compile(r"<\|?(?:image|video)\|?>\s*|<video>\s*", re.IGNORECASE)


def _text(record: Record, name: str) -> str:
    value = record.data.get(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise ImportInputError(f"{record.where}: field {name!r} must be a non-empty string, got {value!r:.60}")
    return value.strip()


def questions_of(record: Record, layout: str) -> list[tuple[str, str, list[str] | None]]:
    """``[(question, answer, options or None), ...]`` of a record (one per dialogue turn pair)."""
    from spatialrl.data.dialogues import DialogueError, split_dialogue

    d = record.data
    if layout == "llava":
        turns = d.get("conversations")
        data: Mapping[str, Any] = d
        if isinstance(turns, list) and turns and isinstance(turns[0], Mapping) and "role" in turns[0]:
            data = {"messages": turns}  # conversations written with role / content keys
        try:
            pairs, _ = split_dialogue(record.where, data)
        except DialogueError as exc:
            raise ImportInputError(str(exc)) from None
        return [(_EXTRA_TOKENS.sub("", q).strip(), a, None) for q, a in pairs]
    if layout == "mindcube":
        question = _EXTRA_TOKENS.sub("", _text(record, "question")).strip()
        return [(question, _text(record, "gt_answer"), None)]
    if layout == "sat":
        answers = d.get("answers")
        if hasattr(answers, "tolist"):
            answers = answers.tolist()
        if not isinstance(answers, list) or not answers or not all(isinstance(a, str) and a.strip() for a in answers):
            raise ImportInputError(f"{record.where}: field 'answers' must be a non-empty list of option texts, "
                                   f"got {answers!r:.60}")
        options = [a.strip() for a in answers]
        lines = "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options[:len(LETTERS)]))
        question = f"{_text(record, 'question')}\n{lines}\nAnswer with the option's letter."
        return [(question, _text(record, "correct_answer"), options)]
    raise ImportInputError(f"unknown format {layout!r}; use one of {', '.join(FORMATS)}")


# --------------------------------------------------------------------------------------
# Images and videos
# --------------------------------------------------------------------------------------


def _image_values(record: Record, layout: str) -> tuple[list[str], list[Any]]:
    """(field names, image values) of a record (``images[1]``, or ``image`` for a single value);
    empty lists when it has none."""
    for name in (("image_bytes", "images", "image") if layout == "sat" else ("images", "image")):
        value = record.data.get(name)
        if value is None:
            continue
        if hasattr(value, "tolist"):
            value = value.tolist()
        if isinstance(value, (list, tuple)):
            return [f"{name}[{i}]" for i in range(len(value))], list(value)
        return [name], [value]
    return [], []


def _image_bytes(value: Any, root: Path, where: str, fname: str) -> bytes:
    """Encoded bytes of one image value (:func:`spatialrl.data.image_values.read_image_value`:
    a path under ``root``, never absolute; a ``data:`` URI; raw bytes; ``{"bytes", "path"}``). A
    path out of the root or a missing file skips the question; a malformed value is an error."""
    try:
        return read_image_value(value, root, allow_absolute=False)[0]
    except ImageValueError as e:
        if e.kind == "outside_root":
            raise Skip("image_outside_root", f"{fname}: {e}") from None
        if e.kind == "missing":
            raise Skip("missing_image", f"{fname}: {e} under {root}") from None
        raise ImportInputError(f"{where}: field {fname!r}: {e}") from None


def _size(data: bytes, fname: str) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise Skip("unreadable_image", f"{fname}: {exc}") from None


def video_frames(path: Path, k: int) -> list[bytes]:
    """``k`` frames of a video as JPEG bytes (quality 95: the video's frames are lossy already,
    and every question of a record stores its K frames again, so PNG would multiply the size
    several times), sampled by :func:`spatialrl.data.video.sample_frames` (VSI-Bench's rule:
    uniform, first and last frame included, repeats for a shorter video)."""
    from spatialrl.data.video import VideoError, sample_frames

    def jpeg(image) -> bytes:
        buf = io.BytesIO()
        image.convert("RGB").save(buf, format="JPEG", quality=95)
        return buf.getvalue()

    try:
        return [jpeg(im) for im in sample_frames(path, k)]
    except VideoError as exc:
        raise Skip("unreadable_video", f"{path.name}: {exc}") from None


def record_images(record: Record, layout: str, root: Path, video_k: int) -> tuple[list[bytes], list[tuple[int, int]]]:
    """The record's images as encoded bytes, and their sizes; :class:`Skip` for a missing or
    unreadable one, a video without ``--video-frames`` or a record with no image."""
    names, values = _image_values(record, layout)
    if not values and record.data.get("video") is not None:
        video = record.data["video"]
        if isinstance(video, list) and len(video) == 1:
            video = video[0]
        if not video_k:
            raise Skip("video", f"video {str(video)!r:.80}")
        if not isinstance(video, str) or not video.strip():
            raise ImportInputError(f"{record.where}: field 'video' must be a video path, got {video!r:.60}")
        try:
            path = path_inside(root, video, allow_absolute=False)
        except ImageValueError as e:
            if e.kind == "outside_root":
                raise Skip("image_outside_root", f"video: {e}") from None
            raise Skip("unreadable_video", f"video {video!r} not found under {root}") from None
        frames = video_frames(path, video_k)
        return frames, [_size(f, "video") for f in frames]
    if not values:
        raise Skip("no_image", "no 'image', 'images' or 'video' field")
    images = [_image_bytes(v, root, record.where, n) for n, v in zip(names, values)]
    return images, [_size(b, n) for n, b in zip(names, images)]


# --------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------


@dataclass
class ImportStats:
    """What an import read, wrote and left out (``import_report.json`` and the dataset card)."""

    records: int = 0
    questions: int = 0
    rows: int = 0
    question_types: Counter = field(default_factory=Counter)
    answer_types: Counter = field(default_factory=Counter)
    layouts: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, reason: str, ref: str, n: int = 1) -> None:
        self.skipped[reason] += n
        examples = self.examples.setdefault(reason, [])
        if len(examples) < MAX_EXAMPLES:
            examples.append(ref)

    def as_dict(self) -> dict[str, Any]:
        return {"records": self.records, "questions": self.questions, "rows": self.rows,
                "layouts": dict(self.layouts), "question_types": dict(sorted(self.question_types.items())),
                "answer_types": dict(sorted(self.answer_types.items())),
                "skipped": {r: {"count": self.skipped[r], "reason": REASONS[r], "examples": self.examples[r]}
                            for r in REASONS if self.skipped[r]}}


def _label(file: Path, labels: dict[Path, str]) -> str:
    if file not in labels:
        stem = re.sub(r"[^A-Za-z0-9_.]+", "_", file.stem) or "input"
        taken = set(labels.values())
        label, n = stem, 1
        while label in taken:
            n += 1
            label = f"{stem}{n}"
        labels[file] = label
    return labels[file]


def import_rows(paths: list[str | Path], *, fmt: str = "llava", image_root: str | Path | None = None,
                limit: int | None = None, video_frames_k: int = 0, keep_free_text: bool = False,
                skip_bad_records: bool = False, stats: ImportStats | None = None,
                progress: Any = None) -> Iterator[dict[str, Any]]:
    """The schema rows of the records in ``paths`` (module docstring); counts go to ``stats``."""
    from spatialrl.data.schema import make_row, validate_row
    from spatialrl.world.questions import QASample

    stats = stats if stats is not None else ImportStats()
    labels: dict[Path, str] = {}
    for record in read_inputs(paths):
        if limit is not None and stats.records >= limit:
            return
        stats.records += 1
        if progress is not None:
            progress.update(1)
        rid = record.data.get("id")
        rid = str(rid) if isinstance(rid, (str, int)) and not isinstance(rid, bool) and str(rid) else None
        ref = record.where + (f" (id {rid})" if rid else "")
        try:
            layout = layout_of(record, fmt)
            items = questions_of(record, layout)
        except ImportInputError as exc:
            if not skip_bad_records:
                raise
            stats.skip("bad_record", f"{ref}: {exc}")
            continue
        stats.layouts[layout] += 1
        stats.questions += len(items)
        folder = record.file.parent
        root = Path(image_root).expanduser() if image_root is not None else (
            folder.parent if layout == "mindcube" and folder.name == "raw" else folder)
        try:
            images, sizes = record_images(record, layout, root, video_frames_k)
        except Skip as skip:
            stats.skip(skip.reason, f"{ref}: {skip.detail}", len(items))
            continue
        except ImportInputError as exc:
            if not skip_bad_records:
                raise
            stats.skip("bad_image_field", f"{ref}: {exc}", len(items))
            continue
        label = _label(record.file, labels)
        source_type = record.data.get("question_type", record.data.get("type"))
        for turn, (question, answer, options) in enumerate(items):
            try:
                typed = type_answer(question, answer, options, image_sizes=sizes, keep_free_text=keep_free_text)
            except Skip as skip:
                stats.skip(skip.reason, f"{ref} turn {turn}: {skip.detail}")
                continue
            meta = {"format": layout, "file": record.file.name, "record": record.index, "record_id": rid,
                    "turn": turn, "source_question_type": source_type if isinstance(source_type, str) else None,
                    "source_answer": answer}
            sample = QASample(question=question, meta=meta, **typed)
            pair_id = f"{label}-{record.index:06d}-t{turn}"
            row = make_row(sample, pair_id=pair_id, view="original", scene_id=rid or f"{label}-{record.index:06d}",
                           image_bytes=images[0] if len(images) == 1 else None,
                           frames=images if len(images) > 1 else None, scene_json="{}", source="import")
            validate_row(row)
            stats.rows += 1
            stats.question_types[row["question_type"]] += 1
            stats.answer_types[row["answer_type"]] += 1
            yield row


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


def dataset_card(stats: ImportStats, settings: dict[str, Any], split: str, command: str) -> str:
    """README.md of an imported dataset: counts, question types, and every skip reason with examples."""
    import yaml

    from spatialrl import __version__
    from spatialrl.data.build import _table
    from spatialrl.data.schema import ROW_ANSWER_TYPE

    front = {"pretty_name": "spatialrl imported spatial QA", "language": ["en"],
             "task_categories": ["visual-question-answering"], "tags": ["spatial-reasoning", "rlvr", "imported"]}
    lines = ["---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", "",
             "# spatialrl imported spatial QA\n",
             "Questions from existing spatial QA sets, each with a typed, verifiable answer (rules: "
             "`docs/importing.md` of spatialrl). Column definitions: `docs/data.md`. Rows have `source` = "
             "`import` and `view` = `original` (no mirror twin).\n",
             f"Written by spatialrl {__version__}:\n", f"```\n{command}\n```\n", "## Settings\n",
             _table(["setting", "value"], [[k, f"`{v}`"] for k, v in settings.items()]) + "\n", "## Counts\n",
             _table(["records read", "questions", f"rows imported ({split})", "questions skipped"],
                    [[stats.records, stats.questions, stats.rows,
                      sum(v for k, v in stats.skipped.items() if k != "bad_record")]]) + "\n",
             "Record layouts: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.layouts.items())) + "\n",
             "## Question types (rows)\n",
             _table(["question_type", "answer_type", "rows"],
                    [[qt, ROW_ANSWER_TYPE[qt], n] for qt, n in sorted(stats.question_types.items())]) + "\n",
             "## Skipped\n"]
    if not stats.skipped:
        lines.append("Nothing was skipped.\n")
    else:
        lines.append("Questions left out, by reason (`bad_record` counts records); first examples:\n")
        lines.append(_table(["reason", "count", "meaning", "examples"],
                            [[r, stats.skipped[r], REASONS[r],
                              "<br>".join(e.replace("|", "\\|") for e in stats.examples[r])]
                             for r in REASONS if stats.skipped[r]]) + "\n")
    return "\n".join(lines)


def import_dataset(paths: list[str | Path], out: str | Path, *, split: str = "train", overwrite: bool = False,
                   progress: bool = False, command: str = "spatialrl data import", **options: Any) -> ImportStats:
    """Import ``paths`` into the dataset directory ``out`` (atomically: a temporary sibling renamed
    into place, so a failed import leaves nothing at ``out``). ``options``: :func:`import_rows`'s."""
    from tqdm import tqdm

    from spatialrl.data.build import DEFAULT_SHARD_ROWS, AtomicDir, _SplitWriter

    target = AtomicDir(out, overwrite)
    stats = ImportStats()
    bar = tqdm(unit="record", desc="importing", disable=not progress, file=sys.stderr)
    try:
        writer = _SplitWriter(target.tmp, split, "hf", DEFAULT_SHARD_ROWS)
        batch: list[dict[str, Any]] = []
        for row in import_rows(paths, stats=stats, progress=bar, **options):
            batch.append(row)
            if len(batch) >= 64:
                writer.add(batch)
                batch = []
        writer.add(batch)
        if not stats.rows:
            raise ImportInputError(f"no question could be imported ({stats.records} records read; skipped: "
                                   + (", ".join(f"{k} {v}" for k, v in stats.skipped.items()) or "none") + ")")
        files = writer.close()
        settings = {"inputs": [str(p) for p in paths], "split": split} | {
            k: (str(v) if isinstance(v, Path) else v) for k, v in options.items()}
        report = {"settings": settings, "files": files} | stats.as_dict()
        (target.tmp / "import_report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        (target.tmp / "README.md").write_text(dataset_card(stats, settings, split, command), encoding="utf-8")
        target.commit()
    except BaseException:
        target.abort()
        raise
    finally:
        bar.close()
    return stats


# --------------------------------------------------------------------------------------
# Command
# --------------------------------------------------------------------------------------

_EPILOG = """\
record layouts (--format llava, the default, also recognises the other two per record):
  llava     {"id": ..., "image": "a.jpg" | ["a.jpg", "b.jpg"], "conversations": [{"from": "human",
            "value": "<image>\\nHow far ...?"}, {"from": "gpt", "value": "1.2"}]}   (VSI-590K, SPAR-7M,
            VLM-3R; also "images", "video", role/content turns; one row per question/answer pair)
  mindcube  {"id", "question" (with "A. ... B. ..."), "images": [...], "gt_answer": "B"}
  sat       {"question", "answers": [...], "correct_answer", "image_bytes": [...]}   (array/SAT parquet)

typing: options + a letter or option text -> compare_choice; one pixel box -> grounding_bbox;
yes/no -> compare_yes_no; one quantity -> numerical (object_count, abs_distance, object_size, ...)
or open_ended with a value; anything else is skipped as free_text (or kept with --keep-free-text).
Skipped questions are counted by reason, with example record ids, in OUT/import_report.json and
OUT/README.md. Details: docs/importing.md.
"""


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _EPILOG
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="JSON (a list of records), JSON Lines or parquet files, or directories holding them")
    parser.add_argument("--out", required=True, metavar="DIR", help="output dataset directory (must not exist "
                        "unless --overwrite); the layout of `spatialrl data build`")
    parser.add_argument("--format", choices=FORMATS, default="llava",
                        help="record layout: llava (default; recognises MindCube and SAT records too), "
                             "mindcube or sat (every record must have that layout)")
    parser.add_argument("--image-root", default=None, metavar="DIR",
                        help="folder that image and video paths are relative to (default: the input file's folder; "
                             "for a MindCube file in data/raw/, data/). Absolute paths and '..' out of it are skipped")
    parser.add_argument("--limit", type=_positive, default=None, metavar="N", help="read at most N records")
    parser.add_argument("--video-frames", type=_positive, default=None, metavar="K",
                        help="sample K evenly spaced frames of a 'video' record with PyAV (default: skip video "
                             "records)")
    parser.add_argument("--keep-free-text", action="store_true",
                        help="keep free-text answers as open_ended rows with no value instead of skipping them")
    parser.add_argument("--skip-bad-records", action="store_true",
                        help="count malformed records (bad_record) instead of stopping with an error")
    parser.add_argument("--split", default="train", help="split name of the rows (default: train)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists (atomically)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    command = " ".join(["spatialrl data import", *args.inputs, "--out", str(args.out), "--format", args.format]
                       + (["--image-root", args.image_root] if args.image_root else [])
                       + (["--limit", str(args.limit)] if args.limit else [])
                       + (["--video-frames", str(args.video_frames)] if args.video_frames else [])
                       + (["--keep-free-text"] if args.keep_free_text else [])
                       + (["--skip-bad-records"] if args.skip_bad_records else []))
    try:
        stats = import_dataset(args.inputs, args.out, split=args.split, overwrite=args.overwrite,
                               progress=not args.quiet, command=command, fmt=args.format, image_root=args.image_root,
                               limit=args.limit, video_frames_k=args.video_frames or 0,
                               keep_free_text=args.keep_free_text, skip_bad_records=args.skip_bad_records)
    except (ImportInputError, FileExistsError) as exc:
        print(f"spatialrl data import: error: {exc}", file=sys.stderr)
        return 2
    skipped = ", ".join(f"{k} {v}" for k, v in stats.skipped.items())
    print(f"{stats.records} records, {stats.questions} questions -> {stats.rows} rows in {args.out}"
          + (f"; skipped {skipped} (import_report.json)" if skipped else ""))
    return 0
