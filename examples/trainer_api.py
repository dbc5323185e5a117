"""Train the shipped tiny Qwen2.5-VL for a few GRPO steps through the Python API (no CLI).

What ``spatialrl train`` does, spelled out: build a small synthetic dataset in TRL's format,
find its mirror pairs, take the reward functions from ``spatialrl.rewards.trl`` and run
``SpatialGRPOTrainer`` with a ``trl.GRPOConfig`` on CPU:

- SNRA accuracy under the paper's sigmoid sharpness schedule (Smooth Operator eq. 2, 5) plus the
  format reward, weighted 0.9 / 0.1 (eq. 4);
- AP-GRPO advantages (Smooth Operator eq. 8) with the Spatial-GRPO view-consistency penalty on
  the accuracy component (SVQA-R1 eq. 2-4), so original and mirror are sampled together;
- optionally DAPO's dynamic sampling (``--dynamic-sampling``; not in the papers).

    python examples/trainer_api.py --steps 3 --output-dir /tmp/trainer-api

About 10-20 s on two CPU cores (model load, data, 3 steps of 4 prompts x 4 completions).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

TINY = Path(__file__).resolve().parents[1] / "spatialrl" / "assets" / "tiny-spatial-vlm"


def build_dataset(scenes: int, separator: str | None):
    """Synthetic questions (each with its mirrored twin) in TRL's conversational vision format."""
    from datasets import Dataset

    from spatialrl.data.build import BuildConfig, scene_rows
    from spatialrl.data.export import with_trl_prompts
    from spatialrl.data.schema import features

    config = BuildConfig(scenes=scenes, seed=0)
    rows = [row for index in range(scenes) for row in scene_rows(index, config)]
    dataset = with_trl_prompts(Dataset.from_list(rows, features=features()), separator)
    return dataset.remove_columns(["scene_json", "meta"])  # large strings no reward reads


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--scenes", type=int, default=2, help="synthetic scenes (about 17 questions x 2 views each)")
    parser.add_argument("--output-dir", default=None, help="default: a temporary directory")
    parser.add_argument("--dynamic-sampling", action="store_true", help="DAPO's dynamic sampling (a baseline)")
    args = parser.parse_args(argv)

    import torch
    from trl import GRPOConfig

    from spatialrl.models import load_model_and_processor, prompt_separator
    from spatialrl.rewards import SharpnessSchedule
    from spatialrl.rewards.trl import accuracy_reward, format_reward_func
    from spatialrl.train.advantage_step import AdvantageSettings
    from spatialrl.train.sampler import find_pairs
    from spatialrl.train.trainer import SpatialGRPOTrainer, vision_token_suppression

    torch.set_num_threads(1)  # steadier than two on a shared two-core machine
    torch.manual_seed(0)
    output_dir = args.output_dir or tempfile.mkdtemp(prefix="trainer-api-")
    model, processor = load_model_and_processor(str(TINY))
    dataset = build_dataset(args.scenes, prompt_separator(model))
    pairs, lonely = find_pairs(dataset["pair_id"], dataset["view"])  # (original, mirror) row indices
    if lonely:
        dataset = dataset.select(sorted(i for pair in pairs for i in pair))
        pairs, _ = find_pairs(dataset["pair_id"], dataset["view"])

    schedule = SharpnessSchedule("sigmoid", k_min=1.0, k_max=100.0)  # Smooth Operator eq. 5
    reward_funcs = [accuracy_reward(schedule), format_reward_func()]  # named "accuracy" and "format"
    config = GRPOConfig(
        output_dir=output_dir, max_steps=args.steps, per_device_train_batch_size=16, num_generations=4,
        max_completion_length=16, learning_rate=1e-5, beta=0.02, reward_weights=[0.9, 0.1],
        use_cpu=True, bf16=False, report_to="none", logging_steps=1, save_strategy="no", seed=0,
        # HF generate here; with use_vllm=True pass use_vllm=True to get vLLM's logit_bias instead
        generation_kwargs=vision_token_suppression(model.config, processor, use_vllm=False),
    )
    trainer = SpatialGRPOTrainer(
        model=model, reward_funcs=reward_funcs, args=config, train_dataset=dataset, processing_class=processor,
        advantage_settings=AdvantageSettings(estimator="ap_grpo", consistency_reward="accuracy"),
        pairs=pairs, dynamic_sampling=args.dynamic_sampling,
    )
    result = trainer.train()
    logged = [h for h in trainer.state.log_history if "reward" in h]
    summary = {
        "output_dir": output_dir, "steps": trainer.state.global_step, "pairs": len(pairs), "rows": len(dataset),
        "train_loss": float(result.training_loss),
        "reward": [round(h["reward"], 4) for h in logged],
        "adv/zero_std_group_frac": [h.get("adv/zero_std_group_frac") for h in logged],
        "sharpness/k": [h.get("sharpness/k") for h in logged],
    }
    if args.dynamic_sampling:
        summary["dynamic_sampling/dropped_groups"] = [h.get("dynamic_sampling/dropped_groups") for h in logged]
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
