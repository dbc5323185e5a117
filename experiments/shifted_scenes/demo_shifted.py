"""Score a demo run's start, control and RL model on scenes unlike its training scenes.

The demo's held-out split comes from the generator that made its training split, so it measures
what each arm learned of that distribution. The papers score RL on other benchmarks. This builds
world scenes with another number of objects (default 9-12 per scene; the demo trains on 3-8),
so the scenes are more crowded and the counts larger than any training scene's. It then scores
the run's three models on the same stratified subset, greedily, with the world scorer, and prints
their macro scores and RL − start, RL − control::

    .venv/bin/python experiments/shifted_scenes/demo_shifted.py runs/demo --data /tmp/crowded
    .venv/bin/python experiments/shifted_scenes/demo_shifted.py runs/demo --data /tmp/crowded --objects 1 2

``--data`` is built once (``spatialrl data build`` with ``BuildConfig.objects``; ~30 s) and reused by
later runs with the same settings (an existing directory it did not build is refused, never
replaced). Each model's predictions go to ``RUN/shifted/objects<MIN>-<MAX>_scenes<N>_seed<S>/``
and are resumed if interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

#: The demo's models: name in the output -> directory relative to the run.
MODELS = {"sft": "sft", "control": "control", "rl": "grpo/final"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a finished spatialrl demo run directory")
    parser.add_argument("--data", type=Path, required=True, help="where the shifted scenes are built (reused if there)")
    parser.add_argument("--objects", type=int, nargs=2, default=(9, 12), metavar=("MIN", "MAX"),
                        help="objects per scene (default 9 12; the demo's scenes have 3-8)")
    parser.add_argument("--scenes", type=int, default=160, help="scenes to build (default 160, ~5,000 items)")
    parser.add_argument("--seed", type=int, default=1, help="world seed of the shifted scenes (default 1)")
    parser.add_argument("--items", type=int, default=2400, help="items scored, stratified by type (default 2400)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args()

    metrics_path = args.run / "metrics.json"
    if not metrics_path.is_file():
        sys.exit(f"demo_shifted: no {metrics_path}; run `spatialrl demo --out {args.run}` to the end first")
    missing = [str(args.run / d) for d in MODELS.values() if not (args.run / d / "config.json").is_file()]
    if missing:
        sys.exit(f"demo_shifted: {args.run} lacks the model(s) {', '.join(missing)}")
    low, high = args.objects
    if not 1 <= low <= high:
        sys.exit(f"demo_shifted: --objects MIN MAX needs 1 <= MIN <= MAX, got {low} {high}")
    config = json.loads(metrics_path.read_text())["config"]

    import torch

    from spatialrl.data.build import BuildConfig, build_dataset
    from spatialrl.demo import eval_subset
    from spatialrl.eval.benchmarks import get_benchmark
    from spatialrl.eval.runner import run_benchmark

    build = BuildConfig(scenes=args.scenes, seed=args.seed, image_size=config["image_size"],
                        test_fraction=0.99, objects=(low, high))
    settings_path = args.data / "shifted_settings.json"
    settings = {"scenes": args.scenes, "seed": args.seed, "image_size": config["image_size"], "objects": [low, high]}
    if args.data.exists() and not settings_path.is_file():
        sys.exit(f"demo_shifted: --data {args.data} exists and was not built by this script (no {settings_path.name}); "
                 "give a new directory")
    if not settings_path.is_file() or json.loads(settings_path.read_text()) != settings:
        print(f"demo_shifted: building {args.scenes} scenes with {low}-{high} objects into {args.data}", flush=True)
        build_dataset(str(args.data), build, overwrite=True, progress=True)
        settings_path.write_text(json.dumps(settings))
    # named by the settings, so that predictions on another build are never resumed as these
    results = args.run / "shifted" / f"objects{low}-{high}_scenes{args.scenes}_seed{args.seed}"

    torch.set_num_threads(args.threads)
    benchmark = get_benchmark("world")
    items = benchmark.load(str(args.data), split="test")
    subset = eval_subset(items, args.items, config["data_seed"], benchmark.type_of)
    scores = {}
    for name, rel in MODELS.items():
        result = run_benchmark(str(args.run / rel), name, benchmark, subset, results / name,
                               max_new_tokens=config["eval_max_new_tokens"], batch_size=config["eval_batch_size"],
                               device="cpu", dtype=torch.float32, progress=True, log=lambda m: None)
        scores[name] = result.scores
    start, control, rl = (scores[n]["overall"] for n in ("sft", "control", "rl"))
    print(f"{args.run} on {len(subset)} items of {args.data} ({low}-{high} objects a scene):")
    print(f"  start {start:.1f}  control {control:.1f}  RL {rl:.1f}  |  RL - start {rl - start:+.1f}  "
          f"RL - control {rl - control:+.1f}")
    falls = sorted((scores["rl"]["per_type"][t] - scores["sft"]["per_type"][t], t) for t in scores["sft"]["per_type"])
    print("  types > 5 below start: " + (", ".join(f"{t} {d:+.1f}" for d, t in falls if d < -5) or "none"))


if __name__ == "__main__":
    main()
