"""Verifiable rewards: SNRA and its error maps, sharpness schedules, format, semantic, IoU,
and the Spatial-GRPO view-consistency penalty. TRL-ready callables live in ``spatialrl.rewards.trl``."""

from spatialrl.rewards.consistency import apply_view_consistency, view_consistency_penalty
from spatialrl.rewards.format import format_reward
from spatialrl.rewards.iou import box_iou, box_iou_matrix
from spatialrl.rewards.schedules import SharpnessSchedule
from spatialrl.rewards.snra import (
    BINARY_TOLERANCE,
    DEFAULT_E_MAX,
    DISCRETE_ERROR_SCALE,
    OPERATORS,
    binary_reward,
    composite_reward,
    discrete_error,
    numeric_error,
    snra,
    snra_tanh,
)

__all__ = [
    "BINARY_TOLERANCE",
    "DEFAULT_E_MAX",
    "DISCRETE_ERROR_SCALE",
    "OPERATORS",
    "SharpnessSchedule",
    "apply_view_consistency",
    "binary_reward",
    "box_iou",
    "box_iou_matrix",
    "composite_reward",
    "discrete_error",
    "format_reward",
    "numeric_error",
    "snra",
    "snra_tanh",
    "view_consistency_penalty",
]
