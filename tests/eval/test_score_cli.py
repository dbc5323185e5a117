"""`spatialrl eval score` end to end on the ``world`` benchmark with a small built dataset."""

from __future__ import annotations

import json
import re

import pyarrow.parquet as pq
import pytest

from spatialrl.cli import main
from spatialrl.data.build import BuildConfig, build_dataset


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("score_cli") / "ds"
    build_dataset(str(out), BuildConfig(scenes=4, seed=0), progress=False)
    return out


@pytest.fixture(scope="module")
def rows(built):
    """The test split's rows, read straight from parquet (not through the scorer)."""
    files = sorted((built / "data").glob("test-*.parquet"))
    return [r for f in files for r in pq.read_table(f).drop_columns(["image", "scene_json"]).to_pylist()]


def _exact(r: dict) -> str:
    """A fully correct prediction for one row."""
    if r["answer_type"] in ("numerical", "open_ended") and r["answer_value"] is not None:
        value = r["answer_value"]
        text = str(int(value)) if r["dimension"] == "count" else f"{value!r} {'m^2' if r['dimension'] == 'area' else 'm'}"
    else:
        text = r["answer"]
    return f"<think>I look at the image.</think><answer>{text}</answer>"


def _first(rows, qtype, view):
    return next(r for r in rows if r["question_type"] == qtype and r["view"] == view)


def _run(*argv):
    return main(["eval", "score", "--benchmark", "world", *argv])


def test_score_world_end_to_end(built, rows, tmp_path, capsys):
    types = {r["question_type"] for r in rows}
    needed = {"abs_distance", "rel_distance", "compare_yes_no", "grounding_bbox", "closer_to_camera"}
    assert needed <= types, "the 4-scene build should have these question types in its test split"

    preds = {r["id"]: _exact(r) for r in rows}
    # wrong: twice the distance (relative error 1 -> MRA 0); off by 12.5 % (MRA 0.8)
    dist_o, dist_m = _first(rows, "abs_distance", "original"), _first(rows, "abs_distance", "mirror")
    preds[dist_o["id"]] = f"<answer>{2 * dist_o['answer_value']} m</answer>"
    preds[dist_m["id"]] = f"<answer>{1.125 * dist_m['answer_value']} m</answer>"
    # unparsable (no option named) and malformed (unclosed tag)
    preds[_first(rows, "rel_distance", "original")["id"]] = "<answer>somewhere over there</answer>"
    preds[_first(rows, "compare_yes_no", "mirror")["id"]] = "<answer>yes"
    # wrong letter
    closer = _first(rows, "closer_to_camera", "original")
    preds[closer["id"]] = f"<answer>{'B' if closer['answer'] == 'A' else 'A'}</answer>"
    # missing
    missing = _first(rows, "grounding_bbox", "original")["id"]
    del preds[missing]

    pred_file = tmp_path / "predictions.jsonl"
    with open(pred_file, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"id": item_id, "prediction": text}) + "\n" for item_id, text in preds.items())
        fh.write(json.dumps({"id": "nope-2", "prediction": "<answer>1 m</answer>"}) + "\n")
        fh.write(json.dumps({"id": "nope-1", "prediction": None}) + "\n")
    out = tmp_path / "out" / "SCORES.json"

    assert _run("--data", str(built), "--predictions", str(pred_file), "--out", str(out)) == 0
    stdout = capsys.readouterr().out
    assert "world: overall" in stdout and f"wrote {out}" in stdout

    report = json.loads(out.read_text())
    expected_types = {("open_ended_numeric" if r["answer_value"] is not None else "open_ended_relation")
                      if r["question_type"] == "open_ended" else r["question_type"] for r in rows}
    expected = {t: 100.0 for t in expected_types}
    expected.update({"abs_distance": (0.0 + 80.0) / 2, "rel_distance": 50.0, "compare_yes_no": 50.0,
                     "grounding_bbox": 50.0, "closer_to_camera": 50.0})
    # every type has both views of one question in this split (one test scene)
    assert report["counts"]["per_type"] == {t: 2 for t in sorted(expected)}
    assert report["per_type"] == pytest.approx(expected)
    assert report["overall"] == pytest.approx(sum(expected.values()) / len(expected))
    assert report["benchmark"] == "world"
    assert report["missing_ids"] == [missing]
    assert report["unknown_ids"] == ["nope-1", "nope-2"]
    assert report["counts"] | {"per_type": None} == {
        "items": len(rows), "predictions": len(rows) - 1 + 2, "scored": len(rows) - 1, "missing": 1,
        "unknown": 2, "per_type": None}

    m = report["metrics"]
    # pairs: abs_distance (0 / 0.8: wrong / right), rel_distance, compare_yes_no, grounding_bbox and
    # closer_to_camera (one view wrong) are inconsistent; the 12 other pairs are both right
    n_pairs = len(rows) // 2
    assert m["pairs"] == pytest.approx({
        "count": n_pairs, "consistency": 100 * (n_pairs - 5) / n_pairs, "both_right": 100 * (n_pairs - 5) / n_pairs,
        "both_wrong": 0.0, "mean_score_gap": 100 * (0.8 + 1 + 1 + 1 + 1) / n_pairs})
    n_types = len(expected)
    original = {t: 100.0 for t in expected} | {"abs_distance": 0.0, "rel_distance": 0.0, "grounding_bbox": 0.0,
                                               "closer_to_camera": 0.0}
    mirror = {t: 100.0 for t in expected} | {"abs_distance": 80.0, "compare_yes_no": 0.0}
    assert m["per_view"] == pytest.approx({"original": sum(original.values()) / n_types,
                                           "mirror": sum(mirror.values()) / n_types})
    # "somewhere over there" names no option, "<answer>yes" has an unclosed tag; the wrong letter parses
    assert m["unparsed"] == {"discrete": 2, "grounding": 0, "numerical": 0, "open_ended": 0}
    assert m["grounding"]["acc_at_0.5"] == pytest.approx(50.0)
    assert set(m["open_ended"]) == {"bleu1", "bleu2"}


@pytest.mark.parametrize(
    ("lines", "where"),
    [
        (['{"id": "a", "prediction": "1"}', '{"id": "b", "prediction": '], r":2: not valid JSON"),
        (['{"id": "a", "prediction": "1"}', '["a", "1"]'], r":2: expected a JSON object"),
        (['{"id": "a", "prediction": "1"}', '{"id": "b", "prediction": "2"}', '{"prediction": "3"}'],
         r":3: field 'id' missing"),
        (['{"id": "a"}'], r":1: field 'prediction' missing"),
        (['{"id": "a", "prediction": 2.5}'], r":1: field 'prediction' must be the raw model text"),
        (['{"id": "a", "prediction": "1"}', '{"id": "a", "prediction": "2"}'], r":2: id 'a' already given on line 1"),
        (['{"id": [1], "prediction": "1"}'], r":1: field 'id' must be a string or an integer"),
    ],
)
def test_malformed_predictions_exit_2(built, tmp_path, capsys, lines, where):
    pred_file = tmp_path / "bad.jsonl"
    pred_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "SCORES.json"
    assert _run("--data", str(built), "--predictions", str(pred_file), "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert re.search(re.escape(str(pred_file)) + where, err), err  # file, line and field
    assert not out.exists()


def test_missing_predictions_file_exit_2(built, tmp_path, capsys):
    code = _run("--data", str(built), "--predictions", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "S.json"))
    assert code == 2
    assert "none.jsonl: predictions file not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{tmp}/no_such_dir", "no_such_dir: not found (give the directory written by `spatialrl data build`"),
        ("{built}:dev", "no split 'dev' (found test, train"),
        ("{tmp}", "no data/test-*.parquet here"),
        ("{built}/README.md", "README.md: not a parquet file"),
    ],
)
def test_malformed_data_path_exit_2(built, tmp_path, capsys, data, message):
    pred_file = tmp_path / "p.jsonl"
    pred_file.write_text('{"id": "a", "prediction": "1"}\n', encoding="utf-8")
    code = _run("--data", data.format(tmp=tmp_path, built=built), "--predictions", str(pred_file),
                "--out", str(tmp_path / "S.json"))
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err, err
    assert not (tmp_path / "S.json").exists()


def test_unknown_benchmark_exit_2(tmp_path, capsys):
    code = main(["eval", "score", "--benchmark", "no-such", "--data", str(tmp_path), "--predictions",
                 str(tmp_path / "p.jsonl"), "--out", str(tmp_path / "S.json")])
    assert code == 2
    assert "unknown benchmark 'no-such'" in capsys.readouterr().err


def test_out_that_is_a_directory_is_an_error_naming_the_flag(built, rows, tmp_path, capsys):
    preds = tmp_path / "preds.jsonl"
    preds.write_text(json.dumps({"id": rows[0]["id"], "prediction": "<answer>1</answer>"}) + "\n")
    existing = tmp_path / "scores"
    existing.mkdir()
    assert _run("--data", str(built), "--predictions", str(preds), "--out", str(existing)) == 2
    err = capsys.readouterr().err
    assert f"--out {existing} is a directory" in err and str(existing / "SCORES.json") in err
    assert list(existing.iterdir()) == []
