"""ARKitScenes 3DOD reader (spatialrl.data.sources.arkitscenes) on scans of known geometry
written in the published layout (arkitscenes_writer): a room turned 30 degrees about z with
its floor at z = 0.8, objects turned about z and one tilted, cameras rolled 4 degrees."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.transform import Rotation

from spatialrl.data.sources.arkitscenes import list_scenes, load_scene
from spatialrl.data.sources.arkitscenes_writer import DEFAULT_K, frame_timestamps, write_arkitscenes
from spatialrl.data.sources.box_render import Box, KnownScan, look_at, render_boxes
from spatialrl.data.sources.floor import floor_area, floor_height
from spatialrl.data.sources.scan import ScanError

VID = "41254925"
FLOOR_Z = 0.8
YAW = np.radians(30.0)
ROOM_CENTER = np.array([1.0, 2.0])
ROOM = (5.0, 4.0)
N_FRAMES = 8
NO_POSE = 4  # frame index written without a traj line
T = 0.001  # wall thickness: real meshes' walls are surfaces


def _yaw_axes(yaw: float) -> tuple[tuple[float, float, float], ...]:
    c, s = np.cos(yaw), np.sin(yaw)
    return ((c, s, 0.0), (-s, c, 0.0), (0.0, 0.0, 1.0))


def _world(x: float, y: float, z: float) -> tuple[float, float, float]:
    """Room coordinates (room centre origin, room axes) -> world."""
    c, s = np.cos(YAW), np.sin(YAW)
    return (float(ROOM_CENTER[0] + c * x - s * y), float(ROOM_CENTER[1] + s * x + c * y), float(z))


def _known() -> KnownScan:
    L, W = ROOM
    room_axes = _yaw_axes(YAW)
    structure = [Box("floor", _world(0, 0, FLOOR_Z - 0.05), (L, W, 0.1), room_axes, (90, 90, 90))]  # a slab
    for x, y, sx, sy in [(0, W / 2 + T / 2, L + 2 * T, T), (0, -W / 2 - T / 2, L + 2 * T, T),
                         (L / 2 + T / 2, 0, T, W), (-L / 2 - T / 2, 0, T, W)]:
        structure.append(Box("wall", _world(x, y, FLOOR_Z + 1.3), (sx, sy, 2.6), room_axes, (200, 200, 190)))
    tilt = Rotation.from_euler("z", YAW).as_matrix() @ Rotation.from_euler("x", np.radians(15)).as_matrix()
    tilted_axes = tuple(tuple(map(float, tilt[:, k])) for k in range(3))  # rows: the box axes
    tilted_half_z = float(np.abs(tilt[2]) @ np.array([0.6, 0.05, 0.9]) / 2)
    objects = [
        Box("Table", _world(1.0, 0.5, FLOOR_Z + 0.375), (1.2, 0.8, 0.75), _yaw_axes(YAW + np.radians(10)), (150, 90, 40)),
        Box("chair", _world(-0.2, -1.1, FLOOR_Z + 0.45), (0.5, 0.5, 0.9), _yaw_axes(YAW - np.radians(20)), (40, 120, 200)),
        Box("cabinet", _world(2.0, -0.6, FLOOR_Z + 0.9), (0.8, 0.45, 1.8), room_axes, (60, 160, 60)),
        Box("tv_monitor", _world(0.3, 1.5, FLOOR_Z + 0.5 + tilted_half_z), (0.6, 0.05, 0.9), tilted_axes, (30, 30, 30)),
    ]
    return KnownScan(objects=objects, structure=structure, floor_area=L * W, floor_z=FLOOR_Z)


def _poses() -> list[np.ndarray]:
    return [look_at(_world(-2.3, -1.8 + 0.12 * i, FLOOR_Z + 1.7), _world(0.6, 0.0, FLOOR_Z + 0.4),
                    roll=np.radians(4.0)) for i in range(N_FRAMES)]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("3dod")
    known, poses = _known(), _poses()
    folder = write_arkitscenes(known, root, VID, poses, omit_poses=[NO_POSE])
    return root, folder, known, poses


@pytest.fixture(scope="module")
def scene(written):
    return load_scene(written[0], VID)


@pytest.fixture
def copy(written, tmp_path):
    """A private copy of the written scan to damage: (root, folder)."""
    root = tmp_path / "3dod"
    shutil.copytree(written[0], root)
    return root, root / "Training" / VID


def test_objects_read_back_exactly(scene, written):
    known = written[2]
    assert [o.object_id for o in scene.objects] == ["0", "1", "2", "3"]
    assert [o.category for o in scene.objects] == ["table", "chair", "cabinet", "tv_monitor"]
    for o, b in zip(scene.objects, known.objects):
        np.testing.assert_allclose(o.center, b.center, atol=1e-12)
        np.testing.assert_allclose(o.size, b.size, atol=1e-12)
        np.testing.assert_allclose(o.axes, b.axes, atol=1e-12)
        np.testing.assert_allclose(np.sort(o.corners(), axis=0), np.sort(b.corners(), axis=0), atol=1e-9)
        assert o.z_min == pytest.approx(b.corners()[:, 2].min(), abs=1e-9)
        assert o.z_max == pytest.approx(b.corners()[:, 2].max(), abs=1e-9)
    assert [o.is_upright() for o in scene.objects] == [True, True, True, False]
    assert scene.source == "arkitscenes" and scene.scene_id == VID


def test_traj_lines_are_world_to_camera(written):
    """The file itself (not the reader) holds world-to-camera: the camera centre maps to 0."""
    folder, poses = written[1], written[3]
    line = (folder / f"{VID}_frames" / "lowres_wide.traj").read_text().splitlines()[0].split()
    R, t = Rotation.from_rotvec([float(x) for x in line[1:4]]).as_matrix(), np.array([float(x) for x in line[4:7]])
    np.testing.assert_allclose(R @ poses[0][:3, 3] + t, 0, atol=1e-8)
    target = np.array(_world(0.6, 0.0, FLOOR_Z + 0.4))
    assert (R @ target + t)[2] > 1.0  # in front of the camera, along +z


def test_poses_read_back_and_project_onto_the_render(scene, written):
    known, poses = written[2], written[3]
    by_id = {f.frame_id: f for f in scene.frames}
    checked = 0
    for i, ts in enumerate(frame_timestamps(N_FRAMES)):
        if i == NO_POSE:
            continue
        f = by_id[ts]
        np.testing.assert_allclose(f.camera_to_world, poses[i], atol=1e-8)
        _, depth, inst = render_boxes(list(known.objects) + list(known.structure), poses[i], DEFAULT_K, (256, 192))
        world_to_cam = np.linalg.inv(f.camera_to_world)
        for k, b in enumerate(known.objects):
            p = world_to_cam[:3, :3] @ np.asarray(b.center) + world_to_cam[:3, 3]
            u, v = (f.color_intrinsics @ (p / p[2]))[:2]
            assert p[2] > 0 and 0 <= u < 256 and 0 <= v < 192, (ts, k, u, v)
            assert inst[int(v), int(u)] == k, (ts, k, u, v)
            checked += 1
        if i == 0:  # depth PNG: uint16 millimetres of the rendered depth
            mm = np.asarray(Image.open(f.depth_path))
            assert mm.dtype == np.uint16 and f.depth_scale == 1000.0
            hit = depth > 0
            np.testing.assert_allclose(mm[hit] / f.depth_scale, depth[hit], atol=0.0006)
    assert checked == 4 * (N_FRAMES - 1)


def test_frames_times_intrinsics_and_skipped(scene):
    expected = [ts for i, ts in enumerate(frame_timestamps(N_FRAMES)) if i != NO_POSE]
    assert [f.frame_id for f in scene.frames] == expected  # 2, 5: traj 2 ms off; 3, 7: pincam 1 ms off
    assert scene.skipped == {"no pose": 1}
    for f in scene.frames:
        assert f.time == pytest.approx(float(f.frame_id) - 6845.704, abs=1e-9)
        np.testing.assert_allclose(f.color_intrinsics, DEFAULT_K)
        np.testing.assert_allclose(f.depth_intrinsics, DEFAULT_K)
        assert f.color_size == (256, 192) and f.depth_size == (256, 192)
        assert f.color_path.name == f"{VID}_{f.frame_id}.png" and f.color_path.parent.name == "lowres_wide"
    assert scene.frames[-1].time == pytest.approx(0.7)


def test_pincams_and_traj_are_jittered_as_published(written):
    frames = written[1] / f"{VID}_frames"
    pincams = sorted(p.name for p in (frames / "lowres_wide_intrinsics").iterdir())
    assert f"{VID}_6846.003.pincam" in pincams and f"{VID}_6846.405.pincam" in pincams  # frames 3 and 7
    traj_ts = [line.split()[0] for line in (frames / "lowres_wide.traj").read_text().splitlines()]
    assert "6845.90600" in traj_ts  # frame 2 (6845.904) only within the 0.005 s tolerance


def test_pose_beyond_tolerance_and_missing_intrinsics_are_skipped(copy):
    root, folder = copy
    frames = folder / f"{VID}_frames"
    traj = frames / "lowres_wide.traj"
    lines = traj.read_text().splitlines()
    tokens = lines[1].split()  # frame 1, 6845.804
    lines[1] = " ".join([f"{float('6845.804') + 0.0051:.5f}"] + tokens[1:])
    traj.write_text("\n".join(lines) + "\n")
    (frames / "lowres_wide_intrinsics" / f"{VID}_6845.704.pincam").unlink()
    scene = load_scene(root, VID)
    assert scene.skipped == {"no pose": 2, "no intrinsics": 1}
    assert [f.frame_id for f in scene.frames] == ["6845.904", "6846.004", "6846.204", "6846.304", "6846.404"]
    assert scene.frames[0].time == pytest.approx(0.2)  # time counts from the scan's first frame


def test_floor_is_the_rotated_room_not_its_bounding_box(scene):
    L, W = ROOM
    assert scene.floor_area == pytest.approx(L * W, rel=0.01)
    c, s = abs(np.cos(YAW)), abs(np.sin(YAW))
    bbox = (L * c + W * s) * (L * s + W * c)
    assert bbox > 1.5 * L * W and scene.floor_area < 1.05 * L * W
    assert scene.floor_z == pytest.approx(FLOOR_Z, abs=1e-6)  # the slab's top, not its bottom


def _mesh(boxes, step):
    from spatialrl.data.sources.box_render import box_mesh

    verts, faces, n = [], [], 0
    for b in boxes:
        v, f = box_mesh(b, step)
        verts.append(v)
        faces.append(f + n)
        n += len(v)
    return np.concatenate(verts), np.concatenate(faces)


def test_floor_area_of_an_l_shaped_room_counts_only_horizontal_faces():
    parts = [Box("a", (0, 0, -0.05), (4, 2, 0.1)), Box("b", (-1.5, 2, -0.05), (1, 2, 0.1)),
             Box("wall", (0, -1.0005, 1.3), (4, 0.001, 2.6))]
    v, f = _mesh(parts, 0.25)
    assert floor_area(v, f) == pytest.approx(10.0, rel=0.002)  # bbox: 4 x 4 = 16
    assert floor_height(v) == pytest.approx(-0.1)  # vertices alone: the slab's bottom
    assert floor_height(v, f) == pytest.approx(0.0, abs=1e-9)  # its upward-facing top


def test_floor_height_of_a_noisy_floor_is_its_level_not_its_low_tail():
    v, f = _mesh([Box("floor", (0, 0, 0.8), (4, 3, 0.0))], 0.05)
    top = np.flatnonzero(np.isclose(v[:, 2], 0.8))
    f = f[np.all(np.isin(f, top), axis=1)]
    v[:, 2] += np.random.default_rng(0).normal(0, 0.01, len(v))
    assert floor_height(v) < 0.785  # the 1st percentile: ~2.3 sigma low
    assert floor_height(v, f) == pytest.approx(0.8, abs=0.003)


def test_old_obb_key_is_read(copy):
    root, folder = copy
    ann = folder / f"{VID}_3dod_annotation.json"
    doc = json.loads(ann.read_text())
    for item in doc["data"]:
        item["segments"] = {"obb": item["segments"]["obbAligned"]}
    ann.write_text(json.dumps(doc))
    assert [o.center for o in load_scene(folder, VID).objects] == [o.center for o in load_scene(root, VID).objects]


@pytest.mark.parametrize("key, value, field", [
    ("axesLengths", [1.0, -2.0, 0.5], "data[1].segments.obbAligned.axesLengths"),
    ("normalizedAxes", [1.0, 0.0, 0.0], "data[1].segments.obbAligned.normalizedAxes"),
    ("normalizedAxes", [1.0, 0, 0, 0, 2.0, 0, 0, 0, 1.0], "data[1].segments.obbAligned.normalizedAxes"),
    ("centroid", None, "data[1].segments.obbAligned.centroid"),
])
def test_malformed_annotation_names_file_and_field(copy, key, value, field):
    root, folder = copy
    ann = folder / f"{VID}_3dod_annotation.json"
    doc = json.loads(ann.read_text())
    doc["data"][1]["segments"]["obbAligned"][key] = value
    ann.write_text(json.dumps(doc))
    with pytest.raises(ScanError) as e:
        load_scene(root, VID)
    assert e.value.scene == VID and e.value.file == str(ann) and e.value.field == field
    assert field in str(e.value) and ann.name in str(e.value)


@pytest.mark.parametrize("path", [f"{VID}_3dod_annotation.json", f"{VID}_frames/lowres_wide.traj"])
def test_missing_file_is_named(copy, path):
    root, folder = copy
    (folder / path).unlink()
    with pytest.raises(ScanError, match="missing") as e:
        load_scene(root, VID)
    assert e.value.file == str(folder / path) and path.split("/")[-1] in str(e.value)


def test_malformed_traj_line_is_named(copy):
    root, folder = copy
    traj = folder / f"{VID}_frames" / "lowres_wide.traj"
    lines = traj.read_text().splitlines()
    lines[2] = lines[2].rsplit(" ", 1)[0]  # 6 numbers
    traj.write_text("\n".join(lines) + "\n")
    with pytest.raises(ScanError) as e:
        load_scene(root, VID)
    assert e.value.field == "line 3" and e.value.file == str(traj)


def test_no_mesh_floor_from_boxes_and_no_area(copy):
    root, folder = copy
    (folder / f"{VID}_3dod_mesh.ply").unlink()
    scene = load_scene(folder, VID)
    assert scene.floor_area is None and scene.floor_z == pytest.approx(FLOOR_Z, abs=0.005)


def test_list_scenes_both_splits_sorted(copy):
    root, folder = copy
    known = _known()
    write_arkitscenes(known, root, "40753679", _poses()[:1], split="Validation")
    assert list_scenes(root) == [("40753679", root / "Validation" / "40753679"), (VID, folder)]
    assert load_scene(root, "40753679").frames[0].frame_id == "6845.704"
    with pytest.raises(ScanError, match="no scan folder"):
        load_scene(root, "99999999")
    with pytest.raises(ScanError, match="3dod root"):
        list_scenes(folder)


def test_box_corners_follow_the_official_compute_box_3d(copy):
    """Independent of our writer: a hand-written box, its corners computed the way the official
    ``threedod/benchmark_scripts/utils/box_utils.py::compute_box_3d`` does (``rotmat =
    reshape(normalizedAxes, (3, 3))``, corners ``rotmat.T @ offsets + centroid`` with offsets of
    half the ``axesLengths``)."""
    root, folder = copy
    a = np.radians(30.0)
    normalized_axes = [np.cos(a), np.sin(a), 0.0, -np.sin(a), np.cos(a), 0.0, 0.0, 0.0, 1.0]
    centroid, lengths = [1.0, 2.0, 0.9], [2.0, 0.6, 0.8]
    ann = folder / f"{VID}_3dod_annotation.json"
    doc = json.loads(ann.read_text())
    doc["data"] = [{"uid": "u-1", "label": "bed", "segments": {"obbAligned": {
        "centroid": centroid, "axesLengths": lengths, "normalizedAxes": normalized_axes}}}]
    ann.write_text(json.dumps(doc))
    (obj,) = load_scene(root, VID).objects
    rotmat = np.array(normalized_axes).reshape(3, 3)
    half = np.array(lengths) / 2
    offsets = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * half
    official = (rotmat.T @ offsets.T).T + np.array(centroid)
    def as_set(points):  # the corners as a set of points (a per-axis sort could not tell +30 from -30 degrees)
        return sorted(tuple(np.round(p, 9)) for p in points)

    assert as_set(obj.corners()) == as_set(official)
    assert obj.object_id == "u-1" and obj.longest_dimension == 2.0
    # the 2 m side runs along the first row of normalizedAxes (+30 degrees), not its first column
    np.testing.assert_allclose(obj.axes[int(np.argmax(obj.size))], normalized_axes[:3], atol=1e-12)
