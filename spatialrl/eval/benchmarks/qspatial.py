"""Q-Spatial-Bench (Liao et al., EMNLP 2024) and its Q-Spatial++ split (SVQA-R1 Table 2).

Data: the Hugging Face dataset ``andrewliao11/Q-Spatial-Bench``: ``data/QSpatial_plus-00000-of-00001.parquet``
(101 rows, images embedded) and ``data/QSpatial_scannet-00000-of-00001.parquet`` (170 rows, images
to be rendered from ScanNet), columns ``question, answer_value (float32), answer_unit,
question_type, image_path, image``. ``load(path)`` takes one of these files, a directory holding
them (searched recursively), or a JSON Lines export with the same fields. The split is the file
name up to ``-NNNNN-of-NNNNN`` (or the stem). Item ids are ``"<split>/<row>"``, row = 0-based
position in the split (VLMEvalKit's ``index``).

Official rules (open-compass/VLMEvalKit ``vlmeval/dataset/image_vqa.py`` @
e8e78f05f3080fe28154f2130321f17951c3be94, class ``QSpatial``, methods ``build_prompt``,
``get_multiplier``, ``parse_prediction``, ``evaluate``; the same parser as
andrewliao11/Q-Spatial-Bench-code @ ebe8137eae9781aaf7e29691ce8bc68b2a498a83
``examples/evaluate_success_rate.ipynb``, ``QSpatialEvaluator``, whose scoring differs where
noted below -- it is a one-item example that adds no 1e-8 (a ratio of exactly 2 fails there, and
a ground truth of 0 always fails), maps an unknown unit to 1, raises ``IndexError`` on a missing
tag, and uses the float32 ground truth as stored; VLMEvalKit is the evaluator that scores a
predictions file, and we follow it):

- Prompt: ``system_prompt.txt + "\\n" + spatial_prompt_single.txt`` rendered with the question
  (``spatialrl.prompts``, variant ``"qspatial"``).
- Extraction: the LAST ``scalar{...}`` group in the text (regex ``scalar{([^}]*)}``, so the
  backslash is optional); inside it every ``\\d+\\.?\\d*`` match, averaged (``"1-2"`` -> 1.5,
  ``"-3"`` -> 3, ``"1,000"`` -> 0.5 (mean of 1 and 0), no digits -> NaN, which fails); the LAST
  ``distance_unit{...}`` group, lower-cased (not stripped) and looked up in the unit table:
  meters/meter/m/metre/metres = 100, centimeters/centimeter/cm = 1, feet/foot/ft = 30.48,
  inch/inches/in = 2.54, mm = 0.1 (centimetres). An unknown unit has multiplier 0
  (VLMEvalKit; the repository notebook used 1 instead -- see docs/benchmarks.md). No
  ``scalar{}`` or no ``distance_unit{}`` is a parse error: the prediction becomes 1e-8 cm.
- Score: ``pred_cm + 1e-8`` and ``gt_cm + 1e-8``; success iff ``max(p/g, g/p) < delta`` with
  delta 2 (the reported number) and 1.5 (reported beside it). Consequences kept as is: a
  ratio of exactly 2 passes ((200 + 1e-8) / (100 + 1e-8) < 2), and a ground truth of 0 with a
  prediction of 0 (or an unknown unit) gives 1e-8 / 1e-8 and succeeds.
- Aggregation: the mean over all items (micro) and per ``question_type``.

``ItemScore.lenient``: the same delta-2 test on ``spatialrl.answers.parse_quantity`` applied to
``extract_answer(text) or text`` (our parser: any unit pint knows, the ``<answer>`` tag of
SVQA-R1's prompt, non-positive fails).

``extra_metrics`` (SVQA-R1 sec. 4.3 / Tables 2-3, on the lenient parse, since SVQA-R1's prompt
asks for ``<answer>`` rather than ``\\scalar{}``): success rate, samples completed, sMAPE over
the parsable predictions, in-range buckets 50-100 / 100-150 / 150-200 (shares of the parsable
predictions, see ``spatialrl.eval.metrics``), plus the official success at delta 2 and 1.5, per
question type, and the official parser's error counts. All in percent.
"""

from __future__ import annotations

import io
import json
import math
import re
import warnings
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from spatialrl._extras import require
from spatialrl.eval.benchmarks.base import (
    Benchmark,
    BenchmarkDataError,
    EvalItem,
    ItemScore,
    register_benchmark,
)
from spatialrl.prompts import PROMPT_VARIANTS, apply_prompt

__all__ = [
    "OFFICIAL_UNIT_MULTIPLIERS",
    "QSpatialBench",
    "QSpatialPlus",
    "QSpatialScanNet",
    "official_multiplier",
    "official_parse",
    "official_success",
]

# VLMEvalKit QSpatial.get_multiplier: unit (lower-cased) -> centimetres.
OFFICIAL_UNIT_MULTIPLIERS: dict[str, float] = {
    **dict.fromkeys(["meters", "meter", "m", "metre", "metres"], 100.0),
    **dict.fromkeys(["centimeters", "centimeter", "cm"], 1.0),
    **dict.fromkeys(["feet", "foot", "ft"], 30.48),
    **dict.fromkeys(["inch", "inches", "in"], 2.54),
    "mm": 0.1,
}
_EPS = 1e-8  # VLMEvalKit adds 1e-8 to both values before the ratio
_SCALAR = re.compile(r"scalar{([^}]*)}")
_UNIT = re.compile(r"distance_unit{([^}]*)}")
_NUMBER = re.compile(r"\d+\.?\d*")
_SHARD = re.compile(r"^(?P<split>.+?)-\d{5}-of-\d{5}$")
KNOWN_SPLITS = ("QSpatial_plus", "QSpatial_scannet")


def official_multiplier(unit: str) -> float:
    """Centimetres per ``unit`` as VLMEvalKit's ``get_multiplier``; 0.0 for an unknown unit."""
    return OFFICIAL_UNIT_MULTIPLIERS.get(str(unit).lower(), 0.0)


def official_parse(text: Any) -> tuple[float | None, str]:
    """``(value in cm, status)`` with VLMEvalKit's ``parse_prediction``.

    ``status`` is ``"ok"``, ``"unknown_unit"`` (value 0.0, as the official multiplier 0),
    ``"no_number"`` (value NaN: no digits inside ``scalar{}``) or ``"parse_error"`` (value
    ``None``: no ``scalar{}``/``distance_unit{}``, or no text; the official code catches the
    ``IndexError`` and uses 1e-8 cm).
    """
    if not isinstance(text, str):
        return None, "parse_error"
    scalars = _SCALAR.findall(text)
    units = _UNIT.findall(text)
    if not scalars or not units:
        return None, "parse_error"
    numbers = _NUMBER.findall(scalars[-1])
    import numpy as np

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        value = float(np.array(numbers).astype(float).mean()) if numbers else math.nan
    unit = units[-1]
    if unit.lower() not in OFFICIAL_UNIT_MULTIPLIERS:
        return value * 0.0, "unknown_unit"
    if math.isnan(value):
        return value, "no_number"
    return value * OFFICIAL_UNIT_MULTIPLIERS[unit.lower()], "ok"


def official_success(pred_cm: float | None, gt_cm: float, delta: float = 2.0) -> bool:
    """VLMEvalKit's test: ``max(p/g, g/p) < delta`` with 1e-8 added to both (parse error: p = 1e-8)."""
    p = (_EPS if pred_cm is None else float(pred_cm)) + _EPS
    g = float(gt_cm) + _EPS
    if math.isnan(p) or math.isnan(g):
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ratio = max(p / g, g / p)
        except ZeroDivisionError:  # only when a value is exactly -1e-8
            return False
    return bool(ratio < delta)


# --------------------------------------------------------------------------------------------
# Reading the published files (shared with the vqasynth benchmark)
# --------------------------------------------------------------------------------------------


def split_of(path: Path) -> str:
    """The split named by a data file: ``QSpatial_plus-00000-of-00001.parquet`` -> ``QSpatial_plus``."""
    stem = path.name
    for suffix in (".parquet", ".jsonl", ".json"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    m = _SHARD.match(stem)
    return m.group("split") if m else stem


def data_files(path: Path, what: str) -> list[Path]:
    """``path`` itself, or every ``.parquet`` / ``.jsonl`` / ``.json`` file below it (sorted)."""
    if not path.exists():
        raise BenchmarkDataError(f"{path}: not found; download the {what} files first")
    if path.is_file():
        if path.suffix not in (".parquet", ".jsonl", ".json"):
            raise BenchmarkDataError(f"{path}: expected a .parquet, .jsonl or .json file")
        return [path]
    files = sorted(
        p for p in path.rglob("*")
        if p.is_file() and p.suffix in (".parquet", ".jsonl", ".json") and not p.name.startswith(".")
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    if not files:
        raise BenchmarkDataError(f"{path}: no .parquet, .jsonl or .json data files found for {what}")
    return files


def iter_records(path: Path, required: Sequence[str], skip: Sequence[str] = ()
                 ) -> Iterator[tuple[str, dict[str, Any], dict[str, str]]]:
    """Yield ``(where, record, column_types)`` for each row of a data file.

    ``where`` is ``"file:record N"`` (1-based row, parquet/.json) or ``"file:N"`` (line, .jsonl),
    for error messages. Raises ``BenchmarkDataError`` naming the file, record and field for an
    unreadable file, a row that is not an object, or a missing ``required`` field. Parquet
    columns named in ``skip`` are not read (e.g. embedded images when only scoring).
    """
    if path.suffix == ".parquet":
        pq = require("eval", "pyarrow.parquet")
        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
            raise BenchmarkDataError(f"{path}: not a readable parquet file ({exc})") from None
        names = pf.schema_arrow.names
        missing = [c for c in required if c not in names]
        if missing:
            raise BenchmarkDataError(f"{path}: field {missing[0]!r} missing (columns: {', '.join(names)})")
        types = {f.name: str(f.type) for f in pf.schema_arrow}
        columns = [c for c in names if c not in skip] if skip else None
        n = 0
        try:
            for batch in pf.iter_batches(batch_size=64, columns=columns):
                for record in batch.to_pylist():
                    n += 1
                    yield f"{path}:record {n}", record, types
        except BenchmarkDataError:
            raise
        except Exception as exc:  # noqa: BLE001 - any read failure names the record
            raise BenchmarkDataError(f"{path}:record {n + 1}: unreadable ({exc})") from None
        return
    if path.suffix == ".jsonl":
        with path.open("r", encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BenchmarkDataError(f"{path}:{number}: not valid JSON ({exc})") from None
                where = f"{path}:{number}"
                _check_record(where, record, required)
                yield where, record, {}
        return
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchmarkDataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, list):
        raise BenchmarkDataError(f"{path}: expected a JSON list of records")
    for number, record in enumerate(data, start=1):
        where = f"{path}:record {number}"
        _check_record(where, record, required)
        yield where, record, {}


def _check_record(where: str, record: Any, required: Sequence[str]) -> None:
    if not isinstance(record, dict):
        raise BenchmarkDataError(f"{where}: expected a JSON object")
    for name in required:
        if name not in record:
            raise BenchmarkDataError(f"{where}: field {name!r} missing")


def image_from(value: Any, base: Path, where: str, field: str) -> Any:
    """An image given as HF's ``{"bytes", "path"}`` struct, a path string or ``None``.

    Embedded bytes become a lazily decoded ``PIL.Image`` (only the header is read now); a path
    is resolved against ``base`` and its parent and returned as a string (even when absent:
    scoring needs no image). ``None`` when there is no image.
    """
    if value is None:
        return None
    if isinstance(value, Mapping):
        data = value.get("bytes")
        if data:
            Image = require("eval", "PIL.Image")

            try:
                return Image.open(io.BytesIO(data))
            except Exception as exc:  # noqa: BLE001 - PIL raises several types
                raise BenchmarkDataError(f"{where}: field {field!r}: embedded image is not decodable ({exc})") from None
        value = value.get("path")
        if not value:
            return None
    if isinstance(value, str):
        candidate = Path(value)
        if not candidate.is_absolute():
            for root in (base, base.parent):
                if (root / candidate).exists():
                    return str(root / candidate)
        return value
    raise BenchmarkDataError(f"{where}: field {field!r}: expected an image struct, a path or null, "
                             f"got {type(value).__name__}")


def _string(where: str, record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value.strip():
        raise BenchmarkDataError(f"{where}: field {name!r} must be a non-empty string, got {value!r}")
    return value


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------


@register_benchmark
class QSpatialBench(Benchmark):
    """Q-Spatial-Bench, every split found at ``path`` (official VLMEvalKit rules)."""

    name = "qspatial"
    source = ("open-compass/VLMEvalKit vlmeval/dataset/image_vqa.py (class QSpatial); "
              "andrewliao11/Q-Spatial-Bench-code prompt_templates/, examples/evaluate_success_rate.ipynb")
    prompt_variants = ("default",) + tuple(v for v in PROMPT_VARIANTS if v != "qspatial")
    #: Only these splits are loaded (None: all found).
    splits: tuple[str, ...] | None = None

    def load(self, path: str | Path, *, with_images: bool = True) -> list[EvalItem]:
        """Read the split files at ``path``; ``with_images=False`` skips the embedded images
        (``spatialrl eval score`` needs none)."""
        path = Path(path).expanduser()
        files = data_files(path, "Q-Spatial-Bench (andrewliao11/Q-Spatial-Bench)")
        by_split: dict[str, list[Path]] = defaultdict(list)
        for file in files:
            by_split[split_of(file)].append(file)
        if self.splits is not None:
            by_split = {s: f for s, f in by_split.items() if s in self.splits}
            if not by_split:
                raise BenchmarkDataError(
                    f"{path}: no file of split {' or '.join(self.splits)} found "
                    f"(files: {', '.join(p.name for p in files)})")
        multi = len(by_split) > 1
        items: list[EvalItem] = []
        required = ("question", "answer_value", "answer_unit", "question_type")
        for split in sorted(by_split):
            row = 0
            for file in by_split[split]:
                skip = () if with_images else ("image",)
                for where, record, types in iter_records(file, required, skip):
                    items.append(self._item(where, record, types, split, row, file.parent, multi, with_images))
                    row += 1
        if not items:
            raise BenchmarkDataError(f"{path}: no questions found")
        return items

    def _item(self, where: str, record: Mapping[str, Any], types: Mapping[str, str], split: str, row: int,
              base: Path, multi: bool, with_images: bool = True) -> EvalItem:
        question = _string(where, record, "question")
        qtype = _string(where, record, "question_type")
        unit = _string(where, record, "answer_unit")
        raw = record.get("answer_value")
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw) or raw < 0:
            raise BenchmarkDataError(f"{where}: field 'answer_value' must be a finite number >= 0, got {raw!r}")
        value = float(raw)
        if types.get("answer_value") in ("float", "float32", "halffloat"):
            # The file stores float32; VLMEvalKit reads the value back through its shortest decimal
            # form (str(np.float32)), e.g. 0.96 rather than 0.9599999785.
            import numpy as np

            value = float(str(np.float32(value)))
        if unit.lower() not in OFFICIAL_UNIT_MULTIPLIERS:
            raise BenchmarkDataError(
                f"{where}: field 'answer_unit' is {unit!r}, not one of the official units "
                f"({', '.join(sorted(OFFICIAL_UNIT_MULTIPLIERS))})")
        gt_cm = value * OFFICIAL_UNIT_MULTIPLIERS[unit.lower()]
        image = image_from(record.get("image"), base, where, "image") if with_images else None
        if with_images and image is None and record.get("image_path"):
            image = image_from(record.get("image_path"), base, where, "image_path")
        return EvalItem(
            id=f"{split}/{row}",
            question_type=qtype,
            prompt=apply_prompt(question, "qspatial"),
            answer={"value": value, "unit": unit, "cm": gt_cm},
            images=[image] if image is not None else [],
            meta={"question": question, "split": split, "row": row, "multi_split": multi,
                  "image_path": record.get("image_path")},
        )

    # -- prompts and types ---------------------------------------------------------------------

    def prompt(self, item: EvalItem, variant: str = "default") -> str:
        if variant not in self.prompt_variants:
            raise ValueError(f"{self.name}: unknown prompt variant {variant!r}; choose from {self.prompt_variants}")
        if variant == "default":
            return item.prompt
        return apply_prompt(item.meta["question"], variant)

    def type_of(self, item: EvalItem) -> str:
        if item.meta.get("multi_split"):
            return f"{item.meta['split']}/{item.question_type}"
        return item.question_type

    def aggregate(self, per_type: Mapping[str, float], counts: Mapping[str, int]) -> float:
        """The official overall is the mean over all items (micro), not over types."""
        total = sum(counts.values())
        return sum(per_type[k] * counts[k] for k in per_type) / total if total else 0.0

    # -- scoring ---------------------------------------------------------------------------------

    @staticmethod
    def lenient_meters(text: str | None) -> float | None:
        """Our parse: ``parse_quantity(extract_answer(text) or text)`` in meters, or ``None``."""
        from spatialrl.answers import extract_answer, parse_quantity

        if not isinstance(text, str):
            return None
        return parse_quantity(extract_answer(text) or text, "length")

    def score_item(self, item: EvalItem, prediction: str | None) -> ItemScore:
        from spatialrl.eval.metrics import qspatial_success

        gt_cm = item.answer["cm"]
        pred_cm, status = official_parse(prediction)
        score = 1.0 if official_success(pred_cm, gt_cm, 2.0) else 0.0
        lenient_m = self.lenient_meters(prediction)
        lenient = 1.0 if (lenient_m is not None and qspatial_success(lenient_m, gt_cm / 100.0, 2.0)) else 0.0
        return ItemScore(score=score, lenient=lenient,
                         parsed={"official_cm": pred_cm, "official_status": status, "lenient_m": lenient_m})

    def extra_metrics(self, items: Sequence[EvalItem], texts: Sequence[str | None]) -> dict[str, Any]:
        import numpy as np

        from spatialrl.eval import metrics

        if len(items) != len(texts):
            raise ValueError(f"{len(items)} items but {len(texts)} predictions")
        if not items:
            return {}
        gts_cm = [it.answer["cm"] for it in items]
        official = [official_parse(t) for t in texts]
        ok2 = [official_success(v, g, 2.0) for (v, _), g in zip(official, gts_cm)]
        ok15 = [official_success(v, g, 1.5) for (v, _), g in zip(official, gts_cm)]
        status_counts: dict[str, int] = defaultdict(int)
        for (_, status), text in zip(official, texts):
            status_counts["missing" if text is None else status] += 1
        by_type: dict[str, list[int]] = defaultdict(list)
        for i, it in enumerate(items):
            by_type[self.type_of(it)].append(i)

        lenient = [self.lenient_meters(t) for t in texts]
        gts_m = [g / 100.0 for g in gts_cm]
        lenient_ok2 = [bool(p is not None and metrics.qspatial_success(p, g, 2.0)) for p, g in zip(lenient, gts_m)]
        lenient_ok15 = [bool(p is not None and metrics.qspatial_success(p, g, 1.5)) for p, g in zip(lenient, gts_m)]
        smape = metrics.smape(lenient, gts_m)
        buckets = metrics.in_range_buckets(lenient, gts_m)

        def pct(values: Sequence[bool]) -> float:
            return 100.0 * float(np.mean(values)) if len(values) else 0.0

        return {
            "success_delta_2": pct(ok2),
            "success_delta_1.5": pct(ok15),
            "success_delta_1.5_per_type": {k: pct([ok15[i] for i in idx]) for k, idx in sorted(by_type.items())},
            "official_parse": {k: status_counts[k] for k in ("ok", "unknown_unit", "no_number", "parse_error", "missing")},
            # SVQA-R1 sec. 4.3 / Table 2, on our (lenient) parse
            "svqa_success_rate": pct(lenient_ok2),
            "svqa_success_rate_delta_1.5": pct(lenient_ok15),
            "samples_completed": 100.0 * metrics.samples_completed(lenient),
            "smape": None if math.isnan(smape) else smape,
            "in_range_50_100": 100.0 * buckets["50-100"],
            "in_range_100_150": 100.0 * buckets["100-150"],
            "in_range_150_200": 100.0 * buckets["150-200"],
        }


@register_benchmark
class QSpatialPlus(QSpatialBench):
    """Q-Spatial++ only (the ``QSpatial_plus`` split; SVQA-R1 Table 2)."""

    name = "qspatial_plus"
    splits = ("QSpatial_plus",)


@register_benchmark
class QSpatialScanNet(QSpatialBench):
    """Q-Spatial-ScanNet only (the ``QSpatial_scannet`` split; images need ScanNet access)."""

    name = "qspatial_scannet"
    splits = ("QSpatial_scannet",)
