"""No-perception baselines: what a model that never looks at the image scores, per question type.

Every predictor here is fitted on a training split and answers each question of the scored split
with a constant chosen per question type (the scorer's type: ``Benchmark.type_of``), never
looking at the image or the question's objects. Its predictions go through the benchmark's own
scorer (``score_predictions``), so the numbers are exactly comparable with a model's report.

Predictors (``KINDS``), for a type of the training split:

``mean`` / ``median``
    Numeric types (items with an ``answer_value``: ``numerical`` rows and ``open_ended`` rows that
    state a quantity, the latter per ``dimension``): the training mean / median of the value,
    written as a bare number (metres, square metres, counts). Grounding: the mean / median box.
    Every other type: the majority answer (below).
``best_constant``
    Numeric types: the constant with the highest training score under the type's metric (mean
    relative accuracy), searched over the training values' percentiles 1..99; the strongest
    constant predictor. Other types: as ``median``.
``majority``
    Choice questions: the most frequent correct letter among training questions of the type with
    the same number of options. Yes/no questions: the more frequent answer. Numeric types: the most
    frequent training value (counts exactly; lengths and areas rounded to 0.1). Grounding: the
    median box. Open-ended relation questions (world templates ``left_right``, ``closer``): the
    majority verdict -- ``Yes.``/``No.``, or the object named first/second when that one is the
    nearer more often; any other template: its most frequent reference answer.

``score_baselines(train_items, items, benchmark)`` returns one report per predictor (the shape
of ``score_predictions``: ``overall``, ``per_type`` in percent); ``baseline_table`` renders them
beside a model's per-type scores as Markdown. Command line::

    python -m spatialrl.eval.baselines --data DIR [--split test] [--train-split train] [--json OUT]

prints the table for a ``spatialrl data build`` directory (the world benchmark).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

HELP = "no-perception baselines (constant training mean/median, best constant, majority answer) per question type"

__all__ = [
    "HELP",
    "KINDS",
    "NUMERIC_TYPES",
    "Baselines",
    "add_arguments",
    "baseline_predictions",
    "baseline_table",
    "fit_baselines",
    "load_items",
    "numeric_mean",
    "run",
    "score_baselines",
]

KINDS = ("mean", "median", "best_constant", "majority")

#: The world benchmark's numerical question types (mean relative accuracy).
NUMERIC_TYPES = (
    "object_count", "abs_distance", "object_size", "room_size", "camera_depth", "object_height",
    "vertical_distance", "horizontal_distance",
)  # fmt: skip


@dataclass
class Baselines:
    """Statistics of a training split, per scorer type (see the module docstring)."""

    values: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    letters: dict[tuple[str, int], Counter] = field(default_factory=lambda: defaultdict(Counter))
    answers: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    boxes: dict[str, list[list[float]]] = field(default_factory=lambda: defaultdict(list))
    first_nearer: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))

    # -- constants --------------------------------------------------------------------
    def numeric(self, key: str, kind: str) -> float | None:
        cache = self.__dict__.setdefault("_cache", {})
        if (key, kind) not in cache:
            cache[(key, kind)] = self._numeric(key, kind)
        return cache[(key, kind)]

    def _numeric(self, key: str, kind: str) -> float | None:
        vals = sorted(self.values.get(key, []))
        if not vals:
            return None
        if kind == "mean":
            return sum(vals) / len(vals)
        if kind == "median":
            return _median(vals)
        if kind == "best_constant":
            return _best_constant(vals)
        # majority: most frequent value (counts exact, others to 0.1), ties -> smaller
        counts = Counter(v if float(v).is_integer() else round(v, 1) for v in vals)
        return min(counts, key=lambda v: (-counts[v], v))

    def box(self, key: str, kind: str) -> list[float] | None:
        boxes = self.boxes.get(key, [])
        if not boxes:
            return None
        cols = list(zip(*boxes))
        if kind == "mean":
            return [sum(c) / len(c) for c in cols]
        return [_median(sorted(c)) for c in cols]


def _median(sorted_vals: Sequence[float]) -> float:
    n = len(sorted_vals)
    return sorted_vals[n // 2] if n % 2 else 0.5 * (sorted_vals[n // 2 - 1] + sorted_vals[n // 2])


def _best_constant(sorted_vals: Sequence[float]) -> float:
    """The constant with the highest mean relative accuracy on ``sorted_vals`` among their
    percentiles 1..99 (ties -> the lower percentile)."""
    from spatialrl.eval.benchmarks.world import mra

    n = len(sorted_vals)
    candidates = sorted({sorted_vals[min(n - 1, int(q / 100 * n))] for q in range(1, 100)})
    best, best_score = candidates[0], -1.0
    for c in candidates:
        score = sum(mra(c, v) for v in sorted_vals) / n
        if score > best_score + 1e-12:
            best, best_score = c, score
    return best


def _key(benchmark: Any, item: Any) -> str:
    """The statistics key: the scorer's type, split by dimension for open-ended numbers."""
    kind = benchmark.type_of(item)
    dim = item.meta.get("dimension")
    if item.meta.get("answer_type") == "open_ended" and item.meta.get("answer_value") is not None:
        return f"{kind}:{dim or 'length'}"
    return kind


def _template_key(benchmark: Any, item: Any) -> str:
    return f"{benchmark.type_of(item)}:{item.meta.get('template')}"


def fit_baselines(train_items: Sequence[Any], benchmark: Any) -> Baselines:
    """Statistics of ``train_items`` (``EvalItem``s of the world benchmark, images not needed)."""
    b = Baselines()
    for item in train_items:
        meta = item.meta
        key = _key(benchmark, item)
        value = meta.get("answer_value")
        if value is not None and meta.get("answer_type") in ("numerical", "open_ended"):
            b.values[key].append(float(value))
        if item.options:
            b.letters[(key, len(item.options))][int(meta.get("answer_index", -1))] += 1
        if meta.get("answer_type") == "grounding" and meta.get("bbox"):
            b.boxes[key].append([float(v) for v in meta["bbox"]])
        b.answers[key].update([str(item.answer)])
        if meta.get("answer_type") == "open_ended" and value is None:
            tkey = _template_key(benchmark, item)
            b.answers[tkey].update([str(item.answer)])
            names = meta.get("object_names") or []
            if meta.get("template") == "closer" and len(names) == 2:
                truth = " ".join(str(item.answer).split()).casefold()
                b.first_nearer[tkey]["first" if truth.startswith(f"the {names[0].casefold()} is closer") else "second"] += 1
            elif meta.get("template") == "left_right":
                from spatialrl.answers import parse_yes_no

                yn = parse_yes_no(str(item.answer))
                if yn is not None:
                    b.first_nearer[tkey]["yes" if yn else "no"] += 1
    return b


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


def _predict(item: Any, stats: Baselines, benchmark: Any, kind: str) -> str | None:
    meta = item.meta
    key = _key(benchmark, item)
    answer_type = meta.get("answer_type")
    if meta.get("answer_value") is not None and answer_type in ("numerical", "open_ended"):
        value = stats.numeric(key, kind)
        if value is None:
            return None
        dimension = meta.get("dimension") or "length"
        if dimension == "count":  # a count parses only as a whole number
            value = float(max(0, math.floor(value + 0.5)))
        unit = " m" if answer_type == "open_ended" and dimension == "length" else ""
        return _number(value) + unit
    if answer_type == "grounding":
        box = stats.box(key, "mean" if kind == "mean" else "median")
        return None if box is None else "[" + ", ".join(f"{v:.1f}" for v in box) + "]"
    if item.options:
        counts = stats.letters.get((key, len(item.options)))
        if not counts:
            return None
        index = min(counts, key=lambda i: (-counts[i], i))
        return "ABCDEFGH"[index] if 0 <= index < 8 else None
    if answer_type == "open_ended":
        tkey = _template_key(benchmark, item)
        votes = stats.first_nearer.get(tkey)
        names = meta.get("object_names") or []
        if meta.get("template") == "closer" and votes and len(names) == 2:
            first = votes["first"] >= votes["second"]
            return f"The {names[0] if first else names[1]} is closer to the camera."
        if meta.get("template") == "left_right" and votes:
            return "Yes." if votes["yes"] >= votes["no"] else "No."
        counts = stats.answers.get(tkey)
        return None if not counts else min(counts, key=lambda a: (-counts[a], a))
    counts = stats.answers.get(key)
    if not counts:
        return None
    return min(counts, key=lambda a: (-counts[a], a))


def baseline_predictions(items: Sequence[Any], stats: Baselines, benchmark: Any, kind: str) -> dict[str, str]:
    """``id -> prediction text`` of predictor ``kind`` (one of :data:`KINDS`) on ``items``; a type
    absent from the training split gets no prediction (scored as missing, i.e. 0)."""
    if kind not in KINDS:
        raise ValueError(f"unknown baseline {kind!r}; choose from {', '.join(KINDS)}")
    out = {}
    for item in items:
        text = _predict(item, stats, benchmark, kind)
        if text is not None:
            out[item.id] = f"<answer>{text}</answer>"
    return out


def score_baselines(train_items: Sequence[Any], items: Sequence[Any], benchmark: Any,
                    kinds: Sequence[str] = KINDS) -> dict[str, dict[str, Any]]:
    """``kind -> score report`` (``score_predictions``' shape) of each predictor fitted on
    ``train_items`` and scored on ``items`` with ``benchmark``'s rules."""
    from spatialrl.eval.benchmarks import score_predictions

    stats = fit_baselines(train_items, benchmark)
    reports = {}
    for kind in kinds:
        report = score_predictions(benchmark, items, baseline_predictions(items, stats, benchmark, kind))
        reports[kind] = {k: report[k] for k in ("benchmark", "overall", "per_type", "counts")}
    return reports


def numeric_mean(per_type: Mapping[str, float], types: Sequence[str] = NUMERIC_TYPES) -> float | None:
    """Mean of ``per_type`` over the numeric types present (the acceptance figure)."""
    vals = [per_type[t] for t in types if t in per_type]
    return sum(vals) / len(vals) if vals else None


def baseline_table(reports: Mapping[str, Mapping[str, Any]], model: Mapping[str, Any] | None = None,
                   model_name: str = "model") -> str:
    """Markdown: one row per type, a column per predictor (and the model's score first when
    ``model`` -- a ``score_predictions`` report -- is given); rows for the numeric mean and the
    overall macro average at the end."""
    kinds = list(reports)
    types = sorted({t for r in reports.values() for t in r["per_type"]} | set((model or {}).get("per_type", {})))
    header = ["question type", "n", *([model_name] if model else []), *kinds]
    counts = next(iter(reports.values()))["counts"]["per_type"] if reports else {}
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]

    def cell(report: Mapping[str, Any] | None, t: str) -> str:
        v = (report or {}).get("per_type", {}).get(t)
        return "" if v is None else f"{v:.1f}"

    for t in types:
        row = [t, str(counts.get(t, "")), *([cell(model, t)] if model else []), *[cell(reports[k], t) for k in kinds]]
        lines.append("| " + " | ".join(row) + " |")

    def agg(report: Mapping[str, Any] | None, fn: Any) -> str:
        v = fn(report) if report else None
        return "" if v is None else f"**{v:.1f}**"

    nm = lambda r: numeric_mean(r["per_type"])  # noqa: E731
    ov = lambda r: r["overall"]  # noqa: E731
    lines.append("| " + " | ".join(["**numeric mean**", "", *([agg(model, nm)] if model else []),
                                    *[agg(reports[k], nm) for k in kinds]]) + " |")
    lines.append("| " + " | ".join(["**overall (macro)**", "", *([agg(model, ov)] if model else []),
                                    *[agg(reports[k], ov) for k in kinds]]) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def load_items(path: str, split: str) -> list[Any]:
    """The world benchmark's ``EvalItem``s of one split of a ``spatialrl data build`` directory,
    without images or scene JSON (fast: only the columns the baselines need are read)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from spatialrl.eval.benchmarks.world import _data_files, make_item

    wanted = ["id", "question", "question_type", "answer_type", "answer", "answer_value", "dimension",
              "options", "answer_index", "bbox", "pair_id", "view", "meta"]
    files = _data_files(path, split)
    table = pa.concat_tables([pq.read_table(f, columns=wanted) for f in files])
    return [make_item(row) for row in table.to_pylist()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, metavar="DIR",
                        help="a `spatialrl data build` directory (the world benchmark)")
    parser.add_argument("--split", default="test", help="split to score (default test)")
    parser.add_argument("--train-split", default="train", help="split the constants are fitted on (default train)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the reports as JSON")


def run(args: argparse.Namespace) -> int:
    from spatialrl.eval.benchmarks import BenchmarkDataError, get_benchmark

    benchmark = get_benchmark("world")
    try:
        train = load_items(args.data, args.train_split)
        items = load_items(args.data, args.split)
    except (BenchmarkDataError, OSError, KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    reports = score_baselines(train, items, benchmark)
    print(f"No-perception baselines on {args.data}:{args.split} ({len(items)} items), fitted on "
          f"{args.train_split} ({len(train)} items); scores in percent:\n")
    print(baseline_table(reports))
    if args.json:
        from spatialrl.eval.predictions import write_json_atomic

        write_json_atomic(args.json, reports)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spatialrl.eval.baselines", description=HELP)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
