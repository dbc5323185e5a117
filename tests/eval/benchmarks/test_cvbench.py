"""CV-Bench scorer: Cambrian-1 matching, the official source-weighted overall.

Fixtures are written in the published formats: ``test.parquet`` (image struct embedded) and
``test.jsonl`` + ``img/`` (images by ``filename``), fields as on the dataset card.
"""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from spatialrl.cli import main as cli_main
from spatialrl.eval.benchmarks import BenchmarkDataError, get_benchmark, score_predictions
from spatialrl.eval.benchmarks.cvbench import TRAILING_2D, cambrian_extract
from spatialrl.eval.predictions import read_predictions

# (idx, source, task, choices, answer, prediction or None for missing)
ROWS = [
    (0, "ADE20K", "Count", ["3", "2", "1", "0"], "(B)", "(B)"),                 # 1
    (1, "ADE20K", "Count", ["3", "2", "1", "0"], "(A)", "3"),                   # 2D: option text "3" -> 0; lenient 1
    (2, "ADE20K", "Relation", ["left", "right"], "(A)", "A or B"),              # reads "a" -> 1; lenient 0
    (3, "COCO", "Count", ["1", "2", "3", "4"], "(C)", "The answer is C."),      # 1
    (4, "COCO", "Relation", ["above", "below"], "(B)", "I think it is below"),  # reads "i" -> 0; lenient 1
    (5, "Omni3D", "Depth", ["lamp", "chair"], "(A)", None),                     # missing -> 0
    (6, "Omni3D", "Depth", ["lamp", "chair"], "(B)", "(B) chair"),              # 1
    (7, "Omni3D", "Distance", ["table", "sofa"], "(A)", "xyz"),                 # 0
    (8, "Omni3D", "Distance", ["table", "sofa"], "(B)", "<answer>B</answer>"),  # reads "<" -> 0; lenient 1
]
TYPES = {"Count": "2D", "Relation": "2D", "Depth": "3D", "Distance": "3D"}
SCHEMA = pa.schema([
    ("idx", pa.int64()), ("type", pa.string()), ("task", pa.string()),
    ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
    ("question", pa.string()), ("choices", pa.list_(pa.string())), ("answer", pa.string()),
    ("prompt", pa.string()), ("filename", pa.string()), ("source", pa.string()),
])


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (0, 120, 0)).save(buf, format="PNG")
    return buf.getvalue()


def _record(row, with_image=True):
    idx, source, task, choices, answer, _ = row
    question = f"Question {idx}?"
    prompt = question + " Select from the following choices.\n" + "\n".join(
        f"({'ABCD'[i]}) {c}" for i, c in enumerate(choices))
    rec = {"idx": idx, "type": TYPES[task], "task": task, "question": question, "choices": choices, "answer": answer,
           "prompt": prompt, "filename": f"img/{TYPES[task]}/{task.lower()}/{source.lower()}_{idx}.png",
           "source": source}
    if with_image:
        rec["image"] = {"bytes": _png(), "path": None}
    return rec


def write_parquet(root, rows=ROWS):
    root.mkdir(parents=True, exist_ok=True)
    path = root / "test.parquet"
    pq.write_table(pa.Table.from_pylist([_record(r) for r in rows], schema=SCHEMA), path)
    return path


def write_jsonl(root, rows=ROWS):
    root.mkdir(parents=True, exist_ok=True)
    path = root / "test.jsonl"
    path.write_text("".join(json.dumps(_record(r, with_image=False)) + "\n" for r in rows))
    return path


def write_predictions(path, rows=ROWS, extra=("cv-unknown",)):
    with path.open("w") as fh:
        for row in rows:
            if row[5] is not None:
                fh.write(json.dumps({"id": row[0], "prediction": row[5]}) + "\n")
        for rid in extra:
            fh.write(json.dumps({"id": rid, "prediction": "(A)"}) + "\n")
    return path


def test_cambrian_extract():
    assert cambrian_extract("(B)") == "b" and cambrian_extract("B.") == "b"
    assert cambrian_extract("The answer is (C).") == "c"
    # official quirk: "answer is" is split off before "answer is:" is tried, so the colon stays
    assert cambrian_extract("The answer is: (C).") == ":"
    assert cambrian_extract("Answer: D") == "d" and cambrian_extract("A or B") == "a"
    assert cambrian_extract("") == "" and cambrian_extract("12") == "1"
    # omni_test.py strips trailing ".:,", ade_test.py / coco_test.py only "."
    assert cambrian_extract("(,") == "" and cambrian_extract("(,", TRAILING_2D) == ","
    assert cambrian_extract("(:") == "" and cambrian_extract("(:", TRAILING_2D) == ":"


# Fixture written from the authors' scripts (cambrian-mllm/cambrian @ 539ffc32:
# eval/eval/ade/ade_test.py, coco/coco_test.py: letter only; omni/omni_test.py: letter or option text).
# (idx, source, task, choices, answer, prediction, official correct)
OFFICIAL = [
    (10, "ADE20K", "Count", ["3", "2", "1", "0"], "(C)", "1", 0),                 # bare option text, 2D: wrong
    (11, "COCO", "Count", ["1", "2", "3", "4"], "(B)", "2", 0),                   # bare option text, 2D: wrong
    (12, "ADE20K", "Count", ["3", "2", "1", "0"], "(C)", "(C)", 1),               # brackets stripped
    (13, "COCO", "Count", ["1", "2", "3", "4"], "(B)", "The answer is A. No, the answer is B.", 1),  # last "answer is"
    (14, "ADE20K", "Relation", ["left", "right"], "(A)", "A or B", 1),            # first character
    (15, "COCO", "Relation", ["above", "below"], "(B)", "Answer: (B).", 1),
    (16, "ADE20K", "Relation", ["left", "right"], "(B)", "right", 0),             # reads "r"
    (17, "COCO", "Count", ["1", "2", "3", "4"], "(C)", "The answer is: (C).", 0),  # reads ":"
    (18, "Omni3D", "Depth", ["2", "3"], "(B)", "3", 1),                           # 3D: the option text counts
    (19, "Omni3D", "Depth", ["lamp", "chair"], "(A)", "lamp", 0),                 # reads "l", not the option text
    (20, "Omni3D", "Distance", ["table", "sofa"], "(B)", "THE ANSWER IS B", 1),   # lower-cased first
    (21, "Omni3D", "Distance", ["table", "sofa"], "(A)", "answer: a,", 1),
    (22, "Omni3D", "Depth", ["2", "3"], "(A)", "3", 0),
]


def test_official_rules_fixture(tmp_path):
    rows = [r[:6] for r in OFFICIAL]
    bench = get_benchmark("cvbench")
    items = bench.load(write_jsonl(tmp_path / "cv", rows), with_images=False)
    expected = {str(r[0]): float(r[6]) for r in OFFICIAL}
    assert {i.id: bench.score_item(i, r[5]).score for i, r in zip(items, rows)} == expected
    report = score_predictions(bench, items, read_predictions(write_predictions(tmp_path / "p.jsonl", rows, ())))
    # ADE20K 2/4, COCO 2/4, Omni3D 3/5: ((.5 + .5) / 2 + .6) / 2 = .55
    assert report["metrics"]["per_source"] == pytest.approx({"ADE20K": 50.0, "COCO": 50.0, "Omni3D": 60.0})
    assert report["overall"] == pytest.approx(55.0)


def test_load_both_layouts_and_prompts(tmp_path):
    bench = get_benchmark("cvbench")
    write_parquet(tmp_path / "cv")
    write_jsonl(tmp_path / "cv")
    from_parquet = bench.load(tmp_path / "cv")                      # prefers the parquet (images embedded)
    from_jsonl = bench.load(tmp_path / "cv", with_images=False)     # prefers the JSON Lines file
    assert [i.id for i in from_parquet] == [i.id for i in from_jsonl] == [str(r[0]) for r in ROWS]
    assert from_parquet[0].images[0].size == (8, 6)
    assert from_jsonl[0].images == []
    assert bench.load(tmp_path / "cv" / "test.jsonl")[0].images == [str(tmp_path / "cv" / "img/2D/count/ade20k_0.png")]
    item = from_parquet[2]
    assert item.prompt == ("Question 2? Select from the following choices.\n(A) left\n(B) right\n"
                           "Answer with the option's letter from the given choices directly.")
    assert bench.prompt(item, "lmms_eval") == (
        "Note: You only need to respond with A, B without providing any additional information.\n\n"
        "Question 2? Select from the following choices.\n(A) left\n(B) right")
    assert bench.prompt(item, "think").endswith("(B) right First output the thinking process in <think> </think> "
                                                "tags and then output the final answer in <answer> </answer> tags.")
    assert bench.type_of(item) == "ADE20K/Relation"


def test_scores_by_hand(tmp_path):
    bench = get_benchmark("cvbench")
    items = bench.load(write_parquet(tmp_path / "cv"))
    report = score_predictions(bench, items, read_predictions(write_predictions(tmp_path / "p.jsonl")))
    # per source (official): ADE20K 2/3, COCO 1/2 = .5, Omni3D 1/4 = .25
    # overall = ((2/3 + .5) / 2 + .25) / 2 = (7/12 + 3/12) / 2 = 5/12   (the pooled mean would be 4/9)
    assert report["overall"] == pytest.approx(100 * 5 / 12)
    assert report["per_type"] == pytest.approx({"ADE20K/Count": 50.0, "ADE20K/Relation": 100.0, "COCO/Count": 100.0,
                                                "COCO/Relation": 0.0, "Omni3D/Depth": 50.0, "Omni3D/Distance": 0.0})
    m = report["metrics"]
    assert m["per_source"] == pytest.approx({"ADE20K": 100 * 2 / 3, "COCO": 50.0, "Omni3D": 25.0})
    # per task: Count 2/3, Relation 1/2, Depth 1/2, Distance 0/2
    assert m["per_task"] == pytest.approx({"Count": 100 * 2 / 3, "Depth": 50.0, "Distance": 0.0, "Relation": 50.0})
    assert m["accuracy_2d"] == pytest.approx(100 * 7 / 12) and m["accuracy_3d"] == pytest.approx(25.0)
    # lenient: ADE20K 2/3 (the "A or B" item fails), COCO 2/2, Omni3D 2/4
    #   overall = ((2/3 + 1) / 2 + .5) / 2 = 2/3
    assert report["overall_lenient"] == pytest.approx(100 * 2 / 3)
    assert m["per_source_lenient"] == pytest.approx({"ADE20K": 100 * 2 / 3, "COCO": 100.0, "Omni3D": 50.0})
    assert report["missing_ids"] == ["5"] and report["unknown_ids"] == ["cv-unknown"]


def test_subset_without_a_source(tmp_path):
    # Only 2D items: overall = 2D accuracy = (ADE20K + COCO) / 2 = (2/3 + .5) / 2
    bench = get_benchmark("cvbench")
    items = bench.load(write_jsonl(tmp_path / "cv", ROWS[:5]), with_images=False)
    report = score_predictions(bench, items, read_predictions(write_predictions(tmp_path / "p.jsonl", ROWS[:5], ())))
    assert report["overall"] == pytest.approx(100 * 7 / 12)


def test_malformed_data_names_file_record_field(tmp_path):
    rows = list(ROWS)
    rows[3] = (3, "COCO", "Count", ["1", "2", "3", "4"], "C", "C")
    path = write_jsonl(tmp_path / "bad", rows)
    with pytest.raises(BenchmarkDataError) as err:
        get_benchmark("cvbench").load(path)
    assert str(path) in str(err.value) and "line 4 (id 3)" in str(err.value) and "'answer'" in str(err.value)
    rows[3] = (3, "KITTI", "Count", ["1", "2", "3", "4"], "(C)", "C")
    with pytest.raises(BenchmarkDataError, match=r"line 4 \(id 3\): field 'source' is 'KITTI'"):
        get_benchmark("cvbench").load(write_jsonl(tmp_path / "bad", rows))
    rows[3] = (3, "COCO", "Count", ["1", "2"], "(C)", "C")
    with pytest.raises(BenchmarkDataError, match="only 2 choices"):
        get_benchmark("cvbench").load(write_jsonl(tmp_path / "bad", rows))


def test_cli_end_to_end(tmp_path):
    write_parquet(tmp_path / "cv")
    out = tmp_path / "SCORES.json"
    assert cli_main(["eval", "score", "--benchmark", "cvbench", "--data", str(tmp_path / "cv"),
                     "--predictions", str(write_predictions(tmp_path / "p.jsonl")), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["overall"] == pytest.approx(100 * 5 / 12) and report["overall_lenient"] == pytest.approx(100 * 2 / 3)
