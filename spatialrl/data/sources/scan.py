"""The one internal form every real-scan reader yields: a scan's objects, floor and frames.

Smooth Operator sec. 3.1 builds Numerical3D from richly annotated real 3D scans (ScanNet,
ScanNet++, ARKitScenes) "via geometric projection and template synthesis". Each reader in this
package (:mod:`.scannet`, :mod:`.arkitscenes`) turns one scan in its published layout into a
:class:`ScanScene`; everything after that (frame selection, visibility, questions, mirrors,
selection) is shared and never looks at a source's files again.

World frame: metres, right-handed, **z up** (ScanNet after its ``axisAlignment``; ARKitScenes'
world is already gravity-aligned with z up). The floor need not be at z = 0 and the walls need
not be axis-aligned. Cameras use OpenCV axes (x right, y down, z forward) and may roll.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["EXCLUDED_CATEGORIES", "ScanError", "ScanFrame", "ScanObject", "ScanScene", "upright_box"]


#: Categories never asked about: structure and the datasets' catch-all labels.
EXCLUDED_CATEGORIES = frozenset({
    "wall", "floor", "ceiling", "otherstructure", "otherfurniture", "otherprop", "object", "objects",
    "remove", "unknown", "door frame", "doorframe", "stairs", "column", "beam", "structure",
})  # fmt: skip


class ScanError(ValueError):
    """A scan that cannot be read: ``str(e)`` names the scene, the file and the field."""

    def __init__(self, scene: str, file: str | Path, field: str, message: str):
        self.scene, self.file, self.field, self.message = scene, str(file), field, message
        where = f"{self.file}: {field}" if field else self.file
        super().__init__(f"scene {scene}: {where}: {message}")


@dataclass(frozen=True)
class ScanObject:
    """One annotated object as an oriented 3D box in the world frame.

    Attributes:
        object_id: the source's id, as a string (ScanNet: the aggregation's ``objectId``;
            ARKitScenes: the annotation's ``uid``). Rows name their objects by it.
        category: the source's label, lower-case.
        center: box centre (m).
        size: full extents (m) along the box axes, ``size[i]`` along ``axes[i]``.
        axes: (3, 3) rows are the box's unit axes in world coordinates.
        z_min, z_max: the object's lowest and highest point (m): its vertices' range for a
            ScanNet object, the box's range for an ARKitScenes one.
    """

    object_id: str
    category: str
    center: tuple[float, float, float]
    size: tuple[float, float, float]
    axes: tuple[tuple[float, float, float], ...]
    z_min: float
    z_max: float

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) box-to-world rotation: its columns are the box axes."""
        return np.asarray(self.axes, dtype=np.float64).T

    def corners(self) -> np.ndarray:
        """(8, 3) box corners in world coordinates."""
        signs = np.array([[sx, sy, sz] for sz in (-1, 1) for sy in (-1, 1) for sx in (-1, 1)], dtype=np.float64)
        return (signs * (np.asarray(self.size) / 2)) @ self.rotation.T + np.asarray(self.center)

    @property
    def height(self) -> float:
        """Vertical extent (m): ``z_max - z_min``."""
        return self.z_max - self.z_min

    @property
    def longest_dimension(self) -> float:
        """Longest box extent (m), VSI-Bench's object size."""
        return float(max(self.size))

    def is_upright(self, tol: float = 1e-3) -> bool:
        """True when one box axis is vertical (the box turns about z only)."""
        return bool(np.max(np.abs(np.asarray(self.axes)[:, 2])) > 1 - tol)


@dataclass(frozen=True)
class ScanFrame:
    """One frame of a scan's video, as the reader found it (nothing decoded yet).

    Attributes:
        frame_id: the source's name for the frame (ScanNet: the export index, e.g. ``"120"``;
            ARKitScenes: the timestamp, e.g. ``"6845.704"``).
        time: seconds since the scan's first frame (orders frames; appearance order).
        color_path, depth_path: the image files (depth: uint16 PNG, ``depth_scale`` units
            per metre; ``None`` when the layout has no depth).
        camera_to_world: (4, 4) pose in the world frame, OpenCV camera axes.
        color_intrinsics, depth_intrinsics: (3, 3) pinhole matrices for the colour and the
            depth image at their own sizes.
        color_size, depth_size: ``(width, height)`` in pixels.
    """

    frame_id: str
    time: float
    color_path: Path
    depth_path: Path | None
    camera_to_world: np.ndarray
    color_intrinsics: np.ndarray
    color_size: tuple[int, int]
    depth_intrinsics: np.ndarray | None = None
    depth_size: tuple[int, int] | None = None
    depth_scale: float = 1000.0


@dataclass
class ScanScene:
    """One scan: its objects, its floor and its frames in time order.

    Attributes:
        source: ``"scannet"`` or ``"arkitscenes"``.
        scene_id: the source's id (``scene0000_00``, an ARKitScenes video id).
        objects: every annotated object (excluded categories included; the question
            templates decide what to ask about).
        floor_area: the room's floor area (m^2) from the scan's own geometry, or ``None``
            when the scan has no mesh to measure it from.
        floor_z: height (m) of the floor.
        frames: the usable frames in time order.
        skipped: frames left out, counted by reason (``"invalid pose"``, ...).
        files: the files read, for error messages and the dataset card.
        time_ordered: False when the frames' order is not the video's (mmdetection3d's
            random subset): no appearance-order question is asked then.
    """

    source: str
    scene_id: str
    objects: list[ScanObject]
    floor_area: float | None
    floor_z: float
    frames: list[ScanFrame]
    skipped: dict[str, int] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    time_ordered: bool = True


def upright_box(points: np.ndarray) -> tuple[tuple[float, float, float], tuple[float, float, float], tuple[tuple[float, ...], ...]]:
    """The smallest upright box around ``points`` ((N, 3), z up): the minimum-area rectangle
    around their floor projection (rotating calipers over the convex hull's edges) times their
    z range. Returns ``(center, size, axes)`` with ``axes`` rows x', y', z (x' the rectangle's
    longer side). For an object whose faces are vertical (furniture, a box), this is its own
    box whatever its heading; VSI-Bench measures sizes on an oriented box of the object's
    points (VLM-3R's data code: Open3D's minimal oriented box), which is this box for such
    objects."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if len(p) == 0:
        raise ValueError("upright_box: no points")
    xy = p[:, :2]
    z0, z1 = float(p[:, 2].min()), float(p[:, 2].max())
    hull = _hull_2d(xy)
    best = None
    if len(hull) >= 3:
        edges = np.roll(hull, -1, axis=0) - hull
        lengths = np.hypot(edges[:, 0], edges[:, 1])
        for (ex, ey), n in zip(edges, lengths):
            if n < 1e-12:
                continue
            u = np.array([ex, ey]) / n
            v = np.array([-u[1], u[0]])
            a, b = hull @ u, hull @ v
            area = (a.max() - a.min()) * (b.max() - b.min())
            if best is None or area < best[0] - 1e-12:
                best = (area, u, v, a.min(), a.max(), b.min(), b.max())
    if best is None:  # degenerate: all points on a line or one point
        u, v = np.array([1.0, 0.0]), np.array([0.0, 1.0])
        a, b = xy @ u, xy @ v
        best = (0.0, u, v, a.min(), a.max(), b.min(), b.max())
    _, u, v, a0, a1, b0, b1 = best
    if (b1 - b0) > (a1 - a0):  # x' along the longer side
        u, v, a0, a1, b0, b1 = v, -u, b0, b1, -a1, -a0
    c2 = u * (a0 + a1) / 2 + v * (b0 + b1) / 2
    center = (float(c2[0]), float(c2[1]), (z0 + z1) / 2)
    size = (float(a1 - a0), float(b1 - b0), z1 - z0)
    axes = ((float(u[0]), float(u[1]), 0.0), (float(v[0]), float(v[1]), 0.0), (0.0, 0.0, 1.0))
    return center, size, axes


def _hull_2d(xy: np.ndarray) -> np.ndarray:
    """Counter-clockwise convex hull vertices of 2D points (monotone chain; exact, no Qhull
    precision options needed for the few-point hulls of boxes)."""
    pts = np.unique(np.round(xy, 9), axis=0)
    if len(pts) < 3:
        return pts
    if len(pts) > 64:  # many points (a scanned object): let Qhull find the few hull candidates first
        from scipy.spatial import ConvexHull, QhullError

        try:
            pts = pts[ConvexHull(pts).vertices]
        except QhullError:  # all on a line
            pass
    pts = pts[np.lexsort((pts[:, 1], pts[:, 0]))]

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list = []
    for q in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], q) <= 0:
            lower.pop()
        lower.append(q)
    upper: list = []
    for q in pts[::-1]:
        while len(upper) >= 2 and cross(upper[-2], upper[-1], q) <= 0:
            upper.pop()
        upper.append(q)
    return np.array(lower[:-1] + upper[:-1])
