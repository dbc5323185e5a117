"""Throughput and peak memory of the real-scan builder (`spatialrl data build --source scannet`).

Writes ``--scenes`` furnished rooms of known geometry in ScanNet's published layout at a
realistic size (a mesh of about 200k vertices, ``--frames`` frames of 1296 x 968 colour and
640 x 480 depth, a rolled camera, a non-identity axisAlignment), then times the build end to
end as the command runs it, in a child process (reading, frame selection, levelling, depth
tests, questions, mirrors, image encoding, selection, parquet, card) and reads the child's peak
resident memory. Targets (issue #22): >= 100 QA samples/s on 2 cores, peak < 2 GiB.

    python benchmarks/scan_build.py [--scenes N] [--frames N] [--workers W] [--image-format png|jpeg]
"""

from __future__ import annotations

import argparse
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_RATE = 100.0
TARGET_PEAK_GIB = 2.0


def write_scenes(root: Path, scenes: int, frames: int) -> int:
    """Write the rooms; returns the mesh vertex count of one."""
    from spatialrl.data.sources.known_rooms import furnished_room, walk
    from spatialrl.data.sources.scannet_writer import write_scannet
    from plyfile import PlyData

    th = math.radians(20)
    align = np.eye(4)
    align[:3, :3] = [[math.cos(th), -math.sin(th), 0], [math.sin(th), math.cos(th), 0], [0, 0, 1]]
    align[:3, 3] = (2.0, -1.0, 0.1)
    for k in range(scenes):
        known = furnished_room(seed=k, n_unique=9, n_chairs=4)
        write_scannet(known, root, f"scene{k:04d}_00", walk(known, frames, seed=k), axis_alignment=align,
                      mesh_step=0.03, render_scale=4)  # fmt: skip
    ply = PlyData.read(str(root / "scans" / "scene0000_00" / "scene0000_00_vh_clean_2.ply"))
    return ply["vertex"].count


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=int, default=4)
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--image-format", choices=("png", "jpeg"), default="png")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "scannet"
        t0 = time.perf_counter()
        verts = write_scenes(root, args.scenes, args.frames)
        print(f"wrote {args.scenes} scene(s): {verts} mesh vertices, {args.frames} frames of 1296x968 each "
              f"({time.perf_counter() - t0:.0f} s)")  # fmt: skip
        cmd = [sys.executable, "-m", "spatialrl", "data", "build", "--source", "scannet", "--root", str(root),
               "--out", str(Path(tmp) / "out"), "--workers", str(args.workers), "--image-format", args.image_format,
               "--quiet"]  # fmt: skip
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if done.returncode:
            print(done.stderr, file=sys.stderr)
            return 1
        peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB -> GiB (Linux)
        rows = int(done.stdout.split("wrote ", 1)[1].split(" rows", 1)[0])
    rate = rows / seconds
    print(f"{rows} QA samples in {seconds:.1f} s with {args.workers} worker(s): {rate:.0f} samples/s "
          f"(target >= {TARGET_RATE:.0f}); peak memory of one process {peak_gib:.2f} GiB (target < {TARGET_PEAK_GIB})")  # fmt: skip
    ok = rate >= TARGET_RATE and peak_gib < TARGET_PEAK_GIB
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
