"""Procedural 3D scenes: a box room, furniture-like objects with metric boxes, and a pinhole camera.

This module is the ground truth of the synthetic world. Every answer the question templates
produce is computed from these dataclasses, so the conventions are fixed here once:

World frame
    Meters, right-handed, z up. The room is the axis-aligned box
    ``[0, room.width] x [0, room.depth] x [0, room.height]``; the floor is the plane z = 0.

Objects (:class:`Object3D`)
    An oriented 3D box. ``center`` is the box centre in world coordinates; ``size`` are the
    full extents along the object's *local* x, y, z axes before rotation; ``yaw`` (radians)
    rotates the local frame about +z (counter-clockwise seen from above). Sampled objects
    stand on the floor, so ``center[2] == size[2] / 2``. Category ``ball`` is rendered as a
    sphere of diameter ``size[0]`` (its size is always (d, d, d)); every other category is
    rendered as its box. Geometric helpers (``corners``, ``footprint_polygon``) always use
    the box, which for a ball is its bounding cube.

Camera (:class:`Camera`)
    Pinhole camera with OpenCV axes: camera x right, y down, z forward (optical axis).
    ``yaw`` is the heading of the optical axis in the world xy plane, measured from +x
    towards +y; ``pitch`` is its elevation angle (negative = looking down). There is no
    roll: the camera x axis is always horizontal. ``fx, fy, cx, cy`` are in pixels for an
    image of ``width x height`` pixels, and pixel (column i, row j) has its centre at
    (u, v) = (i + 0.5, j + 0.5). A camera-frame point (x, y, z) with z > 0 projects to
    ``u = fx * x / z + cx``, ``v = fy * y / z + cy``. Sampled cameras have ``cx = width / 2``
    and ``cy = height / 2`` exactly (this is what makes mirroring pixel-exact).

Scenes (:class:`Scene`) serialise to JSON and back exactly: every float is stored as a Python
float (``repr`` round-trips), tuples come back as tuples, and ``Scene.from_json(s.to_json())
== s``.

:func:`sample_scene` draws a seeded random room: 3-8 m wide and deep, 2.4-3.0 m high, with
``n_objects`` objects of distinct names (no two objects share colour *and* category) whose
footprints are pairwise separated by at least ``MIN_GAP`` metres, all inside the room, and a
camera near a wall at 1.2-1.7 m height looking into the room with a 60-90 degree horizontal
field of view. All sampled lengths are rounded to the centimetre and angles to the
milliradian, so JSON files and question texts stay readable.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "CATEGORIES",
    "COLORS",
    "MIN_GAP",
    "Camera",
    "CategorySpec",
    "Object3D",
    "Room",
    "Scene",
    "sample_scene",
    "footprints_overlap",
]

Vec3 = tuple[float, float, float]

#: Minimum horizontal gap (m) between any two object footprints in a sampled scene.
MIN_GAP = 0.05
#: Minimum horizontal distance (m) between the camera and any object footprint in a sampled scene.
CAMERA_CLEARANCE = 0.5
#: Image size (pixels, square) the intrinsics of sampled cameras are expressed for.
DEFAULT_IMAGE_SIZE = 448


# --------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CategorySpec:
    """An object category and its realistic size range.

    ``size_min``/``size_max`` bound the full extents (m) along the local x (length), y
    (depth) and z (height) axes. ``shape`` is ``"box"`` or ``"sphere"``; a sphere has one
    diameter, drawn from ``[size_min[0], size_max[0]]`` and used for all three extents.
    """

    name: str
    size_min: Vec3
    size_max: Vec3
    shape: str = "box"

    def sample_size(self, rng: np.random.Generator) -> Vec3:
        """Draw extents uniformly in the range, rounded to the centimetre."""
        if self.shape == "sphere":
            d = _round_cm(rng.uniform(self.size_min[0], self.size_max[0]))
            return (d, d, d)
        return tuple(_round_cm(rng.uniform(lo, hi)) for lo, hi in zip(self.size_min, self.size_max))  # type: ignore[return-value]

    def contains_size(self, size: Vec3, tol: float = 1e-9) -> bool:
        """Whether ``size`` lies inside this category's range (inclusive, with ``tol``)."""
        return all(lo - tol <= s <= hi + tol for s, lo, hi in zip(size, self.size_min, self.size_max))


def _cat(name: str, lo: Vec3, hi: Vec3, shape: str = "box") -> CategorySpec:
    return CategorySpec(name, lo, hi, shape)


#: Object categories with size ranges in metres (length x depth x height).
CATEGORIES: dict[str, CategorySpec] = {
    c.name: c
    for c in [
        _cat("chair", (0.40, 0.40, 0.80), (0.60, 0.60, 1.10)),
        _cat("table", (0.80, 0.60, 0.70), (1.80, 1.00, 0.80)),
        _cat("sofa", (1.60, 0.80, 0.70), (2.40, 1.00, 0.95)),
        _cat("bed", (1.90, 0.90, 0.45), (2.20, 1.80, 0.65)),
        _cat("lamp", (0.25, 0.25, 1.20), (0.45, 0.45, 1.80)),
        _cat("cabinet", (0.60, 0.35, 0.80), (1.20, 0.60, 2.00)),
        _cat("box", (0.30, 0.30, 0.25), (0.60, 0.60, 0.50)),
        _cat("ball", (0.20, 0.20, 0.20), (0.70, 0.70, 0.70), shape="sphere"),
        _cat("plant", (0.30, 0.30, 0.50), (0.60, 0.60, 1.50)),
        _cat("tv", (0.90, 0.10, 0.55), (1.60, 0.25, 0.95)),
    ]
}

#: Named object colours (sRGB, 0-255), chosen far from each other and from the grey room.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (35, 165, 55),
    "blue": (35, 75, 215),
    "yellow": (235, 215, 35),
    "purple": (140, 50, 185),
    "orange": (250, 125, 20),
    "white": (245, 245, 245),
    "black": (25, 25, 25),
}


def _round_cm(x: float) -> float:
    return float(round(float(x), 2))


def _round_mrad(x: float) -> float:
    return float(round(float(x), 3))


def _vec3(v: Any, name: str) -> Vec3:
    t = tuple(float(x) for x in v)
    if len(t) != 3:
        raise ValueError(f"{name} must have 3 components, got {v!r}")
    return t  # type: ignore[return-value]


# --------------------------------------------------------------------------------------
# Dataclasses
# --------------------------------------------------------------------------------------

# Sign pattern of the 8 box corners: bottom face counter-clockwise, then top face.
_CORNER_SIGNS = np.array(
    [[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1], [-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]],
    dtype=np.float64,
)


@dataclass(frozen=True)
class Object3D:
    """An object: an oriented 3D box (or a sphere for category ``ball``).

    Attributes:
        category: key of :data:`CATEGORIES`.
        color: key of :data:`COLORS`.
        center: world coordinates (m) of the box centre.
        size: full extents (m) along the local x, y, z axes before ``yaw``.
        yaw: rotation (rad) of the local frame about world +z, counter-clockwise from above.
    """

    category: str
    color: str
    center: Vec3
    size: Vec3
    yaw: float

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}; use one of {sorted(CATEGORIES)}")
        if self.color not in COLORS:
            raise ValueError(f"unknown color {self.color!r}; use one of {sorted(COLORS)}")
        object.__setattr__(self, "category", str(self.category))
        object.__setattr__(self, "color", str(self.color))
        object.__setattr__(self, "center", _vec3(self.center, "center"))
        size = _vec3(self.size, "size")
        if min(size) <= 0:
            raise ValueError(f"size must be positive, got {size}")
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "yaw", float(self.yaw))

    # --- naming / scalar properties -------------------------------------------------
    @property
    def name(self) -> str:
        """``"<color> <category>"``, e.g. ``"red chair"``; unique within a sampled scene."""
        return f"{self.color} {self.category}"

    @property
    def shape(self) -> str:
        """``"box"`` or ``"sphere"`` (how the renderer draws it)."""
        return CATEGORIES[self.category].shape

    @property
    def height(self) -> float:
        """Vertical extent (m), ``size[2]``."""
        return self.size[2]

    @property
    def longest_dimension(self) -> float:
        """Largest of the three extents (m)."""
        return max(self.size)

    @property
    def bottom_z(self) -> float:
        return self.center[2] - self.size[2] / 2

    @property
    def top_z(self) -> float:
        return self.center[2] + self.size[2] / 2

    @property
    def volume(self) -> float:
        """Volume (m^3) of the shape actually drawn (box, or sphere for a ball)."""
        if self.shape == "sphere":
            return math.pi / 6 * self.size[0] ** 3
        return self.size[0] * self.size[1] * self.size[2]

    @property
    def footprint_area(self) -> float:
        """Area (m^2) of the box footprint (length x depth)."""
        return self.size[0] * self.size[1]

    # --- geometry -------------------------------------------------------------------
    def rotation(self) -> np.ndarray:
        """(3, 3) matrix whose columns are the local x, y, z axes in world coordinates."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])

    def corners(self) -> np.ndarray:
        """(8, 3) world coordinates of the box corners: bottom face counter-clockwise
        (seen from above), then the top face in the same order."""
        half = np.asarray(self.size) / 2
        local = _CORNER_SIGNS * half
        return local @ self.rotation().T + np.asarray(self.center)

    def footprint_polygon(self) -> np.ndarray:
        """(4, 2) world xy of the footprint rectangle, counter-clockwise."""
        return self.corners()[:4, :2].copy()

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "color": self.color,
            "center": list(self.center),
            "size": list(self.size),
            "yaw": self.yaw,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Object3D:
        return cls(d["category"], d["color"], tuple(d["center"]), tuple(d["size"]), d["yaw"])


@dataclass(frozen=True)
class Room:
    """Axis-aligned box room ``[0, width] x [0, depth] x [0, height]`` (m)."""

    width: float
    depth: float
    height: float

    def __post_init__(self) -> None:
        for k in ("width", "depth", "height"):
            v = float(getattr(self, k))
            if not v > 0:
                raise ValueError(f"room {k} must be positive, got {v}")
            object.__setattr__(self, k, v)

    @property
    def floor_area(self) -> float:
        """width x depth (m^2)."""
        return self.width * self.depth

    @property
    def volume(self) -> float:
        return self.width * self.depth * self.height

    def to_dict(self) -> dict[str, Any]:
        return {"width": self.width, "depth": self.depth, "height": self.height}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Room:
        return cls(d["width"], d["depth"], d["height"])


@dataclass(frozen=True)
class Camera:
    """Pinhole camera, OpenCV axes (x right, y down, z forward), no roll.

    Attributes:
        position: world coordinates (m) of the optical centre.
        yaw: heading (rad) of the optical axis in the world xy plane, from +x towards +y.
        pitch: elevation (rad) of the optical axis; negative looks down.
        fx, fy, cx, cy: intrinsics in pixels for an image of ``width x height`` pixels.
        width, height: the image size (pixels) the intrinsics are for.
    """

    position: Vec3
    yaw: float
    pitch: float
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "position", _vec3(self.position, "position"))
        for k in ("yaw", "pitch", "fx", "fy", "cx", "cy"):
            object.__setattr__(self, k, float(getattr(self, k)))
        for k in ("width", "height"):
            v = getattr(self, k)
            if int(v) != v or v <= 0:
                raise ValueError(f"camera {k} must be a positive integer, got {v!r}")
            object.__setattr__(self, k, int(v))
        if self.fx <= 0 or self.fy <= 0:
            raise ValueError("camera focal lengths fx, fy must be positive")

    @classmethod
    def from_fov(
        cls,
        position: Vec3,
        yaw: float,
        pitch: float,
        hfov: float,
        width: int = DEFAULT_IMAGE_SIZE,
        height: int | None = None,
    ) -> Camera:
        """Camera with square pixels, principal point at the image centre and horizontal
        field of view ``hfov`` (rad)."""
        height = width if height is None else height
        fx = (width / 2) / math.tan(hfov / 2)
        return cls(position, yaw, pitch, fx, fx, width / 2, height / 2, width, height)

    # --- orientation ----------------------------------------------------------------
    @property
    def forward(self) -> np.ndarray:
        """Unit optical axis (camera +z) in world coordinates."""
        cp = math.cos(self.pitch)
        return np.array([cp * math.cos(self.yaw), cp * math.sin(self.yaw), math.sin(self.pitch)])

    @property
    def right(self) -> np.ndarray:
        """Unit camera +x (image right) in world coordinates; always horizontal."""
        return np.array([math.sin(self.yaw), -math.cos(self.yaw), 0.0])

    @property
    def down(self) -> np.ndarray:
        """Unit camera +y (image down) in world coordinates, ``forward x right``."""
        sp, cp = math.sin(self.pitch), math.cos(self.pitch)
        return np.array([sp * math.cos(self.yaw), sp * math.sin(self.yaw), -cp])

    @property
    def up(self) -> np.ndarray:
        return -self.down

    def rotation(self) -> np.ndarray:
        """(3, 3) world-to-camera rotation; its rows are ``right``, ``down``, ``forward``."""
        return np.stack([self.right, self.down, self.forward])

    @property
    def hfov(self) -> float:
        """Horizontal field of view (rad) of the full image."""
        return 2 * math.atan(self.width / (2 * self.fx))

    @property
    def vfov(self) -> float:
        """Vertical field of view (rad) of the full image."""
        return 2 * math.atan(self.height / (2 * self.fy))

    # --- transforms -----------------------------------------------------------------
    def with_image_size(self, width: int, height: int | None = None) -> Camera:
        """The same view for an image of ``width x height`` pixels (height defaults to keeping
        the aspect ratio): ``fx, cx`` scale by ``width / self.width`` and ``fy, cy`` by
        ``height / self.height``."""
        if height is None:
            height = max(1, int(round(width * self.height / self.width)))
        if width == self.width and height == self.height:
            return self
        sx, sy = width / self.width, height / self.height
        # A centred principal point stays exactly centred (mirroring relies on cx == width / 2).
        cx = width / 2 if self.cx == self.width / 2 else self.cx * sx
        cy = height / 2 if self.cy == self.height / 2 else self.cy * sy
        return Camera(
            self.position, self.yaw, self.pitch, self.fx * sx, self.fy * sy, cx, cy, width, height
        )

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world points -> (N, 3) camera-frame points (x right, y down, z = depth)."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        return (p - np.asarray(self.position)) @ self.rotation().T

    def camera_to_world(self, points: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`world_to_camera`."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        return p @ self.rotation() + np.asarray(self.position)

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world points -> (N, 2) pixel coordinates (u, v) for this camera's image
        size. Pixel (i, j) covers ``[i, i+1) x [j, j+1)``, its centre is (i + 0.5, j + 0.5).
        Points at or behind the camera plane (camera z <= 1e-9) get ``nan``."""
        pc = self.world_to_camera(points)
        z = pc[:, 2]
        out = np.full((len(pc), 2), np.nan)
        ok = z > 1e-9
        out[ok, 0] = self.fx * pc[ok, 0] / z[ok] + self.cx
        out[ok, 1] = self.fy * pc[ok, 1] / z[ok] + self.cy
        return out

    def depth_of(self, points: np.ndarray) -> np.ndarray:
        """(N,) z-depth (m) of world points along the optical axis (negative = behind)."""
        return self.world_to_camera(points)[:, 2]

    def to_dict(self) -> dict[str, Any]:
        return {
            "position": list(self.position),
            "yaw": self.yaw,
            "pitch": self.pitch,
            "fx": self.fx,
            "fy": self.fy,
            "cx": self.cx,
            "cy": self.cy,
            "width": self.width,
            "height": self.height,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Camera:
        return cls(
            tuple(d["position"]), d["yaw"], d["pitch"],
            d["fx"], d["fy"], d["cx"], d["cy"], d["width"], d["height"],
        )  # fmt: skip


@dataclass(frozen=True)
class Scene:
    """A room, its objects (index = instance id in renders) and the camera.

    ``mirrored`` is True for a scene produced by :func:`spatialrl.world.mirror.mirror_scene`
    from an unmirrored one (it toggles on every mirroring).
    """

    scene_id: str
    room: Room
    objects: list[Object3D] = field(default_factory=list)
    camera: Camera | None = None  # type: ignore[assignment]
    mirrored: bool = False

    def __post_init__(self) -> None:
        if self.camera is None:
            raise ValueError("Scene needs a camera")
        object.__setattr__(self, "scene_id", str(self.scene_id))
        object.__setattr__(self, "objects", list(self.objects))
        object.__setattr__(self, "mirrored", bool(self.mirrored))

    @property
    def object_names(self) -> list[str]:
        return [o.name for o in self.objects]

    def find(self, name: str) -> int:
        """Index of the object called ``name`` (``"red chair"``); KeyError if absent."""
        for i, o in enumerate(self.objects):
            if o.name == name:
                return i
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scene_id": self.scene_id,
            "room": self.room.to_dict(),
            "objects": [o.to_dict() for o in self.objects],
            "camera": self.camera.to_dict(),
            "mirrored": self.mirrored,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scene:
        return cls(
            scene_id=d["scene_id"],
            room=Room.from_dict(d["room"]),
            objects=[Object3D.from_dict(o) for o in d["objects"]],
            camera=Camera.from_dict(d["camera"]),
            mirrored=bool(d.get("mirrored", False)),
        )

    def to_json(self) -> str:
        """Compact JSON (floats written with ``repr``, so they round-trip exactly)."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, s: str) -> Scene:
        return cls.from_dict(json.loads(s))


# --------------------------------------------------------------------------------------
# Geometry helpers
# --------------------------------------------------------------------------------------


def footprints_overlap(a: np.ndarray, b: np.ndarray, margin: float = 0.0) -> bool:
    """Separating-axis test for two convex polygons (K, 2), counter-clockwise or not.

    Returns True unless some edge normal of ``a`` or ``b`` separates their projections by
    more than ``margin`` (m). With ``margin > 0`` a False answer guarantees the polygons are
    at least ``margin`` apart.
    """
    pa = [(float(x), float(y)) for x, y in np.asarray(a, dtype=np.float64)]
    pb = [(float(x), float(y)) for x, y in np.asarray(b, dtype=np.float64)]
    for poly in (pa, pb):
        k = len(poly)
        for i in range(k):
            ex, ey = poly[(i + 1) % k][0] - poly[i][0], poly[(i + 1) % k][1] - poly[i][1]
            norm = math.hypot(ex, ey)
            if norm == 0:
                continue
            nx, ny = -ey / norm, ex / norm
            a_proj = [x * nx + y * ny for x, y in pa]
            b_proj = [x * nx + y * ny for x, y in pb]
            if min(b_proj) - max(a_proj) > margin or min(a_proj) - max(b_proj) > margin:
                return False
    return True


def _point_rect_distance(p: np.ndarray, obj_center: np.ndarray, half: np.ndarray, yaw: float) -> float:
    """Horizontal distance from point ``p`` (2,) to a yawed rectangle."""
    c, s = math.cos(yaw), math.sin(yaw)
    d = p - obj_center
    local = np.array([c * d[0] + s * d[1], -s * d[0] + c * d[1]])
    q = np.maximum(np.abs(local) - half, 0.0)
    return float(np.hypot(q[0], q[1]))


# --------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------


def _sample_camera(rng: np.random.Generator, room: Room) -> Camera:
    """Camera 0.2-0.5 m in front of a random wall, 1.2-1.7 m high, looking at the room
    centre (+-0.2 rad), pitched 0.15-0.40 rad down, horizontal FOV 60-90 degrees."""
    wall = int(rng.integers(4))
    along = rng.uniform(0.3, 0.7)
    off = rng.uniform(0.2, 0.5)
    W, D = room.width, room.depth
    if wall == 0:  # y = 0 wall
        x, y = along * W, off
    elif wall == 1:  # x = W wall
        x, y = W - off, along * D
    elif wall == 2:  # y = D wall
        x, y = along * W, D - off
    else:  # x = 0 wall
        x, y = off, along * D
    z = rng.uniform(1.2, 1.7)
    yaw = math.atan2(D / 2 - y, W / 2 - x) + rng.uniform(-0.2, 0.2)
    pitch = -rng.uniform(0.15, 0.40)
    hfov = math.radians(rng.uniform(60.0, 90.0))
    pos = (_round_cm(x), _round_cm(y), _round_cm(z))
    cam = Camera.from_fov(pos, _round_mrad(yaw), _round_mrad(pitch), hfov, DEFAULT_IMAGE_SIZE)
    return cam


def _try_place(
    rng: np.random.Generator,
    room: Room,
    cam: Camera,
    spec: CategorySpec,
    color: str,
    placed: list[Object3D],
    want_in_view: bool,
    tries: int,
) -> Object3D | None:
    cam_xy = np.asarray(cam.position[:2])
    fwd = np.array([math.cos(cam.yaw), math.sin(cam.yaw)])
    half_fov = 0.85 * cam.hfov / 2
    for _ in range(tries):
        size = spec.sample_size(rng)
        if size[2] > room.height - 0.1:
            continue
        if rng.random() < 0.6:  # aligned with the walls, slightly jittered
            yaw = rng.integers(4) * (math.pi / 2) + rng.normal(0.0, 0.05)
        else:
            yaw = rng.uniform(-math.pi, math.pi)
        yaw = _round_mrad(math.remainder(yaw, 2 * math.pi))
        # Half extents of the footprint's axis-aligned bounding box, to keep it inside.
        c, s = abs(math.cos(yaw)), abs(math.sin(yaw))
        ex = (c * size[0] + s * size[1]) / 2 + 0.02
        ey = (s * size[0] + c * size[1]) / 2 + 0.02
        if 2 * ex >= room.width or 2 * ey >= room.depth:
            continue
        x = _round_cm(rng.uniform(ex, room.width - ex))
        y = _round_cm(rng.uniform(ey, room.depth - ey))
        if not (ex <= x <= room.width - ex and ey <= y <= room.depth - ey):
            continue
        rel = np.array([x, y]) - cam_xy
        dist = float(np.hypot(*rel))
        if want_in_view:
            if dist < 1.2:
                continue
            if math.acos(max(-1.0, min(1.0, float(rel @ fwd) / dist))) > half_fov:
                continue
        obj = Object3D(spec.name, color, (x, y, size[2] / 2), size, yaw)
        half = np.array(size[:2]) / 2
        if _point_rect_distance(cam_xy, np.array([x, y]), half, yaw) < CAMERA_CLEARANCE:
            continue
        fp = obj.footprint_polygon()
        radius = 0.5 * math.hypot(size[0], size[1])
        clash = False
        for o in placed:
            # bounding circles farther apart than the gap cannot clash; otherwise run SAT
            reach = radius + 0.5 * math.hypot(o.size[0], o.size[1]) + MIN_GAP
            if math.hypot(x - o.center[0], y - o.center[1]) > reach:
                continue
            if footprints_overlap(fp, o.footprint_polygon(), MIN_GAP):
                clash = True
                break
        if clash:
            continue
        return obj
    return None


def sample_scene(
    rng: np.random.Generator | int,
    scene_id: str,
    n_objects: tuple[int, int] = (3, 8),
) -> Scene:
    """Sample a random room with objects and a camera (deterministic given the seed).

    Args:
        rng: a ``numpy.random.Generator`` (consumed) or an integer seed.
        scene_id: stored in the scene.
        n_objects: inclusive range ``(min, max)`` of the number of objects.

    Guarantees (tested): object names (colour + category) are unique; sizes lie in their
    category's range; footprints lie inside the room and are pairwise at least
    :data:`MIN_GAP` m apart (so no two objects interpenetrate); every object stands on the
    floor and is lower than the ceiling; the camera is inside the room, at least
    ``CAMERA_CLEARANCE`` m (horizontally) from every object. About 85% of objects are placed
    with their centre inside the camera's horizontal field of view and >= 1.2 m away, the
    rest anywhere (so some objects are occluded or out of view: check the renderer's
    ``visible_fraction``).
    """
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    lo, hi = int(n_objects[0]), int(n_objects[1])
    if not 0 <= lo <= hi:
        raise ValueError(f"n_objects must be (min, max) with 0 <= min <= max, got {n_objects}")
    max_names = len(CATEGORIES) * len(COLORS)
    if hi > max_names:
        raise ValueError(f"at most {max_names} objects have distinct names")
    cat_names = list(CATEGORIES)
    color_names = list(COLORS)
    for _attempt in range(50):
        room = Room(_round_cm(rng.uniform(3.0, 8.0)), _round_cm(rng.uniform(3.0, 8.0)), _round_cm(rng.uniform(2.4, 3.0)))
        cam = _sample_camera(rng, room)
        n = int(rng.integers(lo, hi + 1))
        placed: list[Object3D] = []
        used: set[tuple[str, str]] = set()
        for _k in range(n + 4):  # a few spare attempts for objects that do not fit
            if len(placed) == n:
                break
            cat = cat_names[int(rng.integers(len(cat_names)))]
            color = color_names[int(rng.integers(len(color_names)))]
            if (cat, color) in used:
                continue
            obj = _try_place(rng, room, cam, CATEGORIES[cat], color, placed, bool(rng.random() < 0.85), 40)
            if obj is not None:
                placed.append(obj)
                used.add((cat, color))
        if len(placed) >= lo:
            return Scene(scene_id, room, placed, cam, mirrored=False)
    raise RuntimeError(f"could not place {lo} objects after 50 rooms; lower n_objects[0]")
