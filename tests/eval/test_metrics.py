"""Evaluation metrics (``spatialrl.eval.metrics``) against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spatialrl.eval import metrics
from spatialrl.eval.metrics import (
    MRA_THRESHOLDS,
    bleu,
    box_accuracy_at,
    box_ious,
    box_miou,
    exact_match,
    in_range_buckets,
    mean_relative_accuracy,
    qspatial_success,
    samples_completed,
    sbert_similarity,
    smape,
    yes_no_accuracy,
)
from spatialrl.rewards.semantic import SemanticScorer

# -- mean relative accuracy (VSI-Bench) -----------------------------------------------------


def test_mra_thresholds_are_vsibench_linspace():
    # official: np.linspace(.5, .95, int((.95 - .5) / .05 + 2)) -> 10 thresholds
    assert len(MRA_THRESHOLDS) == 10
    np.testing.assert_allclose(MRA_THRESHOLDS, [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        (2.0, 2.0, 1.0),  # relative error 0 passes all 10
        (2.2, 2.0, 0.9),  # error 0.1 passes theta <= 0.90 (1 - theta >= 0.1): 9 of 10
        (1.8, 2.0, 0.9),  # same error from below
        (2.25, 2.0, 0.8),  # error 0.125: theta <= 0.85 -> 8
        (5.0, 4.0, 0.6),  # error 0.25 (exact in binary): theta <= 0.75 -> 6
        (3.0, 2.0, 0.1),  # error 0.5: only theta = 0.50 (1 - 0.5 = 0.5 <= 0.5)
        (3.1, 2.0, 0.0),  # error 0.55: none
        (0.0, 2.0, 0.0),  # error 1
        (2.03, 2.0, 1.0),  # error 0.015 < 0.05
    ],
)
def test_mra_hand_values(pred, gt, expected):
    assert mean_relative_accuracy(pred, gt) == pytest.approx(expected)
    assert isinstance(mean_relative_accuracy(pred, gt), float)


def test_mra_unparsable_and_zero_truth_score_zero():
    assert mean_relative_accuracy(None, 2.0) == 0.0
    assert mean_relative_accuracy(float("nan"), 2.0) == 0.0
    assert mean_relative_accuracy(float("inf"), 2.0) == 0.0
    # gt = 0: the official division gives inf/NaN, which never passes -> 0, even for pred 0
    assert mean_relative_accuracy(0.0, 0.0) == 0.0
    assert mean_relative_accuracy(1.0, 0.0) == 0.0


def test_mra_vectorised():
    out = mean_relative_accuracy([2.2, None, 5.0, 0.0], [2.0, 1.0, 4.0, 0.0])
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, [0.9, 0.0, 0.6, 0.0])
    np.testing.assert_allclose(mean_relative_accuracy(np.array([2.0, 3.0]), np.array([2.0, 2.0])), [1.0, 0.1])
    with pytest.raises(ValueError, match="shape"):
        mean_relative_accuracy([1.0, 2.0], [1.0])


# -- exact match ----------------------------------------------------------------------------


def test_exact_match():
    assert exact_match(" Yes ", "yes") == 1.0
    assert exact_match("TABLE", "table") == 1.0
    assert exact_match("yes.", "yes") == 0.0
    assert exact_match("the table", "table") == 0.0
    assert exact_match(None, "yes") == 0.0
    assert exact_match(3, "3") == 1.0


# -- Q-Spatial success ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pred", "gt", "delta", "expected"),
    [
        (2.0, 2.0, 2.0, True),
        (3.9, 2.0, 2.0, True),  # ratio 1.95
        (4.0, 2.0, 2.0, False),  # ratio 2 is not < 2
        (1.0, 2.0, 2.0, False),  # gt / pred = 2
        (1.01, 2.0, 2.0, True),  # 1.98
        (2.9, 2.0, 1.5, True),  # 1.45 < 1.5
        (3.0, 2.0, 1.5, False),  # 1.5 is not < 1.5
        (0.0, 2.0, 2.0, False),  # zero prediction fails
        (-2.0, 2.0, 2.0, False),  # negative prediction fails (ratio would be -1)
        (-2.0, -2.0, 2.0, False),  # non-positive truth fails
        (1.0, 0.0, 2.0, False),
        (None, 2.0, 2.0, False),  # unparsable
    ],
)
def test_qspatial_success_hand_values(pred, gt, delta, expected):
    out = qspatial_success(pred, gt, delta=delta)
    assert out is expected


def test_qspatial_success_vectorised():
    out = qspatial_success([3.9, 4.0, None, 0.0, -1.0], [2.0, 2.0, 2.0, 2.0, 2.0])
    assert out.tolist() == [True, False, False, False, False]
    with pytest.raises(ValueError, match="shape"):
        qspatial_success([1.0], [1.0, 2.0])


# -- sMAPE, samples completed, in-range buckets --------------------------------------------


def test_smape_hand_values():
    # |1 - 2| / ((1 + 2) / 2) = 2/3, |3 - 3| / 3 = 0 -> mean 1/3 -> 33.33 %
    assert smape([1.0, 3.0], [2.0, 3.0]) == pytest.approx(100.0 / 3.0)
    # unparsable predictions are excluded: only |1 - 2| / 1.5
    assert smape([None, 1.0], [5.0, 2.0]) == pytest.approx(200.0 / 3.0)
    # pred 0, gt 2: |0 - 2| / 1 = 2 -> 200 % (the maximum)
    assert smape([0.0], [2.0]) == pytest.approx(200.0)
    # both zero: zero error, not NaN
    assert smape([0.0, 1.0], [0.0, 1.0]) == 0.0
    assert smape([0.0], [0.0]) == 0.0
    # negative values use absolute values in the denominator: |-1 - 1| / ((1 + 1) / 2) = 2
    assert smape([-1.0], [1.0]) == pytest.approx(200.0)


def test_smape_nothing_parsable_is_nan():
    assert math.isnan(smape([None, None], [1.0, 2.0]))
    with pytest.raises(ValueError):
        smape([1.0], [1.0, 2.0])


def test_samples_completed():
    assert samples_completed([1.0, None, 2.0, None]) == 0.5
    assert samples_completed([None]) == 0.0
    assert samples_completed([0.0, 3.0]) == 1.0
    assert samples_completed([]) == 0.0


def test_in_range_bucket_boundaries():
    gts = [2.0] * 8
    preds = [
        1.0,  # ratio 0.5: excluded from every bucket (the first is (0.5, 1.0])
        1.01,  # 0.505 -> 50-100
        2.0,  # 1.0 -> 50-100 (upper bound included)
        2.02,  # 1.01 -> 100-150
        3.0,  # 1.5 -> 100-150 (upper bound included)
        3.02,  # 1.51 -> 150-200
        4.0,  # 2.0 -> excluded (the last bucket is open at 2)
        None,  # unparsable: not in the denominator
    ]
    out = in_range_buckets(preds, gts)
    assert out == pytest.approx({"50-100": 2 / 7, "100-150": 2 / 7, "150-200": 1 / 7})


def test_in_range_buckets_edge_cases():
    # ratio below 0.5 counts in the denominator only; gt 0 is excluded
    assert in_range_buckets([0.5, 2.0, 1.0], [2.0, 2.0, 0.0]) == pytest.approx(
        {"50-100": 0.5, "100-150": 0.0, "150-200": 0.0})
    assert in_range_buckets([None], [1.0]) == {"50-100": 0.0, "100-150": 0.0, "150-200": 0.0}
    with pytest.raises(ValueError):
        in_range_buckets([1.0], [1.0, 2.0])


# -- BLEU (corpus, sacrebleu) ---------------------------------------------------------------

HYP1, REF1 = "the cat sat on the mat", "the cat is on the mat"
HYP2, REF2 = "the cat", "the cat is here"


def test_bleu_single_sentence_by_hand():
    # unigrams: the(2, clipped 2) cat on mat match, sat does not -> 5/6; lengths equal -> BP 1
    assert bleu([HYP1], [REF1], max_order=1) == pytest.approx(100 * 5 / 6)
    # bigrams: "the cat", "on the", "the mat" of 5 -> 3/5; BLEU-2 = sqrt(5/6 * 3/5)
    assert bleu([HYP1], [REF1], max_order=2) == pytest.approx(100 * math.sqrt(5 / 6 * 3 / 5))


def test_bleu_brevity_penalty_by_hand():
    # every n-gram matches, hypothesis 2 tokens vs reference 4: BP = exp(1 - 4/2) = e^-1
    assert bleu([HYP2], [REF2], max_order=1) == pytest.approx(100 * math.exp(-1))
    assert bleu([HYP2], [REF2], max_order=2) == pytest.approx(100 * math.exp(-1))


def test_bleu_is_corpus_level():
    # counts are pooled: unigrams (5 + 2) / (6 + 2), bigrams (3 + 1) / (5 + 1), lengths 8 vs 10
    bp = math.exp(1 - 10 / 8)
    assert bleu([HYP1, HYP2], [REF1, REF2], max_order=1) == pytest.approx(100 * bp * 7 / 8)
    assert bleu([HYP1, HYP2], [REF1, REF2], max_order=2) == pytest.approx(100 * bp * math.sqrt(7 / 8 * 4 / 6))
    # not the mean of the sentence scores
    assert bleu([HYP1, HYP2], [REF1, REF2]) != pytest.approx((100 * 5 / 6 + 100 * math.exp(-1)) / 2)


def test_bleu_missing_predictions_and_errors():
    assert bleu([None], ["the cat"]) == 0.0
    # a missing prediction is an empty hypothesis: lengths 0 + 2 vs 2 + 2 -> BP e^-1, precision 2/2
    assert bleu([None, "the cat"], ["the cat", "the cat"]) == pytest.approx(100 * math.exp(-1))
    assert bleu([], []) == 0.0
    with pytest.raises(ValueError, match="max_order"):
        bleu(["a"], ["a"], max_order=5)
    with pytest.raises(ValueError):
        bleu(["a", "b"], ["a"])


# -- Sentence-BERT (no model: fixed embeddings) ---------------------------------------------


class _FixedEmbeddings(SemanticScorer):
    def embed(self, texts):
        vectors = {"a": [1.0, 0.0], "b": [0.0, 1.0], "c": [0.6, 0.8], "d": [-1.0, 0.0]}
        return np.array([vectors[t] for t in texts], dtype=np.float32)


def test_sbert_similarity_mean_cosine_in_percent():
    scorer = _FixedEmbeddings()
    # cosines: a.a = 1, c.a = 0.6, b.a = 0, d.a = -1 clipped to 0, missing -> 0; mean 1.6 / 5
    out = sbert_similarity(["a", "c", "b", "d", None], ["a", "a", "a", "a", "a"], scorer=scorer)
    assert out == pytest.approx(100 * 1.6 / 5)
    assert sbert_similarity([], [], scorer=scorer) == 0.0


# -- boxes ----------------------------------------------------------------------------------

GT = [0.0, 0.0, 10.0, 10.0]


def test_box_metrics_by_hand():
    preds = [
        [0, 0, 10, 10],  # IoU 1
        [5, 0, 15, 10],  # intersection 50, union 150 -> 1/3
        [0, 0, 10, 7.5],  # 75 / 100 = 0.75 exactly
        None,  # missing -> 0
        [20, 20, 30, 30],  # disjoint -> 0
    ]
    gts = [GT] * 5
    np.testing.assert_allclose(box_ious(preds, gts), [1.0, 1 / 3, 0.75, 0.0, 0.0])
    assert box_miou(preds, gts) == pytest.approx((1 + 1 / 3 + 0.75) / 5)
    assert box_accuracy_at(preds, gts) == pytest.approx(2 / 5)  # 0.75 counts (>=)
    assert box_accuracy_at(preds, gts, threshold=0.5) == pytest.approx(2 / 5)
    assert box_accuracy_at(preds, gts, threshold=0.3) == pytest.approx(3 / 5)


def test_box_metrics_edge_cases():
    assert box_miou([], []) == 0.0
    assert box_accuracy_at([], []) == 0.0
    assert box_ious([[10, 0, 0, 10]], [GT]).tolist() == [0.0]  # x2 < x1 is invalid
    with pytest.raises(ValueError):
        box_miou([GT], [GT, GT])


# -- yes / no -------------------------------------------------------------------------------


def test_yes_no_accuracy():
    assert yes_no_accuracy([True, False, None, True], [True, True, False, True]) == 0.5
    assert yes_no_accuracy([None], [False]) == 0.0  # unparsed is wrong, never "no"
    assert yes_no_accuracy([False], [False]) == 1.0
    assert yes_no_accuracy([], []) == 0.0
    with pytest.raises(ValueError):
        yes_no_accuracy([True], [True, False])


def test_every_public_metric_is_tested():
    tested = {
        "mean_relative_accuracy", "exact_match", "qspatial_success", "smape", "samples_completed",
        "in_range_buckets", "bleu", "sbert_similarity", "box_ious", "box_miou", "box_accuracy_at",
        "yes_no_accuracy",
    }
    public = {name for name, obj in vars(metrics).items()
              if callable(obj) and not name.startswith("_") and getattr(obj, "__module__", "") == metrics.__name__}
    assert public == tested
