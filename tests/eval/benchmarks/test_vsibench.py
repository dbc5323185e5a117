"""VSI-Bench scorer: official lmms-eval rules (fuzzy matching, MRA, level-merged relative direction).

The fixture is written in the published format (HF parquet ``test-00000-of-00001.parquet``:
id int64, dataset, scene_name, question_type, question, ground_truth string, options list or null).
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spatialrl.cli import main as cli_main
from spatialrl.eval.benchmarks import BenchmarkDataError, get_benchmark, score_predictions
from spatialrl.eval.benchmarks.vsibench import fuzzy_matching, official_number
from spatialrl.eval.predictions import read_predictions

SCHEMA = pa.schema([
    ("id", pa.int64()),
    ("dataset", pa.string()),
    ("scene_name", pa.string()),
    ("question_type", pa.string()),
    ("question", pa.string()),
    ("ground_truth", pa.string()),
    ("options", pa.list_(pa.string())),
])
OPTIONS = ["A. chair", "B. table", "C. sofa", "D. lamp"]

# (id, question_type, ground_truth, prediction or None for missing)
ROWS = [
    (1, "object_counting", "5", "5"),                                    # MRA 1
    (2, "object_counting", "5", "About 5"),                              # official "About" -> None -> 0; lenient 5 -> 1
    (3, "object_abs_distance", "2.5", "2.2"),                            # |2.2-2.5|/2.5 = .12 -> 8/10
    (4, "object_size_estimation", "80", "0.8 m"),                        # official 0.8 cm -> 0; lenient 80 cm -> 1
    (5, "room_size_estimation", "0", "0"),                               # gt = 0: official crashes; we score 0
    (6, "room_size_estimation", "20", None),                             # missing -> 0
    (7, "object_rel_direction_easy", "A", "A."),                         # 1
    (8, "object_rel_direction_easy", "B", "A or B"),                     # official reads "A" -> 0; lenient None -> 0
    (9, "object_rel_direction_medium", "C", "C"),                        # 1
    (10, "object_rel_direction_hard", "D", "The answer is D"),           # official "The" -> 0; lenient D -> 1
    (11, "object_rel_distance", "A", "<think>x</think><answer>A</answer>"),  # official 0; lenient 1
    (12, "route_planning", "B", "b"),                                    # case-insensitive -> 1
    (13, "obj_appearance_order", "C", "zzz"),                            # unparsable -> 0
]
MCA = {"object_rel_direction_easy", "object_rel_direction_medium", "object_rel_direction_hard",
       "object_rel_distance", "route_planning", "obj_appearance_order"}


def write_vsibench(root, rows=ROWS):
    root.mkdir(parents=True, exist_ok=True)
    records = [{
        "id": rid, "dataset": "scannet", "scene_name": f"scene{rid:04d}_00", "question_type": qtype,
        "question": f"Question {rid}?", "ground_truth": gt, "options": OPTIONS if qtype in MCA else None,
    } for rid, qtype, gt, _ in rows]
    path = root / "test-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(records, schema=SCHEMA), path)
    return path


def write_predictions(path, rows=ROWS, extra=("999",)):
    with path.open("w") as fh:
        for rid, _, _, pred in rows:
            if pred is not None:
                fh.write(json.dumps({"id": rid, "prediction": pred}) + "\n")
        for rid in extra:
            fh.write(json.dumps({"id": rid, "prediction": "3"}) + "\n")
    return path


def test_fuzzy_matching_and_float_as_official():
    assert fuzzy_matching("3 chairs.") == "3" and fuzzy_matching("A. chair") == "A"
    assert fuzzy_matching("2.5.") == "2.5" and fuzzy_matching(" A") == ""  # a leading space empties it
    assert official_number("1e3 m") == 1000.0 and official_number("3m") is None
    assert official_number("") is None and official_number("about 3") is None


def test_load_and_prompts(tmp_path):
    write_vsibench(tmp_path / "vsi")
    bench = get_benchmark("vsibench")
    items = bench.load(tmp_path / "vsi")
    assert [i.id for i in items] == [str(r[0]) for r in ROWS]
    first, mc = items[0], items[6]
    assert first.images == [str(tmp_path / "vsi" / "scannet" / "scene0001_00.mp4")]
    assert first.prompt == ("These are frames of a video.\nQuestion 1?\n"
                            "Please answer the question using a single word or phrase.")
    assert bench.prompt(first, "gpt4v").endswith("\nDo not response anything other than a single number!")
    assert mc.prompt == ("These are frames of a video.\nQuestion 7?\nOptions:\nA. chair\nB. table\nC. sofa\nD. lamp\n"
                         "Answer with the option's letter from the given choices directly.")
    think = bench.prompt(mc, "think")
    assert think.startswith("These are frames of a video.\nQuestion 7?\nOptions:\nA. chair")
    assert think.endswith("D. lamp First output the thinking process in <think> </think> tags and then output the "
                          "final answer in <answer> </answer> tags.")
    with pytest.raises(ValueError, match="unknown prompt variant"):
        bench.prompt(mc, "cot")
    # the file itself loads too
    assert len(bench.load(tmp_path / "vsi" / "test-00000-of-00001.parquet")) == len(ROWS)


def test_scores_by_hand(tmp_path):
    bench = get_benchmark("vsibench")
    items = bench.load(write_vsibench(tmp_path / "vsi"))
    preds = read_predictions(write_predictions(tmp_path / "p.jsonl"))
    report = score_predictions(bench, items, preds)
    pt = report["per_type"]
    # per type (official):
    #   counting (1 + 0) / 2 = .5; abs distance .8; size 0; room (0 + 0) / 2 = 0
    #   rel_direction easy (1 + 0) / 2, medium 1, hard 0; rel_distance 0; route 1; appearance 0
    assert pt["object_counting"] == pytest.approx(50.0)
    assert pt["object_abs_distance"] == pytest.approx(80.0)
    assert pt["object_size_estimation"] == 0.0 and pt["room_size_estimation"] == 0.0
    assert pt["object_rel_direction_easy"] == pytest.approx(50.0)
    assert pt["object_rel_direction_medium"] == 100.0 and pt["object_rel_direction_hard"] == 0.0
    # official table: rel_direction = (.5 + 1 + 0) / 3 = .5 (level means, not pooled 2/4)
    # overall = (.5 + .8 + 0 + 0 + .5 + 0 + 1 + 0) / 8 = 2.8 / 8 = .35
    table = report["metrics"]["official_table"]
    assert set(table) == {"object_counting", "object_abs_distance", "object_size_estimation", "room_size_estimation",
                          "object_rel_direction", "object_rel_distance", "route_planning", "obj_appearance_order"}
    assert table["object_rel_direction"] == pytest.approx(50.0)
    assert report["overall"] == pytest.approx(35.0)
    # lenient: counting 1, abs .8, size 1, room 0, rel_dir (.5 + 1 + 1) / 3, rel_dist 1, route 1, appearance 0
    #   = (1 + .8 + 1 + 0 + 2.5/3 + 1 + 1 + 0) / 8 = 5.633333 / 8 = .7041667
    assert report["overall_lenient"] == pytest.approx(100 * (4.8 + 2.5 / 3) / 8)
    assert report["metrics"]["official_table_lenient"]["object_size_estimation"] == pytest.approx(100.0)
    assert report["metrics"]["gt_zero_ids"] == ["5"]
    assert report["metrics"]["numerical_unparsed"] == 2  # "About 5" and the missing one
    assert report["missing_ids"] == ["6"] and report["unknown_ids"] == ["999"]
    assert report["counts"]["per_type"]["object_rel_direction_easy"] == 2


def test_item_scores(tmp_path):
    bench = get_benchmark("vsibench")
    items = {i.id: i for i in bench.load(write_vsibench(tmp_path / "vsi"))}
    assert bench.score_item(items["3"], "2.2 meters").score == pytest.approx(0.8)
    assert bench.score_item(items["3"], "2.2").parsed == pytest.approx(2.2)
    assert bench.score_item(items["3"], None).score == 0.0
    assert bench.score_item(items["8"], "B.").score == 1.0  # "B." -> "B"
    assert bench.score_item(items["8"], "(B)").score == 0.0  # no bracket stripping in the official rule
    assert bench.score_item(items["8"], "(B)").lenient == 1.0


def test_malformed_data_names_file_record_field(tmp_path):
    rows = ROWS[:2] + [(3, "object_abs_distance", "two meters", "2")]
    path = write_vsibench(tmp_path / "bad", rows)
    with pytest.raises(BenchmarkDataError) as err:
        get_benchmark("vsibench").load(path)
    msg = str(err.value)
    assert str(path) in msg and "row 2" in msg and "'ground_truth'" in msg
    # JSON Lines export with a missing field and an unknown question type
    jl = tmp_path / "test.jsonl"
    jl.write_text(json.dumps({"id": 1, "question_type": "object_counting", "question": "q", "ground_truth": "2"}) + "\n"
                  + json.dumps({"id": 2, "question": "q", "ground_truth": "2"}) + "\n")
    with pytest.raises(BenchmarkDataError, match=r"test\.jsonl: line 2 \(id 2\): field 'question_type' is missing"):
        get_benchmark("vsibench").load(jl)
    jl.write_text(json.dumps({"id": 1, "question_type": "object_height", "question": "q", "ground_truth": "2"}) + "\n")
    with pytest.raises(BenchmarkDataError, match="not a VSI-Bench question type"):
        get_benchmark("vsibench").load(jl)
    with pytest.raises(BenchmarkDataError, match="not found"):
        get_benchmark("vsibench").load(tmp_path / "nowhere")


def test_cli_end_to_end(tmp_path):
    write_vsibench(tmp_path / "vsi")
    preds = write_predictions(tmp_path / "p.jsonl")
    out = tmp_path / "SCORES.json"
    assert cli_main(["eval", "score", "--benchmark", "vsibench", "--data", str(tmp_path / "vsi"),
                     "--predictions", str(preds), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["benchmark"] == "vsibench" and report["overall"] == pytest.approx(35.0)
    assert report["counts"]["missing"] == 1 and report["counts"]["unknown"] == 1
