"""Question templates: answers recomputed independently, mirror pairs, visibility, balance.

The geometry here is written again from the definitions in the docstring of
``spatialrl.world.questions`` (and reads only ``scene_json`` + ``meta``), so a bug in the
generator cannot hide behind the same bug in the check.
"""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest

from spatialrl.data.build import BuildConfig, scene_rows
from spatialrl.world import questions as Q
from spatialrl.world.mirror import flip_box, mirror_scene
from spatialrl.world.render import render
from spatialrl.world.scene import Scene, sample_scene

N_SCENES = 64
CFG = BuildConfig(scenes=N_SCENES, seed=7, image_size=112, test_fraction=0.0)


@pytest.fixture(scope="module")
def rows():
    out = []
    for i in range(N_SCENES):
        out.extend(scene_rows(i, CFG))
    return out


# ---------------------------------------------------------------- independent geometry


class G:
    """Scene geometry from the JSON dict, written from the documented definitions."""

    def __init__(self, scene_json: str, image_size: int = 112):
        d = json.loads(scene_json)
        self.d = d
        cam = d["camera"]
        self.pos = np.array(cam["position"], dtype=float)
        y, p = cam["yaw"], cam["pitch"]
        self.forward = np.array([math.cos(p) * math.cos(y), math.cos(p) * math.sin(y), math.sin(p)])
        self.right = np.array([math.sin(y), -math.cos(y), 0.0])  # horizontal, no roll
        self.fx = cam["fx"] * image_size / cam["width"]
        self.cx = image_size / 2
        self.objs = d["objects"]
        self.size = image_size

    def c(self, i):
        return np.array(self.objs[i]["center"], dtype=float)

    def s(self, i):
        return np.array(self.objs[i]["size"], dtype=float)

    def name(self, i):
        o = self.objs[i]
        return f"{o['color']} {o['category']}"

    def dist(self, a, b):
        return float(np.sqrt(((self.c(a) - self.c(b)) ** 2).sum()))

    def hdist(self, a, b):
        d = self.c(a) - self.c(b)
        return math.sqrt(d[0] ** 2 + d[1] ** 2)

    def vdist(self, a, b):
        return abs(self.c(a)[2] - self.c(b)[2])

    def depth(self, i):
        return float(np.dot(self.c(i) - self.pos, self.forward))

    def euclid(self, i):
        return float(np.linalg.norm(self.c(i) - self.pos))

    def xcam(self, i):
        return float(np.dot(self.c(i) - self.pos, self.right))

    def u(self, i):
        return self.fx * self.xcam(i) / self.depth(i) + self.cx

    def volume(self, i):
        s = self.s(i)
        if self.objs[i]["category"] == "ball":
            return math.pi / 6 * s[0] ** 3
        return float(s[0] * s[1] * s[2])

    def width_seen(self, i):
        o = self.objs[i]
        s = self.s(i)
        if o["category"] == "ball":
            return float(s[0])
        c, sn = math.cos(o["yaw"]), math.sin(o["yaw"])
        ax, ay = np.array([c, sn, 0.0]), np.array([-sn, c, 0.0])
        # extent of a box along a direction: sum of |axis . dir| * full size
        return float(abs(ax @ self.right) * s[0] + abs(ay @ self.right) * s[1])

    def attr(self, name, i):
        return {"bigger": self.volume, "taller": lambda k: float(self.s(k)[2]), "wider": self.width_seen}[name](i)


def _value(g: G, qt: str, meta: dict) -> float:
    o = meta["objects"]
    if qt == "abs_distance" or meta["template"] == "distance":
        return g.dist(*o)
    if qt == "horizontal_distance" or meta["template"] == "horizontal_distance":
        return g.hdist(*o)
    if qt == "vertical_distance":
        return g.vdist(*o)
    if qt == "object_size" or meta["template"] == "size":
        return float(g.s(o[0]).max())
    if qt == "object_height" or meta["template"] == "height":
        return float(g.s(o[0])[2])
    if qt == "room_size":
        return g.d["room"]["width"] * g.d["room"]["depth"]
    if qt == "camera_depth":
        return g.depth(o[0])
    raise AssertionError((qt, meta))


def _count(scene_json: str, category: str) -> int:
    """Clearly visible objects of the category (vf >= 0.4, box >= 3 px); the category must
    have no marginally visible object."""
    r = render(Scene.from_json(scene_json), 112)
    n = 0
    for i, o in enumerate(json.loads(scene_json)["objects"]):
        if o["category"] != category:
            continue
        box = r.boxes2d[i]
        clear = box is not None and r.visible_fraction[i] >= 0.4 and box[2] - box[0] >= 3 and box[3] - box[1] >= 3
        marginal = not clear and (box is not None or r.visible_fraction[i] > 0)
        assert not marginal, f"counted category {category} has a marginal object"
        n += clear
    return n


def test_recompute_every_numeric_answer_independently(rows):
    checked = Counter()
    for r in rows:
        if r["answer_value"] is None:
            continue
        meta = json.loads(r["meta"])
        g = G(r["scene_json"])
        if r["dimension"] == "count":
            expect = _count(r["scene_json"], meta["category"])
            assert r["answer_value"] == expect, r["id"]
            if r["answer_type"] == "numerical":
                assert r["answer"] == str(expect)
            else:
                assert f" {expect} " in r["answer"]
        else:
            expect = _value(g, r["question_type"], meta)
            assert r["answer_value"] == pytest.approx(expect, rel=1e-9, abs=1e-9), r["id"]
            if r["answer_type"] == "numerical":
                assert abs(float(r["answer"]) - expect) <= 0.005 + 1e-9
        checked[r["question_type"]] += 1
    assert sum(checked.values()) >= 1000, checked
    for qt in ("object_count", "abs_distance", "object_size", "room_size", "camera_depth", "object_height",
               "vertical_distance", "horizontal_distance", "open_ended"):
        assert checked[qt] > 0, qt


def _letter(r, text):
    return "ABCD"[r["options"].index(text)]


def test_recompute_discrete_answers_and_margins(rows):
    checked = Counter()
    for r in rows:
        qt, meta = r["question_type"], json.loads(r["meta"])
        g = G(r["scene_json"])
        o = meta["objects"]
        if qt == "rel_direction":
            a, b = o
            dx, du = g.xcam(a) - g.xcam(b), g.u(a) - g.u(b)
            dz = g.depth(a) - g.depth(b)
            lat = "left" if dx < 0 else "right"
            front = "in front of" if dz < 0 else "behind"
            if meta["template"] in ("lateral", "quadrant"):
                assert abs(dx) >= 0.15 and abs(du) >= 0.05 * 112 and (dx > 0) == (du > 0)
            if meta["template"] in ("depth", "quadrant"):
                near, far = sorted([g.depth(a), g.depth(b)])
                assert far - near >= max(0.1 * near, 0.1)
            want = {"lateral": lat, "depth": front,
                    "quadrant": f"{lat} and {'closer to' if dz < 0 else 'farther from'} the camera"}[meta["template"]]
            assert r["answer"] == _letter(r, want)
        elif qt == "rel_direction_allocentric":
            a, b, c = o
            f = g.c(b)[:2] - g.c(a)[:2]
            v = g.c(c)[:2] - g.c(a)[:2]
            cross = f[0] * v[1] - f[1] * v[0]
            assert abs(cross) / (np.linalg.norm(f) * np.linalg.norm(v)) >= math.sin(math.radians(20)) - 1e-12
            assert r["answer"] == _letter(r, "left" if cross > 0 else "right")
        elif qt == "closer_to_camera":
            a, b = o
            near = a if g.depth(a) < g.depth(b) else b
            assert (g.euclid(a) < g.euclid(b)) == (near == a)
            assert r["answer"] == _letter(r, g.name(near))
        elif qt == "rel_distance":
            anchor, cands = o[0], o[1:]
            d = {c: g.dist(anchor, c) for c in cands}
            pick = (min if meta["template"] == "closest" else max)(cands, key=d.get)
            vals = sorted(d.values())
            first, second = (vals[0], vals[1]) if meta["template"] == "closest" else (vals[-2], vals[-1])
            assert second - first >= max(0.1 * first, 0.1) - 1e-12
            assert r["answer"] == _letter(r, g.name(pick))
        elif qt == "compare_yes_no":
            a, b = o
            va, vb = g.attr(meta["attribute"], a), g.attr(meta["attribute"], b)
            yes = va > vb if meta["template"] == "more" else va < vb
            assert r["answer"] == ("yes" if yes else "no")
        elif qt == "compare_choice":
            vals = {i: g.attr(meta["attribute"], i) for i in o}
            pick = (max if meta["template"] == "most" else min)(o, key=vals.get)
            assert r["answer"] == _letter(r, g.name(pick))
        else:
            continue
        checked[qt] += 1
    assert len(checked) == 6 and min(checked.values()) > 20, checked


def test_referenced_objects_are_visible_and_uniquely_named(rows):
    for r in rows[::7]:
        meta = json.loads(r["meta"])
        if not meta["objects"]:
            continue
        scene = Scene.from_json(r["scene_json"])
        res = render(scene, 112)
        names = [o.name for o in scene.objects]
        for i in meta["objects"]:
            assert res.visible_fraction[i] >= 0.4 and res.boxes2d[i] is not None
            assert names.count(names[i]) == 1
            assert names[i] in r["question"]


def test_mirror_pairs(rows):
    by_pair: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_pair.setdefault(r["pair_id"], {})[r["view"]] = r
    inverted = Counter()
    for pid, views in by_pair.items():
        o, m = views["original"], views["mirror"]
        assert o["question"] == m["question"] and o["options"] == m["options"] and o["meta"] == m["meta"]
        meta = json.loads(o["meta"])
        qt, t = o["question_type"], meta["template"]
        if o["answer_value"] is not None:
            assert m["answer_value"] == pytest.approx(o["answer_value"], rel=1e-9, abs=1e-9)
        if qt == "grounding_bbox":
            assert tuple(m["bbox"]) == flip_box(tuple(o["bbox"]), 112)
        elif (qt == "rel_direction" and t in ("lateral", "quadrant")) or qt == "rel_direction_allocentric":
            a, b = o["options"][o["answer_index"]], m["options"][m["answer_index"]]
            swapped = a.replace("left", "#").replace("right", "left").replace("#", "right")
            assert b == swapped, (a, b)
            inverted[qt] += 1
        elif qt == "open_ended" and t == "left_right":
            assert o["answer"].startswith("Yes") != m["answer"].startswith("Yes")
            inverted[qt] += 1
        else:
            assert o["answer"] == m["answer"], (qt, t)
    assert inverted["rel_direction_allocentric"] > 10 and inverted["rel_direction"] > 5


def test_balance_letters_and_yes_no():
    letters: dict[int, Counter] = {}
    yes_no = Counter()
    for i in range(150):
        scene = sample_scene(np.random.default_rng(10_000 + i), f"b{i}")
        res = render(scene, 64)
        ctx = Q.SceneContext(scene, Q.views_from_render(res), res.camera)
        rotation: dict[int, int] = {}
        for s in Q.generate(ctx, np.random.default_rng(i), balance_offset=i):
            if s.options:
                n = len(s.options)
                # exact rule: the k-th kept n-option question of scene i has letter (i + k) mod n
                k = rotation.get(n, 0)
                assert s.answer_index == (i + k) % n
                rotation[n] = k + 1
                letters.setdefault(n, Counter())[s.answer] += 1
            elif s.answer in ("yes", "no"):
                k = rotation.get(-1, 0)
                assert (s.answer == "yes") == ((i + k) % 2 == 0)
                rotation[-1] = k + 1
                yes_no[s.answer] += 1
    for n, c in letters.items():
        total = sum(c.values())
        assert set(c) == set("ABCD"[:n])
        for k in c.values():  # uniform up to sampling noise (3 sigma)
            assert abs(k - total / n) <= 3 * math.sqrt(total / n) + 1, (n, c)
    assert abs(yes_no["yes"] - yes_no["no"]) <= 3 * math.sqrt(sum(yes_no.values())) + 1, yes_no


def test_deterministic_and_type_filter():
    scene = sample_scene(np.random.default_rng(5), "d")
    res = render(scene, 64)
    ctx = Q.SceneContext(scene, Q.views_from_render(res), res.camera)
    a = Q.propose(ctx, np.random.default_rng(1))
    b = Q.propose(ctx, np.random.default_rng(1))
    assert a == b
    only = Q.generate(ctx, np.random.default_rng(1), types=["grounding_bbox", "object_count"])
    assert {s.question_type for s in only} <= {"grounding_bbox", "object_count"}
    with pytest.raises(ValueError, match="unknown question type"):
        Q.propose(ctx, np.random.default_rng(1), types=["nope"])


def test_question_text_has_no_view_dependent_reference():
    # Mirrored questions keep their text: objects are referred to by name only, so the only
    # directional words are the relation being asked about (options / predicates).
    scene = sample_scene(np.random.default_rng(3), "t")
    mirror = mirror_scene(scene)
    r0, r1 = render(scene, 64), render(mirror, 64)
    c0 = Q.SceneContext(scene, Q.views_from_render(r0), r0.camera)
    c1 = Q.SceneContext(mirror, Q.views_from_render(r1), r1.camera)
    for a, b in Q.generate_pairs(c0, c1, np.random.default_rng(0)):
        assert a.question == b.question


def test_marginal_category_is_not_counted():
    from spatialrl.world.scene import Camera, Object3D, Room

    cam = Camera.from_fov((2.0, 0.3, 1.5), math.pi / 2, -0.2, math.radians(70), 112)
    objs = [
        Object3D("chair", "red", (2.0, 3.0, 0.45), (0.5, 0.5, 0.9), 0.0),
        Object3D("chair", "blue", (2.6, 3.0, 0.45), (0.5, 0.5, 0.9), 0.0),
        Object3D("table", "green", (2.0, 2.0, 0.375), (1.2, 0.8, 0.75), 0.0),
    ]
    scene = Scene("m", Room(4.0, 5.0, 2.6), objs, cam)
    views = [Q.ObjectView(1.0, (10, 10, 30, 30)), Q.ObjectView(0.1, (31, 10, 33, 30)), Q.ObjectView(1.0, (40, 40, 80, 80))]
    ctx = Q.SceneContext(scene, views, cam.with_image_size(112))
    assert ctx.countable_categories() == ["table"]
    assert ctx.askable == [True, False, True]
