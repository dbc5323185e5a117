"""Shared helpers of the multiple-choice / VSI benchmark scorers (vsibench, cvbench, blink, mmsi, mindcube).

Reading the files a user downloaded (parquet, JSON Lines, JSON, TSV) into plain records that
remember where they came from, so that a malformed record raises ``BenchmarkDataError`` naming
the file, the record and the field; images embedded as bytes or referenced by path; the lenient
answer text; the SVQA-R1 thinking instruction. Nothing here knows a benchmark's rules.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from spatialrl.answers import extract_answer, parse_choice
from spatialrl._extras import require, requires_extra
from spatialrl.eval.benchmarks.base import BenchmarkDataError
from spatialrl.prompts import FORMAT_INSTRUCTION

#: SVQA-R1 appendix E, Table 9 ("Original"): ``{Question} First output the thinking ...``.
#: Our "think" prompt variants append it, after one space, to the question with its options.
THINK_INSTRUCTION = FORMAT_INSTRUCTION

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ANSWER_TAG = re.compile(r"<\s*/?\s*answer\s*>", re.IGNORECASE)


@dataclass
class Record:
    """One record of a benchmark file, with its origin for error messages."""

    file: Path
    where: str  # "line 3", "row 2", "record 0"
    data: dict[str, Any]

    def error(self, field: str, problem: str) -> BenchmarkDataError:
        ident = self.data.get("id", self.data.get("idx", self.data.get("index")))
        show_id = ident is not None and field not in ("id", "idx", "index")
        who = self.where + (f" (id {ident!r})" if show_id else "")
        return BenchmarkDataError(f"{self.file}: {who}: field {field!r} {problem}")

    def get(self, field: str, default: Any = None) -> Any:
        return self.data.get(field, default)

    def require(self, field: str) -> Any:
        if field not in self.data or self.data[field] is None:
            raise self.error(field, "is missing")
        return self.data[field]

    def text(self, field: str, *, allow_empty: bool = False) -> str:
        value = self.require(field)
        if not isinstance(value, str):
            raise self.error(field, f"must be a string, got {type(value).__name__}")
        if not allow_empty and not value.strip():
            raise self.error(field, "is empty")
        return value

    def ident(self, field: str) -> str:
        value = self.require(field)
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.error(field, f"must be a string or an integer, got {type(value).__name__}")
        if isinstance(value, str) and not value.strip():
            raise self.error(field, "is empty")
        return str(value)

    def string_list(self, field: str, *, allow_empty: bool = False) -> list[str]:
        value = self.require(field)
        if hasattr(value, "tolist"):  # numpy arrays from pandas-written parquet
            value = value.tolist()
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise self.error(field, f"must be a list of strings, got {type(value).__name__}")
        if not allow_empty and not value:
            raise self.error(field, "is an empty list")
        for i, v in enumerate(value):
            if not isinstance(v, str):
                raise self.error(field, f"item {i} must be a string, got {type(v).__name__}")
        return list(value)


# --------------------------------------------------------------------------------------
# Finding and reading files
# --------------------------------------------------------------------------------------

DATA_SUFFIXES = (".parquet", ".jsonl", ".json", ".tsv")


def find_data_files(path: str | Path, preferred: Sequence[str], what: str) -> list[Path]:
    """The data file(s) at ``path``: the file itself, or, in a directory, the files matching the
    first glob pattern of ``preferred`` (searched recursively) that matches anything."""
    p = Path(path)
    if not p.exists():
        raise BenchmarkDataError(f"{p}: not found (give the {what} file or the directory you downloaded)")
    if p.is_file():
        return [p]
    for pattern in preferred:
        found = sorted(f for f in p.rglob(pattern) if f.is_file() and not f.name.startswith("."))
        if found:
            return found
    raise BenchmarkDataError(f"{p}: no {what} found in this directory (looked for {', '.join(preferred)})")


def read_records(file: Path, columns: Sequence[str] | None = None) -> list[Record]:
    """All records of one parquet / JSON Lines / JSON / TSV file (``columns`` limits parquet reads)."""
    suffix = file.suffix.lower()
    if suffix == ".parquet":
        return _read_parquet(file, columns)
    if suffix == ".jsonl":
        return _read_jsonl(file)
    if suffix == ".json":
        return _read_json(file)
    if suffix in (".tsv", ".csv"):
        return _read_tsv(file, "\t" if suffix == ".tsv" else ",")
    raise BenchmarkDataError(f"{file}: unsupported file type {suffix!r}; expected one of {', '.join(DATA_SUFFIXES)}")


def _read_parquet(file: Path, columns: Sequence[str] | None) -> list[Record]:
    pa, pq = require("eval", "pyarrow", "pyarrow.parquet")

    try:
        schema_names = pq.read_schema(file).names
        wanted = [c for c in columns if c in schema_names] if columns is not None else None
        table = pq.read_table(file, columns=wanted)
    except (pa.ArrowException, OSError, ValueError) as exc:  # a corrupt or truncated file
        raise BenchmarkDataError(f"{file}: not a readable parquet file ({exc})") from None
    return [Record(file, f"row {i}", row) for i, row in enumerate(table.to_pylist())]


def _read_jsonl(file: Path) -> list[Record]:
    out: list[Record] = []
    with open(file, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BenchmarkDataError(f"{file}: line {number}: not valid JSON ({exc})") from None
            if not isinstance(data, dict):
                raise BenchmarkDataError(f"{file}: line {number}: expected a JSON object")
            out.append(Record(file, f"line {number}", data))
    return out


def _read_json(file: Path) -> list[Record]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BenchmarkDataError(f"{file}: not valid JSON ({exc})") from None
    if isinstance(data, Mapping):  # {"test": [...]} or {id: record}
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) == 1:
            data = lists[0]
        elif all(isinstance(v, Mapping) for v in data.values()):
            data = [{"id": k, **v} if "id" not in v else dict(v) for k, v in data.items()]
    if not isinstance(data, list):
        raise BenchmarkDataError(f"{file}: expected a JSON list of records")
    out = []
    for i, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise BenchmarkDataError(f"{file}: record {i}: expected a JSON object")
        out.append(Record(file, f"record {i}", rec))
    return out


def _read_tsv(file: Path, delimiter: str) -> list[Record]:
    csv.field_size_limit(sys.maxsize)  # VLMEvalKit TSVs hold base64 images in a field
    with open(file, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        return [Record(file, f"row {i}", dict(row)) for i, row in enumerate(reader)]


def read_all(files: Iterable[Path], columns: Sequence[str] | None = None) -> list[Record]:
    out: list[Record] = []
    for f in files:
        out.extend(read_records(f, columns))
    return out


def check_unique_ids(items: Sequence[Any], records: Sequence[Record], field: str) -> None:
    """Raise when two items share an id (predictions are matched by id)."""
    seen: dict[str, Record] = {}
    for item, rec in zip(items, records):
        if item.id in seen:
            first = seen[item.id]
            raise rec.error(field, f"repeats id {item.id!r} (already in {first.file}: {first.where})")
        seen[item.id] = rec


# --------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------


def image_from(value: Any, base_dir: Path | None, rec: Record, field: str) -> Any:
    """A PIL image (lazily decoded) from embedded bytes / base64, or a path for a file reference."""
    if value is None:
        return None
    if isinstance(value, Mapping):  # HF datasets Image feature: {"bytes": ..., "path": ...}
        if value.get("bytes"):
            return _pil(value["bytes"], rec, field)
        value = value.get("path")
        if not value:
            raise rec.error(field, "has neither image bytes nor a path")
    if isinstance(value, (bytes, bytearray)):
        return _pil(bytes(value), rec, field)
    if isinstance(value, str):
        p = Path(value)
        if not p.is_absolute() and base_dir is not None:
            p = base_dir / p
        return str(p)
    raise rec.error(field, f"is not an image (bytes, base64 or path), got {type(value).__name__}")


def image_from_base64(value: str, rec: Record, field: str) -> Any:
    try:
        raw = base64.b64decode(value, validate=False)
    except (ValueError, TypeError):
        raise rec.error(field, "is not valid base64") from None
    return _pil(raw, rec, field)


def _pil(raw: bytes, rec: Record, field: str) -> Any:
    with requires_extra("eval"):
        from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(io.BytesIO(raw))  # lazy: pixels are decoded on first use
    except (UnidentifiedImageError, OSError):
        raise rec.error(field, "holds bytes that are not an image") from None


# --------------------------------------------------------------------------------------
# Scoring helpers
# --------------------------------------------------------------------------------------


def lenient_text(text: str | None) -> str | None:
    """The text our lenient parsers read: the last ``<answer>`` block when the output has one,
    else the whole output. A malformed answer tag (unclosed, nested, empty) gives ``None``."""
    if not isinstance(text, str):
        return None
    ans = extract_answer(text)
    if ans is not None:
        return ans
    if _ANSWER_TAG.search(text):
        return None
    return text.strip()


def lenient_choice(text: str | None, options: Sequence[str]) -> int | None:
    """0-based option index with ``spatialrl.answers`` (answer tag, then ``parse_choice``)."""
    body = lenient_text(text)
    return None if body is None else parse_choice(body, list(options))


def weighted_mean(per_type: Mapping[str, float], counts: Mapping[str, int], keys: Iterable[str]) -> float | None:
    """Pooled (item-weighted) mean of the given types; ``None`` when they hold no items."""
    keys = [k for k in keys if counts.get(k, 0) > 0]
    total = sum(counts[k] for k in keys)
    if total == 0:
        return None
    return sum(per_type[k] * counts[k] for k in keys) / total
