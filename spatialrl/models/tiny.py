"""``spatialrl model tiny``: a tiny Qwen2.5-VL-architecture model built locally, for CPU work.

Nothing is downloaded. The directory written is an ordinary Hugging Face checkpoint of the
``qwen2_5_vl`` model type (``config.json``, ``model.safetensors``, ``generation_config.json``,
``tokenizer.json``, ``tokenizer_config.json``, ``chat_template.jinja``,
``processor_config.json``), so the trainers and the eval runner treat it exactly like a
real Qwen2.5-VL checkpoint; nothing downstream special-cases it.

Pieces (measured on this machine; docs/design.md, docs/pretraining.md):

tokenizer
    Byte-level BPE trained with ``tokenizers`` on a corpus the caller passes in (``texts``):
    this module does not know the world. ``spatialrl model tiny`` passes the synthetic spatial
    QA text of :func:`spatialrl.data.corpus.tokenizer_corpus` (questions and answers on seeded
    scenes, wrapped in the answer format of SVQA-R1 Table 9 -- ``<think> </think> <answer>
    </answer>`` -- plus option letters, units, yes/no, boxes and the chat template's words),
    which is also what :func:`build_tiny_model` uses when given no ``texts``. Pre-tokenisation is
    Qwen2's regex, which splits digits one per token so numbers can be learned; the Qwen
    special tokens (:data:`SPECIAL_TOKENS`) come after the learned vocabulary, as in Qwen.
    Wrapped in ``PreTrainedTokenizerFast`` with ``<|endoftext|>`` as pad and ``<|im_end|>`` as
    eos, and Qwen2.5-VL's chat template (read from the installed trl package).
model
    ``Qwen2_5_VLForConditionalGeneration`` with random weights drawn with ``--seed``; sizes in
    :data:`SIZES` (``tiny`` about 0.2 M parameters, ``small`` about 3.8 M). The config's image,
    video and vision start/end token ids are the tokenizer's.
processor
    :class:`Qwen2_5_VLImageOnlyProcessor`: ``Qwen2_5_VLProcessor`` without the video
    processor (which needs torchvision, not installable here), with ``Qwen2VLImageProcessorPil``
    (patch 14, merge 2, temporal patch 2, CLIP mean/std normalisation as in Qwen2.5-VL).
    ``max_pixels`` is ``image_size ** 2``, so a 112 px image gives 16 image tokens and larger
    images are scaled down to that budget. The class is registered with ``AutoProcessor`` for
    ``Qwen2_5_VLConfig`` when :mod:`spatialrl.models` is imported (lazily: see
    :func:`spatialrl.models.register_lazily`); without it, ``AutoProcessor`` would silently
    return only the tokenizer and TRL would treat the model as text-only.

Determinism: the same ``--seed``, ``--size`` and corpus settings give identical weights and
byte-identical tokenizer files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HELP = "build a tiny Qwen2.5-VL (local BPE tokenizer, random weights) for CPU training and tests"

__all__ = [
    "HELP",
    "SIZES",
    "SPECIAL_TOKENS",
    "TinySpec",
    "add_arguments",
    "build_config",
    "build_processor",
    "build_tiny_model",
    "build_tokenizer",
    "load_model_and_processor",
    "processor_class",
    "qwen_chat_template",
    "run",
]

#: Qwen2.5-VL's special tokens, in Qwen's order (their ids follow the learned vocabulary).
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)  # fmt: skip

#: Qwen2's pre-tokenizer pattern: single digits (``\p{N}``), words, punctuation runs, spaces.
QWEN_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

@dataclass(frozen=True)
class TinySpec:
    """Sizes of one tiny model (text decoder, vision tower, tokenizer, image budget)."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    mrope_section: tuple[int, int, int]
    vision_depth: int
    vision_hidden_size: int
    vision_intermediate_size: int
    vision_num_heads: int
    fullatt_block_indexes: tuple[int, ...]
    tie_word_embeddings: bool
    image_size: int = 112
    max_position_embeddings: int = 4096


#: ``tiny``: about 0.22 M parameters; ``small``: about 3.8 M (docs/pretraining.md). ``mrope_section``
#: sums to head_dim / 2 (temporal, height, width parts of the 3-D rotary embedding).
SIZES: dict[str, TinySpec] = {
    "tiny": TinySpec(
        vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, mrope_section=(2, 3, 3),
        vision_depth=2, vision_hidden_size=32, vision_intermediate_size=64, vision_num_heads=2,
        fullatt_block_indexes=(1,), tie_word_embeddings=True,
    ),
    "small": TinySpec(
        vocab_size=2048, hidden_size=256, intermediate_size=512, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, mrope_section=(8, 12, 12),
        vision_depth=4, vision_hidden_size=128, vision_intermediate_size=256, vision_num_heads=4,
        fullatt_block_indexes=(1, 3), tie_word_embeddings=True,
    ),
}  # fmt: skip


# --------------------------------------------------------------------------------------
# Corpus and tokenizer
# --------------------------------------------------------------------------------------

def build_tokenizer(spec: TinySpec, texts: Iterable[str]) -> Any:
    """A ``PreTrainedTokenizerFast``: byte-level BPE with Qwen2's digit-splitting
    pre-tokenizer trained on ``texts`` to ``spec.vocab_size`` learned tokens, then the Qwen
    special tokens and the Qwen2.5-VL chat template."""
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_SPLIT_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])  # fmt: skip
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    bpe.add_special_tokens(list(SPECIAL_TOKENS))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=spec.max_position_embeddings,
        clean_up_tokenization_spaces=False,
        extra_special_tokens=[t for t in SPECIAL_TOKENS if t not in ("<|endoftext|>", "<|im_end|>")],
    )
    tokenizer.chat_template = qwen_chat_template()
    return tokenizer


def qwen_chat_template() -> str:
    """Qwen2.5-VL's chat template as TRL ships it (``trl/chat_templates/qwen2_5_vl.jinja``)."""
    from importlib.resources import files

    return files("trl").joinpath("chat_templates", "qwen2_5_vl.jinja").read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------
# Processor (image-only Qwen2.5-VL processor; the class is created on first use so that
# importing this module does not import transformers)
# --------------------------------------------------------------------------------------

_PROCESSOR_CLASS: Any = None


def processor_class() -> type:
    """The :class:`Qwen2_5_VLImageOnlyProcessor` class (imports transformers on first call)."""
    global _PROCESSOR_CLASS
    if _PROCESSOR_CLASS is not None:
        return _PROCESSOR_CLASS
    from transformers.models.qwen2_5_vl.processing_qwen2_5_vl import Qwen2_5_VLProcessor
    from transformers.processing_utils import ProcessorMixin

    class Qwen2_5_VLImageOnlyProcessor(Qwen2_5_VLProcessor):
        """``Qwen2_5_VLProcessor`` without a video processor (that one needs torchvision).

        Images and text behave exactly as in ``Qwen2_5_VLProcessor`` (image tokens expanded
        from ``image_grid_thw``, ``mm_token_type_ids`` returned for the 3-D rotary
        positions); videos are not supported.
        """

        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
            self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
            self.image_token_id = getattr(tokenizer, "image_token_id", None) or tokenizer.convert_tokens_to_ids(
                self.image_token
            )
            self.video_token_id = getattr(tokenizer, "video_token_id", None) or tokenizer.convert_tokens_to_ids(
                self.video_token
            )
            ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template, **kwargs)

    Qwen2_5_VLImageOnlyProcessor.__module__ = __name__
    Qwen2_5_VLImageOnlyProcessor.__qualname__ = "Qwen2_5_VLImageOnlyProcessor"
    _PROCESSOR_CLASS = Qwen2_5_VLImageOnlyProcessor
    return _PROCESSOR_CLASS


def __getattr__(name: str) -> Any:  # PEP 562: the class by name, for pickle and imports
    if name == "Qwen2_5_VLImageOnlyProcessor":
        return processor_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register() -> None:
    """Register :class:`Qwen2_5_VLImageOnlyProcessor` with ``AutoProcessor`` for
    ``Qwen2_5_VLConfig`` (idempotent; imports transformers)."""
    from transformers import AutoProcessor, Qwen2_5_VLConfig

    AutoProcessor.register(Qwen2_5_VLConfig, processor_class(), exist_ok=True)


def build_processor(tokenizer: Any, image_size: int = 112) -> Any:
    """The image-only processor: ``Qwen2VLImageProcessorPil`` with ``max_pixels =
    image_size ** 2`` (112 px -> 16 image tokens), ``tokenizer`` and its chat template."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    image_processor = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=int(image_size) ** 2)
    return processor_class()(image_processor=image_processor, tokenizer=tokenizer, chat_template=tokenizer.chat_template)


# --------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------


def build_config(spec: TinySpec, tokenizer: Any) -> Any:
    """``Qwen2_5_VLConfig`` for ``spec`` whose token ids are ``tokenizer``'s."""
    from transformers import Qwen2_5_VLConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    head_dim = spec.hidden_size // spec.num_attention_heads
    if 2 * sum(spec.mrope_section) != head_dim:
        raise ValueError(f"mrope_section {spec.mrope_section} must sum to head_dim / 2 = {head_dim // 2}")
    text_config = {
        "vocab_size": len(tokenizer),
        "hidden_size": spec.hidden_size,
        "intermediate_size": spec.intermediate_size,
        "num_hidden_layers": spec.num_hidden_layers,
        "num_attention_heads": spec.num_attention_heads,
        "num_key_value_heads": spec.num_key_value_heads,
        "max_position_embeddings": spec.max_position_embeddings,
        "max_window_layers": spec.num_hidden_layers,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": list(spec.mrope_section)},
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "tie_word_embeddings": spec.tie_word_embeddings,
    }
    vision_config = {
        "depth": spec.vision_depth,
        "hidden_size": spec.vision_hidden_size,
        "intermediate_size": spec.vision_intermediate_size,
        "num_heads": spec.vision_num_heads,
        "out_hidden_size": spec.hidden_size,
        "fullatt_block_indexes": list(spec.fullatt_block_indexes),
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
    }
    return Qwen2_5_VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=spec.tie_word_embeddings,
    )


def build_tiny_model(
    out: str | Path,
    size: str = "tiny",
    seed: int = 0,
    corpus_scenes: int = 100,
    image_size: int | None = None,
    *,
    texts: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Build and save a tiny Qwen2.5-VL at ``out`` (model, tokenizer, processor, chat template).

    Args:
        out: directory to write (created; existing files of the same names are replaced).
        size: a key of :data:`SIZES`.
        seed: seeds the weight initialisation (and the default corpus).
        corpus_scenes: with ``texts=None``, number of synthetic scenes whose QA text trains the
            tokenizer.
        image_size: image side in pixels the processor budgets for (default the spec's, 112).
        texts: the tokenizer's training text. None: the synthetic world's
            (``spatialrl.data.corpus.tokenizer_corpus(corpus_scenes, seed, image_size)``).

    Returns a summary: parameter count, vocabulary size, image tokens per image.
    """
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration

    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose from {sorted(SIZES)}")
    spec = SIZES[size]
    if image_size is not None:
        spec = TinySpec(**{**spec.__dict__, "image_size": int(image_size)})
    if spec.image_size < 56 or spec.image_size % 28:
        raise ValueError(f"image_size must be a multiple of 28 and at least 56 pixels, got {spec.image_size}")
    if texts is None:
        from spatialrl.data.corpus import tokenizer_corpus

        texts = tokenizer_corpus(corpus_scenes, seed, spec.image_size)
    register()
    tokenizer = build_tokenizer(spec, texts)
    processor = build_processor(tokenizer, spec.image_size)
    config = build_config(spec, tokenizer)

    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = Qwen2_5_VLForConditionalGeneration(config).eval()
    finally:
        torch.random.set_rng_state(state)
    eos = [tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")]
    model.generation_config = GenerationConfig(
        bos_token_id=eos[1], eos_token_id=eos, pad_token_id=eos[1], do_sample=False,
    )  # fmt: skip

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)  # tokenizer files, processor_config.json, chat_template.jinja
    n_params = sum(p.numel() for p in model.parameters())
    tokens_per_image = (spec.image_size // 28) ** 2
    return {
        "out": str(out),
        "size": size,
        "seed": seed,
        "parameters": n_params,
        "vocab_size": len(tokenizer),
        "image_size": spec.image_size,
        "image_tokens": tokens_per_image,
    }


# --------------------------------------------------------------------------------------
# Loading any Qwen2.5-VL-like checkpoint
# --------------------------------------------------------------------------------------


def load_processor(path: str | Path, min_pixels: int | None = None, max_pixels: int | None = None) -> Any:
    """``AutoProcessor.from_pretrained(path)``; where that fails or yields no image processor
    (a stock Qwen2.5-VL checkpoint on a machine without torchvision, whose video processor
    cannot load), the image-only processor built from the same files.

    ``min_pixels`` / ``max_pixels`` (either or both) set the processor's pixel budget
    (:func:`spatialrl.models.pixels.set_processor_budget`); the one not given keeps the saved
    value. Neither given: the budget saved with the checkpoint."""
    from transformers import AutoProcessor
    from transformers.processing_utils import ProcessorMixin

    register()
    error: Exception | None = None
    processor = None
    try:
        loaded = AutoProcessor.from_pretrained(str(path))
        if isinstance(loaded, ProcessorMixin) and getattr(loaded, "image_processor", None) is not None:
            processor = loaded
    except Exception as exc:  # noqa: BLE001 - any failure falls back below, then re-raises
        error = exc
    if processor is None:
        try:
            processor = processor_class().from_pretrained(str(path))
        except Exception:
            if error is not None:
                raise error from None
            raise
    if min_pixels is not None or max_pixels is not None:
        _apply_budget(processor, min_pixels, max_pixels)
    return processor


def _apply_budget(processor: Any, min_pixels: int | None, max_pixels: int | None) -> None:
    from spatialrl.models.pixels import PixelBudget, processor_budget, set_processor_budget

    saved = processor_budget(processor) or PixelBudget()
    budget = PixelBudget(int(min_pixels) if min_pixels is not None else saved.min_pixels,
                         int(max_pixels) if max_pixels is not None else saved.max_pixels)
    set_processor_budget(processor, budget)


def load_model_and_processor(path: str | Path, dtype: Any = None, device: str | None = None,
                             min_pixels: int | None = None, max_pixels: int | None = None,
                             attn_implementation: str | None = None) -> tuple[Any, Any]:
    """A checkpoint directory (tiny or a real Qwen2.5-VL) as ``(model, processor)``: the model
    from ``AutoModelForImageTextToText`` in eval mode, the processor from
    :func:`load_processor` (with ``min_pixels`` / ``max_pixels`` as there). ``dtype`` defaults
    to the checkpoint's (``"auto"``); ``attn_implementation`` (``"sdpa"``,
    ``"flash_attention_2"``, ...) goes to ``from_pretrained`` when given."""
    from transformers import AutoModelForImageTextToText

    processor = load_processor(path, min_pixels=min_pixels, max_pixels=max_pixels)
    kwargs: dict[str, Any] = {"dtype": dtype if dtype is not None else "auto"}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    model = AutoModelForImageTextToText.from_pretrained(str(path), **kwargs)
    if device is not None:
        model = model.to(device)
    return model.eval(), processor


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="directory to write the checkpoint to")
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny",
                        help="tiny: ~0.2 M parameters (tests); small: ~3.8 M (learns the synthetic world)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the tokenizer corpus and the weights")
    parser.add_argument("--corpus-scenes", type=int, default=100,
                        help="synthetic scenes whose QA text trains the tokenizer (default 100)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="image side (px, multiple of 28) the processor budgets for; default 112 (16 image tokens)")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty --out")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        print(f"error: {out} exists and is not empty; pass --overwrite to replace its files", file=sys.stderr)
        return 2
    if args.corpus_scenes < 1:
        print("error: --corpus-scenes must be >= 1", file=sys.stderr)
        return 2
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        info = build_tiny_model(out, size=args.size, seed=args.seed, corpus_scenes=args.corpus_scenes,
                                image_size=args.image_size)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(info))
    return 0
