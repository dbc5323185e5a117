"""The ``world`` benchmark: loading a build, answer extraction, per-answer-type scoring,
VSI-Bench-style aggregation, per-view and pair-consistency metrics."""

from __future__ import annotations

import json
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spatialrl.data.build import BuildConfig, build_dataset
from spatialrl.eval.benchmarks import (
    BenchmarkDataError,
    get_benchmark,
    score_predictions,
)
from spatialrl.eval.benchmarks.world import (
    OPEN_NUMERIC,
    OPEN_RELATION,
    WorldBenchmark,
    answer_text,
    make_item,
    mra,
)
from spatialrl.eval.metrics import mean_relative_accuracy
from spatialrl.prompts import prompt_text


def row(id_, qtype, answer_type, answer, *, value=None, dimension=None, options=(), index=-1, bbox=(),
        pair=None, view="original", meta=None):
    """A dataset row with the columns the scorer reads."""
    return {
        "id": id_, "pair_id": pair or id_.rsplit("-", 1)[0], "view": view, "question": f"Q {id_}?",
        "question_type": qtype, "answer_type": answer_type, "answer": answer, "answer_value": value,
        "dimension": dimension, "options": list(options), "answer_index": index, "bbox": list(bbox),
        "meta": json.dumps(meta or {}),
    }


def tag(text: str) -> str:
    return f"<think>let me look</think><answer>{text}</answer>"


@pytest.fixture(scope="module")
def bench() -> WorldBenchmark:
    return WorldBenchmark()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("world") / "ds"
    build_dataset(str(out), BuildConfig(scenes=4, seed=0), progress=False)
    return out


# -- registry and extraction ----------------------------------------------------------------


def test_registered_under_world():
    assert isinstance(get_benchmark("world"), WorldBenchmark)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>2 m?</think><answer> 2.5 m </answer>", "2.5 m"),
        ("<answer>1</answer> then <answer>2</answer>", None),  # two answers: none (the reward policy)
        ("  3.1 meters\n", "3.1 meters"),  # no tag at all: the whole text
        ("<answer>2 m", None),  # unclosed tag: unparsable, not the whole text
        ("<answer>  </answer>", None),
        ("", None),
        (None, None),
    ],
)
def test_answer_text(text, expected):
    assert answer_text(text) == expected


def test_mra_matches_metrics_module():
    rng = random.Random(0)
    cases = [(2.2, 2.0), (1.8, 2.0), (5.0, 4.0), (3.0, 2.0), (0.0, 0.0), (1.0, 0.0), (None, 1.0),
             (float("nan"), 1.0), (float("inf"), 1.0)]
    cases += [(rng.uniform(0, 10), rng.uniform(0.01, 10)) for _ in range(2000)]
    # exact boundaries: relative errors 0.05 .. 0.5
    cases += [(g * (1 + s * k * 0.05), g) for g in (0.3, 1.0, 2.0, 4.0, 7.7) for k in range(11) for s in (1, -1)]
    for pred, gt in cases:
        assert mra(pred, gt) == mean_relative_accuracy(pred, gt), (pred, gt)


# -- per answer type ------------------------------------------------------------------------


NUMERIC = make_item(row("n-o", "abs_distance", "numerical", "2.00", value=2.0, dimension="length"))
AREA = make_item(row("a-o", "room_size", "numerical", "20.00", value=20.0, dimension="area"))
COUNT = make_item(row("c-o", "object_count", "numerical", "3", value=3.0, dimension="count"))


@pytest.mark.parametrize(
    ("item", "prediction", "expected"),
    [
        (NUMERIC, tag("2 m"), 1.0),
        (NUMERIC, tag("2.2"), 0.9),  # bare number: meters
        (NUMERIC, tag("220 cm"), 0.9),  # units converted to SI
        (NUMERIC, "2.2 meters", 0.9),  # no tag: the whole text
        (NUMERIC, tag("3 m"), 0.1),
        (NUMERIC, tag("2 or 3 m"), 0.0),  # ambiguous -> unparsable
        (NUMERIC, "<answer>2 m", 0.0),  # malformed tag
        (NUMERIC, tag("2 m^2"), 0.0),  # wrong dimension
        (NUMERIC, None, 0.0),  # missing
        (AREA, tag("22 square meters"), 0.9),
        (AREA, tag("22"), 0.9),
        (COUNT, tag("three"), 1.0),
        (COUNT, tag("4 chairs"), 0.4),  # error 1/3 passes theta 0.50, 0.55, 0.60, 0.65
        (COUNT, tag("2.5"), 0.0),  # not a count
    ],
)
def test_numerical_scoring(bench, item, prediction, expected):
    assert bench.score_item(item, prediction).score == pytest.approx(expected)


def test_numerical_uses_exact_answer_value_not_rounded_text(bench):
    item = make_item(row("x-o", "object_size", "numerical", "1.00", value=1.004, dimension="length"))
    result = bench.score_item(item, tag("1.004 m"))
    assert result.score == 1.0 and result.parsed == pytest.approx(1.004)


def test_discrete_scoring(bench):
    choice = make_item(row("d-o", "rel_distance", "discrete", "B", options=["red chair", "blue table"], index=1))
    assert bench.score_item(choice, tag("B")).score == 1.0
    assert bench.score_item(choice, tag("(B) blue table")).score == 1.0
    assert bench.score_item(choice, tag("the blue table")).score == 1.0
    assert bench.score_item(choice, tag("A")).score == 0.0
    assert bench.score_item(choice, tag("A or B")).score == 0.0
    assert bench.score_item(choice, "B").parsed == 1
    yes_no = make_item(row("y-o", "compare_yes_no", "discrete", "no"))
    assert bench.score_item(yes_no, tag("No, it is smaller.")).score == 1.0
    assert bench.score_item(yes_no, tag("yes")).score == 0.0
    assert bench.score_item(yes_no, tag("maybe")).score == 0.0
    assert bench.score_item(yes_no, tag("maybe")).parsed is None
    phrase = make_item(row("p-o", "custom", "discrete", "Left"))
    assert bench.score_item(phrase, tag(" left ")).score == 1.0
    assert bench.score_item(phrase, tag("to the left")).score == 0.0


def test_grounding_iou_threshold(bench):
    item = make_item(row("g-o", "grounding_bbox", "grounding", "[0, 0, 10, 10]", bbox=[0, 0, 10, 10]))
    assert bench.score_item(item, tag("[0, 0, 10, 10]")).score == 1.0
    assert bench.score_item(item, tag("[0, 0, 10, 5]")).score == 1.0  # IoU 0.5 exactly counts
    assert bench.score_item(item, tag("[0, 0, 10, 4.9]")).score == 0.0  # IoU 0.49
    assert bench.score_item(item, tag("[5, 0, 15, 10]")).score == 0.0  # IoU 1/3
    assert bench.score_item(item, tag("[0, 0, 10, 10] or [1, 1, 2, 2]")).score == 0.0
    assert bench.score_item(item, tag("[0,0,10,10]")).parsed == (0.0, 0.0, 10.0, 10.0)


def test_open_ended_numeric_and_relation(bench):
    size = make_item(row("o1-o", "open_ended", "open_ended", "The green box is 16 inches along its largest dimension.",
                         value=0.4, dimension="length", meta={"template": "size"}))
    assert bench.type_of(size) == OPEN_NUMERIC
    assert bench.score_item(size, tag("The green box is 40 centimeters long.")).score == 1.0
    assert bench.score_item(size, tag("It is 0.44 m.")).score == pytest.approx(0.9)
    assert bench.score_item(size, tag("The green box is large.")).score == 0.0

    lr = make_item(row("o2-m", "open_ended", "open_ended", "No, the green box is to the right of the black ball.",
                       meta={"template": "left_right", "object_names": ["green box", "black ball"]}))
    assert bench.type_of(lr) == OPEN_RELATION
    assert bench.score_item(lr, tag("No.")).score == 1.0
    assert bench.score_item(lr, tag("No, the green box is to the right of the black ball")).score == 1.0
    assert bench.score_item(lr, tag("Yes, it is on the left.")).score == 0.0
    assert bench.score_item(lr, tag("It is on the right.")).score == 0.0  # no verdict

    closer = make_item(row("o3-o", "open_ended", "open_ended", "The black ball is closer to the camera than the green box.",
                           meta={"template": "closer", "object_names": ["green box", "black ball"]}))
    assert bench.score_item(closer, tag("the black ball is closer to the camera than the green box")).score == 1.0
    assert bench.score_item(closer, tag("The black ball.")).score == 1.0
    assert bench.score_item(closer, tag("The green box.")).score == 0.0
    # both names in another phrasing: no single verdict -> wrong
    assert bench.score_item(closer, tag("The green box is farther than the black ball.")).score == 0.0

    other = make_item(row("o4-o", "open_ended", "open_ended", "A sentence.", meta={"template": "unknown"}))
    assert bench.score_item(other, tag("a sentence")).score == 1.0
    assert bench.score_item(other, tag("another sentence")).score == 0.0


# -- aggregation and extra metrics ----------------------------------------------------------


def test_report_aggregation_views_and_pairs(bench):
    rows = [
        row("p1-o", "abs_distance", "numerical", "2.00", value=2.0, dimension="length", view="original"),
        row("p1-m", "abs_distance", "numerical", "2.00", value=2.0, dimension="length", view="mirror"),
        row("p2-o", "rel_distance", "discrete", "A", options=["chair", "table"], index=0, view="original"),
        row("p2-m", "rel_distance", "discrete", "B", options=["chair", "table"], index=1, view="mirror"),
        row("p3-o", "compare_yes_no", "discrete", "no", view="original"),
        row("p3-m", "compare_yes_no", "discrete", "no", view="mirror"),
        row("p4-o", "grounding_bbox", "grounding", "[0, 0, 10, 10]", bbox=[0, 0, 10, 10], view="original"),
        row("p5-o", "object_count", "numerical", "0", value=0.0, dimension="count", view="original"),
    ]
    items = [make_item(r) for r in rows]
    preds = {
        "p1-o": {"prediction": tag("2.2 m")},  # 0.9: right
        "p1-m": {"prediction": tag("3 m")},  # 0.1: wrong -> pair inconsistent, gap 0.8
        "p2-o": {"prediction": tag("A")},
        "p2-m": {"prediction": tag("table")},  # both right
        "p3-o": {"prediction": tag("yes")},  # wrong; p3-m missing -> both wrong
        "p4-o": {"prediction": tag("[0, 0, 10, 7.5]")},  # IoU 0.75: right, twin absent
        "p5-o": {"prediction": tag("0")},  # gt 0 scores 0
        "stray": {"prediction": tag("1 m")},
    }
    report = score_predictions(bench, items, preds)
    assert report["per_type"] == pytest.approx({
        "abs_distance": 50.0, "compare_yes_no": 0.0, "grounding_bbox": 100.0, "object_count": 0.0,
        "rel_distance": 100.0})
    assert report["overall"] == pytest.approx((50 + 0 + 100 + 0 + 100) / 5)
    assert "overall_lenient" not in report
    assert report["missing_ids"] == ["p3-m"] and report["unknown_ids"] == ["stray"]
    m = report["metrics"]
    # original: abs 0.9, rel 1, yes/no 0, grounding 1, count 0; mirror: abs 0.1, rel 1, yes/no 0
    assert m["per_view"] == pytest.approx({"original": 100 * 2.9 / 5, "mirror": 100 * 1.1 / 3})
    assert m["pairs"] == pytest.approx({"count": 3, "consistency": 100 * 2 / 3, "both_right": 100 / 3,
                                        "both_wrong": 100 / 3, "mean_score_gap": 100 * 0.8 / 3})
    assert m["by_answer_type"] == pytest.approx({"numerical": 100 * 1.0 / 3, "discrete": 50.0, "grounding": 100.0})
    assert m["grounding"] == pytest.approx({"miou": 75.0, "acc_at_0.5": 100.0, "acc_at_0.75": 100.0})
    assert m["unparsed"] == {"discrete": 0, "grounding": 0, "numerical": 0}
    assert m["gt_zero_ids"] == ["p5-o"]
    assert "open_ended" not in m


def test_types_asked_in_several_templates_are_scored_per_template(bench):
    """``metrics.by_template``: rel_direction's left/right (lateral), in front/behind (depth) and
    quadrant questions separately; types asked in one template are not listed."""
    lateral = dict(options=["left", "right"], index=0, meta={"template": "lateral"})
    depth = dict(options=["in front of", "behind"], index=1, meta={"template": "depth"})
    rows = [
        row("a-o", "rel_direction", "discrete", "A", **lateral),
        row("b-o", "rel_direction", "discrete", "A", **lateral),
        row("c-o", "rel_direction", "discrete", "B", **depth),
        row("d-o", "closer_to_camera", "discrete", "A", options=["chair", "table"], index=0,
            meta={"template": "closer"}),
    ]
    preds = {"a-o": {"prediction": tag("A")}, "b-o": {"prediction": tag("B")}, "c-o": {"prediction": tag("B")},
             "d-o": {"prediction": tag("A")}}
    report = score_predictions(bench, [make_item(r) for r in rows], preds)
    by_template = report["metrics"]["by_template"]
    assert list(by_template) == ["rel_direction"]
    assert by_template["rel_direction"] == pytest.approx({"depth": 100.0, "lateral": 50.0})
    assert report["per_type"]["rel_direction"] == pytest.approx(200 / 3)


def test_unparsed_counts_and_bleu(bench):
    items = [
        make_item(row("u1-o", "abs_distance", "numerical", "2.00", value=2.0, dimension="length")),
        make_item(row("u2-o", "open_ended", "open_ended", "the cat is on the mat",
                      meta={"template": "unknown"})),
    ]
    report = score_predictions(bench, items, {"u1-o": {"prediction": "far away"},
                                              "u2-o": {"prediction": tag("the cat sat on the mat")}})
    assert report["metrics"]["unparsed"] == {"numerical": 1, "open_ended": 0}
    assert report["metrics"]["open_ended"]["bleu1"] == pytest.approx(100 * 5 / 6)
    assert report["per_type"] == {"abs_distance": 0.0, OPEN_RELATION: 0.0}


def test_extra_metrics_alone_rescoring(bench):
    item = make_item(row("e-o", "abs_distance", "numerical", "2.00", value=2.0, dimension="length"))
    bench.score_item(item, tag("2 m"))  # cached result for another text must not be reused
    out = bench.extra_metrics([item], [tag("3 m")])
    assert out["by_answer_type"]["numerical"] == pytest.approx(10.0)


# -- loading a build ------------------------------------------------------------------------


def test_load_test_split_with_images_and_prompts(bench, built):
    items = bench.load(built)
    table = pq.read_table(min((built / "data").glob("test-*.parquet")))
    assert [it.id for it in items] == table.column("id").to_pylist()
    rows = table.to_pylist()
    for it, r in zip(items, rows):
        assert it.prompt == prompt_text(r["question"])
        assert it.meta["view"] == r["view"] and it.meta["pair_id"] == r["pair_id"]
        assert it.options == r["options"]
        assert len(it.images) == 1 and it.images[0].size == (112, 112)
    # the mirror image is the horizontal flip of the original
    a, b = np.asarray(items[0].images[0]), np.asarray(items[1].images[0])
    assert items[0].meta["view"] == "original" and items[1].meta["view"] == "mirror"
    assert np.array_equal(a[:, ::-1], b)
    # the canonical answers score 100 (a bare answer text is parsed like an answer block)
    report = score_predictions(bench, items, {it.id: {"prediction": str(it.answer)} for it in items})
    assert report["overall"] == pytest.approx(100.0)
    assert report["metrics"]["pairs"]["consistency"] == 100.0


def test_load_other_splits_and_files(bench, built):
    test_ids = {it.id for it in bench.load(built)}
    train = bench.load(f"{built}:train", with_images=False)
    assert train and all(not it.images for it in train)
    assert not test_ids & {it.id for it in train}
    assert [it.id for it in bench.load(built, split="train", with_images=False)] == [it.id for it in train]
    shard = min((built / "data").glob("test-*.parquet"))
    assert {it.id for it in bench.load(shard)} == test_ids
    assert {it.id for it in bench.load(built / "data")} == test_ids  # the data/ folder itself


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{root}/nope", "not found"),
        ("{root}/nope:test", "not found"),
        ("{built}:validation", "no split 'validation' (found test, train"),
        ("{root}", "no data/test-"),
        ("{built}/README.md", "not a parquet file"),
    ],
)
def test_load_path_errors(bench, built, tmp_path, spec, message):
    with pytest.raises(BenchmarkDataError, match=message.replace("(", r"\(")):
        bench.load(spec.format(built=built, root=tmp_path))


def _write_variant(built, tmp_path, change):
    table = pq.read_table(min((built / "data").glob("test-*.parquet")))
    table = change(table)
    (tmp_path / "data").mkdir(parents=True)
    path = tmp_path / "data" / "test-00000-of-00001.parquet"
    pq.write_table(table, path)
    return path


def _set(table, column, index, value):
    values = table.column(column).to_pylist()
    values[index] = value
    i = table.schema.get_field_index(column)
    return table.set_column(i, table.schema.field(i), pa.array(values, type=table.schema.field(i).type))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop_columns(["answer_value"]), r"column\(s\) 'answer_value' missing"),
        (lambda t: _set(t, "answer_value", 0, None), r"row 0: row 'syn0-\d+-q00-o': answer_value: numerical rows need a value"),
        (lambda t: _set(t, "answer_type", 3, "essay"), r"row 3: .*answer_type"),
        (lambda t: _set(t, "id", 1, t.column("id")[0].as_py()), r"row 1: field 'id' repeats"),
        (lambda t: _set(t, "image", 2, {"bytes": b"not a png", "path": None}), r"row 2: image: the stored bytes"),
        (lambda t: t.slice(0, 0), "no rows"),
    ],
)
def test_load_malformed_rows(bench, built, tmp_path, change, message):
    path = _write_variant(built, tmp_path, change)
    with pytest.raises(BenchmarkDataError, match=message) as err:
        bench.load(tmp_path)
    assert str(path) in str(err.value)


def test_load_multiframe_rows_and_builds_without_frames(bench, built, tmp_path):
    """A multi-frame row's item carries its K frames in order; a build written before the
    ``frames`` column existed still loads, one image per item."""
    from PIL import Image

    from spatialrl.data.schema import encode_png

    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [{"bytes": encode_png(Image.new("RGB", (56, 56), c)), "path": None} for c in colours]
    _write_variant(built, tmp_path / "multi", lambda t: _set(_set(t, "frames", 0, frames), "image", 0, None))
    items = bench.load(tmp_path / "multi")
    assert [im.convert("RGB").getpixel((0, 0)) for im in items[0].images] == colours
    assert all(len(it.images) == 1 for it in items[1:])
    assert not bench.load(tmp_path / "multi", with_images=False)[0].images
    _write_variant(built, tmp_path / "old", lambda t: t.drop_columns(["frames"]))
    assert [len(it.images) for it in bench.load(tmp_path / "old")] == [1] * len(items)


def test_load_corrupt_parquet(bench, tmp_path):
    (tmp_path / "data").mkdir()
    bad = tmp_path / "data" / "test-00000-of-00001.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(BenchmarkDataError, match="not a readable parquet file"):
        bench.load(tmp_path)


def test_a_trl_build_loads_like_its_hf_build(bench, built, tmp_path):
    """A trl build keeps every image in `images` (no `image` column: TRL's SFT collator would
    prefer it); the benchmark reads the same items and pixels from it."""
    from spatialrl.data.build import convert_dataset

    trl = tmp_path / "trl"
    convert_dataset(str(built), str(trl), "trl")
    assert "image" not in pq.read_schema(min((trl / "data").glob("test-*.parquet"))).names
    hf_items, trl_items = bench.load(built), bench.load(trl)
    assert [it.id for it in trl_items] == [it.id for it in hf_items]
    for a, b in zip(hf_items, trl_items):
        assert len(b.images) == 1 and np.array_equal(np.asarray(a.images[0]), np.asarray(b.images[0]))
