"""Throughput of the dataset builder (`spatialrl data build`): QA samples per second.

Builds a dataset of ``--scenes`` scenes (default 300, about 9,700 samples) into a temporary
directory, end to end (scene sampling, two renders per scene, question generation, PNG
encoding, parquet writing, dataset card), once per worker count, and prints the measured
samples per second and the projected time for a 50,000-sample dataset (Smooth Operator's
Numerical3D-50k size). Targets: >= 100 samples/s at 112 px and < 10 minutes for 50k.

    python benchmarks/data_build.py [--scenes N] [--image-size PX] [--workers W ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATE = 100.0  # samples / s
TARGET_50K_S = 600.0  # s
N_PROJECT = 50_000


def measure(scenes: int, image_size: int, workers: int, seed: int) -> tuple[int, float]:
    from spatialrl.data.build import BuildConfig, build_dataset

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        summary = build_dataset(str(Path(tmp) / "ds"), BuildConfig(scenes=scenes, seed=seed, image_size=image_size),
                                workers=workers, progress=False)  # fmt: skip
        seconds = time.perf_counter() - t0
    return sum(summary["rows"].values()), seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=int, default=300)
    p.add_argument("--image-size", type=int, default=112)
    p.add_argument("--workers", type=int, nargs="+", default=sorted({1, os.cpu_count() or 1}))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    print(f"data build benchmark: {args.scenes} scenes, {args.image_size} px, {os.cpu_count()} CPU cores")
    ok = True
    for w in args.workers:
        samples, seconds = measure(args.scenes, args.image_size, w, args.seed)
        rate = samples / seconds
        projected = N_PROJECT / rate
        ok_rate, ok_time = rate >= TARGET_RATE, projected < TARGET_50K_S
        ok &= ok_rate and ok_time
        print(f"workers={w}: {samples} samples in {seconds:.2f} s = {rate:.0f} samples/s "
              f"({rate / TARGET_RATE:.1f}x the {TARGET_RATE:.0f}/s target, {'ok' if ok_rate else 'BELOW TARGET'}); "
              f"projected 50,000 samples: {projected:.0f} s = {projected / 60:.1f} min "
              f"({'ok' if ok_time else 'OVER'} the {TARGET_50K_S / 60:.0f} min limit)")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
