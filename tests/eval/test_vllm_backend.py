"""`spatialrl eval run --backend vllm` and the pixel budget of `eval run`, on CPU.

vLLM cannot run here (no GPU). These tests check what we build and send: the request builder
against the HF path's prompt text, the engine arguments, the refusal to mix budgets, the error
when vllm is missing, and the wiring through a fake ``vllm`` module. The real engine is
covered by the GPU check, not here.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from spatialrl.eval.benchmarks import BENCHMARKS, Benchmark, EvalItem, ItemScore, register_benchmark
from spatialrl.models.pixels import PixelBudget

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "spatialrl" / "assets" / "tiny-spatial-vlm"  # records a newline as its prompt separator
SIZES = [(112, 112), (448, 336), (200, 90)]


def _image(width: int, height: int, shade: int = 0):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng([width, height, shade])
    return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))


class WiringBenchmark(Benchmark):
    """Three items: one image, three frames (a multi-frame item), no image; ``load`` ignores its path."""

    name = "vllm-wiring-test"
    source = "tests/eval/test_vllm_backend.py"

    def load(self, path):
        from spatialrl.prompts import prompt_text

        return [
            EvalItem(id="one", question_type="count", prompt=prompt_text("How many chairs are there?"), answer="2",
                     images=[_image(*SIZES[1])]),
            EvalItem(id="frames", question_type="count", prompt="How many tables are in the room?", answer="1",
                     images=[_image(w, h, i) for i, (w, h) in enumerate(SIZES)]),
            EvalItem(id="text", question_type="count", prompt="Is a metre longer than a foot?", answer="yes",
                     images=[]),
        ]

    def score_item(self, item, prediction):
        return ItemScore(score=float(prediction == item.answer), parsed=prediction)


if WiringBenchmark.name not in BENCHMARKS:
    register_benchmark(WiringBenchmark)


def _reply(prompt: str) -> str:
    """What the fake engine answers to a prompt: a digest of it, so order and text are checked."""
    return "reply-" + hashlib.sha1(prompt.encode()).hexdigest()[:10]


@pytest.fixture
def fake_vllm(monkeypatch):
    """A stand-in ``vllm`` module: ``LLM`` records its keyword arguments and each ``generate``
    call, and answers :func:`_reply` of each prompt; ``SamplingParams`` keeps its arguments."""
    module = types.ModuleType("vllm")
    module.engines = []

    class SamplingParams:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    class LLM:
        def __init__(self, **kwargs):
            self.kwargs = kwargs
            self.calls = []
            module.engines.append(self)

        def generate(self, requests, sampling_params, use_tqdm=True):
            self.calls.append((list(requests), sampling_params))
            return [types.SimpleNamespace(outputs=[types.SimpleNamespace(text=_reply(r["prompt"]))])
                    for r in requests]

    module.LLM, module.SamplingParams = LLM, SamplingParams
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


def _cli(*argv: str) -> int:
    from spatialrl.cli import main

    return main(["eval", "run", "--benchmark", WiringBenchmark.name, "--data", "unused", "--no-progress", *argv])


# --------------------------------------------------------------------------------------
# Pure pieces
# --------------------------------------------------------------------------------------


def test_requests_carry_the_hf_paths_prompt_text_and_images():
    """The vLLM prompt of an item is the string the HF path gives the processor for it (the
    model's chat template, its recorded separator, one placeholder per image), and its images
    are the same RGB images, every frame of a multi-frame item included."""
    import torch

    from spatialrl.eval.vllm_backend import build_requests
    from spatialrl.models import load_model_and_processor, prompt_separator
    from spatialrl.models.generate import generate_batch

    items = WiringBenchmark().load("unused")
    texts, images = [it.prompt for it in items], [list(it.images) for it in items]
    model, processor = load_model_and_processor(TINY, dtype=torch.float32, device="cpu")

    class Spy:  # the processor, recording what generate_batch sends through it
        def __init__(self, inner):
            self.inner, self.sent = inner, {}

        def __call__(self, **kwargs):
            self.sent = kwargs
            return self.inner(**kwargs)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    spy = Spy(processor)
    generate_batch(model, spy, texts, images, 1)
    requests = build_requests(processor, texts, images, prompt_separator(TINY))

    assert [r["prompt"] for r in requests] == list(spy.sent["text"])
    assert "\n" + "First output the thinking" in requests[0]["prompt"]  # the model's separator, not a space
    assert [r["prompt"].count("<|image_pad|>") for r in requests] == [1, 3, 0]
    assert [len(r.get("multi_modal_data", {}).get("image", [])) for r in requests] == [1, 3, 0]
    assert "multi_modal_data" not in requests[2]
    sent = [im for r in requests for im in r.get("multi_modal_data", {}).get("image", [])]
    assert [(im.mode, im.size) for im in sent] == [(im.mode, im.size) for im in spy.sent["images"]]
    assert all(a.tobytes() == b.tobytes() for a, b in zip(sent, spy.sent["images"]))


def test_engine_kwargs_and_greedy_sampling(fake_vllm):
    from spatialrl.eval.vllm_backend import engine_kwargs, greedy_sampling

    kwargs = engine_kwargs("ckpt", budget=PixelBudget(3136, 200704), max_images=32, dtype="bfloat16",
                           max_model_len=8192, seed=3, tensor_parallel_size=2, gpu_memory_utilization=0.8)
    assert kwargs == {
        "model": "ckpt", "dtype": "bfloat16", "max_model_len": 8192, "limit_mm_per_prompt": {"image": 32},
        "mm_processor_kwargs": {"min_pixels": 3136, "max_pixels": 200704}, "seed": 3,
        "tensor_parallel_size": 2, "gpu_memory_utilization": 0.8,
    }  # fmt: skip
    assert greedy_sampling(fake_vllm, 64).kwargs == {"temperature": 0, "max_tokens": 64}


def test_missing_vllm_names_the_install_and_the_gpu(monkeypatch, tmp_path, capsys):
    from spatialrl.eval.vllm_backend import import_vllm

    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` raises ImportError
    with pytest.raises(ImportError, match="pip install vllm") as info:
        import_vllm()
    assert "GPU" in str(info.value)
    assert _cli("--model", str(TINY), "--out", str(tmp_path / "o"), "--backend", "vllm") == 2
    err = capsys.readouterr().err
    assert "pip install vllm" in err and "GPU" in err


def test_options_of_the_other_backend_are_refused(tmp_path, capsys):
    assert _cli("--model", str(TINY), "--out", str(tmp_path / "o"), "--tensor-parallel-size", "2") == 2
    assert "--tensor-parallel-size is an option of --backend vllm" in capsys.readouterr().err
    assert _cli("--model", str(TINY), "--out", str(tmp_path / "o"), "--backend", "vllm", "--device", "cpu") == 2
    assert "--device is an option of --backend hf" in capsys.readouterr().err
    assert _cli("--model", str(TINY), "--out", str(tmp_path / "o"), "--min-pixels", "50176",
                "--max-pixels", "3136") == 2
    assert "max_pixels (3136) must be >= min_pixels (50176)" in capsys.readouterr().err


# --------------------------------------------------------------------------------------
# Wiring through a fake vllm
# --------------------------------------------------------------------------------------


def test_backend_wiring_with_a_fake_vllm(fake_vllm, tmp_path, capsys):
    """Checks our wiring only (arguments in, requests out, texts back to the right items,
    settings recorded) with a stand-in ``vllm``; the real engine is covered by the GPU check."""
    from spatialrl.eval.vllm_backend import build_requests
    from spatialrl.models import load_processor, prompt_separator

    out = tmp_path / "out"
    assert _cli("--model", str(TINY), "--out", str(out), "--backend", "vllm", "--max-pixels", "200704",
                "--max-new-tokens", "48", "--batch-size", "2", "--dtype", "bfloat16", "--seed", "7") == 0
    assert "tiny-spatial-vlm: resuming: 0 of 3 done, generating 3" in capsys.readouterr().out

    (engine,) = fake_vllm.engines
    assert engine.kwargs == {
        "model": str(TINY), "dtype": "bfloat16", "max_model_len": None, "limit_mm_per_prompt": {"image": 3},
        "mm_processor_kwargs": {"min_pixels": 3136, "max_pixels": 200704}, "seed": 7,
        "tensor_parallel_size": 1, "gpu_memory_utilization": 0.9,
    }  # fmt: skip
    assert [len(requests) for requests, _ in engine.calls] == [2, 1]  # --batch-size 2
    assert all(params.kwargs == {"temperature": 0, "max_tokens": 48} for _, params in engine.calls)

    items = WiringBenchmark().load("unused")
    expected = build_requests(load_processor(TINY), [it.prompt for it in items], [it.images for it in items],
                              prompt_separator(TINY))
    sent = [r for requests, _ in engine.calls for r in requests]
    assert sorted(r["prompt"] for r in sent) == sorted(r["prompt"] for r in expected)
    records = [json.loads(line) for line in (out / "tiny-spatial-vlm" / "predictions.jsonl").read_text().splitlines()]
    assert {r["id"]: r["prediction"] for r in records} == {
        it.id: _reply(req["prompt"]) for it, req in zip(items, expected)}
    run = json.loads((out / "tiny-spatial-vlm" / "run.json").read_text())
    assert (run["backend"], run["min_pixels"], run["max_pixels"]) == ("vllm", 3136, 200704)
    assert json.loads((out / "tiny-spatial-vlm" / "scores.json").read_text())["run"]["max_pixels"] == 200704


def test_a_different_budget_is_refused_naming_both(fake_vllm, tmp_path, capsys):
    out = tmp_path / "out"
    # No flags: the model's saved processor budget (the shipped tiny model: 3136 .. 12544).
    assert _cli("--model", str(TINY), "--out", str(out), "--backend", "vllm") == 0
    assert fake_vllm.engines[0].kwargs["mm_processor_kwargs"] == {"min_pixels": 3136, "max_pixels": 12544}
    capsys.readouterr()
    assert _cli("--model", str(TINY), "--out", str(out), "--backend", "vllm", "--max-pixels", "200704") == 2
    err = capsys.readouterr().err
    assert "pixel budget mismatch" in err
    assert "min_pixels=3136, max_pixels=12544" in err and "min_pixels=3136, max_pixels=200704" in err
    assert "--max-pixels 12544" in err  # how to resume
    assert len(fake_vllm.engines) == 1  # refused before an engine was built
    # The same budget given explicitly resumes (nothing left to generate).
    assert _cli("--model", str(TINY), "--out", str(out), "--backend", "vllm", "--max-pixels", "12544") == 0
    assert "resuming: 3 of 3 done, generating 0" in capsys.readouterr().out


def test_a_run_json_without_budget_resumes_at_the_saved_budget(fake_vllm, tmp_path, capsys):
    """A run dir from before the backend and the budget were recorded was made by the HF path
    at the model's saved budget: resuming it so is allowed, another budget or backend is not."""
    from spatialrl.eval.runner import resolve_budget

    model_dir = tmp_path / "out" / "tiny-spatial-vlm"
    model_dir.mkdir(parents=True)
    (model_dir / "predictions.jsonl").write_text(json.dumps({"id": "one", "prediction": "2"}) + "\n")
    (model_dir / "run.json").write_text(json.dumps({
        "model": os.path.abspath(TINY), "benchmark": WiringBenchmark.name, "prompt_variant": "default",
        "max_new_tokens": 256}))
    assert resolve_budget(str(TINY)) == PixelBudget(3136, 12544)
    assert _cli("--model", str(TINY), "--out", str(tmp_path / "out"), "--backend", "vllm") == 2
    assert "backend: 'hf' before, 'vllm' now" in capsys.readouterr().err
    assert _cli("--model", str(TINY), "--out", str(tmp_path / "out"), "--max-pixels", "50176") == 2
    assert "min_pixels=3136, max_pixels=12544" in capsys.readouterr().err
    assert _cli("--model", str(TINY), "--out", str(tmp_path / "out"), "--max-new-tokens", "2") == 2  # other reason
    # hf at the saved budget: resumed (two items left, generated by the tiny model on CPU)
    assert _cli("--model", str(TINY), "--out", str(tmp_path / "out"), "--max-new-tokens", "256",
                "--batch-size", "2") == 0
    assert "resuming: 1 of 3 done, generating 2" in capsys.readouterr().out
    assert json.loads((model_dir / "run.json").read_text())["max_pixels"] == 12544


def test_hf_path_never_imports_vllm(tmp_path):
    """With an importable ``vllm`` on the path, importing the runner and running the HF backend
    leave it unimported (a fresh interpreter: nothing else has imported it)."""
    fake = tmp_path / "site" / "vllm"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise SystemExit('vllm was imported')\n")
    code = (
        "import sys, spatialrl.eval.runner as r\n"
        "assert 'vllm' not in sys.modules\n"
        "sys.path.insert(0, %r); import tests.eval.test_vllm_backend as t\n"
        "b = t.WiringBenchmark()\n"
        "res = r.run_benchmark(%r, 'm', b, b.load('x'), %r, max_new_tokens=2, progress=False, log=lambda m: None)\n"
        "assert res.generated == 3, res\n"
        "import importlib.util; assert importlib.util.find_spec('vllm') is not None  # it was importable\n"
        "print('vllm' in sys.modules)\n"
    ) % (str(ROOT), str(TINY), str(tmp_path / "out"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), str(ROOT)]), HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
