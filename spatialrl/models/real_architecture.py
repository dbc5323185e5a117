"""A published Qwen2.5-VL architecture with random weights, built without downloading anything.

:func:`build_real_architecture` writes an ordinary Hugging Face checkpoint directory (loadable
with :func:`spatialrl.models.load_model_and_processor`) whose model has the published sizes of
a Qwen2.5-VL checkpoint (``Qwen/Qwen2.5-VL-3B-Instruct`` by default; the fields of
:mod:`spatialrl.models.published`), so that memory, image-token counts and step times measured
on it are those of the real model, at full depth (the GPU check, ``benchmarks/gpu/``) or with its
depth cut (the CPU test and benchmark). Nothing about it is trained: weights are drawn with
``seed`` by transformers' own initialisation.

What is the published checkpoint's, unchanged:

- every ``config.json`` field of :func:`spatialrl.models.published.published_config`, read by
  ``Qwen2_5_VLConfig.from_dict`` exactly as transformers reads the hub file (text: hidden 2048,
  MLP 11008, 16 heads / 2 KV heads, M-RoPE sections 16/24/24, tied embeddings, vocabulary
  151,936; vision: hidden 1280, MLP 3420, 16 heads, window 112, patch 14, merge 2, temporal
  patch 2, ``out_hidden_size`` = the text hidden size);
- the processor settings of :data:`~spatialrl.models.published.PUBLISHED_PROCESSOR`
  (``min_pixels`` 3,136, ``max_pixels`` 12,845,056, patch 14, merge 2, temporal patch 2,
  CLIP mean / std), checked against the processor built;
- the special-token ids: ``<|endoftext|>`` 151643 ... ``<|video_pad|>`` 151656, as in Qwen's
  vocabulary (see the tokenizer below).

Deviations (none changes a tensor shape):

depth (optional)
    ``text_layers`` / ``vision_layers`` keep the first N decoder layers / vision blocks. The
    vision tower alternates window attention with full attention at
    ``fullatt_block_indexes`` (published ``[7, 15, 23, 31]`` of 32: the last block of every 8).
    A cut tower keeps every published full-attention index below its depth and makes its last
    block a full-attention one, as the published tower's last block is
    (:func:`cut_fullatt_indexes`: depth 2 -> ``[1]``, depth 8 -> ``[7]``, depth 10 -> ``[7, 9]``),
    so both attention kinds still run. ``max_window_layers`` stays published (sliding windows
    are off in the published config, so it has no effect). The text ``layer_types`` list is cut
    with the layers.
tokenizer
    The real vocabulary cannot be downloaded. A byte-level BPE is trained locally
    (:func:`spatialrl.models.tiny.build_tokenizer`, Qwen2's pre-tokenizer, ``learned_vocab``
    tokens) on the synthetic world's QA text (or ``texts``). Its vocabulary is then laid out as
    Qwen's: the learned tokens, unused filler tokens ``<|unused_N|>`` up to id 151642, then the
    14 Qwen special tokens at their published ids (151643-151656). So the config's special-token
    ids are the published ones *and* the local tokenizer's (asserted), the embedding and LM head
    keep the published 151,936 rows (real memory), and every id below 151657 decodes to text
    (a random policy samples anything: ids 151657-151935 decode to nothing, as Qwen's padding
    rows beyond its 151,665 tokens do). Token counts of a text differ from Qwen's (a smaller
    learned vocabulary splits words into more pieces); image tokens are the same.
weights
    Random: the model knows nothing. Generation samples near-uniformly over the vocabulary.

Determinism: the same arguments give identical weights and an identical tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

__all__ = [
    "DEFAULT_MODEL",
    "build_real_architecture",
    "cut_fullatt_indexes",
    "qwen_layout_tokenizer",
    "real_config",
]

#: The checkpoint whose architecture is built by default.
DEFAULT_MODEL = "Qwen/Qwen2.5-VL-3B-Instruct"

#: Config fields naming special tokens, and the Qwen token each must be.
_SPECIAL_ID_FIELDS: dict[str, str] = {
    "bos_token_id": "<|endoftext|>",
    "eos_token_id": "<|im_end|>",
    "vision_start_token_id": "<|vision_start|>",
    "vision_end_token_id": "<|vision_end|>",
    "vision_token_id": "<|vision_pad|>",
    "image_token_id": "<|image_pad|>",
    "video_token_id": "<|video_pad|>",
}


def cut_fullatt_indexes(published: Iterable[int], depth: int) -> list[int]:
    """The vision tower's full-attention block indexes for a tower cut to ``depth`` blocks:
    the published indexes below ``depth``, plus the last block (``depth - 1``) if it is not
    one already (the published tower ends on a full-attention block)."""
    if depth < 1:
        raise ValueError(f"the vision tower needs at least one block, got depth {depth}")
    kept = sorted(i for i in published if 0 <= i < depth)
    if depth - 1 not in kept:
        kept.append(depth - 1)
    return kept


def _published(model_id: str) -> dict[str, Any]:
    from spatialrl.models.published import PUBLISHED_CONFIGS, published_config

    config = published_config(model_id)
    if config is None:
        raise ValueError(f"no published configuration for {model_id!r}; known: {sorted(PUBLISHED_CONFIGS)}")
    return config


def qwen_layout_tokenizer(texts: Iterable[str], first_special_id: int, learned_vocab: int = 2048) -> Any:
    """A local byte-level BPE (:func:`spatialrl.models.tiny.build_tokenizer`) whose vocabulary is
    laid out as Qwen's: ``learned_vocab`` learned tokens, fillers ``<|unused_N|>`` up to
    ``first_special_id - 1``, then the Qwen special tokens from ``first_special_id`` on, in
    Qwen's order. Keeps the chat template, pad / eos and special-token settings."""
    from dataclasses import replace

    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    from spatialrl.models.tiny import SIZES, SPECIAL_TOKENS, build_tokenizer

    spec = replace(SIZES["tiny"], vocab_size=int(learned_vocab))
    base = build_tokenizer(spec, texts)
    data = json.loads(base.backend_tokenizer.to_str())
    vocab: dict[str, int] = data["model"]["vocab"]
    if len(vocab) > first_special_id:
        raise ValueError(f"the learned vocabulary ({len(vocab)}) does not fit below the first special id "
                         f"{first_special_id}")
    for index in range(len(vocab), first_special_id):
        vocab[f"<|unused_{index}|>"] = index
    if [t["content"] for t in data["added_tokens"]] != list(SPECIAL_TOKENS):
        raise AssertionError("build_tokenizer's special tokens are not Qwen's, in Qwen's order")
    for offset, token in enumerate(data["added_tokens"]):
        token["id"] = first_special_id + offset
    dropped = ("added_tokens_decoder", "backend", "tokenizer_object")
    kwargs = {k: v for k, v in base.init_kwargs.items() if k not in dropped}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(data)), **kwargs)
    tokenizer.chat_template = base.chat_template
    return tokenizer


def real_config(model_id: str = DEFAULT_MODEL, tokenizer: Any = None, text_layers: int | None = None,
                vision_layers: int | None = None) -> Any:
    """``Qwen2_5_VLConfig`` of ``model_id``'s published ``config.json`` (read by transformers as
    the hub file would be), its depth cut to ``text_layers`` / ``vision_layers`` (None: published),
    its special-token ids checked against ``tokenizer``'s (when given)."""
    from transformers import Qwen2_5_VLConfig

    published = _published(model_id)
    config = Qwen2_5_VLConfig.from_dict(published)
    text, vision = config.text_config, config.vision_config
    full_text, full_vision = text.num_hidden_layers, vision.depth
    for name, value, full in (("text_layers", text_layers, full_text), ("vision_layers", vision_layers, full_vision)):
        if value is not None and not 1 <= value <= full:
            raise ValueError(f"{name} must be between 1 and {full} (the published depth), got {value}")
    if text_layers is not None:
        text.num_hidden_layers = int(text_layers)
        if getattr(text, "layer_types", None):
            text.layer_types = list(text.layer_types)[: int(text_layers)]
    if vision_layers is not None:
        vision.depth = int(vision_layers)
        vision.fullatt_block_indexes = cut_fullatt_indexes(vision.fullatt_block_indexes, int(vision_layers))
    if tokenizer is not None:
        for field, token in _SPECIAL_ID_FIELDS.items():
            ids = (published[field], int(tokenizer.convert_tokens_to_ids(token)))
            if ids[0] != ids[1]:
                raise ValueError(f"{field}: published id {ids[0]} but the local tokenizer's {token} is {ids[1]}")
        pad = int(tokenizer.convert_tokens_to_ids("<|endoftext|>"))
        text.pad_token_id = pad
        text.bos_token_id, text.eos_token_id = published["bos_token_id"], published["eos_token_id"]
    return config


def _check_processor(processor: Any) -> None:
    """Raise unless ``processor`` applies :data:`~spatialrl.models.published.PUBLISHED_PROCESSOR`."""
    import numpy as np

    from spatialrl.models.pixels import processor_budget
    from spatialrl.models.published import PUBLISHED_PROCESSOR as P

    image = processor.image_processor
    budget = processor_budget(processor)
    found = {
        "min_pixels": budget.min_pixels if budget else None, "max_pixels": budget.max_pixels if budget else None,
        "patch_size": image.patch_size, "temporal_patch_size": image.temporal_patch_size,
        "merge_size": image.merge_size,
    }  # fmt: skip
    wrong = {k: (v, P[k]) for k, v in found.items() if v != P[k]}
    for key in ("image_mean", "image_std"):
        if not np.allclose(getattr(image, key), P[key]):
            wrong[key] = (list(getattr(image, key)), P[key])
    if wrong:
        raise AssertionError(f"processor differs from the published settings (found, published): {wrong}")


def build_real_architecture(
    model_id: str = DEFAULT_MODEL,
    *,
    out_dir: str | Path,
    text_layers: int | None = None,
    vision_layers: int | None = None,
    seed: int = 0,
    dtype: Any = "bfloat16",
    device: str | None = None,
    texts: Iterable[str] | None = None,
    learned_vocab: int = 2048,
    corpus_scenes: int = 20,
) -> dict[str, Any]:
    """Build and save ``model_id``'s architecture with random weights at ``out_dir``.

    Args:
        model_id: a checkpoint of :data:`spatialrl.models.published.PUBLISHED_CONFIGS`.
        out_dir: directory to write (created; files of the same names are replaced).
        text_layers: decoder layers to keep (None: the published 36 of the 3B).
        vision_layers: vision blocks to keep (None: the published 32); see :func:`cut_fullatt_indexes`.
        seed: seeds the weights (and the default tokenizer corpus).
        dtype: weights' dtype as saved (``"bfloat16"`` as published, ``"float32"`` for CPU training).
        device: where the weights are drawn (``"cuda"`` makes a full-depth model quick to build).
        texts: the tokenizer's training text; None: the synthetic world's
            (:func:`spatialrl.data.corpus.tokenizer_corpus` over ``corpus_scenes`` scenes).
        learned_vocab: learned BPE tokens before the fillers.

    Returns a summary: directory, parameter counts (total, vision tower, embedding), depths,
    full-attention blocks, vocabulary and tokenizer sizes, dtype.
    """
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration
    from transformers.initialization import no_init_weights

    from spatialrl.models.pixels import PixelBudget, set_processor_budget
    from spatialrl.models.published import PUBLISHED_PROCESSOR
    from spatialrl.models.tiny import build_processor, register

    published = _published(model_id)
    torch_dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    if texts is None:
        from spatialrl.data.corpus import tokenizer_corpus

        texts = tokenizer_corpus(corpus_scenes, seed)
    register()
    tokenizer = qwen_layout_tokenizer(texts, published["bos_token_id"], learned_vocab)
    processor = build_processor(tokenizer)
    set_processor_budget(processor, PixelBudget(PUBLISHED_PROCESSOR["min_pixels"], PUBLISHED_PROCESSOR["max_pixels"]))
    _check_processor(processor)
    config = real_config(model_id, tokenizer, text_layers, vision_layers)

    state = torch.random.get_rng_state()
    cuda_state = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        torch.manual_seed(seed)
        with torch.device(device or "cpu"):
            # transformers' own initialisation (normal, std = initializer_range) once: skipping
            # torch's default init of every Linear first halves the build time on a CPU.
            with no_init_weights():
                model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch_dtype)
            model.init_weights()
        model.eval()
    finally:
        torch.random.set_rng_state(state)
        if cuda_state is not None:
            torch.cuda.set_rng_state_all(cuda_state)
    eos = [published["eos_token_id"], published["bos_token_id"]]  # <|im_end|>, <|endoftext|>
    model.generation_config = GenerationConfig(bos_token_id=eos[1], eos_token_id=eos, pad_token_id=eos[1],
                                               do_sample=False)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    vision_params = sum(p.numel() for p in model.model.visual.parameters())
    summary = {
        "out": str(out),
        "model_id": model_id,
        "parameters": sum(p.numel() for p in model.parameters()),
        "vision_parameters": vision_params,
        "embedding_parameters": model.get_input_embeddings().weight.numel(),
        "text_layers": config.text_config.num_hidden_layers,
        "vision_layers": config.vision_config.depth,
        "fullatt_block_indexes": list(config.vision_config.fullatt_block_indexes),
        "vocab_size": config.text_config.vocab_size,
        "tokenizer_size": len(tokenizer),
        "dtype": str(torch_dtype).removeprefix("torch."),
        "seed": seed,
    }
    del model
    return summary
