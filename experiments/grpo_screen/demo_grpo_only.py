"""Re-run only the GRPO stage of a demo run with other settings, and score it against that run.

For a finished ``spatialrl demo`` run directory RUN, trains the demo's GRPO job (``grpo_job`` with
RUN's demo settings, read from ``RUN/metrics.json``) from ``RUN/sft`` on ``RUN/data``, with the
given GRPO job overrides, into ``OUT/grpo``; scores it with greedy decoding on the demo's held-out
subset (the same items as RUN's ``eval/`` stages) into ``OUT/eval``; and prints its macro score
beside RUN's start and control, and the question types more than 5 points below the start. No
control is trained, so a setting costs one GRPO stage and one evaluation (~4 min here), not a
whole demo: a screen of GRPO settings on the same start, not a replacement for the demo's
equal-time comparison (docs/experiments/demo.md, "Does RL move the held-out score at all?")::

    .venv/bin/python experiments/grpo_screen/demo_grpo_only.py runs/demo /tmp/screen_t07 temperature=0.7
    .venv/bin/python experiments/grpo_screen/demo_grpo_only.py runs/demo /tmp/screen_long max_steps=200 max_seconds=null

``OUT/rl.json`` keeps the scores. A rerun into the same OUT reuses a finished ``OUT/grpo/final``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a finished spatialrl demo run directory (its data/, sft/, metrics.json)")
    parser.add_argument("out", type=Path, help="where to write grpo/, eval/ and rl.json")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="GRPO job overrides on top of the run's own (spatialrl train --list-keys)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args()

    metrics_path = args.run / "metrics.json"
    if not metrics_path.exists():
        sys.exit(f"demo_grpo_only: no {metrics_path}; run `spatialrl demo --out {args.run}` to the end first")
    metrics = json.loads(metrics_path.read_text())
    for key in ("config", "sft", "control"):
        if key not in metrics:
            sys.exit(f"demo_grpo_only: {metrics_path} has no {key!r}; it is not a spatialrl demo run's metrics")

    import torch

    from spatialrl.demo import DemoConfig, score_summary, eval_subset, grpo_job
    from spatialrl.eval.benchmarks import get_benchmark
    from spatialrl.eval.runner import run_benchmark
    from spatialrl.train.config import ConfigError
    from spatialrl.train.grpo import train_grpo

    fields = {f: v for f, v in metrics["config"].items() if f in DemoConfig.__dataclass_fields__}
    fields["grpo_overrides"] = list(fields.get("grpo_overrides") or []) + list(args.overrides)
    try:
        cfg = DemoConfig(**{**fields, "out": str(args.out)})
        job = grpo_job(cfg, str(args.run / "sft"), str(args.run / "data"), str(args.out / "grpo"))
    except ConfigError as exc:
        sys.exit(f"demo_grpo_only: {exc}")
    torch.set_num_threads(args.threads)
    final = args.out / "grpo" / "final"
    if not final.exists():
        summary = train_grpo(job, log=lambda m: print(f"grpo: {m}", flush=True))
        print(f"grpo: {summary['global_step']} steps in {summary['seconds']:.0f} s", flush=True)

    benchmark = get_benchmark("world")
    items = benchmark.load(str(args.run / "data"), split="test")
    subset = eval_subset(items, cfg.eval_items, cfg.data_seed, benchmark.type_of)
    result = run_benchmark(str(final), "rl", benchmark, subset, args.out / "eval",
                           max_new_tokens=cfg.eval_max_new_tokens, batch_size=cfg.eval_batch_size, overwrite=True,
                           device="cpu", dtype=torch.float32, progress=True, log=lambda m: None)
    rl = score_summary(result.scores)
    (args.out / "rl.json").write_text(json.dumps(rl, indent=1))

    start, control = metrics["sft"], metrics["control"]
    falls = sorted((rl["per_type"][t] - start["per_type"][t], t) for t in start["per_type"] if t in rl["per_type"])
    below = [f"{t} {d:+.1f}" for d, t in falls if d < -5] or [f"none (largest: {falls[0][1]} {falls[0][0]:+.1f})"]
    setting = " ".join(args.overrides) or "the run's own settings"
    print(f"{args.out} ({setting}), {len(subset)} held-out items:")
    print(f"  start {start['overall']:.1f}  control {control['overall']:.1f}  RL {rl['overall']:.1f}  |  "
          f"RL - start {rl['overall'] - start['overall']:+.1f}  RL - control {rl['overall'] - control['overall']:+.1f}"
          f"  |  types > 5 below start: {', '.join(below)}")


if __name__ == "__main__":
    main()
