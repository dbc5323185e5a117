"""The tiny Qwen2.5-VL: build, reload through the Auto classes, forward and generate with an
image, digit-splitting tokenizer, determinism, the CLI, and lazy AutoProcessor registration."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPUS_SCENES = "8"  # a small corpus keeps the build at a couple of seconds


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from spatialrl.cli import main

    out = tmp_path_factory.mktemp("m") / "tiny"
    assert main(["model", "tiny", "--out", str(out), "--seed", "0", "--corpus-scenes", CORPUS_SCENES]) == 0
    return out


@pytest.fixture(scope="module")
def loaded(tiny):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    import spatialrl.models  # noqa: F401 - registers the processor with AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny)
    model = AutoModelForImageTextToText.from_pretrained(tiny).eval()
    return model, processor


def _image(seed: int):
    from PIL import Image

    from spatialrl.world.render import render
    from spatialrl.world.scene import sample_scene

    return Image.fromarray(render(sample_scene(seed, f"s{seed}"), 112).image)


def _inputs(processor, image, question="How many chairs are there? Answer with a number."):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return text, processor(text=[text], images=[image], return_tensors="pt")


def test_files_and_auto_classes(tiny, loaded):
    from transformers import Qwen2_5_VLForConditionalGeneration
    from transformers.processing_utils import ProcessorMixin

    model, processor = loaded
    for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
                 "tokenizer_config.json", "chat_template.jinja", "processor_config.json"):
        assert (tiny / name).exists(), name
    # TRL treats a model as a VLM when AutoProcessor gives a processor, not a bare tokenizer.
    assert isinstance(processor, ProcessorMixin)
    assert type(processor).__name__ == "Qwen2_5_VLImageOnlyProcessor"
    assert processor.image_processor is not None
    assert isinstance(model, Qwen2_5_VLForConditionalGeneration)
    n_params = sum(p.numel() for p in model.parameters())
    assert 150_000 < n_params < 300_000
    tok = processor.tokenizer
    cfg = model.config
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>") == processor.image_token_id
    assert cfg.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>")
    assert cfg.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    assert cfg.vision_end_token_id == tok.convert_tokens_to_ids("<|vision_end|>")
    assert cfg.text_config.vocab_size == len(tok)
    assert tok.pad_token == "<|endoftext|>" and tok.eos_token == "<|im_end|>"
    assert tok.convert_tokens_to_ids("<|im_end|>") in model.generation_config.eos_token_id


def test_tokenizer_splits_digits_and_keeps_special_tokens(loaded):
    _, processor = loaded
    tok = processor.tokenizer
    pieces = tok.tokenize("The table is 12.75 m wide, box [104, 3, 56, 90].")
    digits = [p for p in pieces if any(c.isdigit() for c in p)]
    assert digits and all(len(p.lstrip("Ġ")) == 1 for p in digits), digits
    assert "".join(digits).replace("Ġ", "") == "12751043" + "5690"
    for special in ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|image_pad|>", "<|endoftext|>"):
        assert tok.tokenize(special) == [special]
    text = "<think> 2 </think> <answer>3.5</answer>"
    assert tok.decode(tok(text)["input_ids"]) == text


def test_forward_with_image_uses_image_and_3d_positions(loaded):
    import torch

    model, processor = loaded
    text, inputs = _inputs(processor, _image(0))
    assert "<|vision_start|><|image_pad|><|vision_end|>" in text and text.endswith("<|im_start|>assistant\n")
    assert (inputs["input_ids"] == processor.image_token_id).sum() == 16  # 112 px -> 16 image tokens
    assert tuple(inputs["pixel_values"].shape) == (64, 3 * 2 * 14 * 14)
    assert inputs["image_grid_thw"].tolist() == [[1, 8, 8]]
    assert "mm_token_type_ids" in inputs  # needed for Qwen2.5-VL's 3-D rotary positions
    with torch.no_grad():
        logits = model(**inputs).logits
        assert logits.shape == (1, inputs["input_ids"].shape[1], len(processor.tokenizer))
        assert torch.isfinite(logits).all()
        other = model(**_inputs(processor, _image(1))[1]).logits
        assert not torch.allclose(logits[0, -1], other[0, -1])  # the image reaches the output
        flat = model(**{k: v for k, v in inputs.items() if k != "mm_token_type_ids"}).logits
        assert not torch.allclose(logits[0, -1], flat[0, -1])  # 3-D positions differ from 1-D


def test_generate_with_image_through_chat_template(loaded):
    model, processor = loaded
    _, inputs = _inputs(processor, _image(2))
    out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert out.shape[0] == 1 and inputs["input_ids"].shape[1] < out.shape[1] <= inputs["input_ids"].shape[1] + 5
    texts = processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert isinstance(texts[0], str)


def test_processor_pickles(loaded):
    _, processor = loaded
    clone = pickle.loads(pickle.dumps(processor))
    assert type(clone) is type(processor)
    assert clone.tokenizer("12")["input_ids"] == processor.tokenizer("12")["input_ids"]


def test_same_seed_same_files_other_seed_other_weights(tiny, tmp_path):
    import torch
    from safetensors.torch import load_file

    from spatialrl.data.corpus import tokenizer_corpus
    from spatialrl.models.tiny import build_tiny_model

    # the corpus as an argument (what the command builds from the world) gives the same files
    build_tiny_model(tmp_path / "again", "tiny", seed=0, texts=tokenizer_corpus(int(CORPUS_SCENES), 0, 112))
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "processor_config.json",
                 "config.json", "generation_config.json"):
        assert (tmp_path / "again" / name).read_bytes() == (tiny / name).read_bytes(), name
    a, b = load_file(tiny / "model.safetensors"), load_file(tmp_path / "again" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    build_tiny_model(tmp_path / "seed1", "tiny", seed=1, corpus_scenes=int(CORPUS_SCENES))
    c = load_file(tmp_path / "seed1" / "model.safetensors")
    assert any(not torch.equal(a[k], c[k]) for k in a if k in c and a[k].shape == c[k].shape)


def test_cli_refuses_nonempty_out_and_bad_size(tiny, capsys):
    from spatialrl.cli import main

    assert main(["model", "tiny", "--out", str(tiny)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["model", "tiny", "--out", str(tiny), "--size", "huge"])


def test_stock_qwen_layout_falls_back_to_image_only_processor(tiny, tmp_path):
    """A real Qwen2.5-VL checkpoint names the stock processor, whose video processor needs
    torchvision: ``load_model_and_processor`` still gives an image processor with the same files."""
    from transformers.processing_utils import ProcessorMixin

    from spatialrl.models import load_model_and_processor

    stock = tmp_path / "stock"
    shutil.copytree(tiny, stock)
    processor_config = json.loads((stock / "processor_config.json").read_text())
    (stock / "processor_config.json").unlink()
    image_config = {**processor_config["image_processor"], "processor_class": "Qwen2_5_VLProcessor"}
    (stock / "preprocessor_config.json").write_text(json.dumps(image_config))
    tok_config = json.loads((stock / "tokenizer_config.json").read_text())
    tok_config["processor_class"] = "Qwen2_5_VLProcessor"
    (stock / "tokenizer_config.json").write_text(json.dumps(tok_config))

    model, processor = load_model_and_processor(stock)
    assert isinstance(processor, ProcessorMixin) and processor.image_processor is not None
    _, inputs = _inputs(processor, _image(0))
    assert (inputs["input_ids"] == processor.image_token_id).sum() == 16
    assert model(**inputs).logits.shape[1] == inputs["input_ids"].shape[1]


def test_fresh_interpreter_cheap_import_then_auto_processor(tiny):
    """``import spatialrl.models`` (and building the CLI parser) imports neither torch nor
    transformers, yet a later ``AutoProcessor.from_pretrained`` returns the processor."""
    code = (
        "import sys, spatialrl.cli, spatialrl.models\n"
        "spatialrl.cli.build_parser()\n"
        "heavy = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "from transformers import AutoProcessor\n"
        f"p = AutoProcessor.from_pretrained({str(tiny)!r})\n"
        "print(type(p).__name__)\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "Qwen2_5_VLImageOnlyProcessor"


def test_load_with_a_pixel_budget_and_attention_implementation():
    """``min_pixels`` / ``max_pixels`` set the processor's budget (a 448 x 448 image then takes
    ``PixelBudget.image_tokens`` tokens, not the saved budget's 16); the one not given keeps its
    saved value; ``attn_implementation`` reaches ``from_pretrained``; positional callers still work."""
    import torch
    from PIL import Image

    from spatialrl.models import load_model_and_processor, load_processor
    from spatialrl.models.pixels import PixelBudget, processor_budget

    shipped = ROOT / "spatialrl" / "assets" / "tiny-spatial-vlm"
    image = Image.new("RGB", (448, 448), (40, 90, 160))
    text = "<|vision_start|><|image_pad|><|vision_end|>How many chairs are there?"

    def tokens(processor) -> int:
        grid = processor(text=[text], images=[image], return_tensors="pt")["image_grid_thw"]
        return int(grid.prod()) // 4  # 2 x 2 patches merge into one token

    saved = load_processor(shipped)
    assert processor_budget(saved) == PixelBudget(3136, 12544) and tokens(saved) == 16
    for kwargs, budget in (({"max_pixels": 448 * 448}, PixelBudget(3136, 448 * 448)),
                           ({"min_pixels": 12544, "max_pixels": 50176}, PixelBudget(12544, 50176))):
        processor = load_processor(shipped, **kwargs)
        assert processor_budget(processor) == budget
        assert tokens(processor) == budget.image_tokens(448, 448) != 16
    with pytest.raises(ValueError, match="must be >= min_pixels"):
        load_processor(shipped, min_pixels=50176, max_pixels=3136)

    model, processor = load_model_and_processor(shipped, torch.float32, "cpu", max_pixels=448 * 448,
                                                attn_implementation="eager")
    assert model.config._attn_implementation == "eager" and model.dtype == torch.float32
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    assert (inputs["input_ids"] == processor.image_token_id).sum() == 256
    assert model(**inputs).logits.shape[1] == inputs["input_ids"].shape[1]
