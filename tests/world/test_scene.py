"""Tests for spatialrl.world.scene: sampling guarantees, geometry conventions, JSON."""

import json
import math

import numpy as np
import pytest

from spatialrl.world.scene import (
    CATEGORIES,
    COLORS,
    MIN_GAP,
    Camera,
    Object3D,
    Room,
    Scene,
    sample_scene,
)

N_SCENES = 200


@pytest.fixture(scope="module")
def scenes():
    return [sample_scene(seed, f"scene-{seed}") for seed in range(N_SCENES)]


def _sat_gap(a: np.ndarray, b: np.ndarray) -> float:
    """Largest separation of two convex polygons along any edge normal of either (SAT).
    Positive means disjoint (by at least that much along that axis)."""
    best = -np.inf
    for poly in (a, b):
        for k in range(len(poly)):
            e = poly[(k + 1) % len(poly)] - poly[k]
            n = np.array([-e[1], e[0]]) / np.hypot(*e)
            pa, pb = a @ n, b @ n
            best = max(best, pb.min() - pa.max(), pa.min() - pb.max())
    return best


def test_vocabulary():
    assert len(CATEGORIES) >= 10 and len(COLORS) >= 8
    chair, sofa = CATEGORIES["chair"], CATEGORIES["sofa"]
    assert chair.size_min == (0.4, 0.4, 0.8) and chair.size_max == (0.6, 0.6, 1.1)
    assert sofa.size_min[0] == 1.6 and sofa.size_max[0] == 2.4
    for spec in CATEGORIES.values():
        assert all(0 < lo <= hi for lo, hi in zip(spec.size_min, spec.size_max))
    rgb = np.array(list(COLORS.values()), dtype=float)
    d = np.linalg.norm(rgb[:, None] - rgb[None], axis=-1)
    assert d[~np.eye(len(rgb), dtype=bool)].min() > 90  # well separated


def test_seeded_determinism():
    a, b = sample_scene(123, "x"), sample_scene(123, "x")
    assert a == b and a.to_json() == b.to_json()
    assert sample_scene(np.random.default_rng(5), "x") == sample_scene(np.random.default_rng(5), "x")
    assert sample_scene(124, "x") != a


def test_json_round_trip(scenes):
    for s in scenes[:50]:
        back = Scene.from_json(s.to_json())
        assert back == s
        assert back.to_json() == s.to_json()
        assert isinstance(back.objects[0].center, tuple) and isinstance(back.camera.position, tuple)
        assert type(back.objects[0].yaw) is float and type(back.camera.width) is int
        assert Scene.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    # numpy scalars and ints are normalised to Python floats, so equality survives JSON
    o = Object3D("box", "red", np.array([1, 2, 0.25]), [np.float32(0.5), 0.5, 0.5], np.float64(0.1))
    assert type(o.center[0]) is float and isinstance(o.size, tuple)
    assert Object3D.from_dict(json.loads(json.dumps(o.to_dict()))) == o


def test_no_interpenetration(scenes):
    n_pairs = 0
    for s in scenes:
        fps = [o.footprint_polygon() for o in s.objects]
        for i in range(len(fps)):
            for j in range(i + 1, len(fps)):
                assert _sat_gap(fps[i], fps[j]) >= MIN_GAP - 1e-9, (s.scene_id, i, j)
                n_pairs += 1
    assert n_pairs > 1000


def test_objects_inside_room_and_sizes(scenes):
    counts = []
    for s in scenes:
        counts.append(len(s.objects))
        names = [o.name for o in s.objects]
        assert len(set(names)) == len(names)
        for o in s.objects:
            c = o.corners()
            assert c[:, 0].min() >= 0 and c[:, 0].max() <= s.room.width
            assert c[:, 1].min() >= 0 and c[:, 1].max() <= s.room.depth
            assert c[:, 2].min() == pytest.approx(0.0, abs=1e-12)
            assert c[:, 2].max() < s.room.height
            assert o.center[2] == o.size[2] / 2
            assert CATEGORIES[o.category].contains_size(o.size), (o.category, o.size)
            if o.category == "ball":
                assert o.size[0] == o.size[1] == o.size[2]
        assert 3 <= s.room.width <= 8 and 3 <= s.room.depth <= 8 and 2.4 <= s.room.height <= 3.0
    assert min(counts) >= 3 and max(counts) <= 8 and len(set(counts)) == 6
    s = sample_scene(0, "few", n_objects=(1, 2))
    assert 1 <= len(s.objects) <= 2


def test_camera_placement(scenes):
    for s in scenes:
        cam = s.camera
        x, y, z = cam.position
        assert 0 < x < s.room.width and 0 < y < s.room.depth and 1.2 <= z <= 1.7
        assert math.radians(59.9) <= cam.hfov <= math.radians(90.1)
        assert -0.41 <= cam.pitch <= -0.14
        assert cam.cx == cam.width / 2 and cam.cy == cam.height / 2
        # looks into the room: the room centre is in front of the camera
        centre = np.array([[s.room.width / 2, s.room.depth / 2, z]])
        assert cam.world_to_camera(centre)[0, 2] > 0


def test_object_geometry():
    o = Object3D("table", "blue", (2.0, 3.0, 0.4), (1.2, 0.6, 0.8), math.pi / 2)
    c = o.corners()
    assert c.shape == (8, 3)
    # yaw 90 degrees: local x (length 1.2) now runs along world y
    np.testing.assert_allclose(c[:, 0].max() - c[:, 0].min(), 0.6, atol=1e-12)
    np.testing.assert_allclose(c[:, 1].max() - c[:, 1].min(), 1.2, atol=1e-12)
    np.testing.assert_allclose(c[:4, 2], 0.0, atol=1e-12)
    np.testing.assert_allclose(c[4:, 2], 0.8, atol=1e-12)
    fp = o.footprint_polygon()
    area2 = np.sum(fp[:, 0] * np.roll(fp[:, 1], -1) - np.roll(fp[:, 0], -1) * fp[:, 1])
    assert area2 / 2 == pytest.approx(0.72)  # counter-clockwise, area = length x depth
    assert o.name == "blue table" and o.height == 0.8 and o.longest_dimension == 1.2
    assert Room(4.0, 5.0, 2.5).floor_area == 20.0
    with pytest.raises(ValueError):
        Object3D("spaceship", "red", (0, 0, 0), (1, 1, 1), 0)
    with pytest.raises(ValueError):
        Object3D("box", "red", (0, 0, 0), (1, 0, 1), 0)


def test_camera_conventions():
    cam = Camera.from_fov((1.0, 1.0, 1.5), yaw=0.3, pitch=-0.2, hfov=math.radians(90), width=448)
    R = cam.rotation()
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)  # right-handed camera frame
    np.testing.assert_allclose(np.cross(cam.forward, cam.right), cam.down, atol=1e-12)
    assert cam.right[2] == 0 and cam.down[2] < 0
    p = np.asarray(cam.position)
    np.testing.assert_allclose(cam.world_to_camera(p + 2 * cam.forward), [[0, 0, 2]], atol=1e-12)
    np.testing.assert_allclose(cam.project(p + 2 * cam.forward), [[224, 224]], atol=1e-9)
    uv = cam.project(np.stack([p + cam.forward + 0.5 * cam.right, p + cam.forward + 0.5 * cam.up]))
    assert uv[0, 0] > 224 and uv[0, 1] == pytest.approx(224)  # right in the world -> right in the image
    assert uv[1, 1] < 224  # up -> up
    # 90 degree FOV: a point at 45 degrees to the right lands on the right image edge
    np.testing.assert_allclose(cam.project(p + cam.forward + cam.right), [[448, 224]], atol=1e-9)
    assert np.isnan(cam.project(p - cam.forward)).all()
    np.testing.assert_allclose(cam.camera_to_world(cam.world_to_camera(p + [1, 2, 3])), [p + [1, 2, 3]])
    small = cam.with_image_size(112)
    assert (small.width, small.height, small.cx, small.cy) == (112, 112, 56.0, 56.0)
    assert small.fx == pytest.approx(cam.fx / 4)
    q = p + 3 * cam.forward + 0.7 * cam.right - 0.2 * cam.up
    np.testing.assert_allclose(small.project(q) * 4, cam.project(q), atol=1e-9)
    assert cam.hfov == pytest.approx(math.radians(90))
