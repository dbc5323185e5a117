"""How a demo model's sampled answers score against its greedy ones, on the demo's held-out items.

GRPO learns from groups of answers sampled at the training temperature, while the demo scores
greedy answers. This prints, for a model of a ``spatialrl demo`` run (``sft`` by default: the model
RL starts from), the macro score of its greedy answers and of N independent sets of sampled
answers (temperature T, no top-k/top-p) on the first ITEMS of the demo's held-out subset, overall
and per question type. When samples score far below greedy, a group's best answers are mostly
the greedy answer itself and RL mostly sharpens what greedy already says (docs/demo.md, "Does RL
move the held-out score at all?")::

    .venv/bin/python benchmarks/demo_sampling.py runs/demo --items 680 --samples 4
    .venv/bin/python benchmarks/demo_sampling.py runs/demo --model grpo/final --temperature 0.7
"""

from __future__ import annotations

import argparse
import json
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
    metrics_path = args.run / "metrics.json"
    if not metrics_path.exists():
        sys.exit(f"demo_sampling: no {metrics_path}; run `spatialrl demo --out {args.run}` to the end first")
    model_dir = args.run / args.model
    if not (model_dir / "config.json").exists():
        sys.exit(f"demo_sampling: no model at {model_dir} (--model is relative to RUN, e.g. sft, control, grpo/final)")

    import torch
    from transformers import GenerationConfig

    from spatialrl.demo import _scores, eval_subset
    from spatialrl.eval.benchmarks import get_benchmark, score_predictions
    from spatialrl.eval.runner import generate_batch
    from spatialrl.models import load_model_and_processor

    torch.set_num_threads(args.threads)
    config = json.loads(metrics_path.read_text()).get("config", {})
    benchmark = get_benchmark("world")
    items = eval_subset(benchmark.load(str(args.run / "data"), split="test"), args.items,
                        int(config.get("data_seed", 0)), benchmark.type_of)
    model, processor = load_model_and_processor(str(model_dir), dtype=torch.float32, device="cpu")
    tokenizer = getattr(processor, "tokenizer", processor)
    max_new_tokens = int(config.get("eval_max_new_tokens", 40))

    def answers(sample: bool, seed: int) -> dict[str, str]:
        # greedy: the runner's own config, as the demo scores; sampled: GRPO's (TRL's top_k 0, top_p 1)
        generation = GenerationConfig(
            do_sample=True, temperature=args.temperature, top_k=0, top_p=1.0, num_beams=1,
            max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            eos_token_id=model.generation_config.eos_token_id or tokenizer.eos_token_id) if sample else None
        torch.manual_seed(seed)
        out: dict[str, str] = {}
        for start in range(0, len(items), 32):
            batch = items[start:start + 32]
            texts = generate_batch(model, processor, [benchmark.prompt(item) for item in batch],
                                   [list(item.images) for item in batch], max_new_tokens, generation_config=generation)
            out.update({item.id: text for item, text in zip(batch, texts)})
        return out

    rows = [("greedy", _scores(score_predictions(benchmark, items, answers(False, 0))))]
    for i in range(args.samples):
        rows.append((f"sample {i}", _scores(score_predictions(benchmark, items, answers(True, i)))))
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
