"""The published Qwen2.5-VL-3B architecture (depth cut to 2 text + 2 vision layers, random
weights) trains on real-resolution images: one SFT step and one Spatial-GRPO step with a mirror
pair, through the steps of benchmarks/real_architecture.py (which times them).

Widths, vocabulary, vision tower and processor settings are the published ones
(spatialrl.models.published), so the image-token count and the memory per layer are those of the
real model: 448 x 448 px is 256 image tokens under the published pixel budget.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _steps_module():
    path = ROOT / "benchmarks" / "real_architecture.py"
    spec = importlib.util.spec_from_file_location("real_architecture_steps", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def steps():
    return _steps_module()


@pytest.fixture(scope="module")
def real_dir(tmp_path_factory):
    from spatialrl.models.real_architecture import build_real_architecture

    out = tmp_path_factory.mktemp("real-arch") / "model"
    info = build_real_architecture(out_dir=out, text_layers=2, vision_layers=2, seed=0)
    return out, info


def test_cut_fullatt_indexes_keeps_both_attention_kinds():
    from spatialrl.models.real_architecture import cut_fullatt_indexes

    published = [7, 15, 23, 31]
    assert cut_fullatt_indexes(published, 32) == published
    assert cut_fullatt_indexes(published, 2) == [1]
    assert cut_fullatt_indexes(published, 8) == [7]
    assert cut_fullatt_indexes(published, 10) == [7, 9]
    assert cut_fullatt_indexes(published, 1) == [0]
    with pytest.raises(ValueError):
        cut_fullatt_indexes(published, 0)


def test_full_depth_config_is_the_published_one():
    """At full depth the config is the published one field for field (no weights built)."""
    from spatialrl.models.published import published_config
    from spatialrl.models.real_architecture import real_config

    published = published_config("Qwen/Qwen2.5-VL-3B-Instruct")
    config = real_config()
    text, vision = config.text_config, config.vision_config
    for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                "vocab_size", "rms_norm_eps", "max_position_embeddings"):
        assert getattr(text, key) == published[key], key
    assert text.rope_parameters["mrope_section"] == [16, 24, 24]
    for key, value in published["vision_config"].items():
        if key not in ("model_type", "in_chans", "spatial_patch_size"):
            assert getattr(vision, key) == value, key
    assert config.tie_word_embeddings is True
    with pytest.raises(ValueError, match="between 1 and 36"):
        real_config(text_layers=37)


def test_checkpoint_has_the_published_sizes_and_token_ids(real_dir):
    from spatialrl.models.published import PUBLISHED_PROCESSOR, published_config

    out, info = real_dir
    published = published_config("Qwen/Qwen2.5-VL-3B-Instruct")
    saved = json.loads((out / "config.json").read_text())
    text = saved.get("text_config", saved)
    assert text["num_hidden_layers"] == 2 and saved["vision_config"]["depth"] == 2
    assert saved["vision_config"]["fullatt_block_indexes"] == [1]
    assert text["vocab_size"] == 151936 and text["hidden_size"] == 2048 and text["intermediate_size"] == 11008
    assert saved["vision_config"]["hidden_size"] == 1280 and saved["vision_config"]["out_hidden_size"] == 2048
    for key in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"):
        assert saved[key] == published[key], key
    # 2 decoder layers + tied 151,936 x 2048 embedding + 2 vision blocks and the merger
    assert info["embedding_parameters"] == 151936 * 2048
    assert 540_000_000 < info["parameters"] < 546_000_000
    processor_config = json.loads((out / "processor_config.json").read_text())["image_processor"]
    assert processor_config["size"] == {"shortest_edge": PUBLISHED_PROCESSOR["min_pixels"],
                                         "longest_edge": PUBLISHED_PROCESSOR["max_pixels"]}


@pytest.mark.slow
def test_one_sft_and_one_spatial_grpo_step_at_real_resolution(real_dir, steps, tmp_path):
    import numpy as np
    import torch
    from PIL import ImageOps

    from spatialrl.models import load_model_and_processor

    torch.manual_seed(0)
    out, _ = real_dir
    rows = steps.paired_rows(pairs=1, size=448)
    assert [r["view"] for r in rows] == ["original", "mirror"] and rows[0]["pair_id"] == rows[1]["pair_id"]
    assert np.array_equal(np.asarray(rows[1]["images"][0]), np.asarray(ImageOps.mirror(rows[0]["images"][0])))

    model, processor = load_model_and_processor(out, dtype=torch.float32)
    tokenizer = processor.tokenizer
    assert tokenizer.convert_tokens_to_ids("<|image_pad|>") == model.config.image_token_id == 151655
    assert tokenizer.convert_tokens_to_ids("<|vision_start|>") == model.config.vision_start_token_id == 151652
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") == 151645 and tokenizer.eos_token == "<|im_end|>"
    assert steps.image_tokens(processor, rows[0]["images"][0]) == 256

    sft = steps.sft_step(model, processor, rows[:1], str(tmp_path / "sft"))
    assert len(sft["seconds"]) == 1 and math.isfinite(sft["logs"][0]["loss"])
    assert all(delta > 0 for delta in sft["changed"].values()), sft["changed"]  # vision tower and decoder moved
    del model, processor
    steps.release()

    model, processor = load_model_and_processor(out, dtype=torch.float32)
    grpo = steps.grpo_step(model, processor, rows, str(tmp_path / "grpo"), num_generations=2,
                           max_completion_length=4)
    assert len(grpo["seconds"]) == 1
    advantages = grpo["advantages"]
    assert len(advantages) == 4 and all(math.isfinite(a) for a in advantages)
    assert any(abs(a) > 1e-3 for a in advantages), "random completions differ: some advantage is not zero"
    metrics = grpo["metrics"]
    assert metrics["consistency/pairs"] == 1.0  # the original and its mirror were in one generation batch
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    (log,) = grpo["logs"]
    assert all(math.isfinite(v) for k, v in log.items() if isinstance(v, float)), log
    assert all(delta > 0 for delta in grpo["changed"].values()), grpo["changed"]
    assert max(grpo["peak_rss"] + sft["peak_rss"]) < 12 * 2**30
    print(f"SFT step {sft['seconds'][0]:.1f} s, GRPO step {grpo['seconds'][0]:.1f} s, "
          f"peak RSS {max(grpo['peak_rss'] + sft['peak_rss']) / 2**30:.2f} GiB")
