"""Dataset schema: one row per QA sample (one view of one question).

The verifiable-sample record of Smooth Operator sec. 3.1 (visual input, query, subtask
identifier, verifiable geometric annotation) with the mirror pairing of SVQA-R1 sec. 3.1
(``pair_id`` links an original and its mirrored view). Full documentation: ``docs/data.md``.

Columns (:data:`FEATURES`, in this order)
-----------------------------------------
``id``            str   unique: ``<pair_id>-o`` (original) / ``<pair_id>-m`` (mirror)
``pair_id``       str   shared by the two views of a question: ``<scene_id>-q<NN>``
``view``          str   ``"original"`` | ``"mirror"``
``scene_id``      str   scene identifier (the same for both views)
``source``        str   ``"synthetic"``, ``"annotation"``, ``"scannet"``, ``"arkitscenes"`` or
                        ``"import"`` (:data:`SOURCES`)
``image``         Image embedded PNG/JPEG bytes (``{"bytes": ..., "path": None}``) of a
                        single-image row; null for a multi-frame row
``frames``        list[Image] the frames of a multi-frame row, in time order (a scene-level
                        question asked over K frames of a scan's video, or an imported row
                        with several images); empty for a single-image row.
                        :func:`row_images` gives either kind as one list.
``question``      str   full question text, options and answer-format hint included
``question_type`` str   one of :data:`QUESTION_TYPES` (the world's types plus the scan-only
                        ``appearance_order``)
``answer_type``   str   ``numerical`` | ``discrete`` | ``grounding`` | ``open_ended``
``answer``        str   canonical answer: ``"2.35"``, ``"3"``, ``"B"``, ``"yes"``,
                        ``"[x1, y1, x2, y2]"`` or a sentence
``answer_value``  float SI value (m, m^2, count) for numerical rows and for open-ended rows
                        that state a quantity; null otherwise
``dimension``     str   ``length`` | ``area`` | ``count`` (for ``parse_quantity``); null
                        when ``answer_value`` is null
``unit``          str   SI unit of ``answer_value``: ``m``, ``m^2`` or ``""``
``options``       list[str] option texts in letter order (A, B, ...); empty if not a choice
``answer_index``  int   0-based index of the correct option; -1 if not a choice
``bbox``          list[float] ``[x1, y1, x2, y2]`` pixels (x2, y2 exclusive) for grounding;
                        empty otherwise
``scene_json``    str   the scene the answer was computed from (``Scene.to_json()``; the
                        mirrored scene for mirror rows); for a real-scan row, where to find it:
                        ``{"source", "scene_id", "frames", "view"}`` (the scan itself)
``meta``          str   JSON: template, variant, object indices and names, parameters
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

import functools
from typing import TYPE_CHECKING

import numpy as np

from spatialrl.world.questions import ANSWER_TYPE as _WORLD_ANSWER_TYPE
from spatialrl.world.questions import QUESTION_TYPES as _WORLD_QUESTION_TYPES
from spatialrl.world.questions import QASample

if TYPE_CHECKING:  # pragma: no cover
    from datasets import Features

__all__ = [
    "ANSWER_TYPES",
    "COLUMNS",
    "DIMENSIONS",
    "FEATURES",
    "QUESTION_TYPES",
    "ROW_ANSWER_TYPE",
    "SOURCES",
    "VIEWS",
    "encode_png",
    "make_row",
    "row_images",
    "validate_row",
]

VIEWS = ("original", "mirror")
SOURCES = ("synthetic", "annotation", "scannet", "arkitscenes", "import")
#: Question types a row may have: the world's templates, then the scene-level types only a
#: scan's video can ask (``spatialrl.data.questions``).
QUESTION_TYPES: tuple[str, ...] = _WORLD_QUESTION_TYPES + ("appearance_order",)
#: ``answer_type`` of each question type.
ROW_ANSWER_TYPE: dict[str, str] = dict(_WORLD_ANSWER_TYPE) | {"appearance_order": "discrete"}
ANSWER_TYPES = ("numerical", "discrete", "grounding", "open_ended")
DIMENSIONS = ("length", "area", "count")

COLUMNS: tuple[str, ...] = (
    "id", "pair_id", "view", "scene_id", "source", "image", "frames", "question", "question_type",
    "answer_type", "answer", "answer_value", "dimension", "unit", "options", "answer_index",
    "bbox", "scene_json", "meta",
)  # fmt: skip


@functools.cache
def features() -> Features:
    """The ``datasets.Features`` of a dataset row (``datasets`` is imported on first use, so
    importing this module stays cheap for worker processes)."""
    from datasets import Features, Image, List, Value

    f = Features({
        "id": Value("string"),
        "pair_id": Value("string"),
        "view": Value("string"),
        "scene_id": Value("string"),
        "source": Value("string"),
        "image": Image(),
        "frames": List(Image()),
        "question": Value("string"),
        "question_type": Value("string"),
        "answer_type": Value("string"),
        "answer": Value("string"),
        "answer_value": Value("float64"),
        "dimension": Value("string"),
        "unit": Value("string"),
        "options": List(Value("string")),
        "answer_index": Value("int32"),
        "bbox": List(Value("float64")),
        "scene_json": Value("string"),
        "meta": Value("string"),
    })
    assert tuple(f) == COLUMNS
    return f


def __getattr__(name: str) -> Any:
    if name == "FEATURES":  # ``schema.FEATURES``: the Features, built lazily
        return features()
    raise AttributeError(name)


def encode_png(image: Any) -> bytes:
    """PNG bytes of an (H, W, 3) uint8 array or a PIL image, deterministic (no metadata
    chunks, fixed compression level)."""
    from PIL import Image as PILImage

    img = image if isinstance(image, PILImage.Image) else PILImage.fromarray(np.asarray(image, dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def make_row(
    sample: QASample,
    *,
    pair_id: str,
    view: str,
    scene_id: str,
    image_bytes: bytes | None,
    scene_json: str,
    source: str = "synthetic",
    frames: list[bytes] | None = None,
) -> dict[str, Any]:
    """The dataset row of one answered sample (keys in :data:`COLUMNS` order): a single-image
    row with ``image_bytes``, or a multi-frame row with ``frames`` (``image_bytes=None``)."""
    if (image_bytes is None) == (not frames):
        raise ValueError(f"row {pair_id!r}: give either image_bytes or frames, not both or neither")
    return {
        "id": f"{pair_id}-{'o' if view == 'original' else 'm'}",
        "pair_id": pair_id,
        "view": view,
        "scene_id": scene_id,
        "source": source,
        "image": None if image_bytes is None else {"bytes": image_bytes, "path": None},
        "frames": [{"bytes": b, "path": None} for b in frames or ()],
        "question": sample.question,
        "question_type": sample.question_type,
        "answer_type": sample.answer_type,
        "answer": sample.answer,
        "answer_value": None if sample.answer_value is None else float(sample.answer_value),
        "dimension": sample.dimension,
        "unit": sample.unit if sample.answer_value is not None else "",
        "options": list(sample.options),
        "answer_index": int(sample.answer_index),
        "bbox": [float(x) for x in sample.bbox],
        "scene_json": scene_json,
        "meta": sample.meta_json(),
    }


def validate_row(row: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the column if ``row`` breaks a schema rule."""

    def bad(col: str, msg: str) -> ValueError:
        return ValueError(f"row {row.get('id')!r}: {col}: {msg}")

    missing = [c for c in COLUMNS if c not in row]
    if missing:
        raise bad(missing[0], "missing column")
    if row["view"] not in VIEWS:
        raise bad("view", f"expected one of {VIEWS}, got {row['view']!r}")
    if row["source"] not in SOURCES:
        raise bad("source", f"expected one of {SOURCES}, got {row['source']!r}")
    qt, at = row["question_type"], row["answer_type"]
    if (row["image"] is None) == (not row["frames"]):
        raise bad("image", "a row has either an image or a non-empty frames list (not both, not neither)")
    if qt not in QUESTION_TYPES:
        raise bad("question_type", f"unknown {qt!r}")
    if at != ROW_ANSWER_TYPE[qt]:
        raise bad("answer_type", f"{qt} rows have answer_type {ROW_ANSWER_TYPE[qt]!r}, got {at!r}")
    value, dim = row["answer_value"], row["dimension"]
    if at == "numerical" and value is None:
        raise bad("answer_value", "numerical rows need a value")
    if value is not None:
        if not (isinstance(value, float) and math.isfinite(value) and value >= 0):
            raise bad("answer_value", f"expected a finite non-negative float, got {value!r}")
        if dim not in DIMENSIONS:
            raise bad("dimension", f"expected one of {DIMENSIONS}, got {dim!r}")
    elif dim is not None:
        raise bad("dimension", "must be null when answer_value is null")
    opts, idx = row["options"], row["answer_index"]
    if opts:
        if not 0 <= idx < len(opts):
            raise bad("answer_index", f"{idx} out of range for {len(opts)} options")
        if row["answer"] != "ABCDEFGH"[idx]:
            raise bad("answer", f"expected letter {'ABCDEFGH'[idx]}, got {row['answer']!r}")
    elif idx != -1:
        raise bad("answer_index", "must be -1 without options")
    if at == "grounding":
        if len(row["bbox"]) != 4:
            raise bad("bbox", "grounding rows need 4 numbers")
    elif row["bbox"]:
        raise bad("bbox", "only grounding rows have a bbox")
    if at == "discrete" and not opts and row["answer"] not in ("yes", "no"):
        raise bad("answer", f"discrete rows without options answer yes/no, got {row['answer']!r}")
    json.loads(row["meta"])
    json.loads(row["scene_json"])


def row_images(row: dict[str, Any]) -> list[Any]:
    """The images of a row as one list, whatever their kind: ``[image]`` for a single-image
    row, ``frames`` for a multi-frame one (rows written before ``frames`` existed have no
    such key). Every consumer (SFT, GRPO, evaluation, exports) reads images through this."""
    frames = row.get("frames") or []
    if frames:
        return list(frames)
    image = row.get("image")
    return [] if image is None else [image]
