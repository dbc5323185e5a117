"""What torch's deterministic algorithms cost ``spatialrl pretrain`` (they make a run repeat bit for bit).

    .venv/bin/python experiments/pretraining_determinism/deterministic_cost.py [STEPS] [THREADS]

Trains the default small recipe for STEPS language steps (default 60; STEPS / 2 dense steps,
120 scenes) twice in this process: once as ``spatialrl pretrain`` runs it (deterministic
algorithms on), once with them off. It prints both runs' dense-stage and language-stage seconds
and their ratio (on / off). Run it alone on the machine: the ratio is the figure, and another
job's load would distort it. THREADS defaults to 2, the recipe's own.
"""

from __future__ import annotations

import sys

if sys.argv[1:2] in (["-h"], ["--help"]):  # usage before the heavy imports
    sys.exit(print(__doc__))

import tempfile
from pathlib import Path

from spatialrl.train.pretrain import PretrainConfig, _pretrain, pretrain

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 60
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
if steps < 2 or threads < 1:
    sys.exit("deterministic_cost: STEPS must be >= 2 and THREADS >= 1")


def run(out: Path, deterministic: bool) -> dict:
    cfg = PretrainConfig(out=str(out), steps=steps, dense_steps=steps // 2, scenes=120, tokenizer_scenes=40,
                         heldout_scenes=4, heldout_samples=16, eval_every=steps, min_image_gap=-1.0,
                         threads=threads)
    quiet = lambda message: None  # noqa: E731
    return pretrain(cfg, progress=False, log=quiet) if deterministic else _pretrain(cfg, False, quiet)


with tempfile.TemporaryDirectory() as tmp:
    # off first, so that any warm-up (file caches, the tokenizer corpus) favours the deterministic run
    off = run(Path(tmp) / "off", deterministic=False)
    on = run(Path(tmp) / "on", deterministic=True)
print(f"{steps} language steps, {steps // 2} dense steps, {threads} threads")
for stage in ("dense_seconds", "train_seconds"):
    print(f"  {stage:14s} deterministic {on[stage]:7.1f} s   off {off[stage]:7.1f} s   ratio {on[stage] / off[stage]:.2f}")
