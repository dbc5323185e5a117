"""Does the shipped tiny model depend on the newline between question and format instruction?

SVQA-R1 Table 9 joins the question and the <think>/<answer> instruction with a space; the tiny
model (spatialrl/assets/tiny-spatial-vlm) was pretrained with a newline. This scores the shipped
checkpoint on the same held-out items (every question, both views, of the first N test scenes of
the pretraining evaluation build), greedy, once per separator, and prints both reports.

    .venv/bin/python experiments/prompt_separator/prompt_separator.py --scenes 12

Measured (2-core CPU, one torch thread, greedy, float32), overall score in percent:

| items | newline (pretrained form) | space (Table 9) | completions that changed |
|---|---:|---:|---:|
| fixed subset, 12 test scenes, 390 items (the card's reproduced subset) | 56.48 | 52.38 | 75 of 390 |
| whole held-out split, 100 test scenes, 3288 items | 56.46 | 55.44 | 618 of 3288 |

On the whole split the loss comes from open_ended_relation (63.0 -> 55.4), open_ended_numeric
(58.2 -> 53.4), vertical_distance, room_size and rel_direction_allocentric (-3.0 to -3.5 each).
The shipped checkpoint depends on the newline, so the space cannot become its prompt
without re-pretraining, and the card's fixed-subset score would no longer reproduce.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    import torch

    from spatialrl.prompts import FORMAT_INSTRUCTION
    from spatialrl.eval.benchmarks import get_benchmark, score_predictions
    from spatialrl.models.generate import generate_batch
    from spatialrl.models import load_model_and_processor
    from spatialrl.eval.pretrain_eval import BATCH_SIZE, MAX_NEW_TOKENS, Subset, subset_items

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=12)
    parser.add_argument("--model", default=str(ROOT / "spatialrl" / "assets" / "tiny-spatial-vlm"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    items = subset_items(Subset(scenes=args.scenes))
    benchmark = get_benchmark("world")
    model, processor = load_model_and_processor(args.model, dtype=torch.float32)
    out = {}
    for name, sep in (("newline", "\n"), ("space", " ")):
        # make_item builds the prompt as question + separator + instruction; rebuild it per separator
        variant = [dataclasses.replace(it, prompt=it.prompt.rsplit(FORMAT_INSTRUCTION, 1)[0].rstrip("\n ") + sep
                                       + FORMAT_INSTRUCTION) for it in items]
        start = time.perf_counter()
        preds = {}
        for i in range(0, len(variant), BATCH_SIZE):
            batch = variant[i:i + BATCH_SIZE]
            texts = generate_batch(model, processor, [benchmark.prompt(it) for it in batch],
                                   [list(it.images) for it in batch], MAX_NEW_TOKENS)
            preds.update({it.id: t for it, t in zip(batch, texts)})
        report = score_predictions(benchmark, variant, preds)
        out[name] = {"overall": report["overall"], "per_type": report["per_type"],
                     "seconds": round(time.perf_counter() - start, 1), "items": len(variant),
                     "preds": preds}
        print(f"{name}: overall {report['overall']:.2f} on {len(variant)} items ({out[name]['seconds']} s)", flush=True)
    same = sum(out["newline"]["preds"][k] == out["space"]["preds"][k] for k in out["newline"]["preds"])
    print(f"identical completions: {same} of {len(items)}")
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "preds"} for k, v in out.items()}, indent=1))


if __name__ == "__main__":
    main()
