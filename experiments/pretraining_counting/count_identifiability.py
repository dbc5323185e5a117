"""How well can *any* model count the world's categories from what the image shows? (issue #6)

    .venv/bin/python experiments/pretraining_counting/count_identifiability.py DATA [SPLIT] [NOISE,...] [REPEATS]

DATA: a world build (``spatialrl data build --out DATA --seed 0 --scenes 1000`` is the model
card's held-out set). Every category except ``ball`` (a sphere) is drawn as a plain box, and
the size ranges of several categories overlap (a 0.5 x 0.5 x 1.0 m box can be a chair, a plant
or a cabinet), so a box's category is not always determined by its appearance. For every
``object_count`` question this takes a perfect observer: it knows each clearly or marginally
visible object's exact 3D size (length and depth up to a swap, which a rotation hides) and
shape, and that categories and sizes are drawn uniformly (``spatialrl.world.scene``). It
prints how often the count is determined by that, the Bayes-optimal accuracy (the most
probable count under the posterior over each object's category, at least 1: the world asks
only about a category it shows), and the accuracy of always answering "1": the ceiling on ``object_count`` accuracy for a model that sees only boxes.
NOISE (default ``0.05,0.1,0.2``): the same observer when it reads each side with a log-normal
error of that standard deviation (a median relative error of 0.67 sigma: 0.2 is about 13 %),
averaged over REPEATS (default 5) seeded draws, as a model that estimates sizes does: how
precise the size perception must be for a given counting accuracy.
"""

import sys

if sys.argv[1:2] in (["-h"], ["--help"]):  # usage before the heavy imports
    sys.exit(print(__doc__))

import glob
import json

import numpy as np
import pandas as pd

from spatialrl.world.questions import views_from_render
from spatialrl.world.render import render
from spatialrl.world.scene import CATEGORIES, Scene

if len(sys.argv) < 2:
    sys.exit(__doc__)
data, split = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "test"
noises = [float(x) for x in (sys.argv[3] if len(sys.argv) > 3 else "0.05,0.1,0.15,0.2,0.3").split(",")]
repeats = int(sys.argv[4]) if len(sys.argv) > 4 else 5
files = sorted(glob.glob(f"{data}/data/{split}-*.parquet"))
if not files:
    sys.exit(f"count_identifiability: no {data}/data/{split}-*.parquet; build one with `spatialrl data build --out DIR`")
frame = pd.concat([pd.read_parquet(p) for p in files])
items = frame[frame.question_type == "object_count"]


def likelihood(size: tuple[float, float, float], shape: str) -> np.ndarray:
    """p(size, shape | category) up to a shared constant: uniform density over the category's
    box of sizes (either footprint order), zero where the size or shape does not fit."""
    out = []
    for spec in CATEGORIES.values():
        if spec.shape != shape:
            out.append(0.0)
            continue
        if spec.shape == "sphere":
            fits = spec.size_min[0] - 1e-6 <= size[0] <= spec.size_max[0] + 1e-6
            out.append(1.0 / (spec.size_max[0] - spec.size_min[0]) if fits else 0.0)
            continue
        a, b, h = size
        fits = spec.contains_size((a, b, h), 6e-3) or spec.contains_size((b, a, h), 6e-3)
        volume = np.prod([hi - lo for lo, hi in zip(spec.size_min, spec.size_max)])
        out.append(1.0 / volume if fits else 0.0)
    return np.array(out)


rng = np.random.default_rng(0)
SAMPLES = {name: np.log(rng.uniform(spec.size_min, spec.size_max, size=(4000, 3))) for name, spec in CATEGORIES.items()}


def noisy_likelihood(observed: np.ndarray, shape: str, sigma: float) -> np.ndarray:
    """p(observed log size | category) with a log-normal reading error ``sigma`` per side, by
    Monte Carlo over the category's uniform sizes (either footprint order)."""
    out = []
    for name, spec in CATEGORIES.items():
        if spec.shape != shape:
            out.append(0.0)
            continue
        sizes = SAMPLES[name][:, :1] if shape == "sphere" else SAMPLES[name]
        obs = observed[: sizes.shape[1]]
        direct = np.exp(-0.5 * (((sizes - obs) / sigma) ** 2).sum(1))
        swapped = np.exp(-0.5 * (((sizes[:, [1, 0, 2]] - obs) / sigma) ** 2).sum(1)) if shape != "sphere" else direct
        out.append(float((direct + swapped).mean()))
    return np.array(out)


names = list(CATEGORIES)
noisy_right = {sigma: 0.0 for sigma in noises}
determined = bayes = ones = 0.0
cache: dict[str, list] = {}
for _, row in items.iterrows():
    category = json.loads(row.meta)["category"]
    truth = int(row.answer)
    if row.scene_json not in cache:
        scene = Scene.from_json(row.scene_json)
        result = render(scene, int(scene.camera.width), int(scene.camera.height))
        views = views_from_render(result)
        cache[row.scene_json] = [(o, v) for o, v in zip(scene.objects, views) if v.box is not None]
    # per visible object: the probability that it is of the counted category
    probs = []
    for obj, _ in cache[row.scene_json]:
        like = likelihood(tuple(obj.size), CATEGORIES[obj.category].shape)
        post = like / like.sum()
        probs.append(post[names.index(category)])
    dist = np.array([1.0])  # distribution of the count (a Poisson-binomial)
    for p in probs:
        dist = np.convolve(dist, [1 - p, p])
    determined += float(all(p in (0.0, 1.0) for p in probs))
    bayes += float(int(dist[1:].argmax()) + 1 == truth)
    ones += float(truth == 1)
    for sigma in noises:
        for _ in range(repeats):
            dist = np.array([1.0])
            for obj, _ in cache[row.scene_json]:
                observed = np.log(np.asarray(obj.size)) + rng.normal(0.0, sigma, 3)
                like = noisy_likelihood(observed, CATEGORIES[obj.category].shape, sigma)
                p = like[names.index(category)] / max(like.sum(), 1e-300)
                dist = np.convolve(dist, [1 - p, p])
            noisy_right[sigma] += float(int(dist[1:].argmax()) + 1 == truth) / repeats
n = len(items)
print(f"{n} object_count items ({split}); count determined by the boxes: {determined / n:.1%}")
print(f"answer 'the most probable count given the boxes' (Bayes-optimal): {bayes / n:.1%} right")
for sigma in noises:
    print(f"  the same, each side read with a log-normal error of sigma {sigma:g} (median {sigma * 0.674:.0%}): "
          f"{noisy_right[sigma] / n:.1%} right (mean of {repeats} draws)")
print(f"answer '1': {ones / n:.1%}")
