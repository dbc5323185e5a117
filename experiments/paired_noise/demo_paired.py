"""Per question type, how far one model of a demo run moved from another, with its noise.

For a ``spatialrl demo`` run directory: per question type, the number of held-out items, the
mean per-item score difference ``A - B`` in points (default: RL minus its start), its paired
standard error (the standard deviation of the per-item differences over sqrt(n)), the same with
each mirror pair as one cluster (its two views' mean difference; larger than the first when the
two views of a question change together) and the share of items whose score changed. A fall of 5 points with a standard error of 4 is within the
noise of ~70 items; a fall with most items changed on a yes/no type is a flipped prior.

``--model DIR`` instead scores another checkpoint (e.g. the pretrained start before the demo's
SFT stage) on the run's evaluation subset, greedily, as the demo scores its models.

docs/experiments/demo.md ("Is a 5-point fall of one type noise?") cites it::

    .venv/bin/python experiments/paired_noise/demo_paired.py runs/demo            # rl - sft
    .venv/bin/python experiments/paired_noise/demo_paired.py runs/demo control sft
    .venv/bin/python experiments/paired_noise/demo_paired.py runs/demo --model spatialrl/assets/tiny-spatial-vlm
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import sys
import tempfile
from pathlib import Path


def item_scores(run: Path, name: str, items: dict, benchmark) -> dict[str, tuple[str, float]]:
    """``id -> (question type, score)`` of ``OUT/eval/<name>/predictions.jsonl``."""
    path = run / "eval" / name / "predictions.jsonl"
    if not path.exists():
        sys.exit(f"demo_paired: no {path}; evaluated models of this run: "
                 f"{sorted(p.name for p in (run / 'eval').iterdir() if p.is_dir())}")
    out = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            item = items[row["id"]]
            out[row["id"]] = (benchmark.type_of(item), benchmark.score_item(item, row["prediction"]).score)
    return out


def _standard_error(values: list[float]) -> float:
    n = len(values)
    if n < 2:
        return 0.0
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def pair_key(item_id: str) -> str:
    """The mirror pair of a world item id: ``syn0-000005-q03-o`` and ``...-q03-m`` share ``syn0-000005-q03``."""
    stem, _, view = item_id.rpartition("-")
    return stem if view in ("o", "m") else item_id


def paired_table(a: dict, b: dict) -> list[tuple[str, int, float, float, float, float]]:
    """``(type, n, mean difference, standard error, pair-clustered standard error, share changed)``
    per type, in points."""
    per: dict[str, dict[str, list[float]]] = collections.defaultdict(lambda: collections.defaultdict(list))
    for key, (qtype, score) in a.items():
        if key in b:
            per[qtype][pair_key(key)].append(100.0 * (score - b[key][1]))
    rows = []
    for qtype in sorted(per):
        diffs = [d for pair in per[qtype].values() for d in pair]
        pair_means = [sum(pair) / len(pair) for pair in per[qtype].values()]
        n = len(diffs)
        rows.append((qtype, n, sum(diffs) / n, _standard_error(diffs), _standard_error(pair_means),
                     sum(1 for d in diffs if abs(d) > 1e-9) / n))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a spatialrl demo run directory (OUT)")
    parser.add_argument("a", nargs="?", default="rl", help="evaluated model (eval/<name>), default rl")
    parser.add_argument("b", nargs="?", default="sft", help="model it is compared with, default sft (the start)")
    parser.add_argument("--model", default=None, help="score this checkpoint on the run's subset instead")
    args = parser.parse_args()

    from spatialrl.demo import DemoConfig, eval_subset
    from spatialrl.eval.benchmarks import get_benchmark

    benchmark = get_benchmark("world")
    if args.model is not None:
        import torch

        from spatialrl.eval.runner import run_benchmark

        metrics = json.loads((args.run / "metrics.json").read_text())
        cfg = DemoConfig(**{k: v for k, v in metrics["config"].items() if k in DemoConfig.__dataclass_fields__})
        test = benchmark.load(str(args.run / "data"), split="test")
        subset = eval_subset(test, cfg.eval_items, cfg.data_seed, benchmark.type_of)
        torch.set_num_threads(cfg.threads)
        with tempfile.TemporaryDirectory() as tmp:
            result = run_benchmark(args.model, "model", benchmark, subset, tmp, max_new_tokens=cfg.eval_max_new_tokens,
                                   batch_size=cfg.eval_batch_size, overwrite=True, device="cpu",
                                   dtype=torch.float32, progress=False)
        print(f"{args.model} on {len(subset)} items of {args.run}: overall {result.scores['overall']:.1f}")
        for qtype, score in sorted(result.scores["per_type"].items()):
            print(f"  {qtype:28s} {score:5.1f}")
        return
    items = {item.id: item for item in benchmark.load(str(args.run / "data"), split="test", with_images=False)}
    a = item_scores(args.run, args.a, items, benchmark)
    b = item_scores(args.run, args.b, items, benchmark)
    print(f"{args.run}: {args.a} - {args.b}, points per type (paired standard error; the same with mirror "
          f"pairs as clusters; share of items changed)")
    for qtype, n, mean, se, pair_se, changed in paired_table(a, b):
        flag = "  < -5" if mean < -5 else ""
        print(f"  {qtype:28s} n={n:4d}  {mean:+6.1f} ± {se:4.1f} (pairs ± {pair_se:4.1f})  changed {changed:4.0%}{flag}")


if __name__ == "__main__":
    main()
