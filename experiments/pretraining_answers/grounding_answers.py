"""What a pretrained checkpoint answers to the pretraining's grounding texts on unseen scenes.

    .venv/bin/python experiments/pretraining_answers/grounding_answers.py CKPT [SCENES] [WORLD_SEED] [EXTRA_KINDS]

Draws SCENES (default 60) scenes of world seed WORLD_SEED (default 11, which no pretraining run
uses), asks every grounding text of both views (objects left to right and near to far, colours,
kinds, the largest object, an object's centre, the number of visible objects; see
``spatialrl.train.pretrain.data.grounding_texts``) and prints, per kind, the share answered
exactly, then for ``count_all`` and ``count_each`` the (truth, answer) pairs. EXTRA_KINDS
(comma-separated, default all of ``EXTRA_GROUNDING_KINDS``; ``none`` for none) adds the opt-in
kinds (direction words, balanced per-category counts). It separates "cannot count at all"
from "cannot count one category" (the world's object_count questions), docs/experiments/pretraining.md.
"""

from __future__ import annotations

import sys

if sys.argv[1:2] in (["-h"], ["--help"]):  # usage before the heavy imports
    sys.exit(print(__doc__))

import collections

import torch
from PIL import Image

from spatialrl.answers import extract_answer
from spatialrl.prompts import prompt_text
from spatialrl.eval.benchmarks.base import EvalItem
from spatialrl.train.pretrain.data import EXTRA_GROUNDING_KINDS, make_views
from spatialrl.eval.pretrain_eval import _generate

if len(sys.argv) < 2:
    sys.exit(__doc__)
torch.set_num_threads(1)
ckpt = sys.argv[1]
scenes = int(sys.argv[2]) if len(sys.argv) > 2 else 60
world_seed = int(sys.argv[3]) if len(sys.argv) > 3 else 11
extra = EXTRA_GROUNDING_KINDS if len(sys.argv) <= 4 else tuple(k for k in sys.argv[4].split(",") if k != "none")
if set(extra) - set(EXTRA_GROUNDING_KINDS):
    sys.exit(f"EXTRA_KINDS: unknown kind(s) {sorted(set(extra) - set(EXTRA_GROUNDING_KINDS))}; use some of "
             f"{', '.join(EXTRA_GROUNDING_KINDS)} (comma-separated) or none")

items, truth = [], {}
for index in range(scenes):
    for view in make_views(index, world_seed, 112, extra):
        image = Image.fromarray(view.image)
        for k, (kind, question, answer) in enumerate(view.texts):
            item_id = f"{index}-{view.view}-{k}"
            items.append(EvalItem(id=item_id, question_type=kind, prompt=prompt_text(question), answer=answer,
                                  images=[image], options=[], meta={}))
            truth[item_id] = (kind, answer)
predictions = _generate(ckpt, items)

def pairs_in_order(answer: str, said: str) -> tuple[int, int]:
    """(pairs in the true order, pairs of names that both answers list once)."""
    true_names, said_names = answer.split(", "), said.split(", ")
    shared = [n for n in true_names if true_names.count(n) == 1 and said_names.count(n) == 1]
    rank = {n: said_names.index(n) for n in shared}
    pairs = [(a, b) for i, a in enumerate(shared) for b in shared[i + 1:]]
    return sum(1 for a, b in pairs if rank[a] < rank[b]), len(pairs)


exact: dict[str, list[int]] = collections.defaultdict(list)
ordered: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
count_pairs: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
for item_id, (kind, answer) in truth.items():
    said = (extract_answer(predictions.get(item_id)) or "").strip()
    exact[kind].append(int(said == answer))
    if kind in ("left_to_right", "near_to_far"):
        right, total = pairs_in_order(answer, said)
        ordered[kind][0] += right
        ordered[kind][1] += total
    if kind in ("count_all", "count_each"):
        count_pairs[kind][(answer, said)] += 1
print(f"{ckpt}: grounding texts of {scenes} scenes of world seed {world_seed} (both views), exact answers")
for kind in sorted(exact):
    print(f"  {kind:14s} n={len(exact[kind]):4d}  {100 * sum(exact[kind]) / len(exact[kind]):5.1f} %")
for kind, (right, total) in sorted(ordered.items()):
    print(f"  {kind:14s} {total:4d} object pairs named in both, {100 * right / max(total, 1):5.1f} % in the true order")
for kind, pairs in sorted(count_pairs.items()):
    print(f"{kind} (truth, answer): count")
    for (answer, said), n in sorted(pairs.items(), key=lambda kv: (int(kv[0][0]), -kv[1])):
        print(f"  {answer:>3s} -> {said[:12]:12s} {n}")
