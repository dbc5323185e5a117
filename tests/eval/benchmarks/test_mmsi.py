"""MMSI-Bench scorer: official post-prompt, backtick/brace/word-boundary extraction, pooled accuracy.

Fixtures in the published formats: ``MMSI_Bench.parquet`` (id, images as a list of encoded
images, question_type, question, answer, thought) and VLMEvalKit's ``MMSI_bench.tsv``.
"""

from __future__ import annotations

import base64
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from spatialrl.cli import main as cli_main
from spatialrl.eval.benchmarks import BenchmarkDataError, get_benchmark, score_predictions
from spatialrl.eval.benchmarks.mmsi import official_extract, options_from_question
from spatialrl.eval.predictions import read_predictions

SCHEMA = pa.schema([
    ("id", pa.int64()), ("images", pa.list_(pa.binary())), ("question_type", pa.string()),
    ("question", pa.string()), ("answer", pa.string()), ("thought", pa.string()),
])
QUESTION = "Which way did the camera turn between the two images?\nOptions: A: Left, B: Right, C: Up, D: Down"
CAM_OBJ = "Positional Relationship (Cam.\u2013Obj.)"
# (id, question_type, answer, prediction or None for missing)
ROWS = [
    (0, CAM_OBJ, "A", "`A`"),                       # 1
    (1, CAM_OBJ, "B", "A or B"),                    # "A" is followed by " o" -> skipped; "B" -> 1; lenient 0
    (2, "Motion (Cam.)", "C", "The answer is C."),  # 1
    (3, "Motion (Cam.)", "D", "A chair is in front"),  # no letter -> failed -> 0
    (4, "MSR", "A", None),                          # missing -> 0
    (5, "MSR", "B", "{B}"),                         # 1
    (6, "MSR", "B", "Right"),                       # failed -> 0; lenient option text -> 1
    (7, "MSR", "D", "Down"),                        # failed -> 0; lenient 1
]


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (5, 5), (9, 9, 9)).save(buf, format="JPEG")
    return buf.getvalue()


def write_parquet(root, rows=ROWS):
    root.mkdir(parents=True, exist_ok=True)
    records = [{"id": rid, "images": [_jpeg(), _jpeg()], "question_type": qt, "question": QUESTION, "answer": ans,
                "thought": "..."} for rid, qt, ans, _ in rows]
    path = root / "MMSI_Bench.parquet"
    pq.write_table(pa.Table.from_pylist(records, schema=SCHEMA), path)
    return path


def write_predictions(path, rows=ROWS, extra=(1000,)):
    with path.open("w") as fh:
        for rid, _, _, pred in rows:
            if pred is not None:
                fh.write(json.dumps({"id": rid, "prediction": pred}) + "\n")
        for rid in extra:
            fh.write(json.dumps({"id": rid, "prediction": "A"}) + "\n")
    return path


def test_official_extract():
    assert official_extract("``C``") == "C" and official_extract("`D` is it") == "D"
    assert official_extract("A or B") == "B"            # the README's rule, not a hedge detector
    assert official_extract("A chair") is None and official_extract("a") is None
    assert official_extract("\\boxed{B}") == "B"
    assert options_from_question(QUESTION) == ["Left", "Right", "Up", "Down"]
    assert options_from_question("no options here") == []


def test_load_and_prompts(tmp_path):
    bench = get_benchmark("mmsi")
    items = bench.load(write_parquet(tmp_path / "mmsi"))
    assert [i.id for i in items] == [str(r[0]) for r in ROWS]
    assert len(items[0].images) == 2 and items[0].images[0].size == (5, 5)
    assert items[0].options == ["Left", "Right", "Up", "Down"]
    assert items[0].prompt == QUESTION + (
        "\nAnswer with the option's letter from the given choices directly. Enclose the option's letter within ``.")
    assert bench.prompt(items[0], "think") == QUESTION + (
        " First output the thinking process in <think> </think> tags and then output the final answer in "
        "<answer> </answer> tags.")
    assert bench.load(tmp_path / "mmsi", with_images=False)[0].images == []


def test_tsv_layout(tmp_path):
    tsv = tmp_path / "MMSI_bench.tsv"
    img = base64.b64encode(_jpeg()).decode()
    tsv.write_text("index\timage\tquestion\tanswer\tcategory\n"
                   f"7\t{json.dumps([img, img])}\tQ?\tC\tMSR\n"
                   f"8\t{img}\tQ?\tA\tMotion (Cam.)\n")
    items = get_benchmark("mmsi").load(tsv)
    assert [(i.id, i.question_type, i.answer, len(i.images)) for i in items] == [
        ("7", "MSR", "C", 2), ("8", "Motion (Cam.)", "A", 1)]


def test_scores_by_hand(tmp_path):
    bench = get_benchmark("mmsi")
    items = bench.load(write_parquet(tmp_path / "mmsi"))
    report = score_predictions(bench, items, read_predictions(write_predictions(tmp_path / "p.jsonl")))
    # per category: Cam-Obj 2/2, Motion (Cam.) 1/2, MSR 1/4
    assert report["per_type"] == pytest.approx({CAM_OBJ: 100.0, "Motion (Cam.)": 50.0, "MSR": 25.0})
    # overall pools the items: 4/8 (a macro average would be (1 + .5 + .25) / 3)
    assert report["overall"] == pytest.approx(50.0)
    # lenient: items 0, 2, 5, 6, 7 -> 5/8
    assert report["overall_lenient"] == pytest.approx(62.5)
    assert report["metrics"]["extraction_failed"] == {"count": 3, "ids": ["3", "6", "7"]}
    assert report["missing_ids"] == ["4"] and report["unknown_ids"] == ["1000"]


def test_malformed_data_names_file_record_field(tmp_path):
    rows = ROWS[:3] + [(3, "MSR", "E", "E")]
    path = write_parquet(tmp_path / "bad", rows)
    with pytest.raises(BenchmarkDataError) as err:
        get_benchmark("mmsi").load(path)
    assert str(path) in str(err.value) and "row 3 (id 3)" in str(err.value) and "'answer'" in str(err.value)
    jl = tmp_path / "mmsi.jsonl"
    jl.write_text(json.dumps({"id": 1, "question": "q", "answer": "A"}) + "\n")
    with pytest.raises(BenchmarkDataError, match=r"line 1 \(id 1\): field 'question_type' is missing"):
        get_benchmark("mmsi").load(jl)


def test_cli_end_to_end(tmp_path):
    write_parquet(tmp_path / "mmsi")
    out = tmp_path / "SCORES.json"
    assert cli_main(["eval", "score", "--benchmark", "mmsi", "--data", str(tmp_path / "mmsi"),
                     "--predictions", str(write_predictions(tmp_path / "p.jsonl")), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["overall"] == pytest.approx(50.0) and report["counts"]["missing"] == 1
