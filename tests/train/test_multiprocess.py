"""Two real training processes (torchrun, gloo on CPU): each process's share of every generation
batch holds whole mirror pairs, and the run completes."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None,
                    reason="torchrun is not installed next to this Python")
def test_two_processes_keep_pairs_on_one_process(tiny_model_dir, world_dataset_dir, tmp_path):
    repo = Path(__file__).resolve().parents[2]
    out = tmp_path / "ddp"
    torchrun = str(Path(sys.executable).parent / "torchrun")
    with socket.socket() as probe:  # a free loopback port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cmd = [torchrun, "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(port),
           "-m", "spatialrl", "train",
           "--config", str(repo / "configs" / "demo.yaml"), f"model={tiny_model_dir}",
           f"dataset={world_dataset_dir}", f"output_dir={out}", "max_steps=2", "num_generations=4",
           "per_device_train_batch_size=8", "gradient_accumulation_steps=2", "max_completion_length=8",
           "save_steps=100", "logging_steps=1"]
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert '"processes": 2' in done.stdout
    lines = [json.loads(line) for line in (out / "generations.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2]
    for line in lines:
        prompts = line["prompts"]  # gathered in process order: each process's prompts are contiguous
        per_process = len(prompts) // 2
        assert per_process == 4  # 8 completions x 2 accumulation steps / G = 4 prompts = 2 pairs
        for rank in range(2):
            mine = prompts[rank * per_process:(rank + 1) * per_process]
            pairs = {p.rsplit(":", 1)[0] for p in mine}
            assert all({f"{pid}:o", f"{pid}:m"} <= set(mine) for pid in pairs), (rank, mine)
