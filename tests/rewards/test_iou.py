"""Box IoU reward."""

import numpy as np
import pytest

from spatialrl.rewards import box_iou, box_iou_matrix


def test_hand_values():
    assert box_iou((0, 0, 2, 2), (0, 0, 2, 2)) == 1.0
    assert box_iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)  # inter 1, union 4 + 4 - 1
    assert box_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0
    assert box_iou((0, 0, 4, 4), (1, 1, 3, 3)) == pytest.approx(4 / 16)


@pytest.mark.parametrize(
    "pred", [None, (2, 0, 1, 1), (0, 0, float("nan"), 1), ("a", 0, 1, 1), (0, 0, 1), (1, 1, 1, 1)]
)
def test_invalid_boxes_score_zero(pred):
    assert box_iou(pred, (0, 0, 1, 1)) == 0.0


def test_matrix_matches_scalar():
    rng = np.random.default_rng(0)
    a = np.sort(rng.uniform(0, 10, size=(50, 2, 2)), axis=1).transpose(0, 2, 1).reshape(50, 4)[:, [0, 2, 1, 3]]
    b = np.sort(rng.uniform(0, 10, size=(50, 2, 2)), axis=1).transpose(0, 2, 1).reshape(50, 4)[:, [0, 2, 1, 3]]
    expected = [box_iou(p, t) for p, t in zip(a, b)]
    assert box_iou_matrix(a, b).tolist() == pytest.approx(expected)
    with pytest.raises(ValueError):
        box_iou_matrix(a, b[:3])
