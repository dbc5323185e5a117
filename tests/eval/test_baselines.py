"""No-perception baselines: constants fitted on a training split, scored with the benchmark's rules."""

from __future__ import annotations

import json

import pytest

from spatialrl.data.build import BuildConfig, build_dataset
from spatialrl.eval.baselines import (
    KINDS,
    baseline_predictions,
    baseline_table,
    fit_baselines,
    load_items,
    main,
    numeric_mean,
    score_baselines,
)
from spatialrl.eval.benchmarks.world import WorldBenchmark, make_item, mra


def row(id_, qtype, answer_type, answer, *, value=None, dimension=None, options=(), index=-1, bbox=(),
        meta=None):
    return {
        "id": id_, "pair_id": id_, "view": "original", "question": f"Q {id_}?", "question_type": qtype,
        "answer_type": answer_type, "answer": answer, "answer_value": value, "dimension": dimension,
        "options": list(options), "answer_index": index, "bbox": list(bbox), "meta": json.dumps(meta or {}),
    }


@pytest.fixture(scope="module")
def bench() -> WorldBenchmark:
    return WorldBenchmark()


def test_numeric_constants_are_training_mean_median_and_mode(bench):
    train = [make_item(row(f"d{i}", "abs_distance", "numerical", f"{v:.2f}", value=v, dimension="length"))
             for i, v in enumerate([1.0, 2.0, 2.0, 7.0])]
    stats = fit_baselines(train, bench)
    assert stats.numeric("abs_distance", "mean") == pytest.approx(3.0)
    assert stats.numeric("abs_distance", "median") == pytest.approx(2.0)
    assert stats.numeric("abs_distance", "majority") == pytest.approx(2.0)
    best = stats.numeric("abs_distance", "best_constant")
    score = lambda c: sum(mra(c, v) for v in [1.0, 2.0, 2.0, 7.0])  # noqa: E731
    assert score(best) >= max(score(3.0), score(2.0)) - 1e-12
    test = [make_item(row("t", "abs_distance", "numerical", "2.00", value=2.0, dimension="length"))]
    preds = baseline_predictions(test, stats, bench, "mean")
    assert preds == {"t": "<answer>3</answer>"}


def test_counts_are_whole_numbers_so_the_scorer_parses_them(bench):
    train = [make_item(row(f"c{i}", "object_count", "numerical", str(v), value=float(v), dimension="count"))
             for i, v in enumerate([1, 1, 2, 3])]  # mean 1.75 -> "2"
    stats = fit_baselines(train, bench)
    reports = score_baselines(train, train, bench)
    assert baseline_predictions(train[:1], stats, bench, "mean")["c0"] == "<answer>2</answer>"
    # "2" is exact on one of four items and within 10-50 % of none of the 1s (rel. error 1.0)
    assert reports["mean"]["per_type"]["object_count"] == pytest.approx(100 * (1.0 + mra(2, 3)) / 4)
    assert reports["majority"]["per_type"]["object_count"] == pytest.approx(100 * (2 + mra(1, 2) + mra(1, 3)) / 4)


def test_choice_yes_no_and_grounding_predictors(bench):
    train = [
        make_item(row("a", "closer_to_camera", "discrete", "B", options=("x", "y"), index=1)),
        make_item(row("b", "closer_to_camera", "discrete", "B", options=("x", "y"), index=1)),
        make_item(row("c", "closer_to_camera", "discrete", "A", options=("x", "y"), index=0)),
        make_item(row("d", "compare_yes_no", "discrete", "no")),
        make_item(row("e", "compare_yes_no", "discrete", "no")),
        make_item(row("f", "compare_yes_no", "discrete", "yes")),
        make_item(row("g", "grounding_bbox", "grounding", "[0, 0, 10, 10]", bbox=(0, 0, 10, 10))),
        make_item(row("h", "grounding_bbox", "grounding", "[10, 10, 30, 30]", bbox=(10, 10, 30, 30))),
    ]
    stats = fit_baselines(train, bench)
    preds = baseline_predictions(train, stats, bench, "majority")
    assert preds["a"] == "<answer>B</answer>"
    assert preds["d"] == "<answer>no</answer>"
    assert preds["g"] == "<answer>[5.0, 5.0, 20.0, 20.0]</answer>"  # median box
    report = score_baselines(train, train, bench, kinds=["majority"])["majority"]
    assert report["per_type"]["closer_to_camera"] == pytest.approx(100 * 2 / 3)
    assert report["per_type"]["compare_yes_no"] == pytest.approx(100 * 2 / 3)


def test_open_ended_relation_majority_verdicts(bench):
    def lr(i, ans):
        return make_item(row(f"l{i}", "open_ended", "open_ended", ans,
                             meta={"template": "left_right", "object_names": ["red box", "blue ball"]}))

    def closer(i, near, far):
        return make_item(row(f"k{i}", "open_ended", "open_ended", f"The {near} is closer to the camera than the {far}.",
                             meta={"template": "closer", "object_names": ["red box", "blue ball"]}))

    train = [lr(0, "Yes, the red box is to the left of the blue ball."),
             lr(1, "No, the red box is to the right of the blue ball."),
             lr(2, "No, the red box is to the right of the blue ball."),
             closer(0, "blue ball", "red box"), closer(1, "blue ball", "red box"), closer(2, "red box", "blue ball")]
    stats = fit_baselines(train, bench)
    preds = baseline_predictions(train, stats, bench, "majority")
    assert preds["l0"] == "<answer>No.</answer>"
    assert preds["k0"] == "<answer>The blue ball is closer to the camera.</answer>"
    report = score_baselines(train, train, bench, kinds=["majority"])["majority"]
    assert report["per_type"]["open_ended_relation"] == pytest.approx(100 * 4 / 6)


def test_unknown_kind_and_unseen_type(bench):
    train = [make_item(row("a", "room_size", "numerical", "20.00", value=20.0, dimension="area"))]
    stats = fit_baselines(train, bench)
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline_predictions(train, stats, bench, "oracle")
    unseen = [make_item(row("b", "camera_depth", "numerical", "2.00", value=2.0, dimension="length"))]
    assert baseline_predictions(unseen, stats, bench, "mean") == {}


def test_numeric_mean_and_table():
    reports = {k: {"overall": 40.0, "per_type": {"abs_distance": 30.0, "rel_direction": 50.0},
                   "counts": {"per_type": {"abs_distance": 3, "rel_direction": 4}}} for k in KINDS}
    model = {"overall": 70.0, "per_type": {"abs_distance": 60.0, "rel_direction": 80.0}}
    assert numeric_mean(model["per_type"]) == pytest.approx(60.0)
    table = baseline_table(reports, model, "tiny")
    assert "| question type | n | tiny | mean | median | best_constant | majority |" in table
    assert "| abs_distance | 3 | 60.0 | 30.0 | 30.0 | 30.0 | 30.0 |" in table
    assert "**numeric mean**" in table and "**70.0**" in table


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("baselines") / "ds"
    build_dataset(str(out), BuildConfig(scenes=6, seed=0, test_fraction=0.34), progress=False)
    return out


def test_end_to_end_on_a_build_matches_the_benchmark_loader(built, bench, capsys, tmp_path):
    fast = load_items(str(built), "test")
    slow = bench.load(str(built), split="test", with_images=False)
    assert [i.id for i in fast] == [i.id for i in slow]
    assert [i.meta for i in fast] == [i.meta for i in slow]
    out = tmp_path / "b.json"
    assert main(["--data", str(built), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "No-perception baselines" in text and "| object_count |" in text
    reports = json.loads(out.read_text())
    assert set(reports) == set(KINDS)
    for report in reports.values():
        assert 0.0 <= report["overall"] <= 100.0
        assert report["counts"]["items"] == len(fast)


def test_cli_error_on_missing_split(built, capsys):
    assert main(["--data", str(built), "--split", "validation"]) == 2
    assert "validation" in capsys.readouterr().err
