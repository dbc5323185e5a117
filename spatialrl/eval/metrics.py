"""Evaluation metrics, as the benchmarks and SVQA-R1 define them. Pure: values in, values out.

Parsed values go in (``None`` for an unparsable prediction); no function here reads model text.

- ``mean_relative_accuracy`` (VSI-Bench): the share of confidence thresholds
  ``theta in {0.50, 0.55, ..., 0.95}`` for which ``|pred - gt| / gt <= 1 - theta``.
  As in VSI-Bench's official code (``np.linspace(.5, .95, int((.95 - .5) / .05 + 2))``, which
  yields 10 thresholds), the relative error divides by ``gt``: a ground truth of 0 makes every
  prediction score 0 there (the official code's division gives inf/NaN, which never passes).
- ``exact_match``: case-insensitive, whitespace-stripped string equality.
- ``qspatial_success`` (Q-Spatial-Bench, SVQA-R1 sec. 4.3): ``max(pred / gt, gt / pred) < delta``
  with delta 2 (and 1.5 as a stricter variant); non-positive or missing values fail.
- ``smape`` (SVQA-R1 eq. 7): ``mean(|p - g| / ((|p| + |g|) / 2)) * 100`` over the parsable
  predictions only (the paper excludes the others and reports them as "samples completed").
- ``in_range_buckets`` (SVQA-R1 Tables 2-3): shares of the parsable predictions whose ratio
  ``pred / gt`` lies in (0.5, 1.0], (1.0, 1.5], (1.5, 2.0). The denominator is our reading of
  the tables: the buckets sum to success / completed (e.g. 9.68 + 5.38 + 8.60 = 23.66 and
  21.78 / 0.9208 = 23.65 for the base model in Table 2).
- ``bleu`` (BLEU-1, BLEU-2; SVQA-R1 Table 4): corpus BLEU from sacrebleu with
  ``max_ngram_order`` 1 or 2, in percent.
- ``sbert_similarity``: mean Sentence-BERT cosine (``spatialrl.rewards.semantic``), in percent.
- ``box_miou`` and ``box_accuracy_at`` (Acc@0.75): mean IoU and the share with IoU >= 0.75.
- ``yes_no_accuracy``: the share of parsed yes/no answers equal to the truth.

Fractions are returned in [0, 1] unless the docstring says percent.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from spatialrl._extras import require
from spatialrl.rewards.iou import box_iou

MRA_THRESHOLDS = np.linspace(0.5, 0.95, 10)


def _values(values: Any) -> np.ndarray:
    """Float array with NaN where a value is ``None``."""
    if isinstance(values, np.ndarray):
        return values.astype(np.float64)
    if values is None:
        return np.array(np.nan)
    if np.ndim(values) == 0:
        return np.array(float(values))
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def mean_relative_accuracy(pred: Any, gt: Any) -> Any:
    """VSI-Bench mean relative accuracy of each prediction, in [0, 1].

    Args:
        pred: prediction(s), ``None``/NaN for unparsable (scores 0).
        gt: ground truth(s), same shape.

    Returns:
        A float for scalar inputs, else an array of per-item scores (average it yourself).
    """
    if isinstance(gt, (int, float)) and (pred is None or isinstance(pred, (int, float))):
        return _mra_scalar(pred, gt)
    p, g = _values(pred), _values(gt)
    if p.shape != g.shape:
        raise ValueError(f"pred has shape {p.shape} but gt has shape {g.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(p - g) / g
    ok = rel[..., None] <= (1.0 - MRA_THRESHOLDS)  # NaN and inf never pass
    score = ok.mean(axis=-1)
    return float(score) if score.ndim == 0 else score


_MRA_BOUNDS = [float(b) for b in (1.0 - MRA_THRESHOLDS)]


def _mra_scalar(pred: float | None, gt: float) -> float:
    """Scalar path of ``mean_relative_accuracy`` (no numpy overhead; same float64 comparisons)."""
    if pred is None or gt == 0 or not math.isfinite(pred) or not math.isfinite(gt):
        return 0.0
    rel = abs(pred - gt) / gt
    if not rel == rel:  # NaN
        return 0.0
    return sum(rel <= bound for bound in _MRA_BOUNDS) / len(_MRA_BOUNDS)


def exact_match(pred: str | None, gt: str) -> float:
    """1.0 when ``pred`` equals ``gt`` ignoring case and surrounding whitespace."""
    if pred is None:
        return 0.0
    return 1.0 if str(pred).strip().lower() == str(gt).strip().lower() else 0.0


def qspatial_success(pred: Any, gt: Any, delta: float = 2.0) -> Any:
    """``max(pred / gt, gt / pred) < delta`` per item (Q-Spatial-Bench); missing or non-positive fails."""
    p, g = _values(pred), _values(gt)
    if p.shape != g.shape:
        raise ValueError(f"pred has shape {p.shape} but gt has shape {g.shape}")
    valid = (p > 0) & (g > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.maximum(p / g, g / p)
    out = np.where(valid, ratio < delta, False)
    return bool(out) if out.ndim == 0 else out


def smape(preds: Sequence[float | None], gts: Sequence[float]) -> float:
    """Symmetric mean absolute percentage error in percent (SVQA-R1 eq. 7), over parsable predictions.

    Returns NaN when no prediction is parsable. A pair with ``pred == gt == 0`` has zero error.
    """
    p, g = _values(preds), _values(gts)
    if p.shape != g.shape:
        raise ValueError(f"preds has {p.size} values but gts has {g.size}")
    keep = np.isfinite(p)
    if not keep.any():
        return float("nan")
    p, g = p[keep], g[keep]
    denom = (np.abs(p) + np.abs(g)) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(denom > 0, np.abs(p - g) / denom, 0.0)
    return float(terms.mean() * 100.0)


def samples_completed(preds: Sequence[float | None]) -> float:
    """Share of predictions that parsed to a number (SVQA-R1 "samples completed")."""
    p = _values(preds)
    return float(np.isfinite(p).mean()) if p.size else 0.0


def in_range_buckets(preds: Sequence[float | None], gts: Sequence[float]) -> dict[str, float]:
    """Shares of parsable predictions with ``pred / gt`` in (0.5, 1], (1, 1.5], (1.5, 2) (SVQA-R1 Table 2)."""
    p, g = _values(preds), _values(gts)
    if p.shape != g.shape:
        raise ValueError(f"preds has {p.size} values but gts has {g.size}")
    keep = np.isfinite(p) & (g > 0)
    if not keep.any():
        return {"50-100": 0.0, "100-150": 0.0, "150-200": 0.0}
    ratio = p[keep] / g[keep]
    return {
        "50-100": float(((ratio > 0.5) & (ratio <= 1.0)).mean()),
        "100-150": float(((ratio > 1.0) & (ratio <= 1.5)).mean()),
        "150-200": float(((ratio > 1.5) & (ratio < 2.0)).mean()),
    }


def bleu(preds: Sequence[str | None], refs: Sequence[str], max_order: int = 1) -> float:
    """Corpus BLEU-n in percent (sacrebleu, ``max_ngram_order = n``); missing predictions are empty."""
    if max_order not in (1, 2, 3, 4):
        raise ValueError(f"max_order must be 1-4, got {max_order}")
    if len(preds) != len(refs):
        raise ValueError(f"preds has {len(preds)} items but refs has {len(refs)}")
    if not preds:
        return 0.0
    BLEU = require("eval", "sacrebleu.metrics").BLEU

    metric = BLEU(max_ngram_order=max_order)  # corpus BLEU, no effective-order smoothing
    hyps = ["" if p is None else str(p) for p in preds]
    return float(metric.corpus_score(hyps, [[str(r) for r in refs]]).score)


def sbert_similarity(preds: Sequence[str | None], refs: Sequence[str], scorer: Any = None) -> float:
    """Mean Sentence-BERT cosine similarity in percent (SVQA-R1 Table 4 "sBERT")."""
    from spatialrl.rewards.semantic import semantic_similarity

    if not preds:
        return 0.0
    return float(np.mean(semantic_similarity(list(preds), [str(r) for r in refs], scorer)) * 100.0)


def box_ious(preds: Sequence[Any], gts: Sequence[Any]) -> np.ndarray:
    """Per-item IoU; a missing or invalid predicted box has IoU 0."""
    if len(preds) != len(gts):
        raise ValueError(f"preds has {len(preds)} boxes but gts has {len(gts)}")
    return np.array([box_iou(p, g) for p, g in zip(preds, gts)], dtype=np.float64)


def box_miou(preds: Sequence[Any], gts: Sequence[Any]) -> float:
    """Mean IoU over all items (missing predictions count as 0)."""
    ious = box_ious(preds, gts)
    return float(ious.mean()) if ious.size else 0.0


def box_accuracy_at(preds: Sequence[Any], gts: Sequence[Any], threshold: float = 0.75) -> float:
    """Share of items with IoU >= ``threshold`` (SVQA-R1's Acc@0.75)."""
    ious = box_ious(preds, gts)
    return float((ious >= threshold).mean()) if ious.size else 0.0


def yes_no_accuracy(preds: Sequence[bool | None], gts: Sequence[bool]) -> float:
    """Share of answers equal to the truth; an unparsed answer (``None``) is wrong."""
    if len(preds) != len(gts):
        raise ValueError(f"preds has {len(preds)} items but gts has {len(gts)}")
    if not preds:
        return 0.0
    return float(np.mean([p is not None and bool(p) == bool(g) for p, g in zip(preds, gts)]))
