"""One SFT step and one Spatial-GRPO step of the published Qwen2.5-VL-3B architecture, cut in depth.

The model is :func:`spatialrl.models.real_architecture.build_real_architecture` with 2 text and 2
vision layers (published widths, vocabulary, vision tower and processor; random weights), with
float32 master weights and bf16 autocast (``bf16=True``; on this CPU bf16 matmuls are about twice
as fast as float32), gradient checkpointing off on a CPU (on a GPU, TRL's default, on). The data is
one mirror pair: a 448 x 448 picture (256 image tokens under the published processor settings)
and its horizontally flipped twin, with ``pair_id`` / ``view`` columns. The steps:

- SFT: ``trl.SFTTrainer`` on a prompt-completion row (loss on the completion only; the original
  row: TRL computes the 151,936-way LM head at every position of an SFT sequence, the costliest
  part of the step), AdamW.
- GRPO: ``SpatialGRPOTrainer`` with the mirror pair (``PairRepeatSampler`` keeps it in one
  generation batch), SVQA-R1's rewards (format + Sentence-BERT semantic, 0.5 / 0.5) and its
  view-consistency penalty on the semantic reward, G completions per prompt, HF generation,
  beta 0 (no reference model), AdamW. Sentence-BERT is loaded before the step.

Prints, per step: wall time (the Trainer's step, generation included for GRPO), the peak resident
memory of the process during the step (sampled every 20 ms), and the model's parameter count and
image tokens per sample. tests/models/test_real_architecture.py runs the same two steps through
:func:`sft_step` and :func:`grpo_step` and checks what they change.

Usage: python benchmarks/real_architecture.py [--text-layers 2] [--vision-layers 2] [--size 448]
       [--generations 2] [--new-tokens 8] [--threads N]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import resource
import tempfile
import threading
import time
from typing import Any

#: Parameters whose change after a step shows that the step reached the vision tower, the merger
#: and both ends of the decoder.
WATCHED = (
    "model.visual.blocks.0.attn.qkv.weight",
    "model.visual.merger.mlp.0.weight",
    "model.language_model.layers.0.mlp.down_proj.weight",
    "model.language_model.layers.1.self_attn.q_proj.weight",
)

QUESTION = "How many red objects are in the image?"
ANSWER = "2"


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def picture(size: int = 448, seed: int = 0) -> Any:
    """A ``size x size`` RGB picture with two red and one blue shapes, asymmetric left/right."""
    import random

    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    image = Image.new("RGB", (size, size), (128, 128, 128))
    draw = ImageDraw.Draw(image)
    s = size // 8
    for colour, (x, y) in (((220, 30, 30), (1, 2)), ((220, 30, 30), (2, 5)), ((30, 30, 220), (6, 3))):
        jitter = rng.randint(0, s // 2)
        draw.rectangle([x * s + jitter, y * s, x * s + jitter + s, y * s + s], fill=colour)
    return image


def paired_rows(pairs: int = 1, size: int = 448, seed: int = 0) -> list[dict[str, Any]]:
    """``pairs`` mirror pairs of GRPO rows in TRL's conversational vision format: an original and
    its horizontally flipped twin (same ``pair_id``, ``view`` original / mirror; a count does not
    change under a flip, so both answer ``ANSWER``), with the columns the rewards read."""
    from PIL import ImageOps

    from spatialrl.data.export import trl_prompt

    rows = []
    for index in range(pairs):
        image = picture(size, seed + index)
        for view, shown in (("original", image), ("mirror", ImageOps.mirror(image))):
            rows.append({"prompt": trl_prompt(QUESTION, 1), "images": [shown], "question": QUESTION,
                         "answer": ANSWER, "answer_type": "numerical", "answer_value": float(ANSWER),
                         "dimension": "count", "question_type": "object_count", "pair_id": f"p{index}",
                         "view": view})
    return rows


def sft_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same rows as TRL prompt-completion examples (the target in the answer format)."""
    target = f"<think>Count the red objects.</think><answer>{ANSWER}</answer>"
    return [{"prompt": r["prompt"], "images": r["images"],
             "completion": [{"role": "assistant", "content": [{"type": "text", "text": target}]}]} for r in rows]


def image_tokens(processor: Any, image: Any) -> int:
    """Image tokens of ``image`` in the processor's output (``<|image_pad|>`` count, checked
    against ``image_grid_thw``)."""
    message = {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "?"}]}
    text = processor.apply_chat_template([message], add_generation_prompt=True)
    out = processor(images=[image], text=[text], return_tensors="pt")
    pads = int((out["input_ids"] == processor.image_token_id).sum())
    merge = processor.image_processor.merge_size
    grid = int(out["image_grid_thw"].prod()) // merge**2
    if pads != grid:
        raise AssertionError(f"{pads} image tokens in the text but image_grid_thw gives {grid}")
    return pads


# --------------------------------------------------------------------------------------
# Measuring a step
# --------------------------------------------------------------------------------------


def _rss() -> int:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:  # pragma: no cover - psutil is in .venv; fall back to /proc
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize()


def step_timer() -> Any:
    """A ``TrainerCallback`` recording each optimizer step's wall time (``times``), the process's
    peak RSS during it (``peak_rss``, sampled every 20 ms) and, on CUDA, the step's
    ``torch.cuda.max_memory_allocated`` (``peak_cuda``)."""
    import torch
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self.peak_rss: list[int] = []
            self.peak_cuda: list[int] = []
            self._start = 0.0
            self._peak = 0
            self._stop: threading.Event | None = None
            self._thread: threading.Thread | None = None

        def _sample(self, stop: threading.Event) -> None:
            while not stop.is_set():
                self._peak = max(self._peak, _rss())
                stop.wait(0.02)

        def on_step_begin(self, *_: Any, **__: Any) -> None:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            self._peak = _rss()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, args=(self._stop,), daemon=True)
            self._thread.start()
            self._start = time.perf_counter()

        def on_step_end(self, *_: Any, **__: Any) -> None:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
                self.peak_cuda.append(int(torch.cuda.max_memory_allocated()))
            self.times.append(time.perf_counter() - self._start)
            self._stop.set()
            self._thread.join()
            self.peak_rss.append(max(self._peak, _rss()))

    return StepTimer()


def snapshot(model: Any, names: tuple[str, ...] = WATCHED) -> dict[str, Any]:
    """Copies of the named parameters that the model has (a few, not the whole model: 0.4-3.8 G values)."""
    params = dict(model.named_parameters())
    return {n: params[n].detach().float().cpu().clone() for n in names if n in params}


def changed(model: Any, before: dict[str, Any]) -> dict[str, float]:
    """Largest absolute change of each snapshotted parameter."""
    params = dict(model.named_parameters())
    return {n: float((params[n].detach().float().cpu() - v).abs().max()) for n, v in before.items()}


def _summary(timer: Any, trainer: Any, before: dict[str, Any]) -> dict[str, Any]:
    logs = [h for h in trainer.state.log_history if "loss" in h]
    return {"seconds": timer.times, "peak_rss": timer.peak_rss, "peak_cuda": timer.peak_cuda,
            "changed": changed(trainer.model, before), "logs": logs}


# --------------------------------------------------------------------------------------
# The two steps
# --------------------------------------------------------------------------------------


def sft_step(model: Any, processor: Any, rows: list[dict[str, Any]], out_dir: str, steps: int = 1,
             **config: Any) -> dict[str, Any]:
    """``steps`` optimizer steps of ``trl.SFTTrainer`` (completion-only loss, all rows in one
    batch) on ``sft_rows(rows)``; ``config`` overrides ``trl.SFTConfig`` fields. Returns the
    step times, peaks, parameter changes and logged losses."""
    import datasets
    from trl import SFTConfig, SFTTrainer

    cpu = not _cuda()
    args = SFTConfig(**{"output_dir": out_dir, "per_device_train_batch_size": len(rows), "max_steps": steps,
                        "learning_rate": 1e-5, "completion_only_loss": True, "max_length": None, "logging_steps": 1,
                        "save_strategy": "no", "report_to": "none", "use_cpu": cpu, "bf16": True, "seed": 0,
                        "gradient_checkpointing": not cpu, "disable_tqdm": True, **config})
    timer = step_timer()
    trainer = SFTTrainer(model=model, args=args, train_dataset=datasets.Dataset.from_list(sft_rows(rows)),
                         processing_class=processor, callbacks=[timer])
    before = snapshot(model)
    trainer.train()
    return _summary(timer, trainer, before)


def grpo_step(model: Any, processor: Any, rows: list[dict[str, Any]], out_dir: str, spatial: bool = True,
              num_generations: int = 2, steps: int = 1, **config: Any) -> dict[str, Any]:
    """``steps`` optimizer steps of ``SpatialGRPOTrainer`` with the mirror pairs of ``rows``
    (``spatial=False``: stock ``trl.GRPOTrainer``, no pairs), SVQA-R1's rewards (format + semantic,
    0.5 / 0.5) and penalty, ``num_generations`` completions a prompt, every prompt in one
    generation batch; ``config`` overrides ``trl.GRPOConfig`` fields. Returns the step times,
    peaks, parameter changes, logs and, for the spatial trainer, the advantages of the last
    generation batch and its ``adv/*`` / ``consistency/*`` metrics."""
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    from spatialrl.rewards.trl import format_reward_func, semantic_reward_func
    from spatialrl.train.advantage_step import AdvantageSettings
    from spatialrl.train.sampler import find_pairs
    from spatialrl.train.trainer import SpatialGRPOTrainer, left_pad, vision_token_suppression

    cpu = not _cuda()
    dataset = datasets.Dataset.from_list(rows)
    args = GRPOConfig(**{"output_dir": out_dir, "per_device_train_batch_size": len(rows) * num_generations,
                         "num_generations": num_generations, "max_steps": steps, "max_completion_length": 8,
                         "learning_rate": 1e-5, "beta": 0.0, "reward_weights": [0.5, 0.5], "logging_steps": 1,
                         "save_strategy": "no", "report_to": "none", "use_cpu": cpu, "bf16": True, "seed": 0,
                         "gradient_checkpointing": not cpu, "disable_tqdm": True,
                         "generation_kwargs": vision_token_suppression(model.config),
                         **config})
    rewards = [format_reward_func(), semantic_reward_func(device="cpu" if cpu else "cuda", require_answer_tag=False)]
    rewards[1](completions=["warm up"], answer=["2"])  # load Sentence-BERT now, outside the timed step
    timer = step_timer()
    common = {"model": model, "reward_funcs": rewards, "args": args, "train_dataset": dataset,
              "processing_class": processor, "callbacks": [timer]}
    if spatial:
        pairs, lonely = find_pairs(dataset["pair_id"], dataset["view"])
        if lonely:
            raise ValueError(f"rows without their mirror twin: {lonely}")
        trainer = SpatialGRPOTrainer(**common, pairs=pairs, advantage_settings=AdvantageSettings(
            estimator="grpo", clip=None, consistency_reward="semantic", abs_rewards=["semantic"]))
    else:
        left_pad(processor)  # as SpatialGRPOTrainer and TRL (for a processor it loads) do
        trainer = GRPOTrainer(**common)
    before = snapshot(model)
    trainer.train()
    result = _summary(timer, trainer, before)
    step = getattr(trainer, "last_advantage_step", None)
    if step is not None:
        result["advantages"] = step.advantages.tolist()
        result["total_rewards"] = step.total_rewards.tolist()
        result["metrics"] = {k: float(v) for k, v in step.metrics.items()}
    return result


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def release() -> None:
    """Collect what the last trainer left (its reference cycles hold the model) and return freed
    memory; call after dropping the caller's own references."""
    gc.collect()
    if _cuda():
        import torch

        torch.cuda.empty_cache()


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text-layers", type=int, default=2, help="decoder layers kept (default 2 of 36)")
    parser.add_argument("--vision-layers", type=int, default=2, help="vision blocks kept (default 2 of 32)")
    parser.add_argument("--size", type=int, default=448, help="image side in pixels (default 448: 256 tokens)")
    parser.add_argument("--generations", type=int, default=2, help="G, completions per prompt (default 2)")
    parser.add_argument("--new-tokens", type=int, default=8, help="max completion length (default 8)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()

    import torch

    from spatialrl.models import load_model_and_processor
    from spatialrl.models.real_architecture import build_real_architecture

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = paired_rows(1, args.size)
    report: dict[str, Any] = {"machine": f"{torch.get_num_threads()} torch threads, CPU"}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        info = build_real_architecture(out_dir=f"{tmp}/model", text_layers=args.text_layers,
                                       vision_layers=args.vision_layers, dtype="float32")
        report["build_seconds"] = time.perf_counter() - started
        report["model"] = {k: info[k] for k in ("parameters", "vision_parameters", "embedding_parameters",
                                                "text_layers", "vision_layers", "fullatt_block_indexes", "vocab_size")}
        results = {}
        for name in ("sft", "grpo"):
            model, processor = load_model_and_processor(f"{tmp}/model", dtype=torch.float32)
            report["image_tokens_per_sample"] = image_tokens(processor, rows[0]["images"][0])
            if name == "sft":
                results[name] = sft_step(model, processor, rows[:1], f"{tmp}/sft")
            else:
                results[name] = grpo_step(model, processor, rows, f"{tmp}/grpo", num_generations=args.generations,
                                          max_completion_length=args.new_tokens)
            del model, processor
            release()
    report["steps"] = {k: {"seconds": v["seconds"], "peak_rss_gib": [round(p / 2**30, 2) for p in v["peak_rss"]],
                           "changed": v["changed"]} for k, v in results.items()}
    report["process_peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30, 2)
    m = report["model"]
    print(f"model: Qwen2.5-VL-3B architecture, {m['text_layers']} text + {m['vision_layers']} vision layers "
          f"(full attention at {m['fullatt_block_indexes']}), {m['parameters']:,} parameters "
          f"({m['embedding_parameters']:,} in the tied embedding / LM head, {m['vision_parameters']:,} in the vision "
          f"tower), float32; built in {report['build_seconds']:.1f} s")
    print(f"image tokens per sample: {report['image_tokens_per_sample']} ({args.size} x {args.size} px)")
    sft, grpo = results["sft"], results["grpo"]
    print(f"SFT step (1 row): {sft['seconds'][0]:.1f} s, peak RSS {_gib(sft['peak_rss'][0])}")
    print(f"Spatial-GRPO step (1 mirror pair x G={args.generations}, {args.new_tokens} new tokens, HF generation): "
          f"{grpo['seconds'][0]:.1f} s, peak RSS {_gib(grpo['peak_rss'][0])}")
    finite = all(math.isfinite(a) for a in grpo.get("advantages", []))
    print(f"advantages finite: {finite}; process peak RSS (getrusage): {report['process_peak_rss_gib']} GiB")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
