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

Validation: the schema is a set of pydantic models (``_Annotation`` and the models it holds),
strict about JSON types; the checks that need more than the file (the image path and size, the
camera's rotation, 2D boxes inside the image) follow them. Only the first problem is reported.

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
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import numpy as np
from spatialrl._extras import requires_extra

with requires_extra("train"):
    from pydantic import (
        BaseModel,
        ConfigDict,
        Discriminator,
        Field,
        StringConstraints,
        Tag,
        ValidationError,
        ValidatorFunctionWrapHandler,
        WrapValidator,
        model_validator,
    )
    from pydantic_core import PydanticCustomError

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
# The schema (pydantic) and its error messages
# --------------------------------------------------------------------------------------


def _expect(what: str, *, itself_only: bool = False) -> WrapValidator:
    """Any failure of the wrapped type reads ``expected <what>, got <the value as written>``;
    with ``itself_only``, only a failure of the value itself (not of an item inside it)."""

    def wrap(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError as e:
            if itself_only and all(err["loc"] for err in e.errors()):
                raise
            raise PydanticCustomError("expected", "expected {what}, got {got}", {"what": what, "got": _short(value)}) from None

    return WrapValidator(wrap)


_Positive = Annotated[float, Field(gt=0)]
_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1), _expect("a non-empty string")]
_Angle = Annotated[float, _expect("an angle in radians")]
_Meters3 = Annotated[list[float], Field(min_length=3, max_length=3), _expect("3 numbers in meters")]


class _Schema(BaseModel):
    """Strict JSON: numbers are numbers (not strings or booleans) and finite; keys starting with
    ``x-`` or ``_`` are ignored, any other unknown key is an error."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _drop_extension_keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if not (isinstance(k, str) and k.startswith(("x-", "_")))}
        return value


class _Intrinsics(_Schema):
    fx: Annotated[float, Field(gt=0), _expect("a positive number of pixels")]
    fy: Annotated[float, Field(gt=0), _expect("a positive number of pixels")]
    cx: Annotated[float, _expect("a number of pixels")]
    cy: Annotated[float, _expect("a number of pixels")]
    width: Annotated[int, Field(gt=0), _expect("a positive integer number of pixels")]
    height: Annotated[int, Field(gt=0), _expect("a positive integer number of pixels")]


class _Pose(_Schema):
    position: _Meters3
    yaw: _Angle
    pitch: Annotated[float, Field(ge=-math.pi / 2 + 1e-6, le=math.pi / 2 - 1e-6),
                     _expect("an angle in radians in (-pi/2, pi/2)")]  # fmt: skip


class _CameraToWorld(_Schema):
    camera_to_world: Annotated[list[Annotated[list[float], Field(min_length=4, max_length=4)]],
                               Field(min_length=3, max_length=4),
                               _expect("a 4x4 (or 3x4) matrix of finite numbers as a list of rows")]  # fmt: skip


def _extrinsics_kind(value: Any) -> str:
    return "camera_to_world" if isinstance(value, dict) and "camera_to_world" in value else "pose"


class _Camera(_Schema):
    intrinsics: _Intrinsics
    extrinsics: Annotated[Annotated[_Pose, Tag("pose")] | Annotated[_CameraToWorld, Tag("camera_to_world")],
                          Discriminator(_extrinsics_kind)]  # fmt: skip


class _Object(_Schema):
    category: _Text
    center: _Meters3
    size: Annotated[list[_Positive], Field(min_length=3, max_length=3), _expect("3 positive numbers in meters")]
    yaw: _Angle = 0.0
    color: _Text | None = None
    name: _Text | None = None
    visible_fraction: Annotated[float, Field(ge=0, le=1), _expect("a number in [0, 1]")] | None = None
    bbox_2d: Annotated[list[float], Field(min_length=4, max_length=4),
                       _expect("4 numbers in pixels [x1, y1, x2, y2]")] | None = None  # fmt: skip


class _Room(_Schema):
    width: Annotated[float, Field(gt=0), _expect("a positive number of meters")]
    depth: Annotated[float, Field(gt=0), _expect("a positive number of meters")]
    height: Annotated[float, Field(gt=0), _expect("a positive number of meters")]


class _Annotation(_Schema):
    """One ``spatialrl.annotation/v1`` file (the schema in the module docstring)."""

    format: Annotated[Literal["spatialrl.annotation/v1"], _expect(repr(ANNOTATION_FORMAT))] = ANNOTATION_FORMAT
    scene_id: _Text = None  # type: ignore[assignment]  # absent: the file name stem; null is an error
    image: _Text
    camera: _Camera
    objects: Annotated[list[_Object], _expect("a list of objects", itself_only=True)]
    room: _Room | None = None


def _schema_error(file: str, exc: ValidationError) -> AnnotationError:
    """The first of pydantic's errors, worded as ``<file>: <field path>: <message>``."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    if first["type"] == "missing":  # a misspelt key is unknown and leaves one missing: name the typo
        parent = _locate(first["loc"])[0][:-1]
        first = next((e for e in errors if e["type"] == "extra_forbidden" and _locate(e["loc"])[0][:-1] == parent), first)
    keys, owner = _locate(first["loc"])
    where = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys).lstrip(".")
    if first["type"] == "missing":
        message = "missing (required)"
    elif first["type"] == "extra_forbidden":
        message = f"unknown field; expected one of {sorted(owner.model_fields)}"
    elif first["type"] == "model_type":
        message = f"expected a JSON object, got {_short(first['input'])}"
    else:
        message = first["msg"]  # "expected <what>, got <value>" (_expect)
    return AnnotationError(file, where, message)


def _locate(loc: tuple[int | str, ...]) -> tuple[list[int | str], type[_Schema]]:
    """The JSON path of a pydantic error location (union tags dropped) and the model that
    holds its last key."""
    keys: list[int | str] = []
    owner: type[_Schema] = _Annotation
    tp: Any = _Annotation
    for part in loc:
        while get_origin(tp) is Annotated or (get_origin(tp) in (Union, UnionType) and type(None) in get_args(tp)):
            tp = next(a for a in get_args(tp) if a is not type(None))  # Annotated[T, ...] or T | None -> T
        if isinstance(tp, type) and issubclass(tp, _Schema):
            owner = tp
            keys.append(part)
            tp = tp.model_fields[part].annotation if part in tp.model_fields else None
        elif isinstance(part, int):
            keys.append(part)
            tp = get_args(tp)[0] if get_args(tp) else None
        else:  # a tagged union (extrinsics): the tag names the member, not a key
            tp = next((m for m in get_args(tp) if any(isinstance(x, Tag) and x.tag == part for x in getattr(m, "__metadata__", ()))), None)
    return keys, owner


def _short(v: Any) -> str:
    s = json.dumps(v) if not isinstance(v, float) or math.isfinite(v) else repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _safe_image_path(file: str, root: Path, rel: str) -> Path:
    if "\\" in rel or PurePosixPath(rel).is_absolute() or PureWindowsPath(rel).is_absolute() or PureWindowsPath(rel).drive:
        raise AnnotationError(file, "image", f"expected a relative path inside the dataset root, got absolute {rel!r}")
    if any(part == ".." for part in PurePosixPath(rel).parts):
        raise AnnotationError(file, "image", f"'..' is not allowed in image paths, got {rel!r}")
    root_real = root.resolve()
    path = (root / rel)
    real = path.resolve()
    if not real.is_relative_to(root_real):
        raise AnnotationError(file, "image", f"{rel!r} resolves outside the dataset root {str(root)!r} (symlink?)")
    if not real.is_file():
        raise AnnotationError(file, "image", f"file not found: {rel!r} (relative to {str(root)!r})")
    return real


# --------------------------------------------------------------------------------------
# Camera
# --------------------------------------------------------------------------------------


def _camera(file: str, cam: _Camera) -> Camera:
    """The validated camera as a roll-free :class:`~spatialrl.world.scene.Camera`."""
    k = cam.intrinsics
    ext = cam.extrinsics
    if isinstance(ext, _CameraToWorld):
        where = "camera.extrinsics.camera_to_world"
        T = np.array(ext.camera_to_world)
        R, t = T[:3, :3], T[:3, 3]
        if np.abs(R.T @ R - np.eye(3)).max() > 1e-4 or np.linalg.det(R) < 0:
            raise AnnotationError(file, where, "the 3x3 part is not a rotation (orthonormal, determinant +1)")
        f = R[:, 2]
        yaw = math.atan2(f[1], f[0])
        pitch = math.asin(max(-1.0, min(1.0, f[2])))
        camera = Camera(tuple(t), yaw, pitch, k.fx, k.fy, k.cx, k.cy, k.width, k.height)
        dev = float(np.abs(camera.rotation() - R.T).max())
        if dev > ROLL_TOL:
            raise AnnotationError(file, where, f"the camera has roll or is not in OpenCV axes (x right, y down, z forward): "
                                               f"deviation {dev:.3g} from the roll-free camera with the same optical axis; "
                                               "rectify the image to remove the roll")  # fmt: skip
        return camera
    return Camera(tuple(ext.position), ext.yaw, ext.pitch, k.fx, k.fy, k.cx, k.cy, k.width, k.height)


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
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise AnnotationError(label, "", f"cannot read: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise AnnotationError(label, "", f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError:
        raise AnnotationError(label, "", "not UTF-8 text") from None
    try:
        ann = _Annotation.model_validate(data)
    except ValidationError as e:
        raise _schema_error(label, e) from None
    scene_id = ann.scene_id if ann.scene_id is not None else path.stem
    image_path = _safe_image_path(label, root, ann.image)
    camera = _camera(label, ann.camera)
    try:
        from PIL import Image

        with Image.open(image_path) as im:
            w, h = im.size
    except Exception as e:  # noqa: BLE001 - any unreadable image is the same error
        raise AnnotationError(label, "image", f"cannot read image {data['image']!r}: {e}") from None
    if (w, h) != (camera.width, camera.height):
        raise AnnotationError(label, "camera.intrinsics", f"width x height {camera.width}x{camera.height} does not "
                                                          f"match the image size {w}x{h}")  # fmt: skip

    objects: list[AnnotatedObject] = []
    given_vf: list[float | None] = []
    given_box: list[tuple[float, float, float, float] | None] = []
    for i, o in enumerate(ann.objects):
        objects.append(AnnotatedObject(o.category, tuple(o.center), tuple(o.size), o.yaw, o.color, o.name))  # type: ignore[arg-type]
        given_vf.append(o.visible_fraction)
        box = None
        if o.bbox_2d is not None:
            box = tuple(o.bbox_2d)
            if not (0 <= box[0] < box[2] <= camera.width and 0 <= box[1] < box[3] <= camera.height):
                raise AnnotationError(label, f"objects[{i}].bbox_2d", f"expected 0 <= x1 < x2 <= {camera.width} and "
                                      f"0 <= y1 < y2 <= {camera.height}, got {_short(data['objects'][i]['bbox_2d'])}")  # fmt: skip
        given_box.append(box)

    room_known = ann.room is not None
    offset = (0.0, 0.0)
    if ann.room is not None:
        room = Room(ann.room.width, ann.room.depth, ann.room.height)
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
