"""Furnished rooms of known geometry and a walk of camera poses through them.

What the tests and ``benchmarks/scan_build.py`` write in the published layouts
(:mod:`.scannet_writer`, :mod:`.arkitscenes_writer`) and then read back: every answer about
such a room can be computed by hand from :class:`~.box_render.KnownScan`.
"""

from __future__ import annotations

import math

import numpy as np

from .box_render import Box, KnownScan, look_at

__all__ = ["furnished_room", "walk"]

# (category, size (x, y, z) in m, colour)
_FURNITURE = [
    ("bed", (2.0, 1.6, 0.55), (180, 60, 60)),
    ("sofa", (1.9, 0.9, 0.8), (60, 150, 60)),
    ("table", (1.2, 0.7, 0.75), (140, 100, 50)),
    ("desk", (1.1, 0.6, 0.74), (90, 70, 160)),
    ("refrigerator", (0.7, 0.7, 1.8), (220, 220, 230)),
    ("tv", (1.0, 0.12, 0.6), (30, 30, 30)),
    ("lamp", (0.35, 0.35, 1.5), (240, 200, 40)),
    ("bookshelf", (0.9, 0.35, 1.9), (110, 70, 40)),
    ("plant", (0.4, 0.4, 0.9), (40, 120, 40)),
    ("trash can", (0.3, 0.3, 0.45), (90, 90, 90)),
]
_REPEATED = [("chair", (0.5, 0.5, 0.9), (200, 120, 40)), ("pillow", (0.5, 0.35, 0.15), (230, 230, 250))]


def furnished_room(seed: int = 0, width: float = 6.0, depth: float = 5.0, height: float = 2.6, yaw: float = 0.0,
                   floor_z: float = 0.0, n_unique: int = 8, n_chairs: int = 3, wall: float = 0.02) -> KnownScan:  # fmt: skip
    """A ``width x depth`` room turned ``yaw`` radians about z, floor at ``floor_z``: a floor
    slab, four thin walls inside the floor's edges (so the floor area is ``width * depth``),
    ``n_unique`` pieces of furniture of different categories and ``n_chairs`` chairs (a count),
    placed without overlap, each turned to a random heading."""
    rng = np.random.default_rng(seed)
    c, s = math.cos(yaw), math.sin(yaw)
    ex, ey = np.array([c, s, 0.0]), np.array([-s, c, 0.0])

    def world(x: float, y: float, z: float) -> tuple[float, float, float]:
        p = ex * (x - width / 2) + ey * (y - depth / 2) + np.array([0, 0, z + floor_z])
        return (float(p[0]), float(p[1]), float(p[2]))

    axes_room = (tuple(ex), tuple(ey), (0.0, 0.0, 1.0))
    structure = [
        Box("floor", world(width / 2, depth / 2, -0.05), (width, depth, 0.1), axes_room, (200, 200, 190)),
        Box("wall", world(wall / 2, depth / 2, height / 2), (wall, depth, height), axes_room, (235, 230, 220)),
        Box("wall", world(width - wall / 2, depth / 2, height / 2), (wall, depth, height), axes_room, (225, 230, 235)),
        Box("wall", world(width / 2, wall / 2, height / 2), (width - 2 * wall, wall, height), axes_room, (230, 225, 215)),
        Box("wall", world(width / 2, depth - wall / 2, height / 2), (width - 2 * wall, wall, height), axes_room, (220, 220, 230)),
    ]  # fmt: skip
    items = [_FURNITURE[i] for i in rng.permutation(len(_FURNITURE))[:n_unique]] + [_REPEATED[0]] * n_chairs
    placed: list[tuple[np.ndarray, float]] = []
    objects: list[Box] = []
    for cat, size, color in items:
        for _ in range(200):
            heading = float(rng.uniform(-math.pi, math.pi))
            r = 0.5 * math.hypot(size[0], size[1])
            x = float(rng.uniform(0.3 + r, width - 0.3 - r))
            y = float(rng.uniform(0.3 + r, depth - 0.3 - r))
            if all(math.hypot(x - p[0], y - p[1]) > r + q + 0.15 for p, q in placed):
                break
        else:
            continue
        placed.append((np.array([x, y]), r))
        a = heading + yaw
        axes = ((math.cos(a), math.sin(a), 0.0), (-math.sin(a), math.cos(a), 0.0), (0.0, 0.0, 1.0))
        objects.append(Box(cat, world(x, y, size[2] / 2), size, axes, color))
    return KnownScan(objects=objects, structure=structure, floor_area=width * depth, floor_z=floor_z)


def walk(known: KnownScan, n: int, seed: int = 0, eye_height: float = 1.4, max_roll_deg: float = 4.0) -> list[np.ndarray]:
    """``n`` camera-to-world poses (OpenCV axes) turning once around the room from near its
    centre, looking slightly down, each with a roll of up to ``max_roll_deg`` degrees."""
    rng = np.random.default_rng(seed)
    floor = known.structure[0] if known.structure else None
    center = np.asarray(floor.center) if floor is not None else np.mean([b.center for b in known.objects], axis=0)
    base = float(center[2]) + 0.05 + eye_height
    poses = []
    for k in range(n):
        ang = 2 * math.pi * k / max(n, 1)
        eye = center + np.array([0.3 * math.cos(ang), 0.3 * math.sin(ang), 0.0])
        eye[2] = base
        target = eye + np.array([math.cos(ang + math.pi), math.sin(ang + math.pi), -0.45])
        roll = math.radians(float(rng.uniform(-max_roll_deg, max_roll_deg)))
        poses.append(look_at(eye, target, roll))
    return poses
