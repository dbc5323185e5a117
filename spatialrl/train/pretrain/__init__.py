"""``spatialrl pretrain``: a tiny Qwen2.5-VL that perceives space, grounded in the world's exact truth.

Real users start RL from a pretrained VLM (e.g. Qwen2.5-VL-3B-Instruct); on a CPU the start is
this tiny model. Trained only through answer tokens, a tiny VLM ignores the image (docs/pretraining.md),
so the recipe feeds it the synthetic world's dense ground truth first. Stages (fractions of the
budget, :class:`PretrainConfig`):

1. ``dense``: the vision tower (ViT + merger) alone, with small linear heads on the merged
   patch features -- the 16 tokens the language model sees -- predicting, for each of the 2 x 2
   patches under a token, the renderer's exact per-patch truth (:mod:`.data`): class
   and colour fractions (instance map), log depth (depth map), the covering object's centre
   (image position, camera coordinates, log depth) and metric size, and the patch position.
2. ``ground``: the whole model on grounding texts that tie the image to words (objects listed
   left to right and near to far, an object's centre as pixel coordinates, the number of
   objects), some world QA, and the dense losses.
3. ``mix``: every QA family of the world (``spatialrl data build``'s questions) mixed with
   grounding texts, dense losses still on at a lower weight.

In stages 2-3 auxiliary losses tell the language model where to look (docs/experiments/pretraining.md has
what each measured): the state at each object name must predict that object's properties
(``mention_weight``); one head must look from each object name at the image tokens where the
object shows (``attend_weight``); from the positions that predict the answer, heads of the next
layer must look at the object names (``answer_attend_weight``: any of them, or with
``answer_attend_mode='ordered'`` head 0 at the first and head 1 at the second, and with
``answer_attend_options`` heads 2-3 at options A and B, or head 2 at the correct option);
optionally the state there must predict
the first object's properties minus the second's (``compare_weight``). ``init`` continues from
a checkpoint instead of random weights.

What the model needs to see at all (docs/pretraining.md): the processor's ``image_mean``/``image_std``
are the world's pixel statistics, so the grey room normalises to about 0 and objects stand out
(saved with the checkpoint: RL and eval see the same normalisation); learning rates per part
(vision tower, language model, heads) with warm-up and cosine decay; one image's vision features
shared by several questions per step. Diagnostics: every ``eval_every`` steps the held-out answer
loss with the true images and with images shuffled across the batch (their gap is the evidence
that the answer depends on the image) and every step the vision-tower gradient norm; at
``ignore_check`` of the budget a gap below ``min_image_gap`` stops the run with
:class:`ImageIgnoredError`.

The saved model is a plain Qwen2.5-VL checkpoint (heads dropped), loadable with
``AutoModelForImageTextToText`` once ``spatialrl`` is imported. The command then scores it on the
world's held-out split and writes a model card (``README.md``) with the scores beside the
constant and majority baselines: that is evaluation, :mod:`spatialrl.eval.pretrain_eval`.

Modules, in the order the data flows:

- :mod:`.config`: :class:`PretrainConfig`, the recipe;
- :mod:`.data`: scenes of the world as views with their exact dense truth, grounding texts and QA;
- :mod:`.model`: the fresh tiny model and the auxiliary heads;
- :mod:`.batches`: the bank of tokenised views, the sampler and the batch layout;
- :mod:`.losses`: dense, answer, mention, attention and comparison losses, held-out diagnostics;
- :mod:`.loop`: :func:`pretrain`, the stages and their schedule;
- :mod:`.checkpoint`: the saved checkpoint, written atomically;
- :mod:`.cli`: the command's recipe flags.
"""

from __future__ import annotations

from spatialrl.train.pretrain.batches import Bank, Sampler, _answer_positions, _collate, make_bank, target_text
from spatialrl.train.pretrain.config import PretrainConfig
from spatialrl.train.pretrain.losses import CODE_SCALE
from spatialrl.train.pretrain.loop import ImageIgnoredError, _pretrain, pretrain
from spatialrl.train.pretrain.model import WORLD_IMAGE_MEAN, WORLD_IMAGE_STD, AuxHeads, build_model

# The scripts under experiments/ read Bank, _collate, _answer_positions, CODE_SCALE and _pretrain here.
__all__ = [
    "AuxHeads",
    "Bank",
    "ImageIgnoredError",
    "PretrainConfig",
    "Sampler",
    "WORLD_IMAGE_MEAN",
    "WORLD_IMAGE_STD",
    "build_model",
    "make_bank",
    "pretrain",
    "target_text",
]
