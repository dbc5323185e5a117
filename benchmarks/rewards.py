"""Reward throughput on one CPU process.

Prints (measured in this run, nothing hard-coded):
- completions scored per second by parse + SNRA + format (``AccuracyReward`` + ``FormatReward``,
  the TRL callables, on a realistic mix of numeric, choice, yes/no and box answers);
- Sentence-BERT semantic-reward pairs per second with the references already cached and every
  prediction new (so each pair costs one encoder pass).

The parse rate is measured pinned to one CPU core, best of ``--repeats`` runs, twice: as
GRPO sees it (the parsers cache answers of up to 160 characters, and a group's choice and
yes/no answers repeat) and cold (caches cleared before every batch).

Targets: >= 50,000 completions/s (issue #20; goal 100,000) and >= 300 semantic pairs/s.
``--update-docs`` writes the measured rows into docs/performance.md.

Usage: python benchmarks/rewards.py [--completions N] [--pairs N] [--threads T] [--update-docs]
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import re
import time
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
BEGIN, END = "<!-- benchmarks/rewards.py: begin -->", "<!-- benchmarks/rewards.py: end -->"
PARSE_TARGET = 50_000


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
    parser.add_argument("--repeats", type=int, default=3, help="parse-rate runs; the best is reported (default 3)")
    parser.add_argument("--update-docs", action="store_true", help="write the figures into docs/performance.md")
    args = parser.parse_args()

    from spatialrl.answers import clear_caches
    from spatialrl.rewards.schedules import SharpnessSchedule
    from spatialrl.rewards.trl import accuracy_reward, format_reward_func

    rng = random.Random(0)
    accuracy, fmt = accuracy_reward(SharpnessSchedule.paper()), format_reward_func()
    batches = [make_batch(args.batch, rng) for _ in range(max(1, args.completions // args.batch))]
    accuracy(completions=batches[0][0], **batches[0][1])  # warm caches (pint unit factors)

    def rate(cold: bool) -> float:
        clear_caches()
        start = time.perf_counter()
        scored = 0
        for completions, cols in batches:
            if cold:
                clear_caches()
            acc = accuracy(completions=completions, **cols)
            fmt(completions=completions)
            scored += len(acc)
        return scored / (time.perf_counter() - start)

    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if affinity:
        os.sched_setaffinity(0, {min(affinity)})  # one core
    warm_rate = max(rate(cold=False) for _ in range(args.repeats))
    cold_rate = max(rate(cold=True) for _ in range(args.repeats))
    if affinity:
        os.sched_setaffinity(0, affinity)
    n = len(batches) * args.batch
    print(f"parse + SNRA + format, one core: {warm_rate:,.0f} completions/s as GRPO sees it, "
          f"{cold_rate:,.0f} cold (best of {args.repeats} x {n} completions; "
          f"target >= {PARSE_TARGET:,}: {'met' if warm_rate >= PARSE_TARGET else 'NOT met'})")

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
    pair_rate = args.pairs / elapsed
    print(f"semantic reward: {args.pairs} new predictions vs cached references in {elapsed:.2f} s = "
          f"{pair_rate:,.0f} pairs/s with {torch.get_num_threads()} torch threads "
          f"(target >= 300: {'met' if pair_rate >= 300 else 'NOT met'})")
    if args.update_docs:
        update_docs(warm_rate, cold_rate, pair_rate, torch.get_num_threads())


def update_docs(warm_rate: float, cold_rate: float, pair_rate: float, threads: int) -> None:
    """Rewrite the rewards table of docs/performance.md with this run's figures."""
    table = "\n".join([
        BEGIN,
        "| what | measured | target |",
        "|---|---|---|",
        f"| parse + SNRA + format, TRL callables, batches of 64, one core, as GRPO sees it (answer caches on) "
        f"| {warm_rate:,.0f} completions/s | >= {PARSE_TARGET:,} (goal 100,000) |",
        f"| the same, cold (caches cleared before every batch) | {cold_rate:,.0f} completions/s | |",
        f"| Sentence-BERT semantic reward (all-MiniLM-L6-v2), new predictions vs cached references, "
        f"{threads} torch threads | {pair_rate:,.0f} pairs/s | >= 300 |",
        "",
        f"Measured {datetime.date.today().isoformat()} by `.venv/bin/python benchmarks/rewards.py --update-docs`.",
        END,
    ])
    text = DOC.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{DOC}: markers {BEGIN!r} / {END!r} not found; put them around the rewards table")
    text = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: table, text, flags=re.DOTALL)
    tmp = DOC.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, DOC)
    print(f"updated {DOC}")


if __name__ == "__main__":
    main()
