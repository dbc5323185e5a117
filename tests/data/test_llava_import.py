"""`spatialrl data import`: LLaVA-style, MindCube and SAT records become schema rows with typed answers;
what cannot be typed or read is counted by reason, malformed input is an error naming file, record, field."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spatialrl.cli import main
from spatialrl.data.llava_import import Skip, numeric_type, options_in_question, type_answer
from spatialrl.data.load import load_split
from spatialrl.data.schema import row_images, validate_row


def _png(seed: int, size=(8, 6)) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _write_png(path: Path, seed: int, size=(8, 6)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_png(seed, size))


def _conv(*turns: str) -> list[dict]:
    return [{"from": "human" if i % 2 == 0 else "gpt", "value": t} for i, t in enumerate(turns)]


def _rows(out: Path) -> list[dict]:
    ds = load_split(out, "train")
    rows = [ds[i] for i in range(len(ds))]
    for r in rows:
        validate_row(r)
    return rows


def _report(out: Path) -> dict:
    return json.loads((out / "import_report.json").read_text())


# -- typing rules ------------------------------------------------------------------------


def test_options_in_question_finds_the_last_lettered_run():
    assert options_in_question("Which is closer? A. chair B. table C. the lamp") == ["chair", "table", "the lamp"]
    assert options_in_question("Which?\nOptions:\n(A) left\n(B) right\nAnswer with the letter.") == ["left", "right"]
    assert options_in_question("Go to plan A. Is it far?") == []
    assert options_in_question("A. only one option") == []


@pytest.mark.parametrize("question, answer, expected", [
    ("Where is the cup? A. left B. right", "B", ("compare_choice", "B", 1)),
    ("Where is the cup? A. left B. right", "(A)", ("compare_choice", "A", 0)),
    ("Where is the cup? A. left B. right", "B. right", ("compare_choice", "B", 1)),
    ("Where is the cup? A. left B. right", "right", ("compare_choice", "B", 1)),
    ("Where is the cup? A. left B. right", "<think>hmm</think><answer>A</answer>", ("compare_choice", "A", 0)),
    ("Is the cup left of the plate?", "Yes.", ("compare_yes_no", "yes", -1)),
    ("How many chairs are in the room?", "3", ("object_count", "3", -1)),
    ("How many chairs are in the room?", "There are three chairs.", ("object_count", "3", -1)),
    ("What is the length of the longest dimension of the bed, measured in centimeters?", "200",
     ("object_size", "2.00", -1)),
    ("What is the size of this room (in square meters)?", "25.5", ("room_size", "25.50", -1)),
    ("What is the distance between the sofa and the TV (in meters)?", "3.1", ("abs_distance", "3.10", -1)),
    ("How far is the chair from the camera?", "It is 150 cm away.", ("camera_depth", "1.50", -1)),
    ("How tall is the lamp?", "1.2 m", ("object_height", "1.20", -1)),
    # an answer with no unit of its own is in the question's unit, whatever words surround it
    ("How tall is the chair (in centimeters)?", "about 120", ("object_height", "1.20", -1)),
    ("How tall is the chair (in centimeters)?", "approximately 120.", ("object_height", "1.20", -1)),
    ("How tall is the chair (in centimeters)?", "~120", ("object_height", "1.20", -1)),
    ("How long is the room (in millimeters)?", "1,200", ("object_size", "1.20", -1)),
    ("How tall is the chair (in centimeters)?", "It is 1.2 m tall.", ("object_height", "1.20", -1)),
    # VSI-Bench's size question names height among the dimensions; the depth of an object is not
    # a camera depth
    ("What is the length of the longest dimension (length, width, or height) of the bed, measured in "
     "centimeters?", "200", ("object_size", "2.00", -1)),
    ("How far is the table from the camera, measured along its depth axis (in meters)?", "2", ("camera_depth", "2.00", -1)),
])
def test_type_answer_rules(question, answer, expected):
    typed = type_answer(question, answer)
    assert (typed["question_type"], typed["answer"], typed["answer_index"]) == expected
    if typed["answer_type"] == "numerical":
        assert typed["answer_value"] == pytest.approx(float(expected[1]))


def test_type_answer_keeps_a_quantity_without_a_clear_type_as_open_ended_with_value():
    typed = type_answer("What is the gap between them?", "About 0.5 meters.")
    assert (typed["question_type"], typed["answer_type"], typed["answer_value"], typed["dimension"]) == \
        ("open_ended", "open_ended", 0.5, "length")
    assert typed["answer"] == "About 0.5 meters."


@pytest.mark.parametrize("question, answer, reason", [
    ("Where is the cup? A. left B. right", "C", "choice_unresolved"),
    ("Where is the cup? A. left B. right", "B. left", "choice_unresolved"),
    ("Where is the cup? A. left B. right", "somewhere", "choice_unresolved"),
    ("How far is the sofa from the TV?", "3.1", "unit_unknown"),
    ("Describe the room.", "A cozy room with a sofa.", "free_text"),
    ("Is the cup on the left?", "Yes, it is on the left.", "free_text"),
])
def test_type_answer_skips_what_it_cannot_type(question, answer, reason):
    with pytest.raises(Skip) as info:
        type_answer(question, answer)
    assert info.value.reason == reason


def test_type_answer_boxes_must_be_pixels_of_one_image():
    q = "Where is the cup? Give its box."
    assert type_answer(q, "[1, 2, 5, 6]", image_sizes=[(8, 6)])["bbox"] == [1.0, 2.0, 5.0, 6.0]
    for sizes in ([(8, 6)], [(8, 6), (8, 6)]):
        with pytest.raises(Skip, match="box_not_pixels"):
            type_answer(q, "[0.1, 0.2, 0.5, 0.9]" if len(sizes) == 1 else "[1, 2, 5, 6]", image_sizes=sizes)
    with pytest.raises(Skip, match="box_not_pixels"):
        type_answer(q, "[1, 2, 50, 6]", image_sizes=[(8, 6)])


def test_keep_free_text_gives_open_ended_rows():
    typed = type_answer("Describe the room.", "A cozy room.", keep_free_text=True)
    assert (typed["question_type"], typed["answer_type"], typed["answer_value"]) == ("open_ended", "open_ended", None)


# -- the command ---------------------------------------------------------------------------


def _llava_set(root: Path) -> Path:
    """A LLaVA JSON list: one multi-turn single-image dialogue, one two-image record (SPAR style),
    one video record (VSI-590K style), one missing image, one escaping path."""
    _write_png(root / "imgs/a.png", 0)
    _write_png(root / "imgs/b1.png", 1)
    _write_png(root / "imgs/b2.png", 2)
    records = [
        {"id": "dlg", "image": "imgs/a.png", "conversations": _conv(
            "<image>\nHow many chairs are in the room?", "3",
            "Is the lamp to the left of the sofa?", "No.",
            "Which is closer to the camera?\nA. lamp\nB. sofa\nAnswer with the option's letter.", "B",
            "Describe the scene.", "A living room.",
            "How far is the lamp from the sofa?", "1.5")},
        {"id": "spar-1", "image": ["imgs/b1.png", "imgs/b2.png"], "conversations": [
            {"role": "user", "content": "<image><image>What is the distance between the two chairs (in meters)?"},
            {"role": "assistant", "content": "2.4"}]},
        {"id": "vsi-1", "video": "videos/scene.mp4", "conversations": _conv(
            "<|video|>\nThese are frames of a video.\nHow many tables are in the room?", "2")},
        {"id": "gone", "image": "imgs/missing.png", "conversations": _conv("<image>\nIs it red?", "yes")},
        {"id": "escape", "image": "../outside.png", "conversations": _conv("<image>\nIs it red?", "yes")},
    ]
    path = root / "set.json"
    path.write_text(json.dumps(records))
    return path


def test_import_llava_rows_types_and_skips(tmp_path, capsys):
    src = _llava_set(tmp_path / "src")
    out = tmp_path / "out"
    assert main(["data", "import", "--format", "llava", str(src), "--out", str(out), "--quiet"]) == 0
    rows = _rows(out)
    by_q = {r["question"]: r for r in rows}
    assert len(rows) == 4
    count = by_q["How many chairs are in the room?"]
    assert (count["question_type"], count["answer_type"], count["answer"], count["answer_value"]) == \
        ("object_count", "numerical", "3", 3.0)
    assert by_q["Is the lamp to the left of the sofa?"]["answer"] == "no"
    choice = by_q["Which is closer to the camera?\nA. lamp\nB. sofa\nAnswer with the option's letter."]
    assert (choice["options"], choice["answer_index"], choice["answer"]) == (["lamp", "sofa"], 1, "B")
    two = by_q["What is the distance between the two chairs (in meters)?"]
    assert two["image"] is None and len(two["frames"]) == 2 and len(row_images(two)) == 2
    assert (two["question_type"], two["answer_value"]) == ("abs_distance", 2.4)
    assert count["image"] is not None and count["frames"] == []
    assert {r["source"] for r in rows} == {"import"} and len({r["id"] for r in rows}) == 4
    meta = json.loads(count["meta"])
    assert (meta["record_id"], meta["turn"], meta["format"]) == ("dlg", 0, "llava")

    report = _report(out)
    assert (report["records"], report["questions"], report["rows"]) == (5, 9, 4)
    skipped = {k: v["count"] for k, v in report["skipped"].items()}
    assert skipped == {"video": 1, "missing_image": 1, "image_outside_root": 1, "free_text": 1, "unit_unknown": 1}
    assert "id gone" in report["skipped"]["missing_image"]["examples"][0]
    assert "turn 3" in report["skipped"]["free_text"]["examples"][0]
    card = (out / "README.md").read_text()
    assert "| missing_image | 1 |" in card and "id vsi-1" in card and "object_count" in card
    assert "skipped" in capsys.readouterr().out


def test_video_records_sample_frames_with_pyav(tmp_path):
    av = pytest.importorskip("av")
    src = _llava_set(tmp_path / "src")
    video = tmp_path / "src/videos/scene.mp4"
    video.parent.mkdir(parents=True)
    with av.open(str(video), "w") as c:
        s = c.add_stream("mpeg4", rate=5)
        s.width, s.height, s.pix_fmt = 16, 16, "yuv420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((16, 16, 3), i * 20, np.uint8), format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    out = tmp_path / "out"
    assert main(["data", "import", str(src), "--out", str(out), "--quiet", "--video-frames", "3"]) == 0
    row = next(r for r in _rows(out) if "tables" in r["question"])
    assert len(row["frames"]) == 3 and row["question"].startswith("These are frames of a video.")
    assert "video" not in _report(out)["skipped"]


def test_mindcube_and_sat_layouts(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = tmp_path / "MindCube/data"
    for i in range(4):
        _write_png(data / f"other_all_image/a/{i}.png", i)
    (data / "raw").mkdir()
    mc = {"id": "around_00001", "category": ["around"], "type": "rotation", "meta_info": [],
          "question": "Based on these four images, what is to the left of the sofa? A. Ottoman B. Table C. Nothing",
          "images": [f"other_all_image/a/{i}.png" for i in range(4)], "gt_answer": "B"}
    (data / "raw/MindCube_train.jsonl").write_text(json.dumps(mc) + "\n")
    sat = {"image_bytes": [{"bytes": _png(7), "path": None}], "question": "Is the chair to the left of the table?",
           "answers": ["left", "right"], "correct_answer": "right", "question_type": "obj_rel"}
    pq.write_table(pa.Table.from_pylist([sat]), tmp_path / "sat.parquet")
    out = tmp_path / "out"
    assert main(["data", "import", str(data / "raw/MindCube_train.jsonl"), str(tmp_path / "sat.parquet"),
                 "--out", str(out), "--quiet"]) == 0
    rows = _rows(out)
    mind, sat_row = rows
    assert (mind["answer"], mind["answer_index"], mind["options"], len(mind["frames"])) == \
        ("B", 1, ["Ottoman", "Table", "Nothing"], 4)
    assert (sat_row["answer"], sat_row["options"], sat_row["question_type"]) == \
        ("B", ["left", "right"], "compare_choice")
    assert sat_row["question"].endswith("A. left\nB. right\nAnswer with the option's letter.")
    assert json.loads(sat_row["meta"])["source_question_type"] == "obj_rel"
    assert _report(out)["layouts"] == {"mindcube": 1, "sat": 1}


def test_malformed_record_is_an_error_naming_file_record_and_field(tmp_path, capsys):
    _write_png(tmp_path / "a.png", 0)
    good = {"id": "ok", "image": "a.png", "conversations": _conv("Is it red?", "yes")}
    bad = {"id": "bad", "image": "a.png", "conversations": [{"from": "robot", "value": "hi"}]}
    src = tmp_path / "set.jsonl"
    src.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    out = tmp_path / "out"
    assert main(["data", "import", str(src), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{src}:2" in err and "'conversations'[0].from" in err and "robot" in err
    assert not out.exists() and not list(tmp_path.glob(".out.tmp-*"))
    assert main(["data", "import", str(src), "--out", str(out), "--quiet", "--skip-bad-records"]) == 0
    assert len(_rows(out)) == 1 and _report(out)["skipped"]["bad_record"]["count"] == 1


def test_a_malformed_image_field_counts_its_questions(tmp_path):
    """Skipped questions add up: questions = rows + questions skipped, whatever the reason."""
    _write_png(tmp_path / "a.png", 0)
    good = {"id": "ok", "image": "a.png", "conversations": _conv("Is it red?", "yes")}
    bad = {"id": "bad", "image": 12, "conversations": _conv("Is it red?", "yes") + _conv("Is it blue?", "no")}
    src = tmp_path / "set.jsonl"
    src.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    out = tmp_path / "out"
    assert main(["data", "import", str(src), "--out", str(out), "--quiet", "--skip-bad-records"]) == 0
    report = _report(out)
    assert report["skipped"]["bad_image_field"]["count"] == 2 and "bad_record" not in report["skipped"]
    assert report["questions"] == report["rows"] + sum(v["count"] for v in report["skipped"].values())


@pytest.mark.parametrize("record, field", [
    ({"id": 1, "image": "a.png", "question": "Q?", "answers": "left", "correct_answer": "left"}, "'answers'"),
    ({"id": 1, "image": 5, "conversations": _conv("Is it red?", "yes")}, "field 'image':"),
    ({"id": 1, "images": ["a.png", {"path": None}], "conversations": _conv("Is it red?", "yes")}, "'images[1]'"),
    ({"id": 1, "image": "a.png"}, "unknown record layout"),
    ({"id": 1, "image": "a.png", "question": "Q? A. x B. y", "gt_answer": ""}, "'gt_answer'"),
])
def test_bad_fields_are_named(tmp_path, capsys, record, field):
    _write_png(tmp_path / "a.png", 0)
    src = tmp_path / "set.json"
    src.write_text(json.dumps([record]))
    assert main(["data", "import", str(src), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{src} record 0" in err and field in err


def test_limit_image_root_overwrite_and_nothing_importable(tmp_path, capsys):
    _write_png(tmp_path / "pics/a.png", 0)
    recs = [{"id": f"r{i}", "image": "a.png", "conversations": _conv("Is it red?", "yes")} for i in range(3)]
    src = tmp_path / "meta/set.jsonl"
    src.parent.mkdir()
    src.write_text("".join(json.dumps(r) + "\n" for r in recs))
    out = tmp_path / "out"
    assert main(["data", "import", str(src), "--out", str(out), "--quiet", "--limit", "2",
                 "--image-root", str(tmp_path / "pics")]) == 0
    assert len(_rows(out)) == 2
    assert main(["data", "import", str(src), "--out", str(out), "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err
    # without --image-root the images are looked for beside the JSON: all missing, nothing to write
    assert main(["data", "import", str(src), "--out", str(out), "--quiet", "--overwrite"]) == 2
    assert "missing_image 3" in capsys.readouterr().err
    assert len(_rows(out)) == 2  # the earlier dataset is untouched


def test_an_objects_depth_is_not_a_camera_depth():
    assert numeric_type("What is the depth of the table (in meters)?", "length") != "camera_depth"
    assert numeric_type("What is the depth of the table from the camera?", "length") == "camera_depth"
