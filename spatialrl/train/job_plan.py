"""A job's plan: the estimator's inputs read from a :class:`~spatialrl.train.config.Job` (its
model's ``config.json``, its data and its pixel budget), and the plan block that ``spatialrl
plan`` and ``--dry-run`` print (:mod:`spatialrl.train.plan` computes the estimate).

Image tokens come from the images of the first rows of the data under the job's budget when the
data is built, else from the budget itself (every sample's image filling it); prompt text
tokens from the model's tokenizer when it is a local directory, else about 3.6 characters a
token. Inside a launch the real world size and ZeRO/FSDP stage come from accelerate's
environment; otherwise from the recipe's ``num_processes``, ``num_nodes``, ``distributed``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: Rows read to measure a dataset's image tokens and prompt lengths.
SAMPLE_ROWS = 64
#: Characters per text token when the model's tokenizer is not on this machine (Qwen's BPE on
#: English questions; measured 3.4-3.9 on the world's prompts with a trained BPE).
CHARS_PER_TOKEN = 3.6
#: Chat-template tokens around a Qwen2.5-VL prompt (system turn, role markers, vision markers).
TEMPLATE_TOKENS = 30
#: A question of typical length, for a plan made before the data is built.
TYPICAL_QUESTION = ("Measuring from the closest point of each object, what is the distance between the sofa and the "
                    "table (in meters)?")

__all__ = ["measure_data", "plan_inputs", "plan_text"]


def measure_data(dataset: str, split: str, budget: Any, rows: int = SAMPLE_ROWS) -> dict[str, Any] | None:
    """Image tokens per sample (mean and max) and prompt characters over the first ``rows`` rows
    of a built dataset under ``budget`` (a :class:`~spatialrl.models.pixels.PixelBudget`, or None
    for Qwen2.5-VL's default range); None when the data is not there."""
    import io

    import pyarrow.parquet as pq
    from PIL import Image

    from spatialrl.data.load import data_files
    from spatialrl.data.schema import row_images
    from spatialrl.models.pixels import PixelBudget

    try:
        files = data_files(dataset, split)
    except (FileNotFoundError, ValueError):
        return None
    if not files:
        return None
    budget = budget or PixelBudget()
    table = pq.ParquetFile(files[0]).read_row_group(0)
    records = table.slice(0, rows).to_pylist()
    tokens, questions = [], []
    for row in records:
        total = 0
        for image in row_images(row):
            raw = image.get("bytes") if isinstance(image, dict) else None
            if raw is None:
                continue
            width, height = Image.open(io.BytesIO(raw)).size  # reads the header only
            total += budget.image_tokens(width, height)
        tokens.append(total)
        questions.append(str(row.get("question", "")))
    if not tokens:
        return None
    return {"rows": len(tokens), "image_tokens_mean": sum(tokens) / len(tokens), "image_tokens_max": max(tokens),
            "longest_question": max(questions, key=len)}


def _text_tokens(model: str, question: str) -> tuple[int, str]:
    """Tokens of ``question`` as prompted (spatialrl.prompts), by the model's tokenizer when it is
    a local directory, else estimated from its length."""
    from spatialrl.prompts import prompt_text

    text = prompt_text(question)
    path = Path(model).expanduser()
    if (path / "tokenizer.json").is_file():
        from tokenizers import Tokenizer

        return len(Tokenizer.from_file(str(path / "tokenizer.json")).encode(text).ids), "the model's tokenizer"
    return int(round(len(text) / CHARS_PER_TOKEN)), f"~{CHARS_PER_TOKEN} characters a token"


def _launch_world(job: Any) -> tuple[int, int, str]:
    """Processes, nodes and stage: the running launch's where there is one, else the recipe's."""
    spatial = job.spatial
    world = int(os.environ.get("WORLD_SIZE", "0") or 0)
    if world > 1:
        nodes = max(1, world // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", world) or world)))
        stage = spatial.distributed
        if os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true"):
            stage = "fsdp2"
        elif os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() in ("1", "true"):
            stage = {"2": "zero2", "3": "zero3"}.get(os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", ""), stage)
        return world, nodes, stage
    return spatial.num_processes, spatial.num_nodes, spatial.distributed


def plan_inputs(job: Any) -> tuple[Any, list[str]]:
    """The estimator's inputs for ``job``, and notes on where each came from."""
    from spatialrl.models.pixels import PixelBudget
    from spatialrl.models.published import model_config_dict, processor_pixels
    from spatialrl.train.loading import pixel_budget
    from spatialrl.train.plan import PlanInputs

    spatial, args = job.spatial, job.trl
    notes: list[str] = []
    config = model_config_dict(spatial.model)
    if config is None:
        raise ValueError(f"no config.json for model {spatial.model!r}: not a local directory, not a published "
                         "Qwen2.5-VL id spatialrl knows (spatialrl.models.published), not in the hub cache")
    try:
        budget = pixel_budget(spatial)
    except ValueError as exc:
        notes.append(f"warning: {exc}")
        budget = None
    if budget is None:
        saved = processor_pixels(spatial.model)
        budget = PixelBudget(**saved) if saved else PixelBudget()
        notes.append(f"pixel budget: the model processor's ({budget})")
    else:
        notes.append(f"pixel budget: {budget}")
    measured = measure_data(spatial.dataset, spatial.train_split, budget)
    if measured is not None:
        image_tokens = int(measured["image_tokens_max"])
        question = measured["longest_question"]
        notes.append(f"image tokens per sample: max {image_tokens}, mean {measured['image_tokens_mean']:.0f} over the "
                     f"first {measured['rows']} rows of {spatial.dataset}:{spatial.train_split}")
    else:
        image_tokens = budget.max_image_tokens
        question = TYPICAL_QUESTION
        notes.append(f"image tokens per sample: {image_tokens}, the budget's most for one image ({spatial.dataset} is "
                     "not built here)")
    text_tokens, how = _text_tokens(spatial.model, question)
    notes.append(f"prompt text: {text_tokens} tokens + {TEMPLATE_TOKENS} of chat template ({how})")
    processes, nodes, stage = _launch_world(job)
    if job.kind == "grpo":
        generation = dict(num_generations=args.num_generations, steps_per_generation=args.steps_per_generation,
                          max_completion_length=args.max_completion_length, reference_model=args.beta > 0,
                          use_vllm=bool(args.use_vllm), vllm_mode=args.vllm_mode,
                          vllm_gpu_memory_utilization=float(args.vllm_gpu_memory_utilization),
                          vllm_tensor_parallel_size=int(args.vllm_tensor_parallel_size))
    else:  # SFT: one "completion" per sample, no rollouts, no reference model
        max_length = args.max_length or 1024
        generation = dict(num_generations=1, steps_per_generation=args.gradient_accumulation_steps,
                          max_completion_length=max(1, max_length - text_tokens - TEMPLATE_TOKENS - image_tokens),
                          reference_model=False, use_vllm=False)
    inputs = PlanInputs(
        model=spatial.model, model_config=config, image_tokens_per_sample=image_tokens,
        prompt_text_tokens=text_tokens + TEMPLATE_TOKENS,
        per_device_train_batch_size=args.per_device_train_batch_size, num_processes=processes, num_nodes=nodes,
        distributed=stage, gradient_checkpointing=bool(args.gradient_checkpointing), bf16=job.requested_bf16,
        lora_rank=spatial.lora_r if spatial.lora else None, freeze_vision_tower=spatial.freeze_vision_tower,
        freeze_merger=spatial.freeze_merger, gpu_memory_gib=spatial.gpu_memory_gib, **generation,
    )
    return inputs, notes


def plan_text(job: Any) -> str:
    """The plan block printed by ``spatialrl plan`` and ``--dry-run``."""
    from spatialrl.train.plan import estimate, format_plan

    try:
        inputs, notes = plan_inputs(job)
    except ValueError as exc:
        return f"# plan: not available: {exc}\n"
    lines = ["", f"# plan for {job.source or 'this job'}"]
    lines += [f"# {note}" for note in notes]
    return "\n".join(lines) + "\n" + format_plan(estimate(inputs))
