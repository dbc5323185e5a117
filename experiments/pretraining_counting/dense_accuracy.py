"""What a checkpoint's image tokens say per patch: category and colour on unseen scenes (issue #6).

    .venv/bin/python experiments/pretraining_counting/dense_accuracy.py CKPT [N_SCENES] [train]

With ``dense_head='code'`` (the recipe's default) the dense stage writes each 14-pixel patch's
class fractions (floor, wall, the 10 categories) and colour fractions into fixed dimensions of
its merged image token, and stages 2-3 keep that loss at ``dense_weight_late``. This reads them
back for both views of N_SCENES scenes of world seed 11 (neither the pretraining nor the
evaluation seed) and prints, over the patches an object covers at least half of, how often the
argmax names its category and its colour, the recall per category and the commonest confusions:
whether the vision tower can tell a chair from a cabinet, which a per-category count needs and a
colour lookup does not. With ``train`` it reads the first N_SCENES training scenes of the
recipe (world seed 7) instead: the same figures on views the checkpoint was trained on.
"""

import sys

if sys.argv[1:2] in (["-h"], ["--help"]):  # usage before the heavy imports
    sys.exit(print(__doc__))

import collections

import numpy as np
import torch

from spatialrl.models import load_model_and_processor
from spatialrl.train.pretrain.data import CLASS_NAMES, COLOR_NAMES, make_views, patchify

if len(sys.argv) < 2:
    sys.exit(__doc__)
torch.set_num_threads(1)
path, n_scenes = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 100
model, proc = load_model_and_processor(path, dtype=torch.float32)
model.eval()
on_train = len(sys.argv) > 3 and sys.argv[3] == "train"
views = [v for i in range(n_scenes) for v in (make_views(i, 7, 112) if on_train else make_views(200_000 + i, 11, 112))]
ip = proc.image_processor
images = np.stack([v.image for v in views])
side = images.shape[1] // 14
n_cls, n_col = len(CLASS_NAMES), len(COLOR_NAMES)
block = n_cls + n_col + 1 + 8 + 2  # per sub-patch: class, colour, depth, 8 object targets, position
cat_right = col_right = covered = 0
recall = collections.defaultdict(lambda: [0, 0])
confused = collections.Counter()
with torch.no_grad():
    for start in range(0, len(views), 32):
        chunk = images[start:start + 32]
        pixels = torch.from_numpy(patchify(chunk, ip.image_mean, ip.image_std))
        grid = torch.tensor([[1, side, side]] * len(chunk))
        tokens = model.model.visual(pixels, grid_thw=grid).pooler_output
        code = tokens[:, : 4 * block].reshape(len(chunk), -1, block)  # (images, patches in patch order, block)
        pred_cls = code[..., :n_cls].argmax(-1).numpy()
        pred_col = code[..., n_cls:n_cls + n_col].argmax(-1).numpy()
        for j, view in enumerate(views[start:start + 32]):
            truth_cls, truth_col = view.dense["cls"], view.dense["col"]
            on_object = (truth_cls.argmax(1) >= 2) & (truth_cls.max(1) >= 0.5)
            for p in np.nonzero(on_object)[0]:
                t_cls, t_col = int(truth_cls[p].argmax()), int(truth_col[p].argmax())
                covered += 1
                cat_right += int(pred_cls[j, p] == t_cls)
                col_right += int(pred_col[j, p] == t_col)
                recall[CLASS_NAMES[t_cls]][0] += int(pred_cls[j, p] == t_cls)
                recall[CLASS_NAMES[t_cls]][1] += 1
                if pred_cls[j, p] != t_cls:
                    confused[(CLASS_NAMES[t_cls], CLASS_NAMES[int(pred_cls[j, p])])] += 1
print(f"{len(views)} {'training' if on_train else 'unseen'} views; {covered} patches at least half covered by one object")
print(f"category right: {cat_right / covered:.3f}   colour right: {col_right / covered:.3f}")
print("per category (recall over its patches): " + ", ".join(
    f"{name} {r / max(1, n):.2f} ({n})" for name, (r, n) in sorted(recall.items())))
print("most confused (truth -> read): " + ", ".join(f"{a}->{b} {n}" for (a, b), n in confused.most_common(8)))
