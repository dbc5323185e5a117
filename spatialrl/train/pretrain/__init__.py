"""``spatialrl pretrain``: a tiny Qwen2.5-VL that perceives space, grounded in the world's exact truth.

Real users start RL from a pretrained VLM (e.g. Qwen2.5-VL-3B-Instruct); on a CPU the start is
this tiny model. Trained only through answer tokens, a tiny VLM ignores the image (PLATFORM.md),
so the recipe feeds it the synthetic world's dense ground truth first. Stages (fractions of the
budget, :class:`PretrainConfig`):

1. ``dense``: the vision tower (ViT + merger) alone, with small linear heads on the merged
   patch features -- the 16 tokens the language model sees -- predicting, for each of the 2 x 2
   patches under a token, the renderer's exact per-patch truth (:mod:`.pretrain_data`): class
   and colour fractions (instance map), log depth (depth map), the covering object's centre
   (image position, camera coordinates, log depth) and metric size, and the patch position.
2. ``ground``: the whole model on grounding texts that tie the image to words (objects listed
   left to right and near to far, an object's centre as pixel coordinates, the number of
   objects), some world QA, and the dense losses.
3. ``mix``: every QA family of the world (``spatialrl data build``'s questions) mixed with
   grounding texts, dense losses still on at a lower weight.

In stages 2-3 auxiliary losses tell the language model where to look (docs/pretraining.md has
what each measured): the state at each object name must predict that object's properties
(``mention_weight``); one head must look from each object name at the image tokens where the
object shows (``attend_weight``); from the positions that predict the answer, heads of the next
layer must look at the object names (``answer_attend_weight``: any of them, or with
``answer_attend_mode='ordered'`` head 0 at the first and head 1 at the second, and with
``answer_attend_options`` heads 2-3 at options A and B, or head 2 at the correct option);
optionally the state there must predict
the first object's properties minus the second's (``compare_weight``). ``init`` continues from
a checkpoint instead of random weights.

What the model needs to see at all (PLATFORM.md): the processor's ``image_mean``/``image_std``
are the world's pixel statistics, so the grey room normalises to about 0 and objects stand out
(saved with the checkpoint: RL and eval see the same normalisation); learning rates per part
(vision tower, language model, heads) with warm-up and cosine decay; one image's vision features
shared by several questions per step. Diagnostics: every ``eval_every`` steps the held-out answer
loss with the true images and with images shuffled across the batch (their gap is the evidence
that the answer depends on the image) and every step the vision-tower gradient norm; at
``ignore_check`` of the budget a gap below ``min_image_gap`` stops the run with
:class:`ImageIgnoredError`.

The saved model is a plain Qwen2.5-VL checkpoint (heads dropped), loadable with
``AutoModelForImageTextToText`` once ``spatialrl`` is imported; ``--eval`` scores it on the
world's held-out split and writes a model card (``README.md``) with the scores beside the
constant and majority baselines (:mod:`spatialrl.eval.baselines`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spatialrl._fs import replace_dir
from spatialrl.train.sft import OPTION_LINE

HELP = "pretrain a tiny Qwen2.5-VL on the world's dense truth, grounding texts and QA (a start for RL)"

__all__ = [
    "HELP",
    "ImageIgnoredError",
    "PretrainConfig",
    "add_arguments",
    "pretrain",
    "run",
]

SIZES = ("small", "base")
#: ``tiny`` (~0.2 M parameters, hidden 64) exists for tests only: too narrow for the feature code.
CONFIG_SIZES = ("tiny", *SIZES)
THINK_MODES = ("empty", "template", "option", "option_text", "direction_text")
ANSWER_ATTEND_MODES = ("union", "ordered")
ANSWER_ATTEND_OPTIONS = ("", "both", "correct")

#: The world's pixel statistics (mean and std per RGB channel of 100 renders at 112 px, world seed
#: 7, ``spatialrl.train.pretrain.data.make_views``): the grey room normalises to about 0.
WORLD_IMAGE_MEAN = (0.4172, 0.3774, 0.3730)
WORLD_IMAGE_STD = (0.1403, 0.1148, 0.1371)
CLIP_IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)


class ImageIgnoredError(RuntimeError):
    """The model's held-out answers do not depend on the image (see ``min_image_gap``)."""


def _f(default: Any, help: str) -> Any:
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: json.loads(json.dumps(d)), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class PretrainConfig:
    """The pretraining recipe. Every field has a help text (``describe()``); ``__post_init__``
    validates and raises ``ValueError`` naming the field."""

    out: str = _f("", "output directory of the checkpoint (written atomically)")
    size: str = _f("small", "model size: small (~3.9 M parameters) or base (~9 M; slower)")
    seed: int = _f(0, "seeds the weights, the tokenizer corpus and the batch order")
    steps: int | None = _f(None, "optimizer steps of stages 2-3 (exclusive with minutes); reproducible")
    minutes: float | None = _f(None, "wall-clock budget of stages 2-3 in minutes (exclusive with steps)")
    init: str = _f("", "start from this checkpoint (one spatialrl pretrain wrote) instead of random weights: its "
                       "tokenizer, processor and size are kept ('size' is then ignored); empty: a fresh model")
    tokenizer_scenes: int = _f(100, "scenes whose QA text (plus grounding texts) trains the tokenizer")
    world_seed: int = _f(7, "world seed of the training scenes (the held-out evaluation build uses seed 0)")
    scenes: int = _f(3000, "training scenes (each gives an original and a mirrored view)")
    heldout_scenes: int = _f(16, "extra scenes (after the training ones) for the held-out loss diagnostics")
    image_size: int = _f(112, "image side in pixels (a multiple of 28; 112 gives 16 image tokens)")
    images_per_step: int = _f(8, "images per optimizer step (vision tower runs once per image)")
    questions_per_image: int = _f(4, "questions asked of each image in a step (batch = images x questions)")
    dense_steps: int = _f(1500, "stage 1 steps: the vision tower alone on the dense truth (cheap, no language model)")
    dense_images: int = _f(16, "images per stage-1 step")
    ground_frac: float = _f(0.15, "share of the language budget (steps / minutes) for stage 2 (grounding texts)")
    ground_qa_share: float = _f(0.3, "share of QA among the questions of stage 2")
    mix_ground_share: float = _f(0.25, "share of grounding texts among the questions of stage 3")
    type_weights: dict[str, float] = _f({}, "relative sampling weight per QA question type in stages 2-3 (default 1)")
    ground_weights: dict[str, float] = _f({}, "relative sampling weight per grounding text kind in stages 2-3 "
                                              "(default 1), e.g. {\"count_all\": 10}")
    ground_extra: list[str] = _f([], "opt-in grounding text kinds to add to stages 2-3 (a list, or comma-separated): "
                                  "left_or_right / front_or_behind (the direction word of one named object "
                                  "relative to another, both orders; ~5 texts per view each) and count_each "
                                  "(per-category counts, balanced between 1 and more; the world's object_count "
                                  "wording). Texts are drawn uniformly, so all three about halve the share of "
                                  "each default kind (ground_weights rebalances); they also enter the tokenizer "
                                  "corpus and the held-out diagnostic batch")
    lr_vision: float = _f(2e-3, "peak learning rate of the vision tower and merger in stage 1")
    lr_vision_late: float = _f(3e-4, "peak learning rate of the vision tower and merger in stages 2-3")
    lr_llm: float = _f(1e-3, "peak learning rate of the language model (stages 2-3)")
    lr_heads: float = _f(3e-3, "peak learning rate of the auxiliary heads")
    warmup_frac: float = _f(0.03, "share of each stage's budget spent warming up its learning rate")
    min_lr_ratio: float = _f(0.05, "final learning rate as a share of the peak (cosine decay)")
    weight_decay: float = _f(0.01, "AdamW weight decay")
    grad_clip: float = _f(1.0, "gradient norm clip")
    dense_weight_late: float = _f(0.3, "weight of the dense losses in stages 2-3")
    scene_table: bool = _f(False, "with dense_head 'code': also write the scene table (per-category counts, "
                                 "per-category and per-colour object properties) into every token")
    dense_head: str = _f("code", "dense truth read from the tokens by learned linear heads ('linear') or written "
                                 "into their first 128 dimensions by a fixed identity head ('code')")
    mention_layer: int = _f(2, "language-model layer whose hidden state at each object name (and counted category) "
                               "in a question must predict that object's properties (its count): 0 turns it off")
    mention_weight: float = _f(1.0, "weight of the mention-grounding loss")
    attend_weight: float = _f(1.0, "weight of the attention supervision: one head of layer mention_layer must look, "
                                   "from each object name, at the image tokens where that object shows (0: off)")
    answer_attend_think: bool = _f(False, "the answer attention supervision also covers the positions that write "
                                          "the <think> text (with think option / option_text the answer is decided "
                                          "there, where it is otherwise unsupervised)")
    count_sink: bool = _f(False, "the attention supervision of a counted category's word also puts 1/(n+1) on the "
                                 "sequence's first token (a sink), leaving n/(n+1) on the category's image tokens: "
                                 "softmax attention averages the n objects, so without a sink the share that "
                                 "carries n is fixed at 1")
    answer_attend_weight: float = _f(1.0, "weight of the second attention supervision: one head of the layer after "
                                          "mention_layer must look, from the positions that predict the answer, at "
                                          "the object names of the question (0: off)")
    answer_attend_mode: str = _f("union", "what the answer attention supervision asks: 'union' (one head looks at "
                                          "any of the question's object names) or 'ordered' (head 0 at the first "
                                          "named object, head 1 at the second, so a comparison can read both apart)")
    answer_attend_options: str = _f("", "with answer_attend_mode 'ordered', what more heads of that layer look at from "
                                        "the answer positions of a multiple-choice question: 'both' (heads 2 and 3 at "
                                        "the texts of options A and B), 'correct' (head 2 at the correct option's "
                                        "text, whose letter the answer then copies) or '' (nothing)")
    compare_weight: float = _f(0.0, "weight of the comparison loss: at the positions that predict the answer, the "
                                    "state after the layer following mention_layer must predict the first named "
                                    "object's properties minus the second's (questions naming two objects; 0: off)")
    llm_aux_layer: int = _f(-1, "also apply position heads to this language-model layer's image tokens (-1: off)")
    rope_theta: float | None = _f(None, "language-model RoPE base (None: the tiny model's 1e6)")
    mrope_section: list[int] | None = _f(None, "language-model mRoPE split (t, h, w) of head_dim / 2 (None: default)")
    think: str = _f("direction_text",
                    "<think> block of targets: empty ('<think></think>'), template (sft's rationale), option (a "
                    "multiple-choice answer's option text, then its letter), option_text (that text in both blocks: "
                    "the answer names the option by its text) or direction_text (only rel_direction / "
                    "rel_direction_allocentric answer by the option's text, with an empty think; the rest as empty: "
                    "the shipped checkpoint's format, docs/pretraining.md)")
    prompt_separator: str = _f("\n", "between a question and the answer-format instruction (newline: the shipped "
                                     "checkpoint's; SVQA-R1 Table 9 prints a space); recorded in the checkpoint's "
                                     "config.json, which training and evaluation then follow")
    normalize: str = _f("world", "processor normalisation: world (room ~ 0) or clip (Qwen's CLIP mean/std)")
    eval_every: int = _f(100, "steps between held-out diagnostics")
    heldout_samples: int = _f(128, "held-out questions for the true-vs-shuffled loss diagnostic")
    ignore_check: float = _f(0.6, "share of the budget after which a small image gap stops the run")
    min_image_gap: float = _f(0.01, "minimum held-out loss gap (shuffled - true, nats/token) at ignore_check (negative: no check)")
    threads: int = _f(2, "torch CPU threads (2 use both cores here: 1.68x faster per step than 1 on an idle machine)")
    save_dtype: str = _f("float16", "dtype of the saved weights: float16 or float32")
    log_every: int = _f(10, "steps between log lines in pretrain_log.jsonl")

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> None:
            raise ValueError(f"PretrainConfig.{name} {why}; got {getattr(self, name)!r}")

        if self.size not in CONFIG_SIZES:
            bad("size", f"must be one of {SIZES} (or 'tiny' in tests)")
        if (self.steps is None) == (self.minutes is None):
            raise ValueError("PretrainConfig.steps / minutes: give exactly one (a step count, or a wall-clock "
                             f"budget in minutes); got steps={self.steps!r}, minutes={self.minutes!r}")
        if self.steps is not None and self.steps < 1:
            bad("steps", "must be >= 1")
        if self.minutes is not None and not self.minutes > 0:
            bad("minutes", "must be > 0")
        for name in ("seed", "world_seed"):
            if getattr(self, name) < 0:
                bad(name, "must be >= 0")
        if self.scenes < 1:
            bad("scenes", "must be >= 1")
        if self.tokenizer_scenes < 1:
            bad("tokenizer_scenes", "must be >= 1")
        if self.heldout_scenes < 1:
            bad("heldout_scenes", "must be >= 1")
        if self.image_size < 56 or self.image_size % 28:
            bad("image_size", "must be a multiple of 28 and at least 56")
        if self.dense_steps < 0:
            bad("dense_steps", "must be >= 0")
        for name in ("images_per_step", "questions_per_image", "dense_images", "eval_every", "heldout_samples",
                     "threads", "log_every"):
            if getattr(self, name) < 1:
                bad(name, "must be >= 1")
        for name in ("ground_frac", "ground_qa_share", "mix_ground_share", "warmup_frac", "min_lr_ratio",
                     "ignore_check"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                bad(name, "must be in [0, 1]")
        for name in ("lr_vision", "lr_vision_late", "lr_llm", "lr_heads", "grad_clip"):
            if not getattr(self, name) > 0:
                bad(name, "must be > 0")
        if self.mention_layer < 0:
            bad("mention_layer", "must be >= 0 (0: off)")
        if self.init and not (Path(self.init) / "config.json").is_file():
            bad("init", "is not a checkpoint directory (no config.json); give a directory spatialrl pretrain wrote, "
                "or leave it empty for a fresh model")
        if self.answer_attend_mode not in ANSWER_ATTEND_MODES:
            bad("answer_attend_mode", f"must be one of {ANSWER_ATTEND_MODES}")
        if self.answer_attend_options not in ANSWER_ATTEND_OPTIONS:
            bad("answer_attend_options", f"must be one of {ANSWER_ATTEND_OPTIONS}")
        if self.answer_attend_think and not (self.answer_attend_weight > 0 and self.think in ("option", "option_text")):
            bad("answer_attend_think", "needs answer_attend_weight > 0 and think 'option' or 'option_text' (otherwise "
                "the <think> block holds no answer)")
        if not isinstance(self.count_sink, bool):
            bad("count_sink", "must be true or false")
        if self.count_sink and not (self.attend_weight > 0 and self.mention_layer > 0):
            bad("count_sink", "needs the attention supervision it shapes: attend_weight > 0 and mention_layer > 0")
        if self.answer_attend_options and self.answer_attend_mode != "ordered":
            bad("answer_attend_options", "needs answer_attend_mode 'ordered' (heads 0-1 the objects, 2-3 the options)")
        for name in ("weight_decay", "dense_weight_late", "mention_weight", "attend_weight", "answer_attend_weight",
                     "compare_weight"):
            if getattr(self, name) < 0:
                bad(name, "must be >= 0")
        from spatialrl.world.questions import QUESTION_TYPES

        unknown = [k for k in self.type_weights if k not in QUESTION_TYPES]
        if unknown:
            bad("type_weights", f"has unknown question type(s) {unknown}; use some of {', '.join(QUESTION_TYPES)}")
        if any(v < 0 for v in self.type_weights.values()):
            bad("type_weights", "must map to weights >= 0")
        from spatialrl.train.pretrain.data import EXTRA_GROUNDING_KINDS, GROUNDING_KINDS

        if isinstance(self.ground_extra, str):  # --set ground_extra=left_or_right,count_each
            self.ground_extra = [k.strip() for k in self.ground_extra.split(",") if k.strip()]
        unknown = [k for k in self.ground_extra if k not in EXTRA_GROUNDING_KINDS]
        if unknown:
            bad("ground_extra", f"has unknown grounding kind(s) {unknown}; use some of {', '.join(EXTRA_GROUNDING_KINDS)}")
        kinds = GROUNDING_KINDS + tuple(self.ground_extra)
        unknown = [k for k in self.ground_weights if k not in kinds]
        if unknown:
            bad("ground_weights", f"has unknown grounding kind(s) {unknown}; use some of {', '.join(kinds)} "
                "(add an opt-in kind to ground_extra first)")
        if any(v < 0 for v in self.ground_weights.values()):
            bad("ground_weights", "must map to weights >= 0")
        if self.dense_head not in ("linear", "code"):
            bad("dense_head", "must be 'linear' or 'code'")
        if self.dense_head == "code" and self.size == "tiny":
            bad("dense_head", "must be 'linear' for size 'tiny' (its 64-dimensional tokens cannot hold the "
                "128-dimensional code)")
        if self.think not in THINK_MODES:
            bad("think", f"must be one of {THINK_MODES}")
        if self.normalize not in ("world", "clip"):
            bad("normalize", "must be 'world' or 'clip'")
        if self.save_dtype not in ("float16", "float32"):
            bad("save_dtype", "must be 'float16' or 'float32'")
        if self.rope_theta is not None and not self.rope_theta > 0:
            bad("rope_theta", "must be > 0 or None")
        if self.mrope_section is not None and (len(self.mrope_section) != 3 or min(self.mrope_section) < 1):
            bad("mrope_section", "must be three positive integers summing to head_dim / 2, or None")

    @classmethod
    def describe(cls) -> str:
        """Every field with its default and help text."""
        lines = []
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            lines.append(f"{f.name} (default {default!r}): {f.metadata['help']}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------
# Model construction
# --------------------------------------------------------------------------------------


def _spec(size: str, image_size: int) -> Any:
    from spatialrl.models.tiny import SIZES as TINY_SIZES
    from spatialrl.models.tiny import TinySpec

    if size in ("tiny", "small"):
        base = TINY_SIZES[size]
    else:  # base: wider and deeper language model and vision tower
        base = TinySpec(
            vocab_size=2048, hidden_size=384, intermediate_size=1024, num_hidden_layers=6,
            num_attention_heads=6, num_key_value_heads=2, mrope_section=(8, 12, 12),
            vision_depth=6, vision_hidden_size=192, vision_intermediate_size=384, vision_num_heads=6,
            fullatt_block_indexes=(1, 3, 5), tie_word_embeddings=True,
        )  # fmt: skip
    return TinySpec(**{**base.__dict__, "image_size": int(image_size)})


def _tokenizer_corpus(cfg: PretrainConfig) -> Any:
    """The tiny model's tokenizer corpus plus the grounding texts of a few scenes."""
    import itertools

    from spatialrl.models.tiny import corpus
    from spatialrl.train.pretrain.data import make_views

    def grounding() -> Any:
        for i in range(max(1, cfg.tokenizer_scenes // 2)):
            for view in make_views(10_000_000 + i, cfg.world_seed, cfg.image_size, tuple(cfg.ground_extra)):
                for _, q, a in view.texts:
                    yield q
                    yield a

    return itertools.chain(corpus(cfg.tokenizer_scenes, cfg.seed, cfg.image_size), grounding())


def build_model(cfg: PretrainConfig) -> tuple[Any, Any]:
    """A fresh ``(model, processor)``: the tiny Qwen2.5-VL of ``cfg.size`` with random weights
    (``cfg.seed``), the world's normalisation and the configured rotary settings."""
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration

    from spatialrl.models.tiny import (
        build_config,
        build_processor,
        build_tokenizer,
        register,
    )

    register()
    spec = _spec(cfg.size, cfg.image_size)
    if cfg.mrope_section is not None:
        spec = type(spec)(**{**spec.__dict__, "mrope_section": tuple(cfg.mrope_section)})
    tokenizer = build_tokenizer(spec, _tokenizer_corpus(cfg))
    processor = build_processor(tokenizer, spec.image_size)
    mean, std = (WORLD_IMAGE_MEAN, WORLD_IMAGE_STD) if cfg.normalize == "world" else (CLIP_IMAGE_MEAN, CLIP_IMAGE_STD)
    processor.image_processor.image_mean = list(mean)
    processor.image_processor.image_std = list(std)
    config = build_config(spec, tokenizer)
    if cfg.rope_theta is not None:
        config.text_config.rope_parameters["rope_theta"] = float(cfg.rope_theta)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(cfg.seed)
        model = Qwen2_5_VLForConditionalGeneration(config)
    finally:
        torch.random.set_rng_state(state)
    eos = [tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")]
    model.generation_config = GenerationConfig(bos_token_id=eos[1], eos_token_id=eos, pad_token_id=eos[1],
                                               do_sample=False)
    return model, processor


class AuxHeads:
    """Factory of the auxiliary heads (a ``torch.nn.Module``; built lazily so that importing this
    module does not import torch)."""

    @staticmethod
    def build(hidden: int, llm_hidden: int | None, mode: str = "linear", table: bool = False,
              mention_hidden: int | None = None) -> Any:
        import torch
        from torch import nn

        from spatialrl.train.pretrain.data import CLASS_NAMES, COLOR_NAMES

        n_cls, n_col = len(CLASS_NAMES), len(COLOR_NAMES)

        class Heads(nn.Module):
            """Linear heads on merged vision tokens: per sub-patch (4 per token) class logits,
            colour logits, log depth, 8 object targets, 2 position targets; per image 3 scene
            targets from the token mean. Optionally position heads on a language-model layer."""

            def __init__(self) -> None:
                super().__init__()
                self.mode = mode
                self.sizes = (n_cls, n_col, 1, 8, 2)
                width = 4 * sum(self.sizes)
                if mode == "code" and width + (TABLE_WIDTH if table else 0) > hidden:
                    raise ValueError(f"dense_head 'code' needs {width} feature dimensions, the tokens have {hidden}")
                self.dense = nn.Linear(hidden, width) if mode == "linear" else None
                self.llm = nn.Linear(llm_hidden, 4 * 10) if llm_hidden else None
                # grounding of object mentions: 8 object properties + 1 count, from a language-model layer
                self.mention = nn.Linear(mention_hidden, 9) if mention_hidden else None
                # comparison of the two objects a question names: differences of their 8 properties
                self.compare = nn.Linear(mention_hidden, 8) if mention_hidden else None

            def forward(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
                # tokens: (n_images * 16, hidden) -> per sub-patch predictions (n_images * 64, ...)
                width = 4 * sum(self.sizes)
                raw = self.dense(tokens) if self.dense is not None else tokens[:, :width]
                out = raw.reshape(tokens.shape[0] * 4, sum(self.sizes))
                cls, col, depth, obj, pos = out.split(self.sizes, dim=-1)
                pred = {"cls": cls, "col": col, "depth": depth.squeeze(-1), "obj": obj, "pos": pos, "mode": self.mode}
                if self.mode == "code" and table:
                    # the scene table, the same in every token of an image
                    pred["table"] = tokens[:, width:width + TABLE_WIDTH]
                return pred

        return Heads()


# --------------------------------------------------------------------------------------
# Data bank
# --------------------------------------------------------------------------------------

class Bank:
    """Every view's image, dense truth and tokenised questions, ready for batching."""

    def __init__(self, views: list[Any], processor: Any, think: str, image_size: int, progress: bool = False,
                 separator: str = "\n"):
        import numpy as np

        from spatialrl.data.export import prompt_text

        tok = processor.tokenizer
        self.images = np.stack([v.image for v in views])
        self.dense = {k: np.stack([v.dense[k] for v in views]) for k in views[0].dense}
        self.n = len(views)
        marker = "\x00QUESTION\x00"
        rendered = processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": marker}]}],
            add_generation_prompt=True, tokenize=False,
        )
        before, after = rendered.split(marker)
        image_tag = "<|image_pad|>"
        pre, post = before.split(image_tag)
        self.image_token_id = tok.convert_tokens_to_ids(image_tag)
        self.n_image_tokens = (image_size // 28) ** 2
        self.prefix = tok(pre, add_special_tokens=False)["input_ids"]
        self.after_image = tok(post, add_special_tokens=False)["input_ids"]
        self.suffix = tok(after, add_special_tokens=False)["input_ids"]
        self.eos = tok.convert_tokens_to_ids("<|im_end|>")
        self.pad = tok.pad_token_id
        self.attend_think = False  # answer attention also from the <think> text (recipe answer_attend_think)
        # The answer value sits between the tokens "answer" (of "<answer>") and the last "</".
        self.answer_word_id = tok.convert_tokens_to_ids("answer")
        self.close_tag_id = tok.convert_tokens_to_ids("</")
        # Tokenise every question once: items[view][family] = [(kind, prompt ids, target ids, mentions)],
        # mentions = [(token index in the prompt, 0 object | 1 count, target (8,))] (see mention_spans).
        from spatialrl.train.pretrain.data import mention_spans

        questions, targets, answers, keys = [], [], [], []
        for vi, v in enumerate(views):
            for qt, q, a in v.qa:
                keys.append((vi, "qa", qt))
                questions.append(prompt_text(q, separator))
                targets.append(target_text(a, qt, think, q))
                answers.append(a)
            for kind, q, a in v.texts:
                keys.append((vi, "ground", kind))
                questions.append(prompt_text(q, separator))
                targets.append(target_text(a, None, think))
                answers.append(a)
        enc = tok(questions, add_special_tokens=False, return_offsets_mapping=True)
        t_ids = tok(targets, add_special_tokens=False)["input_ids"]
        self.items: list[dict[str, list[tuple[str, list[int], list[int], list[Any]]]]] = [
            {"qa": [], "ground": []} for _ in views]
        self.prompt_offset = len(self.prefix) + self.n_image_tokens + len(self.after_image)
        self.image_start = len(self.prefix)
        for n, ((vi, fam, kind), qi, ti) in enumerate(zip(keys, enc["input_ids"], t_ids)):
            offsets = enc["offset_mapping"][n]
            mentions = []
            for start, end, mkind, target, where in mention_spans(questions[n], views[vi]):
                last = max((i for i, (a, b) in enumerate(offsets) if a < end and b > start), default=None)
                if last is not None:
                    vec = np.zeros(8, dtype=np.float32)
                    vec[: len(target)] = target
                    mentions.append((last, 0 if mkind == "object" else 1, vec, where.astype(np.float32)))
            options = []  # the last token of each option's text ("A. <text>" lines), in order
            for m in OPTION_LINE.finditer(questions[n]):
                last = max((i for i, (a, b) in enumerate(offsets) if a < m.end(2) and b > m.start(2)), default=None)
                if last is not None:
                    options.append(last)
            letter = answers[n].strip()
            correct = "ABCDEFGH".index(letter) if len(letter) == 1 and letter in "ABCDEFGH"[:len(options)] else -1
            self.items[vi][fam].append((kind, qi, ti, mentions, options, correct))

    def sequence(self, prompt_ids: list[int], target_ids: list[int]) -> tuple[list[int], int]:
        """Token ids of one conversation and the index where the answer starts."""
        ids = (self.prefix + [self.image_token_id] * self.n_image_tokens + self.after_image + prompt_ids
               + self.suffix)
        start = len(ids)
        return ids + target_ids + [self.eos], start


def target_text(answer: str, question_type: str | None, think: str, question: str = "") -> str:
    """``<think>...</think><answer>{answer}</answer>``: the format the format reward checks,
    exactly as ``spatialrl sft`` writes it (:func:`spatialrl.train.sft.target_text`). ``think``:
    ``empty``; ``template`` (sft's rationale per question type); ``option`` (the text of the option
    whose letter ``answer`` is, read from the ``A. text`` lines of ``question``, so the model says
    the answer in words before it copies that option's letter); ``option_text`` (that text in
    both blocks: the answer names the option by its text)."""
    from spatialrl.train.sft import target_text as sft_target_text

    return sft_target_text(answer, question_type, think, question)


def make_bank(cfg: PretrainConfig, processor: Any, indices: range, progress: bool, desc: str) -> Bank:
    from tqdm.auto import tqdm

    from spatialrl.train.pretrain.data import make_views

    views = []
    for i in tqdm(indices, desc=desc, unit="scene", disable=not progress, dynamic_ncols=True, file=sys.stderr):
        views.extend(make_views(i, cfg.world_seed, cfg.image_size, tuple(cfg.ground_extra)))
    bank = Bank(views, processor, cfg.think, cfg.image_size, separator=cfg.prompt_separator)
    bank.attend_think = cfg.answer_attend_think
    return bank


# --------------------------------------------------------------------------------------
# Batches
# --------------------------------------------------------------------------------------


@dataclass
class Batch:
    pixel_values: Any
    grid_thw: Any
    dense: dict[str, Any]
    image_of_seq: Any | None = None
    input_ids: Any | None = None
    attention_mask: Any | None = None
    position_ids: Any | None = None
    labels: Any | None = None
    kinds: list[str] | None = None
    mention_seq: Any | None = None
    mention_pos: Any | None = None
    mention_kind: Any | None = None
    mention_target: Any | None = None
    mention_where: Any | None = None
    image_start: int = 0
    answer_seq: Any | None = None  # (n,) sequence of each answer-predicting position with mentions
    answer_pos: Any | None = None  # (n,) the position
    answer_targets: Any | None = None  # (n, L) bool: the mentions of its question
    answer_named: Any | None = None  # (n, 2) position of the first / second distinct object named (-1: none)
    answer_options: Any | None = None  # (n, 2) position of the end of option A's / B's text (-1: none)
    answer_correct: Any | None = None  # (n,) position of the end of the correct option's text (-1: none)
    compare_target: Any | None = None  # (n, 8) first named object's properties minus the second's
    compare_mask: Any | None = None  # (n,) bool: the first two things named are objects


def _collate(bank: Bank, model: Any, mean: Any, std: Any, views: list[int],
             questions: list[tuple[int, list[int], list[int], str]] | None) -> Batch:
    """A batch of ``views`` (indices into the bank) and, optionally, questions
    ``(image slot, prompt ids, target ids, kind)`` asked of them."""
    import numpy as np
    import torch

    from spatialrl.train.pretrain.data import patchify

    imgs = bank.images[views]
    pixel_values = torch.from_numpy(patchify(imgs, mean, std))
    g = bank.images.shape[1] // 14
    grid_thw = torch.tensor([[1, g, g]] * len(views))
    dense = {k: torch.from_numpy(np.ascontiguousarray(v[views])) for k, v in bank.dense.items()}
    batch = Batch(pixel_values, grid_thw, dense)
    if not questions:
        return batch
    seqs, starts = zip(*(bank.sequence(q[1], q[2]) for q in questions))
    L = max(len(s) for s in seqs)
    n = len(seqs)
    input_ids = torch.full((n, L), bank.pad, dtype=torch.long)
    attention = torch.zeros((n, L), dtype=torch.long)
    labels = torch.full((n, L), -100, dtype=torch.long)
    for i, (s, st) in enumerate(zip(seqs, starts)):
        input_ids[i, : len(s)] = torch.tensor(s)
        attention[i, : len(s)] = 1
        labels[i, st - 1 : len(s) - 1] = torch.tensor(s[st:])  # position t predicts token t + 1
    mm = (input_ids == bank.image_token_id).long()
    position_ids, _ = model.model.get_rope_index(input_ids, image_grid_thw=grid_thw[[q[0] for q in questions]],
                                                 attention_mask=attention, mm_token_type_ids=mm)
    batch.image_of_seq = torch.tensor([q[0] for q in questions])
    batch.input_ids, batch.attention_mask, batch.position_ids, batch.labels = input_ids, attention, position_ids, labels
    batch.kinds = [q[3] for q in questions]
    rows = [(i, bank.prompt_offset + tok_i, kind, vec, where) for i, q in enumerate(questions) if len(q) > 4
            for tok_i, kind, vec, where in q[4]]
    if rows:
        batch.mention_seq = torch.tensor([r[0] for r in rows])
        batch.mention_pos = torch.tensor([r[1] for r in rows])
        batch.mention_kind = torch.tensor([r[2] for r in rows])
        batch.mention_target = torch.from_numpy(np.stack([r[3] for r in rows]))
        batch.mention_where = torch.from_numpy(np.stack([r[4] for r in rows]))
        batch.image_start = bank.image_start
        mentions_of: dict[int, list[int]] = {}
        # distinct things named (objects, counted categories) in text order: (position, kind, target)
        named: dict[int, list[tuple[int, int, Any]]] = {}
        for r in sorted(rows, key=lambda r: (r[0], r[1])):
            mentions_of.setdefault(r[0], []).append(r[1])
            if all(k != r[2] or not np.array_equal(r[3], v) for _, k, v in named.get(r[0], [])):
                named.setdefault(r[0], []).append((r[1], r[2], r[3]))
        answer_rows = []
        for i, (s, st) in enumerate(zip(seqs, starts)):
            if i not in mentions_of:
                continue
            for p in _answer_positions(s[st:], bank.answer_word_id, bank.close_tag_id, bank.attend_think):
                answer_rows.append((i, st + p))
        if answer_rows:
            batch.answer_seq = torch.tensor([r[0] for r in answer_rows])
            batch.answer_pos = torch.tensor([r[1] for r in answer_rows])
            batch.answer_targets = torch.zeros((len(answer_rows), L), dtype=torch.bool)
            batch.answer_named = torch.full((len(answer_rows), 2), -1, dtype=torch.long)
            batch.answer_options = torch.full((len(answer_rows), 2), -1, dtype=torch.long)
            batch.answer_correct = torch.full((len(answer_rows),), -1, dtype=torch.long)
            batch.compare_target = torch.zeros((len(answer_rows), 8))
            batch.compare_mask = torch.zeros(len(answer_rows), dtype=torch.bool)
            for j, (i, _) in enumerate(answer_rows):
                batch.answer_targets[j, mentions_of[i]] = True
                options = questions[i][5] if len(questions[i]) > 5 else []
                for k, p in enumerate(options[:2]):
                    batch.answer_options[j, k] = bank.prompt_offset + p
                correct = questions[i][6] if len(questions[i]) > 6 else -1
                if correct >= 0:
                    batch.answer_correct[j] = bank.prompt_offset + options[correct]
                first_two = named.get(i, [])[:2]
                for k, (p, _, _) in enumerate(first_two):
                    batch.answer_named[j, k] = p
                if len(first_two) == 2 and first_two[0][1] == first_two[1][1] == 0:  # two objects
                    batch.compare_target[j] = torch.from_numpy(first_two[0][2] - first_two[1][2])
                    batch.compare_mask[j] = True
    return batch


#: At most this many answer-predicting positions per question get the answer attention supervision.
ANSWER_POSITIONS = 4


def _answer_positions(target: list[int], answer_word: int, close_tag: int, think: bool = False) -> list[int]:
    """Indices into ``target`` (``<think>..</think><answer>VALUE</answer><|im_end|>``) of the
    positions that predict the value's tokens: from the token ``answer`` of ``<answer>`` up to the
    one before the value's last token (at most :data:`ANSWER_POSITIONS`). With ``think``, first
    the positions that predict the think text's tokens (from the ``>`` of ``<think>``, index 1,
    up to the one before the first ``</``; at most :data:`ANSWER_POSITIONS`)."""
    out = []
    if think:
        first_close = next((i for i, t in enumerate(target) if t == close_tag), -1)
        out = list(range(1, min(first_close - 1, 1 + ANSWER_POSITIONS))) if first_close - 1 > 1 else []
    try:
        first = target.index(answer_word)
    except ValueError:
        return out
    close = max((i for i, t in enumerate(target) if t == close_tag), default=-1)
    return out + (list(range(first, min(close - 1, first + ANSWER_POSITIONS))) if close - 1 > first else [])


class Sampler:
    """Draws the views and questions of a step (seeded)."""

    def __init__(self, bank: Bank, cfg: PretrainConfig, seed: int):
        import numpy as np

        self.bank, self.cfg = bank, cfg
        self.rng = np.random.default_rng(seed)

    def draw_views(self, n: int) -> list[int]:
        return [int(v) for v in self.rng.choice(self.bank.n, size=min(n, self.bank.n), replace=False)]

    def draw(self, stage: str) -> tuple[list[int], list[tuple[int, list[int], list[int], str]]]:
        cfg, rng = self.cfg, self.rng
        views = self.draw_views(cfg.images_per_step)
        ground_share = 1.0 - cfg.ground_qa_share if stage == "ground" else cfg.mix_ground_share
        questions = []
        for slot, v in enumerate(views):
            pools = self.bank.items[v]
            for _ in range(cfg.questions_per_image):
                fam = "ground" if (rng.random() < ground_share and pools["ground"]) or not pools["qa"] else "qa"
                pool = pools[fam]
                weights = cfg.type_weights if fam == "qa" else cfg.ground_weights
                if weights:
                    w = [weights.get(item[0], 1.0) for item in pool]
                    s = sum(w)
                    k = int(rng.choice(len(pool), p=[x / s for x in w])) if s > 0 else int(rng.integers(len(pool)))
                else:
                    k = int(rng.integers(len(pool)))
                kind, p, t, mentions, options, correct = pool[k]
                questions.append((slot, p, t, f"{fam}:{kind}", mentions, options, correct))
        return views, questions


# --------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------


def _dense_losses(pred: dict[str, Any], target: dict[str, Any], obj_scale: Any) -> dict[str, Any]:
    import torch.nn.functional as F

    if pred.get("mode") == "code":
        return _code_losses(pred, target, obj_scale)
    cls_t = target["cls"].reshape(-1, target["cls"].shape[-1])
    col_t = target["col"].reshape(-1, target["col"].shape[-1])
    out = {
        "cls": -(cls_t * F.log_softmax(pred["cls"], -1)).sum(-1).mean(),
        "col": -(col_t * F.log_softmax(pred["col"], -1)).sum(-1).mean(),
        "depth": F.smooth_l1_loss(pred["depth"], target["depth"].reshape(-1), beta=0.5),
        "pos": F.smooth_l1_loss(pred["pos"], target["pos"].reshape(-1, 2) * 4.0, beta=0.5),
    }
    mask = target["obj_mask"].reshape(-1)
    mean, std = obj_scale
    obj_t = (target["obj"].reshape(-1, 8) - mean[:8]) / std[:8]
    err = F.smooth_l1_loss(pred["obj"], obj_t, beta=0.5, reduction="none").mean(-1)
    out["obj"] = (err * mask).sum() / mask.sum().clamp(min=1.0)
    return out


#: Counts are regressed as ``count - COUNT_CENTER`` by the mention head.
COUNT_CENTER = 1.5
#: Scale of the class / colour fractions and of the centred patch position in the feature code.
CODE_SCALE = 2.0
#: Scene-table code after the patch code: counts per category (10), per-category (10 x 5) and
#: per-colour (8 x 5) standardised properties (0 where absent), log floor area, camera height.
TABLE_WIDTH = 10 + 50 + 40 + 2


def _code_losses(pred: dict[str, Any], target: dict[str, Any], scales: Any) -> dict[str, Any]:
    """``dense_head='code'``: the first 128 dimensions of each merged token *are* the truth of its
    4 patches (fixed identity head), scaled to unit-order values: class and colour fractions x 2,
    standardised log depth, standardised object targets (0 off objects), centred position x 4; with
    the scene table, the next :data:`TABLE_WIDTH` dimensions of every token are the image's table."""
    import torch
    import torch.nn.functional as F

    mean, std = scales
    obj_t = (target["obj"].reshape(-1, 8) - mean[:8]) / std[:8] * target["obj_mask"].reshape(-1, 1)
    out = {
        "cls": F.mse_loss(pred["cls"], CODE_SCALE * target["cls"].reshape(pred["cls"].shape)),
        "col": F.mse_loss(pred["col"], CODE_SCALE * target["col"].reshape(pred["col"].shape)),
        "depth": F.mse_loss(pred["depth"], (target["depth"].reshape(-1) - mean[8]) / std[8]),
        "obj": F.mse_loss(pred["obj"], obj_t),
        "pos": F.mse_loss(pred["pos"], (target["pos"].reshape(-1, 2) - 0.5) * 2 * CODE_SCALE),
    }
    if "table" in pred:
        n_img = target["counts"].shape[0]
        tm, ts = mean[9:14], std[9:14]
        cat = (target["table_cat"] - tm) / ts * target["table_cat_mask"][..., None]
        col = (target["table_col"] - tm) / ts * target["table_col_mask"][..., None]
        scene = (target["scene"][:, :2] - mean[14:16]) / std[14:16]
        t = torch.cat([CODE_SCALE * target["counts"], cat.reshape(n_img, -1), col.reshape(n_img, -1), scene], dim=1)
        t = t.repeat_interleave(pred["table"].shape[0] // n_img, dim=0)
        out["table"] = F.mse_loss(pred["table"], t)
    return out


def _answer_loss(logits_fn: Any, hidden: Any, labels: Any, reduce: bool = True) -> Any:
    """Cross-entropy of the answer tokens (labels != -100), computing logits only there."""
    import torch.nn.functional as F

    sel = labels != -100
    logits = logits_fn(hidden[sel])
    loss = F.cross_entropy(logits.float(), labels[sel], reduction="none")
    if reduce:
        return loss.mean()
    return loss


def _forward(model: Any, heads: Any, batch: Batch, obj_scale: Any, image_perm: Any = None,
             llm_aux_layer: int = -1, n_chunks: int = 2, extras: dict[str, Any] | None = None,
             keep_per_seq: bool = False, mention_layer: int = 0, attn_weight: float = 0.0,
             answer_attn_weight: float = 0.0, answer_attn_mode: str = "union", count_sink: bool = False,
             answer_attn_options: str = "", compare: bool = False) -> dict[str, Any]:
    """Losses of one batch. ``image_perm`` permutes which image each question sees (diagnostics);
    ``extras`` (a dict, filled in place) receives the image tokens and per-family answer losses."""
    extras = {} if extras is None else extras
    import torch

    vis = model.model.visual(batch.pixel_values, grid_thw=batch.grid_thw)
    tokens = vis.pooler_output  # (n_images * 16, hidden), raster order per image
    extras["tokens"] = tokens
    losses = _dense_losses(heads(tokens), batch.dense, obj_scale)
    if batch.input_ids is None:
        return losses
    n_tok = tokens.shape[0] // batch.grid_thw.shape[0]
    per_image = tokens.reshape(batch.grid_thw.shape[0], n_tok, -1)
    which = batch.image_of_seq if image_perm is None else image_perm[batch.image_of_seq]
    # The language model runs on length-sorted chunks (less padding); one loss over all answer tokens.
    lengths = batch.attention_mask.sum(1)
    order = torch.argsort(lengths)
    chunks = [c for c in order.chunk(max(1, min(n_chunks, len(order)))) if len(c)]
    nll_sum, n_tokens, aux_terms, mention_terms, attn_terms, answer_terms = 0.0, 0, [], [], [], []
    compare_terms = []
    layers = model.model.language_model.layers
    fam_sum: dict[str, float] = {}
    fam_n: dict[str, int] = {}
    per_seq_all = torch.zeros(len(order)) if keep_per_seq else None
    for idx_c in chunks:
        L = int(lengths[idx_c].max())
        ids = batch.input_ids[idx_c, :L]
        embeds = model.model.get_input_embeddings()(ids)
        mask = ids == model.config.image_token_id
        feats = per_image[which[idx_c]].reshape(-1, per_image.shape[-1]).to(embeds.dtype)
        embeds = embeds.masked_scatter(mask.unsqueeze(-1), feats)
        local = torch.full((len(order),), -1, dtype=torch.long)  # batch row -> row within this chunk
        local[idx_c] = torch.arange(len(idx_c))
        captured: dict[str, Any] = {}
        answer_captured: dict[str, Any] = {}
        hooks = []
        if attn_weight > 0 and mention_layer > 0 and batch.mention_seq is not None:
            hooks.append(layers[mention_layer - 1].self_attn.register_forward_pre_hook(
                _capture_into(captured), with_kwargs=True))
        if answer_attn_weight > 0 and 0 < mention_layer < len(layers) and batch.answer_seq is not None:
            hooks.append(layers[mention_layer].self_attn.register_forward_pre_hook(
                _capture_into(answer_captured), with_kwargs=True))
        try:
            out = model.model.language_model(inputs_embeds=embeds, attention_mask=batch.attention_mask[idx_c, :L],
                                             position_ids=batch.position_ids[:, idx_c, :L], use_cache=False,
                                             output_hidden_states=llm_aux_layer >= 0 or mention_layer > 0 or compare)
        finally:
            for hook in hooks:
                hook.remove()
        if "x" in answer_captured:
            rows = local[batch.answer_seq]
            keep = rows >= 0
            if keep.any() and answer_attn_mode == "union":
                logp = _attention_logprobs(layers[mention_layer].self_attn, answer_captured, rows[keep],
                                           batch.answer_pos[keep])
                target = batch.answer_targets[keep][:, : logp.shape[1]]
                answer_terms.append(-torch.logsumexp(logp.masked_fill(~target, float("-inf")), dim=-1))
            elif keep.any():  # ordered: head k looks at the k-th distinct object named (k + 2: option k)
                targets = [(ATTEND_HEAD + k, batch.answer_named[:, k]) for k in range(2)]
                if answer_attn_options == "both":
                    targets += [(ATTEND_HEAD + 2 + k, batch.answer_options[:, k]) for k in range(2)]
                elif answer_attn_options == "correct":
                    targets.append((ATTEND_HEAD + 2, batch.answer_correct))
                for head, where in targets:
                    sel = keep & (where >= 0)
                    if sel.any():
                        logp = _attention_logprobs(layers[mention_layer].self_attn, answer_captured, rows[sel],
                                                   batch.answer_pos[sel], head=head)
                        answer_terms.append(-logp.gather(1, where[sel, None]).squeeze(1))
        if compare and batch.answer_seq is not None and heads.compare is not None:
            rows = local[batch.answer_seq]
            sel = (rows >= 0) & batch.compare_mask
            if sel.any():
                h = out.hidden_states[mention_layer + 1][rows[sel], batch.answer_pos[sel]]
                compare_terms.append((heads.compare(h), batch.compare_target[sel]))
        if mention_layer > 0 and heads.mention is not None and batch.mention_seq is not None:
            rows = local[batch.mention_seq]
            keep = rows >= 0
            if keep.any():
                h = out.hidden_states[mention_layer][rows[keep], batch.mention_pos[keep]]
                mention_terms.append((heads.mention(h), batch.mention_kind[keep], batch.mention_target[keep]))
                if "x" in captured:
                    sink = (count_sink_share(batch.mention_kind[keep], batch.mention_target[keep][:, 0])
                            if count_sink else None)
                    attn_terms.append(_attention_supervision(
                        model.model.language_model.layers[mention_layer - 1].self_attn, captured, rows[keep],
                        batch.mention_pos[keep], batch.mention_where[keep], batch.image_start, sink))
        labels = batch.labels[idx_c, :L]
        nll = _answer_loss(model.lm_head, out.last_hidden_state, labels, reduce=False)
        nll_sum = nll_sum + nll.sum()
        n_tokens += int((labels != -100).sum())
        if batch.kinds is not None:  # per-family answer loss (a detached metric)
            seq_of_tok = (labels != -100).nonzero()[:, 0]
            per_seq = torch.zeros(len(idx_c)).index_add_(0, seq_of_tok, nll.detach())
            cnt = torch.zeros(len(idx_c)).index_add_(0, seq_of_tok, torch.ones_like(nll))
            if per_seq_all is not None:
                per_seq_all[idx_c] = per_seq / cnt.clamp(min=1)
            for j, i in enumerate(idx_c.tolist()):
                fam = batch.kinds[i].split(":")[0]
                fam_sum[fam] = fam_sum.get(fam, 0.0) + float(per_seq[j])
                fam_n[fam] = fam_n.get(fam, 0) + int(cnt[j])
        if llm_aux_layer >= 0 and heads.llm is not None:
            aux_terms.append(_llm_aux_loss(heads, out.hidden_states[llm_aux_layer + 1][mask], batch,
                                           batch.image_of_seq[idx_c], n_tok, obj_scale))
    losses["answer"] = nll_sum / max(1, n_tokens)
    if mention_terms:
        pred = torch.cat([t[0] for t in mention_terms])
        kind = torch.cat([t[1] for t in mention_terms])
        target = torch.cat([t[2] for t in mention_terms])
        mean, std = obj_scale
        obj_t = (target - mean[:8]) / std[:8]
        err_obj = (pred[:, :8] - obj_t).pow(2).mean(-1)
        err_cnt = (pred[:, 8] - (target[:, 0] - COUNT_CENTER)).pow(2)
        losses["mention"] = torch.where(kind == 0, err_obj, err_cnt).mean()
    if attn_terms:
        losses["attend"] = torch.cat(attn_terms).mean()
    if answer_terms:
        losses["answer_attend"] = torch.cat(answer_terms).mean()
    if compare_terms:
        pred = torch.cat([t[0] for t in compare_terms])
        target = torch.cat([t[1] for t in compare_terms]) / obj_scale[1][:8]  # differences of standardised values
        losses["compare"] = (pred - target).pow(2).mean()
    if per_seq_all is not None:
        extras["per_seq"] = per_seq_all.tolist()
    extras.update({f"answer_{f}": fam_sum[f] / max(1, fam_n[f]) for f in fam_sum})
    if aux_terms:
        losses["llm_aux"] = sum(aux_terms) / len(aux_terms)
    return losses


#: The head of the mention layer whose attention is supervised (``attend_weight``).
ATTEND_HEAD = 0
#: Losses of :func:`_forward` that are not dense-truth losses of the vision tower.
NON_DENSE_LOSSES = ("answer", "llm_aux", "mention", "attend", "answer_attend", "compare")


def _capture_into(store: dict[str, Any]) -> Any:
    """A forward pre-hook (``with_kwargs``) that keeps an attention module's input and rotary
    embeddings in ``store``."""

    def grab(module: Any, args: Any, kwargs: Any) -> None:
        store["x"] = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        store["pe"] = kwargs["position_embeddings"]

    return grab


def count_sink_share(kind: Any, count: Any) -> Any:
    """Share of a mention's supervised attention on the sink (the sequence's first token):
    ``1 / (n + 1)`` for a counted category's word (``kind`` 1, ``count`` n), 0 for an object name.
    What stays on the image tokens, ``n / (n + 1)``, then differs with n (recipe field
    ``count_sink``)."""
    import torch

    return torch.where(kind == 1, 1.0 / (count.clamp(min=0) + 1.0), torch.zeros_like(count))


def _attention_supervision(attn: Any, captured: dict[str, Any], rows: Any, pos: Any, where: Any,
                           image_start: int, sink: Any = None) -> Any:
    """Cross-entropy between where a mention's query (head :data:`ATTEND_HEAD` of ``attn``) looks
    and where the mentioned object shows: ``-sum_j where_j log p_j`` over the image tokens ``j``,
    ``p`` the head's causal softmax over every earlier position (so the head learns both to look at
    the image and where). With ``sink`` (a share per mention, :func:`count_sink_share`) the target
    puts that share on position 0 and scales the image shares by the rest."""
    logp = _attention_logprobs(attn, captured, rows, pos)
    n_img = where.shape[1]
    image_term = (where * logp[:, image_start:image_start + n_img]).sum(-1)
    if sink is None:
        return -image_term
    return -((1.0 - sink) * image_term + sink * logp[:, 0])


def _attention_logprobs(attn: Any, captured: dict[str, Any], rows: Any, pos: Any, head: int = ATTEND_HEAD) -> Any:
    """Log attention probabilities (n, L) of ``head`` of ``attn`` from position
    ``pos[i]`` of sequence ``rows[i]`` to every position (causal: later ones get -inf), recomputed
    from the captured layer input exactly as the layer computes them (a test checks it against
    eager attention)."""
    import torch

    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import rotate_half

    x = captured["x"]  # (b, L, hidden): the layer's attention input (after its norm)
    cos, sin = captured["pe"]  # (b, L, head_dim)
    hd = attn.head_dim
    group = attn.num_heads // attn.num_key_value_heads
    kv = head // group
    q = attn.q_proj(x[rows, pos])[:, head * hd:(head + 1) * hd]  # (n, hd)
    q = q * cos[rows, pos] + rotate_half(q) * sin[rows, pos]
    k = attn.k_proj(x)[..., kv * hd:(kv + 1) * hd]  # (b, L, hd)
    k = k * cos + rotate_half(k) * sin
    scores = torch.einsum("nd,nld->nl", q, k[rows]) * attn.scaling  # (n, L)
    L = scores.shape[1]
    causal = torch.arange(L)[None, :] <= pos[:, None]
    return torch.log_softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)


def _llm_aux_loss(heads: Any, h: Any, batch: Batch, image_of_seq: Any, n_tok: int, obj_scale: Any) -> Any:
    """Position heads on a language-model layer's image tokens (``h``: (n_seq * n_tok, hidden))."""
    import torch
    import torch.nn.functional as F

    pred = heads.llm(h).reshape(-1, 10)
    reps = image_of_seq.repeat_interleave(n_tok * 4)
    idx = reps * (n_tok * 4) + torch.arange(n_tok * 4).repeat(len(image_of_seq))
    pos_t = batch.dense["pos"].reshape(-1, 2)[idx] * 4.0
    obj_t = ((batch.dense["obj"].reshape(-1, 8) - obj_scale[0][:8]) / obj_scale[1][:8])[idx]
    m = batch.dense["obj_mask"].reshape(-1)[idx]
    lp = F.smooth_l1_loss(pred[:, :2], pos_t, beta=0.5)
    lo = (F.smooth_l1_loss(pred[:, 2:], obj_t, beta=0.5, reduction="none").mean(-1) * m).sum() / m.sum().clamp(min=1)
    return lp + lo


def _heldout_losses(model: Any, heads: Any, batch: Batch, obj_scale: Any, mention_layer: int = 0) -> dict[str, float]:
    """Held-out answer loss with the true images and with a derangement of the images."""
    import torch

    n = batch.grid_thw.shape[0]
    perm = torch.roll(torch.arange(n), 2 if n > 2 else 1)  # views come in (original, mirror) pairs
    ex_t: dict[str, Any] = {}
    ex_s: dict[str, Any] = {}
    with torch.no_grad():
        true = _forward(model, heads, batch, obj_scale, extras=ex_t, mention_layer=mention_layer)
        shuffled = _forward(model, heads, batch, obj_scale, image_perm=perm, extras=ex_s, mention_layer=mention_layer)
    out = {"true": float(true["answer"]), "shuffled": float(shuffled["answer"]),
           "gap": float(shuffled["answer"] - true["answer"]),
           **{f"dense_{k}": float(v) for k, v in true.items() if k not in NON_DENSE_LOSSES}}
    if "mention" in true:
        out["mention_true"], out["mention_shuffled"] = float(true["mention"]), float(shuffled["mention"])
    for key in ex_t:
        if key.startswith("answer_"):
            fam = key[len("answer_"):]
            out[f"{fam}_true"], out[f"{fam}_shuffled"] = ex_t[key], ex_s[key]
            out[f"{fam}_gap"] = ex_s[key] - ex_t[key]
    return out


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------


def _target_scales(bank: Bank) -> tuple[Any, Any]:
    """Means and standard deviations of the 8 object targets (over object patches) and of the
    patch log depth (index 8), from the training bank."""
    import numpy as np
    import torch

    obj = bank.dense["obj"].reshape(-1, 8)
    m = bank.dense["obj_mask"].reshape(-1) > 0
    depth = bank.dense["depth"].reshape(-1)
    mean = [obj[m].mean(0), [depth.mean()]]
    std = [obj[m].std(0), [depth.std()]]
    if "table_cat" in bank.dense:  # indices 9..13: table properties; 14, 15: floor area, camera height
        tc = bank.dense["table_cat"].reshape(-1, bank.dense["table_cat"].shape[-1])
        tcm = bank.dense["table_cat_mask"].reshape(-1) > 0
        mean.append(tc[tcm].mean(0))
        std.append(tc[tcm].std(0))
        mean.append(bank.dense["scene"][:, :2].mean(0))
        std.append(bank.dense["scene"][:, :2].std(0))
    mean_a = np.concatenate(mean).astype(np.float32)
    std_a = np.concatenate(std).astype(np.float32) + 1e-3
    return torch.from_numpy(mean_a), torch.from_numpy(std_a)


class _Clock:
    """Progress of the budget (steps or wall clock) as a fraction in [0, 1]."""

    def __init__(self, cfg: PretrainConfig):
        self.steps, self.seconds = cfg.steps, None if cfg.minutes is None else cfg.minutes * 60.0
        self.start = time.perf_counter()
        self.step = 0

    def progress(self) -> float:
        if self.steps is not None:
            return min(1.0, self.step / self.steps)
        return min(1.0, (time.perf_counter() - self.start) / self.seconds)

    def done(self) -> bool:
        return self.progress() >= 1.0


def _lr_factor(q: float, warmup: float, min_ratio: float) -> float:
    """Linear warm-up over the first ``warmup`` of a stage, then cosine decay to ``min_ratio``
    (``q``: progress through the stage, in [0, 1])."""
    if q < warmup:
        return (q + 1e-3) / warmup
    t = (q - warmup) / max(1e-9, 1.0 - warmup)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def _grad_norm(params: list[Any]) -> float:
    import torch

    norms = [p.grad.detach().norm() for p in params if p.grad is not None]
    return float(torch.norm(torch.stack(norms))) if norms else 0.0


def _held_batch(cfg: PretrainConfig, held: Bank, model: Any, mean: Any, std: Any) -> Batch:
    """The fixed held-out diagnostic batch: ``heldout_samples`` questions (QA and grounding) of the
    held-out views, each asked of its own view."""
    import numpy as np

    questions = []
    for slot in range(held.n):
        for fam in ("qa", "ground"):
            for kind, p, t, mentions, options, correct in held.items[slot][fam]:
                questions.append((slot, p, t, f"{fam}:{kind}", mentions, options, correct))
    order = np.random.default_rng(cfg.seed + 1).permutation(len(questions))[: cfg.heldout_samples]
    return _collate(held, model, mean, std, list(range(held.n)), [questions[i] for i in sorted(order)])


def pretrain(cfg: PretrainConfig, progress: bool = True, log: Any = print) -> dict[str, Any]:
    """Run the recipe and save the checkpoint to ``cfg.out`` (atomically). Returns a summary.

    The same config (seed and ``threads`` included) gives the same checkpoint bit for bit: the
    run uses torch's deterministic algorithms, since with more than one thread the backward pass
    of an indexing with repeated rows (``k[rows]`` in the attention supervision, the image
    features shared by a step's questions) otherwise sums its gradients in a varying order."""
    import torch

    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        return _pretrain(cfg, progress, log)
    finally:
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


def _pretrain(cfg: PretrainConfig, progress: bool, log: Any) -> dict[str, Any]:
    import torch
    from tqdm.auto import tqdm

    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out).absolute()
    t_start = time.perf_counter()
    if cfg.init:  # continue from a checkpoint, in float32 as training needs
        from spatialrl.models import load_model_and_processor

        model, processor = load_model_and_processor(cfg.init, dtype=torch.float32)
    else:
        model, processor = build_model(cfg)
    ip = processor.image_processor
    mean, std = ip.image_mean, ip.image_std
    n_params = sum(p.numel() for p in model.parameters())
    start = f"model from {cfg.init}" if cfg.init else f"{cfg.size} model"
    log(f"pretrain: {start}, {n_params:,} parameters; building {cfg.scenes} training scenes "
        f"(world seed {cfg.world_seed}) ...")
    bank = make_bank(cfg, processor, range(cfg.scenes), progress, "scenes")
    held = make_bank(cfg, processor, range(cfg.scenes, cfg.scenes + cfg.heldout_scenes), False, "held-out")
    held_batch = _held_batch(cfg, held, model, mean, std)
    t_data = time.perf_counter() - t_start

    scales = _target_scales(bank)
    torch.manual_seed(cfg.seed)  # the heads' first weights follow the seed (not the process's unseeded generator)
    heads = AuxHeads.build(model.config.text_config.hidden_size,
                           model.config.text_config.hidden_size if cfg.llm_aux_layer >= 0 else None,
                           cfg.dense_head, cfg.scene_table,
                           model.config.text_config.hidden_size if cfg.mention_layer > 0 else None)
    n_layers = model.config.text_config.num_hidden_layers
    heads_needed = ({"union": 1, "ordered": 2}[cfg.answer_attend_mode]
                    + {"": 0, "correct": 1, "both": 2}[cfg.answer_attend_options])
    if cfg.answer_attend_weight > 0 and model.config.text_config.num_attention_heads < ATTEND_HEAD + heads_needed:
        raise ValueError(f"PretrainConfig.answer_attend_mode / answer_attend_options supervise {heads_needed} "
                         f"attention heads; the language model has {model.config.text_config.num_attention_heads}")
    if cfg.mention_layer > n_layers:
        raise ValueError(f"PretrainConfig.mention_layer must be <= the language model's "
                         f"{model.config.text_config.num_hidden_layers} layers; got {cfg.mention_layer}")
    torch.manual_seed(cfg.seed)
    vision_params = list(model.model.visual.parameters())
    vision_ids = {id(p) for p in vision_params}
    llm_params = [p for p in model.parameters() if id(p) not in vision_ids]
    head_params = list(heads.parameters())
    opt = torch.optim.AdamW([{"params": vision_params, "lr": 0.0}, {"params": llm_params, "lr": 0.0},
                             {"params": head_params, "lr": 0.0}], weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    sampler = Sampler(bank, cfg, cfg.seed)
    model.train()
    heads.train()

    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    history: list[dict[str, Any]] = []
    ema: dict[str, float] = {}
    try:
        with open(tmp / "pretrain_log.jsonl", "w", encoding="utf-8") as logf:

            def write(rec: dict[str, Any]) -> None:
                logf.write(json.dumps(rec) + "\n")
                logf.flush()

            def track(values: dict[str, Any]) -> None:
                for k, v in values.items():
                    x = float(v.detach()) if hasattr(v, "detach") else float(v)
                    ema[k] = 0.9 * ema.get(k, x) + 0.1 * x

            # Stage 1: the vision tower alone on the dense truth (cheap: no language model).
            t1 = time.perf_counter()
            bar = tqdm(total=cfg.dense_steps, desc="stage 1: dense", unit="step", disable=not progress,
                       dynamic_ncols=True, file=sys.stderr)
            for step in range(cfg.dense_steps):
                f = _lr_factor(step / max(1, cfg.dense_steps), cfg.warmup_frac, cfg.min_lr_ratio)
                opt.param_groups[0]["lr"], opt.param_groups[1]["lr"] = cfg.lr_vision * f, 0.0
                opt.param_groups[2]["lr"] = cfg.lr_heads * f
                views = sampler.draw_views(cfg.dense_images)
                losses = _forward(model, heads, _collate(bank, model, mean, std, views, None), scales)
                loss = sum(losses.values())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                vnorm = _grad_norm(vision_params)
                torch.nn.utils.clip_grad_norm_(vision_params + head_params, cfg.grad_clip)
                opt.step()
                track(losses)
                bar.update(1)
                if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.dense_steps:
                    bar.set_postfix({k: f"{v:.3f}" for k, v in ema.items()})
                    write({"stage": "dense", "step": step + 1, "seconds": round(time.perf_counter() - t1, 1),
                           "lr_vision": opt.param_groups[0]["lr"], "grad/vision_norm": vnorm,
                           **{f"loss/{k}": round(v, 5) for k, v in ema.items()}})
            bar.close()
            dense_seconds = time.perf_counter() - t1
            if cfg.dense_steps:
                log(f"stage 1 (dense truth, vision tower only): {cfg.dense_steps} steps in {dense_seconds:.0f} s; "
                    + ", ".join(f"{k} {v:.3f}" for k, v in ema.items()))

            # Stages 2 and 3: the whole model on grounding texts, then on all QA families mixed.
            clock = _Clock(cfg)
            total = cfg.steps if cfg.steps is not None else int(cfg.minutes * 60)
            bar = tqdm(total=total, desc="stages 2-3: language", unit="step" if cfg.steps else "s",
                       disable=not progress, dynamic_ncols=True, file=sys.stderr)
            checked, last_bar = False, 0
            while not clock.done():
                p = clock.progress()
                stage = "ground" if p < cfg.ground_frac else "mix"
                f = _lr_factor(p, cfg.warmup_frac, cfg.min_lr_ratio)
                opt.param_groups[0]["lr"] = cfg.lr_vision_late * f
                opt.param_groups[1]["lr"] = cfg.lr_llm * f
                opt.param_groups[2]["lr"] = cfg.lr_heads * f
                views, questions = sampler.draw(stage)
                batch = _collate(bank, model, mean, std, views, questions)
                extras: dict[str, Any] = {}
                losses = _forward(model, heads, batch, scales, llm_aux_layer=cfg.llm_aux_layer, extras=extras,
                                  mention_layer=cfg.mention_layer, attn_weight=cfg.attend_weight,
                                  answer_attn_weight=cfg.answer_attend_weight, count_sink=cfg.count_sink,
                                  answer_attn_mode=cfg.answer_attend_mode,
                                  answer_attn_options=cfg.answer_attend_options,
                                  compare=cfg.compare_weight > 0 and 0 < cfg.mention_layer < n_layers)
                dense = sum(v for k, v in losses.items() if k not in NON_DENSE_LOSSES)
                loss = (losses["answer"] + cfg.dense_weight_late * (dense + losses.get("llm_aux", 0.0))
                        + cfg.mention_weight * losses.get("mention", 0.0)
                        + cfg.attend_weight * losses.get("attend", 0.0)
                        + cfg.answer_attend_weight * losses.get("answer_attend", 0.0)
                        + cfg.compare_weight * losses.get("compare", 0.0))
                opt.zero_grad(set_to_none=True)
                if (clock.step + 1) % cfg.log_every == 0:  # how much the answers pull on the image tokens
                    (g_img,) = torch.autograd.grad(losses["answer"], extras["tokens"], retain_graph=True)
                    extras["image_grad_norm"] = float(g_img.norm())
                loss.backward()
                vnorm = _grad_norm(vision_params)
                torch.nn.utils.clip_grad_norm_(vision_params + llm_params + head_params, cfg.grad_clip)
                opt.step()
                clock.step += 1
                track({**losses, **{k: v for k, v in extras.items() if k.startswith("answer_")}})
                if clock.step % cfg.log_every == 0:
                    write({"stage": stage, "step": clock.step, "seconds": round(time.perf_counter() - clock.start, 1),
                           "lr_vision": opt.param_groups[0]["lr"], "lr_llm": opt.param_groups[1]["lr"],
                           "grad/vision_norm": vnorm, "grad/image_from_answers": extras.get("image_grad_norm"),
                           **{f"loss/{k}": round(v, 5) for k, v in ema.items()}})
                if clock.step % cfg.eval_every == 0 or clock.done():
                    model.eval()
                    h = _heldout_losses(model, heads, held_batch, scales, cfg.mention_layer)
                    model.train()
                    rec = {"stage": stage, "step": clock.step, "seconds": round(time.perf_counter() - clock.start, 1),
                           "grad/vision_norm": vnorm, **{f"heldout/{k}": round(v, 5) for k, v in h.items()}}
                    history.append(rec)
                    write(rec)
                    fams = "".join(f"; {f} gap {h[f + '_gap']:+.3f}" for f in ("qa", "ground") if f + "_gap" in h)
                    if "mention_true" in h:
                        fams += f"; mention loss {h['mention_true']:.3f} vs {h['mention_shuffled']:.3f} shuffled"
                    log(f"step {clock.step} ({rec['seconds']:.0f} s, {stage}): held-out answer loss "
                        f"{h['true']:.3f} true vs {h['shuffled']:.3f} shuffled images (gap {h['gap']:+.3f}{fams}); "
                        f"vision grad norm {vnorm:.3g}")
                    if not checked and clock.progress() >= cfg.ignore_check:
                        checked = True
                        if h["gap"] < cfg.min_image_gap:
                            raise ImageIgnoredError(
                                f"the model ignores the image: after {clock.step} steps its held-out answer loss is "
                                f"{h['true']:.3f} with the true images and {h['shuffled']:.3f} with shuffled ones "
                                f"(gap {h['gap']:+.3f} < min_image_gap {cfg.min_image_gap}); vision-tower gradient "
                                f"norm {vnorm:.3g}. Check the image normalisation (normalize='world'), raise "
                                "dense_steps or lower lr_llm; see docs/pretraining.md")
                now = clock.step if cfg.steps is not None else int(time.perf_counter() - clock.start)
                bar.update(now - last_bar)
                last_bar = now
                bar.set_postfix(stage=stage, answer=f"{ema.get('answer', 0):.3f}")
            bar.close()
        train_seconds = time.perf_counter() - clock.start
        _save(model, processor, tmp, cfg)
        final = history[-1] if history else {}
        summary = {
            "out": str(out), "size": cfg.size, "parameters": n_params, "dense_steps": cfg.dense_steps,
            "steps": clock.step, "data_seconds": round(t_data, 1), "dense_seconds": round(dense_seconds, 1),
            "train_seconds": round(train_seconds, 1), "total_seconds": round(time.perf_counter() - t_start, 1),
            "heldout_loss_true": final.get("heldout/true"), "heldout_loss_shuffled": final.get("heldout/shuffled"),
            "heldout_gap": final.get("heldout/gap"), "config": cfg.to_dict(),
        }
        (tmp / "pretrain_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def _save(model: Any, processor: Any, path: Path, cfg: PretrainConfig) -> None:
    """A plain Qwen2.5-VL checkpoint (no auxiliary heads) in ``cfg.save_dtype``."""
    import torch

    from spatialrl.models import PROMPT_SEPARATOR_KEY

    model.eval()
    setattr(model.config, PROMPT_SEPARATOR_KEY, cfg.prompt_separator)  # the prompt it learned
    dtype = torch.float16 if cfg.save_dtype == "float16" else torch.float32
    model.to(dtype).save_pretrained(path)
    processor.save_pretrained(path)
    model.to(torch.float32)
    # Half-precision storage, single-precision compute: ``dtype="auto"`` (the eval runner's and
    # TRL's default) then loads float32 weights, which run several times faster than float16 on
    # a CPU; GPU users pass dtype=torch.bfloat16 as for any checkpoint.
    config_path = path / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["dtype"] = "float32"
    config_path.write_text(json.dumps(config, indent=2, sort_keys=False) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="checkpoint directory to write")
    parser.add_argument("--size", choices=SIZES, default="small", help="model size (default small, ~3.9 M parameters)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, default=None, metavar="N", help="language-stage optimizer steps (reproducible; default "
                        + ", ".join(f"{n} for {size}" for size, n in DEFAULT_STEPS.items())
                        + "; small's default takes ~57 min on a 2-core CPU)")
    budget.add_argument("--minutes", type=float, default=None, metavar="M", help="training wall-clock budget")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of weights, tokenizer corpus, batches")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe field (JSON value), e.g. --set scenes=2000 --set lr_llm=1e-3; "
                             "--list-keys shows them all")
    parser.add_argument("--eval-data", default=None, metavar="DIR",
                        help="held-out evaluation build (spatialrl data build --seed 0 --scenes 1000); built in a "
                             "temporary directory when not given")
    parser.add_argument("--no-eval", action="store_true",
                        help="skip the held-out evaluation (the model card then has no scores)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--list-keys", action="store_true", help="print every recipe field and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _parse_overrides(items: list[str]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(PretrainConfig)}
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        key, raw = item.split("=", 1)
        key = key.strip()
        if key not in names:
            raise ValueError(f"--set {key}: unknown field; choose from {', '.join(sorted(names))}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def run(args: argparse.Namespace) -> int:
    if args.list_keys:
        print(PretrainConfig.describe())
        return 0
    try:
        overrides = _parse_overrides(args.overrides)
        steps, minutes = args.steps, args.minutes
        if steps is None and minutes is None:
            steps = DEFAULT_STEPS[args.size]
        cfg = PretrainConfig(out=args.out, size=args.size, seed=args.seed, steps=steps, minutes=minutes,
                             **overrides)
        out = Path(cfg.out)
        if out.exists() and any(out.iterdir()) and not args.overwrite:
            raise ValueError(f"--out {out} exists and is not empty; choose another directory or pass --overwrite")
    except ValueError as exc:
        print(f"spatialrl pretrain: error: {exc}", file=sys.stderr)
        return 2
    log = lambda m: print(m, flush=True)  # noqa: E731
    try:
        summary = pretrain(cfg, progress=not args.quiet, log=log)
    except ImageIgnoredError as exc:
        print(f"spatialrl pretrain: error: {exc}", file=sys.stderr)
        return 3
    evaluation = None
    if not args.no_eval:
        from spatialrl.eval.pretrain_eval import evaluate

        evaluation = evaluate(summary["out"], args.eval_data, progress=not args.quiet, log=log)
        report = evaluation["heldout"]
        log(f"held-out ({evaluation['items']} items): overall {report['overall']:.1f}; "
            + ", ".join(f"{k} {v:.1f}" for k, v in report["per_type"].items()))
    write_card(summary, evaluation, command_line(args, cfg))
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=2))
    return 0


def command_line(args: argparse.Namespace, cfg: PretrainConfig) -> str:
    """The ``spatialrl pretrain`` command that reproduces ``cfg`` (budget, seed, overrides)."""
    parts = ["spatialrl pretrain --out DIR", f"--size {cfg.size}"]
    parts.append(f"--steps {cfg.steps}" if cfg.steps is not None else f"--minutes {cfg.minutes:g}")
    parts.append(f"--seed {cfg.seed}")
    parts += [f"--set {item}" for item in args.overrides]
    return " ".join(parts)


def write_card(summary: dict[str, Any], evaluation: dict[str, Any] | None, command: str) -> None:
    """Write the model card (``README.md``) and the evaluation (``eval.json``) into the checkpoint,
    each through a temporary file and a rename."""
    from spatialrl._fs import write_text_atomic
    from spatialrl.eval.predictions import write_json_atomic
    from spatialrl.eval.pretrain_eval import model_card

    out = Path(summary["out"])
    write_text_atomic(out / "README.md", model_card(summary, evaluation, command))
    if evaluation is not None:
        write_json_atomic(out / "eval.json", {k: v for k, v in evaluation.items()})


#: Default step counts per size (fit the 60-minute budget on a 2-core CPU; docs/pretraining.md).
DEFAULT_STEPS = {"small": 3000, "base": 1000}
