"""Training data of ``spatialrl pretrain``: scenes of the world with their exact dense truth,
grounding texts and QA, in the layout the tiny Qwen2.5-VL consumes.

Scenes
    Scene ``i`` of world seed ``s`` is drawn exactly as ``spatialrl data build`` draws it
    (``SeedSequence(s, spawn_key=(i,))``, children for the scene and its questions; JSON round
    trip; original and mirrored view). The pretraining seed differs from the evaluation build's
    (``spatialrl data build --seed 0``), and scenes are continuous random draws, so no held-out
    scene is ever trained on.

Dense truth per patch (:data:`DENSE_FIELDS`)
    The renderer's exact per-pixel maps (``depth``, ``instance``) reduced to the 14 px patches of
    the vision tower, in the processor's patch order (merged 2 x 2 blocks in raster order, then
    the 2 x 2 patches inside a block; see :func:`patch_order`):

    ``cls``   (P, 12) pixel fractions of floor, wall/ceiling and the 10 object categories;
    ``col``   (P, 9)  pixel fractions of room and the 8 object colours;
    ``depth`` (P,)    mean log z-depth (m) of the patch's pixels;
    ``obj``   (P, 8)  for the object covering most of the patch (``obj_mask`` = 1 when objects
              cover at least :data:`OBJECT_MIN_FRACTION` of it): its centre's image position
              (u / W, v / H), its centre in camera coordinates (x / z, log z, y), log height,
              log longest side, log volume;
    ``pos``   (P, 2)  the patch centre's own (u / W, v / H).
    Per image (``scene``): log floor area, camera height, log number of visible objects.

Grounding texts (:func:`grounding_texts`)
    Questions that tie the image to words, answered from the same exact truth: the clearly
    visible objects listed left to right (projected centres) and near to far (camera depth), an
    object's centre as pixel coordinates, and the number of visible objects.

QA
    The world's question families (:func:`spatialrl.world.questions.generate_pairs`, default
    quotas, every type), exactly the rows ``spatialrl data build`` writes for that scene.

Pixels
    :func:`patchify` is ``Qwen2VLImageProcessorPil``'s rescale / normalise / patch layout done in
    numpy for images that need no resize (side a multiple of 28 within the processor's pixel
    budget); a test checks it against the processor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "OBJECT_PROPS",
    "CLASS_NAMES",
    "COLOR_NAMES",
    "DENSE_FIELDS",
    "GROUNDING_KINDS",
    "DIRECTION_PAIRS",
    "EXTRA_GROUNDING_KINDS",
    "extra_grounding_texts",
    "OBJECT_MIN_FRACTION",
    "SceneView",
    "dense_targets",
    "grounding_texts",
    "make_views",
    "mention_spans",
    "object_props",
    "patch_order",
    "patchify",
]

PATCH = 14
MERGE = 2
TEMPORAL = 2
#: Fewest visible pixels for an object to be named in the colour / kind / largest-object lists.
MIN_LIST_PIXELS = 10
#: Share of a patch that objects must cover for its ``obj`` targets to count.
OBJECT_MIN_FRACTION = 0.3

DENSE_FIELDS = ("cls", "col", "depth", "obj", "obj_mask", "pos")


def _categories() -> list[str]:
    from spatialrl.world.scene import CATEGORIES

    return list(CATEGORIES)


def _colors() -> list[str]:
    from spatialrl.world.scene import COLORS

    return list(COLORS)


CLASS_NAMES: tuple[str, ...] = ("floor", "wall", *_categories())
COLOR_NAMES: tuple[str, ...] = ("room", *_colors())


@dataclass
class SceneView:
    """One rendered view with everything the pretraining tasks need.

    ``image`` (H, W, 3) uint8; ``dense``: the per-patch arrays of :data:`DENSE_FIELDS` in patch
    order plus ``scene`` (3,); ``texts``: grounding ``(kind, question, answer)`` triples;
    ``qa``: world QA ``(question_type, question, answer)`` triples; ``objects``: name -> the 8
    :data:`OBJECT_PROPS` of each clearly visible, uniquely named object; ``counts``: category ->
    number of clearly visible objects (the counting questions' definition); ``object_tokens`` /
    ``count_tokens``: where they are -- the share of their visible pixels under each merged image
    token (2 x 2 patches, raster order: the language model's image tokens), summing to 1.
    """

    scene_index: int
    view: str
    image: np.ndarray
    dense: dict[str, np.ndarray]
    texts: list[tuple[str, str, str]] = field(default_factory=list)
    qa: list[tuple[str, str, str]] = field(default_factory=list)
    objects: dict[str, np.ndarray] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    object_tokens: dict[str, np.ndarray] = field(default_factory=dict)
    count_tokens: dict[str, np.ndarray] = field(default_factory=dict)


# --------------------------------------------------------------------------------------
# Patch layout
# --------------------------------------------------------------------------------------


def patch_order(grid_h: int, grid_w: int) -> np.ndarray:
    """Raster patch index (row * grid_w + col) of each row of the processor's ``pixel_values``:
    merged 2 x 2 blocks in raster order, then the block's patches (top-left, top-right,
    bottom-left, bottom-right)."""
    rows = np.arange(grid_h).reshape(grid_h // MERGE, MERGE, 1, 1)
    cols = np.arange(grid_w).reshape(1, 1, grid_w // MERGE, MERGE)
    raster = rows * grid_w + cols  # (bh, mh, bw, mw)
    return raster.transpose(0, 2, 1, 3).reshape(-1)


def patchify(images: np.ndarray, mean: Any, std: Any) -> np.ndarray:
    """``pixel_values`` of a batch of (N, H, W, 3) uint8 images as ``Qwen2VLImageProcessorPil``
    computes them when no resize is needed: (N * gh * gw, 3 * 2 * 14 * 14) float32."""
    x = np.asarray(images, dtype=np.float32) * np.float32(1 / 255)
    x = (x - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    n, h, w, c = x.shape
    gh, gw = h // PATCH, w // PATCH
    x = x.transpose(0, 3, 1, 2)  # N, C, H, W
    x = x.reshape(n, c, gh // MERGE, MERGE, PATCH, gw // MERGE, MERGE, PATCH)
    # -> N, bh, bw, mh, mw, C, ph, pw ; then the temporal copy goes between C and ph
    x = x.transpose(0, 2, 5, 3, 6, 1, 4, 7)
    x = np.broadcast_to(x[:, :, :, :, :, :, None], (*x.shape[:6], TEMPORAL, PATCH, PATCH))
    return np.ascontiguousarray(x).reshape(n * gh * gw, c * TEMPORAL * PATCH * PATCH)


def _pool(a: np.ndarray, gh: int, gw: int) -> np.ndarray:
    """(H, W, ...) -> (gh * gw, ...) means over 14 x 14 patches, raster order."""
    h, w = a.shape[:2]
    rest = a.shape[2:]
    b = a.reshape(gh, h // gh, gw, w // gw, *rest).mean(axis=(1, 3))
    return b.reshape(gh * gw, *rest)


# --------------------------------------------------------------------------------------
# Dense truth
# --------------------------------------------------------------------------------------


#: Properties of the per-category / per-colour scene table (camera-frame centre x, y, z in metres,
#: log height, log longest side), means over the clearly visible objects of the entry.
TABLE_PROPS = ("x", "y", "z", "log_height", "log_longest")


def scene_table(ctx: Any) -> dict[str, np.ndarray]:
    """Per-image truth of a view (``ctx``: its ``SceneContext``): ``counts`` (10,) clearly visible
    objects per category (the counting questions' definition), ``table_cat`` (10, 5) and
    ``table_col`` (8, 5) mean :data:`TABLE_PROPS` of the clearly visible objects of each category /
    colour, with presence masks ``table_cat_mask`` (10,) and ``table_col_mask`` (8,)."""
    cats, colors = _categories(), _colors()
    counts = np.zeros(len(cats), dtype=np.float32)
    tc = np.zeros((len(cats), len(TABLE_PROPS)), dtype=np.float32)
    tl = np.zeros((len(colors), len(TABLE_PROPS)), dtype=np.float32)
    nc = np.zeros(len(cats), dtype=np.float32)
    nl = np.zeros(len(colors), dtype=np.float32)
    cam = ctx.camera
    down = np.asarray(cam.down, dtype=np.float64)
    for i, obj in enumerate(ctx.scene.objects):
        if not ctx.clear[i]:
            continue
        rel = ctx.centers[i] - ctx.cam_pos
        props = np.array([ctx.x_cam[i], float(rel @ down), ctx.depth[i], math.log(obj.size[2]), math.log(max(obj.size))])
        c, k = cats.index(obj.category), colors.index(obj.color)
        counts[c] += 1
        tc[c] += props
        nc[c] += 1
        tl[k] += props
        nl[k] += 1
    tc /= np.maximum(nc, 1)[:, None]
    tl /= np.maximum(nl, 1)[:, None]
    return {"counts": counts, "table_cat": tc, "table_cat_mask": (nc > 0).astype(np.float32),
            "table_col": tl, "table_col_mask": (nl > 0).astype(np.float32)}


#: Per-object truth (also the ``obj`` patch targets): centre image position (u / W, v / H), camera
#: coordinates of the centre (x / z, log z, y in metres), log height, log longest side, log volume.
OBJECT_PROPS = ("u", "v", "x_over_z", "log_z", "y", "log_height", "log_longest", "log_volume")


def object_props(scene: Any, camera: Any) -> np.ndarray:
    """(n_objects, 8) :data:`OBJECT_PROPS` of every object of ``scene`` seen by ``camera``."""
    n = len(scene.objects)
    if not n:
        return np.zeros((0, 8), dtype=np.float32)
    centers = np.array([o.center for o in scene.objects], dtype=np.float64)
    pc = camera.world_to_camera(centers)
    z = np.maximum(pc[:, 2], 1e-3)
    u = camera.fx * pc[:, 0] / z + camera.cx
    v = camera.fy * pc[:, 1] / z + camera.cy
    return np.stack([
        np.clip(u / camera.width, -1, 2), np.clip(v / camera.height, -1, 2), np.clip(pc[:, 0] / z, -3, 3), np.log(z),
        pc[:, 1], np.log([o.size[2] for o in scene.objects]), np.log([max(o.size) for o in scene.objects]),
        np.log([o.volume for o in scene.objects]),
    ], axis=1).astype(np.float32)  # fmt: skip


def mention_spans(text: str, view: SceneView) -> list[tuple[int, int, str, np.ndarray, np.ndarray]]:
    """Where ``text`` names something of ``view``: ``(start, end, kind, target, tokens)`` character
    spans of every object name (kind ``object``, target its 8 :data:`OBJECT_PROPS`) and of every
    plural category word of a counted category (kind ``count``, target its count); ``tokens`` is
    where it shows (``object_tokens`` / ``count_tokens``)."""
    import re

    from spatialrl.world.questions import plural

    out = []
    for name, props in view.objects.items():
        for m in re.finditer(r"\b" + re.escape(name) + r"\b", text):
            out.append((m.start(), m.end(), "object", props, view.object_tokens[name]))
    for category, n in view.counts.items():
        for m in re.finditer(r"\b" + re.escape(plural(category)) + r"\b", text):
            out.append((m.start(), m.end(), "count", np.array([n], dtype=np.float32), view.count_tokens[category]))
    return out


def token_shares(instance: np.ndarray, indices: list[int], merged: int = PATCH * MERGE) -> np.ndarray:
    """Share of the visible pixels of objects ``indices`` under each merged token (raster order)."""
    h, w = instance.shape
    gh, gw = h // merged, w // merged
    hit = np.isin(instance, indices).astype(np.float32)
    per = hit.reshape(gh, merged, gw, merged).sum(axis=(1, 3)).reshape(-1)
    total = per.sum()
    return per / total if total > 0 else per


def dense_targets(scene: Any, result: Any) -> dict[str, np.ndarray]:
    """The per-patch truth of one render (see the module docstring), in patch order."""
    from spatialrl.world.render import FLOOR

    inst = result.instance.astype(np.int64)
    h, w = inst.shape
    gh, gw = h // PATCH, w // PATCH
    cats = _categories()
    colors = _colors()
    n = len(scene.objects)
    obj_cls = np.array([2 + cats.index(o.category) for o in scene.objects], dtype=np.int64)
    obj_col = np.array([1 + colors.index(o.color) for o in scene.objects], dtype=np.int64)
    pix_cls = np.where(inst >= 0, obj_cls[np.clip(inst, 0, None)] if n else 0, np.where(inst == FLOOR, 0, 1))
    pix_col = np.where(inst >= 0, obj_col[np.clip(inst, 0, None)] if n else 0, 0)
    cls = _pool(np.eye(len(CLASS_NAMES), dtype=np.float32)[pix_cls], gh, gw)
    col = _pool(np.eye(len(COLOR_NAMES), dtype=np.float32)[pix_col], gh, gw)
    depth = _pool(np.log(np.maximum(result.depth, 1e-3)).astype(np.float32), gh, gw)

    # Object covering most of each patch.
    obj = np.zeros((gh * gw, 8), dtype=np.float32)
    mask = np.zeros(gh * gw, dtype=np.float32)
    if n:
        onehot = np.zeros((h, w, n + 1), dtype=np.float32)
        idx = np.where(inst >= 0, inst, n)
        np.put_along_axis(onehot, idx[..., None], 1.0, axis=2)
        frac = _pool(onehot, gh, gw)[:, :n]  # (P, n)
        best = frac.argmax(axis=1)
        mask = (frac.sum(axis=1) >= OBJECT_MIN_FRACTION).astype(np.float32)
        obj = object_props(scene, result.camera)[best] * mask[:, None]
    rows, cols = np.divmod(np.arange(gh * gw), gw)
    pos = np.stack([(cols + 0.5) / gw, (rows + 0.5) / gh], axis=1).astype(np.float32)
    order = patch_order(gh, gw)
    visible = sum(1 for k in range(n) if result.visible_pixels[k] > 0)
    scene_vec = np.array([
        math.log(scene.room.width * scene.room.depth), scene.camera.position[2], math.log1p(visible),
    ], dtype=np.float32)  # fmt: skip
    return {
        "cls": cls[order], "col": col[order], "depth": depth[order], "obj": obj[order],
        "obj_mask": mask[order], "pos": pos[order], "scene": scene_vec,
    }  # fmt: skip


# --------------------------------------------------------------------------------------
# Grounding texts
# --------------------------------------------------------------------------------------

_LR = ("List the objects you can see from left to right.",
       "Name the objects in the image in order from left to right.")
_NF = ("List the objects you can see from the nearest to the farthest from the camera.",
       "Name the objects in the image in order of distance from the camera, nearest first.")
_WHERE = ("Where is the center of the {a} in this {w}x{h} image? Answer with its pixel coordinates (x, y).",
          "Give the pixel coordinates (x, y) of the center of the {a} in this {w}x{h} image.")
_COLORS = ("Which colors do the objects in the image have? List them, most visible first.",
           "Name the colors of the objects you can see, the most visible first.")
_KINDS = ("What kinds of objects are in the image? List them, most visible first.",
          "Name the kinds of objects you can see, the most visible first.")
_LARGEST = ("Which object takes up the most space in the image?",
            "Which object covers the largest part of the image?")
_COUNT = ("How many objects can you see in the image? Answer with a number.",
          "Count all the objects in the image. Answer with a number.")


_LEFT_OR_RIGHT = "From the camera's viewpoint, is the {a} to the left or to the right of the {b}? Answer left or right."
_FRONT_OR_BEHIND = ("From the camera's viewpoint, is the {a} in front of or behind the {b}? "
                    "Answer in front of or behind.")

#: The kinds of grounding texts :func:`grounding_texts` writes (recipe field ``ground_weights`` weights
#: them and the opt-in kinds).
GROUNDING_KINDS = ("colors", "kinds", "largest", "left_to_right", "near_to_far", "center", "count_all")
#: Kinds written only when a recipe asks for them (recipe field ``ground_extra``), see
#: :func:`extra_grounding_texts`.
EXTRA_GROUNDING_KINDS = ("left_or_right", "front_or_behind", "count_each")
#: At most this many object pairs per view for each direction-word kind (each asked in both orders).
DIRECTION_PAIRS = 3


def grounding_texts(ctx: Any, rng: np.random.Generator, visible_pixels: Any = None) -> list[tuple[str, str, str]]:
    """``(kind, question, answer)`` grounding tasks of one view (``ctx``: a
    :class:`spatialrl.world.questions.SceneContext` of the rendered view; ``visible_pixels``: the
    renderer's per-object pixel counts, for the tasks that rank objects by how much they show)."""
    askable = ctx.askable_indices()
    out: list[tuple[str, str, str]] = []
    if visible_pixels is not None:
        shown = [i for i in range(ctx.n) if visible_pixels[i] >= MIN_LIST_PIXELS]
        by_area = sorted(shown, key=lambda i: (-visible_pixels[i], i))
        if by_area:
            objs = ctx.scene.objects
            colors = list(dict.fromkeys(objs[i].color for i in by_area))
            kinds = list(dict.fromkeys(objs[i].category for i in by_area))
            out.append(("colors", _COLORS[int(rng.integers(2))], ", ".join(colors)))
            out.append(("kinds", _KINDS[int(rng.integers(2))], ", ".join(kinds)))
            top = by_area[0]
            if ctx.unique[top] and (len(by_area) == 1 or visible_pixels[by_area[1]] < 0.8 * visible_pixels[top]):
                out.append(("largest", _LARGEST[int(rng.integers(2))], f"the {ctx.names[top]}"))
    if len(askable) >= 2:
        by_u = sorted(askable, key=lambda i: ctx.u[i])
        by_z = sorted(askable, key=lambda i: ctx.depth[i])
        out.append(("left_to_right", _LR[int(rng.integers(2))], ", ".join(ctx.names[i] for i in by_u)))
        out.append(("near_to_far", _NF[int(rng.integers(2))], ", ".join(ctx.names[i] for i in by_z)))
    cam = ctx.camera
    for i in askable:
        if ctx.depth[i] <= 0.1:
            continue
        v = cam.fy * float((ctx.centers[i] - ctx.cam_pos) @ np.asarray(cam.down)) / ctx.depth[i] + cam.cy
        u, v = int(round(float(ctx.u[i]))), int(round(v))
        if 0 <= u < ctx.width and 0 <= v < ctx.height:
            q = _WHERE[int(rng.integers(2))].format(a=ctx.names[i], w=ctx.width, h=ctx.height)
            out.append(("center", q, f"({u}, {v})"))
    visible = sum(1 for c in ctx.clear if c)
    out.append(("count_all", _COUNT[int(rng.integers(2))], str(visible)))
    return out


def extra_grounding_texts(ctx: Any, rng: np.random.Generator, kinds: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """``(kind, question, answer)`` of the opt-in grounding kinds ``kinds`` (some of
    :data:`EXTRA_GROUNDING_KINDS`) for one view:

    - ``left_or_right`` / ``front_or_behind``: the direction *word* of one named object relative
      to another ("left" / "right", "in front of" / "behind"), by the world's own rules
      (``spatialrl.world.questions``), for up to :data:`DIRECTION_PAIRS` pairs, each asked in both
      orders so the word never follows from the names;
    - ``count_each``: "How many Xs ...?" for every category shown two or more times, plus as many
      categories shown once, so "1" (three quarters of the QA counts) is not the best guess.
    """
    from spatialrl.world.questions import _NUMERIC_TEXT, _front, _lateral, plural

    out: list[tuple[str, str, str]] = []
    askable = list(ctx.askable_indices())
    pairs = [(a, b) for i, a in enumerate(askable) for b in askable[i + 1:]]
    rng.shuffle(pairs)
    for kind, rule, template, words in (
        ("left_or_right", _lateral, _LEFT_OR_RIGHT, {"left": "left", "right": "right"}),
        ("front_or_behind", _front, _FRONT_OR_BEHIND, {"front": "in front of", "behind": "behind"}),
    ):
        if kind not in kinds:
            continue
        used = 0
        for a, b in pairs:
            if used == DIRECTION_PAIRS:
                break
            side = rule(ctx, a, b)
            if side is None:
                continue
            used += 1
            other = {"left": "right", "right": "left", "front": "behind", "behind": "front"}[side]
            out.append((kind, template.format(a=ctx.names[a], b=ctx.names[b]), words[side]))
            out.append((kind, template.format(a=ctx.names[b], b=ctx.names[a]), words[other]))
    if "count_each" in kinds:
        counts = {c: ctx.count(c) for c in ctx.countable_categories()}
        many = [c for c, n in counts.items() if n >= 2]
        once = [c for c, n in counts.items() if n == 1]
        rng.shuffle(once)
        for c in many + once[: len(many)]:
            out.append(("count_each", _NUMERIC_TEXT["object_count"][0].format(p=plural(c)), str(counts[c])))
    return out


# --------------------------------------------------------------------------------------
# One scene -> two views
# --------------------------------------------------------------------------------------


def make_views(index: int, world_seed: int, image_size: int = 112,
               ground_extra: tuple[str, ...] = ()) -> list[SceneView]:
    """The original and mirrored :class:`SceneView` of scene ``index`` of world seed
    ``world_seed``: the same scene, questions and answers ``spatialrl data build --seed
    world_seed`` writes for that index, plus the dense truth and grounding texts (and the opt-in
    kinds ``ground_extra``, drawn with their own random stream so the default texts stay the
    same)."""
    from spatialrl.data.build import BuildConfig, scene_id_for
    from spatialrl.world import questions as Q
    from spatialrl.world.mirror import mirror_scene
    from spatialrl.world.render import render
    from spatialrl.world.scene import Scene, sample_scene

    cfg = BuildConfig(scenes=1, seed=world_seed, image_size=image_size)
    scene_ss, question_ss = np.random.SeedSequence(cfg.seed, spawn_key=(index,)).spawn(2)
    scene = sample_scene(np.random.default_rng(scene_ss), scene_id_for(cfg.seed, index), tuple(cfg.objects))
    scene = Scene.from_json(scene.to_json())
    mirror = Scene.from_json(mirror_scene(scene).to_json())
    views = []
    for name, s in (("original", scene), ("mirror", mirror)):
        r = render(s, image_size)
        ctx = Q.SceneContext(s, Q.views_from_render(r), r.camera)
        views.append((name, s, r, ctx))
    pairs = Q.generate_pairs(views[0][3], views[1][3], np.random.default_rng(question_ss), cfg.types,
                             balance_offset=index)
    text_rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(index, 1)))
    extra_rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(index, 2)))
    out = []
    for k, (name, s, r, ctx) in enumerate(views):
        qa = [(p[k].question_type, p[k].question, p[k].answer) for p in pairs]
        dense = {**dense_targets(s, r), **scene_table(ctx)}
        props = object_props(s, r.camera)
        objects = {ctx.names[i]: props[i] for i in ctx.askable_indices()}
        counts = {c: ctx.count(c) for c in ctx.countable_categories()}
        object_tokens = {ctx.names[i]: token_shares(r.instance, [i]) for i in ctx.askable_indices()}
        count_tokens = {c: token_shares(r.instance, [i for i in range(ctx.n) if ctx.categories[i] == c and ctx.clear[i]])
                        for c in counts}
        texts = grounding_texts(ctx, text_rng, r.visible_pixels)
        if ground_extra:
            texts += extra_grounding_texts(ctx, extra_rng, tuple(ground_extra))
        out.append(SceneView(index, name, r.image, dense, texts, qa,
                             objects, counts, object_tokens, count_tokens))
    return out
