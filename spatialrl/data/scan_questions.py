"""Questions about real scans: one frame's templates and the scene-level questions of a video.

Numerical3D (Smooth Operator sec. 3.1) and VSI-Bench's question families over a
:class:`~spatialrl.data.sources.scan.ScanScene`, each answered exactly from the annotation and
asked again of the mirrored twin (SVQA-R1 sec. 3.1; the flipped image, the reflected scene,
the answer recomputed). Definitions in ``docs/data.md``; in short:

**Single-frame questions** are the synthetic world's templates (:mod:`spatialrl.world.questions`:
camera depth, distances, object size and height, counts in the image, relative direction,
closer/farther, comparisons, grounding boxes, open-ended) asked of a levelled frame
(:mod:`spatialrl.data.scan_frames`). The frame's scene holds the objects the frame shows at
all, so "the chair" names the one chair in view; structural and catch-all categories
(:data:`EXCLUDED_CATEGORIES`) are never asked about. Distances between two objects are measured
between their closest points, VSI-Bench's definition (``abs_distance``, ``rel_distance``; the
question says so): for upright boxes, ``sqrt(d_floor^2 + d_z^2)`` with ``d_floor`` the distance
between their floor rectangles and ``d_z`` the gap between their height ranges.

**Scene-level questions** are asked over K frames sampled uniformly from the scan's video (the
row holds them in time order), VSI-Bench's families and definitions (its generation code as
published with VLM-3R's data processing):

* ``room_size``: the floor area from the scan's own geometry (:func:`~.sources.floor.floor_area`);
* ``object_count``: how many objects of a category the room holds, for categories with more
  than one (VSI-Bench counts only those);
* ``abs_distance``: closest-point distance between two objects unique in the room, preferably
  two never seen in one frame, each clearly seen in some frame shown; pairs closer than 0.2 m
  are not asked (VSI-Bench);
* ``object_size``: the longest side of a unique object's box (VSI-Bench asks in centimetres; we ask
  in metres, the unit of every length answer in the dataset);
* ``appearance_order``: four categories unique in the room, ordered by the first frame shown
  in which they are clearly seen; each first in a different frame.

Every row's ``meta`` names its objects under ``object_ids`` (the source's ids, in the order the
question mentions them; all of a category's objects for a count) and its frames under
``frame_ids``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from spatialrl.data.annotations import AnnotatedObject
from spatialrl.data.scan_frames import FrameView, clearly_seen
from spatialrl.data.sources.scan import EXCLUDED_CATEGORIES, ScanObject, ScanScene
from spatialrl.world.questions import (
    DEFAULT_QUOTA,
    DIMENSION,
    LETTERS,
    ObjectView,
    QASample,
    SceneContext,
    generate_pairs,
    plural,
)
from spatialrl.world.scene import Camera, Room, Scene

__all__ = [
    "EXCLUDED_CATEGORIES",
    "MIN_PAIR_DISTANCE",
    "ScanContext",
    "ScanPair",
    "closest_distance",
    "frame_pairs",
    "scene_pairs",
]

MIN_PAIR_DISTANCE = 0.2  # VSI-Bench: closer pairs are not asked
#: Questions attempted per frame and type: a real frame shows more objects than a synthetic
#: render, and the selection removes what repeats across frames.
FRAME_QUOTA: dict[str, int] = {t: 2 for t in DEFAULT_QUOTA} | {"open_ended": 3}


@dataclass
class ScanPair:
    """A question answered on the original and the mirrored view, with what it is about."""

    original: QASample
    mirror: QASample
    object_ids: list[str]
    frame_ids: list[str]
    level: str  # "frame" or "scene"


def _footprint(corners: np.ndarray):
    from shapely import MultiPoint

    return MultiPoint(corners[:, :2]).convex_hull


def closest_distance(a: Any, b: Any) -> float:
    """Distance (m) between the closest points of two upright boxes (anything with
    ``corners()``, whose first four corners are the bottom face): the floor-plane distance of
    their footprints and the gap of their height ranges, combined (exact for upright boxes)."""
    ca, cb = np.asarray(a.corners()), np.asarray(b.corners())
    d_floor = float(_footprint(ca).distance(_footprint(cb)))
    gap_z = max(0.0, max(ca[:, 2].min(), cb[:, 2].min()) - min(ca[:, 2].max(), cb[:, 2].max()))
    return math.hypot(d_floor, gap_z)


class ScanContext(SceneContext):
    """A frame's scene for the world's templates, distances measured between closest points."""

    distance_measure = "closest_point"

    def distance(self, a: int, b: int) -> float:
        return closest_distance(self.scene.objects[a], self.scene.objects[b])


def _as_annotated(obj: ScanObject, mirrored: bool) -> AnnotatedObject:
    """The object as the templates' upright box, reflected in x = 0 for the mirrored view. A
    box whose third axis is vertical is itself; any other is replaced by the smallest upright
    box around its corners."""
    from spatialrl.data.sources.scan import upright_box

    if abs(obj.axes[2][2]) > 1 - 1e-3:
        center, size, first_axis = obj.center, obj.size, obj.axes[0]
    else:
        center, size, axes = upright_box(obj.corners())
        first_axis = axes[0]
    yaw = math.atan2(first_axis[1], first_axis[0])
    center = tuple(float(c) for c in center)
    if mirrored:
        center, yaw = (-center[0], center[1], center[2]), math.pi - yaw
    return AnnotatedObject(obj.category, center, tuple(float(x) for x in size), yaw)


def _mirror_camera(c: Camera) -> Camera:
    return Camera((-c.position[0], c.position[1], c.position[2]), math.pi - c.yaw, c.pitch, c.fx, c.fy,
                  c.width - c.cx, c.cy, c.width, c.height)  # fmt: skip


def _frame_contexts(fv: FrameView, scan: ScanScene) -> tuple[ScanContext, ScanContext, list[ScanObject]]:
    """The original and mirrored contexts of a frame and the objects they hold (in order)."""
    keep = [i for i, (o, v) in enumerate(zip(scan.objects, fv.views))
            if o.category not in EXCLUDED_CATEGORIES and (v.box is not None or v.visible_fraction > 0)]  # fmt: skip
    objs = [scan.objects[i] for i in keep]
    views = [fv.views[i] for i in keep]
    room = Room(1.0, 1.0, 1.0)  # unused: room_known=False (the room is a scene-level question)
    w = fv.camera.width
    mviews = [ObjectView(v.visible_fraction, None if v.box is None else (w - v.box[2], v.box[1], w - v.box[0], v.box[3]))
              for v in views]  # fmt: skip
    scene = Scene(scan.scene_id, room, [_as_annotated(o, False) for o in objs], fv.camera)
    mscene = Scene(scan.scene_id, room, [_as_annotated(o, True) for o in objs], _mirror_camera(fv.camera), mirrored=True)
    return (ScanContext(scene, views, room_known=False), ScanContext(mscene, mviews, room_known=False), objs)


def frame_pairs(fv: FrameView, scan: ScanScene, rng: np.random.Generator, types: Sequence[str] | None = None,
                balance_offset: int = 0) -> list[ScanPair]:  # fmt: skip
    """The world's templates asked of one levelled frame and of its mirrored twin."""
    frame_types = None if types is None else [t for t in types if t != "room_size" and t != "appearance_order"]
    if frame_types is not None and not frame_types:
        return []
    ctx, mctx, objs = _frame_contexts(fv, scan)
    out = []
    for a, b in generate_pairs(ctx, mctx, rng, frame_types, quota=FRAME_QUOTA, balance_offset=balance_offset):
        idx = a.meta.get("objects", [])
        ids = [objs[i].object_id for i in idx]
        if a.question_type == "object_count":
            cat = a.meta.get("category")
            ids = [o.object_id for o, v in zip(objs, ctx.views) if o.category == cat and clearly_seen(v)]
        for s in (a, b):
            s.meta["object_ids"] = ids
            s.meta["frame_ids"] = [fv.frame.frame_id]
            s.meta["level"] = "frame"
            if a.question_type in ("abs_distance", "rel_distance"):
                s.meta["distance_measure"] = "closest_point"
        out.append(ScanPair(a, b, ids, [fv.frame.frame_id], "frame"))
    return out


# --------------------------------------------------------------------------------------
# Scene-level questions over K frames
# --------------------------------------------------------------------------------------

_PREFIX = "These are frames of a video. "


def _numeric(qt: str, question: str, value: float, answer: str | None = None, **meta: Any) -> QASample:
    dim = DIMENSION[qt]
    unit = {"length": "m", "area": "m^2", "count": ""}[dim]
    text = answer if answer is not None else (str(int(value)) if dim == "count" else f"{value:.2f}")
    return QASample(qt, "numerical", _PREFIX + question, text, float(value), dim, unit, meta=dict(meta))


def _twin(s: QASample) -> QASample:
    return QASample(s.question_type, s.answer_type, s.question, s.answer, s.answer_value, s.dimension, s.unit,
                    list(s.options), s.answer_index, list(s.bbox), dict(s.meta))  # fmt: skip


def scene_pairs(scan: ScanScene, video: list[FrameView], rng: np.random.Generator,
                types: Sequence[str] | None = None, per_type: int = 1) -> list[ScanPair]:  # fmt: skip
    """Scene-level questions over the frames ``video`` (time order), each with its mirrored
    twin: every frame flipped, the scene reflected. Room size, counts, distances, sizes and the
    appearance order do not change under a reflection, so the twin's answer equals the
    original's (recomputed from the reflected boxes where it depends on geometry)."""
    want = set(types) if types is not None else None

    def wanted(t: str) -> bool:
        return want is None or t in want

    frame_ids = [fv.frame.frame_id for fv in video]
    objs = [o for o in scan.objects if o.category not in EXCLUDED_CATEGORIES]
    by_cat: dict[str, list[ScanObject]] = {}
    for o in objs:
        by_cat.setdefault(o.category, []).append(o)
    unique = [v[0] for v in by_cat.values() if len(v) == 1]
    index = {o.object_id: i for i, o in enumerate(scan.objects)}
    seen_in = {o.object_id: [k for k, fv in enumerate(video) if clearly_seen(fv.views[index[o.object_id]])] for o in objs}
    out: list[ScanPair] = []

    def add(sample: QASample, mirror: QASample, ids: list[str]) -> None:
        for s in (sample, mirror):
            s.meta.update({"object_ids": ids, "frame_ids": frame_ids, "level": "scene"})
        out.append(ScanPair(sample, mirror, ids, frame_ids, "scene"))

    if wanted("room_size") and scan.floor_area and scan.floor_area > 0:
        q = _numeric("room_size", "What is the size of this room (in square meters)? If multiple rooms are shown, "
                     "estimate the size of the combined space.", scan.floor_area, template="room_area")  # fmt: skip
        add(q, _twin(q), [])

    if wanted("object_count"):
        cats = sorted(c for c, v in by_cat.items() if len(v) > 1 and any(seen_in[o.object_id] for o in v))
        for c in [cats[i] for i in rng.permutation(len(cats))[:per_type]]:
            q = _numeric("object_count", f"How many {plural(c)} are in this room?", len(by_cat[c]),
                         template="room_count", category=c)  # fmt: skip
            add(q, _twin(q), [o.object_id for o in by_cat[c]])

    visible_unique = [o for o in unique if seen_in[o.object_id]]
    if wanted("abs_distance") and len(visible_unique) >= 2:
        pairs = [(a, b) for i, a in enumerate(visible_unique) for b in visible_unique[i + 1:]]
        never_together = [p for p in pairs if not set(seen_in[p[0].object_id]) & set(seen_in[p[1].object_id])]
        pool = never_together or pairs
        for k in rng.permutation(len(pool)):
            a, b = pool[k]
            d = closest_distance(_as_annotated(a, False), _as_annotated(b, False))
            if d < MIN_PAIR_DISTANCE:
                continue
            dm = closest_distance(_as_annotated(a, True), _as_annotated(b, True))
            text = (f"Measuring from the closest point of each object, what is the distance between the {a.category} "
                    f"and the {b.category} (in meters)?")  # fmt: skip
            q = _numeric("abs_distance", text, d, template="room_distance", distance_measure="closest_point")
            m = _numeric("abs_distance", text, dm, template="room_distance", distance_measure="closest_point")
            add(q, m, [a.object_id, b.object_id])
            break

    if wanted("object_size") and visible_unique:
        o = visible_unique[int(rng.integers(len(visible_unique)))]
        text = (f"What is the length of the longest dimension (length, width, or height) of the {o.category}, "
                "in meters?")  # fmt: skip
        q = _numeric("object_size", text, o.longest_dimension, template="room_object_size")
        add(q, _twin(q), [o.object_id])

    if wanted("appearance_order") and scan.time_ordered:
        firsts = {o.object_id: seen_in[o.object_id][0] for o in visible_unique}
        by_first: dict[int, list[ScanObject]] = {}
        for o in visible_unique:
            by_first.setdefault(firsts[o.object_id], []).append(o)
        if len(by_first) >= 4:
            slots = sorted(rng.choice(sorted(by_first), size=4, replace=False).tolist())
            chosen = [by_first[s][int(rng.integers(len(by_first[s])))] for s in slots]
            names = [o.category for o in chosen]
            correct = ", ".join(names)
            wrong: list[str] = []
            while len(wrong) < 3:
                perm = [names[i] for i in rng.permutation(4)]
                text = ", ".join(perm)
                if text != correct and text not in wrong:
                    wrong.append(text)
            target = int(rng.integers(4))
            options = wrong[:target] + [correct] + wrong[target:]
            shown = sorted(names)
            question = (_PREFIX + "What will be the first-time appearance order of the following categories in the "
                        f"video: {', '.join(shown)}?\n" + "\n".join(f"{LETTERS[i]}. {t}" for i, t in enumerate(options))
                        + "\nAnswer with the option's letter.")  # fmt: skip
            q = QASample("appearance_order", "discrete", question, LETTERS[target], options=options, answer_index=target,
                         meta={"template": "first_appearance", "first_frames": [frame_ids[s] for s in slots]})  # fmt: skip
            add(q, _twin(q), [o.object_id for o in chosen])
    return out
