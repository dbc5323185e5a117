"""`spatialrl eval run`: batched generation with the tiny model, resume after a kill, sweeps.

The benchmark used here (``runner-test``) is defined in this file: items are synthetic-world
questions with PIL images from ``spatialrl.world.render``, scored by exact match. The
subprocess tests load it with ``--import <this file>``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spatialrl.eval.benchmarks import (
    BENCHMARKS,
    Benchmark,
    EvalItem,
    ItemScore,
    register_benchmark,
)

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


class RunnerTestBenchmark(Benchmark):
    """Synthetic-world questions; ``load(path)`` reads ``{"n": N, "seed": S}`` from a JSON file."""

    name = "runner-test"
    source = "tests/eval/test_runner.py"
    prompt_variants = ("default", "shout")

    def load(self, path):
        import numpy as np
        from PIL import Image

        from spatialrl.world import questions as Q
        from spatialrl.world.render import render
        from spatialrl.world.scene import sample_scene

        spec = json.loads(Path(path).read_text())
        items = []
        for i in range(int(spec["n"])):
            rng = np.random.default_rng([int(spec["seed"]), i])
            scene = sample_scene(rng, f"rt{i}")
            result = render(scene, 112)
            ctx = Q.SceneContext(scene, Q.views_from_render(result), result.camera)
            sample = Q.generate(ctx, rng)[0]
            items.append(EvalItem(id=f"q{i:03d}", question_type=sample.question_type, prompt=sample.question,
                                  answer=sample.answer, images=[Image.fromarray(result.image)]))
        return items

    def prompt(self, item, variant="default"):
        text = super().prompt(item, variant)
        return text.upper() if variant == "shout" else text

    def score_item(self, item, prediction):
        ok = prediction is not None and prediction.strip() == str(item.answer)
        return ItemScore(score=float(ok), parsed=prediction)


if "runner-test" not in BENCHMARKS:  # the subprocess imports this file as a second module
    register_benchmark(RunnerTestBenchmark)


# --------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from spatialrl.models.tiny import build_tiny_model

    out = tmp_path_factory.mktemp("model") / "tiny"
    build_tiny_model(out, "tiny", seed=0, corpus_scenes=10)
    return out


@pytest.fixture(scope="module")
def noisy(tiny, tmp_path_factory) -> Path:
    """The tiny checkpoint with large random weights: its greedy outputs vary from item to
    item (the freshly initialised model answers every prompt with the same token)."""
    import torch
    from transformers import AutoModelForImageTextToText

    out = tmp_path_factory.mktemp("model") / "noisy"
    shutil.copytree(tiny, out)
    model = AutoModelForImageTextToText.from_pretrained(out)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    # Sampling settings as a real Qwen2.5-VL ships them (and stronger): the runner must ignore them.
    model.generation_config.update(do_sample=True, temperature=2.0, top_p=0.9, top_k=20, repetition_penalty=1.3)
    model.save_pretrained(out)
    return out


def _data(tmp_path: Path, n: int, seed: int = 0) -> Path:
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"n": n, "seed": seed}))
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""))
    return env


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True) if path.exists() else []


def _cli(*argv: str) -> int:
    from spatialrl.cli import main

    return main(["eval", "run", *argv])


# --------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------


def test_run_writes_predictions_and_scores(tiny, tmp_path, capsys):
    data = _data(tmp_path, 12)
    out = tmp_path / "out"
    assert _cli("--model", str(tiny), "--benchmark", "runner-test", "--data", str(data), "--out", str(out),
                "--batch-size", "4", "--max-new-tokens", "6", "--no-progress") == 0
    printed = capsys.readouterr().out
    assert "tiny: resuming: 0 of 12 done, generating 12" in printed
    records = [json.loads(line) for line in _lines(out / "tiny" / "predictions.jsonl")]
    assert sorted(r["id"] for r in records) == [f"q{i:03d}" for i in range(12)]
    assert all(isinstance(r["prediction"], str) for r in records)
    scores = json.loads((out / "tiny" / "scores.json").read_text())
    assert scores["benchmark"] == "runner-test"
    assert scores["counts"]["items"] == 12 and scores["counts"]["missing"] == 0
    assert scores["run"]["generated_now"] == 12
    assert not (out / "sweep.json").exists()

    # A second run finds everything done: nothing generated, the file unchanged.
    before = (out / "tiny" / "predictions.jsonl").read_bytes()
    assert _cli("--model", str(tiny), "--benchmark", "runner-test", "--data", str(data), "--out", str(out),
                "--batch-size", "4", "--max-new-tokens", "6", "--no-progress") == 0
    assert "resuming: 12 of 12 done, generating 0" in capsys.readouterr().out
    assert (out / "tiny" / "predictions.jsonl").read_bytes() == before

    # Changing what determines the predictions is refused rather than mixed into the file.
    assert _cli("--model", str(tiny), "--benchmark", "runner-test", "--data", str(data), "--out", str(out),
                "--max-new-tokens", "7", "--no-progress") == 2
    assert "other settings" in capsys.readouterr().err


def test_limit_variant_and_batching_match(noisy, tmp_path):
    """Greedy output does not depend on the batch (left padding, masks and 3-D positions right),
    and the checkpoint's sampling settings are not used (sampled outputs would differ)."""
    data = _data(tmp_path, 6, seed=3)
    outs = {}
    for bs in ("1", "3"):
        out = tmp_path / f"bs{bs}"
        assert _cli("--model", str(noisy), "--benchmark", "runner-test", "--data", str(data), "--out", str(out),
                    "--batch-size", bs, "--max-new-tokens", "6", "--limit", "5", "--prompt-variant", "shout",
                    "--no-progress") == 0
        outs[bs] = {r["id"]: r["prediction"] for r in map(json.loads, _lines(out / "noisy" / "predictions.jsonl"))}
        assert json.loads((out / "noisy" / "scores.json").read_text())["run"]["prompt_variant"] == "shout"
    assert sorted(outs["1"]) == [f"q{i:03d}" for i in range(5)]
    assert len(set(outs["1"].values())) >= 3  # the outputs differ between items, so the comparison means something
    assert outs["1"] == outs["3"]


def test_generate_batch_takes_a_generation_config(noisy):
    """By default greedy (the same text twice); a sampling config given as
    ``generation_config`` is used instead, and its own ``max_new_tokens`` bounds the output."""
    import torch
    from transformers import GenerationConfig

    from spatialrl.models.generate import generate_batch
    from spatialrl.models import load_model_and_processor

    model, processor = load_model_and_processor(str(noisy), dtype=torch.float32, device="cpu")
    tokenizer = processor.tokenizer
    texts, images = ["How far is the chair?"] * 4, [[]] * 4
    greedy = generate_batch(model, processor, texts, images, 8)
    assert len(set(greedy)) == 1 and greedy == generate_batch(model, processor, texts, images, 8)
    sampling = GenerationConfig(do_sample=True, temperature=5.0, top_k=0, top_p=1.0, max_new_tokens=3,
                                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    sampled = generate_batch(model, processor, texts, images, 8, generation_config=sampling)
    assert len(set(sampled)) > 1  # four samples of one prompt at temperature 5 differ
    assert all(len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= 3 for text in sampled)


def test_unknown_variant_and_missing_model(tiny, tmp_path, capsys):
    data = _data(tmp_path, 2)
    assert _cli("--model", str(tiny), "--benchmark", "runner-test", "--data", str(data), "--out", str(tmp_path / "o"),
                "--prompt-variant", "nope") == 2
    assert "unknown prompt variant" in capsys.readouterr().err
    assert _cli("--model", str(tmp_path / "absent"), "--benchmark", "runner-test", "--data", str(data),
                "--out", str(tmp_path / "o")) == 2


def test_killed_run_resumes_without_regenerating(tiny, tmp_path):
    n = 48
    data = _data(tmp_path, n, seed=1)
    out = tmp_path / "out"
    pred = out / "tiny" / "predictions.jsonl"
    argv = [PY, "-m", "spatialrl", "eval", "run", "--import", __file__, "--model", str(tiny),
            "--benchmark", "runner-test", "--data", str(data), "--out", str(out),
            "--batch-size", "1", "--max-new-tokens", "24", "--threads", "1", "--no-progress"]
    proc = subprocess.Popen(argv, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while len(_lines(pred)) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no predictions written"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    first = _lines(pred)
    assert first[-1].endswith(b"\n")  # lines are written whole
    assert 2 <= len(first) < n, "the run finished before it was killed"
    # Simulate a kill in the middle of a write: half a line at the end.
    with open(pred, "ab") as fh:
        fh.write(b'{"id": "q0')

    result = subprocess.run(argv, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "cut a torn last line" in result.stdout
    assert f"tiny: resuming: {len(first)} of {n} done, generating {n - len(first)}" in result.stdout
    final = _lines(pred)
    assert final[: len(first)] == first  # the first run's lines unchanged, byte for byte
    ids = [json.loads(line)["id"] for line in final]
    assert sorted(ids) == [f"q{i:03d}" for i in range(n)]  # each id exactly once
    scores = json.loads((out / "tiny" / "scores.json").read_text())
    assert scores["counts"]["scored"] == n and scores["run"]["generated_now"] == n - len(first)


def test_sweep_over_checkpoints(tiny, tmp_path, capsys):
    run_dir = tmp_path / "runs" / "x"
    for step in (20, 100):  # lexicographic order would put 100 first
        shutil.copytree(tiny, run_dir / f"checkpoint-{step}")
    data = _data(tmp_path, 4)
    out = tmp_path / "out"
    assert _cli("--model", str(run_dir / "checkpoint-*"), "--benchmark", "runner-test", "--data", str(data),
                "--out", str(out), "--batch-size", "4", "--max-new-tokens", "4", "--no-progress") == 0
    sweep = json.loads((out / "sweep.json").read_text())
    assert [m["name"] for m in sweep["models"]] == ["checkpoint-20", "checkpoint-100"]
    assert [m["step"] for m in sweep["models"]] == [20, 100]
    assert set(sweep["overall"]) == {"checkpoint-20", "checkpoint-100"}
    for name in ("checkpoint-20", "checkpoint-100"):
        assert len(_lines(out / name / "predictions.jsonl")) == 4
        assert (out / name / "scores.json").exists()


def test_model_expansion_and_names(tmp_path):
    from spatialrl.eval.runner import expand_models, model_names, step_number

    for name in ("checkpoint-1000", "checkpoint-200", "checkpoint-30"):
        (tmp_path / "r" / name).mkdir(parents=True)
    paths = expand_models([str(tmp_path / "r" / "checkpoint-*")])
    assert [Path(p).name for p in paths] == ["checkpoint-30", "checkpoint-200", "checkpoint-1000"]
    # shell-expanded (lexicographic) arguments are ordered by step as well
    shell = sorted(str(tmp_path / "r" / n) for n in ("checkpoint-1000", "checkpoint-200", "checkpoint-30"))
    assert expand_models(shell) == paths
    assert expand_models(["m/zeta", "m/alpha", "m/zeta"]) == ["m/zeta", "m/alpha"]  # order given, no duplicates
    assert step_number("a/checkpoint-42") == 42 and step_number("a/final") is None
    assert model_names(["runs/a/checkpoint-5", "runs/a/checkpoint-9"]) == ["checkpoint-5", "checkpoint-9"]
    assert model_names(["a/final", "b/final", "c/other"]) == ["a__final", "b__final", "c__other"]
    with pytest.raises(ValueError, match="matches no directory"):
        expand_models([str(tmp_path / "none-*")])


def test_video_items_get_a_clear_error(tmp_path):
    from spatialrl.eval.benchmarks import EvalItem
    from spatialrl.eval.runner import run_benchmark

    class VideoBench:
        name = "videobench"

    items = [EvalItem(id="v1", question_type="t", prompt="q", answer="A", images=["scene.mp4"], meta={"video": True})]
    with pytest.raises(ValueError, match="does not decode video"):
        run_benchmark("no-model-needed", "m", VideoBench(), items, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written
