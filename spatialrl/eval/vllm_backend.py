"""``spatialrl eval run --backend vllm``: greedy generation with vLLM on a GPU.

The HF backend (:func:`spatialrl.models.generate.generate_batch`) stays the default and the CPU
path; this one is imported only when ``--backend vllm`` is asked for, and imports ``vllm``
only when an engine is built (:func:`import_vllm`). What the model sees is the HF path's:

- the prompt string: the same benchmark prompt, re-joined with the model's recorded prompt
  separator, in one user turn with one image placeholder per image, through the model's own
  processor's chat template (:func:`spatialrl.models.generate.chat_prompts`, shared by both);
- the images: the same RGB PIL images (every frame of a multi-frame or video item), passed as
  ``multi_modal_data={"image": [...]}``; vLLM expands each ``<|image_pad|>`` itself;
- the pixel budget: vLLM loads its own image processor from the checkpoint, so the budget the
  runner resolved goes to it as ``mm_processor_kwargs={"min_pixels", "max_pixels"}``;
- greedy decoding: ``SamplingParams(temperature=0, max_tokens=N)``; other sampling fields keep
  vLLM's neutral defaults (an explicit ``SamplingParams`` does not take the checkpoint's
  ``generation_config.json`` sampling settings, as the HF path neutralises them too).

Engine arguments (``vllm.LLM``, checked against vLLM's ``vllm/entrypoints/llm.py`` and
``EngineArgs``): ``model``, ``dtype``, ``max_model_len``, ``limit_mm_per_prompt={"image": K}``
(K: the most images one item of the benchmark has), ``mm_processor_kwargs``, ``seed``,
``tensor_parallel_size``, ``gpu_memory_utilization``.

:func:`engine_kwargs` and :func:`build_requests` are pure (no vLLM needed) and tested on CPU;
the engine itself only runs on a GPU machine.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Any

from spatialrl.models.pixels import PixelBudget

__all__ = ["VLLM_MISSING", "VLLMGenerator", "build_requests", "engine_kwargs", "greedy_sampling", "import_vllm"]

VLLM_MISSING = (
    "--backend vllm needs vLLM, which is not installed in this environment: `pip install vllm` on a machine "
    "with an NVIDIA GPU (vLLM runs on CUDA GPUs, not on this CPU build of torch), or use --backend hf "
    "(the default, which runs anywhere)"
)


def import_vllm() -> Any:
    """The ``vllm`` module, or an ``ImportError`` saying how to get it (:data:`VLLM_MISSING`)."""
    try:
        import vllm
    except ImportError as exc:
        raise ImportError(f"{VLLM_MISSING} ({exc})") from exc
    return vllm


def engine_kwargs(model_path: str, *, budget: PixelBudget, max_images: int, dtype: str = "auto",
                  max_model_len: int | None = None, seed: int = 0, tensor_parallel_size: int = 1,
                  gpu_memory_utilization: float = 0.9) -> dict[str, Any]:
    """Keyword arguments of ``vllm.LLM`` for one model: the pixel budget as the image
    processor's ``min_pixels`` / ``max_pixels``, at most ``max_images`` images a prompt.
    ``max_model_len=None`` lets vLLM take the model's own maximum."""
    if max_images < 0:
        raise ValueError(f"max_images must be >= 0, got {max_images}")
    return {
        "model": str(model_path),
        "dtype": dtype,
        "max_model_len": max_model_len,
        "limit_mm_per_prompt": {"image": int(max_images)},
        "mm_processor_kwargs": {"min_pixels": budget.min_pixels, "max_pixels": budget.max_pixels},
        "seed": int(seed),
        "tensor_parallel_size": int(tensor_parallel_size),
        "gpu_memory_utilization": float(gpu_memory_utilization),
    }


def build_requests(processor: Any, texts: Sequence[str], images: Sequence[Sequence[Any]],
                   separator: str | None = None) -> list[dict[str, Any]]:
    """vLLM prompts for a batch: ``{"prompt": <chat-templated text>, "multi_modal_data":
    {"image": [RGB PIL images]}}``, the text exactly as the HF path builds it
    (:func:`spatialrl.models.generate.chat_prompts` with the model's ``separator``); an item
    without images has no ``multi_modal_data``."""
    from spatialrl.models.generate import chat_prompts, load_image

    frames = [[load_image(im) for im in imgs] for imgs in images]  # a video's frames decoded once
    prompts = chat_prompts(processor, texts, [len(f) for f in frames], separator)
    return [{"prompt": prompt, "multi_modal_data": {"image": f}} if f else {"prompt": prompt}
            for prompt, f in zip(prompts, frames)]


def greedy_sampling(vllm: Any, max_new_tokens: int) -> Any:
    """``vllm.SamplingParams`` for greedy decoding of at most ``max_new_tokens`` tokens."""
    return vllm.SamplingParams(temperature=0, max_tokens=int(max_new_tokens))


class VLLMGenerator:
    """One vLLM engine for one checkpoint; :meth:`generate` answers a batch in input order.

    Args:
        model_path: the checkpoint directory (or hub id) vLLM loads.
        budget: the pixel budget the images are resized to (the run's, recorded in run.json).
        max_images: the most images one prompt carries (``limit_mm_per_prompt``).
        **options: ``dtype``, ``max_model_len``, ``seed``, ``tensor_parallel_size``,
            ``gpu_memory_utilization`` (:func:`engine_kwargs`).
    """

    def __init__(self, model_path: str, *, budget: PixelBudget, max_images: int, **options: Any) -> None:
        from spatialrl.models import load_processor, prompt_separator

        self.vllm = import_vllm()
        # The chat template and the prompt separator come from the checkpoint, as on the HF path.
        self.processor = load_processor(model_path, min_pixels=budget.min_pixels, max_pixels=budget.max_pixels)
        self.separator = prompt_separator(model_path)
        self.llm: Any = self.vllm.LLM(**engine_kwargs(model_path, budget=budget, max_images=max_images, **options))

    def generate(self, texts: Sequence[str], images: Sequence[Sequence[Any]], max_new_tokens: int) -> list[str]:
        """Greedy completions (raw text), one per text, in the order given."""
        requests = build_requests(self.processor, texts, images, self.separator)
        outputs = self.llm.generate(requests, greedy_sampling(self.vllm, max_new_tokens), use_tqdm=False)
        if len(outputs) != len(requests):
            raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {len(requests)} prompts")
        return [output.outputs[0].text for output in outputs]

    def close(self) -> None:
        """Drop the engine and free its GPU memory, as far as vLLM allows (a sweep builds one
        engine per checkpoint in one process; vLLM's own test clean-up sequence)."""
        import contextlib

        self.llm = None
        with contextlib.suppress(Exception):  # names and needs differ between vLLM versions
            from vllm.distributed import destroy_distributed_environment, destroy_model_parallel

            destroy_model_parallel()
            destroy_distributed_environment()
        gc.collect()
        with contextlib.suppress(Exception):
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
