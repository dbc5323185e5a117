"""Per-step overhead of SpatialGRPOTrainer against TRL's stock GRPOTrainer.

Same tiny Qwen2.5-VL, same world dataset, same G, same reward functions (SNRA accuracy with the
sigmoid schedule + format); SpatialGRPOTrainer runs AP-GRPO with mirror pairs and the
view-consistency penalty on the accuracy component. The two alternate, round after round, in
one process, and the script prints the ratio of their median step times measured in this run.
Target (issue #5): at most 1.10.

Usage: python benchmarks/trainer_overhead.py [--rounds R] [--steps S] [--generations G]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds (default 4)")
    parser.add_argument("--steps", type=int, default=6, help="optimizer steps per trainer per round (default 6)")
    parser.add_argument("--generations", type=int, default=4, help="G, completions per prompt (default 4)")
    parser.add_argument("--batch", type=int, default=16, help="completions per step (default 16)")
    parser.add_argument("--new-tokens", type=int, default=16, help="max completion length (default 16)")
    args = parser.parse_args()

    import torch
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    torch.set_num_threads(1)
    from spatialrl.data.build import BuildConfig, build_dataset
    from spatialrl.models import load_model_and_processor
    from spatialrl.models.tiny import build_tiny_model
    from spatialrl.train.advantage_step import AdvantageSettings
    from spatialrl.train.config import make_job, replace_job
    from spatialrl.train.grpo import (
        SpatialGRPOTrainer,
        build_reward_functions,
        left_pad,
        prepare_dataset,
        vision_token_suppression,
    )

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self._start = 0.0

        def on_step_begin(self, *_, **__):
            self._start = time.perf_counter()

        def on_step_end(self, *_, **__):
            self.times.append(time.perf_counter() - self._start)

    with tempfile.TemporaryDirectory() as tmp:
        build_tiny_model(f"{tmp}/model", size="tiny", seed=0, corpus_scenes=20)
        build_dataset(f"{tmp}/data", BuildConfig(scenes=12, seed=0), progress=False)
        job = make_job("grpo", model=f"{tmp}/model", dataset=f"{tmp}/data", output_dir=f"{tmp}/out",
                       rewards={"accuracy": 0.9, "format": 0.1}, num_generations=args.generations,
                       per_device_train_batch_size=args.batch)
        funcs, weights = build_reward_functions(job.spatial)
        paired, pairs = prepare_dataset(replace_job(job, mirror_pairs=True).spatial, log=lambda *_: None)
        plain, _ = prepare_dataset(replace_job(job, mirror_twins="keep").spatial, log=lambda *_: None)  # same rows

        def run(kind: str, round_: int) -> list[float]:
            model, processor = load_model_and_processor(f"{tmp}/model")
            grpo_args = GRPOConfig(output_dir=f"{tmp}/{kind}-{round_}", per_device_train_batch_size=args.batch,
                                   num_generations=args.generations, max_steps=args.steps,
                                   max_completion_length=args.new_tokens, learning_rate=1e-5, beta=0.02,
                                   loss_type="grpo", use_cpu=True, bf16=False, report_to="none", save_strategy="no",
                                   logging_steps=1000, reward_weights=weights, seed=round_,
                                   disable_tqdm=True, generation_kwargs=vision_token_suppression(model.config))
            timer = StepTimer()
            left_pad(processor)  # as TRL does for a processor it loads itself
            if kind == "stock":
                trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=grpo_args, train_dataset=plain,
                                      processing_class=processor, callbacks=[timer])
            else:
                trainer = SpatialGRPOTrainer(model=model, reward_funcs=funcs, args=grpo_args, train_dataset=paired,
                                             processing_class=processor, callbacks=[timer], pairs=pairs,
                                             advantage_settings=AdvantageSettings(estimator="ap_grpo",
                                                                                  consistency_reward="accuracy"))
            trainer.train()
            return timer.times[1:]  # the first step pays one-time set-up costs

        times: dict[str, list[float]] = {"stock": [], "spatial": []}
        for round_ in range(args.rounds):
            for kind in (("stock", "spatial") if round_ % 2 == 0 else ("spatial", "stock")):
                times[kind] += run(kind, round_)
        stock, spatial = statistics.median(times["stock"]), statistics.median(times["spatial"])
        ratio = spatial / stock
        print(f"stock GRPOTrainer:   median {stock * 1000:.1f} ms/step over {len(times['stock'])} steps")
        print(f"SpatialGRPOTrainer:  median {spatial * 1000:.1f} ms/step over {len(times['spatial'])} steps "
              "(ap_grpo, mirror pairs, consistency penalty)")
        print(f"overhead ratio: {ratio:.3f} (target <= 1.10: {'met' if ratio <= 1.10 else 'NOT met'})")


if __name__ == "__main__":
    main()
