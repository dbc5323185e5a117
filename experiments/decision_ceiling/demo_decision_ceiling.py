"""How much a demo model's held-out score could rise by choosing better among its own answers.

RL that learns no new perception in a few minutes can still move a model's greedy answer towards
the answer that scores best on average under the model's own uncertainty: the minimum-Bayes-risk
(MBR) answer. This measures that ceiling on the demo's held-out items. For each item it draws the
greedy answer and N answers sampled at temperature T (GRPO's sampling: no top-k/top-p), and scores

- ``greedy``: the greedy answer (what the demo scores);
- ``sampled``: the mean score of the sampled answers (what GRPO's groups hold);
- ``mbr``: of the greedy and the sampled answers, the one that agrees best with the sampled
  answers (agreement: the world scorer's mean relative accuracy for numbers, IoU for boxes,
  equality of the parsed answer otherwise; ties keep greedy): the decision a reward-maximising
  policy moves towards when it knows no more than the model does;
- ``oracle``: the best of the greedy and sampled answers (needs the truth: an upper bound on
  what any re-ranking of these answers reaches);
- ``mbr_num``: the MBR answer on items whose truth is a number (the numeric types and the
  open-ended numeric questions), greedy on the rest: where the smooth numeric reward could
  teach it, since on choice questions a vote over poor samples loses to greedy.

``mbr - greedy`` is the gain available without new perception; ``docs/experiments/demo.md`` ("The decision
ceiling") compares it with the seed-to-seed spread of the demo's RL score::

    .venv/bin/python experiments/decision_ceiling/demo_decision_ceiling.py runs/demo --samples 16
    .venv/bin/python experiments/decision_ceiling/demo_decision_ceiling.py runs/demo --items 680 --temperature 0.7
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path
from typing import Any


def agreement(answer_type: str, candidate: Any, reference: Any) -> float:
    """How well ``candidate`` (a parsed answer) scores if ``reference`` (another parsed answer) were the truth."""
    from spatialrl.eval.metrics import mean_relative_accuracy
    from spatialrl.rewards.iou import box_iou

    if candidate is None or reference is None:
        return 0.0
    if answer_type == "grounding":
        return float(box_iou(candidate, reference))
    if isinstance(candidate, float) and isinstance(reference, float):
        return float(mean_relative_accuracy(candidate, reference)) if reference > 0 else 0.0
    return float(candidate == reference)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a spatialrl demo run directory (its data/ and metrics.json)")
    parser.add_argument("--model", default="sft", help="model directory, relative to RUN (default sft: RL's start)")
    parser.add_argument("--items", type=int, default=2400, help="held-out items, the demo's stratified subset (default 2400)")
    parser.add_argument("--samples", type=int, default=16, help="sampled answers per item (default 16)")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0, GRPO's)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = parser.parse_args()
    if args.items < 1 or args.samples < 2 or not args.temperature > 0:
        sys.exit("demo_decision_ceiling: --items must be >= 1, --samples >= 2 and --temperature > 0")

    import torch
    from tqdm import tqdm

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "_shared"))  # experiments/_shared/demo_model.py
    from demo_model import open_demo_model, sampling_config
    from spatialrl.models.generate import generate_batch

    demo = open_demo_model("demo_decision_ceiling", args.run, args.model, args.items, args.threads)
    benchmark, items, model_dir = demo.benchmark, demo.items, demo.model_dir
    sampling = sampling_config(demo, args.temperature)

    # answers[k][i]: answer k of item i; k = 0 is greedy (the runner's own config, as the demo scores)
    answers: list[list[str]] = []
    with tqdm(total=(args.samples + 1) * len(items), unit="answer", desc="decoding", file=sys.stderr) as bar:
        for k in range(args.samples + 1):
            torch.manual_seed(k)
            texts: list[str] = []
            for start in range(0, len(items), 32):
                batch = items[start:start + 32]
                texts += generate_batch(demo.model, demo.processor, [benchmark.prompt(item) for item in batch],
                                        [list(item.images) for item in batch], demo.max_new_tokens,
                                        generation_config=sampling if k else None)
                bar.update(len(batch))
            answers.append(texts)

    columns = ("greedy", "sampled", "mbr", "oracle", "mbr_num")
    by_type: dict[str, dict[str, list[float]]] = {}
    for i, item in enumerate(items):
        results = [benchmark.score_item(item, answers[k][i]) for k in range(args.samples + 1)]
        parsed = [result.parsed for result in results]
        scores = [float(result.score) for result in results]
        kind = item.meta["answer_type"]
        utility = [sum(agreement(kind, parsed[k], parsed[j]) for j in range(1, args.samples + 1) if j != k)
                   for k in range(args.samples + 1)]
        # each candidate is compared with the samples other than itself, so greedy (not a sample) is
        # measured against one more answer: rescale to a mean so the two are comparable
        mean_utility = [u / (args.samples - (k > 0)) for k, u in enumerate(utility)]
        chosen = max(range(args.samples + 1), key=lambda k: (mean_utility[k], k == 0))
        row = by_type.setdefault(benchmark.type_of(item), {c: [] for c in columns})
        row["greedy"].append(scores[0])
        row["sampled"].append(statistics.mean(scores[1:]))
        row["mbr"].append(scores[chosen])
        row["oracle"].append(max(scores))
        numeric_truth = isinstance(item.meta.get("answer_value"), (int, float))
        row["mbr_num"].append(scores[chosen] if numeric_truth else scores[0])

    print(f"{model_dir}: {len(items)} held-out items, greedy and {args.samples} answers sampled at temperature "
          f"{args.temperature:g} (percent; overall = macro average over question types)")
    print(f"{'type':26s} {'items':>5s} " + " ".join(f"{c:>8s}" for c in columns) + f" {'mbr-greedy':>11s} {'SE':>5s}")
    for kind in sorted(by_type):
        row = by_type[kind]
        diffs = [100 * (m - g) for m, g in zip(row["mbr"], row["greedy"])]
        se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
        print(f"{kind:26s} {len(row['greedy']):5d} " + " ".join(f"{100 * statistics.mean(row[c]):8.1f}" for c in columns)
              + f" {statistics.mean(diffs):+11.1f} {se:5.1f}")
    macro = {c: statistics.mean(100 * statistics.mean(by_type[k][c]) for k in by_type) for c in columns}
    print(f"{'overall':26s} {len(items):5d} " + " ".join(f"{macro[c]:8.1f}" for c in columns)
          + f" {macro['mbr'] - macro['greedy']:+11.1f}")
    print(f"mbr_num - greedy (MBR on numeric items only): {macro['mbr_num'] - macro['greedy']:+.1f}")


if __name__ == "__main__":
    main()
