"""What checkpoints answer on chosen held-out question types (issue #6 diagnostics).

    .venv/bin/python experiments/pretraining_answers/answer_table.py DATA TYPES CKPT [CKPT ...]

DATA: a world build (``spatialrl data build --out DATA --seed 0 --scenes 1000`` is the model
card's held-out set); TYPES: comma-separated question types (e.g.
``object_count,rel_direction,closer_to_camera``). For each checkpoint it prints the world
scorer's score per type and per template (``metrics.by_template``: rel_direction's left/right,
in front/behind and quadrant questions apart), then per type the most frequent
(truth, answer) pairs, which show a model that always gives one answer. Both are cut at the
first comma, so an open-ended left/right sentence counts as its "Yes" / "No".
"""

import sys

if sys.argv[1:2] in (["-h"], ["--help"]):  # usage before the heavy imports
    sys.exit(print(__doc__))
import collections

import torch

from spatialrl.answers import extract_answer
from spatialrl.eval.benchmarks import get_benchmark, score_predictions
from spatialrl.eval.pretrain_eval import _generate

if len(sys.argv) < 4:
    sys.exit(__doc__)
torch.set_num_threads(1)
data, types, paths = sys.argv[1], sys.argv[2].split(","), sys.argv[3:]
bench = get_benchmark("world")
items = [it for it in bench.load(data, split="test") if bench.type_of(it) in types]
for path in paths:
    preds = _generate(path, items)
    report = score_predictions(bench, items, {k: {"prediction": v} for k, v in preds.items()})
    print(path, {k: round(v, 1) for k, v in report["per_type"].items()},
          {qt: {t: round(v, 1) for t, v in by.items()} for qt, by in report["metrics"].get("by_template", {}).items()})
    for qt in types:
        pairs = collections.Counter((str(it.answer).split(",")[0], (extract_answer(preds[it.id]) or "?").split(",")[0].strip())
                                    for it in items if bench.type_of(it) == qt)
        print(f"  {qt} (truth, answer): n", *(f"{t}->{a}: {n}" for (t, a), n in pairs.most_common(12)))
