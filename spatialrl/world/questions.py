"""Question templates: verifiable spatial QA computed exactly from a scene.

Implements the verifiable subtasks of Smooth Operator sec. 3.1 (numerical subtasks T_num:
depth, distance, size; discrete relational subtasks T_disc: direction, ordering), in the
question families of VSI-Bench (object count, absolute / relative distance, object and room
size, relative direction) and SpatialVLM / VQASynth (metric distances, heights, widths,
yes/no comparisons, open-ended answers with human units), plus 2D grounding. SVQA-R1 sec. 3.1
and appendix A: every question can be asked again of the mirrored scene
(:func:`generate_pairs`); the question text and options stay identical and the answer is
recomputed from the mirrored geometry, so left/right answers invert while distances, sizes
and counts stay equal and grounding boxes flip.

Nothing here parses model output or scores it (see ``spatialrl.answers`` / ``rewards``).

Measurements (exact definitions; everything in the world frame, metres)
----------------------------------------------------------------------
Positions are the **centres of the 3D boxes** (``Object3D.center``); no closest-point
distances are used anywhere.

``abs_distance``
    Euclidean distance between the two box centres.
``horizontal_distance``
    Distance between the box centres projected onto the floor: ``hypot(dx, dy)``.
``vertical_distance``
    ``|z_A - z_B|`` of the box centres.
``object_size``
    Longest of the three box extents, ``max(size)`` (``Object3D.longest_dimension``).
``object_height``
    Vertical box extent ``size[2]`` (``Object3D.height``).
``room_size``
    Floor area ``room.width * room.depth`` (m^2).
``camera_depth``
    Depth of the box centre along the optical axis: ``forward . (center - camera.position)``
    (the camera-frame z; not the Euclidean distance, not the nearest point).
``object_count``
    Number of objects of the category that are *clearly visible* (below).
volume ("bigger")
    Volume of the drawn shape: box ``sx*sy*sz``, ball (sphere) ``pi/6 * d^3``.
width as seen ("wider")
    Extent of the drawn shape along the camera's right axis: for a box
    ``max - min`` of ``right . corner`` over its 8 corners; for a ball its diameter.
lateral position ("left/right", viewer-centric)
    ``x_cam = right . (center - camera.position)``: A is left of B iff ``x_A < x_B``.
front/behind (viewer-centric)
    "in front of" = closer to the camera by ``camera_depth``.
allocentric left/right ("standing at A facing B")
    On the floor plane, ``f = B - A``, ``v = C - A`` (centres, xy); C is on the left iff
    the cross product ``f_x v_y - f_y v_x > 0`` (z up, right-handed world).
grounding box
    The renderer's box of the object's *visible* pixels ``[x1, y1, x2, y2]`` in pixels of
    the stored image, origin top-left, ``x2, y2`` exclusive (last column/row + 1).

Visibility and naming
---------------------
An object is asked about only if it is *clearly visible* -- ``visible_fraction >=
MIN_VISIBLE_FRACTION`` (0.4; the renderer's visible / unoccluded pixels, so occlusion and
image borders both count) and its 2D box is at least ``MIN_BOX_SIDE`` (3) pixels on each
side -- and if its name (``"red chair"``) is unique in the scene. An object that shows any
pixel but is not clearly visible is *marginal*; a category with a marginal object is never
counted, so every count is unambiguous.

Ambiguity margins (discrete questions are skipped unless the answer is clear)
-----------------------------------------------------------------------------
* distances / depths compared: the gap must be at least ``max(REL_MARGIN * smaller,
  ABS_MARGIN)`` = ``max(10 %, 0.10 m)``;
* lengths compared (height, width): ratio >= ``LENGTH_RATIO`` (1.10) and gap >= 0.05 m;
  volumes: ratio >= ``VOLUME_RATIO`` (1.25);
* viewer left/right: ``|x_A - x_B| >= LATERAL_MIN`` (0.15 m) *and* the projected centres
  are at least ``LATERAL_MIN_IMAGE`` (5 %) of the image width apart *with the same sign*
  (3D and image-plane readings agree);
* allocentric left/right: ``|sin(angle(f, v))| >= sin(ALLO_MIN_ANGLE)`` (20 degrees) and
  ``|f|, |v| >= 0.3 m``;
* numeric ``vertical_distance`` / ``horizontal_distance`` answers below ``MIN_NUMERIC``
  (0.05 m) are not asked.

A question is kept for a mirror pair only if it is valid in both views.

Answer balance
--------------
Choice questions place the correct option at a target letter, and yes/no questions order
their two objects so that the answer hits a target yes/no; the targets rotate through all
letters (yes/no) starting at ``balance_offset`` (the builder passes the scene index), so they
are uniform within and across scenes. Every other draw uses the caller's seeded generator,
so the output is deterministic.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "ABS_MARGIN",
    "ANSWER_TYPE",
    "DEFAULT_QUOTA",
    "DIMENSION",
    "LETTERS",
    "MIN_BOX_SIDE",
    "MIN_VISIBLE_FRACTION",
    "QUESTION_TYPES",
    "REL_MARGIN",
    "UNIT",
    "ObjectView",
    "QASample",
    "QuestionSpec",
    "SceneContext",
    "answer",
    "generate",
    "generate_pairs",
    "propose",
    "views_from_render",
]

# --------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------

MIN_VISIBLE_FRACTION = 0.4
MIN_BOX_SIDE = 3.0
REL_MARGIN = 0.10
ABS_MARGIN = 0.10
LENGTH_RATIO = 1.10
LENGTH_GAP = 0.05
VOLUME_RATIO = 1.25
LATERAL_MIN = 0.15
LATERAL_MIN_IMAGE = 0.05
ALLO_MIN_ANGLE = math.radians(20.0)
ALLO_MIN_LEG = 0.3
MIN_NUMERIC = 0.05
LETTERS = "ABCD"

#: Every question type, in generation order.
QUESTION_TYPES: tuple[str, ...] = (
    "object_count",
    "abs_distance",
    "object_size",
    "room_size",
    "camera_depth",
    "object_height",
    "vertical_distance",
    "horizontal_distance",
    "rel_distance",
    "rel_direction",
    "rel_direction_allocentric",
    "closer_to_camera",
    "compare_yes_no",
    "compare_choice",
    "grounding_bbox",
    "open_ended",
)

ANSWER_TYPE: dict[str, str] = {
    "object_count": "numerical",
    "abs_distance": "numerical",
    "object_size": "numerical",
    "room_size": "numerical",
    "camera_depth": "numerical",
    "object_height": "numerical",
    "vertical_distance": "numerical",
    "horizontal_distance": "numerical",
    "rel_distance": "discrete",
    "rel_direction": "discrete",
    "rel_direction_allocentric": "discrete",
    "closer_to_camera": "discrete",
    "compare_yes_no": "discrete",
    "compare_choice": "discrete",
    "grounding_bbox": "grounding",
    "open_ended": "open_ended",
}

#: ``dimension`` (for ``spatialrl.answers.parse_quantity``) of each numerical type.
DIMENSION: dict[str, str] = {
    "object_count": "count",
    "abs_distance": "length",
    "object_size": "length",
    "room_size": "area",
    "camera_depth": "length",
    "object_height": "length",
    "vertical_distance": "length",
    "horizontal_distance": "length",
}
#: SI unit of the answer of each dimension ("" for counts).
UNIT: dict[str, str] = {"length": "m", "area": "m^2", "count": ""}

#: Questions attempted per scene and type (a type yields fewer when no valid one exists).
DEFAULT_QUOTA: dict[str, int] = {t: 1 for t in QUESTION_TYPES} | {"open_ended": 2}

_TRIES = 12  # proposals per requested question before giving up

# --------------------------------------------------------------------------------------
# Data types
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectView:
    """How one object appears in the image.

    ``visible_fraction`` in [0, 1]; ``box`` = ``(x1, y1, x2, y2)`` pixel box of the visible
    part (x2, y2 exclusive) or ``None`` when no pixel is visible.
    """

    visible_fraction: float
    box: tuple[float, float, float, float] | None


def views_from_render(result: Any) -> list[ObjectView]:
    """Object views from a :class:`spatialrl.world.render.RenderResult`."""
    return [
        ObjectView(float(f), None if b is None else tuple(float(x) for x in b))  # type: ignore[arg-type]
        for f, b in zip(result.visible_fraction, result.boxes2d)
    ]


@dataclass(frozen=True)
class QuestionSpec:
    """A question independent of its answer: the same spec is asked of both views.

    ``objects`` are object indices whose meaning depends on ``template`` (documented in
    ``docs/data.md``); ``options`` are the option texts in letter order (empty for
    non-choice questions); ``params`` holds the remaining template parameters.
    """

    question_type: str
    template: str
    objects: tuple[int, ...] = ()
    options: tuple[str, ...] = ()
    variant: int = 0
    params: tuple[tuple[str, Any], ...] = ()

    def param(self, key: str, default: Any = None) -> Any:
        for k, v in self.params:
            if k == key:
                return v
        return default

    def key(self) -> tuple:
        """Identity used to avoid asking the same thing twice in one scene."""
        return (self.question_type, self.template, tuple(sorted(self.objects)), self.param("attribute"))


@dataclass
class QASample:
    """One answered question (one view). ``meta`` is JSON-serialisable."""

    question_type: str
    answer_type: str
    question: str
    answer: str
    answer_value: float | None = None
    dimension: str | None = None
    unit: str = ""
    options: list[str] = field(default_factory=list)
    answer_index: int = -1
    bbox: list[float] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def meta_json(self) -> str:
        return json.dumps(self.meta, sort_keys=True, separators=(",", ":"))


# --------------------------------------------------------------------------------------
# Geometry (the definitions of the module docstring)
# --------------------------------------------------------------------------------------


def _shape(obj: Any) -> str:
    return getattr(obj, "shape", "box")


def _volume(obj: Any) -> float:
    sx, sy, sz = obj.size
    if _shape(obj) == "sphere":
        return math.pi / 6 * sx**3
    return sx * sy * sz


def _width_across(obj: Any, right: np.ndarray) -> float:
    if _shape(obj) == "sphere":
        return float(obj.size[0])
    proj = np.asarray(obj.corners()) @ right
    return float(proj.max() - proj.min())


class SceneContext:
    """A scene, how its objects appear, and the per-object quantities templates need.

    Args:
        scene: a :class:`~spatialrl.world.scene.Scene` (or one built from annotations).
        views: one :class:`ObjectView` per object.
        camera: the camera with intrinsics for the stored image (``RenderResult.camera``);
            defaults to ``scene.camera``.
        room_known: False when the room extent is unknown (no ``room_size`` questions).
    """

    #: How ``distance`` measures between two objects: ``"center"`` (box centres, the synthetic
    #: world's definition) or ``"closest_point"`` (a subclass measuring between the objects'
    #: closest points, VSI-Bench's definition); the question texts say which.
    distance_measure = "center"

    def __init__(self, scene: Any, views: Sequence[ObjectView], camera: Any = None, room_known: bool = True):
        if len(views) != len(scene.objects):
            raise ValueError(f"{len(views)} views for {len(scene.objects)} objects")
        self.scene = scene
        self.views = list(views)
        self.camera = camera if camera is not None else scene.camera
        self.room_known = room_known
        self.width = int(self.camera.width)
        self.height = int(self.camera.height)
        objs = scene.objects
        n = len(objs)
        self.n = n
        self.names = [o.name for o in objs]
        self.categories = [o.category for o in objs]
        self.centers = np.array([o.center for o in objs], dtype=np.float64).reshape(n, 3)
        cam = self.camera
        self.cam_pos = np.asarray(cam.position, dtype=np.float64)
        right = np.asarray(cam.right, dtype=np.float64)
        forward = np.asarray(cam.forward, dtype=np.float64)
        rel = self.centers - self.cam_pos
        self.x_cam = rel @ right
        self.depth = rel @ forward
        with np.errstate(divide="ignore", invalid="ignore"):
            self.u = np.where(self.depth > 1e-9, cam.fx * self.x_cam / self.depth + cam.cx, np.nan)
        self.euclid_cam = np.linalg.norm(rel, axis=1) if n else np.zeros(0)
        self.heights = np.array([o.size[2] for o in objs], dtype=np.float64)
        self.longest = np.array([max(o.size) for o in objs], dtype=np.float64)
        self.volumes = np.array([_volume(o) for o in objs], dtype=np.float64)
        self.widths = np.array([_width_across(o, right) for o in objs], dtype=np.float64)
        counts: dict[str, int] = {}
        for name in self.names:
            counts[name] = counts.get(name, 0) + 1
        self.unique = [counts[nm] == 1 for nm in self.names]
        self.clear = [self._clear(v) for v in self.views]
        self.marginal = [(not c) and (v.box is not None or v.visible_fraction > 0) for c, v in zip(self.clear, self.views)]
        self.askable = [c and u for c, u in zip(self.clear, self.unique)]

    @staticmethod
    def _clear(v: ObjectView) -> bool:
        if v.box is None or v.visible_fraction < MIN_VISIBLE_FRACTION:
            return False
        x1, y1, x2, y2 = v.box
        return (x2 - x1) >= MIN_BOX_SIDE and (y2 - y1) >= MIN_BOX_SIDE

    def askable_indices(self) -> list[int]:
        return [i for i, a in enumerate(self.askable) if a]

    def countable_categories(self) -> list[str]:
        """Categories with at least one clearly visible object and no marginal one."""
        cats = []
        for c in dict.fromkeys(self.categories):
            idx = [i for i, k in enumerate(self.categories) if k == c]
            if any(self.marginal[i] for i in idx) or not any(self.clear[i] for i in idx):
                continue
            cats.append(c)
        return cats

    def count(self, category: str) -> int:
        return sum(1 for i, c in enumerate(self.categories) if c == category and self.clear[i])

    def distance(self, a: int, b: int) -> float:
        return float(np.linalg.norm(self.centers[a] - self.centers[b]))

    def horizontal(self, a: int, b: int) -> float:
        d = self.centers[a] - self.centers[b]
        return float(math.hypot(d[0], d[1]))

    def vertical(self, a: int, b: int) -> float:
        return float(abs(self.centers[a][2] - self.centers[b][2]))

    def attribute(self, name: str, i: int) -> float:
        return float({"bigger": self.volumes, "taller": self.heights, "wider": self.widths}[name][i])


# --------------------------------------------------------------------------------------
# Margins
# --------------------------------------------------------------------------------------


def _clear_gap(small: float, large: float) -> bool:
    """``large`` exceeds ``small`` by at least max(REL_MARGIN * small, ABS_MARGIN)."""
    return large - small >= max(REL_MARGIN * small, ABS_MARGIN)


def _clear_ratio(attr: str, small: float, large: float) -> bool:
    if small <= 0:
        return large > 0
    if attr == "bigger":
        return large / small >= VOLUME_RATIO
    return large / small >= LENGTH_RATIO and large - small >= LENGTH_GAP


def _lateral(ctx: SceneContext, a: int, b: int) -> str | None:
    """"left"/"right": where A is relative to B from the viewer, or None if unclear."""
    dx = ctx.x_cam[a] - ctx.x_cam[b]
    du = ctx.u[a] - ctx.u[b]
    if not (math.isfinite(du) and abs(dx) >= LATERAL_MIN and abs(du) >= LATERAL_MIN_IMAGE * ctx.width):
        return None
    if (dx > 0) != (du > 0):
        return None
    return "left" if dx < 0 else "right"


def _front(ctx: SceneContext, a: int, b: int) -> str | None:
    """"front" if A is clearly closer to the camera than B, "behind" if farther."""
    da, db = ctx.depth[a], ctx.depth[b]
    ea, eb = ctx.euclid_cam[a], ctx.euclid_cam[b]
    if da < db and _clear_gap(da, db) and ea < eb:
        return "front"
    if db < da and _clear_gap(db, da) and eb < ea:
        return "behind"
    return None


def _allocentric(ctx: SceneContext, a: int, b: int, c: int) -> str | None:
    f = ctx.centers[b][:2] - ctx.centers[a][:2]
    v = ctx.centers[c][:2] - ctx.centers[a][:2]
    nf, nv = float(np.hypot(*f)), float(np.hypot(*v))
    if nf < ALLO_MIN_LEG or nv < ALLO_MIN_LEG:
        return None
    cross = float(f[0] * v[1] - f[1] * v[0])
    if abs(cross) / (nf * nv) < math.sin(ALLO_MIN_ANGLE):
        return None
    return "left" if cross > 0 else "right"


# --------------------------------------------------------------------------------------
# Text helpers
# --------------------------------------------------------------------------------------


def plural(category: str) -> str:
    if category.endswith(("s", "x", "ch", "sh")):
        return category + "es"
    if category.endswith("y") and category[-2:-1] not in "aeiou":
        return category[:-1] + "ies"
    return category + "s"


def _num(x: float) -> str:
    return f"{x:.2f}"


def _options_text(options: Sequence[str]) -> str:
    lines = [f"{LETTERS[i]}. {o}" for i, o in enumerate(options)]
    return "\n" + "\n".join(lines) + "\nAnswer with the option's letter."


#: Human-like units for open-ended answers (VQASynth style): name -> (metres per unit, format).
HUMAN_UNITS: dict[str, tuple[float, str]] = {
    "m": (1.0, "{:.2f} meters"),
    "cm": (0.01, "{:.0f} centimeters"),
    "ft": (0.3048, "{:.1f} feet"),
    "in": (0.0254, "{:.0f} inches"),
}


def human_length(value_m: float, unit: str) -> str:
    per, fmt = HUMAN_UNITS[unit]
    return fmt.format(value_m / per)


_NUMERIC_TEXT: dict[str, list[str]] = {
    "abs_distance": [
        "What is the distance between the centers of the {a} and the {b}, in meters?",
        "How far is the center of the {a} from the center of the {b}? Answer in meters.",
    ],
    "object_size": [
        "What is the length of the longest side of the {a}, in meters?",
        "How long is the longest dimension (length, width or height) of the {a}? Answer in meters.",
    ],
    "room_size": [
        "What is the floor area of this room, in square meters?",
        "How large is the floor of the room? Answer in square meters.",
    ],
    "camera_depth": [
        "How far is the center of the {a} from the camera, measured along the camera's viewing direction, in meters?",
        "What is the depth of the center of the {a} along the camera's optical axis, in meters?",
    ],
    "object_height": [
        "How tall is the {a}, in meters?",
        "What is the height of the {a} in meters?",
    ],
    "vertical_distance": [
        "What is the vertical distance between the centers of the {a} and the {b}, in meters?",
        "How far apart are the centers of the {a} and the {b} in height? Answer in meters.",
    ],
    "horizontal_distance": [
        "Ignoring height, what is the horizontal distance between the centers of the {a} and the {b}, in meters?",
        "Measured along the floor, how far apart are the centers of the {a} and the {b}? Answer in meters.",
    ],
    "object_count": [
        "How many {p} are there in the image? Answer with a number.",
        "Count the {p} you can see in the image. Answer with a number.",
    ],
}

#: ``abs_distance`` asked of a context measuring between closest points (VSI-Bench's wording).
_CLOSEST_POINT_TEXT = [
    "Measuring from the closest point of each object, what is the distance between the {a} and the {b} (in meters)?",
    "What is the shortest distance between the {a} and the {b}, from the closest point of one to the closest point "
    "of the other? Answer in meters.",
]

_ATTR_WORDS = {
    # attribute -> (comparative, superlative, least-superlative, least-comparative)
    "bigger": ("bigger", "biggest", "smallest", "smaller"),
    "taller": ("taller", "tallest", "shortest", "shorter"),
    "wider": ("wider as seen from the camera", "widest as seen from the camera",
              "narrowest as seen from the camera", "narrower as seen from the camera"),
}


# --------------------------------------------------------------------------------------
# Balanced decks
# --------------------------------------------------------------------------------------


class _Decks:
    """Answer targets (letter positions per option count; 0 = yes / 1 = no) in rotation.

    The k-th target drawn for ``n`` options in a scene is ``(offset + k) mod n``; with the
    scene index as ``offset`` the targets are balanced within a scene *and* across scenes
    (each scene starts its rotation where the index puts it), without any state shared
    between scenes, so workers stay independent."""

    def __init__(self, offset: int = 0):
        self.offset = int(offset)
        self._drawn: dict = {}

    def draw(self, n: int, key: str | None = None) -> int:
        """Next target in ``range(n)``; ``key`` separates rotations (default: one per ``n``)."""
        k = self._drawn.get(key or n, 0)
        self._drawn[key or n] = k + 1
        return (self.offset + k) % n

    def snapshot(self) -> dict:
        return dict(self._drawn)

    def restore(self, state: dict) -> None:
        """Undo the draws of a rejected proposal (so only kept questions advance the rotation)."""
        self._drawn = dict(state)


# --------------------------------------------------------------------------------------
# Proposers: draw a spec (with the balanced target) or None
# --------------------------------------------------------------------------------------


def _pick(rng: np.random.Generator, pool: Sequence[int], k: int) -> list[int] | None:
    if len(pool) < k:
        return None
    idx = rng.choice(len(pool), size=k, replace=False)
    return [pool[int(i)] for i in idx]


def _pick_category(ctx: SceneContext, rng: np.random.Generator) -> str | None:
    """A countable category, drawn with probability proportional to its count squared
    (single objects dominate sampled scenes; this keeps counts above 1 frequent)."""
    cats = ctx.countable_categories()
    if not cats:
        return None
    w = np.array([ctx.count(c) ** 2 for c in cats], dtype=np.float64)
    return cats[int(rng.choice(len(cats), p=w / w.sum()))]


def _arrange(correct: str, others: Sequence[str], target: int, rng: np.random.Generator) -> tuple[str, ...]:
    """Options with ``correct`` at position ``target`` and ``others`` shuffled around it."""
    rest = [others[int(i)] for i in rng.permutation(len(others))]
    rest.insert(target, correct)
    return tuple(rest)


def _propose_numeric(qt: str, ctx: SceneContext, rng: np.random.Generator, decks: _Decks) -> QuestionSpec | None:
    variant = int(rng.integers(2))
    pool = ctx.askable_indices()
    if qt == "object_count":
        cat = _pick_category(ctx, rng)
        return None if cat is None else QuestionSpec(qt, "count", (), (), variant, (("category", cat),))
    if qt == "room_size":
        if not ctx.room_known:
            return None
        return QuestionSpec(qt, "area", (), (), variant)
    if qt in ("object_size", "object_height", "camera_depth"):
        pick = _pick(rng, pool, 1)
        return None if pick is None else QuestionSpec(qt, qt, tuple(pick), (), variant)
    pick = _pick(rng, pool, 2)
    return None if pick is None else QuestionSpec(qt, qt, tuple(pick), (), variant)


def _propose_rel_distance(ctx: SceneContext, rng: np.random.Generator, decks: _Decks) -> QuestionSpec | None:
    pool = ctx.askable_indices()
    if len(pool) < 3:
        return None
    n_opt = int(rng.integers(2, min(4, len(pool) - 1) + 1))
    pick = _pick(rng, pool, n_opt + 1)
    assert pick is not None
    anchor, cands = pick[0], pick[1:]
    extreme = "closest" if rng.random() < 0.5 else "farthest"
    d = {c: ctx.distance(anchor, c) for c in cands}
    order = sorted(cands, key=lambda c: d[c], reverse=(extreme == "farthest"))
    best = order[0]
    target = decks.draw(n_opt)
    names = _arrange(ctx.names[best], [ctx.names[c] for c in order[1:]], target, rng)
    opt_objs = tuple(ctx.names.index(nm) for nm in names)
    return QuestionSpec("rel_distance", extreme, (anchor, *opt_objs), names, int(rng.integers(2)))


_DIR_OPTIONS = {
    "lateral": ("left", "right"),
    "depth": ("in front of", "behind"),
    "quadrant": ("left and closer to the camera", "left and farther from the camera",
                 "right and closer to the camera", "right and farther from the camera"),
}


def _direction_answer(template: str, ctx: SceneContext, a: int, b: int) -> str | None:
    if template == "lateral":
        return _lateral(ctx, a, b)
    if template == "depth":
        f = _front(ctx, a, b)
        return None if f is None else ("in front of" if f == "front" else "behind")
    lat, f = _lateral(ctx, a, b), _front(ctx, a, b)
    if lat is None or f is None:
        return None
    return f"{lat} and {'closer to' if f == 'front' else 'farther from'} the camera"


def _propose_rel_direction(ctx: SceneContext, rng: np.random.Generator, decks: _Decks) -> QuestionSpec | None:
    pick = _pick(rng, ctx.askable_indices(), 2)
    if pick is None:
        return None
    template = ("lateral", "depth", "quadrant")[int(rng.integers(3))]
    correct = _direction_answer(template, ctx, *pick)
    if correct is None:
        return None
    all_opts = _DIR_OPTIONS[template]
    target = decks.draw(len(all_opts))
    options = _arrange(correct, [o for o in all_opts if o != correct], target, rng)
    return QuestionSpec("rel_direction", template, tuple(pick), options, int(rng.integers(2)))


def _propose_allocentric(ctx: SceneContext, rng: np.random.Generator, decks: _Decks) -> QuestionSpec | None:
    pick = _pick(rng, ctx.askable_indices(), 3)
    if pick is None:
        return None
    correct = _allocentric(ctx, *pick)
    if correct is None:
        return None
    options = _arrange(correct, ["right" if correct == "left" else "left"], decks.draw(2), rng)
    return QuestionSpec("rel_direction_allocentric", "stand_face", tuple(pick), options, int(rng.integers(2)))


def _propose_closer(ctx: SceneContext, rng: np.random.Generator, decks: _Decks) -> QuestionSpec | None:
    pick = _pick(rng, ctx.askable_indices(), 2)
    if pick is None:
        return None
    a, b = pick
    f = _front(ctx, a, b)
    if f is None:
        return None
    near, far = (a, b) if f == "front" else (b, a)
    options = _arrange(ctx.names[near], [ctx.names[far]], decks.draw(2), rng)
    objs = tuple(ctx.names.index(nm) for nm in options)
    return QuestionSpec("closer_to_camera", "closer", objs, options, int(rng.integers(2)))


def _propose_compare_yes_no(ctx: SceneContext, rng: np.random.Generator, decks: _Decks) -> QuestionSpec | None:
    pick = _pick(rng, ctx.askable_indices(), 2)
    if pick is None:
        return None
    attr = ("bigger", "taller", "wider")[int(rng.integers(3))]
    a, b = pick
    va, vb = ctx.attribute(attr, a), ctx.attribute(attr, b)
    big, small = (a, b) if va > vb else (b, a)
    if not _clear_ratio(attr, min(va, vb), max(va, vb)):
        return None
    want_yes = decks.draw(2, "yes_no") == 0
    form = "more" if rng.random() < 0.7 else "less"  # "Is A taller than B?" / "Is A shorter than B?"
    # "more": yes iff first is the bigger one; "less": yes iff first is the smaller one.
    first_is_big = want_yes if form == "more" else not want_yes
    objs = (big, small) if first_is_big else (small, big)
    return QuestionSpec("compare_yes_no", form, objs, (), int(rng.integers(2)), (("attribute", attr),))


def _propose_compare_choice(ctx: SceneContext, rng: np.random.Generator, decks: _Decks) -> QuestionSpec | None:
    pool = ctx.askable_indices()
    if len(pool) < 2:
        return None
    n_opt = int(rng.integers(2, min(4, len(pool)) + 1))
    pick = _pick(rng, pool, n_opt)
    assert pick is not None
    attr = ("bigger", "taller", "wider")[int(rng.integers(3))]
    extreme = "most" if rng.random() < 0.6 else "least"
    vals = {i: ctx.attribute(attr, i) for i in pick}
    order = sorted(pick, key=lambda i: vals[i], reverse=(extreme == "most"))
    target = decks.draw(n_opt)
    names = _arrange(ctx.names[order[0]], [ctx.names[i] for i in order[1:]], target, rng)
    objs = tuple(ctx.names.index(nm) for nm in names)
    return QuestionSpec("compare_choice", extreme, objs, names, int(rng.integers(2)), (("attribute", attr),))


def _propose_grounding(ctx: SceneContext, rng: np.random.Generator, decks: _Decks) -> QuestionSpec | None:
    pick = _pick(rng, ctx.askable_indices(), 1)
    return None if pick is None else QuestionSpec("grounding_bbox", "bbox", tuple(pick), (), int(rng.integers(2)))


_OPEN_TEMPLATES = ("distance", "horizontal_distance", "height", "size", "count", "left_right", "closer")


def _unit_for(value_m: float, rng: np.random.Generator) -> str:
    small = value_m < 1.0
    return ("cm", "in")[int(rng.integers(2))] if small else ("m", "ft")[int(rng.integers(2))]


def _propose_open(ctx: SceneContext, rng: np.random.Generator, decks: _Decks) -> QuestionSpec | None:
    template = _OPEN_TEMPLATES[int(rng.integers(len(_OPEN_TEMPLATES)))]
    variant = int(rng.integers(2))
    pool = ctx.askable_indices()
    if template == "count":
        cat = _pick_category(ctx, rng)
        return None if cat is None else QuestionSpec("open_ended", template, (), (), variant, (("category", cat),))
    k = 1 if template in ("height", "size") else 2
    pick = _pick(rng, pool, k)
    if pick is None:
        return None
    if template in ("height", "size", "distance", "horizontal_distance"):
        value = {
            "height": lambda: ctx.heights[pick[0]],
            "size": lambda: ctx.longest[pick[0]],
            "distance": lambda: ctx.distance(*pick),
            "horizontal_distance": lambda: ctx.horizontal(*pick),
        }[template]()
        return QuestionSpec("open_ended", template, tuple(pick), (), variant, (("display_unit", _unit_for(float(value), rng)),))
    if template == "left_right":  # "Is A to the left of B?": order A, B so yes / no rotate
        side = _lateral(ctx, *pick)
        if side is None:
            return None
        if (side == "left") != (decks.draw(2, "open_yes_no") == 0):
            pick = pick[::-1]
    return QuestionSpec("open_ended", template, tuple(pick), (), variant)


_PROPOSERS = {
    "rel_distance": _propose_rel_distance,
    "rel_direction": _propose_rel_direction,
    "rel_direction_allocentric": _propose_allocentric,
    "closer_to_camera": _propose_closer,
    "compare_yes_no": _propose_compare_yes_no,
    "compare_choice": _propose_compare_choice,
    "grounding_bbox": _propose_grounding,
    "open_ended": _propose_open,
}


def propose(
    ctx: SceneContext,
    rng: np.random.Generator,
    types: Sequence[str] | None = None,
    quota: Mapping[str, int] | None = None,
    balance_offset: int = 0,
) -> list[QuestionSpec]:
    """Draw question specs for a scene (valid for ``ctx``; no duplicates).

    ``types`` restricts the question types (default all); ``quota`` maps a type to how
    many questions to attempt (default :data:`DEFAULT_QUOTA`); ``balance_offset`` (use the
    scene index) starts the rotation of correct letters and yes/no answers.
    """
    types = QUESTION_TYPES if types is None else tuple(types)
    for t in types:
        if t not in ANSWER_TYPE:
            raise ValueError(f"unknown question type {t!r}; use one of {', '.join(QUESTION_TYPES)}")
    quota = DEFAULT_QUOTA if quota is None else quota
    decks = _Decks(balance_offset)
    seen: set = set()
    specs: list[QuestionSpec] = []
    for qt in QUESTION_TYPES:
        if qt not in types:
            continue
        for _ in range(int(quota.get(qt, 0))):
            for _try in range(_TRIES):
                state = decks.snapshot()
                if qt in DIMENSION:
                    spec = _propose_numeric(qt, ctx, rng, decks)
                else:
                    spec = _PROPOSERS[qt](ctx, rng, decks)
                if spec is None or spec.key() in seen or answer(spec, ctx) is None:
                    decks.restore(state)
                    continue
                seen.add(spec.key())
                specs.append(spec)
                break
    return specs


# --------------------------------------------------------------------------------------
# Answering a spec on a view
# --------------------------------------------------------------------------------------


def _numeric_sample(spec: QuestionSpec, ctx: SceneContext, value: float, fmt: dict[str, str]) -> QASample:
    qt = spec.question_type
    dim = DIMENSION[qt]
    texts = _CLOSEST_POINT_TEXT if (qt == "abs_distance" and ctx.distance_measure == "closest_point") else _NUMERIC_TEXT[qt]
    text = texts[spec.variant % 2].format(**fmt)
    ans = str(int(value)) if dim == "count" else _num(value)
    return QASample(qt, "numerical", text, ans, float(value), dim, UNIT[dim])


def _answer_numeric(spec: QuestionSpec, ctx: SceneContext) -> QASample | None:
    qt = spec.question_type
    o = spec.objects
    names = [ctx.names[i] for i in o]
    fmt = {"a": names[0] if names else "", "b": names[1] if len(names) > 1 else ""}
    if qt == "object_count":
        cat = spec.param("category")
        if cat not in ctx.countable_categories():
            return None
        fmt["p"] = plural(cat)
        return _numeric_sample(spec, ctx, ctx.count(cat), fmt)
    if qt == "room_size":
        room = ctx.scene.room
        return _numeric_sample(spec, ctx, room.width * room.depth, fmt) if ctx.room_known else None
    if qt == "object_size":
        return _numeric_sample(spec, ctx, float(ctx.longest[o[0]]), fmt)
    if qt == "object_height":
        return _numeric_sample(spec, ctx, float(ctx.heights[o[0]]), fmt)
    if qt == "camera_depth":
        d = float(ctx.depth[o[0]])
        return _numeric_sample(spec, ctx, d, fmt) if d > 0.1 else None
    if qt == "abs_distance":
        return _numeric_sample(spec, ctx, ctx.distance(*o), fmt)
    if qt == "vertical_distance":
        v = ctx.vertical(*o)
        return _numeric_sample(spec, ctx, v, fmt) if v >= MIN_NUMERIC else None
    if qt == "horizontal_distance":
        v = ctx.horizontal(*o)
        return _numeric_sample(spec, ctx, v, fmt) if v >= MIN_NUMERIC else None
    raise AssertionError(qt)


def _choice(spec: QuestionSpec, question: str, correct: str) -> QASample:
    idx = spec.options.index(correct)
    return QASample(
        spec.question_type, "discrete", question + _options_text(spec.options), LETTERS[idx],
        options=list(spec.options), answer_index=idx,
    )


def _answer_rel_distance(spec: QuestionSpec, ctx: SceneContext) -> QASample | None:
    anchor, cands = spec.objects[0], spec.objects[1:]
    d = sorted(((ctx.distance(anchor, c), c) for c in cands), reverse=(spec.template == "farthest"))
    (d1, best), (d2, _) = d[0], d[1]
    if not _clear_gap(min(d1, d2), max(d1, d2)):
        return None
    a = ctx.names[anchor]
    if ctx.distance_measure == "closest_point":
        q = f"Measuring from the closest point of each object, which of these objects is {spec.template} to the {a}?"
    elif spec.variant % 2 == 0:
        q = f"Which of these objects is {spec.template} to the {a} (measured between object centers)?"
    else:
        q = f"Measuring between object centers, which object is the {spec.template} from the {a}?"
    return _choice(spec, q, ctx.names[best])


def _answer_rel_direction(spec: QuestionSpec, ctx: SceneContext) -> QASample | None:
    a, b = spec.objects
    correct = _direction_answer(spec.template, ctx, a, b)
    if correct is None:
        return None
    na, nb = ctx.names[a], ctx.names[b]
    if spec.template == "lateral":
        q = [f"From the camera's viewpoint, is the {na} to the left or to the right of the {nb}?",
             f"As seen in the image, is the {na} on the left or on the right side of the {nb}?"][spec.variant % 2]
    elif spec.template == "depth":
        q = [f"From the camera's viewpoint, is the {na} in front of (closer to the camera than) or behind the {nb}?",
             f"Seen from the camera, is the {na} in front of or behind the {nb}?"][spec.variant % 2]
    else:
        q = [f"From the camera's viewpoint, where is the {na} relative to the {nb}?",
             f"As seen from the camera, how is the {na} positioned relative to the {nb}?"][spec.variant % 2]
    return _choice(spec, q, correct)


def _answer_allocentric(spec: QuestionSpec, ctx: SceneContext) -> QASample | None:
    a, b, c = spec.objects
    correct = _allocentric(ctx, a, b, c)
    if correct is None:
        return None
    na, nb, nc = (ctx.names[i] for i in (a, b, c))
    q = [f"If you stand at the {na} facing the {nb}, is the {nc} to your left or to your right?",
         f"Imagine standing at the {na} and looking toward the {nb}. Is the {nc} on your left or on your right?"][spec.variant % 2]
    return _choice(spec, q, correct)


def _answer_closer(spec: QuestionSpec, ctx: SceneContext) -> QASample | None:
    a, b = spec.objects
    f = _front(ctx, a, b)
    if f is None:
        return None
    near = a if f == "front" else b
    q = ["Which object is closer to the camera?", "Which of these objects is nearer to the camera?"][spec.variant % 2]
    return _choice(spec, q, ctx.names[near])


def _answer_compare_yes_no(spec: QuestionSpec, ctx: SceneContext) -> QASample | None:
    a, b = spec.objects
    attr = spec.param("attribute")
    va, vb = ctx.attribute(attr, a), ctx.attribute(attr, b)
    if not _clear_ratio(attr, min(va, vb), max(va, vb)):
        return None
    words = _ATTR_WORDS[attr]
    word = words[0] if spec.template == "more" else words[3]
    yes = (va > vb) if spec.template == "more" else (va < vb)
    na, nb = ctx.names[a], ctx.names[b]
    q = [f"Is the {na} {word} than the {nb}? Answer yes or no.",
         f"Compared with the {nb}, is the {na} {word}? Answer yes or no."][spec.variant % 2]
    return QASample(spec.question_type, "discrete", q, "yes" if yes else "no")


def _answer_compare_choice(spec: QuestionSpec, ctx: SceneContext) -> QASample | None:
    attr = spec.param("attribute")
    vals = sorted(((ctx.attribute(attr, i), i) for i in spec.objects), reverse=(spec.template == "most"))
    (v1, best), (v2, _) = vals[0], vals[1]
    if not _clear_ratio(attr, min(v1, v2), max(v1, v2)):
        return None
    words = _ATTR_WORDS[attr]
    if len(spec.objects) == 2:
        word = words[0] if spec.template == "most" else words[3]
        q = f"Which of these two objects is {word}?"
    else:
        word = words[1] if spec.template == "most" else words[2]
        q = [f"Which of these objects is the {word}?", f"Among these objects, which one is the {word}?"][spec.variant % 2]
    return _choice(spec, q, ctx.names[best])


def _answer_grounding(spec: QuestionSpec, ctx: SceneContext) -> QASample | None:
    i = spec.objects[0]
    box = ctx.views[i].box
    if box is None or not ctx.clear[i]:
        return None
    name = ctx.names[i]
    w, h = ctx.width, ctx.height
    q = [f"Give the bounding box of the visible part of the {name} as [x1, y1, x2, y2] in pixel coordinates of this {w}x{h} image.",
         f"Locate the {name} in the image ({w}x{h} pixels) and output its bounding box [x1, y1, x2, y2] in pixels."][spec.variant % 2]
    vals = [float(x) for x in box]
    text = "[" + ", ".join(f"{int(v)}" if float(v).is_integer() else f"{v:.1f}" for v in vals) + "]"
    return QASample(spec.question_type, "grounding", q, text, bbox=vals)


def _answer_open(spec: QuestionSpec, ctx: SceneContext) -> QASample | None:
    t, v = spec.template, spec.variant % 2
    names = [ctx.names[i] for i in spec.objects]
    if t == "count":
        cat = spec.param("category")
        if cat not in ctx.countable_categories():
            return None
        n = ctx.count(cat)
        noun = cat if n == 1 else plural(cat)
        q = [f"How many {plural(cat)} can you see in the image?", f"Can you count the {plural(cat)} in this picture?"][v]
        a = [f"There {'is' if n == 1 else 'are'} {n} {noun} in the image.", f"I can see {n} {noun}."][v]
        return QASample("open_ended", "open_ended", q, a, float(n), "count", "")
    if t in ("distance", "horizontal_distance", "height", "size"):
        unit = spec.param("display_unit")
        if t == "distance":
            value = float(np.linalg.norm(ctx.centers[spec.objects[0]] - ctx.centers[spec.objects[1]]))  # the text says centres
            q = [f"How far apart are the centers of the {names[0]} and the {names[1]}?",
                 f"What is the distance between the center of the {names[0]} and the center of the {names[1]}?"][v]
            a = [f"The centers of the {names[0]} and the {names[1]} are {{}} apart.",
                 f"The center of the {names[0]} is {{}} from the center of the {names[1]}."][v]
        elif t == "horizontal_distance":
            value = ctx.horizontal(*spec.objects)
            if value < MIN_NUMERIC:
                return None
            q = [f"Ignoring height, how far apart are the centers of the {names[0]} and the {names[1]}?",
                 f"Along the floor, what is the distance between the centers of the {names[0]} and the {names[1]}?"][v]
            a = [f"Measured along the floor, the {names[0]} and the {names[1]} are {{}} apart.",
                 f"The horizontal distance between the {names[0]} and the {names[1]} is {{}}."][v]
        elif t == "height":
            value = float(ctx.heights[spec.objects[0]])
            q = [f"How tall is the {names[0]}?", f"What is the height of the {names[0]}?"][v]
            a = [f"The {names[0]} is {{}} tall.", f"The height of the {names[0]} is {{}}."][v]
        else:
            value = float(ctx.longest[spec.objects[0]])
            q = [f"How long is the longest side of the {names[0]}?", f"What is the largest dimension of the {names[0]}?"][v]
            a = [f"The longest side of the {names[0]} measures {{}}.", f"The {names[0]} is {{}} along its largest dimension."][v]
        return QASample("open_ended", "open_ended", q, a.format(human_length(value, unit)), float(value), "length", "m")
    if t == "left_right":
        side = _lateral(ctx, *spec.objects)
        if side is None:
            return None
        q = [f"Is the {names[0]} to the left of the {names[1]} from the camera's point of view?",
             f"From where the camera stands, is the {names[0]} left of the {names[1]}?"][v]
        a = (f"Yes, the {names[0]} is to the left of the {names[1]}." if side == "left"
             else f"No, the {names[0]} is to the right of the {names[1]}.")
        return QASample("open_ended", "open_ended", q, a)
    if t == "closer":
        f = _front(ctx, *spec.objects)
        if f is None:
            return None
        near, far = (names[0], names[1]) if f == "front" else (names[1], names[0])
        q = [f"Which is closer to the camera, the {names[0]} or the {names[1]}?",
             f"Between the {names[0]} and the {names[1]}, which one is nearer to the camera?"][v]
        return QASample("open_ended", "open_ended", q, f"The {near} is closer to the camera than the {far}.")
    raise AssertionError(t)


_ANSWERERS = {
    "rel_distance": _answer_rel_distance,
    "rel_direction": _answer_rel_direction,
    "rel_direction_allocentric": _answer_allocentric,
    "closer_to_camera": _answer_closer,
    "compare_yes_no": _answer_compare_yes_no,
    "compare_choice": _answer_compare_choice,
    "grounding_bbox": _answer_grounding,
    "open_ended": _answer_open,
}


def answer(spec: QuestionSpec, ctx: SceneContext) -> QASample | None:
    """Ask ``spec`` of the view in ``ctx``: the answered sample, or None when it is not
    valid there (an object not clearly visible, or an answer inside the ambiguity margin)."""
    if any(not (0 <= i < ctx.n) or not ctx.askable[i] for i in spec.objects):
        return None
    if spec.question_type in DIMENSION:
        sample = _answer_numeric(spec, ctx)
    else:
        sample = _ANSWERERS[spec.question_type](spec, ctx)
    if sample is None:
        return None
    meta = {
        "template": spec.template,
        "variant": spec.variant,
        "objects": list(spec.objects),
        "object_names": [ctx.names[i] for i in spec.objects],
    }
    meta.update({k: v for k, v in spec.params})
    meta.update(sample.meta)
    sample.meta = meta
    return sample


# --------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------


def generate(
    ctx: SceneContext,
    rng: np.random.Generator,
    types: Sequence[str] | None = None,
    quota: Mapping[str, int] | None = None,
    balance_offset: int = 0,
) -> list[QASample]:
    """Questions and answers for one view (arguments as in :func:`propose`)."""
    out = []
    for spec in propose(ctx, rng, types, quota, balance_offset):
        s = answer(spec, ctx)
        if s is not None:
            out.append(s)
    return out


def generate_pairs(
    ctx: SceneContext,
    mirror_ctx: SceneContext,
    rng: np.random.Generator,
    types: Sequence[str] | None = None,
    quota: Mapping[str, int] | None = None,
    balance_offset: int = 0,
) -> list[tuple[QASample, QASample]]:
    """Mirror pairs (SVQA-R1 sec. 3.1): each spec drawn on the original view is answered
    on both views; pairs where either view is invalid are dropped. The mirrored question
    has the same text, template, object references and options (no template refers to an
    object by a direction, so no text needs rewriting); its answer comes from the mirrored
    geometry."""
    pairs = []
    for spec in propose(ctx, rng, types, quota, balance_offset):
        a, b = answer(spec, ctx), answer(spec, mirror_ctx)
        if a is None or b is None:
            continue
        if a.question != b.question or a.options != b.options:  # pragma: no cover - invariant
            raise AssertionError("mirrored question text differs")
        pairs.append((a, b))
    return pairs
