"""The published configurations of the Qwen2.5-VL checkpoints our recipes name.

No weights or hub files can be downloaded at run time here, yet ``spatialrl plan`` must size a
run of ``Qwen/Qwen2.5-VL-3B-Instruct`` and the real-architecture test must build that
architecture. These are the fields of the checkpoints' own ``config.json`` and
``preprocessor_config.json`` that decide sizes (layers, widths, heads, vocabulary, vision
tower, patching and the processor's pixel limits), written as the hub publishes them.

:func:`model_config_dict` answers for any model: a local directory's ``config.json``, else
these, else the Hugging Face cache (offline), else ``None``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

__all__ = ["PUBLISHED_CONFIGS", "PUBLISHED_PROCESSOR", "model_config_dict", "processor_pixels", "published_config"]

_VISION_QWEN2_5 = {
    "depth": 32, "hidden_act": "silu", "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
    "in_chans": 3, "patch_size": 14, "spatial_merge_size": 2, "spatial_patch_size": 14, "window_size": 112,
    "fullatt_block_indexes": [7, 15, 23, 31], "tokens_per_second": 2, "temporal_patch_size": 2,
    "model_type": "qwen2_5_vl",
}  # fmt: skip

_SPECIAL_TOKENS = {
    "bos_token_id": 151643, "eos_token_id": 151645, "vision_start_token_id": 151652, "vision_end_token_id": 151653,
    "vision_token_id": 151654, "image_token_id": 151655, "video_token_id": 151656,
}  # fmt: skip


def _qwen2_5_vl(hidden: int, intermediate: int, layers: int, heads: int, kv_heads: int, vocab: int, tied: bool,
                max_window_layers: int) -> dict[str, Any]:
    return {
        "architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl",
        "hidden_act": "silu", "hidden_size": hidden, "intermediate_size": intermediate,
        "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
        "vocab_size": vocab, "tie_word_embeddings": tied, "max_position_embeddings": 128000,
        "max_window_layers": max_window_layers, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
        "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}, "sliding_window": 32768,
        "use_sliding_window": False, "attention_dropout": 0.0, "initializer_range": 0.02, "torch_dtype": "bfloat16",
        **_SPECIAL_TOKENS, "vision_config": {**_VISION_QWEN2_5, "out_hidden_size": hidden},
    }  # fmt: skip


#: ``config.json`` of the published checkpoints (the size-deciding fields), checked against
#: stored copies of the hub files. 32B and 72B are left out: their vision tower's width could not
#: be checked here; give a local directory (or the hub cache) for those.
PUBLISHED_CONFIGS: dict[str, dict[str, Any]] = {
    "Qwen/Qwen2.5-VL-3B-Instruct": _qwen2_5_vl(2048, 11008, 36, 16, 2, 151936, True, 70),
    "Qwen/Qwen2.5-VL-7B-Instruct": _qwen2_5_vl(3584, 18944, 28, 28, 4, 152064, False, 28),
}

#: ``preprocessor_config.json`` of every Qwen2.5-VL checkpoint: the pixel limits and patching.
PUBLISHED_PROCESSOR: dict[str, Any] = {
    "min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
    "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
    "image_processor_type": "Qwen2VLImageProcessor", "processor_class": "Qwen2_5_VLProcessor",
}  # fmt: skip


def published_config(model_id: str) -> dict[str, Any] | None:
    """A copy of the published ``config.json`` of ``model_id`` (a hub id, case as published;
    ``-Instruct`` optional), or None when it is not one we know."""
    for name, config in PUBLISHED_CONFIGS.items():
        if model_id in (name, name.removesuffix("-Instruct")):
            return copy.deepcopy(config)
    return None


def model_config_dict(model: str) -> dict[str, Any] | None:
    """The ``config.json`` of ``model``: a local directory's, the published one of a hub id we
    know, or the Hugging Face cache's (offline); None when none can be read."""
    path = Path(str(model)).expanduser() / "config.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    known = published_config(str(model))
    if known is not None:
        return known
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(str(model), "config.json")
    except Exception:  # noqa: BLE001 - an invalid repo id, no cache: nothing known
        return None
    return json.loads(Path(cached).read_text(encoding="utf-8")) if isinstance(cached, str) else None


def processor_pixels(model: str) -> dict[str, int] | None:
    """``{"min_pixels", "max_pixels"}`` of ``model``'s image processor as saved (a local
    directory's ``preprocessor_config.json`` or ``processor_config.json``, else the published Qwen2.5-VL values for a hub id
    we know); None when unknown. Reads files only, never builds the processor."""
    folder = Path(str(model)).expanduser()
    for name in ("preprocessor_config.json", "processor_config.json"):  # transformers 4 / 5 layouts
        path = folder / name
        if not path.is_file():
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        data = data.get("image_processor", data) if name == "processor_config.json" else data
        size = data.get("size") or {}
        low = data.get("min_pixels", size.get("shortest_edge"))
        high = data.get("max_pixels", size.get("longest_edge"))
        if low is not None and high is not None:
            return {"min_pixels": int(low), "max_pixels": int(high)}
    if published_config(str(model)) is not None:
        return {"min_pixels": PUBLISHED_PROCESSOR["min_pixels"], "max_pixels": PUBLISHED_PROCESSOR["max_pixels"]}
    return None
