"""What a ``think=option`` checkpoint says before its letter (issue #6 diagnostic).

    .venv/bin/python experiments/pretraining_answers/think_options.py CKPT DATA [TYPES]

DATA: a world build (``spatialrl data build --out DATA --seed 0 --scenes 1000`` is the model
card's held-out set); TYPES: comma-separated question types with options (default
``rel_direction,closer_to_camera``). A checkpoint pretrained with ``--set think=option`` writes
the text of the option it picks inside ``<think>`` and then a letter. Per type and template
this prints how often the think text is one of the options, how often it is the correct one,
how often the answer picks the option it wrote (its letter, or with ``think=option_text`` its
text; read with the scorer's ``parse_choice``), and how often the answer is right: which of the
two hops (the comparison in words, the word to its answer) fails.
"""

from __future__ import annotations

import sys

if sys.argv[1:2] in (["-h"], ["--help"]):  # usage before the heavy imports
    sys.exit(print(__doc__))

import collections
import re

import torch

from spatialrl.answers import extract_answer, parse_choice
from spatialrl.eval.benchmarks import get_benchmark
from spatialrl.eval.pretrain_eval import _generate

THINK = re.compile(r"<think>(.*?)</think>", re.S)

if len(sys.argv) < 3:
    sys.exit(__doc__)
torch.set_num_threads(1)
ckpt, data = sys.argv[1], sys.argv[2]
types = sys.argv[3].split(",") if len(sys.argv) > 3 else ["rel_direction", "closer_to_camera"]
benchmark = get_benchmark("world")
items = [it for it in benchmark.load(data, split="test") if benchmark.type_of(it) in types and it.options]
predictions = _generate(ckpt, items)

tally: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
for item in items:
    text = predictions.get(item.id) or ""
    match = THINK.search(text)
    think = match.group(1).strip() if match else ""
    chosen = parse_choice(extract_answer(text) or "", item.options)
    row = tally[f"{benchmark.type_of(item)}/{item.meta.get('template')}"]
    row["n"] += 1
    row["think is an option"] += think in item.options
    row["think right"] += think == item.options[item.meta["answer_index"]]
    row["answer is its think"] += think in item.options and chosen == item.options.index(think)
    row["answer right"] += chosen is not None and chosen == item.meta["answer_index"]
print(f"{ckpt} on {len(items)} held-out items of {data}")
for key in sorted(tally):
    row = tally[key]
    print(f"  {key:30s} n={row['n']:4d}  " + "  ".join(
        f"{name} {row[name]}" for name in ("think is an option", "think right", "answer is its think", "answer right")))
