"""`spatialrl eval score`: score a predictions file against a benchmark, no model loaded."""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

HELP = "score a predictions file (JSON Lines with id and prediction) with a benchmark's official rules"


def benchmark_names() -> list[str]:
    from spatialrl.eval.benchmarks import BENCHMARKS, load_builtin_benchmarks

    load_builtin_benchmarks()
    return sorted(BENCHMARKS)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--benchmark", required=True, help=f"benchmark name: {', '.join(benchmark_names())}")
    parser.add_argument("--data", required=True, help="path to the benchmark's official file(s), downloaded by you")
    parser.add_argument("--predictions", required=True, help="JSON Lines file: one {id, prediction} per line")
    parser.add_argument("--out", required=True, help="where to write SCORES.json")
    parser.add_argument("--reasoning", action="store_true",
                        help="also report SVQA-R1 appendix G statistics of the replies (reasoning-keyword counts, "
                             "think lengths) under 'reasoning'")


def run(args: argparse.Namespace) -> int:
    from spatialrl.eval.benchmarks import BenchmarkDataError, get_benchmark, score_predictions
    from spatialrl.eval.predictions import PredictionsError, read_predictions, write_json_atomic

    if Path(args.out).is_dir():
        print(f"error: --out {args.out} is a directory; give the path of the JSON file to write, "
              f"e.g. --out {Path(args.out) / 'SCORES.json'}", file=sys.stderr)
        return 2
    try:
        benchmark = get_benchmark(args.benchmark)
        # Scoring needs no pixels: skip decoding images where the benchmark allows it.
        accepts = "with_images" in inspect.signature(benchmark.load).parameters
        items = benchmark.load(args.data, with_images=False) if accepts else benchmark.load(args.data)
        predictions = read_predictions(args.predictions)
    except (BenchmarkDataError, PredictionsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = score_predictions(benchmark, items, predictions, reasoning=args.reasoning)
    try:
        write_json_atomic(args.out, report)
    except OSError as exc:
        print(f"error: --out {args.out}: cannot write the scores ({exc.strerror or exc}); give a writable file path",
              file=sys.stderr)
        return 2
    counts = report["counts"]
    print(f"{benchmark.name}: overall {report['overall']:.2f}"
          + (f" (lenient {report['overall_lenient']:.2f})" if "overall_lenient" in report else "")
          + f" on {counts['items']} items; {counts['missing']} missing, {counts['unknown']} unknown ids")
    for kind, value in report["per_type"].items():
        print(f"  {kind:32} {value:6.2f}  (n={counts['per_type'][kind]})")
    print(f"wrote {args.out}")
    return 0
