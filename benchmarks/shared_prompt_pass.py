"""GRPO step time with and without the shared prompt pass (``share_prompt_pass``), in one run.

Runs ``spatialrl train`` (configs/demo.yaml's method: AP-GRPO, SNRA, mirror pairs, G 8, 32
completions a step) from the shipped tiny spatial VLM on a small world build, alternating
``share_prompt_pass=false`` and ``true`` for ``--rounds`` rounds of ``--steps`` steps, each with one
torch thread. Prints each run's median step time (the first two steps of each run are dropped),
the ratio shared / plain measured here, and the largest difference between the two runs' logged
rewards and KL: with the same seed they follow the same trajectory, so it should be ~0.

Usage: .venv/bin/python benchmarks/shared_prompt_pass.py [--rounds R] [--steps S] [--model DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(model: str, data: str, out: Path, steps: int, share: bool) -> list[dict]:
    cmd = [sys.executable, "-m", "spatialrl", "train", "--config", str(REPO / "configs" / "demo.yaml"),
           f"model={model}", f"dataset={data}", f"output_dir={out}", f"max_steps={steps}", "logging_steps=1",
           "save_steps=100000", f"share_prompt_pass={'true' if share else 'false'}", "torch_threads=1"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return [json.loads(line) for line in (out / "log_history.jsonl").read_text().splitlines() if "step_time" in line]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    parser.add_argument("--steps", type=int, default=8, help="GRPO steps per run (default 8)")
    parser.add_argument("--model", default=str(REPO / "spatialrl" / "assets" / "tiny-spatial-vlm"),
                        help="start checkpoint (default: the shipped tiny spatial VLM)")
    args = parser.parse_args()
    if args.steps < 3:
        parser.error("--steps must be at least 3 (the first two steps of each run are not timed)")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        subprocess.run([sys.executable, "-m", "spatialrl", "data", "build", "--out", str(data), "--scenes", "40"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times: dict[bool, list[float]] = {False: [], True: []}
        logs: dict[bool, list[dict]] = {}
        for r in range(args.rounds):
            for share in (False, True):
                rows = run(args.model, str(data), Path(tmp) / f"run{r}-{share}", args.steps, share)
                times[share].extend(row["step_time"] for row in rows[2:])
                logs.setdefault(share, rows)
                print(f"round {r + 1}: share_prompt_pass={str(share).lower():5s} "
                      f"median step {statistics.median(row['step_time'] for row in rows[2:]):.3f} s")
    plain, shared = statistics.median(times[False]), statistics.median(times[True])
    drift = max(abs(a[k] - b[k]) for a, b in zip(logs[False], logs[True]) for k in ("reward", "kl"))
    print(f"median step: plain {plain:.3f} s, shared {shared:.3f} s; ratio shared / plain {shared / plain:.2f}")
    print(f"largest difference of logged reward / kl between the two runs: {drift:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
