"""How often objects of one category share their main image token (issue #6 counting diagnostic).

    .venv/bin/python experiments/pretraining_counting/token_sharing.py [SCENES] [WORLD_SEED]

The tiny model sees a 112-pixel image as 16 merged tokens (2 x 2 patches of 14 pixels). For
every category a counting question could ask about (``SceneContext.countable_categories``) in
SCENES (default 300) scenes of WORLD_SEED (default 11), it prints how many have 1, 2, 3 or more
clearly visible objects, and for the categories with two or more objects how many have two
that share their main token (the token holding the largest share of the object's visible
pixels). A count that 16 tokens cannot separate would show up here.
"""

from __future__ import annotations

import sys

if sys.argv[1:2] in (["-h"], ["--help"]):  # usage before the heavy imports
    sys.exit(print(__doc__))

import collections

import numpy as np

from spatialrl.data.build import BuildConfig, scene_id_for
from spatialrl.train.pretrain.data import token_shares
from spatialrl.world import questions as Q
from spatialrl.world.render import render
from spatialrl.world.scene import sample_scene

scenes = int(sys.argv[1]) if len(sys.argv) > 1 else 300
world_seed = int(sys.argv[2]) if len(sys.argv) > 2 else 11
cfg = BuildConfig(scenes=1, seed=world_seed, image_size=112)
counts: collections.Counter = collections.Counter()
multi = shared = 0
for index in range(scenes):
    scene_seed, _ = np.random.SeedSequence(cfg.seed, spawn_key=(index,)).spawn(2)
    scene = sample_scene(np.random.default_rng(scene_seed), scene_id_for(cfg.seed, index), tuple(cfg.objects))
    result = render(scene, cfg.image_size)
    ctx = Q.SceneContext(scene, Q.views_from_render(result), result.camera)
    for category in ctx.countable_categories():
        n = ctx.count(category)
        counts[min(n, 4)] += 1
        if n < 2:
            continue
        members = [i for i in range(ctx.n) if ctx.categories[i] == category and ctx.clear[i]]
        main_tokens = [int(np.argmax(token_shares(result.instance, [i]))) for i in members]
        multi += 1
        shared += len(set(main_tokens)) < len(main_tokens)
print(f"{scenes} scenes of world seed {world_seed}: countable categories with 1 / 2 / 3 / 4+ objects: "
      f"{counts[1]} / {counts[2]} / {counts[3]} / {counts[4]}")
print(f"categories with 2+ objects: {multi}; two of them share their main token in {shared}")
