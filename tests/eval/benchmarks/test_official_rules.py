"""Official scoring of the six public benchmarks: quirk tables written from each official scorer,
and a check that the official score never depends on spatialrl's own (lenient) parsers.

Each expected value below follows the official code named in the scorer's module docstring
(VSI-Bench: vision-x-nyu/thinking-in-space @ 51e089c3; CV-Bench: cambrian-mllm/cambrian @ 539ffc32;
BLINK: zeyofu/BLINK_Benchmark @ 2d6a779b; MMSI-Bench: InternRobotics/MMSI-Bench README @ 5de2f3d2;
MindCube: mll-lab-nu/MindCube @ 6d8fd9ac; Q-Spatial: open-compass/VLMEvalKit @ e8e78f05).
"""

from __future__ import annotations

import pytest

from spatialrl.eval.benchmarks import get_benchmark
from spatialrl.eval.benchmarks.base import EvalItem

# --------------------------------------------------------------------------------------------
# Per-benchmark quirk tables: (item fields, prediction, official score)
# --------------------------------------------------------------------------------------------

VSI = [
    # multiple choice: first space-separated token, trailing dots removed, case-insensitive
    ("route_planning", "B", "b.", 1.0),
    ("route_planning", "B", "B\nA", 0.0),            # split on " " only: "B\nA" is the token
    ("route_planning", "B", "(B)", 0.0),             # no bracket stripping
    ("route_planning", "A", "A or B", 1.0),
    ("route_planning", "A", " A", 0.0),              # a leading space empties the token
    # numerical: Python float() of that token, MRA over the 10 thresholds .50 .. .95
    ("object_counting", "4", "4..", 1.0),
    ("object_counting", "1000", "1_000", 1.0),       # float() accepts underscores
    ("object_counting", "4", "nan", 0.0),
    ("object_counting", "4", "inf", 0.0),
    ("object_counting", "4", "four", 0.0),
    ("object_abs_distance", "2.0", "1.0", 0.1),      # rel. error .5 passes only theta = .5
    ("object_abs_distance", "2.0", "2.9 m", 0.2),    # rel. error 0.44999.. (float) passes .5 and .55
    ("object_abs_distance", "2.0", "2.2", 0.9),      # rel. error .1: .5 .. .9 pass (9 of 10)
]

BLINK = [  # two choices
    ("(A)", "A", 1.0), ("(A)", "(A)", 1.0), ("(A)", "a", 0.0),        # "a" goes to GPT (ours: 0)
    ("(B)", "I pick (B).", 0.0),                                      # "(B)." is not a "(B)" token: GPT
    ("(B)", "(A) no\n\n(B)", 1.0),                                     # the last paragraph wins
    ("(A)", "(A) or (B)", 0.0),                                        # two labels: GPT
    ("(A)", "(C)", 0.0),                                               # exactly "(A)".."(E)" is kept as-is
    ("(B)", "E", 0.0),                                                 # any of A-E is taken as-is -> (E)
]

MMSI = [
    ("A", "``A``", 1.0), ("B", "`B` it is", 1.0), ("C", "\\boxed{C}", 1.0),
    ("B", "A or B", 1.0),                        # "A" is followed by " o": skipped
    ("A", "A chair", 0.0), ("A", "a", 0.0),      # case-sensitive, A-D only
    ("E", "E", 0.0),
    ("D", "The answer is D.", 1.0),
]

QSPATIAL = [  # ground truth 1 m = 100 cm
    ("\\scalar{2} \\distance_unit{meters}", 1.0),   # ratio exactly 2 passes (1e-8 added to both)
    ("\\scalar{201} \\distance_unit{cm}", 0.0),
    ("scalar{1-2} distance_unit{m}", 1.0),         # mean of 1 and 2
    ("\\scalar{1} \\distance_unit{ m}", 0.0),      # unit not stripped: unknown -> 0 cm
    ("\\scalar{1}", 0.0),                          # no unit tag: parse error
    ("\\scalar{3} \\distance_unit{ft}", 1.0),      # 91.44 cm
]


def _mc_item(qtype: str, answer: str, options: list[str], **meta) -> EvalItem:
    return EvalItem(id="1", question_type=qtype, prompt="", answer=answer, options=options, meta=meta)


@pytest.mark.parametrize("qtype, gt, pred, expected", VSI)
def test_vsibench_quirks(qtype, gt, pred, expected):
    options = ["A. chair", "B. table"] if qtype == "route_planning" else []
    item = _mc_item(qtype, gt, options, question="")
    assert get_benchmark("vsibench").score_item(item, pred).score == pytest.approx(expected)


@pytest.mark.parametrize("gt, pred, expected", BLINK)
def test_blink_quirks(gt, pred, expected):
    item = _mc_item("Relative_Depth", gt, ["x", "y"], blink_prompt="")
    assert get_benchmark("blink").score_item(item, pred).score == expected


@pytest.mark.parametrize("gt, pred, expected", MMSI)
def test_mmsi_quirks(gt, pred, expected):
    item = _mc_item("Attribute (Meas.)", gt, [], question="")
    assert get_benchmark("mmsi").score_item(item, pred).score == expected


@pytest.mark.parametrize("pred, expected", QSPATIAL)
def test_qspatial_quirks(pred, expected):
    item = EvalItem(id="QSpatial_plus/0", question_type="t", prompt="",
                    answer={"value": 1.0, "unit": "meters", "cm": 100.0})
    assert get_benchmark("qspatial").score_item(item, pred).score == expected


# --------------------------------------------------------------------------------------------
# The official score never goes through spatialrl's lenient parsers
# --------------------------------------------------------------------------------------------

CASES = {
    "vsibench": (_mc_item("route_planning", "A", ["A. chair", "B. table"], question=""), "A. chair", 1.0),
    "cvbench": (_mc_item("Count", "(C)", ["3", "2", "1", "0"], source="ADE20K", task="Count", cv_prompt=""), "1", 0.0),
    "blink": (_mc_item("Relative_Depth", "(B)", ["x", "y"], blink_prompt=""), "(B)", 1.0),
    "mmsi": (_mc_item("x", "B", [], question=""), "`B`", 1.0),
    "mindcube": (_mc_item("around", "A", [], question=""), "A or B", 1.0),
    "qspatial": (EvalItem(id="q/0", question_type="t", prompt="", answer={"value": 1.0, "unit": "m", "cm": 100.0}),
                 "\\scalar{1} \\distance_unit{m}", 1.0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_official_score_ignores_the_lenient_parsers(name, monkeypatch):
    import spatialrl.eval.benchmarks.qspatial as qspatial

    item, pred, expected = CASES[name]
    module = __import__(f"spatialrl.eval.benchmarks.{name}", fromlist=["_"])
    # Make every lenient reader answer nonsense: the official score must not change.
    for attr in ("lenient_choice", "lenient_text", "parse_quantity"):
        if hasattr(module, attr):
            monkeypatch.setattr(module, attr, lambda *a, **k: None)
    monkeypatch.setattr(qspatial.QSpatialBench, "lenient_meters", staticmethod(lambda text: None))
    result = get_benchmark(name).score_item(item, pred)
    assert result.score == pytest.approx(expected)
    assert result.lenient in (0.0, None)
