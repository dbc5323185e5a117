"""MindCube scorer: official ``extract_answer``, settings from ids, translation kept out of the overall.

The fixture mirrors the unzipped ``data.zip`` of ``MLL-Lab/MindCube``: ``data/raw/MindCube_tinybench.jsonl``
with image paths relative to ``data/``.
"""

from __future__ import annotations

import json

import pytest

from spatialrl.cli import main as cli_main
from spatialrl.eval.benchmarks import BenchmarkDataError, get_benchmark, score_predictions
from spatialrl.eval.benchmarks.mindcube import official_extract, options_from_question, setting_from_id
from spatialrl.eval.predictions import read_predictions

QUESTION = "Based on these views, where is the lamp relative to the sofa? A. Above B. Under C. Front D. Behind"
# (id, gt, prediction or None for missing)
ROWS = [
    ("around_0001_q1", "A", "<answer>A. Above</answer>"),      # 1 (lenient 1)
    ("around_0002_q1", "B", "(B)"),                            # lone letter on the last line -> 1 (lenient 1)
    ("rotation_0003_q1", "C", "C"),                            # 1 (lenient 1)
    ("rotation_0004_q1", "D", "D. Behind\nWait, actually B."), # last "X." is "B." -> 0 (lenient: two letters -> 0)
    ("among_0005_q1", "A", None),                              # missing -> 0
    ("among_0006_q1", "B", "Under"),                           # no letter -> 0 (lenient: option text -> 1)
    ("translation_0007_q1", "A", "A"),                         # 1, excluded from the overall
    ("translation_0008_q1", "B", "B"),                         # 1, excluded from the overall
]


def write_mindcube(root, rows=ROWS):
    raw = root / "data" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    path = raw / "MindCube_tinybench.jsonl"
    path.write_text("".join(json.dumps({
        "id": rid, "category": ["spatial"], "type": "qa", "meta_info": [], "question": QUESTION,
        "images": [f"other_all_image/{rid}/1.jpg", f"other_all_image/{rid}/2.jpg"], "gt_answer": gt,
    }) + "\n" for rid, gt, _ in rows))
    return path


def write_predictions(path, rows=ROWS, extra=("among_9999_q1",)):
    with path.open("w") as fh:
        for rid, _, pred in rows:
            if pred is not None:
                fh.write(json.dumps({"id": rid, "prediction": pred}) + "\n")
        for rid in extra:
            fh.write(json.dumps({"id": rid, "prediction": "A"}) + "\n")
    return path


def test_official_extract_and_settings():
    assert official_extract("<answer>C. Front</answer>") == "C"
    assert official_extract("A or B") == "A"                 # the letter at the start of the text
    assert official_extract("My answer is D") == "D"
    assert official_extract("B is it. Also A.") == "A"       # the last "X." wins over everything
    assert official_extract("none") is None and official_extract("") is None
    assert setting_from_id("x_around_rotation") == "around" and setting_from_id("q_17") == "other"
    assert options_from_question(QUESTION) == ["Above", "Under", "Front", "Behind"]


# Fixture written from mll-lab-nu/MindCube @ 6d8fd9ac, src/evaluation/core/extractors.py::extract_answer
# (cd682b45 dropped the first commit's unanchored pattern "X before . / whitespace / end"), scored by
# src/evaluation/evaluator.py::BasicEvaluator. (id, gt, prediction, extracted letter, official correct)
OFFICIAL = [
    ("around_1", "A", "A or B", "A", 1),                        # line-start pattern (first commit: B)
    ("around_2", "B", "A or B", "A", 0),                        # (first commit: B, correct)
    ("around_3", "D", "THE END", None, 0),                      # no lone letter (first commit: D)
    ("around_4", "B", "Option B is closer than A", "B", 1),     # lone letter on the last line (first commit: A)
    ("rotation_5", "A", "It's between A and C", "A", 1),        # (first commit: C)
    ("rotation_6", "D", "D is wrong, E", "D", 1),               # line start (first commit: E)
    ("rotation_7", "C", "The answer is **C**", "C", 1),         # starred
    ("among_8", "B", "<Answer> B", "B", 1),                     # after the <Answer> tag
    ("among_9", "C", "Answer: C", "C", 1),
    ("among_10", "E", "Final: E", "E", 1),                      # lone letter on the last line
    ("among_11", "A", "B\nA", "B", 0),                          # "B\n" eats the newline "\nA" needs (first commit: A)
    ("among_12", "C", "C. Front\nHmm, B. Under", "B", 0),       # the last "X." wins
    ("translation_13", "A", "A or B", "A", 1),                  # scored, excluded from the overall
]


def test_official_rules_fixture(tmp_path):
    bench = get_benchmark("mindcube")
    rows = [(rid, gt, pred) for rid, gt, pred, _, _ in OFFICIAL]
    items = bench.load(write_mindcube(tmp_path, rows))
    assert [official_extract(pred) for _, _, pred, _, _ in OFFICIAL] == [r[3] for r in OFFICIAL]
    assert [bench.score_item(i, r[2]).score for i, r in zip(items, rows)] == [float(r[4]) for r in OFFICIAL]
    report = score_predictions(bench, items, read_predictions(write_predictions(tmp_path / "p.jsonl", rows, ())))
    # around 2/4, rotation 3/3, among 3/5; overall without translation 8/12, with it 9/13
    assert report["per_type"] == pytest.approx({"around": 50.0, "rotation": 100.0, "among": 60.0, "translation": 100.0})
    assert report["overall"] == pytest.approx(100 * 8 / 12)
    assert report["metrics"]["overall_all_settings"] == pytest.approx(100 * 9 / 13)


def test_load_and_prompts(tmp_path):
    write_mindcube(tmp_path)
    bench = get_benchmark("mindcube")
    items = bench.load(tmp_path / "data")
    assert [i.id for i in items] == [r[0] for r in ROWS]
    assert [i.question_type for i in items][:2] == ["around", "around"]
    assert items[0].images == [str(tmp_path / "data" / "other_all_image/around_0001_q1/1.jpg"),
                               str(tmp_path / "data" / "other_all_image/around_0001_q1/2.jpg")]
    assert items[0].prompt.startswith("[Task]\nYour task is to analyze the spatial arrangement of objects")
    assert items[0].prompt.endswith("'<answer>A. Above</answer>'.\n\n[Question]\n" + QUESTION)
    assert "<think>(replace with your reasoning here)</think>" in bench.prompt(items[0], "ff_rsn")
    assert bench.prompt(items[0], "think").endswith(
        "[Question]\n" + QUESTION + " First output the thinking process in <think> </think> tags and then output "
        "the final answer in <answer> </answer> tags.")
    # the file itself, and a directory holding several JSONL files but the tiny bench among them
    assert len(bench.load(tmp_path / "data" / "raw" / "MindCube_tinybench.jsonl")) == len(ROWS)
    (tmp_path / "data" / "raw" / "MindCube_train.jsonl").write_text("")
    assert len(bench.load(tmp_path / "data")) == len(ROWS)


def test_scores_by_hand(tmp_path):
    bench = get_benchmark("mindcube")
    items = bench.load(write_mindcube(tmp_path))
    report = score_predictions(bench, items, read_predictions(write_predictions(tmp_path / "p.jsonl")))
    # settings: around 2/2, rotation 1/2, among 0/2, translation 2/2
    assert report["per_type"] == pytest.approx({"among": 0.0, "around": 100.0, "rotation": 50.0, "translation": 100.0})
    # overall excludes translation: (2 + 1 + 0) / 6 = .5; with translation (3 + 2) / 8
    assert report["overall"] == pytest.approx(50.0)
    assert report["metrics"]["overall_all_settings"] == pytest.approx(62.5)
    # lenient (translation excluded): around 2, rotation 1, among 1 -> 4/6
    assert report["overall_lenient"] == pytest.approx(100 * 4 / 6)
    assert report["metrics"]["unparsed"] == {"count": 1, "ids": ["among_0006_q1"]}
    assert report["missing_ids"] == ["among_0005_q1"] and report["unknown_ids"] == ["among_9999_q1"]


def test_malformed_data_names_file_record_field(tmp_path):
    path = write_mindcube(tmp_path)
    lines = path.read_text().splitlines()
    bad = json.loads(lines[2])
    del bad["gt_answer"]
    lines[2] = json.dumps(bad)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BenchmarkDataError) as err:
        get_benchmark("mindcube").load(path)
    msg = str(err.value)
    assert str(path) in msg and "line 3 (id 'rotation_0003_q1')" in msg and "field 'gt_answer' is missing" in msg
    path.write_text(lines[0] + "\nnot json\n")
    with pytest.raises(BenchmarkDataError, match=r"line 2: not valid JSON"):
        get_benchmark("mindcube").load(path)
    other = tmp_path / "two"
    other.mkdir()
    (other / "a.jsonl").write_text(lines[0] + "\n")
    (other / "b.jsonl").write_text(lines[1] + "\n")
    with pytest.raises(BenchmarkDataError, match="several MindCube files"):
        get_benchmark("mindcube").load(other)


def test_cli_end_to_end(tmp_path):
    write_mindcube(tmp_path)
    out = tmp_path / "SCORES.json"
    assert cli_main(["eval", "score", "--benchmark", "mindcube", "--data", str(tmp_path / "data"),
                     "--predictions", str(write_predictions(tmp_path / "p.jsonl")), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["overall"] == pytest.approx(50.0) and report["overall_lenient"] == pytest.approx(100 * 4 / 6)
