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
THINK_MODES = ("empty", "template")

#: The world's pixel statistics (mean and std per RGB channel of 100 renders at 112 px, world seed
#: 7, ``spatialrl.train.pretrain_data.make_views``): the grey room normalises to about 0.
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
    steps: int | None = _f(None, "optimizer steps (exclusive with minutes); reproducible")
    minutes: float | None = _f(None, "training-loop wall-clock budget in minutes (exclusive with steps)")
    world_seed: int = _f(7, "world seed of the training scenes (the held-out evaluation build uses seed 0)")
    scenes: int = _f(6000, "training scenes (each gives an original and a mirrored view)")
    heldout_scenes: int = _f(16, "extra scenes (after the training ones) for the held-out loss diagnostics")
    image_size: int = _f(112, "image side in pixels (a multiple of 28; 112 gives 16 image tokens)")
    images_per_step: int = _f(8, "images per optimizer step (vision tower runs once per image)")
    questions_per_image: int = _f(4, "questions asked of each image in a step (batch = images x questions)")
    dense_frac: float = _f(0.06, "share of the budget for stage 1 (vision tower on dense truth only)")
    ground_frac: float = _f(0.14, "share of the budget for stage 2 (grounding texts + some QA + dense)")
    ground_qa_share: float = _f(0.3, "share of QA among the questions of stage 2")
    mix_ground_share: float = _f(0.25, "share of grounding texts among the questions of stage 3")
    type_weights: dict[str, float] = _f({}, "relative sampling weight per QA question type in stages 2-3 (default 1)")
    lr_vision: float = _f(2e-3, "peak learning rate of the vision tower and merger")
    lr_llm: float = _f(2e-3, "peak learning rate of the language model")
    lr_heads: float = _f(3e-3, "peak learning rate of the auxiliary heads")
    warmup_frac: float = _f(0.03, "share of each stage's budget spent warming up its learning rate")
    min_lr_ratio: float = _f(0.05, "final learning rate as a share of the peak (cosine decay)")
    weight_decay: float = _f(0.01, "AdamW weight decay")
    grad_clip: float = _f(1.0, "gradient norm clip")
    dense_weight: float = _f(1.0, "weight of the dense losses in stage 1")
    dense_weight_late: float = _f(0.3, "weight of the dense losses in stages 2-3")
    llm_aux_layer: int = _f(-1, "also apply position heads to this language-model layer's image tokens (-1: off)")
    rope_theta: float | None = _f(None, "language-model RoPE base (None: the tiny model's 1e6)")
    mrope_section: list[int] | None = _f(None, "language-model mRoPE split (t, h, w) of head_dim / 2 (None: default)")
    think: str = _f("empty", "<think> block of targets: empty ('<think></think>') or template (sft's rationale)")
    normalize: str = _f("world", "processor normalisation: world (room ~ 0) or clip (Qwen's CLIP mean/std)")
    eval_every: int = _f(100, "steps between held-out diagnostics")
    heldout_samples: int = _f(64, "held-out questions for the true-vs-shuffled loss diagnostic")
    ignore_check: float = _f(0.3, "share of the budget after which a small image gap stops the run")
    min_image_gap: float = _f(0.05, "minimum held-out loss gap (shuffled - true, nats/token) at ignore_check (negative: no check)")
    threads: int = _f(1, "torch CPU threads (1 is steadiest on a shared machine)")
    save_dtype: str = _f("float16", "dtype of the saved weights: float16 or float32")
    log_every: int = _f(10, "steps between log lines in pretrain_log.jsonl")

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> None:
            raise ValueError(f"PretrainConfig.{name} {why}; got {getattr(self, name)!r}")

        if self.size not in SIZES:
            bad("size", f"must be one of {SIZES}")
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
        if self.heldout_scenes < 1:
            bad("heldout_scenes", "must be >= 1")
        if self.image_size < 56 or self.image_size % 28:
            bad("image_size", "must be a multiple of 28 and at least 56")
        for name in ("images_per_step", "questions_per_image", "eval_every", "heldout_samples", "threads", "log_every"):
            if getattr(self, name) < 1:
                bad(name, "must be >= 1")
        for name in ("dense_frac", "ground_frac", "ground_qa_share", "mix_ground_share", "warmup_frac",
                     "min_lr_ratio", "ignore_check"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                bad(name, "must be in [0, 1]")
        if self.dense_frac + self.ground_frac >= 1.0:
            raise ValueError("PretrainConfig.dense_frac + ground_frac must be < 1 (stage 3 needs a share); got "
                             f"{self.dense_frac} + {self.ground_frac}")
        for name in ("lr_vision", "lr_llm", "lr_heads", "grad_clip"):
            if not getattr(self, name) > 0:
                bad(name, "must be > 0")
        for name in ("weight_decay", "dense_weight", "dense_weight_late"):
            if getattr(self, name) < 0:
                bad(name, "must be >= 0")
        from spatialrl.world.questions import QUESTION_TYPES

        unknown = [k for k in self.type_weights if k not in QUESTION_TYPES]
        if unknown:
            bad("type_weights", f"has unknown question type(s) {unknown}; use some of {', '.join(QUESTION_TYPES)}")
        if any(v < 0 for v in self.type_weights.values()):
            bad("type_weights", "must map to weights >= 0")
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

    if size == "small":
        base = TINY_SIZES["small"]
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
    from spatialrl.train.pretrain_data import make_views

    def grounding() -> Any:
        for i in range(40):
            for view in make_views(10_000_000 + i, cfg.world_seed, cfg.image_size):
                for _, q, a in view.texts:
                    yield q
                    yield a

    return itertools.chain(corpus(100, cfg.seed, cfg.image_size), grounding())


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
    def build(hidden: int, llm_hidden: int | None) -> Any:
        import torch
        from torch import nn

        from spatialrl.train.pretrain_data import CLASS_NAMES, COLOR_NAMES

        n_cls, n_col = len(CLASS_NAMES), len(COLOR_NAMES)

        class Heads(nn.Module):
            """Linear heads on merged vision tokens: per sub-patch (4 per token) class logits,
            colour logits, log depth, 8 object targets, 2 position targets; per image 3 scene
            targets from the token mean. Optionally position heads on a language-model layer."""

            def __init__(self) -> None:
                super().__init__()
                self.sizes = (n_cls, n_col, 1, 8, 2)
                self.dense = nn.Linear(hidden, 4 * sum(self.sizes))
                self.scene = nn.Linear(hidden, 3)
                self.llm = nn.Linear(llm_hidden, 4 * 10) if llm_hidden else None

            def forward(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
                # tokens: (n_images * 16, hidden) -> per sub-patch predictions (n_images * 64, ...)
                out = self.dense(tokens).reshape(tokens.shape[0] * 4, sum(self.sizes))
                cls, col, depth, obj, pos = out.split(self.sizes, dim=-1)
                return {"cls": cls, "col": col, "depth": depth.squeeze(-1), "obj": obj, "pos": pos}

        return Heads()


# --------------------------------------------------------------------------------------
# Data bank
# --------------------------------------------------------------------------------------


class Bank:
    """Every view's image, dense truth and tokenised questions, ready for batching."""

    def __init__(self, views: list[Any], processor: Any, think: str, image_size: int, progress: bool = False):
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
        # Tokenise every question once: items[i] = list of (family, type, prompt ids, target ids)
        questions, targets, keys = [], [], []
        for vi, v in enumerate(views):
            for qt, q, a in v.qa:
                keys.append((vi, "qa", qt))
                questions.append(prompt_text(q))
                targets.append(target_text(a, qt, think))
            for kind, q, a in v.texts:
                keys.append((vi, "ground", kind))
                questions.append(prompt_text(q))
                targets.append(target_text(a, None, think))
        q_ids = tok(questions, add_special_tokens=False)["input_ids"]
        t_ids = tok(targets, add_special_tokens=False)["input_ids"]
        self.items: list[dict[str, list[tuple[str, list[int], list[int]]]]] = [{"qa": [], "ground": []} for _ in views]
        for (vi, fam, kind), qi, ti in zip(keys, q_ids, t_ids):
            self.items[vi][fam].append((kind, qi, ti))

    def sequence(self, prompt_ids: list[int], target_ids: list[int]) -> tuple[list[int], int]:
        """Token ids of one conversation and the index where the answer starts."""
        ids = (self.prefix + [self.image_token_id] * self.n_image_tokens + self.after_image + prompt_ids
               + self.suffix)
        start = len(ids)
        return ids + target_ids + [self.eos], start


def target_text(answer: str, question_type: str | None, think: str) -> str:
    """``<think>...</think><answer>{answer}</answer>``: the format the format reward checks. With
    ``think='template'`` the rationale is ``spatialrl.train.sft``'s per question type."""
    rationale = ""
    if think == "template":
        try:
            from spatialrl.train.sft import think_text

            rationale = think_text(question_type, "template")
        except Exception:  # pragma: no cover - sft is optional here
            rationale = "I look at the image."
    return f"<think>{rationale}</think><answer>{answer}</answer>"


def make_bank(cfg: PretrainConfig, processor: Any, indices: range, progress: bool, desc: str) -> Bank:
    from tqdm.auto import tqdm

    from spatialrl.train.pretrain_data import make_views

    views = []
    for i in tqdm(indices, desc=desc, unit="scene", disable=not progress, dynamic_ncols=True, file=sys.stderr):
        views.extend(make_views(i, cfg.world_seed, cfg.image_size))
    return Bank(views, processor, cfg.think, cfg.image_size)


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


def _collate(bank: Bank, model: Any, mean: Any, std: Any, views: list[int],
             questions: list[tuple[int, list[int], list[int], str]] | None) -> Batch:
    """A batch of ``views`` (indices into the bank) and, optionally, questions
    ``(image slot, prompt ids, target ids, kind)`` asked of them."""
    import numpy as np
    import torch

    from spatialrl.train.pretrain_data import patchify

    imgs = bank.images[views]
    pixel_values = torch.from_numpy(patchify(imgs, mean, std))
    g = bank.images.shape[1] // 14
    grid_thw = torch.tensor([[1, g, g]] * len(views))
    dense = {k: torch.from_numpy(np.ascontiguousarray(v[views])) for k, v in bank.dense.items()}
    batch = Batch(pixel_values, grid_thw, dense)
    if not questions:
        return batch
    seqs, starts = zip(*(bank.sequence(p, t) for _, p, t, _ in questions))
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
    return batch


class Sampler:
    """Draws the views and questions of a step (seeded)."""

    def __init__(self, bank: Bank, cfg: PretrainConfig, seed: int):
        import numpy as np

        self.bank, self.cfg = bank, cfg
        self.rng = np.random.default_rng(seed)

    def draw(self, stage: str) -> tuple[list[int], list[tuple[int, list[int], list[int], str]]]:
        cfg, rng = self.cfg, self.rng
        views = [int(v) for v in rng.choice(self.bank.n, size=cfg.images_per_step, replace=False)]
        if stage == "dense":
            return views, []
        ground_share = 1.0 - cfg.ground_qa_share if stage == "ground" else cfg.mix_ground_share
        questions = []
        for slot, v in enumerate(views):
            pools = self.bank.items[v]
            for _ in range(cfg.questions_per_image):
                fam = "ground" if (rng.random() < ground_share and pools["ground"]) or not pools["qa"] else "qa"
                pool = pools[fam]
                if fam == "qa" and cfg.type_weights:
                    w = [cfg.type_weights.get(k, 1.0) for k, _, _ in pool]
                    s = sum(w)
                    k = int(rng.choice(len(pool), p=[x / s for x in w])) if s > 0 else int(rng.integers(len(pool)))
                else:
                    k = int(rng.integers(len(pool)))
                kind, p, t = pool[k]
                questions.append((slot, p, t, f"{fam}:{kind}"))
        return views, questions


# --------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------


def _dense_losses(pred: dict[str, Any], target: dict[str, Any], obj_scale: Any) -> dict[str, Any]:
    import torch.nn.functional as F

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
    obj_t = (target["obj"].reshape(-1, 8) - mean) / std
    err = F.smooth_l1_loss(pred["obj"], obj_t, beta=0.5, reduction="none").mean(-1)
    out["obj"] = (err * mask).sum() / mask.sum().clamp(min=1.0)
    return out


def _answer_loss(logits_fn: Any, hidden: Any, labels: Any, reduce: bool = True) -> Any:
    """Cross-entropy of the answer tokens (labels != -100), computing logits only there."""
    import torch
    import torch.nn.functional as F

    sel = labels != -100
    logits = logits_fn(hidden[sel])
    loss = F.cross_entropy(logits.float(), labels[sel], reduction="none")
    if reduce:
        return loss.mean()
    return loss


def _forward(model: Any, heads: Any, batch: Batch, obj_scale: Any, image_perm: Any = None,
             llm_aux_layer: int = -1, n_chunks: int = 2) -> dict[str, Any]:
    """Losses of one batch. ``image_perm`` permutes which image each question sees (diagnostics)."""
    import torch

    vis = model.model.visual(batch.pixel_values, grid_thw=batch.grid_thw)
    tokens = vis.pooler_output  # (n_images * 16, hidden), raster order per image
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
    nll_sum, n_tokens, aux_terms = 0.0, 0, []
    for idx_c in chunks:
        L = int(lengths[idx_c].max())
        ids = batch.input_ids[idx_c, :L]
        embeds = model.model.get_input_embeddings()(ids)
        mask = ids == model.config.image_token_id
        feats = per_image[which[idx_c]].reshape(-1, per_image.shape[-1]).to(embeds.dtype)
        embeds = embeds.masked_scatter(mask.unsqueeze(-1), feats)
        out = model.model.language_model(inputs_embeds=embeds, attention_mask=batch.attention_mask[idx_c, :L],
                                         position_ids=batch.position_ids[:, idx_c, :L], use_cache=False,
                                         output_hidden_states=llm_aux_layer >= 0)
        labels = batch.labels[idx_c, :L]
        nll = _answer_loss(model.lm_head, out.last_hidden_state, labels, reduce=False)
        nll_sum = nll_sum + nll.sum()
        n_tokens += int((labels != -100).sum())
        if llm_aux_layer >= 0 and heads.llm is not None:
            aux_terms.append(_llm_aux_loss(heads, out.hidden_states[llm_aux_layer + 1][mask], batch,
                                           batch.image_of_seq[idx_c], n_tok, obj_scale))
    losses["answer"] = nll_sum / max(1, n_tokens)
    if aux_terms:
        losses["llm_aux"] = sum(aux_terms) / len(aux_terms)
    return losses


def _llm_aux_loss(heads: Any, h: Any, batch: Batch, image_of_seq: Any, n_tok: int, obj_scale: Any) -> Any:
    """Position heads on a language-model layer's image tokens (``h``: (n_seq * n_tok, hidden))."""
    import torch
    import torch.nn.functional as F

    pred = heads.llm(h).reshape(-1, 10)
    reps = image_of_seq.repeat_interleave(n_tok * 4)
    idx = reps * (n_tok * 4) + torch.arange(n_tok * 4).repeat(len(image_of_seq))
    pos_t = batch.dense["pos"].reshape(-1, 2)[idx] * 4.0
    obj_t = ((batch.dense["obj"].reshape(-1, 8) - obj_scale[0]) / obj_scale[1])[idx]
    m = batch.dense["obj_mask"].reshape(-1)[idx]
    lp = F.smooth_l1_loss(pred[:, :2], pos_t, beta=0.5)
    lo = (F.smooth_l1_loss(pred[:, 2:], obj_t, beta=0.5, reduction="none").mean(-1) * m).sum() / m.sum().clamp(min=1)
    return lp + lo


def _heldout_losses(model: Any, heads: Any, batch: Batch, obj_scale: Any) -> dict[str, float]:
    """Held-out answer loss with the true images and with a derangement of the images."""
    import torch

    n = batch.grid_thw.shape[0]
    perm = torch.roll(torch.arange(n), 1)
    with torch.no_grad():
        true = _forward(model, heads, batch, obj_scale)
        shuffled = _forward(model, heads, batch, obj_scale, image_perm=perm)
    return {"true": float(true["answer"]), "shuffled": float(shuffled["answer"]),
            "gap": float(shuffled["answer"] - true["answer"]),
            **{f"dense_{k}": float(v) for k, v in true.items() if k != "answer"}}


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------


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


def _stage(cfg: PretrainConfig, p: float) -> str:
    if p < cfg.dense_frac:
        return "dense"
    if p < cfg.dense_frac + cfg.ground_frac:
        return "ground"
    return "mix"


def _lr_factor(cfg: PretrainConfig, p: float, part: str) -> float:
    """Warm-up then cosine decay. The vision tower and heads follow the whole budget; the
    language model starts at stage 2 with its own warm-up."""
    start = 0.0 if part != "llm" else cfg.dense_frac
    if p < start:
        return 0.0
    span = max(1e-9, 1.0 - start)
    q = (p - start) / span
    warm = cfg.warmup_frac
    if q < warm:
        return (q + 1e-3) / warm
    t = (q - warm) / max(1e-9, 1.0 - warm)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def _grad_norm(params: list[Any]) -> float:
    import torch

    norms = [p.grad.detach().norm() for p in params if p.grad is not None]
    return float(torch.norm(torch.stack(norms))) if norms else 0.0


def pretrain(cfg: PretrainConfig, progress: bool = True, log: Any = print) -> dict[str, Any]:
    """Run the recipe and save the checkpoint to ``cfg.out`` (atomically). Returns a summary."""
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out).absolute()
    t_start = time.perf_counter()
    model, processor = build_model(cfg)
    ip = processor.image_processor
    mean, std = ip.image_mean, ip.image_std
    n_params = sum(p.numel() for p in model.parameters())
    log(f"pretrain: {cfg.size} model, {n_params:,} parameters; building {cfg.scenes} training scenes "
        f"(world seed {cfg.world_seed}) ...")
    bank = make_bank(cfg, processor, range(cfg.scenes), progress, "scenes")
    held = make_bank(cfg, processor, range(cfg.scenes, cfg.scenes + cfg.heldout_scenes), False, "held-out")
    t_data = time.perf_counter() - t_start

    # Held-out diagnostic batch: QA of held-out views (each question sees its own view's image).
    hrng = np.random.default_rng(cfg.seed + 1)
    h_views = list(range(held.n))
    h_questions = []
    for slot, v in enumerate(h_views):
        for kind, p, t in held.items[v]["qa"]:
            h_questions.append((slot, p, t, f"qa:{kind}"))
    order = hrng.permutation(len(h_questions))[: cfg.heldout_samples]
    h_questions = [h_questions[i] for i in sorted(order)]
    held_batch = _collate(held, model, mean, std, h_views, h_questions)

    obj = bank.dense["obj"].reshape(-1, 8)
    m = bank.dense["obj_mask"].reshape(-1) > 0
    obj_scale = (torch.tensor(obj[m].mean(0)), torch.tensor(obj[m].std(0) + 1e-3))

    heads = AuxHeads.build(model.config.text_config.hidden_size,
                           model.config.text_config.hidden_size if cfg.llm_aux_layer >= 0 else None)
    torch.manual_seed(cfg.seed)
    vision_params = list(model.model.visual.parameters())
    vision_ids = {id(p) for p in vision_params}
    llm_params = [p for p in model.parameters() if id(p) not in vision_ids]
    head_params = list(heads.parameters())
    groups = [
        {"params": vision_params, "lr": cfg.lr_vision, "part": "vision", "peak": cfg.lr_vision},
        {"params": llm_params, "lr": cfg.lr_llm, "part": "llm", "peak": cfg.lr_llm},
        {"params": head_params, "lr": cfg.lr_heads, "part": "heads", "peak": cfg.lr_heads},
    ]
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    sampler = Sampler(bank, cfg, cfg.seed)
    model.train()
    heads.train()

    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    log_path = tmp / "pretrain_log.jsonl"
    clock = _Clock(cfg)
    total = cfg.steps if cfg.steps is not None else int(cfg.minutes * 60)
    bar = tqdm(total=total, desc="pretrain", unit="step" if cfg.steps else "s", disable=not progress,
               dynamic_ncols=True, file=sys.stderr)
    history: list[dict[str, Any]] = []
    checked = False
    last_bar = 0
    ema: dict[str, float] = {}
    try:
        with open(log_path, "w", encoding="utf-8") as logf:
            while not clock.done():
                p = clock.progress()
                stage = _stage(cfg, p)
                for g in opt.param_groups:
                    g["lr"] = g["peak"] * _lr_factor(cfg, p, g["part"])
                views, questions = sampler.draw(stage)
                batch = _collate(bank, model, mean, std, views, questions)
                losses = _forward(model, heads, batch, obj_scale, llm_aux_layer=cfg.llm_aux_layer)
                dw = cfg.dense_weight if stage == "dense" else cfg.dense_weight_late
                loss = dw * sum(v for k, v in losses.items() if k not in ("answer", "llm_aux"))
                if "answer" in losses:
                    loss = loss + losses["answer"]
                if "llm_aux" in losses:
                    loss = loss + dw * losses["llm_aux"]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                vnorm = _grad_norm(vision_params)
                torch.nn.utils.clip_grad_norm_(vision_params + llm_params + head_params, cfg.grad_clip)
                opt.step()
                clock.step += 1
                for k, v in losses.items():
                    x = float(v.detach())
                    ema[k] = 0.9 * ema.get(k, x) + 0.1 * x
                if clock.step % cfg.log_every == 0:
                    rec = {"step": clock.step, "seconds": round(time.perf_counter() - clock.start, 1), "stage": stage,
                           "lr_vision": opt.param_groups[0]["lr"], "lr_llm": opt.param_groups[1]["lr"],
                           "grad/vision_norm": vnorm, **{f"loss/{k}": round(v, 5) for k, v in ema.items()}}
                    logf.write(json.dumps(rec) + "\n")
                    logf.flush()
                if stage != "dense" and (clock.step % cfg.eval_every == 0 or clock.done()):
                    model.eval()
                    h = _heldout_losses(model, heads, held_batch, obj_scale)
                    model.train()
                    rec = {"step": clock.step, "seconds": round(time.perf_counter() - clock.start, 1), "stage": stage,
                           "grad/vision_norm": vnorm, **{f"heldout/{k}": round(v, 5) for k, v in h.items()}}
                    history.append(rec)
                    logf.write(json.dumps(rec) + "\n")
                    logf.flush()
                    log(f"step {clock.step} ({rec['seconds']:.0f} s, {stage}): held-out answer loss "
                        f"{h['true']:.3f} true vs {h['shuffled']:.3f} shuffled images (gap {h['gap']:+.3f}); "
                        f"vision grad norm {vnorm:.3g}")
                    if not checked and clock.progress() >= cfg.ignore_check:
                        checked = True
                        if h["gap"] < cfg.min_image_gap:
                            raise ImageIgnoredError(
                                f"the model ignores the image: after {clock.step} steps its held-out answer loss is "
                                f"{h['true']:.3f} with the true images and {h['shuffled']:.3f} with shuffled ones "
                                f"(gap {h['gap']:+.3f} < min_image_gap {cfg.min_image_gap}); vision-tower gradient "
                                f"norm {vnorm:.3g}. Check the image normalisation (normalize='world'), raise "
                                "dense_frac / ground_frac or lr_vision; see docs/pretraining.md")
                if progress:
                    now = clock.step if cfg.steps is not None else int(time.perf_counter() - clock.start)
                    bar.update(now - last_bar)
                    last_bar = now
                    bar.set_postfix(stage=stage, **{k: f"{v:.3f}" for k, v in ema.items() if k in ("answer", "depth")})
        bar.close()
        train_seconds = time.perf_counter() - clock.start
        _save(model, processor, tmp, cfg)
        final = history[-1] if history else {}
        summary = {
            "out": str(out), "size": cfg.size, "parameters": n_params, "steps": clock.step,
            "train_seconds": round(train_seconds, 1), "data_seconds": round(t_data, 1),
            "total_seconds": round(time.perf_counter() - t_start, 1),
            "heldout_loss_true": final.get("heldout/true"), "heldout_loss_shuffled": final.get("heldout/shuffled"),
            "heldout_gap": final.get("heldout/gap"), "config": cfg.to_dict(),
        }
        (tmp / "pretrain_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        _commit(tmp, out)
    except BaseException:
        bar.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def _save(model: Any, processor: Any, path: Path, cfg: PretrainConfig) -> None:
    """A plain Qwen2.5-VL checkpoint (no auxiliary heads) in ``cfg.save_dtype``."""
    import torch

    model.eval()
    dtype = torch.float16 if cfg.save_dtype == "float16" else torch.float32
    model.to(dtype).save_pretrained(path)
    processor.save_pretrained(path)
    model.to(torch.float32)


def _commit(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="checkpoint directory to write")
    parser.add_argument("--size", choices=SIZES, default="small", help="model size (default small, ~3.9 M parameters)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, default=None, metavar="N", help="optimizer steps (reproducible)")
    budget.add_argument("--minutes", type=float, default=None, metavar="M", help="training wall-clock budget")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of weights, tokenizer corpus, batches")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe field (JSON value), e.g. --set scenes=2000 --set lr_llm=1e-3; "
                             "--list-keys shows them all")
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
    try:
        summary = pretrain(cfg, progress=not args.quiet, log=lambda m: print(m, flush=True))
    except ImageIgnoredError as exc:
        print(f"spatialrl pretrain: error: {exc}", file=sys.stderr)
        return 3
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=2))
    return 0


#: Default step counts per size (fit the 60-minute budget on a 2-core CPU; docs/pretraining.md).
DEFAULT_STEPS = {"small": 3000, "base": 1500}
