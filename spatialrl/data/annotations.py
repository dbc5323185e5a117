"""Real 3D annotations in: a JSON file per image, converted to a scene for the question templates.

Smooth Operator sec. 3.1 builds its verifiable subtasks from richly annotated 3D datasets
(ScanNet, ScanNet++, ARKitScenes) "via geometric projection and template synthesis"; this
module is that entry point: one annotation file (3D boxes in metres + camera) becomes a
:class:`~spatialrl.world.scene.Scene` that :mod:`spatialrl.world.questions` accepts, and the
mirrored twin of SVQA-R1 sec. 3.1 is made by flipping the image and reflecting the scene.

Schema (``spatialrl.annotation/v1``; full reference with an example in ``docs/data.md``)::

    {
      "format": "spatialrl.annotation/v1",        optional
      "scene_id": "scan_012",                      optional, default: the file name stem
      "image": "images/scan_012.png",              relative to the annotation root
      "camera": {
        "intrinsics": {"fx": .., "fy": .., "cx": .., "cy": .., "width": W, "height": H},
        "extrinsics": {"position": [x, y, z], "yaw": rad, "pitch": rad}
                   or {"camera_to_world": 4x4 row-major, OpenCV axes (x right, y down, z forward)}
      },
      "room": {"width": m, "depth": m, "height": m},   optional
      "objects": [
        {"category": "chair", "center": [x, y, z], "size": [sx, sy, sz], "yaw": rad,
         "color": "red", "name": "red chair",          optional
         "visible_fraction": 0.8, "bbox_2d": [x1, y1, x2, y2]}   optional
      ]
    }

World frame: metres, right-handed, z up, floor at z = 0. ``size`` are full box extents along
the object's local axes, ``yaw`` (radians, default 0) rotates them about +z counter-clockwise
seen from above. The camera has no roll (a ``camera_to_world`` with roll is rejected: rectify
the image first). Keys starting with ``x-`` or ``_`` are ignored; any other unknown key is an
error (it is usually a typo).

Visibility without a render: an object's ``visible_fraction`` is, unless given, the share of
a 6 x 6 x 6 grid of points inside its box that project inside the image in front of the
camera (occlusion is *not* modelled: pass ``visible_fraction`` from your tool when objects
hide each other); its 2D box is, unless ``bbox_2d`` is given, the projection of the box
(clipped at 1 mm in front of the camera) clipped to the image.

Room: with ``room`` the coordinates must already satisfy x in [0, width], y in [0, depth];
without it the scene is translated in x and y so the objects' and camera's extent starts at
0 (the offset is kept in :attr:`AnnotatedScene.offset`), and no ``room_size`` question is
asked.

Safety: ``image`` must be a relative path inside the annotation root: absolute paths, ``..``
components and symlinks resolving outside the root are rejected. Every error names the file,
the field path and what was expected, e.g.
``scan_012.json: objects[3].size: expected 3 positive numbers in meters, got [1, -2]``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from spatialrl.world.questions import ObjectView, QASample, SceneContext, generate_pairs, generate
from spatialrl.world.scene import Camera, Room, Scene

__all__ = [
    "ANNOTATION_FORMAT",
    "AnnotatedObject",
    "AnnotatedScene",
    "AnnotationError",
    "annotation_rows",
    "annotation_samples",
    "iter_annotations",
    "load_annotation",
    "mirror_annotated",
]

ANNOTATION_FORMAT = "spatialrl.annotation/v1"
GRID = 6
NEAR = 1e-3
ROLL_TOL = 1e-3

_TOP_KEYS = {"format", "scene_id", "image", "camera", "room", "objects"}
_OBJ_KEYS = {"category", "center", "size", "yaw", "color", "name", "visible_fraction", "bbox_2d"}
_CAM_KEYS = {"intrinsics", "extrinsics"}
_INTR_KEYS = {"fx", "fy", "cx", "cy", "width", "height"}
_ROOM_KEYS = {"width", "depth", "height"}


class AnnotationError(ValueError):
    """A malformed annotation: ``str(e)`` is ``"<file>: <field>: <message>"``."""

    def __init__(self, file: str, field: str, message: str):
        self.file, self.field, self.message = file, field, message
        super().__init__(f"{file}: {field}: {message}" if field else f"{file}: {message}")


# --------------------------------------------------------------------------------------
# Objects and scenes
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnnotatedObject:
    """An annotated 3D box with the interface of :class:`~spatialrl.world.scene.Object3D`
    (any category or colour string; ``name`` defaults to ``"<color> <category>"``)."""

    category: str
    center: tuple[float, float, float]
    size: tuple[float, float, float]
    yaw: float = 0.0
    color: str | None = None
    label: str | None = None
    shape: str = "box"

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        return f"{self.color} {self.category}" if self.color else self.category

    @property
    def height(self) -> float:
        return self.size[2]

    @property
    def longest_dimension(self) -> float:
        return max(self.size)

    @property
    def volume(self) -> float:
        return self.size[0] * self.size[1] * self.size[2]

    def rotation(self) -> np.ndarray:
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])

    def corners(self) -> np.ndarray:
        signs = np.array([[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1],
                          [-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]], dtype=np.float64)  # fmt: skip
        return (signs * (np.asarray(self.size) / 2)) @ self.rotation().T + np.asarray(self.center)

    def footprint_polygon(self) -> np.ndarray:
        return self.corners()[:4, :2].copy()

    def to_dict(self) -> dict[str, Any]:
        return {"category": self.category, "color": self.color, "name": self.name,
                "center": list(self.center), "size": list(self.size), "yaw": self.yaw}  # fmt: skip


@dataclass
class AnnotatedScene:
    """An annotation converted: the scene, per-object views, and where the image is."""

    scene: Scene
    views: list[ObjectView]
    image_path: Path
    source: Path
    room_known: bool
    offset: tuple[float, float] = (0.0, 0.0)
    flipped: bool = False
    _image: bytes | None = field(default=None, repr=False)

    def context(self) -> SceneContext:
        return SceneContext(self.scene, self.views, self.scene.camera, room_known=self.room_known)

    def image_bytes(self) -> bytes:
        """The image file's bytes (PNG bytes of the flipped image for a mirrored twin)."""
        return self._image if self._image is not None else self.image_path.read_bytes()


# --------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------


class _Check:
    def __init__(self, file: str):
        self.file = file

    def err(self, where: str, msg: str) -> AnnotationError:
        return AnnotationError(self.file, where, msg)

    def obj(self, v: Any, where: str, allowed: set[str], required: Sequence[str] = ()) -> dict:
        if not isinstance(v, dict):
            raise self.err(where, f"expected a JSON object, got {_short(v)}")
        for k in v:
            if k not in allowed and not (isinstance(k, str) and (k.startswith("x-") or k.startswith("_"))):
                raise self.err(_join(where, k), f"unknown field; expected one of {sorted(allowed)}")
        for k in required:
            if k not in v:
                raise self.err(_join(where, k), "missing (required)")
        return v

    def number(self, v: Any, where: str, what: str = "a number", positive: bool = False, lo: float | None = None,
               hi: float | None = None) -> float:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        ok = ok and (not positive or v > 0) and (lo is None or v >= lo) and (hi is None or v <= hi)
        if not ok:
            raise self.err(where, f"expected {what}, got {_short(v)}")
        return float(v)

    def vec(self, v: Any, where: str, n: int = 3, positive: bool = False, unit: str = " in meters") -> tuple[float, ...]:
        what = f"{n} {'positive ' if positive else ''}numbers{unit}"
        if not isinstance(v, list) or len(v) != n:
            raise self.err(where, f"expected {what}, got {_short(v)}")
        for x in v:
            if not (isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)) or (positive and x <= 0):
                raise self.err(where, f"expected {what}, got {_short(v)}")
        return tuple(float(x) for x in v)

    def string(self, v: Any, where: str) -> str:
        if not isinstance(v, str) or not v.strip():
            raise self.err(where, f"expected a non-empty string, got {_short(v)}")
        return v.strip()


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _short(v: Any) -> str:
    s = json.dumps(v) if not isinstance(v, float) or math.isfinite(v) else repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _safe_image_path(check: _Check, root: Path, rel: Any) -> Path:
    rel = check.string(rel, "image")
    if "\\" in rel or PurePosixPath(rel).is_absolute() or PureWindowsPath(rel).is_absolute() or PureWindowsPath(rel).drive:
        raise check.err("image", f"expected a relative path inside the dataset root, got absolute {rel!r}")
    if any(part == ".." for part in PurePosixPath(rel).parts):
        raise check.err("image", f"'..' is not allowed in image paths, got {rel!r}")
    root_real = root.resolve()
    path = (root / rel)
    real = path.resolve()
    if not real.is_relative_to(root_real):
        raise check.err("image", f"{rel!r} resolves outside the dataset root {str(root)!r} (symlink?)")
    if not real.is_file():
        raise check.err("image", f"file not found: {rel!r} (relative to {str(root)!r})")
    return real


# --------------------------------------------------------------------------------------
# Camera
# --------------------------------------------------------------------------------------


def _camera(check: _Check, cam: Any) -> Camera:
    cam = check.obj(cam, "camera", _CAM_KEYS, ("intrinsics", "extrinsics"))
    intr = check.obj(cam["intrinsics"], "camera.intrinsics", _INTR_KEYS, sorted(_INTR_KEYS))
    k = {key: check.number(intr[key], f"camera.intrinsics.{key}", "a positive number of pixels", positive=True)
         for key in ("fx", "fy")}  # fmt: skip
    for key in ("cx", "cy"):
        k[key] = check.number(intr[key], f"camera.intrinsics.{key}", "a number of pixels")
    size = {}
    for key in ("width", "height"):
        v = intr[key]
        if not (isinstance(v, int) and not isinstance(v, bool) and v > 0):
            raise check.err(f"camera.intrinsics.{key}", f"expected a positive integer number of pixels, got {_short(v)}")
        size[key] = v
    ext = cam["extrinsics"]
    if isinstance(ext, dict) and "camera_to_world" in ext:
        ext = check.obj(ext, "camera.extrinsics", {"camera_to_world"})
        where = "camera.extrinsics.camera_to_world"
        m = ext["camera_to_world"]
        rows = m if isinstance(m, list) else None
        if rows is None or len(rows) not in (3, 4) or any(not isinstance(r, list) or len(r) != 4 for r in rows):
            raise check.err(where, f"expected a 4x4 (or 3x4) matrix as a list of rows, got {_short(m)}")
        T = np.array([[check.number(x, where, "finite numbers") for x in r] for r in rows])
        R, t = T[:3, :3], T[:3, 3]
        if np.abs(R.T @ R - np.eye(3)).max() > 1e-4 or np.linalg.det(R) < 0:
            raise check.err(where, "the 3x3 part is not a rotation (orthonormal, determinant +1)")
        f = R[:, 2]
        yaw = math.atan2(f[1], f[0])
        pitch = math.asin(max(-1.0, min(1.0, f[2])))
        camera = Camera(tuple(t), yaw, pitch, k["fx"], k["fy"], k["cx"], k["cy"], size["width"], size["height"])
        dev = float(np.abs(camera.rotation() - R.T).max())
        if dev > ROLL_TOL:
            raise check.err(where, f"the camera has roll or is not in OpenCV axes (x right, y down, z forward): "
                                   f"deviation {dev:.3g} from the roll-free camera with the same optical axis; "
                                   "rectify the image to remove the roll")  # fmt: skip
        return camera
    ext = check.obj(ext, "camera.extrinsics", {"position", "yaw", "pitch"}, ("position", "yaw", "pitch"))
    pos = check.vec(ext["position"], "camera.extrinsics.position")
    yaw = check.number(ext["yaw"], "camera.extrinsics.yaw", "an angle in radians")
    pitch = check.number(ext["pitch"], "camera.extrinsics.pitch", "an angle in radians in (-pi/2, pi/2)",
                         lo=-math.pi / 2 + 1e-6, hi=math.pi / 2 - 1e-6)  # fmt: skip
    return Camera(pos, yaw, pitch, k["fx"], k["fy"], k["cx"], k["cy"], size["width"], size["height"])


# --------------------------------------------------------------------------------------
# Projection-based visibility
# --------------------------------------------------------------------------------------


def _grid_fraction(obj: AnnotatedObject, cam: Camera) -> float:
    t = (np.arange(GRID) + 0.5) / GRID - 0.5
    g = np.stack(np.meshgrid(t, t, t, indexing="ij"), axis=-1).reshape(-1, 3)
    pts = (g * np.asarray(obj.size)) @ obj.rotation().T + np.asarray(obj.center)
    pc = cam.world_to_camera(pts)
    z = pc[:, 2]
    ok = z > NEAR
    u = np.where(ok, cam.fx * pc[:, 0] / np.where(ok, z, 1) + cam.cx, -1)
    v = np.where(ok, cam.fy * pc[:, 1] / np.where(ok, z, 1) + cam.cy, -1)
    inside = ok & (u >= 0) & (u < cam.width) & (v >= 0) & (v < cam.height)
    return float(inside.mean())


_EDGES = ((0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7))


def _projected_box(obj: AnnotatedObject, cam: Camera) -> tuple[float, float, float, float] | None:
    pc = cam.world_to_camera(obj.corners())
    z = pc[:, 2]
    pts = [pc[i] for i in range(8) if z[i] >= NEAR]
    for a, b in _EDGES:
        if (z[a] >= NEAR) != (z[b] >= NEAR):
            s = (NEAR - z[a]) / (z[b] - z[a])
            pts.append(pc[a] + s * (pc[b] - pc[a]))
    if not pts:
        return None
    p = np.array(pts)
    u = cam.fx * p[:, 0] / p[:, 2] + cam.cx
    v = cam.fy * p[:, 1] / p[:, 2] + cam.cy
    x1, y1 = max(0.0, float(u.min())), max(0.0, float(v.min()))
    x2, y2 = min(float(cam.width), float(u.max())), min(float(cam.height), float(v.max()))
    if x2 <= x1 or y2 <= y1:
        return None
    return (round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1))


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


def load_annotation(path: str | Path, root: str | Path | None = None) -> AnnotatedScene:
    """Read and validate one annotation file; ``root`` (default: the file's folder) is the
    dataset root that ``image`` is relative to. Raises :class:`AnnotationError`."""
    path = Path(path)
    root = Path(root) if root is not None else path.parent
    try:
        label = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        label = path.name
    check = _Check(label)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise check.err("", f"cannot read: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise check.err("", f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError:
        raise check.err("", "not UTF-8 text") from None
    data = check.obj(data, "", _TOP_KEYS, ("image", "camera", "objects"))
    if "format" in data and data["format"] != ANNOTATION_FORMAT:
        raise check.err("format", f"expected {ANNOTATION_FORMAT!r}, got {_short(data['format'])}")
    scene_id = check.string(data["scene_id"], "scene_id") if "scene_id" in data else path.stem
    image_path = _safe_image_path(check, root, data["image"])
    camera = _camera(check, data["camera"])
    try:
        from PIL import Image

        with Image.open(image_path) as im:
            w, h = im.size
    except Exception as e:  # noqa: BLE001 - any unreadable image is the same error
        raise check.err("image", f"cannot read image {data['image']!r}: {e}") from None
    if (w, h) != (camera.width, camera.height):
        raise check.err("camera.intrinsics", f"width x height {camera.width}x{camera.height} does not match the image "
                                              f"size {w}x{h}")  # fmt: skip

    objs_raw = data["objects"]
    if not isinstance(objs_raw, list):
        raise check.err("objects", f"expected a list of objects, got {_short(objs_raw)}")
    objects: list[AnnotatedObject] = []
    given_vf: list[float | None] = []
    given_box: list[tuple[float, float, float, float] | None] = []
    for i, o in enumerate(objs_raw):
        w_ = f"objects[{i}]"
        o = check.obj(o, w_, _OBJ_KEYS, ("category", "center", "size"))
        category = check.string(o["category"], f"{w_}.category")
        center = check.vec(o["center"], f"{w_}.center")
        size = check.vec(o["size"], f"{w_}.size", positive=True)
        yaw = check.number(o.get("yaw", 0.0), f"{w_}.yaw", "an angle in radians")
        color = check.string(o["color"], f"{w_}.color") if "color" in o and o["color"] is not None else None
        name = check.string(o["name"], f"{w_}.name") if "name" in o and o["name"] is not None else None
        objects.append(AnnotatedObject(category, center, size, yaw, color, name))  # type: ignore[arg-type]
        vf = o.get("visible_fraction")
        given_vf.append(None if vf is None else check.number(vf, f"{w_}.visible_fraction", "a number in [0, 1]", lo=0.0, hi=1.0))
        box = o.get("bbox_2d")
        if box is not None:
            b = check.vec(box, f"{w_}.bbox_2d", 4, unit=" in pixels [x1, y1, x2, y2]")
            if not (0 <= b[0] < b[2] <= camera.width and 0 <= b[1] < b[3] <= camera.height):
                raise check.err(f"{w_}.bbox_2d", f"expected 0 <= x1 < x2 <= {camera.width} and 0 <= y1 < y2 <= "
                                                 f"{camera.height}, got {_short(box)}")  # fmt: skip
            box = b
        given_box.append(box)

    room_known = "room" in data and data["room"] is not None
    offset = (0.0, 0.0)
    if room_known:
        r = check.obj(data["room"], "room", _ROOM_KEYS, sorted(_ROOM_KEYS))
        room = Room(*(check.number(r[k], f"room.{k}", "a positive number of meters", positive=True)
                      for k in ("width", "depth", "height")))  # fmt: skip
    else:
        pts = [camera.position[:2]] + [c[:2] for o in objects for c in o.corners()]
        lo = np.min(np.array(pts), axis=0)
        hi = np.max(np.array(pts), axis=0)
        offset = (-float(lo[0]), -float(lo[1]))
        tops = [camera.position[2]] + [o.center[2] + o.size[2] / 2 for o in objects]
        room = Room(max(float(hi[0] - lo[0]), 0.01), max(float(hi[1] - lo[1]), 0.01), max(max(tops), 0.01))
        objects = [AnnotatedObject(o.category, (o.center[0] + offset[0], o.center[1] + offset[1], o.center[2]),
                                   o.size, o.yaw, o.color, o.label) for o in objects]  # fmt: skip
        camera = Camera((camera.position[0] + offset[0], camera.position[1] + offset[1], camera.position[2]),
                        camera.yaw, camera.pitch, camera.fx, camera.fy, camera.cx, camera.cy, camera.width,
                        camera.height)  # fmt: skip
    views = []
    for o, vf, box in zip(objects, given_vf, given_box):
        if vf is None:
            vf = _grid_fraction(o, camera)
        if box is None and vf > 0:
            box = _projected_box(o, camera)
        views.append(ObjectView(float(vf), None if vf <= 0 else box))
    scene = Scene(scene_id, room, objects, camera, mirrored=False)
    return AnnotatedScene(scene, views, image_path, path, room_known, offset)


def iter_annotations(root: str | Path, pattern: str = "**/*.json") -> Iterator[AnnotatedScene]:
    """Load every annotation file under ``root`` (sorted paths)."""
    root = Path(root)
    for p in sorted(root.glob(pattern)):
        yield load_annotation(p, root)


def mirror_annotated(ann: AnnotatedScene) -> AnnotatedScene:
    """The mirrored twin (SVQA-R1 sec. 3.1): image flipped left-right, scene reflected in
    ``x = room.width / 2`` (centres ``x -> W - x``, yaws ``-> pi - yaw``), camera reflected
    with principal point ``cx -> width - cx``, so that every projection ``u`` becomes
    ``width - u`` exactly; 2D boxes flip, visible fractions are kept."""
    import io

    from PIL import Image, ImageOps

    s = ann.scene
    W = s.room.width
    objects = [AnnotatedObject(o.category, (W - o.center[0], o.center[1], o.center[2]), o.size, math.pi - o.yaw,
                               o.color, o.label) for o in s.objects]  # fmt: skip
    c = s.camera
    camera = Camera((W - c.position[0], c.position[1], c.position[2]), math.pi - c.yaw, c.pitch, c.fx, c.fy,
                    c.width - c.cx, c.cy, c.width, c.height)  # fmt: skip
    views = [ObjectView(v.visible_fraction, None if v.box is None else
                        (c.width - v.box[2], v.box[1], c.width - v.box[0], v.box[3])) for v in ann.views]  # fmt: skip
    with Image.open(ann.image_path) as im:
        flipped = ImageOps.mirror(im.convert("RGB"))
    buf = io.BytesIO()
    flipped.save(buf, format="PNG", compress_level=6)
    scene = Scene(s.scene_id, s.room, objects, camera, mirrored=not s.mirrored)
    return AnnotatedScene(scene, views, ann.image_path, ann.source, ann.room_known, ann.offset, not ann.flipped,
                          buf.getvalue())  # fmt: skip


def _scene_json(scene: Scene) -> str:
    return json.dumps(scene.to_dict(), separators=(",", ":"))


def annotation_samples(ann: AnnotatedScene, rng: np.random.Generator, types: Sequence[str] | None = None,
                       balance_offset: int = 0) -> list[QASample]:
    """Single-view questions for an annotated scene (the same templates as the synthetic world)."""
    return generate(ann.context(), rng, types, balance_offset=balance_offset)


def annotation_rows(root: str | Path, seed: int = 0, types: Sequence[str] | None = None, mirror: bool = True,
                    pattern: str = "**/*.json") -> list[dict[str, Any]]:
    """Dataset rows (:mod:`spatialrl.data.schema`, ``source="annotation"``) for every
    annotation under ``root``; with ``mirror`` each question also gets its mirrored twin.
    File ``k`` (sorted) draws its questions from ``SeedSequence(seed, spawn_key=(k,))``."""
    from spatialrl.data.schema import make_row

    rows: list[dict[str, Any]] = []
    for k, ann in enumerate(iter_annotations(root, pattern)):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k,)))
        image = ann.image_bytes()
        if mirror:
            twin = mirror_annotated(ann)
            pairs = generate_pairs(ann.context(), twin.context(), rng, types, balance_offset=k)
        else:
            twin = None
            pairs = [(s, None) for s in annotation_samples(ann, rng, types, k)]
        for q, (a, b) in enumerate(pairs):
            pid = f"{ann.scene.scene_id}-q{q:02d}"
            rows.append(make_row(a, pair_id=pid, view="original", scene_id=ann.scene.scene_id, image_bytes=image,
                                 scene_json=_scene_json(ann.scene), source="annotation"))  # fmt: skip
            if b is not None and twin is not None:
                rows.append(make_row(b, pair_id=pid, view="mirror", scene_id=ann.scene.scene_id,
                                     image_bytes=twin.image_bytes(), scene_json=_scene_json(twin.scene),
                                     source="annotation"))  # fmt: skip
    return rows
