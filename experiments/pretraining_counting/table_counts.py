"""Per-category counts read from a checkpoint's image tokens (issue #6, ``scene_table=true``).

    .venv/bin/python experiments/pretraining_counting/table_counts.py CKPT [N_SCENES]

With ``dense_head='code'`` and ``scene_table=true`` the dense stage writes every image's
per-category counts (times ``CODE_SCALE``) into dimensions 128-137 of each merged image token.
This reads them back (mean over the image's tokens, rounded) for both views of N_SCENES scenes
of world seed 11 (neither the pretraining nor the evaluation seed) and prints the share of the
categories present whose count is right, and the same for counts of 2 or more.
"""

import sys

if sys.argv[1:2] in (["-h"], ["--help"]):  # usage before the heavy imports
    sys.exit(print(__doc__))

import numpy as np
import torch

from spatialrl.models import load_model_and_processor
from spatialrl.train import pretrain as P
from spatialrl.train.pretrain.data import make_views, patchify

if len(sys.argv) < 2:
    sys.exit(__doc__)
torch.set_num_threads(1)
path, n_scenes = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 150
model, proc = load_model_and_processor(path, dtype=torch.float32)
model.eval()
views = [v for i in range(n_scenes) for v in make_views(200_000 + i, 11, 112)]
ip = proc.image_processor
images = np.stack([v.image for v in views])
side = images.shape[1] // 14
right = total = right_many = total_many = 0
with torch.no_grad():
    for start in range(0, len(views), 32):
        chunk = images[start:start + 32]
        pixels = torch.from_numpy(patchify(chunk, ip.image_mean, ip.image_std))
        grid = torch.tensor([[1, side, side]] * len(chunk))
        tokens = model.model.visual(pixels, grid_thw=grid).pooler_output.reshape(len(chunk), (side // 2) ** 2, -1)
        counts = tokens[:, :, 128:138].mean(1) / P.CODE_SCALE
        for j, view in enumerate(views[start:start + 32]):
            truth = view.dense["counts"]
            for k in np.nonzero(truth)[0]:
                ok = round(float(counts[j, k])) == int(truth[k])
                right, total = right + ok, total + 1
                if truth[k] >= 2:
                    right_many, total_many = right_many + ok, total_many + 1
print(f"counts right for {right / total:.3f} of {total} categories present; for counts >= 2: "
      f"{right_many / max(1, total_many):.3f} of {total_many}")
