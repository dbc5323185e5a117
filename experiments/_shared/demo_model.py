"""Shared by the experiment scripts that decode a demo run's model on its held-out items.

``open_demo_model`` checks a ``spatialrl demo`` run directory and loads the demo's held-out subset
(the same items as the run's ``eval/`` stages) and one of its models; ``sampling_config`` is GRPO's
sampling (TRL's top_k 0, top_p 1) at a given temperature. Scripts put ``experiments/_shared/``
on ``sys.path`` and import it as ``demo_model``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class DemoModel:
    """A demo run's benchmark, held-out items and one model, ready to decode."""

    benchmark: Any
    items: list[Any]
    model: Any
    processor: Any
    model_dir: Path
    max_new_tokens: int


def open_demo_model(script: str, run: Path, model: str, n_items: int, threads: int) -> DemoModel:
    """Load ``RUN/MODEL`` and the first ``n_items`` of RUN's held-out subset; exit naming the fix when RUN is not a finished demo run."""
    metrics_path = run / "metrics.json"
    if not metrics_path.exists():
        sys.exit(f"{script}: no {metrics_path}; run `spatialrl demo --out {run}` to the end first")
    model_dir = run / model
    if not (model_dir / "config.json").exists():
        sys.exit(f"{script}: no model at {model_dir} (--model is relative to RUN, e.g. sft, control, grpo/final)")

    import torch

    from spatialrl.demo import eval_subset
    from spatialrl.eval.benchmarks import get_benchmark
    from spatialrl.models import load_model_and_processor

    torch.set_num_threads(threads)
    config = json.loads(metrics_path.read_text()).get("config", {})
    benchmark = get_benchmark("world")
    items = eval_subset(benchmark.load(str(run / "data"), split="test"), n_items,
                        int(config.get("data_seed", 0)), benchmark.type_of)
    loaded, processor = load_model_and_processor(str(model_dir), dtype=torch.float32, device="cpu")
    return DemoModel(benchmark, items, loaded, processor, model_dir, int(config.get("eval_max_new_tokens", 40)))


def sampling_config(demo: DemoModel, temperature: float) -> Any:
    """GRPO's sampling at ``temperature``: no top-k, no top-p, the demo's answer length."""
    from transformers import GenerationConfig

    tokenizer = getattr(demo.processor, "tokenizer", demo.processor)
    return GenerationConfig(
        do_sample=True, temperature=temperature, top_k=0, top_p=1.0, num_beams=1,
        max_new_tokens=demo.max_new_tokens, pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
        eos_token_id=demo.model.generation_config.eos_token_id or tokenizer.eos_token_id)
