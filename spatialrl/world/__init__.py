"""The synthetic 3D world whose every answer is known exactly.

* :mod:`.scene` -- rooms, objects (metric oriented boxes), pinhole camera, seeded sampling, JSON.
* :mod:`.render` -- exact ray-cast renderer: image, z-depth, instance map, visible 2D boxes.
* :mod:`.mirror` -- the mirrored scene whose render is the exact horizontal flip.
* :mod:`.questions` -- question templates (imported on its own: ``spatialrl.world.questions``).
"""

from .mirror import flip_box, mirror_scene
from .render import FLOOR, WALL, RenderResult, render
from .scene import CATEGORIES, COLORS, Camera, CategorySpec, Object3D, Room, Scene, sample_scene

__all__ = [
    "CATEGORIES",
    "COLORS",
    "FLOOR",
    "WALL",
    "Camera",
    "CategorySpec",
    "Object3D",
    "RenderResult",
    "Room",
    "Scene",
    "flip_box",
    "mirror_scene",
    "render",
    "sample_scene",
]
