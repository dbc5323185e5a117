"""A plan before launch: sequence lengths, rollout batch and peak GPU memory per device of a GRPO run.

``spatialrl plan`` and ``spatialrl train --dry-run`` print this for a recipe. Everything here is
arithmetic on the model's ``config.json`` and the recipe's numbers: no torch import, no model
built, nothing downloaded. docs/plan.md states the model in full and compares it with published
figures; this docstring is the summary.

Parameters (exact for Qwen2.5-VL, checked against ``sum(p.numel())`` of the transformers model):
text embeddings ``V h``; per decoder layer q/k/v with biases (``h (n_q + 2 n_kv) d_head`` plus
biases), o without bias, SwiGLU MLP ``3 h I``, two RMSNorms; final norm; LM head ``V h`` unless
tied. Vision: patch embed ``3 * 2 * 14 * 14 * d`` (no bias); per block qkv and proj with biases,
SwiGLU MLP with biases, two RMSNorms; merger RMSNorm plus ``Linear(4d, 4d)`` and
``Linear(4d, h)`` with biases.

Memory per device, in GiB (2**30 bytes); ``w`` = 2 bytes (bf16) or 4, ``N`` = ``num_processes``:

weights
    The model is loaded in bf16 (spatialrl.train.grpo loads it so when ``bf16``), so HF
    Trainer's ``bf16=True`` is autocast over bf16 weights, not fp32 master weights.
    DDP, ZeRO-1/2: ``w P`` on every GPU; ZeRO-3: ``w P / N``; FSDP2 (accelerate): trainable
    parameters are upcast to fp32 before sharding (``4 P_train / N``), frozen ones stay ``w / N``.
gradients
    DDP: ``w P_train`` plus DDP's bucket copy of the same size (``gradient_as_bucket_view`` is off);
    ZeRO-1: full ``w P_train``; ZeRO-2/3: ``w P_train / N``; FSDP2: fp32, ``4 P_train / N``.
optimizer states
    DDP: torch AdamW keeps its two moments in the parameter dtype: ``2 w P_train``.
    DeepSpeed ZeRO-1/2/3 (bf16): fp32 master + two fp32 moments, ``12 P_train / N``
    (Rajbhandari et al. 2020). FSDP2: two fp32 moments, ``8 P_train / N`` (the master is the
    sharded fp32 parameter, counted under weights). LoRA adapters: 16 bytes each (fp32).
reference model
    When ``beta > 0`` without LoRA (TRL uses the adapter-free model as reference under PEFT):
    ``w P`` on every GPU, or ``w P / N`` under ZeRO-3 and FSDP2 (TRL shards it like the policy).
activations
    Bytes saved for backward per token and decoder layer, counted tensor by tensor as in
    Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer Models",
    sec. 4.1) for Qwen2's layer with flash/SDPA attention (no ``s^2`` term):
    ``8 h`` (two RMSNorm fp32 inputs) ``+ w (6 h + 2 n_kv d_head + 4 I) + 4 n_q`` (the
    attention log-sum-exp); 20 h + 4 kv + 8 I + 4 n_q bytes in bf16. Vision blocks, per patch:
    ``30 d + 8 I_v + 4 heads`` bytes. Both were measured on this model's transformers code with
    ``torch.autograd.graph.saved_tensors_hooks`` (tests/train/test_plan.py checks them). Patches
    are ``merge_size**2 = 4`` per image token. With gradient checkpointing each layer keeps only
    its input (``w h`` per token, ``w d`` per patch) and one layer is recomputed at a time.
    A backward working set of ``w (2 h + 2 I)`` per token is added. Frozen vision blocks
    (and merger) save nothing.
logits
    TRL 1.16 patches the LM head (``trl.trainer.utils.add_fused_lm_head``): log-probs are
    computed over completion tokens in tiles of 4,096 tokens x 32,768 vocabulary entries and
    the ``(tokens, vocab)`` logits are never materialised; the backward keeps an fp32
    gradient of the head ``4 V h`` and of the hidden states ``4 h`` per completion token.
    With ``fused_lm_head=False`` (TRL before the fused head) the logits cost 8 bytes per
    completion token per vocabulary entry (bf16 logits, their temperature-scaled copy and the
    log-softmax output kept for backward, and a bf16 gradient of that shape).
generation
    HF generate: the KV cache of the per-device generation batch
    (``per_device_train_batch_size x steps_per_generation`` sequences of the full length),
    ``2 L n_kv d_head w`` bytes per token, or at prefill the prompt's cache plus one layer's
    transient ``w (2 h + 3 I)`` per prompt token; under ZeRO-3 with
    ``ds3_gather_for_generation`` the whole bf16 model is gathered for generation.
    vLLM colocate: ``vllm_gpu_memory_utilization x gpu_memory`` is held by vLLM on each GPU,
    for the whole run, or only while generating with ``vllm_enable_sleep_mode``.
overhead
    ``framework_overhead_gib`` (CUDA context, NCCL, allocator slack: an assumption, 1 GiB by
    default); DeepSpeed's reduce bucket (``5e8`` elements, its default); under ZeRO-3/FSDP2
    the gathered working set (two decoder layers and the largest matrix, the embedding).

The peak is the larger of the training phase (weights + gradients + optimizer + reference +
activations + logits + overhead) and the generation phase (weights + optimizer + reference +
generation + overhead); a colocated vLLM without sleep mode adds its share to both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MemoryEstimate",
    "Plan",
    "PlanInputs",
    "activation_bytes_per_token_layer",
    "estimate",
    "format_plan",
    "linear_modules",
    "parameter_counts",
    "vision_activation_bytes_per_patch_block",
]

GIB = 1024**3
DISTRIBUTED = ("ddp", "zero1", "zero2", "zero3", "fsdp2")
VLLM_MODES = ("colocate", "server")
#: DeepSpeed's default ``reduce_bucket_size`` (elements) for ZeRO-1/2/3 when the config leaves it unset.
DEEPSPEED_REDUCE_BUCKET = 500_000_000
#: The fused LM head's tile (trl/kernels/chunked_logprob.py: TOKEN_CHUNK_SIZE x _CHUNKED_LOGPROB_CHUNK_SIZE).
FUSED_TILE = (4096, 32768)
#: Headroom under which a variant is reported as tight.
HEADROOM = 0.10


@dataclass
class PlanInputs:
    """What the estimate needs from a recipe; one help text per field."""

    model: str  # hub id or directory, for display
    model_config: dict  # the model's config.json (text fields top-level or under text_config; vision_config)
    image_tokens_per_sample: int  # all images of a sample together, under the pixel budget
    prompt_text_tokens: int  # text tokens of the prompt (chat template included)
    max_completion_length: int
    num_generations: int
    per_device_train_batch_size: int  # completions per device per micro-step (TRL's meaning)
    steps_per_generation: int
    num_processes: int  # GPUs in total (training processes)
    num_nodes: int = 1
    distributed: str = "ddp"  # "ddp" | "zero1" | "zero2" | "zero3" | "fsdp2"
    gradient_checkpointing: bool = True
    bf16: bool = True
    reference_model: bool = True  # beta > 0 keeps a frozen reference copy (not under LoRA)
    lora_rank: int | None = None  # None: full fine-tuning
    lora_target_modules: str | list[str] = "all-linear"  # peft's meaning: "all-linear", a regex, or names
    lora_dropout: float = 0.05  # > 0 keeps a dropped copy of each adapted input
    freeze_vision_tower: bool = False
    freeze_merger: bool = False
    use_vllm: bool = False
    vllm_mode: str = "colocate"  # "colocate" | "server"
    vllm_gpu_memory_utilization: float = 0.3  # TRL's default (trl/trainer/grpo_config.py)
    vllm_tensor_parallel_size: int = 1
    vllm_enable_sleep_mode: bool = False  # vLLM frees its memory between generations (sleep level 2)
    ds3_gather_for_generation: bool = True  # TRL's default: ZeRO-3 gathers the model for HF generate
    fused_lm_head: bool = True  # TRL 1.16's chunked log-prob head; False: logits materialised
    gpu_memory_gib: float = 80.0
    framework_overhead_gib: float = 1.0  # CUDA context, NCCL, allocator slack (assumption)

    def __post_init__(self) -> None:
        if self.distributed not in DISTRIBUTED:
            raise ValueError(f"distributed must be one of {DISTRIBUTED}; got {self.distributed!r}")
        if self.vllm_mode not in VLLM_MODES:
            raise ValueError(f"vllm_mode must be one of {VLLM_MODES}; got {self.vllm_mode!r}")
        for name in ("num_generations", "per_device_train_batch_size", "steps_per_generation", "num_processes",
                     "num_nodes", "max_completion_length", "vllm_tensor_parallel_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1; got {getattr(self, name)}")
        for name in ("image_tokens_per_sample", "prompt_text_tokens"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0; got {getattr(self, name)}")
        if not 0.0 < self.vllm_gpu_memory_utilization <= 1.0:
            raise ValueError(f"vllm_gpu_memory_utilization must be in (0, 1]; got {self.vllm_gpu_memory_utilization}")
        if self.gpu_memory_gib <= 0:
            raise ValueError(f"gpu_memory_gib must be positive; got {self.gpu_memory_gib}")
        if self.lora_rank is not None and self.lora_rank < 1:
            raise ValueError(f"lora_rank must be None (full fine-tuning) or >= 1; got {self.lora_rank}")


@dataclass
class MemoryEstimate:
    """Peak GPU memory per device, GiB, by part. ``total`` is the peak over the training and the
    generation phase (parts of the phase that does not set it are still shown), not their sum."""

    weights: float
    gradients: float
    optimizer_states: float
    reference_model: float
    activations: float  # training micro-batch: decoder + vision tower, saved for backward
    logits: float  # the LM head's log-prob computation (fused tiles or materialised logits)
    generation: float  # HF generate: KV cache + prefill (+ ZeRO-3 gather); vLLM colocate: its share
    overhead: float
    training_phase: float
    generation_phase: float
    total: float
    peak_phase: str  # "training" | "generation"
    label: str = ""


@dataclass
class Plan:
    """What ``spatialrl plan`` prints: see :func:`format_plan`."""

    inputs: PlanInputs
    parameters: dict[str, int]  # total, text, vision, merger, lm_head, embeddings, lora, trainable
    image_tokens_per_sample: int
    image_patches_per_sample: int
    prompt_length: int  # text + image tokens
    sequence_length: int  # prompt + max completion
    rollout: dict[str, int]
    memory: dict[str, MemoryEstimate]  # "hf_generate", "vllm_colocate" (+ "vllm_server" in server mode)
    fits: dict[str, bool]
    selected: str  # the variant the recipe runs
    vllm_kv_cache_gib: float  # room left for vLLM's KV cache inside its share (colocate)
    warnings: list[str] = field(default_factory=list)

    @property
    def memory_without_vllm(self) -> MemoryEstimate:
        return self.memory["hf_generate"]

    @property
    def memory_with_vllm(self) -> MemoryEstimate:
        return self.memory["vllm_colocate"]


# --------------------------------------------------------------------------------------
# Model shape
# --------------------------------------------------------------------------------------


def _text(config: dict) -> dict:
    """Text fields, whether top-level (published config.json) or under ``text_config``."""
    text = dict(config)
    text.update(config.get("text_config") or {})
    return text


def _tied(config: dict) -> bool:
    if "tie_word_embeddings" in config:
        return bool(config["tie_word_embeddings"])
    return bool((config.get("text_config") or {}).get("tie_word_embeddings", False))


@dataclass(frozen=True)
class _Shape:
    vocab: int
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    tied: bool
    v_hidden: int
    v_intermediate: int
    v_depth: int
    v_heads: int
    v_out: int
    patch_values: int  # in_chans * temporal_patch * patch**2
    merge: int  # spatial_merge_size ** 2


def _shape(config: dict) -> _Shape:
    t = _text(config)
    v = config.get("vision_config") or {}
    try:
        hidden, heads = int(t["hidden_size"]), int(t["num_attention_heads"])
        shape = _Shape(
            vocab=int(t["vocab_size"]), hidden=hidden, intermediate=int(t["intermediate_size"]),
            layers=int(t["num_hidden_layers"]), heads=heads,
            kv_heads=int(t.get("num_key_value_heads") or heads),
            head_dim=hidden // heads,  # Qwen2.5-VL's attention uses hidden // heads, not config head_dim
            tied=_tied(config),
            v_hidden=int(v.get("hidden_size", v.get("embed_dim", 0))),
            v_intermediate=int(v.get("intermediate_size", 0)), v_depth=int(v.get("depth", 0)),
            v_heads=int(v.get("num_heads", 1)), v_out=int(v.get("out_hidden_size", hidden)),
            patch_values=int(v.get("in_chans", v.get("in_channels", 3))) * int(v.get("temporal_patch_size", 2))
            * int(v.get("patch_size", 14)) ** 2,
            merge=int(v.get("spatial_merge_size", 2)) ** 2,
        )  # fmt: skip
    except KeyError as exc:
        raise ValueError(f"model_config lacks {exc.args[0]!r}: pass the model's config.json (Qwen2.5-VL)") from exc
    return shape


def linear_modules(model_config: dict) -> list[tuple[str, str, int, int, int]]:
    """Every ``nn.Linear`` of Qwen2.5-VL as ``(part, dotted name of layer 0, in, out, count)``;
    part is "text", "vision", "merger" or "lm_head". Names follow transformers 5's module tree
    (``model.language_model.layers.0.self_attn.q_proj``), which peft's target matching uses."""
    s = _shape(model_config)
    q, kv = s.heads * s.head_dim, s.kv_heads * s.head_dim
    t = "model.language_model.layers.0."
    rows = [
        ("text", t + "self_attn.q_proj", s.hidden, q, s.layers), ("text", t + "self_attn.k_proj", s.hidden, kv, s.layers),
        ("text", t + "self_attn.v_proj", s.hidden, kv, s.layers), ("text", t + "self_attn.o_proj", q, s.hidden, s.layers),
        ("text", t + "mlp.gate_proj", s.hidden, s.intermediate, s.layers),
        ("text", t + "mlp.up_proj", s.hidden, s.intermediate, s.layers),
        ("text", t + "mlp.down_proj", s.intermediate, s.hidden, s.layers),
    ]  # fmt: skip
    if s.v_depth:
        d, b = s.v_hidden, "model.visual.blocks.0."
        rows += [
            ("vision", b + "attn.qkv", d, 3 * d, s.v_depth), ("vision", b + "attn.proj", d, d, s.v_depth),
            ("vision", b + "mlp.gate_proj", d, s.v_intermediate, s.v_depth),
            ("vision", b + "mlp.up_proj", d, s.v_intermediate, s.v_depth),
            ("vision", b + "mlp.down_proj", s.v_intermediate, d, s.v_depth),
            ("merger", "model.visual.merger.mlp.0", s.merge * d, s.merge * d, 1),
            ("merger", "model.visual.merger.mlp.2", s.merge * d, s.v_out, 1),
        ]  # fmt: skip
    rows.append(("lm_head", "lm_head", s.hidden, s.vocab, 1))
    return rows


def _lora_targeted(name: str, part: str, targets: str | list[str]) -> bool:
    """peft's matching: "all-linear" (every Linear but the output layer), a regex (fullmatch), or
    names matched as the module name or its dotted suffix."""
    if isinstance(targets, str):
        if targets == "all-linear":
            return part != "lm_head"
        return re.fullmatch(targets, name) is not None
    return any(name == t or name.endswith("." + t) for t in targets)


def parameter_counts(model_config: dict, lora_rank: int | None = None,
                     lora_target_modules: str | list[str] = "all-linear") -> dict[str, int]:
    """Exact parameter counts of ``Qwen2_5_VLForConditionalGeneration`` built from ``model_config``.

    Keys: ``text`` (embeddings, decoder, final norm), ``lm_head`` (0 when tied), ``vision``
    (patch embed and blocks), ``merger``, ``total`` (their sum, what ``sum(p.numel())`` gives),
    ``embeddings``, ``text_layer`` (one decoder layer), ``vision_block`` (one block), and with
    ``lora_rank`` the adapter count per part (``lora_text``, ``lora_vision``, ``lora_merger``)."""
    s = _shape(model_config)
    q, kv = s.heads * s.head_dim, s.kv_heads * s.head_dim
    layer = s.hidden * (q + 2 * kv) + (q + 2 * kv) + q * s.hidden + 3 * s.hidden * s.intermediate + 2 * s.hidden
    embeddings = s.vocab * s.hidden
    text = embeddings + s.layers * layer + s.hidden
    lm_head = 0 if s.tied else s.vocab * s.hidden
    d, i = s.v_hidden, s.v_intermediate
    block = (3 * d * d + 3 * d) + (d * d + d) + (2 * (d * i + i) + (i * d + d)) + 2 * d if s.v_depth else 0
    vision = s.patch_values * d + s.v_depth * block
    md = s.merge * d
    merger = (d + md * md + md + md * s.v_out + s.v_out) if s.v_depth else 0
    counts = {
        "total": text + lm_head + vision + merger, "text": text, "lm_head": lm_head, "vision": vision,
        "merger": merger, "embeddings": embeddings, "text_layer": layer, "vision_block": block,
    }  # fmt: skip
    if lora_rank:
        for part in ("text", "vision", "merger"):
            counts[f"lora_{part}"] = sum(
                lora_rank * (fan_in + fan_out) * n
                for p, name, fan_in, fan_out, n in linear_modules(model_config)
                if p == part and _lora_targeted(name, p, lora_target_modules)
            )
    return counts


def activation_bytes_per_token_layer(model_config: dict, bf16: bool = True) -> int:
    """Bytes one decoder layer saves for backward per token (flash/SDPA attention, no checkpointing)."""
    s = _shape(model_config)
    w = 2 if bf16 else 4
    return 8 * s.hidden + w * (6 * s.hidden + 2 * s.kv_heads * s.head_dim + 4 * s.intermediate) + 4 * s.heads + 8


def vision_activation_bytes_per_patch_block(model_config: dict, bf16: bool = True) -> int:
    """Bytes one vision block saves for backward per patch (no checkpointing)."""
    s = _shape(model_config)
    w = 2 if bf16 else 4
    return (w * 15 * s.v_hidden) + w * 4 * s.v_intermediate + 4 * s.v_heads + 8


# --------------------------------------------------------------------------------------
# Estimate
# --------------------------------------------------------------------------------------


def _trainable(inputs: PlanInputs, counts: dict[str, int]) -> tuple[int, int, bool, bool]:
    """(full-precision trainable base parameters, LoRA adapter parameters, vision blocks train, merger trains)."""
    vision_trains = not inputs.freeze_vision_tower
    merger_trains = not inputs.freeze_merger
    if inputs.lora_rank:
        lora = counts["lora_text"] + (counts["lora_vision"] if vision_trains else 0)
        lora += counts["lora_merger"] if merger_trains else 0
        return 0, lora, vision_trains and counts["lora_vision"] > 0, merger_trains and counts["lora_merger"] > 0
    base = counts["text"] + counts["lm_head"]
    base += counts["vision"] if vision_trains else 0
    base += counts["merger"] if merger_trains else 0
    return base, 0, vision_trains, merger_trains


def _lora_dropout_bytes(inputs: PlanInputs, part: str) -> int:
    """Per token (text layer) or patch (vision block): the dropped input copy (w) and its mask (1 byte)."""
    if not inputs.lora_rank or inputs.lora_dropout <= 0:
        return 0
    w = 2 if inputs.bf16 else 4
    return sum(
        (w + 1) * fan_in for p, name, fan_in, _, _ in linear_modules(inputs.model_config)
        if p == part and _lora_targeted(name, p, inputs.lora_target_modules)
    )  # fmt: skip


def _gib(n: float) -> float:
    return n / GIB


def _states(inputs: PlanInputs, counts: dict[str, int], base_train: int, lora: int) -> dict[str, float]:
    """Bytes per device of weights, gradients, optimizer states and the reference model."""
    w = 2 if inputs.bf16 else 4
    n, dist = inputs.num_processes, inputs.distributed
    total = counts["total"]
    frozen = total - base_train
    if dist in ("ddp", "zero1", "zero2"):
        weights = w * total + (4 if dist == "ddp" else w) * lora
    elif dist == "zero3":
        weights = (w * total + w * lora) / n
    else:  # fsdp2: trainable parameters upcast to fp32 before sharding
        weights = (4 * base_train + w * frozen + 4 * lora) / n
    if dist == "ddp":
        grads = 2 * (w * base_train + 4 * lora)  # gradients + DDP's bucket copy
        optim = 2 * w * base_train + 8 * lora
    elif dist == "zero1":
        grads, optim = w * (base_train + lora), 12 * (base_train + lora) / n
    elif dist in ("zero2", "zero3"):
        grads, optim = w * (base_train + lora) / n, 12 * (base_train + lora) / n
    else:
        grads, optim = 4 * (base_train + lora) / n, 8 * (base_train + lora) / n
    reference = 0.0
    if inputs.reference_model and not inputs.lora_rank:
        reference = w * total / (n if dist in ("zero3", "fsdp2") else 1)
    return {"weights": weights, "gradients": grads, "optimizer_states": optim, "reference_model": reference}


def _activations(inputs: PlanInputs, s: _Shape, vision_trains: bool, merger_trains: bool, seq: int) -> float:
    """Bytes of the training micro-batch's saved activations and backward working set."""
    w = 2 if inputs.bf16 else 4
    tokens = inputs.per_device_train_batch_size * seq
    layer = activation_bytes_per_token_layer(inputs.model_config, inputs.bf16) + _lora_dropout_bytes(inputs, "text")
    outside = 6 * s.hidden + 4 * s.head_dim + 12
    working = w * (2 * s.hidden + 2 * s.intermediate)
    if inputs.gradient_checkpointing:
        text = tokens * (s.layers * w * s.hidden + layer + outside + working)
    else:
        text = tokens * (s.layers * layer + outside + working)
    patches = inputs.per_device_train_batch_size * inputs.image_tokens_per_sample * s.merge
    vision = 0.0
    if vision_trains and s.v_depth:
        block = vision_activation_bytes_per_patch_block(inputs.model_config, inputs.bf16)
        block += _lora_dropout_bytes(inputs, "vision")
        kept = s.v_depth * (w * s.v_hidden if inputs.gradient_checkpointing else block)
        vision = patches * (kept + (block if inputs.gradient_checkpointing else 0) + 16 * s.v_hidden + w * s.patch_values + 8)
    elif merger_trains and s.v_depth:
        vision = patches * 16 * s.v_hidden  # the merger's norm and MLP inputs
    pixels = patches * 4 * s.patch_values  # fp32 pixel values of the micro-batch
    return text + vision + pixels


def _logits(inputs: PlanInputs, s: _Shape, lm_head_trains: bool) -> float:
    w = 2 if inputs.bf16 else 4
    n = inputs.per_device_train_batch_size * inputs.max_completion_length
    if not inputs.fused_lm_head:
        return 8.0 * n * s.vocab
    tile = w * min(n, FUSED_TILE[0]) * min(s.vocab, FUSED_TILE[1])
    per_token = w * s.hidden + 4 * s.hidden + 40  # hidden copy, fp32 hidden gradient, fp32 statistics
    return tile + n * per_token + (4 * s.vocab * s.hidden if lm_head_trains else 0)


def _hf_generation(inputs: PlanInputs, s: _Shape, counts: dict[str, int], prompt: int, seq: int) -> float:
    w = 2 if inputs.bf16 else 4
    batch = inputs.per_device_train_batch_size * inputs.steps_per_generation
    kv_token = 2 * s.layers * s.kv_heads * s.head_dim * w
    prefill = batch * prompt * (kv_token + w * (2 * s.hidden + 3 * s.intermediate)) + batch * s.vocab * 4
    decode = batch * seq * kv_token + 2 * batch * s.vocab * 4
    patches = batch * inputs.image_tokens_per_sample * s.merge
    vision = patches * w * (3 * s.v_intermediate + 4 * s.v_hidden)
    gather = 0.0
    if inputs.distributed == "zero3" and inputs.ds3_gather_for_generation:
        gather = w * counts["total"] * (1 - 1 / inputs.num_processes)
    return max(prefill + vision, decode) + gather


def _overhead(inputs: PlanInputs, s: _Shape, counts: dict[str, int]) -> float:
    w = 2 if inputs.bf16 else 4
    extra = inputs.framework_overhead_gib * GIB
    if inputs.distributed in ("zero1", "zero2", "zero3"):
        extra += w * DEEPSPEED_REDUCE_BUCKET
    if inputs.distributed in ("zero3", "fsdp2"):
        extra += w * (2 * counts["text_layer"] + counts["embeddings"])
    return extra


def _vllm_kv_room(inputs: PlanInputs, counts: dict[str, int]) -> float:
    """GiB left for vLLM's KV cache in its share after its weights (activation profiling not counted)."""
    w = 2 if inputs.bf16 else 4
    share = inputs.vllm_gpu_memory_utilization * inputs.gpu_memory_gib
    return share - _gib(w * counts["total"] / inputs.vllm_tensor_parallel_size)


def _variant(label: str, states: dict[str, float], activations: float, logits: float, generation: float,
             overhead: float, *, share_always: float = 0.0) -> MemoryEstimate:
    persistent = states["weights"] + states["optimizer_states"] + states["reference_model"] + overhead + share_always
    training = persistent + states["gradients"] + activations + logits
    gen = persistent + generation
    return MemoryEstimate(
        weights=_gib(states["weights"]), gradients=_gib(states["gradients"]),
        optimizer_states=_gib(states["optimizer_states"]), reference_model=_gib(states["reference_model"]),
        activations=_gib(activations), logits=_gib(logits), generation=_gib(generation + share_always),
        overhead=_gib(overhead), training_phase=_gib(training), generation_phase=_gib(gen),
        total=_gib(max(training, gen)), peak_phase="training" if training >= gen else "generation", label=label,
    )  # fmt: skip


def estimate(inputs: PlanInputs) -> Plan:
    """The plan of ``inputs``: lengths, rollout batch, memory per device of each generation
    variant, whether each fits ``gpu_memory_gib``, and warnings."""
    s = _shape(inputs.model_config)
    counts = parameter_counts(inputs.model_config, inputs.lora_rank, inputs.lora_target_modules)
    base_train, lora, vision_trains, merger_trains = _trainable(inputs, counts)
    params = {k: counts[k] for k in ("total", "text", "vision", "merger", "lm_head", "embeddings")}
    params["lora"] = lora
    params["trainable"] = base_train + lora
    prompt = inputs.prompt_text_tokens + inputs.image_tokens_per_sample
    seq = prompt + inputs.max_completion_length
    per_device = inputs.per_device_train_batch_size * inputs.steps_per_generation
    global_completions = per_device * inputs.num_processes
    rollout = {
        "completions_per_generation": global_completions,
        "prompts_per_generation": global_completions // inputs.num_generations,
        "completions_per_device_per_generation": per_device,
        "completions_per_micro_step": inputs.per_device_train_batch_size * inputs.num_processes,
        "micro_steps_per_generation": inputs.steps_per_generation,
        "num_generations": inputs.num_generations,
    }  # fmt: skip

    states = _states(inputs, counts, base_train, lora)
    activations = _activations(inputs, s, vision_trains, merger_trains, seq)
    lm_head_trains = base_train > 0  # full fine-tuning trains the head (or the tied embedding)
    logits = _logits(inputs, s, lm_head_trains)
    overhead = _overhead(inputs, s, counts)
    hf = _variant("HF generate", states, activations, logits, _hf_generation(inputs, s, counts, prompt, seq), overhead)
    share = inputs.vllm_gpu_memory_utilization * inputs.gpu_memory_gib * GIB
    if inputs.vllm_enable_sleep_mode:
        colocate = _variant("vLLM colocate (sleep mode)", states, activations, logits, share, overhead)
    else:
        colocate = _variant("vLLM colocate", states, activations, logits, 0.0, overhead, share_always=share)
    memory = {"hf_generate": hf, "vllm_colocate": colocate}
    if inputs.use_vllm and inputs.vllm_mode == "server":
        memory["vllm_server"] = _variant("vLLM server (other GPUs)", states, activations, logits, 0.0, overhead)
    selected = "hf_generate" if not inputs.use_vllm else ("vllm_colocate" if inputs.vllm_mode == "colocate" else "vllm_server")
    fits = {k: m.total <= inputs.gpu_memory_gib for k, m in memory.items()}
    plan = Plan(
        inputs=inputs, parameters=params, image_tokens_per_sample=inputs.image_tokens_per_sample,
        image_patches_per_sample=inputs.image_tokens_per_sample * s.merge, prompt_length=prompt,
        sequence_length=seq, rollout=rollout, memory=memory, fits=fits, selected=selected,
        vllm_kv_cache_gib=_vllm_kv_room(inputs, counts),
    )  # fmt: skip
    plan.warnings = _warnings(plan, s)
    return plan


def _warnings(plan: Plan, s: _Shape) -> list[str]:
    inputs, gpu = plan.inputs, plan.inputs.gpu_memory_gib
    out: list[str] = []
    if plan.rollout["completions_per_generation"] % inputs.num_generations:
        out.append(
            f"the generation batch ({plan.rollout['completions_per_generation']} completions = per_device_train_batch_size "
            f"x num_processes x steps_per_generation) is not divisible by num_generations ({inputs.num_generations}): "
            "TRL refuses this; change one of them"
        )
    chosen = plan.memory[plan.selected]
    if chosen.total > gpu:
        out.append(
            f"{chosen.label}: estimated peak {chosen.total:.1f} GiB per GPU exceeds the GPU's {gpu:.0f} GiB "
            f"({chosen.peak_phase} phase); lower per_device_train_batch_size, the pixel budget or "
            "max_completion_length, or shard more (zero3/fsdp2)"
        )
        better = [m.label for k, m in plan.memory.items() if k != plan.selected and plan.fits[k]]
        if better:
            out.append(f"{', '.join(better)} would fit ({', '.join(f'{m.total:.1f} GiB' for k, m in plan.memory.items() if k != plan.selected and plan.fits[k])})")
    elif chosen.total > (1 - HEADROOM) * gpu:
        out.append(
            f"{chosen.label}: estimated peak {chosen.total:.1f} GiB leaves less than {HEADROOM:.0%} of the "
            f"{gpu:.0f} GiB GPU free ({chosen.peak_phase} phase); the estimate is not a guarantee"
        )
    if plan.selected == "vllm_colocate":
        share = inputs.vllm_gpu_memory_utilization * gpu
        if not inputs.vllm_enable_sleep_mode and chosen.training_phase > (1 - HEADROOM) * gpu >= chosen.training_phase - share:
            out.append(
                f"the training micro-batch with vLLM's {share:.1f} GiB share held leaves less than {HEADROOM:.0%} free: "
                "lower vllm_gpu_memory_utilization or per_device_train_batch_size, or enable vllm_enable_sleep_mode"
            )
        if plan.vllm_kv_cache_gib <= 0:
            out.append(
                f"vLLM's share ({share:.1f} GiB = vllm_gpu_memory_utilization x {gpu:.0f} GiB) cannot hold the model's "
                "weights: raise vllm_gpu_memory_utilization or vllm_tensor_parallel_size"
            )
        else:
            w = 2 if inputs.bf16 else 4
            kv_token = 2 * s.layers * s.kv_heads * s.head_dim * w / inputs.vllm_tensor_parallel_size
            need = _gib(plan.rollout["completions_per_device_per_generation"] * inputs.vllm_tensor_parallel_size
                        * plan.sequence_length * kv_token)
            if need > (1 - HEADROOM) * plan.vllm_kv_cache_gib:
                out.append(
                    f"vLLM's KV cache room ({plan.vllm_kv_cache_gib:.1f} GiB after weights) is under the "
                    f"{need:.1f} GiB the generation batch needs at full length: vLLM will run fewer sequences "
                    "at a time (slower, not an error); raise vllm_gpu_memory_utilization if memory allows"
                )
    return out


# --------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------


def _billions(n: int) -> str:
    return f"{n / 1e9:.2f} B" if n >= 1e8 else f"{n / 1e6:.2f} M"


def format_plan(plan: Plan) -> str:
    """The block ``spatialrl plan`` prints."""
    i, p, r = plan.inputs, plan.parameters, plan.rollout
    trainable = f"{_billions(p['trainable'])} ({'LoRA r=' + str(i.lora_rank) if i.lora_rank else 'full'}"
    trainable += ", vision frozen" if i.freeze_vision_tower else ""
    trainable += ", merger frozen" if i.freeze_merger else ""
    trainable += ")"
    if i.use_vllm:
        engine = f"True (vLLM {i.vllm_mode}, gpu_memory_utilization {i.vllm_gpu_memory_utilization}, tp {i.vllm_tensor_parallel_size})"
    else:
        engine = "False (HF generate)"
    lines = [
        f"plan: {i.model}",
        f"  parameters              {_billions(p['total'])} total (text {_billions(p['text'] + p['lm_head'])}, "
        f"vision {_billions(p['vision'])}, merger {_billions(p['merger'])}); trainable {trainable}",
        f"  image tokens per sample {plan.image_tokens_per_sample} ({plan.image_patches_per_sample} patches)",
        f"  prompt length           {plan.prompt_length} tokens ({i.prompt_text_tokens} text + {plan.image_tokens_per_sample} image)",
        f"  sequence length         {plan.sequence_length} tokens (prompt + max_completion_length {i.max_completion_length})",
        f"  rollout batch           {r['completions_per_generation']} completions per generation "
        f"({r['prompts_per_generation']} prompts x {i.num_generations}), {r['completions_per_device_per_generation']} "
        f"per GPU in {r['micro_steps_per_generation']} micro-steps of {i.per_device_train_batch_size}",
        f"  distributed             {i.distributed} over {i.num_processes} GPUs ({i.num_nodes} node"
        f"{'s' if i.num_nodes > 1 else ''}); gradient checkpointing {'on' if i.gradient_checkpointing else 'off'}; "
        f"{'bf16' if i.bf16 else 'fp32'}; reference model {'yes' if plan.memory_without_vllm.reference_model else 'no'}",
        f"  use_vllm                {engine}",
        "",
    ]
    keys = list(plan.memory)
    header = "  per-GPU memory (GiB)    " + "".join(f"{plan.memory[k].label + (' *' if k == plan.selected else ''):>28}" for k in keys)
    lines.append(header)
    rows = [("weights", "weights"), ("gradients", "gradients"), ("optimizer states", "optimizer_states"),
            ("reference model", "reference_model"), ("activations", "activations"), ("logits (LM head)", "logits"),
            ("generation", "generation"), ("overhead", "overhead"), ("training phase", "training_phase"),
            ("generation phase", "generation_phase"), ("peak per GPU", "total")]  # fmt: skip
    for name, attr in rows:
        lines.append(f"    {name:<22}" + "".join(f"{getattr(plan.memory[k], attr):>28.1f}" for k in keys))
    lines.append(f"    {'fits ' + format(i.gpu_memory_gib, '.0f') + ' GiB':<22}"
                 + "".join(f"{'yes' if plan.fits[k] else 'NO':>28}" for k in keys))
    lines.append("  (* the variant this recipe runs; peak = the larger of the training and generation phases)")
    for warning in plan.warnings:
        lines.append(f"  warning: {warning}")
    return "\n".join(lines)

