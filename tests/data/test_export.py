"""Exports: TRL conversational prompts with their images, verl RL parquet; conversion of a
build; a multi-frame row's K images in both."""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import pyarrow.parquet as pq
import pytest

from spatialrl.cli import main
from spatialrl.data.export import features_for, trl_row, verl_row
from spatialrl.data.schema import COLUMNS
from spatialrl.prompts import FORMAT_INSTRUCTION

SCENES = 10


def _build(out: Path, fmt: str) -> None:
    assert main(["data", "build", "--out", str(out), "--scenes", str(SCENES), "--seed", "11", "--quiet",
                 "--test-fraction", "0.2", "--format", fmt]) == 0  # fmt: skip


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("exp")
    for fmt in ("hf", "trl", "verl", "easyr1"):
        _build(root / fmt, fmt)
    return root


def test_trl_format_loads_and_feeds_trl(dirs):
    import datasets
    from trl.data_utils import prepare_multimodal_messages

    ds = datasets.load_dataset(str(dirs / "trl"))
    assert set(ds) == {"train", "test"}
    train = ds["train"]
    assert set(COLUMNS) - {"image", "frames"} <= set(train.column_names) and "prompt" in train.column_names
    # no `image` column: TRL's SFT collator would replace `images` with [image] (None for a
    # multi-frame row)
    assert "image" not in train.column_names and "frames" not in train.column_names
    row = train[0]
    (msg,) = row["prompt"]
    assert msg["role"] == "user"
    assert msg["content"][0] == {"type": "image", "text": None}
    assert msg["content"][1]["type"] == "text"
    assert msg["content"][1]["text"] == row["question"] + " " + FORMAT_INSTRUCTION  # SVQA-R1 Table 9: a space
    assert "<think>" in FORMAT_INSTRUCTION and "<answer>" in FORMAT_INSTRUCTION
    # What GRPOTrainer does with a row: fill the placeholder from the `images` column (it reads
    # `images` before `image`), here the row's one picture ...
    hf_row = datasets.load_dataset(str(dirs / "hf"))["train"][0]
    assert len(row["images"]) == 1 and row["images"][0].tobytes() == hf_row["image"].tobytes()
    filled = prepare_multimodal_messages(row["prompt"], images=row["images"])
    assert filled[0]["content"][0]["image"] is row["images"][0]
    # ... and render Qwen2.5-VL's chat template (shipped with TRL) with one image slot.
    import trl

    tpl = Path(trl.__file__).parent / "chat_templates" / "qwen2_5_vl.jinja"
    text = jinja2.Template(tpl.read_text()).render(messages=filled, add_generation_prompt=True)
    assert text.count("<|image_pad|>") == 1 and row["question"].splitlines()[0] in text
    # reward columns survive as-is and match the hf build
    hf = datasets.load_dataset(str(dirs / "hf"))["train"]
    for k in ("id", "pair_id", "answer", "answer_value", "answer_type", "options", "answer_index", "bbox", "dimension"):
        assert train[k] == hf[k]


def test_easyr1_format_carries_the_reward_fields_in_its_answer(dirs):
    """EasyR1's RLHFDataset reads train.parquet with ``load_dataset("parquet", ...)``, splits
    ``problem`` at ``<image>`` (one image segment per entry of ``images``) and hands a reward
    function only the response and ``answer``: every reward field must be in that JSON."""
    import json

    import datasets

    files = {s: str(dirs / "easyr1" / f"{s}.parquet") for s in ("train", "test")}
    ds = datasets.load_dataset("parquet", data_files=files)
    hf = datasets.load_dataset(str(dirs / "hf"))
    for split in ("train", "test"):
        rows, truth = ds[split], hf[split]
        assert len(rows) == len(truth)
        for row, ref in zip(rows, truth):
            assert row["problem"].count("<image>") == len(row["images"]) == 1
            assert row["problem"].endswith(ref["question"] + " " + FORMAT_INSTRUCTION)
            answer = json.loads(row["answer"])
            for key in ("id", "pair_id", "view", "question_type", "answer_type", "answer", "answer_value", "options",
                        "answer_index", "bbox", "dimension", "unit"):
                assert answer[key] == ref[key], key
            assert row["images"][0].tobytes() == ref["image"].tobytes()
    assert "## Format: EasyR1" in (dirs / "easyr1" / "README.md").read_text()
    # EasyR1 has no pair sampler: with data.shuffle=false the file's order must keep pairs adjacent
    order = ds["train"].select_columns(["pair_id", "view"]).to_list()
    assert all(order[i]["pair_id"] == order[i + 1]["pair_id"] and order[i]["view"] != order[i + 1]["view"]
               for i in range(0, len(order), 2))


def test_verl_format(dirs):
    d = dirs / "verl"
    assert sorted(p.name for p in d.iterdir()) == ["README.md", "test.parquet", "train.parquet"]
    t = pq.read_table(d / "train.parquet")
    assert t.schema.names[:6] == ["data_source", "prompt", "images", "ability", "reward_model", "extra_info"]
    rows = t.to_pylist()
    hf = []
    for p in sorted((dirs / "hf" / "data").glob("train-*.parquet")):
        hf.extend(pq.read_table(p).to_pylist())
    assert len(rows) == len(hf)
    for k, (r, h) in enumerate(zip(rows, hf)):
        assert r["data_source"] == "spatialrl" and r["ability"] == "spatial"
        (msg,) = r["prompt"]
        # verl's RLHFDataset splits the content at "<image>": exactly one image segment
        segments = [s for s in re.split("(<image>|<video>)", msg["content"]) if s]
        assert segments[0] == "<image>" and segments.count("<image>") == 1
        assert segments[1] == h["question"] + " " + FORMAT_INSTRUCTION
        assert len(r["images"]) == 1 and r["images"][0]["bytes"] == h["image"]["bytes"]
        assert r["reward_model"] == {"style": "rule", "ground_truth": h["answer"]}
        ex = r["extra_info"]
        assert ex["split"] == "train" and ex["index"] == k
        assert ex["pair_id"] == r["pair_id"] == h["pair_id"] and ex["answer_value"] == h["answer_value"]
        assert ex["options"] == h["options"] and ex["bbox"] == h["bbox"]
    import datasets

    ds = datasets.load_dataset(str(d))
    assert set(ds) == {"train", "test"}


def test_convert_existing_build_matches_direct_build(dirs, tmp_path):
    for fmt in ("trl", "verl"):
        out = tmp_path / fmt
        assert main(["data", "build", "--from", str(dirs / "hf"), "--out", str(out), "--format", fmt, "--quiet"]) == 0
        direct = {p.relative_to(dirs / fmt): p.read_bytes() for p in (dirs / fmt).rglob("*.parquet")}
        converted = {p.relative_to(out): p.read_bytes() for p in out.rglob("*.parquet")}
        assert direct == converted


def test_convert_rejects_non_hf_input(dirs, tmp_path, capsys):
    rc = main(["data", "build", "--from", str(dirs / "trl"), "--out", str(tmp_path / "x"), "--format", "verl", "--quiet"])
    assert rc == 2 and "--from" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_row_functions_and_features():
    row = {c: None for c in COLUMNS} | {
        "id": "s-q00-o", "pair_id": "s-q00", "view": "original", "question": "Q?", "answer": "B",
        "options": ["x", "y"], "answer_index": 1, "bbox": [], "image": {"bytes": b"png", "path": None},
    }  # fmt: skip
    t = trl_row(row)
    assert t["prompt"][0]["content"][0]["type"] == "image" and t["pair_id"] == "s-q00"
    v = verl_row(row, "train", 5)
    assert v["prompt"][0]["content"].startswith("<image>Q? ") and v["extra_info"]["index"] == 5
    assert v["images"] == [row["image"]] and v["pair_id"] == "s-q00"
    assert set(features_for("verl")) >= {"data_source", "prompt", "images", "ability", "reward_model", "extra_info"}
    with pytest.raises(ValueError, match="unknown format"):
        features_for("csv")


def test_prompt_joins_question_and_instruction_with_a_space_as_table9():
    from spatialrl.prompts import PROMPT_SEPARATOR, prompt_text, with_separator

    assert PROMPT_SEPARATOR == " "
    assert prompt_text("How tall is the chair?") == "How tall is the chair? " + FORMAT_INSTRUCTION
    assert prompt_text("Q?", "\n") == "Q?\n" + FORMAT_INSTRUCTION
    assert with_separator(prompt_text("Q?"), "\n") == "Q?\n" + FORMAT_INSTRUCTION
    assert with_separator(prompt_text("Q?", "\n"), " ") == prompt_text("Q?")
    assert with_separator(prompt_text("Q?"), None) == prompt_text("Q?")
    assert with_separator("another benchmark's prompt", "\n") == "another benchmark's prompt"


def test_models_record_the_separator_they_learned(tmp_path):
    """The shipped tiny VLM was pretrained with a newline; a model that records nothing gets Table 9's space."""
    import json
    from pathlib import Path

    import spatialrl
    from spatialrl.models import PROMPT_SEPARATOR_KEY, prompt_separator

    assert prompt_separator(Path(spatialrl.__file__).parent / "assets" / "tiny-spatial-vlm") == "\n"
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    assert prompt_separator(tmp_path) is None
    assert prompt_separator("Qwen/Qwen2.5-VL-3B-Instruct") is None
    (tmp_path / "config.json").write_text(json.dumps({PROMPT_SEPARATOR_KEY: " "}))
    assert prompt_separator(tmp_path) == " "


def test_a_multiframe_row_exports_k_placeholders_and_k_images(dirs):
    """A multi-frame row (``image`` null, K ``frames``): K placeholders filled in order in TRL's
    format, K ``<image>`` segments in verl's, and both encode with their format's features."""
    import datasets
    import trl
    from PIL import Image

    from spatialrl.data.export import transform
    from spatialrl.data.schema import encode_png, validate_row

    row = pq.read_table(min((dirs / "hf" / "data").glob("train-*.parquet"))).to_pylist()[0]
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [{"bytes": encode_png(Image.new("RGB", (56, 56), c)), "path": None}
              for c in colours]
    row = row | {"image": None, "frames": frames}
    validate_row(row)

    (t,) = transform([row], "trl", "train", 0)
    assert [part["type"] for part in t["prompt"][0]["content"]] == ["image"] * 3 + ["text"]
    stored = datasets.Dataset.from_list([t], features=features_for("trl"))[0]
    assert [im.getpixel((0, 0)) for im in stored["images"]] == colours, "the frames, in order"
    from trl.data_utils import prepare_multimodal_messages

    filled = prepare_multimodal_messages(stored["prompt"], images=stored["images"])
    tpl = Path(trl.__file__).parent / "chat_templates" / "qwen2_5_vl.jinja"
    assert jinja2.Template(tpl.read_text()).render(messages=filled, add_generation_prompt=True).count(
        "<|image_pad|>") == 3

    (v,) = transform([row], "verl", "train", 7)
    segments = [s for s in re.split("(<image>|<video>)", v["prompt"][0]["content"]) if s]
    assert segments == ["<image>"] * 3 + [row["question"] + " " + FORMAT_INSTRUCTION]
    assert [im["bytes"] for im in v["images"]] == [f["bytes"] for f in frames]
    assert len(datasets.Dataset.from_list([v], features=features_for("verl"))[0]["images"]) == 3
