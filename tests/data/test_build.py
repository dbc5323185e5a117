"""`spatialrl data build`: determinism, layout, splits, mirror pairs on stored data, errors."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from spatialrl.cli import main
from spatialrl.data import build as B
from spatialrl.data.schema import COLUMNS, features, validate_row
from spatialrl.world.mirror import flip_box
from spatialrl.world.questions import QUESTION_TYPES

N = 24


def _build(out: Path, *extra: str, scenes: int = N, seed: int = 3) -> None:
    rc = main(["data", "build", "--out", str(out), "--scenes", str(scenes), "--seed", str(seed), "--quiet", *extra])
    assert rc == 0


def _files(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _rows(d: Path, split: str) -> list[dict]:
    out = []
    for p in sorted((d / "data").glob(f"{split}-*.parquet")):
        out.extend(pq.read_table(p).to_pylist())
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("ds") / "a"
    _build(d, "--test-fraction", "0.25")
    return d


def test_same_seed_byte_identical_any_workers_different_seed_differs(built, tmp_path):
    _build(tmp_path / "b", "--test-fraction", "0.25", "--workers", "2")
    _build(tmp_path / "c", "--test-fraction", "0.25", seed=4)
    a, b, c = _files(built), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert any(k.endswith(".parquet") for k in a)
    assert a == b  # byte-identical, README included; --workers does not change the output
    parquet = [k for k in a if k.endswith(".parquet")]
    assert all(a[k] != c.get(k) for k in parquet)


def test_layout_card_and_load_dataset(built):
    import datasets

    names = sorted(p.name for p in (built / "data").iterdir())
    assert names == ["test-00000-of-00001.parquet", "train-00000-of-00001.parquet"]
    card = (built / "README.md").read_text()
    # no configs block: it makes datasets 5.2.0 cache by directory name (see dataset_card)
    assert card.startswith("---\n") and "configs:" not in card
    assert "## Question types" in card and "Yes/no questions" in card and "Numerical answers" in card
    ds = datasets.load_dataset(str(built))
    assert set(ds) == {"train", "test"}
    assert ds["train"].features == features()
    row = ds["train"][0]
    assert isinstance(row["image"], Image.Image) and row["image"].size == (112, 112)
    n_train = len(ds["train"])
    assert f"| train | {n_train} |" in card


def test_rows_valid_split_by_scene_and_pairs(built):
    train, test = _rows(built, "train"), _rows(built, "test")
    assert round(N * 0.25) == len({r["scene_id"] for r in test})
    assert not {r["scene_id"] for r in train} & {r["scene_id"] for r in test}
    for split_rows in (train, test):
        ids = [r["id"] for r in split_rows]
        assert len(ids) == len(set(ids))
        pairs: dict[str, list[str]] = {}
        for r in split_rows:
            assert tuple(r) == COLUMNS
            validate_row(r)
            pairs.setdefault(r["pair_id"], []).append(r["view"])
        assert all(sorted(v) == ["mirror", "original"] for v in pairs.values())
    assert {r["question_type"] for r in train} == set(QUESTION_TYPES)


def test_stored_rows_equal_generator_output(built):
    """What is stored is exactly what the generator computed (so the in-memory recompute of
    tests/world/test_questions.py covers stored data)."""
    cfg = B.BuildConfig(scenes=N, seed=3, test_fraction=0.25)
    test = B.test_scenes(N, 0.25, 3)
    stored = {r["id"]: r for r in _rows(built, "train") + _rows(built, "test")}
    assert test and set(range(N)) - test
    for i in range(N):
        for r in B.scene_rows(i, cfg):
            assert stored[r["id"]] == r


def test_mirror_pairs_on_stored_images_and_answers(built):
    rows = _rows(built, "train")
    by_pair: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_pair.setdefault(r["pair_id"], {})[r["view"]] = r
    n_lr = n_num = 0
    for views in by_pair.values():
        o, m = views["original"], views["mirror"]
        a = np.asarray(Image.open(io.BytesIO(o["image"]["bytes"])))
        b = np.asarray(Image.open(io.BytesIO(m["image"]["bytes"])))
        assert np.array_equal(b, a[:, ::-1])
        assert o["question"] == m["question"] and o["options"] == m["options"] and o["scene_id"] == m["scene_id"]
        assert json.loads(m["scene_json"])["mirrored"] is True
        meta = json.loads(o["meta"])
        if o["answer_value"] is not None:
            assert o["answer_value"] == pytest.approx(m["answer_value"], rel=1e-9, abs=1e-12)
            n_num += 1
        if o["question_type"] == "grounding_bbox":
            assert tuple(m["bbox"]) == flip_box(tuple(o["bbox"]), 112)
        if o["question_type"] == "rel_direction_allocentric" or (
            o["question_type"] == "rel_direction" and meta["template"] == "lateral"
        ):
            assert {o["options"][o["answer_index"]], m["options"][m["answer_index"]]} == {"left", "right"}
            n_lr += 1
    assert n_lr > 10 and n_num > 100


def test_bad_flags_name_the_flag(tmp_path, capsys):
    cases = [
        (["--scenes", "0"], "--scenes"),
        (["--scenes", "x"], "--scenes"),
        (["--test-fraction", "1.5"], "--test-fraction"),
        (["--image-size", "8"], "--image-size"),
        (["--workers", "0"], "--workers"),
        (["--seed", "-1"], "--seed"),
        (["--question-types", "bogus"], "--question-types"),
        (["--format", "csv"], "--format"),
    ]
    for argv, flag in cases:
        with pytest.raises(SystemExit) as e:
            main(["data", "build", "--out", str(tmp_path / "x"), *argv])
        assert e.value.code == 2
        assert flag in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_existing_out_is_an_error_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert main(["data", "build", "--out", str(out), "--scenes", "2", "--quiet"]) == 2
    assert "--out" in capsys.readouterr().err and (out / "keep.txt").exists()
    assert main(["data", "build", "--out", str(out), "--scenes", "2", "--quiet", "--overwrite"]) == 0
    assert not (out / "keep.txt").exists() and (out / "README.md").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["o"]


def test_failed_build_leaves_nothing(tmp_path, monkeypatch):
    real = B.scene_rows

    def flaky(index, cfg):
        if index == 3:
            raise RuntimeError("boom")
        return real(index, cfg)

    monkeypatch.setattr(B, "scene_rows", flaky)
    with pytest.raises(RuntimeError, match="boom"):
        B.build_dataset(str(tmp_path / "out"), B.BuildConfig(scenes=6, seed=0), progress=False)
    assert os.listdir(tmp_path) == []


def test_question_type_filter_and_shards(tmp_path):
    _build(tmp_path / "f", "--question-types", "object_count,grounding_bbox", "--shard-rows", "20",
           "--test-fraction", "0", scenes=8)  # fmt: skip
    names = sorted(p.name for p in (tmp_path / "f" / "data").iterdir())
    k = len(names)
    assert k > 1 and names[0] == f"train-00000-of-{k:05d}.parquet"
    rows = _rows(tmp_path / "f", "train")
    assert {r["question_type"] for r in rows} == {"object_count", "grounding_bbox"}
    assert all(pq.ParquetFile(tmp_path / "f" / "data" / n).metadata.num_rows <= 20 for n in names)
    assert "split: test" not in (tmp_path / "f" / "README.md").read_text()


def test_same_named_build_folders_load_their_own_rows(tmp_path):
    """Regression: a `configs:` block in the card made datasets 5.2.0 cache by folder name, so a
    second build in another folder called `out` loaded the first build's rows."""
    import datasets

    from spatialrl.data.build import BuildConfig, build_dataset

    ids = []
    for seed in (1, 2):
        out = tmp_path / f"run{seed}" / "out"
        build_dataset(str(out), BuildConfig(scenes=2, seed=seed, test_fraction=0.5))
        ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf-cache"))
        ids.append(ds["train"][0]["id"])
    assert ids[0].startswith("syn1-") and ids[1].startswith("syn2-")


@pytest.mark.parametrize("damage", ["truncated", "zeroed_middle"])
def test_from_an_unreadable_parquet_names_the_file(built, tmp_path, capsys, damage):
    import shutil

    src = tmp_path / "src"
    shutil.copytree(built, src)
    shard = sorted((src / "data").glob("train-*.parquet"))[0]
    data = bytearray(shard.read_bytes())
    if damage == "truncated":  # an interrupted copy
        data = data[: len(data) // 3]
    else:  # footer intact, pages broken: fails while rows are read
        data[100: len(data) // 2] = bytes(len(data) // 2 - 100)
    shard.write_bytes(bytes(data))
    rc = main(["data", "build", "--from", str(src), "--out", str(tmp_path / "out"), "--format", "trl", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and str(shard) in err and "not a readable parquet file" in err, err
    assert not (tmp_path / "out").exists()


def test_from_converts_a_build_made_before_multi_frame_rows(built, tmp_path):
    """A dataset written before the `frames` column existed still converts (as single-image rows)."""
    import shutil

    import pyarrow.parquet as pq

    src = tmp_path / "old"
    shutil.copytree(built, src)
    for shard in (src / "data").glob("*.parquet"):
        table = pq.read_table(shard)
        pq.write_table(table.drop_columns(["frames"]), shard)
    assert "frames" not in pq.read_schema(next((src / "data").glob("*.parquet"))).names
    rc = main(["data", "build", "--from", str(src), "--out", str(tmp_path / "out"), "--format", "verl", "--quiet"])
    assert rc == 0
    table = pq.read_table(tmp_path / "out" / "train.parquet")
    assert all(len(images) == 1 for images in table.column("images").to_pylist())
