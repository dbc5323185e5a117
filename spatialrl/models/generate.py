"""Batched generation with a Qwen2.5-VL-class model: one user turn per prompt (its images, then
its text) through the processor's chat template, left padding, greedy decoding unless a
generation config says otherwise. ``spatialrl eval run`` and training-time evaluation both
generate with :func:`generate_batch`; ``eval run --backend vllm`` sends vLLM the same text,
built by :func:`chat_prompts`, and the same RGB images (:func:`load_image`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

__all__ = ["build_messages", "chat_prompts", "generate_batch", "load_image", "sampling_config"]


def load_image(image: Any) -> Any:
    """An RGB PIL image from a PIL image, a path or an array."""
    from PIL import Image

    if isinstance(image, (str, os.PathLike)):
        with Image.open(image) as im:
            return im.convert("RGB")
    if isinstance(image, Image.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    import numpy as np

    return Image.fromarray(np.asarray(image)).convert("RGB")


def build_messages(text: str, n_images: int) -> list[dict[str, Any]]:
    """One user turn: ``n_images`` image placeholders, then the text (Qwen2.5-VL's order)."""
    content: list[dict[str, Any]] = [{"type": "image"} for _ in range(n_images)]
    content.append({"type": "text", "text": text})
    return [{"role": "user", "content": content}]


def chat_prompts(processor: Any, texts: Sequence[str], image_counts: Sequence[int],
                 separator: str | None = None) -> list[str]:
    """The prompt strings the model is given: each text (re-joined with the model's recorded
    prompt ``separator``, :func:`spatialrl.prompts.with_separator`) after its images'
    placeholders in one user turn (:func:`build_messages`), through the processor's chat
    template with the generation prompt. Every backend sends these same strings."""
    from spatialrl.prompts import with_separator

    return [
        processor.apply_chat_template(build_messages(with_separator(text, separator), n),
                                      add_generation_prompt=True, tokenize=False)
        for text, n in zip(texts, image_counts)
    ]


def _greedy_config(model: Any, tokenizer: Any, max_new_tokens: int) -> Any:
    """The checkpoint's generation config (eos and pad ids) made purely greedy. A real
    Qwen2.5-VL ships sampling settings and ``repetition_penalty=1.05``; they are set to their
    neutral values here (``None`` would be refilled from the checkpoint by ``generate``)."""
    import copy

    from transformers import GenerationConfig

    config = copy.deepcopy(getattr(model, "generation_config", None) or GenerationConfig())
    config.do_sample = False
    config.num_beams = 1
    neutral = {"temperature": 1.0, "top_p": 1.0, "top_k": 50, "typical_p": 1.0, "repetition_penalty": 1.0,
               "no_repeat_ngram_size": 0}
    for name, value in neutral.items():
        setattr(config, name, value)
    config.max_new_tokens = int(max_new_tokens)
    config.max_length = None
    if config.pad_token_id is None:
        config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if config.eos_token_id is None:
        config.eos_token_id = tokenizer.eos_token_id
    return config


def sampling_config(model: Any, tokenizer: Any, max_new_tokens: int, num_return_sequences: int = 1,
                    **settings: Any) -> Any:
    """A ``GenerationConfig`` that samples ``num_return_sequences`` completions per prompt
    (:func:`generate_batch` returns them prompt by prompt): the greedy config's eos and pad
    ids and neutral settings, then ``do_sample=True`` and ``settings`` (e.g. ``temperature``,
    ``top_p``, ``top_k``, ``min_p``, ``repetition_penalty``, ``suppress_tokens``, as a GRPO
    trainer samples). Seed torch before generating for reproducible samples."""
    config = _greedy_config(model, tokenizer, max_new_tokens)
    config.do_sample = True
    config.num_return_sequences = int(num_return_sequences)
    for name, value in settings.items():
        setattr(config, name, value)
    return config


def generate_batch(model: Any, processor: Any, texts: Sequence[str], images: Sequence[Sequence[Any]],
                   max_new_tokens: int, generation_config: Any = None) -> list[str]:
    """Greedy completions (raw text, special tokens removed) for a batch of user prompts, each
    with its images (PIL images or paths), left-padded. A prompt built by ``prompt_text`` is
    re-joined with the separator the model records (``spatialrl.models.prompt_separator``).
    ``generation_config`` (a
    ``transformers.GenerationConfig``) replaces the greedy one, e.g. to sample; it then sets
    ``max_new_tokens`` itself."""
    import torch

    from spatialrl.models import prompt_separator

    # the prompt the model learned (spatialrl.prompts): its recorded separator
    prompts = chat_prompts(processor, texts, [len(imgs) for imgs in images], prompt_separator(model))
    flat = [load_image(im) for imgs in images for im in imgs]
    tokenizer = getattr(processor, "tokenizer", processor)
    tokenizer.padding_side = "left"
    kwargs: dict[str, Any] = {"text": prompts, "padding": True, "return_tensors": "pt"}
    if flat:
        kwargs["images"] = flat
    inputs = processor(**kwargs).to(model.device)
    with torch.inference_mode():
        config = generation_config if generation_config is not None else _greedy_config(model, tokenizer,
                                                                                        max_new_tokens)
        output = model.generate(**inputs, generation_config=config)
    new_tokens = output[:, inputs["input_ids"].shape[1]:]
    return tokenizer.batch_decode(new_tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False)
