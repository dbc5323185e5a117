"""Box IoU reward for grounding answers (SVQA-R1 sec. 4.3 box metrics; Smooth Operator's
grounding subtask enters SNRA through ``discrete_error(iou)``).

Boxes are ``(x1, y1, x2, y2)`` with ``x2 >= x1`` and ``y2 >= y1``. A missing (``None``) or
degenerate-by-order box scores 0; two identical zero-area boxes also score 0 (no overlap area).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def box_iou(pred: Sequence[float] | None, target: Sequence[float] | None) -> float:
    """Intersection over union of two boxes, in [0, 1]; 0.0 when either is ``None`` or invalid."""
    if pred is None or target is None:
        return 0.0
    try:
        px1, py1, px2, py2 = (float(v) for v in pred)
        tx1, ty1, tx2, ty2 = (float(v) for v in target)
    except (TypeError, ValueError):
        return 0.0
    values = (px1, py1, px2, py2, tx1, ty1, tx2, ty2)
    if not all(np.isfinite(values)) or px2 < px1 or py2 < py1 or tx2 < tx1 or ty2 < ty1:
        return 0.0
    iw = min(px2, tx2) - max(px1, tx1)
    ih = min(py2, ty2) - max(py1, ty1)
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (px2 - px1) * (py2 - py1) + (tx2 - tx1) * (ty2 - ty1) - inter
    return float(inter / union) if union > 0 else 0.0


def box_iou_matrix(pred: Any, target: Any) -> np.ndarray:
    """Row-wise IoU of two ``(N, 4)`` arrays of valid boxes (vectorised); returns ``(N,)``."""
    p = np.asarray(pred, dtype=np.float64).reshape(-1, 4)
    t = np.asarray(target, dtype=np.float64).reshape(-1, 4)
    if p.shape != t.shape:
        raise ValueError(f"pred has {len(p)} boxes but target has {len(t)}")
    iw = np.clip(np.minimum(p[:, 2], t[:, 2]) - np.maximum(p[:, 0], t[:, 0]), 0, None)
    ih = np.clip(np.minimum(p[:, 3], t[:, 3]) - np.maximum(p[:, 1], t[:, 1]), 0, None)
    inter = iw * ih
    area = lambda b: np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)  # noqa: E731
    union = area(p) + area(t) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou
