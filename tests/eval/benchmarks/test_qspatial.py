"""Q-Spatial-Bench scorer: official VLMEvalKit rules, lenient parse, SVQA-R1 numeric metrics.

The fixture is written in the published format (HF parquet: question, answer_value float32,
answer_unit, question_type, image_path, image struct) by ``write_qspatial``.
"""

from __future__ import annotations

import io
import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from spatialrl.cli import main as cli_main
from spatialrl.eval.benchmarks import (
    BenchmarkDataError,
    get_benchmark,
    score_predictions,
)
from spatialrl.eval.benchmarks.qspatial import official_parse, official_success
from spatialrl.eval.predictions import read_predictions
from spatialrl.prompts import QSPATIAL_SYSTEM_PROMPT

SCHEMA = pa.schema([
    ("question", pa.string()),
    ("answer_value", pa.float32()),
    ("answer_unit", pa.string()),
    ("question_type", pa.string()),
    ("image_path", pa.string()),
    ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
])


def _png(w: int = 8, h: int = 6) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


# (answer_value, answer_unit, question_type, prediction or None for missing)
PLUS_ROWS = [
    (0.96, "meters", "horizontal", "Looking at the stools... \\scalar{1} \\distance_unit{meter}"),  # 0
    (36.0, "inches", "horizontal", "\\scalar{2-3} \\distance_unit{feet}"),                           # 1
    (2.0, "meters", "vertical", "<think>tall shelf</think><answer>about 5 m</answer>"),              # 2
    (150.0, "centimeters", "vertical", "\\scalar{1.2} \\distance_unit{yards}"),                      # 3
    (0.0, "meters", "horizontal", "\\scalar{0} \\distance_unit{m}"),                                 # 4
    (3.0, "feet", "horizontal", "First \\scalar{1.5} \\distance_unit{m}, finally \\scalar{1} \\distance_unit{m}"),  # 5
    (1.0, "meters", "vertical", None),                                                               # 6 missing
    (50.0, "cm", "vertical", "The answer is 0.6 m."),                                                # 7
    (2.0, "meters", "horizontal", "I cannot tell."),                                                 # 8
    (1.0, "meters", "vertical", "\\scalar{about} \\distance_unit{m}"),                               # 9
    (100.0, "cm", "horizontal", "\\scalar{1.8} \\distance_unit{m}"),                                 # 10
]


def write_qspatial(root, rows=PLUS_ROWS, split="QSpatial_plus", embed=True):
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    records = []
    for i, (value, unit, qtype, _) in enumerate(rows):
        records.append({
            "question": f"What is the minimum distance between object {i} and the wall?",
            "answer_value": value, "answer_unit": unit, "question_type": qtype,
            "image_path": f"images/{i}.jpg",
            "image": {"bytes": _png(), "path": f"{i}.png"} if embed else None,
        })
    path = data / f"{split}-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(records, schema=SCHEMA), path)
    return path


def write_predictions(path, rows=PLUS_ROWS, split="QSpatial_plus", extra=()):
    with path.open("w") as fh:
        for i, row in enumerate(rows):
            if row[3] is not None:
                fh.write(json.dumps({"id": f"{split}/{i}", "prediction": row[3]}) + "\n")
        for rid in extra:
            fh.write(json.dumps({"id": rid, "prediction": "\\scalar{1} \\distance_unit{m}"}) + "\n")
    return path


@pytest.fixture
def plus_dir(tmp_path):
    write_qspatial(tmp_path / "qs")
    return tmp_path / "qs"


def test_official_parser_matches_vlmevalkit():
    assert official_parse("\\scalar{1} \\distance_unit{meter}") == (100.0, "ok")
    assert official_parse("\\scalar{2-3} \\distance_unit{feet}") == (2.5 * 30.48, "ok")  # mean of 2 and 3
    assert official_parse("scalar{3} distance_unit{CM}") == (3.0, "ok")  # backslash optional, unit lower-cased
    assert official_parse("\\scalar{5} \\distance_unit{mm}") == (0.5, "ok")
    assert official_parse("\\scalar{1,000} \\distance_unit{cm}") == (0.5, "ok")  # ["1", "000"] -> mean of 1 and 0
    value, status = official_parse("\\scalar{1} \\distance_unit{ m}")  # not stripped: unknown unit
    assert (value, status) == (0.0, "unknown_unit")
    value, status = official_parse("\\scalar{none} \\distance_unit{m}")
    assert math.isnan(value) and status == "no_number"
    assert official_parse("2 meters") == (None, "parse_error")
    assert official_parse("\\scalar{2}") == (None, "parse_error")
    assert official_parse(None) == (None, "parse_error")
    # success: 1e-8 added to both sides; strict < delta
    assert official_success(180.0, 100.0, 2.0) and not official_success(180.0, 100.0, 1.5)
    # exactly twice passes: (200 + 1e-8) / (100 + 1e-8) = 1.9999999999 < 2 (VLMEvalKit's epsilon)
    assert official_success(200.0, 100.0, 2.0)
    assert not official_success(201.0, 100.0, 2.0)
    assert not official_success(None, 100.0)          # parse error -> 1e-8 cm
    assert official_success(0.0, 0.0)                 # gt 0 and pred 0: both 1e-8, ratio 1
    assert not official_success(None, 0.0)            # 2e-8 / 1e-8 = 2, not < 2
    assert not official_success(math.nan, 100.0)


def test_load_published_format(plus_dir):
    bench = get_benchmark("qspatial_plus")
    items = bench.load(plus_dir)
    assert [it.id for it in items] == [f"QSpatial_plus/{i}" for i in range(len(PLUS_ROWS))]
    first = items[0]
    assert first.answer == {"value": 0.96, "unit": "meters", "cm": 96.0}  # float32 read back as 0.96
    assert first.question_type == "horizontal"
    assert first.images[0].size == (8, 6)
    assert first.prompt == (
        QSPATIAL_SYSTEM_PROMPT + "\nQuestion: What is the minimum distance between object 0 and the wall?\n"
        "Let's thinkg step by step and start by finding good reference objects or object parts in the image."
    )
    assert bench.prompt(first, "original") == (
        "What is the minimum distance between object 0 and the wall? First output the thinking process in "
        "<think> </think> tags and then output the final answer in <answer> </answer> tags."
    )
    assert bench.prompt(first, "spatial_reasoning").startswith(
        "Question: What is the minimum distance between object 0 and the wall? Use the following 4 steps")
    with pytest.raises(ValueError, match="unknown prompt variant"):
        bench.prompt(first, "nope")
    # scoring only: the image column is not read, everything else is the same
    light = bench.load(plus_dir, with_images=False)
    assert light[0].images == [] and light[0].answer == first.answer and light[0].prompt == first.prompt


def test_scores_hand_computed(plus_dir, tmp_path):
    bench = get_benchmark("qspatial_plus")
    items = bench.load(plus_dir)
    preds = read_predictions(write_predictions(tmp_path / "p.jsonl", extra=["QSpatial_plus/99"]))
    report = score_predictions(bench, items, preds)

    # Official success (delta 2) per row, cm:
    #  0: 100 vs 96 -> 1.04 ok      1: 76.2 vs 91.44 -> 1.2 ok     2: no \scalar -> fail
    #  3: unknown unit 'yards' -> 0 -> fail                         4: 0 vs 0 -> 1e-8/1e-8 = 1 ok
    #  5: last \scalar{1} m: 100 vs 91.44 -> 1.09 ok                6: missing -> fail
    #  7, 8: no \scalar -> fail     9: no digits -> NaN -> fail     10: 180 vs 100 -> 1.8 ok
    # -> 5/11 overall (micro); horizontal {0,1,4,5,8,10}: 5/6; vertical {2,3,6,7,9}: 0/5
    assert report["overall"] == pytest.approx(100 * 5 / 11)
    assert report["per_type"] == pytest.approx({"horizontal": 100 * 5 / 6, "vertical": 0.0})
    m = report["metrics"]
    assert m["success_delta_2"] == pytest.approx(100 * 5 / 11)
    # delta 1.5: row 10 (1.8) drops -> 4/11; horizontal 4/6
    assert m["success_delta_1.5"] == pytest.approx(100 * 4 / 11)
    assert m["success_delta_1.5_per_type"] == pytest.approx({"horizontal": 100 * 4 / 6, "vertical": 0.0})
    assert m["official_parse"] == {"ok": 5, "unknown_unit": 1, "no_number": 1, "parse_error": 3, "missing": 1}

    # Lenient (spatialrl.answers' strict policy, meters): 0: 1.0/0.96 ok; 1: "2-3" is a range -> None;
    # 2: 5/2=2.5 fail; 3: 1.2 yd = 1.09728 vs 1.5 ok; 4: 0 m -> non-positive fail; 5: two values -> None;
    # 6: missing; 7: 0.6/0.5 ok; 8, 9: unparsable; 10: 1.8 ok (not at 1.5)
    # -> 4/11; horizontal {0,10} of 6, vertical {3,7} of 5
    assert report["overall_lenient"] == pytest.approx(100 * 4 / 11)
    assert report["per_type_lenient"] == pytest.approx({"horizontal": 100 * 2 / 6, "vertical": 100 * 2 / 5})
    assert m["svqa_success_rate"] == pytest.approx(100 * 4 / 11)
    assert m["svqa_success_rate_delta_1.5"] == pytest.approx(100 * 3 / 11)
    # completed: rows 0,2,3,4,7,10 parse -> 6/11
    assert m["samples_completed"] == pytest.approx(100 * 6 / 11)
    # sMAPE over those 6: |p-g| / ((p+g)/2)
    terms = [0.04 / 0.98, 3 / 3.5, 0.40272 / 1.29864, 0.0, 0.1 / 0.55, 0.8 / 1.4]
    assert m["smape"] == pytest.approx(100 * sum(terms) / 6)
    # buckets over parsable predictions with gt > 0 (5 rows; row 4 has gt 0):
    # p/g: 1.042, 2.5, 0.732, 1.2, 1.8 -> (0.5,1]: 1, (1,1.5]: 2, (1.5,2): 1
    assert m["in_range_50_100"] == pytest.approx(100 * 1 / 5)
    assert m["in_range_100_150"] == pytest.approx(100 * 2 / 5)
    assert m["in_range_150_200"] == pytest.approx(100 * 1 / 5)

    assert report["missing_ids"] == ["QSpatial_plus/6"]
    assert report["unknown_ids"] == ["QSpatial_plus/99"]
    assert report["counts"]["per_type"] == {"horizontal": 6, "vertical": 5}


def test_all_splits_and_split_filters(tmp_path):
    root = tmp_path / "qs"
    write_qspatial(root)
    scannet_rows = [(1.0, "meters", "horizontal", "\\scalar{1} \\distance_unit{m}"),
                    (2.0, "meters", "vertical", "\\scalar{9} \\distance_unit{m}")]
    write_qspatial(root, scannet_rows, split="QSpatial_scannet", embed=False)
    (root / "data" / "images").mkdir()
    (root / "data" / "images" / "0.jpg").write_bytes(b"not needed to score")

    everything = get_benchmark("qspatial").load(root)
    assert len(everything) == len(PLUS_ROWS) + 2
    scannet = [it for it in everything if it.meta["split"] == "QSpatial_scannet"]
    assert scannet[0].images == [str(root / "data" / "images" / "0.jpg")]  # resolved relative to the file
    assert scannet[1].images == ["images/1.jpg"]  # absent: kept as given
    bench = get_benchmark("qspatial")
    assert bench.type_of(scannet[0]) == "QSpatial_scannet/horizontal"

    preds = {f"QSpatial_scannet/{i}": {"prediction": r[3]} for i, r in enumerate(scannet_rows)}
    only = get_benchmark("qspatial_scannet")
    report = score_predictions(only, only.load(root), preds)
    assert report["overall"] == pytest.approx(50.0)  # 100 vs 100 ok; 900 vs 200 = 4.5 fail
    assert report["per_type"] == {"horizontal": 100.0, "vertical": 0.0}

    with pytest.raises(BenchmarkDataError, match="QSpatial_scannet"):
        get_benchmark("qspatial_scannet").load(tmp_path / "qs" / "data" / "QSpatial_plus-00000-of-00001.parquet")


def test_malformed_data_names_file_record_and_field(tmp_path):
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"question": ["q"], "answer_value": [1.0], "question_type": ["t"]}), bad)
    with pytest.raises(BenchmarkDataError, match=r"bad\.parquet: field 'answer_unit' missing"):
        get_benchmark("qspatial").load(bad)

    lines = tmp_path / "QSpatial_plus.jsonl"
    ok = {"question": "q", "answer_value": 1.0, "answer_unit": "m", "question_type": "t"}
    lines.write_text(json.dumps(ok) + "\n" + json.dumps({**ok, "answer_value": "far"}) + "\n")
    with pytest.raises(BenchmarkDataError, match=r"QSpatial_plus\.jsonl:2: field 'answer_value'"):
        get_benchmark("qspatial_plus").load(lines)

    lines.write_text(json.dumps({**ok, "answer_unit": "furlongs"}) + "\n")
    with pytest.raises(BenchmarkDataError, match=r"QSpatial_plus\.jsonl:1: field 'answer_unit' is 'furlongs'"):
        get_benchmark("qspatial_plus").load(lines)

    lines.write_text(json.dumps(ok) + "\n{oops\n")
    with pytest.raises(BenchmarkDataError, match=r"QSpatial_plus\.jsonl:2: not valid JSON"):
        get_benchmark("qspatial_plus").load(lines)

    with pytest.raises(BenchmarkDataError, match="not found"):
        get_benchmark("qspatial").load(tmp_path / "nowhere")


def test_cli_eval_score_end_to_end(plus_dir, tmp_path, capsys):
    preds = write_predictions(tmp_path / "preds.jsonl", extra=["QSpatial_plus/99"])
    out = tmp_path / "SCORES.json"
    rc = cli_main(["eval", "score", "--benchmark", "qspatial_plus", "--data", str(plus_dir),
                   "--predictions", str(preds), "--out", str(out)])
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["benchmark"] == "qspatial_plus"
    assert report["overall"] == pytest.approx(100 * 5 / 11)
    assert report["overall_lenient"] == pytest.approx(100 * 4 / 11)
    assert report["metrics"]["samples_completed"] == pytest.approx(100 * 6 / 11)
    assert report["counts"]["missing"] == 1 and report["counts"]["unknown"] == 1
    assert "qspatial_plus: overall 45.45 (lenient 36.36)" in capsys.readouterr().out

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "QSpatial_plus/0", "prediction": "x"}\n{"id": "QSpatial_plus/1"}\n')
    rc = cli_main(["eval", "score", "--benchmark", "qspatial_plus", "--data", str(plus_dir),
                   "--predictions", str(bad), "--out", str(tmp_path / "x.json")])
    assert rc == 2
    assert f"{bad}:2: field 'prediction' missing" in capsys.readouterr().err


def test_prompt_variants():
    from spatialrl.prompts import (
        PROMPT_VARIANTS,
        SVQA_R1_SPATIAL_REASONING,
        apply_prompt,
    )

    assert apply_prompt("Q {x}?", "plain") == "Q {x}?"
    assert apply_prompt("Q {Question}?", "original").startswith("Q {Question}? First output the thinking")
    text = apply_prompt("How far?", "spatial_reasoning")
    assert text == SVQA_R1_SPATIAL_REASONING.replace("{ Question }", "How far?")
    assert text.endswith("Step 4 **Focus on the image and follow the plan in Step 3 to answer the question**")
    steps = apply_prompt("How far?", "qspatial_steps")
    assert steps.startswith("Question: How far?\n\n---\n\nUse the following 4 steps")
    # same words as Table 9 (b) once whitespace and the '---' separator are ignored
    assert " ".join(steps.replace("---", "").split()) == " ".join(text.split())
    assert apply_prompt("How far?", "qspatial_zero_shot") == "Question: How far?\nLet's think step by step."
    assert set(get_benchmark("qspatial").prompt_variants) == {"default"} | (set(PROMPT_VARIANTS) - {"qspatial"})
    with pytest.raises(ValueError, match="unknown prompt variant"):
        apply_prompt("x", "nope")
