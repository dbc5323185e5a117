"""BLINK scorer: official ``analyze_answer`` (without GPT), exact match, macro over subtasks.

The fixture mirrors the HF snapshot of ``BLINK-Benchmark/BLINK``: one directory per subtask
with ``val-00000-of-00001.parquet`` (and a ``test`` file whose answers are hidden).
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
from spatialrl.eval.benchmarks.blink import ALL_SUBTASKS, SPATIAL_SUBTASKS, Blink, analyze_answer
from spatialrl.eval.predictions import read_predictions

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
SCHEMA = pa.schema([
    ("idx", pa.string()), ("question", pa.string()), ("sub_task", pa.string()),
    ("image_1", IMAGE), ("image_2", IMAGE), ("image_3", IMAGE), ("image_4", IMAGE),
    ("choices", pa.list_(pa.string())), ("answer", pa.string()), ("prompt", pa.string()),
    ("explanation", pa.string()),
])

# subtask -> [(n, choices, answer, prediction or None for missing)]
ROWS = {
    "Relative_Depth": [
        (1, ["A is closer", "B is closer"], "(A)", "(A)"),                      # 1
        (2, ["A is closer", "B is closer"], "(B)", "B"),                        # "B" -> "(B)" -> 1
        (3, ["A is closer", "B is closer"], "(A)", "The answer is (A)."),       # "(A)." no token: GPT -> 0; lenient 1
        (4, ["A is closer", "B is closer"], "(B)", "(A) or (B)"),               # two labels -> GPT -> 0; lenient 0
    ],
    "Spatial_Relation": [
        (1, ["yes", "no"], "(A)", "Point (B) is closer.\n\nFinal: (A)"),        # last paragraph wins -> 1; lenient 0
        (2, ["yes", "no"], "(B)", None),                                        # missing -> 0
        (3, ["yes", "no"], "(A)", "E"),                                         # "(E)" -> 0; lenient None -> 0
    ],
    "Counting": [
        (1, ["1", "2", "3", "4"], "(C)", "(C)"),                                # 1
        (2, ["1", "2", "3", "4"], "(D)", "D"),                                  # 1
    ],
}


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (0, 0, 255)).save(buf, format="PNG")
    return buf.getvalue()


def write_blink(root, rows=ROWS, hidden_test=True):
    for subtask, entries in rows.items():
        d = root / subtask
        d.mkdir(parents=True, exist_ok=True)
        for split in ("val", "test") if hidden_test else ("val",):
            records = []
            for n, choices, answer, _ in entries:
                prompt = f"Question {n}?\nSelect from the following choices.\n" + "\n".join(
                    f"({'ABCDE'[i]}) {c}" for i, c in enumerate(choices))
                records.append({
                    "idx": f"{split}_{subtask}_{n}", "question": f"Question {n}?",
                    "sub_task": subtask.replace("_", " "),
                    "image_1": {"bytes": _png(), "path": None}, "image_2": {"bytes": _png(), "path": None},
                    "image_3": None, "image_4": None, "choices": choices,
                    "answer": answer if split == "val" else "hidden", "prompt": prompt, "explanation": "",
                })
            pq.write_table(pa.Table.from_pylist(records, schema=SCHEMA), d / f"{split}-00000-of-00001.parquet")
    return root


def write_predictions(path, rows=ROWS, extra=("val_Jigsaw_1",)):
    with path.open("w") as fh:
        for subtask, entries in rows.items():
            for n, _, _, pred in entries:
                if pred is not None:
                    fh.write(json.dumps({"id": f"val_{subtask}_{n}", "prediction": pred}) + "\n")
        for rid in extra:
            fh.write(json.dumps({"id": rid, "prediction": "(A)"}) + "\n")
    return path


def test_analyze_answer_as_official():
    assert analyze_answer("A", 2) == "(A)" and analyze_answer("(B)", 2) == "(B)"
    assert analyze_answer("E", 2) == "(E)"                      # accepted as-is, then simply wrong
    assert analyze_answer("I choose (B) here", 2) == "(B)"
    assert analyze_answer("(C) is out of range", 2) is None    # not a valid label for 2 choices -> GPT
    assert analyze_answer("A.", 2) is None and analyze_answer(" A", 2) is None
    assert analyze_answer("(A) and (B)\n\nso (B)", 2) == "(B)"


def test_subtask_lists():
    assert len(ALL_SUBTASKS) == 14 and set(SPATIAL_SUBTASKS) <= set(ALL_SUBTASKS)
    assert get_benchmark("blink").subtasks == SPATIAL_SUBTASKS
    assert get_benchmark("blink_all").subtasks == ALL_SUBTASKS
    assert Blink(subtasks=["Counting"]).subtasks == ("Counting",)
    with pytest.raises(ValueError, match="unknown BLINK subtask"):
        Blink(subtasks=["Depth"])


def test_load_and_prompts(tmp_path):
    write_blink(tmp_path / "blink")
    items = get_benchmark("blink").load(tmp_path / "blink")
    assert sorted(i.question_type for i in items) == ["Relative_Depth"] * 4 + ["Spatial_Relation"] * 3
    item = next(i for i in items if i.id == "val_Relative_Depth_1")
    assert len(item.images) == 2 and item.images[0].size == (4, 4)
    assert item.prompt == "Question 1?\nSelect from the following choices.\n(A) A is closer\n(B) B is closer"
    assert get_benchmark("blink").prompt(item, "think").endswith(
        "(B) B is closer First output the thinking process in <think> </think> tags and then output the final answer "
        "in <answer> </answer> tags.")
    without = get_benchmark("blink").load(tmp_path / "blink", with_images=False)
    assert without[0].images == []
    # one subtask file on its own
    one = get_benchmark("blink_all").load(tmp_path / "blink" / "Counting" / "val-00000-of-00001.parquet")
    assert [i.id for i in one] == ["val_Counting_1", "val_Counting_2"]
    with pytest.raises(BenchmarkDataError, match="blink_all"):
        get_benchmark("blink").load(tmp_path / "blink" / "Counting" / "val-00000-of-00001.parquet")


def test_disclaimer_tasks(tmp_path):
    write_blink(tmp_path / "b", {"Jigsaw": [(1, ["x", "y"], "(A)", "(A)")]}, hidden_test=False)
    (item,) = get_benchmark("blink_all").load(tmp_path / "b")
    assert item.prompt.startswith("Disclaimer: This is not to make unfair assumptions")
    assert "\n\nQuestion 1?" in item.prompt


def test_scores_by_hand(tmp_path):
    write_blink(tmp_path / "blink")
    preds = read_predictions(write_predictions(tmp_path / "p.jsonl"))
    bench = get_benchmark("blink")
    report = score_predictions(bench, bench.load(tmp_path / "blink"), preds)
    # Relative_Depth 2/4 = .5, Spatial_Relation 1/3; overall = macro (.5 + 1/3) / 2 = 5/12
    assert report["per_type"] == pytest.approx({"Relative_Depth": 50.0, "Spatial_Relation": 100 / 3})
    assert report["overall"] == pytest.approx(100 * 5 / 12)
    # lenient: Relative_Depth 3/4 (items 1, 2, 3), Spatial_Relation 0/3 -> (.75 + 0) / 2
    assert report["overall_lenient"] == pytest.approx(37.5)
    m = report["metrics"]
    assert m["llm_fallback"] == {"count": 2, "ids": ["val_Relative_Depth_3", "val_Relative_Depth_4"]}
    assert m["overall_micro"] == pytest.approx(100 * 3 / 7)
    assert report["missing_ids"] == ["val_Spatial_Relation_2"]
    # the Counting predictions are not items of "blink": they are unknown ids there
    assert report["unknown_ids"] == ["val_Counting_1", "val_Counting_2", "val_Jigsaw_1"]

    everything = get_benchmark("blink_all")
    report = score_predictions(everything, everything.load(tmp_path / "blink"), preds)
    # + Counting 2/2: macro (.5 + 1/3 + 1) / 3 = 11/18; pooled 5/9
    assert report["overall"] == pytest.approx(100 * 11 / 18)
    assert report["metrics"]["overall_micro"] == pytest.approx(100 * 5 / 9)
    assert report["unknown_ids"] == ["val_Jigsaw_1"]


def test_malformed_data_names_file_record_field(tmp_path):
    write_blink(tmp_path / "b", {"Relative_Depth": [(1, ["x", "y"], "(A)", "(A)"), (2, ["x", "y"], "hidden", "(A)")]},
                hidden_test=False)
    path = tmp_path / "b" / "Relative_Depth" / "val-00000-of-00001.parquet"
    with pytest.raises(BenchmarkDataError) as err:
        get_benchmark("blink").load(tmp_path / "b")
    msg = str(err.value)
    assert str(path) in msg and "row 1 (id 'val_Relative_Depth_2')" in msg and "'answer'" in msg
    assert "hidden" in msg and "val split" in msg
    write_blink(tmp_path / "c", {"Relative_Depth": [(1, ["x", "y"], "(C)", "(A)")]}, hidden_test=False)
    with pytest.raises(BenchmarkDataError, match=r"field 'answer' is '\(C\)'; expected one of \(A\), \(B\)"):
        get_benchmark("blink").load(tmp_path / "c")


def test_cli_end_to_end(tmp_path):
    write_blink(tmp_path / "blink")
    out = tmp_path / "SCORES.json"
    assert cli_main(["eval", "score", "--benchmark", "blink_all", "--data", str(tmp_path / "blink"),
                     "--predictions", str(write_predictions(tmp_path / "p.jsonl")), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["benchmark"] == "blink_all" and report["overall"] == pytest.approx(100 * 11 / 18)
