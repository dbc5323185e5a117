"""Batched greedy generation speed of the tiny Qwen2.5-VL models (`spatialrl eval run`'s path).

Builds the `tiny` and `small` models in a temporary folder, renders synthetic-world images, and
times `spatialrl.models.generate.generate_batch` on prompts from the world question generator.
Untrained models never stop early, so every sample generates exactly `--new-tokens` tokens
(a worst case). Prints samples per second, measured in this run.

Usage: python benchmarks/generation.py [--samples N] [--new-tokens T] [--batch B ...] [--threads N]
"""

from __future__ import annotations

import argparse
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=64, help="prompts per measurement (default 64)")
    parser.add_argument("--new-tokens", type=int, default=32, help="new tokens per sample (default 32)")
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 32], help="batch sizes (default 8 32)")
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small"], help="model sizes (default tiny small)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: steadiest on 2 cores)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import io

    from PIL import Image

    from spatialrl.data.build import BuildConfig, scene_rows
    from spatialrl.prompts import prompt_text
    from spatialrl.models.generate import generate_batch
    from spatialrl.models import load_model_and_processor
    from spatialrl.models.tiny import build_tiny_model

    prompts, images = [], []
    index = 0
    while len(prompts) < args.samples:
        for row in scene_rows(index, BuildConfig(scenes=index + 1, seed=0)):
            prompts.append(prompt_text(row["question"]))
            image = row["image"]
            image = Image.open(io.BytesIO(image["bytes"])) if isinstance(image, dict) else image
            images.append([image.convert("RGB")])
        index += 1
    prompts, images = prompts[: args.samples], images[: args.samples]

    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            path = f"{tmp}/{size}"
            build_tiny_model(path, size=size, seed=0, corpus_scenes=20)
            model, processor = load_model_and_processor(path)
            params = sum(p.numel() for p in model.parameters())
            generate_batch(model, processor, prompts[:2], images[:2], 4)  # warm-up
            for batch in args.batch:
                start = time.perf_counter()
                for i in range(0, len(prompts), batch):
                    generate_batch(model, processor, prompts[i:i + batch], images[i:i + batch], args.new_tokens)
                rate = len(prompts) / (time.perf_counter() - start)
                print(f"{size} ({params / 1e6:.2f} M parameters): batch {batch}, {args.new_tokens} new tokens: "
                      f"{rate:.1f} samples/s ({args.threads} torch thread(s))")


if __name__ == "__main__":
    main()
