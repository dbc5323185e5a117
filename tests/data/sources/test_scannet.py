"""ScanNet v2 reader: a known room written in the published layout and read back."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from spatialrl.data.sources import scannet
from spatialrl.data.sources.known_rooms import furnished_room, walk
from spatialrl.data.sources.scan import ScanError, upright_box
from spatialrl.data.sources.scannet_writer import write_scannet

K_COLOR = np.array([[290.0, 0, 162.0], [0, 290.0, 119.0], [0, 0, 1]])
K_DEPTH = np.array([[145.0, 0, 80.5], [0, 146.0, 60.2], [0, 0, 1]])


def alignment(deg: float = 30.0, t=(1.0, -2.0, 0.3)) -> np.ndarray:
    th = math.radians(deg)
    m = np.eye(4)
    m[:3, :3] = [[math.cos(th), -math.sin(th), 0], [math.sin(th), math.cos(th), 0], [0, 0, 1]]
    m[:3, 3] = t
    return m


def write(root, layout="frames", scene="scene0007_00", n=4, invalid=(), seed=3):
    known = furnished_room(seed=seed, n_unique=5, n_chairs=2)
    poses = walk(known, n, seed=seed)
    write_scannet(known, root, scene, poses, axis_alignment=alignment(), layout=layout, color_size=(320, 240),
                  color_intrinsics=K_COLOR, depth_size=(160, 120), depth_intrinsics=K_DEPTH, invalid_pose_ids=invalid)
    return known, poses


@pytest.mark.parametrize("layout", ["frames", "flat", "posed_images"])
def test_reads_each_frame_layout_with_the_axis_alignment_applied(tmp_path, layout):
    known, poses = write(tmp_path, layout)
    scan = scannet.load_scene(tmp_path, "scene0007_00")
    assert scan.source == "scannet" and scan.scene_id == "scene0007_00"
    # objects come back in the aligned (known) frame: the raw mesh was turned 30 degrees
    named = {o.object_id: o for o in scan.objects}
    for i, box in enumerate(known.objects):
        o = named[str(i)]
        assert o.category == box.label
        np.testing.assert_allclose(o.center, box.center, atol=1e-4)
        np.testing.assert_allclose(sorted(o.size), sorted(box.size), atol=1e-4)
        assert o.height == pytest.approx(box.size[2], abs=1e-4)
    # poses come back in the aligned frame too (axisAlignment @ raw pose)
    assert len(scan.frames) == len(poses)
    for f, pose in zip(scan.frames, poses):
        np.testing.assert_allclose(f.camera_to_world, pose, atol=1e-5)
        np.testing.assert_allclose(f.color_intrinsics, K_COLOR, atol=1e-6)
        assert f.color_size == (320, 240) and f.depth_size == (160, 120)
        np.testing.assert_allclose(f.depth_intrinsics, K_DEPTH, atol=1e-6)
    assert scan.floor_area == pytest.approx(known.floor_area, rel=1e-3)
    assert scan.time_ordered is (layout != "posed_images")
    if layout != "posed_images":
        assert [f.frame_id for f in scan.frames] == ["0", "20", "40", "60"]  # export indices with gaps
        assert scan.frames[1].time == pytest.approx(20 / 30)


def test_invalid_poses_are_skipped_and_counted(tmp_path):
    write(tmp_path, invalid=(20,))
    scan = scannet.load_scene(tmp_path, "scene0007_00")
    assert [f.frame_id for f in scan.frames] == ["0", "40", "60"]
    assert scan.skipped == {"invalid pose": 1}


def test_list_scenes_and_missing_root(tmp_path):
    write(tmp_path)
    assert scannet.list_scenes(tmp_path) == ["scene0007_00"]
    with pytest.raises(ScanError, match="scans/"):
        scannet.list_scenes(tmp_path / "nope")


def test_bad_files_name_scene_file_and_field(tmp_path):
    write(tmp_path)
    scan = tmp_path / "scans" / "scene0007_00"
    agg = scan / "scene0007_00.aggregation.json"
    data = json.loads(agg.read_text())
    data["segGroups"][1]["objectId"] = "one"
    agg.write_text(json.dumps(data))
    with pytest.raises(ScanError, match=r"scene0007_00.*aggregation.json: segGroups\[1\].objectId: expected an integer"):
        scannet.load_scene(tmp_path, "scene0007_00")
    data["segGroups"][1]["objectId"] = 1
    agg.write_text(json.dumps(data))
    segs = scan / "scene0007_00_vh_clean_2.0.010000.segs.json"
    s = json.loads(segs.read_text())
    s["segIndices"] = s["segIndices"][:-1]
    segs.write_text(json.dumps(s))
    with pytest.raises(ScanError, match="segIndices: has .* entries for .* mesh vertices"):
        scannet.load_scene(tmp_path, "scene0007_00")
    segs.unlink()
    with pytest.raises(ScanError, match="segs.json: cannot read"):
        scannet.load_scene(tmp_path, "scene0007_00")


def test_upright_box_recovers_a_turned_box():
    from spatialrl.data.sources.box_render import Box, box_mesh

    a = 0.7
    box = Box("x", (1.0, 2.0, 0.5), (1.2, 0.4, 1.0), ((math.cos(a), math.sin(a), 0), (-math.sin(a), math.cos(a), 0), (0, 0, 1)))
    v, _ = box_mesh(box, 0.1)
    center, size, axes = upright_box(v)
    np.testing.assert_allclose(center, box.center, atol=1e-9)
    np.testing.assert_allclose(size, box.size, atol=1e-9)
    assert abs(abs(np.dot(axes[0], box.axes[0])) - 1) < 1e-9
