"""Tests for spatialrl.world.render: exact depth, occlusion, instance maps, 2D boxes."""

import math

import numpy as np
import pytest

from spatialrl.world.render import FLOOR, WALL, render
from spatialrl.world.scene import Camera, Object3D, Room, Scene, sample_scene


def _hand_scene(pitch=0.0, objects=None):
    """6 x 6 x 3 m room; camera at (3, 0.5, 1.5) looking along +y, 90 degree FOV."""
    cam = Camera.from_fov((3.0, 0.5, 1.5), yaw=math.pi / 2, pitch=pitch, hfov=math.radians(90), width=448)
    if objects is None:
        objects = [Object3D("box", "red", (3.0, 3.0, 0.5), (1.0, 1.0, 1.0), 0.0)]
    return Scene("hand", Room(6.0, 6.0, 3.0), objects, cam)


def _ray_world(cam: Camera, col: int, row: int) -> np.ndarray:
    """Unnormalised world ray through a pixel centre, with unit camera-z component,
    written out from the documented angles (independent of Camera.rotation)."""
    x = (col + 0.5 - cam.cx) / cam.fx
    y = (row + 0.5 - cam.cy) / cam.fy
    cy_, sy_, cp, sp = math.cos(cam.yaw), math.sin(cam.yaw), math.cos(cam.pitch), math.sin(cam.pitch)
    forward = np.array([cp * cy_, cp * sy_, sp])
    right = np.array([sy_, -cy_, 0.0])
    up = np.array([-sp * cy_, -sp * sy_, cp])
    return forward + x * right - y * up


@pytest.mark.parametrize("pitch", [0.0, -0.3])
def test_depth_is_analytic_for_floor_and_object_face(pitch):
    scene = _hand_scene(pitch)
    r = render(scene, 112)
    cam = r.camera
    p = np.asarray(cam.position)
    assert np.isfinite(r.depth).all() and (r.depth > 0).all()

    # floor pixel near the bottom-left corner: ray-plane z = 0
    col, row = 10, 108
    d = _ray_world(cam, col, row)
    t = -p[2] / d[2]
    hit = p + t * d
    assert 0 < hit[0] < 6 and 0 < hit[1] < 2.5  # in front of the box, on the floor
    assert r.instance[row, col] == FLOOR
    assert r.depth[row, col] == pytest.approx(t, rel=1e-6)

    # a pixel on the box's front face y = 2.5 (centre column, a bit below the horizon)
    col = 56
    row = int(cam.project(np.array([[3.0, 2.5, 0.5]]))[0, 1])
    d = _ray_world(cam, col, row)
    t = (2.5 - p[1]) / d[1]
    hit = p + t * d
    assert abs(hit[0] - 3.0) < 0.5 and 0 < hit[2] < 1.0
    assert r.instance[row, col] == 0
    assert r.depth[row, col] == pytest.approx(t, rel=1e-6)
    if pitch == 0.0:
        assert r.depth[row, col] == pytest.approx(2.0, rel=1e-6)  # z-depth, not ray length

    # top row centre: ceiling or far wall, both "wall"
    assert r.instance[0, 56] == WALL


def test_sphere_depth():
    ball = Object3D("ball", "blue", (3.0, 3.5, 0.25), (0.5, 0.5, 0.5), 0.0)
    scene = _hand_scene(0.0, [ball])
    r = render(scene, 448)
    u, v = r.camera.project(np.array([ball.center]))[0]
    col, row = int(u), int(v)
    d = _ray_world(r.camera, col, row)
    p = np.asarray(r.camera.position)
    oc = p - np.array(ball.center)
    a, b, c = d @ d, 2 * d @ oc, oc @ oc - 0.25**2
    t = (-b - math.sqrt(b * b - 4 * a * c)) / (2 * a)
    assert r.instance[row, col] == 0
    assert r.depth[row, col] == pytest.approx(t, rel=1e-6)
    assert r.visible_fraction[0] == 1.0


def test_occlusion():
    front = Object3D("box", "red", (3.0, 3.0, 0.5), (1.0, 1.0, 1.0), 0.0)
    hidden = Object3D("box", "green", (3.0, 4.5, 0.25), (0.5, 0.5, 0.5), 0.3)
    beside = Object3D("box", "blue", (3.9, 4.5, 0.25), (0.5, 0.5, 0.5), 0.0)  # half hidden
    r = render(_hand_scene(0.0, [front, hidden, beside]), 112)
    assert r.visible_fraction[0] == 1.0 and r.boxes2d[0] is not None
    assert r.unoccluded_pixels[1] > 0  # it would be seen without the red box ...
    assert r.visible_fraction[1] == 0.0 and r.boxes2d[1] is None and r.visible_pixels[1] == 0
    assert not (r.instance == 1).any()
    assert 0.05 < r.visible_fraction[2] < 0.95


def test_out_of_view_counts_as_not_visible():
    left = Object3D("box", "red", (1.2, 2.0, 0.5), (1.0, 1.0, 1.0), 0.0)  # straddles the left edge
    r = render(_hand_scene(0.0, [left]), 112)
    assert r.boxes2d[0][0] == 0.0
    assert 0 < r.visible_fraction[0] < 1


def test_deterministic_bytes():
    s = sample_scene(11, "d")
    a, b = render(s, 112), render(sample_scene(11, "d"), 112)
    for f in ("image", "depth", "instance"):
        assert getattr(a, f).tobytes() == getattr(b, f).tobytes()
    assert a.boxes2d == b.boxes2d and a.visible_fraction == b.visible_fraction


@pytest.fixture(scope="module")
def renders():
    out = []
    for seed in range(40):
        s = sample_scene(seed, f"r{seed}")
        out.append((s, render(s, 112)))
    return out


def test_outputs_well_formed(renders):
    for s, r in renders:
        assert r.image.shape == (112, 112, 3) and r.image.dtype == np.uint8
        assert r.depth.shape == (112, 112) and r.depth.dtype == np.float32
        assert r.instance.shape == (112, 112) and r.instance.dtype == np.int16
        assert np.isfinite(r.depth).all() and (r.depth > 0).all()
        assert r.instance.min() >= WALL and r.instance.max() < len(s.objects)
        assert (r.instance == FLOOR).any() and (r.instance == WALL).any()
        n = len(s.objects)
        assert len(r.boxes2d) == len(r.visible_fraction) == len(r.projected_boxes2d) == n
        for i in range(n):
            assert 0.0 <= r.visible_fraction[i] <= 1.0
            assert r.visible_pixels[i] == int((r.instance == i).sum())
            assert (r.boxes2d[i] is None) == (r.visible_pixels[i] == 0)
    # background grey, objects mostly visible
    bg = np.concatenate([r.image[r.instance < 0] for _, r in renders])
    assert 90 < bg.mean() < 150
    vf = np.array([v for _, r in renders for v in r.visible_fraction])
    assert (vf > 0).mean() > 0.8


def test_instance_pixels_inside_boxes(renders):
    for s, r in renders:
        for i, box in enumerate(r.boxes2d):
            if box is None:
                continue
            rows, cols = np.nonzero(r.instance == i)
            x1, y1, x2, y2 = box
            assert cols.min() == x1 and cols.max() + 1 == x2
            assert rows.min() == y1 and rows.max() + 1 == y2


def test_box_matches_corner_projection(renders):
    """A fully visible box: its pixel box equals the bounding box of its projected corners
    to within one pixel (edges fall on pixel centres, so the gap is < 1 px)."""
    n = 0
    for s, r in renders:
        for i, o in enumerate(s.objects):
            if r.visible_fraction[i] == 1.0 and o.shape == "box" and r.projected_boxes2d[i] is not None:
                np.testing.assert_allclose(r.boxes2d[i], r.projected_boxes2d[i], atol=1.0)
                u = r.camera.project(o.corners())
                assert r.projected_boxes2d[i] == pytest.approx((u[:, 0].min(), u[:, 1].min(), u[:, 0].max(), u[:, 1].max()))
                n += 1
    assert n >= 20


def test_448_consistent_with_112():
    """Same view at 4x resolution: fully visible objects' boxes scale by 4 (within 4 px at
    448, i.e. one 112-pixel); instance maps agree where the 448 map is constant on a 4x4 block."""
    n = 0
    for seed in range(8):
        s = sample_scene(seed, "hi")
        a, b = render(s, 112), render(s, 448)
        assert b.image.shape == (448, 448, 3)
        for i in range(len(s.objects)):
            if a.visible_fraction[i] == 1.0 and b.visible_fraction[i] == 1.0 and a.visible_pixels[i] >= 20:
                np.testing.assert_allclose(b.boxes2d[i], 4 * np.array(a.boxes2d[i]), atol=4.0)
                n += 1
        blocks = b.instance.reshape(112, 4, 112, 4).transpose(0, 2, 1, 3).reshape(112, 112, 16)
        const = (blocks == blocks[..., :1]).all(-1)
        agree = (a.instance == blocks[..., 0])[const].mean()
        assert agree > 0.99
        assert abs(a.depth.mean() - b.depth.mean()) / b.depth.mean() < 0.02
    assert n >= 5
