"""spatialrl.train.plan: exact parameter counts, measured activation coefficients, and the
memory model's monotonic behaviour, warnings and printed block."""

import dataclasses
import subprocess
import sys

import pytest

from spatialrl.models.published import published_config
from spatialrl.train.plan import (
    PlanInputs,
    activation_bytes_per_token_layer,
    estimate,
    format_plan,
    parameter_counts,
    vision_activation_bytes_per_patch_block,
)

SMALL_TEXT = {
    "vocab_size": 1000, "hidden_size": 256, "intermediate_size": 704, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "bos_token_id": 0, "eos_token_id": 1,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [8, 12, 12]},
}  # fmt: skip
SMALL_VISION = {
    "depth": 2, "hidden_size": 64, "intermediate_size": 128, "num_heads": 2, "out_hidden_size": 256,
    "fullatt_block_indexes": [1],
}  # fmt: skip
TOKENS = {"image_token_id": 999, "video_token_id": 998, "vision_start_token_id": 997, "vision_end_token_id": 996}


def small_config(tied: bool, nested: bool = True, **text) -> dict:
    fields = {**SMALL_TEXT, **text}
    if nested:
        return {"text_config": {**fields, "tie_word_embeddings": tied}, "vision_config": dict(SMALL_VISION),
                "tie_word_embeddings": tied, **TOKENS}  # fmt: skip
    return {**fields, "tie_word_embeddings": tied, "vision_config": dict(SMALL_VISION), **TOKENS}


def build(config: dict, meta: bool = False):
    import torch
    import transformers
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    transformers.logging.set_verbosity_error()
    cfg = Qwen2_5_VLConfig(**config)
    cfg._attn_implementation = "sdpa"
    if meta:
        with torch.device("meta"):
            return Qwen2_5_VLForConditionalGeneration(cfg)
    return Qwen2_5_VLForConditionalGeneration(cfg)


def numel(model) -> int:
    return sum(p.numel() for p in model.parameters())


def parts(model) -> dict:
    visual = model.model.visual
    return {
        "vision": sum(p.numel() for n, p in visual.named_parameters() if not n.startswith("merger.")),
        "merger": sum(p.numel() for p in visual.merger.parameters()),
    }


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("nested", [True, False])
def test_parameter_counts_match_transformers(tied, nested):
    config = small_config(tied, nested)
    model = build(config)
    counts = parameter_counts(config)
    assert counts["total"] == numel(model)
    assert counts["vision"] == parts(model)["vision"] and counts["merger"] == parts(model)["merger"]
    assert (counts["lm_head"] == 0) is tied
    assert counts["text"] + counts["lm_head"] == numel(model) - counts["vision"] - counts["merger"]


@pytest.mark.parametrize("model_id, published", [
    ("Qwen/Qwen2.5-VL-3B-Instruct", 3.75e9), ("Qwen/Qwen2.5-VL-7B-Instruct", 8.29e9),
])  # fmt: skip
def test_published_sizes_exact_on_the_real_architecture(model_id, published):
    config = published_config(model_id)
    counts = parameter_counts(config)
    assert counts["total"] == numel(build(config, meta=True))  # the real architecture, no memory used
    assert round(counts["total"] / 1e9, 2) == pytest.approx(published / 1e9)


@pytest.mark.parametrize("targets", ["all-linear", ["q_proj", "v_proj"], r".*language_model.*\.(gate|up)_proj"])
def test_lora_counts_match_peft(targets):
    from peft import LoraConfig, get_peft_model

    config = small_config(tied=False)
    model = get_peft_model(build(config), LoraConfig(r=8, lora_alpha=16, target_modules=targets))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    counts = parameter_counts(config, lora_rank=8, lora_target_modules=targets)
    assert counts["lora_text"] + counts["lora_vision"] + counts["lora_merger"] == trainable


def saved_bytes(module_call, params) -> int:
    """Bytes of distinct storages autograd saves for backward during ``module_call()``."""
    import torch

    skip = {p.untyped_storage().data_ptr() for p in params}
    seen: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip:
            seen[storage.data_ptr()] = max(seen.get(storage.data_ptr(), 0), storage.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module_call()
    return sum(seen.values())


@pytest.mark.parametrize("text", [{}, {"hidden_size": 512, "num_attention_heads": 8}, {"intermediate_size": 1408}])
def test_decoder_activation_coefficient_is_measured(text):
    """Per layer per token bytes saved by the transformers decoder layer (bf16, SDPA) equal the formula."""
    import torch

    tokens = (2, 256)
    per_layer = []
    for layers in (2, 4):
        config = small_config(False, num_hidden_layers=layers, **text)
        model = build(config).to(torch.bfloat16)
        ids = torch.randint(0, 900, tokens)
        per_layer.append(saved_bytes(lambda m=model, i=ids: m.model.language_model(input_ids=i), model.parameters()))
    measured = (per_layer[1] - per_layer[0]) / 2 / (tokens[0] * tokens[1])
    assert measured == activation_bytes_per_token_layer(config)


def test_vision_activation_coefficient_is_measured():
    import torch

    grid = torch.tensor([[1, 16, 16]])
    per_depth = []
    for depth in (1, 2):
        config = small_config(False)
        config["vision_config"]["depth"] = depth
        config["vision_config"]["fullatt_block_indexes"] = [0]
        model = build(config).to(torch.bfloat16)
        pixels = torch.randn(256, 3 * 2 * 14 * 14)
        per_depth.append(saved_bytes(lambda m=model, p=pixels: m.model.visual(p, grid_thw=grid), model.parameters()))
    assert (per_depth[1] - per_depth[0]) / 256 == vision_activation_bytes_per_patch_block(config)


def test_module_imports_without_torch():
    code = "import sys, spatialrl.train.plan; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# --------------------------------------------------------------------------------------
# Memory model
# --------------------------------------------------------------------------------------


def job(**overrides) -> PlanInputs:
    base = dict(
        model="Qwen/Qwen2.5-VL-7B-Instruct", model_config=published_config("Qwen/Qwen2.5-VL-7B-Instruct"),
        image_tokens_per_sample=256, prompt_text_tokens=200, max_completion_length=1024, num_generations=8,
        per_device_train_batch_size=4, steps_per_generation=4, num_processes=8, distributed="zero3",
    )  # fmt: skip
    base.update(overrides)
    return PlanInputs(**base)


def test_sharding_lowers_memory_per_device():
    ddp, zero2, zero3, fsdp2 = (estimate(job(distributed=d)).memory_without_vllm for d in ("ddp", "zero2", "zero3", "fsdp2"))
    assert zero3.total < zero2.total < ddp.total
    assert fsdp2.total < ddp.total
    assert zero3.weights < zero2.weights == ddp.weights
    assert zero2.optimizer_states < ddp.optimizer_states and zero2.gradients < ddp.gradients


def test_more_image_tokens_more_memory():
    small, large = (estimate(job(image_tokens_per_sample=n)) for n in (256, 1024))
    assert large.memory_without_vllm.activations > small.memory_without_vllm.activations
    assert large.memory_without_vllm.total > small.memory_without_vllm.total
    assert large.memory_with_vllm.total > small.memory_with_vllm.total
    assert large.sequence_length - small.sequence_length == 768


def test_gradient_checkpointing_lowers_activations():
    on, off = (estimate(job(gradient_checkpointing=g)).memory_without_vllm for g in (True, False))
    assert on.activations < off.activations / 5


def test_frozen_vision_tower_saves_activations_and_states():
    trained, frozen = (estimate(job(freeze_vision_tower=f)) for f in (False, True))
    assert frozen.memory_without_vllm.activations < trained.memory_without_vllm.activations
    assert frozen.parameters["trainable"] == trained.parameters["trainable"] - trained.parameters["vision"]


def test_lora_lowers_optimizer_state_and_drops_the_reference():
    full, lora = (estimate(job(lora_rank=r)) for r in (None, 16))
    assert lora.memory_without_vllm.optimizer_states < full.memory_without_vllm.optimizer_states / 50
    assert lora.memory_without_vllm.reference_model == 0 < full.memory_without_vllm.reference_model
    assert 0 < lora.parameters["trainable"] < full.parameters["trainable"] / 50


def test_vllm_colocate_adds_its_share():
    plan = estimate(job(use_vllm=True, vllm_gpu_memory_utilization=0.3))
    hf, colocate = plan.memory_without_vllm, plan.memory_with_vllm
    share = 0.3 * 80
    assert colocate.training_phase == pytest.approx(hf.training_phase + share)
    assert colocate.generation == pytest.approx(share)
    assert plan.selected == "vllm_colocate"
    sleeping = estimate(job(use_vllm=True, vllm_enable_sleep_mode=True)).memory_with_vllm
    assert sleeping.total < colocate.total


def test_fused_lm_head_is_far_smaller_than_materialised_logits():
    fused, full = (estimate(job(fused_lm_head=f, per_device_train_batch_size=8, max_completion_length=2048))
                   .memory_without_vllm for f in (True, False))
    assert fused.logits < full.logits / 5


def test_rollout_batch():
    plan = estimate(job(per_device_train_batch_size=4, steps_per_generation=4, num_processes=8, num_generations=8))
    assert plan.rollout["completions_per_generation"] == 128
    assert plan.rollout["prompts_per_generation"] == 16
    assert plan.rollout["completions_per_device_per_generation"] == 16
    assert plan.prompt_length == 456 and plan.sequence_length == 1480
    assert plan.image_patches_per_sample == 1024


def test_too_small_gpu_warns():
    plan = estimate(job(gpu_memory_gib=24.0, distributed="ddp"))
    assert not plan.fits["hf_generate"]
    assert any("exceeds the GPU's 24 GiB" in w for w in plan.warnings)


def test_tight_fit_warns_about_headroom():
    needed = estimate(job()).memory_without_vllm.total
    plan = estimate(job(gpu_memory_gib=needed / 0.95))
    assert plan.fits["hf_generate"]
    assert any("less than 10%" in w for w in plan.warnings)
    assert not estimate(job(gpu_memory_gib=needed * 2)).warnings


def test_vllm_share_too_small_for_weights_warns():
    plan = estimate(job(use_vllm=True, vllm_gpu_memory_utilization=0.1))
    assert any("cannot hold the model's weights" in w for w in plan.warnings)


def test_indivisible_generation_batch_warns():
    plan = estimate(job(per_device_train_batch_size=3, steps_per_generation=1, num_processes=1, num_generations=8))
    assert any("not divisible by num_generations" in w for w in plan.warnings)


def test_invalid_inputs_are_refused():
    with pytest.raises(ValueError, match="distributed"):
        job(distributed="zero4")
    with pytest.raises(ValueError, match="vllm_gpu_memory_utilization"):
        job(vllm_gpu_memory_utilization=0.0)
    with pytest.raises(ValueError, match="hidden_size"):
        estimate(job(model_config={"vision_config": {}}))


def test_format_plan_has_the_key_lines():
    plan = estimate(job(use_vllm=True, gpu_memory_gib=24.0))
    text = format_plan(plan)
    for needle in ("image tokens per sample", "use_vllm", "True (vLLM colocate", "prompt length", "sequence length",
                   "rollout batch", "peak per GPU", "HF generate", "vLLM colocate *", "warning:", "fits 24 GiB"):  # fmt: skip
        assert needle in text
    assert f"{plan.memory_with_vllm.total:.1f}" in text and f"{plan.memory_without_vllm.total:.1f}" in text


def test_server_mode_has_its_own_variant():
    plan = estimate(job(use_vllm=True, vllm_mode="server"))
    assert plan.selected == "vllm_server"
    assert plan.memory["vllm_server"].total < plan.memory_without_vllm.total
    assert dataclasses.asdict(plan)["selected"] == "vllm_server"
