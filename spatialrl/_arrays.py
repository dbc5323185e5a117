"""Shared input handling for the pure reward and advantage functions.

They accept a Python float, a sequence, a numpy array or a torch tensor and return
the same kind. Internally they compute in numpy float64; torch inputs are converted
back to a tensor with the input's dtype and device. Validation errors name the argument.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _is_torch(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def as_float_array(value: Any, name: str, *, allow_nan: bool = False) -> np.ndarray:
    """``value`` as a float64 numpy array; ``ValueError`` naming ``name`` if it is not numeric or not finite."""
    if _is_torch(value):
        array = value.detach().to("cpu").double().numpy()
    else:
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be numeric (a float, list, numpy array or torch tensor): {exc}") from None
    if not allow_nan and array.size and not np.all(np.isfinite(array)):
        bad = int(np.flatnonzero(~np.isfinite(array.ravel()))[0])
        raise ValueError(
            f"{name} contains a non-finite value ({array.ravel()[bad]!r} at flat index {bad}); "
            "rewards and errors must be finite numbers"
        )
    return array


def like_input(result: np.ndarray, template: Any) -> Any:
    """Return ``result`` in the same container kind as ``template`` (float, ndarray or tensor)."""
    if _is_torch(template):
        import torch

        dtype = template.dtype if template.is_floating_point() else torch.float32
        return torch.as_tensor(result, dtype=dtype, device=template.device)
    if isinstance(template, np.ndarray):
        return result
    if np.ndim(template) == 0:
        return float(result)
    return result


def as_vector(value: Any, name: str) -> np.ndarray:
    """A finite 1-D float64 array, or ``ValueError`` naming ``name``."""
    array = as_float_array(value, name)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D with one value per completion, got shape {tuple(array.shape)}")
    return array


def as_group_index(group_ids: Any, n: int, name: str = "group_ids") -> tuple[np.ndarray, int]:
    """Map arbitrary hashable group ids to dense indices ``0..n_groups-1`` (first-seen order).

    Returns ``(index, n_groups)``. Raises ``ValueError`` naming ``name`` on a length mismatch.
    """
    if _is_torch(group_ids):
        group_ids = group_ids.detach().to("cpu").numpy()
    ids = group_ids.tolist() if isinstance(group_ids, np.ndarray) else list(group_ids)
    if len(ids) != n:
        raise ValueError(f"{name} has {len(ids)} entries but there are {n} rewards; pass one group id per completion")
    index = np.empty(n, dtype=np.int64)
    seen: dict[Any, int] = {}
    for i, gid in enumerate(ids):
        try:
            index[i] = seen.setdefault(gid, len(seen))
        except TypeError:
            raise ValueError(f"{name}[{i}] = {gid!r} is not hashable; use ints or strings as group ids") from None
    return index, len(seen)
