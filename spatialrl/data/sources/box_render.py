"""Ray-cast colour, depth and instance images of oriented boxes: scans of known geometry.

The tests, ``benchmarks/scan_build.py`` and anyone checking the scan readers need ScanNet and
ARKitScenes scans whose every answer is known. :class:`KnownScan` is such a scan: a room and
its objects as oriented boxes; :func:`render_boxes` renders what a camera at any pose (roll
included) sees of it, with the depth map a depth sensor would give (z along the optical axis,
metres). The writers (:mod:`.scannet_writer`, :mod:`.arkitscenes_writer`) put a known scan in
each dataset's published layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Box", "KnownScan", "box_mesh", "look_at", "render_boxes"]


@dataclass(frozen=True)
class Box:
    """An oriented box: ``size[i]`` along the unit axis ``axes[i]`` (rows), world metres."""

    label: str
    center: tuple[float, float, float]
    size: tuple[float, float, float]
    axes: tuple[tuple[float, float, float], ...] = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    color: tuple[int, int, int] = (128, 128, 128)

    def corners(self) -> np.ndarray:
        signs = np.array([[sx, sy, sz] for sz in (-1, 1) for sy in (-1, 1) for sx in (-1, 1)], dtype=np.float64)
        return (signs * (np.asarray(self.size) / 2)) @ np.asarray(self.axes) + np.asarray(self.center)


@dataclass
class KnownScan:
    """A room of known geometry: ``structure`` boxes (floor slab, walls) and ``objects``.

    ``objects[i]`` is the annotated object with id ``i`` (its ``label`` is the category);
    ``structure`` boxes are rendered and meshed but not annotated. ``floor_area`` is the
    room's true floor area (m^2) and ``floor_z`` the floor's height.
    """

    objects: list[Box]
    structure: list[Box] = field(default_factory=list)
    floor_area: float = 0.0
    floor_z: float = 0.0


def look_at(eye, target, roll: float = 0.0, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """(4, 4) camera-to-world pose (OpenCV axes: x right, y down, z forward) of a camera at
    ``eye`` looking at ``target``, turned by ``roll`` radians about its optical axis
    (positive: the image turns clockwise as seen by the viewer)."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c, s = np.cos(roll), np.sin(roll)
    x, y = c * x + s * y, -s * x + c * y
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = x, y, z, eye
    return pose


def render_boxes(
    boxes: list[Box], camera_to_world: np.ndarray, intrinsics: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render ``boxes`` from a camera: ``(color (H, W, 3) uint8, depth (H, W) float32 metres
    along the optical axis, 0 where no box is hit, instance (H, W) int32 box index or -1)``.
    Pixel centres are cast (u + 0.5, v + 0.5); faces are shaded by their normal so edges show."""
    w, h = size
    K = np.asarray(intrinsics, dtype=np.float64)
    pose = np.asarray(camera_to_world, dtype=np.float64)
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    d_cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1).reshape(-1, 3)
    d_world = d_cam @ pose[:3, :3].T
    origin = pose[:3, 3]
    best_t = np.full(len(d_cam), np.inf)
    best_i = np.full(len(d_cam), -1, dtype=np.int32)
    best_n = np.zeros((len(d_cam), 3))
    for i, b in enumerate(boxes):
        R = np.asarray(b.axes, dtype=np.float64)  # rows: box axes
        o = R @ (origin - np.asarray(b.center))
        d = d_world @ R.T
        half = np.asarray(b.size) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = (-half - o) / d
            t2 = (half - o) / d
        tmin = np.nanmax(np.minimum(t1, t2), axis=1)
        tmax = np.nanmin(np.maximum(t1, t2), axis=1)
        hit = (tmax >= tmin) & (tmin > 1e-6) & (tmin < best_t)
        if not hit.any():
            continue
        best_t[hit], best_i[hit] = tmin[hit], i
        face = np.argmax(np.minimum(t1, t2)[hit], axis=1)
        normal = np.zeros((hit.sum(), 3))
        normal[np.arange(len(face)), face] = -np.sign(d[hit, face])
        best_n[hit] = normal @ R
    depth = np.where(best_i >= 0, best_t, 0.0)  # d_cam has z = 1: t is the depth along the axis
    colors = np.array([b.color for b in boxes] + [(0, 0, 0)], dtype=np.float64)
    shade = 0.55 + 0.45 * np.abs(best_n @ np.array([0.3, 0.5, 0.81]))
    color = colors[best_i] * np.where(best_i >= 0, shade, 1.0)[:, None]
    return (color.reshape(h, w, 3).clip(0, 255).astype(np.uint8), depth.reshape(h, w).astype(np.float32),
            best_i.reshape(h, w))


def box_mesh(box: Box, step: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``(vertices (N, 3), faces (M, 3))`` of a box's surface: each face a grid of squares of
    side ``step`` metres at most (``0``: the 8 corners and 12 triangles). Faces wind outwards."""
    if step <= 0:
        c = box.corners()  # index = sx + 2 sy + 4 sz bits
        faces = np.array([[0, 2, 1], [1, 2, 3], [4, 5, 6], [5, 7, 6], [0, 1, 4], [1, 5, 4],
                          [2, 6, 3], [3, 6, 7], [0, 4, 2], [2, 4, 6], [1, 3, 5], [3, 7, 5]])  # fmt: skip
        return c, faces
    verts, faces = [], []
    half = np.asarray(box.size) / 2
    R = np.asarray(box.axes, dtype=np.float64)
    for axis in range(3):
        a, b = [k for k in range(3) if k != axis]
        na = max(1, int(np.ceil(box.size[a] / step)))
        nb = max(1, int(np.ceil(box.size[b] / step)))
        ga, gb = np.meshgrid(np.linspace(-half[a], half[a], na + 1), np.linspace(-half[b], half[b], nb + 1), indexing="ij")
        for sign in (-1.0, 1.0):
            local = np.zeros((ga.size, 3))
            local[:, a], local[:, b], local[:, axis] = ga.ravel(), gb.ravel(), sign * half[axis]
            base = sum(len(v) for v in verts)
            verts.append(local @ R + np.asarray(box.center))
            idx = np.arange(ga.size).reshape(na + 1, nb + 1) + base
            q = np.stack([idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]], axis=-1).reshape(-1, 4)
            tri = np.concatenate([q[:, [0, 1, 2]], q[:, [0, 2, 3]]])
            # (a, b, axis) is a right-handed order for axis x and z but not for y: wind outwards
            right_handed = np.linalg.det(np.eye(3)[[a, b, axis]]) > 0
            faces.append(tri if (sign > 0) == right_handed else tri[:, ::-1])
    return np.concatenate(verts), np.concatenate(faces)
