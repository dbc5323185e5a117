"""Mirrored views (SVQA-R1): the scene whose render is the horizontal flip of the original.

:func:`mirror_scene` reflects the whole configuration -- room, objects and camera -- in the
vertical plane ``x = room.width / 2`` (world x -> ``room.width - x``):

* object centres and the camera position: ``x -> room.width - x`` (y, z unchanged);
* object yaw: ``yaw -> pi - yaw`` (a reflected box is the box with the reflected heading;
  sizes are unchanged);
* camera yaw: ``yaw -> pi - yaw`` (the optical axis is reflected); pitch and intrinsics are
  unchanged, there is no roll.

Reflecting a right-handed camera frame gives a left-handed one; the mirrored camera keeps
its forward and down axes reflected and its right axis *negated*, so a reflected point has
camera coordinates ``(-x, y, z)``. With ``cx = width / 2`` it projects to ``u' = width - u``:
pixel centre ``i + 0.5`` maps to ``(W - 1 - i) + 0.5``, i.e. column ``i`` to column
``W - 1 - i``. The mirrored render is therefore the horizontal flip of the original
(``image[:, ::-1]``, and likewise depth, instance and 2D boxes via :func:`flip_box`); the
renderer's light has no camera-x component, and the floor's checkerboard is centred on the
mirror plane, so shading flips too. Equivalently, this is a reflection in the camera's x
axis: distances, sizes, heights, areas and counts are preserved; left/right relations (in
the image and relative to the camera) are swapped; object order (instance ids) is kept.

Exactness: the flip is exact in exact arithmetic; in float64 the two renders agree at every
pixel except where a pixel centre lies within ~1e-15 relative of an edge or a rounding
boundary (the tests measure this: zero differing pixels over their scenes). Mirroring twice
returns the original scene up to float rounding (~1e-15).
"""

from __future__ import annotations

import math

from .scene import Camera, Object3D, Scene

__all__ = ["flip_box", "mirror_scene", "mirror_x"]


def mirror_x(x: float, room_width: float) -> float:
    """World x after mirroring in ``x = room_width / 2``."""
    return room_width - x


def mirror_scene(scene: Scene) -> Scene:
    """Return the mirrored scene (see the module docstring); ``mirrored`` is toggled and
    ``scene_id`` kept (pair the two views with the flag)."""
    if abs(scene.camera.cx - scene.camera.width / 2) > 1e-9:
        raise ValueError(
            "mirror_scene needs the principal point at the image centre (cx == width / 2) "
            "for the render to be the exact horizontal flip"
        )
    W = scene.room.width
    objects = [
        Object3D(
            o.category,
            o.color,
            (mirror_x(o.center[0], W), o.center[1], o.center[2]),
            o.size,
            math.pi - o.yaw,
        )
        for o in scene.objects
    ]
    c = scene.camera
    camera = Camera(
        (mirror_x(c.position[0], W), c.position[1], c.position[2]),
        math.pi - c.yaw,
        c.pitch,
        c.fx,
        c.fy,
        c.cx,
        c.cy,
        c.width,
        c.height,
    )
    return Scene(scene.scene_id, scene.room, objects, camera, mirrored=not scene.mirrored)


def flip_box(box: tuple[float, float, float, float], width: float) -> tuple[float, float, float, float]:
    """Horizontally flip a pixel box ``(x1, y1, x2, y2)`` in an image ``width`` pixels wide:
    ``x1' = width - x2``, ``x2' = width - x1``."""
    x1, y1, x2, y2 = box
    return (width - x2, y1, width - x1, y2)
