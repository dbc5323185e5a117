"""Reading the input records: JSON Lines, parquet, or a Hugging Face dataset directory.

A source yields :class:`Row` s (the record and a reference such as ``data.jsonl:17`` that every
error names) and the ``datasets.Features`` of the columns passed through; images are read as
encoded bytes, from a path that must stay inside the data root, a ``data:`` URI, or
``{bytes, path}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spatialrl.data.image_values import ImageValueError, read_image_value
from spatialrl.data.mirror_text.reasons import MirrorInputError, Skip

__all__ = ["Row", "Source", "open_source", "read_image_bytes"]

log = logging.getLogger(__name__)


@dataclass
class Row:
    index: int
    ref: str  # "data.jsonl:17" or "name[train] row 17"
    record: dict[str, Any]
    error: str | None = None  # a bad row (kept only with --skip-bad-rows)


@dataclass
class Source:
    name: str
    root: Path  # image paths must resolve inside it
    num_rows: int
    features: Any  # datasets.Features of the passthrough columns (image column included)
    rows: Any  # callable -> Iterator[Row]
    bad_rows: list[Row] = field(default_factory=list)
    cleanup: Any = None  # callable run when the command ends


def read_image_bytes(value: Any, root: Path, ref: str, column: str) -> tuple[bytes, str | None]:
    """(encoded image bytes, file name) for an image value
    (:func:`spatialrl.data.image_values.read_image_value`; a path may be absolute if it lies
    inside ``root``). A list of images is skipped as ``multiple_images``; anything unreadable is
    a :class:`MirrorInputError` naming the record and the field."""
    if isinstance(value, (list, tuple)):
        raise Skip("multiple_images", f"{len(value)} images")
    try:
        return read_image_value(value, root)
    except ImageValueError as e:
        raise MirrorInputError(f"{ref}: field {column!r}: {e}") from None


def _check_record(record: Any, ref: str, args: argparse.Namespace) -> str | None:
    """The error message for a malformed record, or None."""
    if not isinstance(record, dict):
        return f"{ref}: expected a JSON object, got {type(record).__name__}"
    for column in (args.image_column, args.question_column, args.answer_column):
        if column not in record:
            return f"{ref}: field {column!r} missing"
        if record[column] is None:
            return f"{ref}: field {column!r} is null"
    if not isinstance(record[args.question_column], str):
        return f"{ref}: field {args.question_column!r} must be a string, got {type(record[args.question_column]).__name__}"
    for column in args.also_rewrite:
        if column not in record:
            return f"{ref}: field {column!r} missing"
    if args.bbox_column and args.bbox_column not in record:
        return f"{ref}: field {args.bbox_column!r} missing"
    return None


def _open_jsonl(path: Path, args: argparse.Namespace) -> Source:
    import pyarrow as pa
    from datasets import Features, Image

    root = Path(args.data_root).resolve() if args.data_root else path.parent.resolve()
    lines: list[tuple[int, int, dict[str, Any]]] = []
    bad: list[Row] = []
    meta: list[dict[str, Any]] = []
    keys: dict[str, None] = {}
    index = -1
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue  # blank lines are not rows
            index += 1
            ref = f"{path.name}:{lineno}"
            try:
                record = json.loads(line)
            except ValueError as exc:
                error: str | None = f"{ref}: invalid JSON ({exc})"
                record = None
            else:
                error = _check_record(record, ref, args)
            if error:
                if not args.skip_bad_rows:
                    raise MirrorInputError(error)
                bad.append(Row(index, ref, {}, error))
                continue
            lines.append((index, lineno, record))
            meta.append({k: v for k, v in record.items() if k != args.image_column})
            keys.update(dict.fromkeys(meta[-1]))
    fields = []
    for key in keys:  # every key of any row (pyarrow alone would take the first row's keys)
        values = [m.get(key) for m in meta]
        try:
            fields.append(pa.field(key, pa.array(values).type))
            continue
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
        scalars = all(v is None or isinstance(v, (str, int, float, bool)) for v in values)
        if not scalars:
            raise MirrorInputError(
                f"{path.name}: field {key!r} mixes value types that cannot form one column "
                f"({sorted({type(v).__name__ for v in values if v is not None})})"
            )
        # e.g. answers that are sometimes "two" and sometimes 2: keep them all as text
        log.warning("%s: field %r mixes text and numbers; numbers are stored as text", path.name, key)
        for (_, _, record), m in zip(lines, meta):
            if record.get(key) is not None and not isinstance(record[key], str):
                record[key] = m[key] = str(record[key])
        fields.append(pa.field(key, pa.string()))
    features = Features.from_arrow_schema(pa.schema(fields))
    features = Features({args.image_column: Image(), **features})

    def rows() -> Iterator[Row]:
        for index, lineno, record in lines:
            yield Row(index, f"{path.name}:{lineno}", record)

    # the rows are held (without re-reading) only as parsed dicts; images stay on disk
    return Source(path.name, root, len(lines), features, rows, bad)


def _open_hf(path: Path, args: argparse.Namespace) -> Source:
    import datasets
    from datasets import Features, Image

    # A private, temporary cache: datasets' shared cache can serve stale data for local
    # directories (see dataset_card) and would keep a prepared copy of every input.
    tmp = tempfile.TemporaryDirectory(prefix="spatialrl-mirror-")
    if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()):
        loaded = datasets.load_from_disk(str(path))
    elif path.is_file() and path.suffix == ".parquet":
        loaded = datasets.load_dataset("parquet", data_files=str(path), cache_dir=tmp.name)
    elif path.is_dir():
        loaded = datasets.load_dataset(str(path), cache_dir=tmp.name)
    else:
        raise MirrorInputError(f"{path}: not a JSON Lines file, a parquet file or a dataset directory")
    split = args.split
    if isinstance(loaded, datasets.DatasetDict):
        splits = list(loaded)
        if split is None:
            split = "train" if "train" in splits else (splits[0] if len(splits) == 1 else None)
        if split not in loaded:
            raise MirrorInputError(f"{path}: split {split!r} not found; choose one of {splits} with --split")
        ds = loaded[split]
    else:
        ds = loaded
        split = split or "train"
    args.split = split
    columns = list(ds.column_names)
    needed = [args.image_column, args.question_column, args.answer_column, *args.also_rewrite]
    if args.bbox_column:
        needed.append(args.bbox_column)
    for column in needed:
        if column not in columns:
            flag = {
                args.image_column: "--image-column",
                args.question_column: "--question-column",
                args.answer_column: "--answer-column",
                args.bbox_column: "--bbox-column",
            }.get(column, "--also-rewrite")
            raise MirrorInputError(f"{path}: column {column!r} not found (columns: {', '.join(columns)}); use {flag}")
    feature = ds.features[args.image_column]
    if isinstance(feature, Image):
        ds = ds.cast_column(args.image_column, Image(decode=False))
    features = Features({**ds.features, args.image_column: Image()})
    root = Path(args.data_root).resolve() if args.data_root else (path if path.is_dir() else path.parent).resolve()
    name = f"{path.name}[{split}]"

    def rows() -> Iterator[Row]:
        i = 0
        for batch in ds.iter(batch_size=64):
            keys = list(batch)
            n = len(batch[keys[0]]) if keys else 0
            for j in range(n):
                record = {k: batch[k][j] for k in keys}
                ref = f"{name} row {i}"
                yield Row(i, ref, record, _check_record(record, ref, args))
                i += 1

    return Source(name, root, len(ds), features, rows, cleanup=tmp.cleanup)


def open_source(args: argparse.Namespace) -> Source:
    path = Path(args.data).expanduser()
    if not path.exists():
        raise MirrorInputError(f"{path}: no such file or directory")
    if path.is_file() and path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        return _open_jsonl(path, args)
    return _open_hf(path, args)
