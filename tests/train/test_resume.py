"""Kill a real `spatialrl train` process part-way, resume it, and compare with an uninterrupted run.

What must continue across the kill: the step counter, the sharpness k(t), the data order (the
prompts of every generation batch, from ``generations.jsonl``; stratified by question type, so
the stratified order resumes too), and the result. Tolerance: the
per-step metrics and the final weights of the resumed run equal the uninterrupted run's within
1e-5 absolute (both runs are seeded; the resumed one restores the optimizer, scheduler and RNG
state from the checkpoint, so on one CPU they match to float rounding).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

STEPS = 8
SAVE_EVERY = 2
TOL = 1e-5


@pytest.fixture(scope="module")
def noisy_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model with large random weights, so completions (and rewards) differ and the
    policy really moves."""
    from spatialrl.models import load_model_and_processor

    model, processor = load_model_and_processor(tiny_model_dir)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)
    out = tmp_path_factory.mktemp("noisy") / "model"
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return str(out)


def _command(model, dataset, out, *extra):
    repo = Path(__file__).resolve().parents[2]
    return [sys.executable, "-m", "spatialrl", "train", "--config", str(repo / "configs" / "demo.yaml"),
            f"model={model}", f"dataset={dataset}", f"output_dir={out}", f"max_steps={STEPS}",
            f"save_steps={SAVE_EVERY}", "save_total_limit=null", "num_generations=4",
            "per_device_train_batch_size=8", "max_completion_length=8", "logging_steps=1", "learning_rate=1e-3",
            "stratify_pairs_by=question_type", *extra]


def _env():
    env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    env.pop("WORLD_SIZE", None)
    return env


def _per_step(log_path):
    rows = [json.loads(line) for line in Path(log_path).read_text().splitlines()]
    return {row["step"]: row for row in rows if "loss" in row}


def _generations(out):
    last = {}
    for line in (Path(out) / "generations.jsonl").read_text().splitlines():
        row = json.loads(line)
        last[row["step"]] = row  # the resumed run's line wins for steps the killed run had begun
    return last


def _weights(out):
    from safetensors.torch import load_file

    return load_file(str(Path(out) / "final" / "model.safetensors"))


def test_kill_and_resume_matches_an_uninterrupted_run(noisy_model_dir, world_dataset_dir, tmp_path):
    straight = tmp_path / "straight"
    done = subprocess.run(_command(noisy_model_dir, world_dataset_dir, straight), env=_env(), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    broken = tmp_path / "broken"
    proc = subprocess.Popen(_command(noisy_model_dir, world_dataset_dir, broken), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not (broken / f"checkpoint-{SAVE_EVERY}" / "trainer_state.json").exists():
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed; raise STEPS"
    assert not (broken / "final").exists()
    checkpoints = sorted(broken.glob("checkpoint-*"))
    assert checkpoints, "no checkpoint was written before the kill"

    resumed = subprocess.run(_command(noisy_model_dir, world_dataset_dir, broken, "--resume"), env=_env(),
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resum" in (resumed.stdout + resumed.stderr).lower()

    a, b = _per_step(straight / "log_history.jsonl"), _per_step(broken / "log_history.jsonl")
    assert sorted(a) == sorted(b) == list(range(1, STEPS + 1))  # the step counter continued to the end
    for step in a:
        assert b[step]["sharpness/k"] == pytest.approx(a[step]["sharpness/k"], abs=1e-9)
        for key in ("loss", "reward", "rewards/accuracy/mean", "adv/variance", "kl"):
            assert b[step][key] == pytest.approx(a[step][key], abs=TOL), (step, key)
    assert [s["sharpness/k"] for s in (a[k] for k in sorted(a))] == sorted(s["sharpness/k"] for s in a.values())

    ga, gb = _generations(straight), _generations(broken)
    assert sorted(ga) == sorted(gb) == list(range(1, STEPS + 1))
    assert all(ga[s]["prompts"] == gb[s]["prompts"] for s in ga)  # same data order
    assert len({tuple(ga[s]["prompts"]) for s in ga}) > 1

    wa, wb = _weights(straight), _weights(broken)
    moved = False
    for name, tensor in wa.items():
        assert torch.allclose(tensor, wb[name], atol=TOL), name
    initial = _weights_dir(noisy_model_dir)
    moved = any(not torch.equal(wa[n], initial[n]) for n in wa if n in initial)
    assert moved, "training did not change the weights; the comparison would be vacuous"


def _weights_dir(path):
    from safetensors.torch import load_file

    return load_file(str(Path(path) / "model.safetensors"))
