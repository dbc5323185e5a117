"""Reward throughput on one CPU process.

Prints (measured in this run, nothing hard-coded):
- completions scored per second by parse + SNRA + format (``AccuracyReward`` + ``FormatReward``,
  the TRL callables, on a realistic mix of numeric, choice, yes/no and box answers);
- Sentence-BERT semantic-reward pairs per second with the references already cached and every
  prediction new (so each pair costs one encoder pass).

Targets (issue #2): >= 20,000 completions/s and >= 300 semantic pairs/s.

Usage: python benchmarks/rewards.py [--completions N] [--pairs N] [--threads T]
"""

from __future__ import annotations

import argparse
import random
import time


def make_batch(n: int, rng: random.Random) -> tuple[list[str], dict[str, list]]:
    completions, cols = [], {k: [] for k in ("answer_type", "answer_value", "dimension", "options",
                                              "answer_index", "answer", "bbox")}
    think = "<think>" + " ".join(rng.choice(["the", "chair", "is", "near", "table", "left", "of"])
                                 for _ in range(30)) + "</think>"
    for i in range(n):
        kind = i % 4
        if kind == 0:
            value = rng.uniform(0.2, 8.0)
            unit, scale = rng.choice([("m", 1.0), ("cm", 100.0), ("meters", 1.0), ("ft", 3.28084)])
            answer = f"{value * scale * rng.uniform(0.7, 1.3):.2f} {unit}"
            row = ("numerical", value, "length", [], -1, f"{value:.2f}", [])
        elif kind == 1:
            answer = rng.choice(["A", "(B)", "C.", "the answer is D", "table"])
            row = ("discrete", None, None, ["chair", "table", "sofa", "lamp"], rng.randrange(4), "B", [])
        elif kind == 2:
            answer = rng.choice(["yes", "No.", "Yes, it is."])
            row = ("discrete", None, None, [], -1, rng.choice(["yes", "no"]), [])
        else:
            answer = "[{}, {}, {}, {}]".format(*sorted(rng.sample(range(112), 2)), *sorted(rng.sample(range(112), 2)))
            row = ("grounding", None, None, [], -1, "[10, 10, 50, 50]", [10.0, 10.0, 50.0, 50.0])
        completions.append(f"{think}<answer>{answer}</answer>")
        for key, value in zip(cols, row):
            cols[key].append(value)
    return completions, cols


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--completions", type=int, default=64_000, help="completions to score (default 64000)")
    parser.add_argument("--batch", type=int, default=64, help="completions per reward call, as TRL batches them")
    parser.add_argument("--pairs", type=int, default=2_000, help="semantic pairs to score (default 2000)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads for the encoder (0: torch default)")
    args = parser.parse_args()

    from spatialrl.rewards.schedules import SharpnessSchedule
    from spatialrl.rewards.trl import accuracy_reward, format_reward_func

    rng = random.Random(0)
    accuracy, fmt = accuracy_reward(SharpnessSchedule.paper()), format_reward_func()
    batches = [make_batch(args.batch, rng) for _ in range(max(1, args.completions // args.batch))]
    accuracy(completions=batches[0][0], **batches[0][1])  # warm caches (pint unit factors)
    start = time.perf_counter()
    scored = 0
    for completions, cols in batches:
        acc = accuracy(completions=completions, **cols)
        fmt(completions=completions)
        scored += len(acc)
    elapsed = time.perf_counter() - start
    rate = scored / elapsed
    print(f"parse + SNRA + format: {scored} completions in {elapsed:.2f} s = {rate:,.0f} completions/s "
          f"(target >= 20,000: {'met' if rate >= 20_000 else 'NOT met'})")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from spatialrl.rewards.semantic import SemanticScorer

    scorer = SemanticScorer()
    references = ["2.5 meters", "the red chair is left of the table", "yes", "no", "about 1 m", "the lamp"]
    scorer.similarity(references, references)  # load the model, cache the references
    # Warm up on throwaway texts: the first large batch pays one-time kernel set-up costs.
    scorer.similarity([f"warm-up text number {i}" for i in range(256)], [references[0]] * 256)
    preds = [f"{rng.uniform(0, 10):.3f} {rng.choice(['m', 'meters', 'cm'])}" if i % 2 else
             f"the {rng.choice(['red', 'blue', 'green'])} {rng.choice(['chair', 'lamp', 'sofa'])} {i}"
             for i in range(args.pairs)]
    refs = [references[i % len(references)] for i in range(args.pairs)]
    start = time.perf_counter()
    for i in range(0, args.pairs, 128):
        scorer.similarity(preds[i:i + 128], refs[i:i + 128])
    elapsed = time.perf_counter() - start
    rate = args.pairs / elapsed
    print(f"semantic reward: {args.pairs} new predictions vs cached references in {elapsed:.2f} s = "
          f"{rate:,.0f} pairs/s with {torch.get_num_threads()} torch threads "
          f"(target >= 300: {'met' if rate >= 300 else 'NOT met'})")


if __name__ == "__main__":
    main()
