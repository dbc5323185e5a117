"""Time to score numeric predictions with the ``world`` benchmark through ``score_predictions``.

Builds N world-benchmark numeric items in memory (no disk, no images): random question types
among the numerical ones, random SI truths, and predictions such as
``"<think>...</think><answer>2.35 m</answer>"`` (a mix of units, bare numbers, area answers,
counts, a few unparsable, missing and unknown ids). Prints the wall time of one
``score_predictions`` call (best of ``--repeats``), measured in this run, with the parsing and
per-item share from a cProfile pass when ``--profile`` is given.

Target (issue #4): 100,000 numeric predictions in under 5 s on one CPU core.

Usage: python benchmarks/eval_scoring.py [--items N] [--repeats R] [--profile]
"""

from __future__ import annotations

import argparse
import json
import random
import time

from spatialrl.eval.benchmarks import get_benchmark, score_predictions
from spatialrl.eval.benchmarks.world import make_item

TARGET_S = 5.0
_TYPES = (  # (question_type, dimension, low, high)
    ("abs_distance", "length", 0.3, 8.0),
    ("object_size", "length", 0.1, 2.5),
    ("camera_depth", "length", 0.5, 9.0),
    ("object_height", "length", 0.1, 2.2),
    ("vertical_distance", "length", 0.05, 2.0),
    ("horizontal_distance", "length", 0.1, 8.0),
    ("room_size", "area", 8.0, 60.0),
    ("object_count", "count", 1, 6),
)


def make_items_and_predictions(n: int, seed: int = 0) -> tuple[list, dict[str, dict]]:
    """``n`` numeric world items (mirror pairs) and a predictions dict id -> record."""
    rng = random.Random(seed)
    items, preds = [], {}
    think = "<think>The object looks about as far as the door, so I estimate the value.</think>"
    for i in range(n):
        qtype, dim, lo, hi = _TYPES[(i // 2) % len(_TYPES)]
        if dim == "count":
            value = float(rng.randint(int(lo), int(hi)))
        else:
            value = rng.uniform(lo, hi)
        pair = f"bench-{i // 2:06d}"
        row = {
            "id": f"{pair}-{'o' if i % 2 == 0 else 'm'}", "pair_id": pair,
            "view": "original" if i % 2 == 0 else "mirror", "question": f"Question {i}? Answer in meters.",
            "question_type": qtype, "answer_type": "numerical", "answer": f"{value:.2f}",
            "answer_value": value, "dimension": dim, "options": [], "answer_index": -1, "bbox": [],
            "meta": "{}",
        }
        items.append(make_item(row))
        guess = value * rng.uniform(0.6, 1.4)
        roll = rng.random()
        if roll < 0.01:
            continue  # missing
        if roll < 0.03:
            text = f"{think}<answer>somewhere near the table</answer>"  # unparsable
        elif dim == "count":
            text = f"{think}<answer>{round(guess)}</answer>"
        elif dim == "area":
            text = f"{think}<answer>{guess:.2f} {rng.choice(['m^2', 'square meters', 'sq m'])}</answer>"
        else:
            unit, scale = rng.choice([("m", 1.0), ("m", 1.0), ("meters", 1.0), ("cm", 100.0), ("", 1.0)])
            text = f"{think}<answer>{guess * scale:.2f} {unit}".rstrip() + "</answer>"
        preds[items[-1].id] = {"id": items[-1].id, "prediction": text}
    for j in range(n // 1000):
        preds[f"unknown-{j}"] = {"id": f"unknown-{j}", "prediction": "<answer>1 m</answer>"}
    return items, preds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000, help="numeric items to score (default 100000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions; the best is reported (default 3)")
    parser.add_argument("--profile", action="store_true", help="also print the top functions of a cProfile pass")
    args = parser.parse_args()

    bench = get_benchmark("world")
    t0 = time.perf_counter()
    items, preds = make_items_and_predictions(args.items)
    build_s = time.perf_counter() - t0
    score_predictions(bench, items[:200], preds)  # warm caches (pint registry, unit words)

    times = []
    report = {}
    for _ in range(max(1, args.repeats)):
        t0 = time.perf_counter()
        report = score_predictions(bench, items, preds)
        times.append(time.perf_counter() - t0)
    best = min(times)
    counts = report["counts"]
    print(f"built {len(items):,} items and {len(preds):,} predictions in memory in {build_s:.2f} s")
    print(f"score_predictions(world): {best:.2f} s for {len(items):,} numeric predictions "
          f"(best of {len(times)}: {', '.join(f'{t:.2f}' for t in times)} s) = "
          f"{len(items) / best:,.0f} items/s; target < {TARGET_S:.0f} s: {'met' if best < TARGET_S else 'MISSED'}")
    print(f"overall {report['overall']:.2f}; missing {counts['missing']}, unknown {counts['unknown']}, "
          f"unparsed {json.dumps(report['metrics']['unparsed'])}")

    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        score_predictions(bench, items, preds)
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(15)


if __name__ == "__main__":
    main()
