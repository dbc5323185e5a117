"""Which questions a demo run's GRPO stage saw: how many of each type, and in what order.

For a ``spatialrl demo`` run directory, reads ``OUT/grpo/generations.jsonl`` (the prompts of every
generation batch) and the training split in ``OUT/data``, and prints the number of questions
(original views; each came with its mirror) per question type; for each type named on the
command line, also the step and the true answer of each of its questions, in order. A short run
sees few questions of a type, and their order decides which way the type's answers move
(docs/experiments/demo.md, "Reward settings, the KL term and a stratified order")::

    .venv/bin/python experiments/grpo_question_order/demo_grpo_questions.py runs/demo compare_yes_no room_size
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a spatialrl demo run directory (OUT)")
    parser.add_argument("types", nargs="*", help="question types whose questions to list in order")
    args = parser.parse_args()

    generations = args.run / "grpo" / "generations.jsonl"
    if not generations.exists():
        sys.exit(f"demo_grpo_questions: no {generations}; has the run's grpo stage finished?")
    from datasets import load_dataset

    files = sorted(str(p) for p in (args.run / "data" / "data").glob("train-*.parquet"))
    if not files:
        sys.exit(f"demo_grpo_questions: no training split under {args.run / 'data' / 'data'}")
    train = load_dataset("parquet", data_files=files, split="train", columns=["id", "question_type", "answer"])
    by_id = {row["id"]: (row["question_type"], row["answer"]) for row in train}

    counts: collections.Counter[str] = collections.Counter()
    listed: dict[str, list[str]] = {name: [] for name in args.types}
    for line in generations.read_text().splitlines():
        batch = json.loads(line)
        for prompt in batch["prompts"]:
            if not prompt.endswith(":o"):  # the mirror twin of the previous original
                continue
            qtype, answer = by_id.get(prompt[:-2] + "-o", ("?", "?"))
            counts[qtype] += 1
            if qtype in listed:
                listed[qtype].append(f"{batch['step']}:{answer}")
    print(f"{args.run}: {sum(counts.values())} questions (each with its mirror) in the GRPO stage")
    for qtype, n in sorted(counts.items()):
        print(f"  {qtype:28s} {n:4d}")
    for qtype, items in listed.items():
        print(f"{qtype} (step:answer): {' '.join(items) or 'none'}")


if __name__ == "__main__":
    main()
