"""GPU check: bf16 GRPO step time and peak GPU memory of the full-depth Qwen2.5-VL-3B architecture.

Stock ``trl.GRPOTrainer`` against ``SpatialGRPOTrainer`` with mirror pairs, each with HF generation
(``use_vllm=False``) and with vLLM colocated (``use_vllm=True, vllm_mode="colocate"``), on a few
synthetic mirror pairs of 448 x 448 images (256 image tokens each). The model is
``spatialrl.models.real_architecture.build_real_architecture`` at full depth (36 text layers, 32
vision blocks), random weights, bf16. Run by ``benchmarks/gpu/check.sh`` (see
``benchmarks/gpu/README.md``); nothing here imports torch at module level, so importing it needs
no GPU.

Subcommands (each leg runs in its own process, so one leg's vLLM engine or crash cannot affect
another's memory figure):

    build  --out DIR [--text-layers N] [--vision-layers N] [--device cuda|cpu]
    leg    --model DIR --trainer stock|spatial --generation hf|vllm --out FILE.json [--steps 3] ...
    report --dir OUT   (prints one table, writes OUT/summary.json)

Measured per leg: the wall time of each optimizer step (``TrainerCallback`` step begin -> end:
generation, rewards, the loss's forward and backward, the optimizer), the step's
``torch.cuda.max_memory_allocated`` (reset at each step's start; memory held by vLLM's own
allocator counts only as far as it goes through PyTorch's caching allocator), and the time to
build the trainer. The first step warms up (CUDA kernels, the vLLM weight sync), so the table's
step time is the median of the later steps.

Choices, from TRL 1.16's GRPOTrainer and vllm_generation.py:

- bf16 weights (loaded ``dtype=torch.bfloat16``) and ``bf16=True``; AdamW on bf16 parameters (fp32
  master weights for 3.75 B parameters would not leave room for a colocated vLLM on one H100). The
  figures are for step time and memory, not for learning.
- ``gradient_checkpointing=True`` (TRL's default), ``beta=0`` (TRL's default: no reference model).
- vLLM colocate loads the checkpoint directory (``model.name_or_path``) itself and receives the
  policy's weights before each generation (``sync_weights``); ``vllm_gpu_memory_utilization=0.3``
  (TRL's default), ``vllm_max_model_length`` bounds the KV cache to the prompts' length.
- ``--cpu-smoke``: the same code on a CPU (no bf16 autocast demanded of the hardware beyond what
  torch offers, float32 master weights, HF generation only), to prove the script end to end.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LEGS = [("stock", "hf"), ("spatial", "hf"), ("stock", "vllm"), ("spatial", "vllm")]


def _steps() -> Any:
    """benchmarks/real_architecture.py (the rows, the step runners and the step timer)."""
    path = ROOT / "benchmarks" / "real_architecture.py"
    spec = importlib.util.spec_from_file_location("real_architecture_steps", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT))
    from spatialrl.models.real_architecture import build_real_architecture

    started = time.perf_counter()
    info = build_real_architecture(out_dir=args.out, text_layers=args.text_layers, vision_layers=args.vision_layers,
                                   dtype=args.dtype, device=args.device, seed=0)
    _save_video_processor(args.out)
    info["build_seconds"] = round(time.perf_counter() - started, 1)
    Path(args.out, "build.json").write_text(json.dumps(info, indent=1))
    print(json.dumps(info))
    return 0


def _save_video_processor(out: str) -> None:
    """vLLM builds the stock ``Qwen2_5_VLProcessor``, which wants a video processor; save one with the
    published patching where transformers can build it (it needs torchvision, present beside vLLM)."""
    try:
        from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

        Qwen2VLVideoProcessor().save_pretrained(out)
    except Exception as exc:  # noqa: BLE001 - no torchvision (the CPU here): HF legs do not need it
        print(f"note: no video processor saved ({type(exc).__name__}: {exc}); vLLM may refuse the processor")


def leg(args: argparse.Namespace) -> int:
    name = f"{args.trainer}-{args.generation}"
    result: dict[str, Any] = {"leg": name, "trainer": args.trainer, "generation": args.generation}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if args.generation == "vllm":
            reason = _vllm_missing(args)
            if reason:
                result.update(status="skipped", reason=reason)
                return _write(out, result, 0)
        result.update(_run_leg(args))
        result["status"] = "ok"
        return _write(out, result, 0)
    except Exception as exc:  # noqa: BLE001 - the leg reports its failure; the other legs still run
        result.update(status="failed", reason=f"{type(exc).__name__}: {exc}"[:800],
                      traceback=traceback.format_exc()[-4000:])
        return _write(out, result, 1)


def _vllm_missing(args: argparse.Namespace) -> str | None:
    if args.cpu_smoke:
        return "--cpu-smoke: vLLM legs need a GPU"
    if importlib.util.find_spec("vllm") is None:
        return "vllm is not installed (pip install vllm, the version TRL 1.16 supports)"
    return None


def _write(path: Path, result: dict[str, Any], code: int) -> int:
    path.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "traceback"}))
    return code


def _run_leg(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    import torch

    from spatialrl.models import load_model_and_processor

    steps = _steps()
    cuda = torch.cuda.is_available() and not args.cpu_smoke
    if not cuda and not args.cpu_smoke:
        raise RuntimeError("no CUDA device; pass --cpu-smoke to run the script's logic on a CPU")
    model, processor = load_model_and_processor(args.model, dtype=torch.bfloat16 if cuda else torch.float32,
                                                device="cuda" if cuda else None)
    rows = steps.paired_rows(pairs=args.pairs, size=args.size)
    config: dict[str, Any] = {"max_completion_length": args.new_tokens, "use_cpu": not cuda, "bf16": True,
                              "gradient_checkpointing": cuda, "use_vllm": args.generation == "vllm"}
    if args.generation == "vllm":
        from spatialrl.train.trainer import vision_token_suppression

        # SamplingParams has no suppress_tokens: forbid the vision special tokens by logit bias instead
        banned = vision_token_suppression(model.config).get("suppress_tokens", [])
        config.update(vllm_mode="colocate", vllm_gpu_memory_utilization=args.vllm_memory,
                      vllm_max_model_length=args.vllm_max_length,
                      generation_kwargs={"logit_bias": {int(i): -100.0 for i in banned}})
    started = time.perf_counter()
    run = steps.grpo_step(model, processor, rows, str(Path(args.out).with_suffix("")) + "-trainer",
                          spatial=args.trainer == "spatial", num_generations=args.generations, steps=args.steps,
                          **config)
    seconds = run["seconds"]
    later = seconds[1:] or seconds
    return {
        "device": torch.cuda.get_device_name() if cuda else "cpu (--cpu-smoke)",
        "rows": len(rows), "pairs": args.pairs, "num_generations": args.generations,
        "completions_per_step": len(rows) * args.generations, "max_completion_length": args.new_tokens,
        "image_size": args.size, "image_tokens_per_sample": steps.image_tokens(processor, rows[0]["images"][0]),
        "parameters": sum(p.numel() for p in model.parameters()),
        "step_seconds": seconds, "median_step_seconds": statistics.median(later),
        "peak_cuda_bytes": run["peak_cuda"],
        "peak_cuda_gib": round(max(run["peak_cuda"]) / 2**30, 2) if run["peak_cuda"] else None,
        "peak_rss_gib": round(max(run["peak_rss"]) / 2**30, 2),
        "wall_seconds_with_setup": round(time.perf_counter() - started, 1),
        # SpatialGRPOTrainer keeps the advantages its loss used; the stock trainer keeps none
        "advantages_finite": (all(math.isfinite(a) for a in run["advantages"]) if "advantages" in run else None),
        "last_log": run["logs"][-1] if run["logs"] else None,
    }


def report(args: argparse.Namespace) -> int:
    out = Path(args.dir)
    build_file = out / "model" / "build.json"
    build_info = json.loads(build_file.read_text()) if build_file.is_file() else {}
    legs = []
    for trainer, generation in LEGS:
        path = out / f"{trainer}-{generation}.json"
        if path.is_file():
            legs.append(json.loads(path.read_text()))
        else:
            legs.append({"leg": f"{trainer}-{generation}", "status": "failed",
                         "reason": "no result written (killed by the leg timeout, or crashed before writing)"})
    print(f"model: {build_info.get('model_id', '?')} architecture, {build_info.get('text_layers', '?')} text + "
          f"{build_info.get('vision_layers', '?')} vision layers, {build_info.get('parameters', 0):,} parameters, "
          f"{build_info.get('dtype', '?')}, random weights (built in {build_info.get('build_seconds', '?')} s)")
    header = ("leg", "status", "median step (s)", "steps (s)", "peak GPU mem (GiB)", "completions/step", "note")
    lines = [header]
    for item in legs:
        if item["status"] == "ok":
            lines.append((item["leg"], "ok", f"{item['median_step_seconds']:.2f}",
                          " ".join(f"{s:.2f}" for s in item["step_seconds"]),
                          str(item["peak_cuda_gib"]) if item["peak_cuda_gib"] is not None else "n/a (CPU)",
                          str(item["completions_per_step"]), item["device"]))
        else:
            lines.append((item["leg"], item["status"], "", "", "", "", item.get("reason", "")[:120]))
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(header))]
    for index, row in enumerate(lines):
        print(" | ".join(str(cell).ljust(width) for cell, width in zip(row, widths)))
        if index == 0:
            print("-+-".join("-" * width for width in widths))
    summary = {"model": build_info, "legs": legs}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"written: {out / 'summary.json'}")
    return 0 if all(item["status"] in ("ok", "skipped") for item in legs) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write the architecture with random weights")
    b.add_argument("--out", required=True)
    b.add_argument("--text-layers", type=int, default=None, help="default: the published 36")
    b.add_argument("--vision-layers", type=int, default=None, help="default: the published 32")
    b.add_argument("--dtype", default="bfloat16")
    b.add_argument("--device", default=None, help="where the weights are drawn (cuda: seconds for 3.75 B)")
    one = sub.add_parser("leg", help="time one trainer / generation pair")
    one.add_argument("--model", required=True)
    one.add_argument("--trainer", choices=("stock", "spatial"), required=True)
    one.add_argument("--generation", choices=("hf", "vllm"), required=True)
    one.add_argument("--out", required=True, help="the leg's JSON file")
    one.add_argument("--steps", type=int, default=3, help="optimizer steps (the first warms up; default 3)")
    one.add_argument("--pairs", type=int, default=2, help="mirror pairs, i.e. 2 x pairs prompts a step (default 2)")
    one.add_argument("--generations", type=int, default=4, help="G (default 4)")
    one.add_argument("--new-tokens", type=int, default=64, help="max completion length (default 64)")
    one.add_argument("--size", type=int, default=448, help="image side in px (default 448: 256 image tokens)")
    one.add_argument("--vllm-memory", type=float, default=0.3, help="vllm_gpu_memory_utilization (TRL's default 0.3)")
    one.add_argument("--vllm-max-length", type=int, default=2048, help="vllm_max_model_length (default 2048)")
    one.add_argument("--cpu-smoke", action="store_true", help="run on the CPU (HF legs only) to check the logic")
    r = sub.add_parser("report", help="print the table of the legs in --dir and write summary.json")
    r.add_argument("--dir", required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return {"build": build, "leg": leg, "report": report}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
