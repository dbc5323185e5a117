"""How a demo model's sampled answers score against its greedy ones, on the demo's held-out items.

GRPO learns from groups of answers sampled at the training temperature, while the demo scores
greedy answers. This prints, for a model of a ``spatialrl demo`` run (``sft`` by default: the model
RL starts from), the macro score of its greedy answers and of N independent sets of sampled
answers (temperature T, no top-k/top-p) on the first ITEMS of the demo's held-out subset, overall
and per question type. When samples score far below greedy, a group's best answers are mostly
the greedy answer itself and RL mostly sharpens what greedy already says (docs/experiments/demo.md, "Does RL
move the held-out score at all?")::

    .venv/bin/python experiments/sampled_vs_greedy/demo_sampling.py runs/demo --items 680 --samples 4
    .venv/bin/python experiments/sampled_vs_greedy/demo_sampling.py runs/demo --model grpo/final --temperature 0.7
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a spatialrl demo run directory (its data/ and metrics.json)")
    parser.add_argument("--model", default="sft", help="model directory, relative to RUN (default sft)")
    parser.add_argument("--items", type=int, default=680, help="held-out items, a stratified subset (default 680)")
    parser.add_argument("--samples", type=int, default=4, help="sets of sampled answers (default 4)")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0, GRPO's)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args()
    if args.items < 1 or args.samples < 1 or not args.temperature > 0:
        sys.exit("demo_sampling: --items and --samples must be >= 1 and --temperature > 0")

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_shared"))  # experiments/_shared/demo_model.py
    from demo_model import open_demo_model, sampling_config
    from spatialrl.demo import score_summary
    from spatialrl.eval.benchmarks import score_predictions
    from spatialrl.models.generate import generate_batch

    demo = open_demo_model("demo_sampling", args.run, args.model, args.items, args.threads)
    benchmark, items, model_dir = demo.benchmark, demo.items, demo.model_dir
    sampling = sampling_config(demo, args.temperature)

    def answers(sample: bool, seed: int) -> dict[str, str]:
        # greedy: the runner's own config, as the demo scores; sampled: GRPO's
        torch.manual_seed(seed)
        out: dict[str, str] = {}
        for start in range(0, len(items), 32):
            batch = items[start:start + 32]
            texts = generate_batch(demo.model, demo.processor, [benchmark.prompt(item) for item in batch],
                                   [list(item.images) for item in batch], demo.max_new_tokens,
                                   generation_config=sampling if sample else None)
            out.update({item.id: text for item, text in zip(batch, texts)})
        return out

    rows = [("greedy", score_summary(score_predictions(benchmark, items, answers(False, 0))))]
    for i in range(args.samples):
        rows.append((f"sample {i}", score_summary(score_predictions(benchmark, items, answers(True, i)))))
        print(f"  sampled set {i + 1}/{args.samples} done", file=sys.stderr, flush=True)
    types = sorted(rows[0][1]["per_type"])
    print(f"{model_dir}: {len(items)} held-out items, samples at temperature {args.temperature:g}")
    print(f"{'':10s} {'overall':>8s} " + " ".join(f"{t[:12]:>12s}" for t in types))
    for name, scores in rows:
        print(f"{name:10s} {scores['overall']:8.1f} " + " ".join(f"{scores['per_type'][t]:12.1f}" for t in types))
    sampled = [scores["overall"] for name, scores in rows[1:]]
    print(f"sampled mean {statistics.mean(sampled):.1f} (greedy - sampled {rows[0][1]['overall'] - statistics.mean(sampled):+.1f})")


if __name__ == "__main__":
    main()
