"""The pretraining recipe: :class:`PretrainConfig`, one documented field per setting, validated
in ``__post_init__`` with errors that name the field."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PretrainConfig", "SIZES"]

SIZES = ("small", "base")
#: ``tiny`` (~0.2 M parameters, hidden 64) exists for tests only: too narrow for the feature code.
CONFIG_SIZES = ("tiny", *SIZES)
THINK_MODES = ("empty", "template", "option", "option_text", "direction_text")
ANSWER_ATTEND_MODES = ("union", "ordered")
ANSWER_ATTEND_OPTIONS = ("", "both", "correct")


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

