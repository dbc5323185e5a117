"""`spatialrl data build --source scannet`: every answer checked against the known room by hand.

A furnished room of known geometry (turned boxes, three chairs, a camera that rolls a few
degrees, a non-identity axisAlignment) is written in ScanNet's published layout; the build's
rows are then checked one by one: each row's ``meta.object_ids`` names the objects, and the
answer is recomputed here from the known boxes and poses, independently of the build's code
(distances between closest points by dense sampling, left/right from the real, rolled camera).
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spatialrl.data.sources.box_render import box_mesh
from spatialrl.data.sources.known_rooms import furnished_room, walk
from spatialrl.data.sources.scannet_writer import write_scannet

K_COLOR = np.array([[290.0, 0, 162.0], [0, 290.0, 119.0], [0, 0, 1]])
K_DEPTH = np.array([[145.0, 0, 80.5], [0, 146.0, 60.2], [0, 0, 1]])
FRAMES = 10


def _alignment() -> np.ndarray:
    th = math.radians(-25.0)
    m = np.eye(4)
    m[:3, :3] = [[math.cos(th), -math.sin(th), 0], [math.sin(th), math.cos(th), 0], [0, 0, 1]]
    m[:3, 3] = (-3.0, 1.5, 0.2)
    return m


@pytest.fixture(scope="module")
def scannet_build(tmp_path_factory):
    from spatialrl.data import scan_build

    root = tmp_path_factory.mktemp("scannet")
    rooms = {}
    for k, scene in enumerate(["scene0101_00", "scene0102_00"]):
        known = furnished_room(seed=10 + k, n_unique=7, n_chairs=3, yaw=0.3 * k)
        poses = walk(known, FRAMES, seed=k, max_roll_deg=5.0)
        write_scannet(known, root, scene, poses, axis_alignment=_alignment(), color_size=(324, 240),
                      color_intrinsics=K_COLOR, depth_size=(160, 120), depth_intrinsics=K_DEPTH)  # fmt: skip
        rooms[scene] = (known, {str(20 * i): p for i, p in enumerate(poses)})
    (root / "scans" / "scene0103_00").mkdir()
    (root / "scans" / "scene0103_00" / "scene0103_00_vh_clean_2.ply").write_text("not a mesh")
    out = root.parent / (root.name + "-out")
    cfg = scan_build.ScanBuildConfig(source="scannet", root=str(root), frames_per_scene=4, video_frames=8, seed=0,
                                     test_fraction=0.0)  # fmt: skip
    summary = scan_build.build_scans(str(out), cfg, progress=False)
    import datasets

    rows = list(datasets.load_dataset("parquet", data_files=str(out / "data" / "*.parquet"))["train"])
    return rows, rooms, summary, out


def _surface(box, step=0.01):
    v, _ = box_mesh(box, step)
    return v


def closest(a, b) -> float:
    from scipy.spatial import cKDTree

    pa, pb = _surface(a), _surface(b)
    return float(cKDTree(pb).query(pa)[0].min())


def _u(pose, point) -> float:
    """Image x of a world point in the real (rolled) camera."""
    pc = np.linalg.inv(pose) @ np.append(point, 1.0)
    return K_COLOR[0, 0] * pc[0] / pc[2] + K_COLOR[0, 2]


def _depth(pose, point) -> float:
    return float(pose[:3, 2] @ (np.asarray(point) - pose[:3, 3]))


def _levelled(pose):
    """The camera the build levels ``pose`` to: same centre and optical axis, image x axis
    horizontal, principal point at the image centre."""
    f = pose[:3, 2] / np.linalg.norm(pose[:3, 2])
    r = np.cross(f, [0.0, 0.0, 1.0])
    r /= np.linalg.norm(r)
    level = np.eye(4)
    level[:3, 0], level[:3, 1], level[:3, 2], level[:3, 3] = r, np.cross(f, r), f, pose[:3, 3]
    return level


def _instance(known, pose, size, k_source):
    from spatialrl.data.sources.box_render import render_boxes

    w, h = size
    k = np.array([[k_source[0, 0], 0, w / 2], [0, k_source[1, 1], h / 2], [0, 0, 1]])
    return render_boxes(list(known.objects) + list(known.structure), _levelled(pose), k, size)[2]


def _width_seen(box, pose):
    right = _levelled(pose)[:3, 0]
    p = box.corners() @ right
    return p.max() - p.min()


def _attr(box, attr, pose=None):
    return {"taller": box.size[2], "bigger": box.size[0] * box.size[1] * box.size[2],
            "wider": _width_seen(box, pose)}[attr]  # fmt: skip


def expected(row, known, poses, k_source=K_COLOR):
    """The answer recomputed from the known room, or None when this check has no rule for it."""
    meta = json.loads(row["meta"])
    qt, view = row["question_type"], row["view"]
    objs = [known.objects[int(i)] for i in meta["object_ids"]]
    pose = poses[meta["frame_ids"][0]]
    mirrored = view == "mirror"

    def side(a, b):  # "left" when a is left of b in the image as stored
        left = _u(pose, a.center) < _u(pose, b.center)
        return "left" if left != mirrored else "right"

    if qt == "room_size":
        return known.floor_area
    if qt == "object_count":
        if meta["level"] == "scene":
            return sum(1 for o in known.objects if o.label == meta["category"])
        # in one frame: every object of the category that shows (a category with an object only
        # partly in view is never counted, so "shows" and "clearly seen" agree)
        shown = _instance(known, pose, _size(row), k_source)
        return sum(1 for i, o in enumerate(known.objects) if o.label == meta["category"] and (shown == i).any())
    if qt == "object_size":
        return max(objs[0].size)
    if qt == "object_height":
        return objs[0].size[2]
    if qt == "abs_distance":
        return closest(*objs)
    if qt == "horizontal_distance":
        return math.hypot(objs[0].center[0] - objs[1].center[0], objs[0].center[1] - objs[1].center[1])
    if qt == "vertical_distance":
        return abs(objs[0].center[2] - objs[1].center[2])
    if qt == "camera_depth":
        return _depth(pose, objs[0].center)
    if qt == "closer_to_camera":
        near = min(objs, key=lambda o: _depth(pose, o.center))
        return near.label
    if qt == "rel_distance":
        anchor, cands = objs[0], objs[1:]
        d = sorted(cands, key=lambda o: closest(anchor, o), reverse=meta["template"] == "farthest")
        return d[0].label
    if qt == "compare_yes_no":
        va, vb = _attr(objs[0], meta["attribute"], pose), _attr(objs[1], meta["attribute"], pose)
        return "yes" if ((va > vb) if meta["template"] == "more" else (va < vb)) else "no"
    if qt == "compare_choice":
        vals = [_attr(o, meta["attribute"], pose) for o in objs]
        best = (max if meta["template"] == "most" else min)(range(len(objs)), key=lambda i: vals[i])
        return objs[best].label
    if qt == "rel_direction":
        a, b = objs
        lat = side(a, b)
        if meta["template"] == "lateral":
            return lat
        front = _depth(pose, a.center) < _depth(pose, b.center)
        if meta["template"] == "depth":
            return "in front of" if front else "behind"
        return f"{lat} and {'closer to' if front else 'farther from'} the camera"
    if qt == "grounding_bbox" and not mirrored:  # mirrors: the flip of this box (checked below)
        ys, xs = np.nonzero(_instance(known, pose, _size(row), k_source) == int(meta["object_ids"][0]))
        return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
    if qt == "open_ended" and meta["template"] in ("distance", "horizontal_distance", "height", "size"):
        a = np.asarray(objs[0].center)
        return {"distance": lambda: float(np.linalg.norm(a - np.asarray(objs[1].center))),
                "horizontal_distance": lambda: math.hypot(*(a - np.asarray(objs[1].center))[:2]),
                "height": lambda: objs[0].size[2], "size": lambda: max(objs[0].size)}[meta["template"]]()  # fmt: skip
    if qt == "rel_direction_allocentric":
        a, b, c = (np.asarray(o.center) for o in objs)
        f, v = b - a, c - a
        left = f[0] * v[1] - f[1] * v[0] > 0
        return "left" if left != mirrored else "right"
    return None


def _size(row):
    image = row["image"] if row["image"] is not None else row["frames"][0]
    return image.size if hasattr(image, "size") else Image.open(io.BytesIO(image["bytes"])).size


def _answer_text(row):
    if row["options"]:
        return row["options"][row["answer_index"]]
    if row["question_type"] == "grounding_bbox":
        return row["bbox"]
    return row["answer_value"] if row["answer_type"] in ("numerical", "open_ended") else row["answer"]


def check(row, want) -> None:
    got = _answer_text(row)
    qt = row["question_type"]
    if qt == "grounding_bbox":  # the visible part's box; a depth pixel is up to 2 colour pixels
        assert got == pytest.approx(want, abs=3.0), (row["id"], got, want)
    elif isinstance(want, float):
        tol = 0.02 if qt == "abs_distance" else 0.01 if qt == "room_size" else 1e-3
        assert got == pytest.approx(want, abs=tol), (row["id"], row["question"], got, want)
    else:
        assert got == want, (row["id"], row["question"], got, want)


def test_every_answer_matches_the_known_room(scannet_build):
    rows, rooms, _, _ = scannet_build
    checked: dict[str, int] = {}
    for row in rows:
        known, poses = rooms[row["scene_id"]]
        want = expected(row, known, poses)
        if want is None:
            continue
        check(row, want)
        checked[row["question_type"]] = checked.get(row["question_type"], 0) + 1
    must = {"room_size", "object_count", "object_size", "object_height", "abs_distance", "horizontal_distance",
            "vertical_distance", "camera_depth", "closer_to_camera", "rel_direction", "rel_distance",
            "rel_direction_allocentric", "compare_yes_no", "compare_choice", "grounding_bbox", "open_ended"}  # fmt: skip
    assert must <= set(checked), sorted(checked)  # appearance_order: the next test


def test_appearance_order_follows_the_frames_shown(scannet_build):
    from spatialrl.data.sources.box_render import render_boxes

    rows, rooms, _, _ = scannet_build
    orders = [r for r in rows if r["question_type"] == "appearance_order"]
    assert orders
    for row in orders:
        meta = json.loads(row["meta"])
        known, poses = rooms[row["scene_id"]]
        assert len(row["frames"]) == len(meta["frame_ids"]) and row["image"] is None
        firsts = [meta["frame_ids"].index(f) for f in meta["first_frames"]]
        assert firsts == sorted(firsts) and len(set(firsts)) == 4
        boxes = list(known.objects) + list(known.structure)
        for oid, first in zip(meta["object_ids"], firsts):
            seen = [int((render_boxes(boxes, poses[f], K_COLOR, (324, 240))[2] == int(oid)).sum())
                    for f in meta["frame_ids"][: first + 1]]  # fmt: skip
            assert seen[-1] > 0, (row["id"], oid)  # it shows in its first frame
        names = row["options"][row["answer_index"]].split(", ")
        assert names == [known.objects[int(i)].label for i in meta["object_ids"]]


def test_mirrors_flip_the_images_and_keep_or_swap_the_answers(scannet_build):
    from PIL import Image, ImageOps

    rows, _, _, _ = scannet_build
    by_pair: dict[str, dict] = {}
    for r in rows:
        by_pair.setdefault(r["pair_id"], {})[r["view"]] = r
    assert all(set(p) == {"original", "mirror"} for p in by_pair.values())
    for p in by_pair.values():
        o, m = p["original"], p["mirror"]
        assert o["question"] == m["question"] and o["options"] == m["options"]
        imgs_o = [o["image"]] if o["image"] is not None else o["frames"]
        imgs_m = [m["image"]] if m["image"] is not None else m["frames"]
        for a, b in zip(imgs_o, imgs_m):
            a = a if hasattr(a, "size") else Image.open(io.BytesIO(a["bytes"]))
            b = b if hasattr(b, "size") else Image.open(io.BytesIO(b["bytes"]))
            assert np.array_equal(np.asarray(ImageOps.mirror(a.convert("RGB"))), np.asarray(b.convert("RGB")))
        if o["answer_type"] == "numerical":
            assert o["answer_value"] == pytest.approx(m["answer_value"], abs=1e-6)
        if o["question_type"] == "grounding_bbox":
            w = (o["image"].size[0] if hasattr(o["image"], "size") else None)
            x1, y1, x2, y2 = o["bbox"]
            assert m["bbox"] == pytest.approx([w - x2, y1, w - x1, y2], abs=0.11)


def test_card_lists_the_failed_scene_and_the_pixel_budget(scannet_build):
    rows, _, summary, out = scannet_build
    assert list(summary["failed"]) == ["scene0103_00"]
    card = (Path(out) / "README.md").read_text()
    assert "scene0103_00" in card and "## Failed scenes (1)" in card
    assert "max_pixels: `None`" in card and "324x240" in card
    assert "--source scannet" in card
    assert {r["source"] for r in rows} == {"scannet"}
    assert all(json.loads(r["meta"])["object_ids"] is not None for r in rows)


def test_pixel_budget_resizes_frames_as_qwen_would(tmp_path):
    from spatialrl.data import scan_build

    known = furnished_room(seed=4, n_unique=5, n_chairs=2)
    write_scannet(known, tmp_path, "scene0200_00", walk(known, 3, seed=4), axis_alignment=_alignment(),
                  color_size=(324, 240), color_intrinsics=K_COLOR, depth_size=(160, 120), depth_intrinsics=K_DEPTH)  # fmt: skip
    cfg = scan_build.ScanBuildConfig(source="scannet", root=str(tmp_path), frames_per_scene=2, video_frames=0,
                                     max_pixels=140 * 112, test_fraction=0.0)  # fmt: skip
    out = tmp_path / "out"
    scan_build.build_scans(str(out), cfg, progress=False)
    import datasets

    ds = datasets.load_dataset("parquet", data_files=str(out / "data" / "*.parquet"))["train"]
    sizes = {r["image"].size for r in ds}
    # smart_resize: beta = sqrt(324 * 240 / 15680) = 2.227; 240 / beta / 28 = 3.85 -> 84, 324 / beta / 28 = 5.19 -> 140
    assert sizes == {(140, 84)}
    assert "max_pixels: `15680`" in (out / "README.md").read_text()
    from spatialrl.data.load import dataset_pixel_budget

    assert dataset_pixel_budget(out) == {"min_pixels": 3136, "max_pixels": 15680}, "the card records the budget"


def test_the_budget_can_come_from_the_training_recipe(tmp_path, capsys):
    from spatialrl.cli import main
    from spatialrl.data.build_command import recipe_max_pixels

    root = Path(__file__).resolve().parents[2]
    assert recipe_max_pixels(str(root / "configs" / "smoothop_qwen2_5_vl_3b.yaml")) == 401408
    recipe = tmp_path / "r.yaml"
    recipe.write_text("max_pixels: 200704\n")
    base = ["data", "build", "--source", "scannet", "--root", str(tmp_path), "--out", str(tmp_path / "o")]
    assert main([*base, "--pixels-from", str(recipe), "--max-pixels", "401408"]) == 2
    assert "--max-pixels 401408 differs from max_pixels 200704" in capsys.readouterr().err
    recipe.write_text("learning_rate: 1.0e-6\n")
    assert main([*base, "--pixels-from", str(recipe)]) == 2
    assert "sets no max_pixels" in capsys.readouterr().err
    assert main(["data", "build", "--out", str(tmp_path / "w"), "--pixels-from", str(recipe)]) == 2
    assert "--image-size squared" in capsys.readouterr().err


def test_selection_balances_types_and_a_killed_build_resumes(tmp_path, monkeypatch):
    from spatialrl.data import scan_build

    for k, scene in enumerate(["scene0300_00", "scene0301_00"]):
        known = furnished_room(seed=20 + k, n_unique=6, n_chairs=2)
        write_scannet(known, tmp_path, scene, walk(known, 4, seed=k), axis_alignment=_alignment(), color_size=(324, 240),
                      color_intrinsics=K_COLOR, depth_size=(160, 120), depth_intrinsics=K_DEPTH)  # fmt: skip
    cfg = scan_build.ScanBuildConfig(source="scannet", root=str(tmp_path), frames_per_scene=3, video_frames=4,
                                     samples=20, test_fraction=0.0)  # fmt: skip
    out = tmp_path / "out"
    real = scan_build.process_scene
    calls = []

    def dies_on_second(cfg_, k, sid, work):
        calls.append(sid)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(cfg_, k, sid, work)

    monkeypatch.setattr(scan_build, "process_scene", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        scan_build.build_scans(str(out), cfg, progress=False)
    assert not out.exists() and (tmp_path / "out.partial" / "scenes" / "scene0300_00.jsonl").is_file()
    calls.clear()
    monkeypatch.setattr(scan_build, "process_scene", lambda *a: (calls.append(a[2]), real(*a))[1])
    summary = scan_build.build_scans(str(out), cfg, progress=False)
    assert calls == ["scene0301_00"]  # the finished scene was not redone
    import datasets

    ds = datasets.load_dataset("parquet", data_files=str(out / "data" / "*.parquet"))["train"]
    assert len(ds) == 2 * 20 == sum(summary["rows"].values())
    counts: dict[str, int] = {}
    for qt in ds["question_type"]:
        counts[qt] = counts.get(qt, 0) + 1
    assert max(counts.values()) - min(counts.values()) <= 4  # equal quotas (in rows: 2 a question), +-1 question
    assert len(set(ds["scene_id"])) == 2


def test_arkitscenes_answers_match_the_known_room(tmp_path):
    """The same hand checks on an ARKitScenes 3DOD scan: walls not along the axes, the floor at
    z = 0.8, frames 256 x 192 with timestamps matched within the official tolerance."""
    from spatialrl.data import scan_build
    from spatialrl.data.sources.arkitscenes_writer import DEFAULT_K, frame_timestamps, write_arkitscenes

    known = furnished_room(seed=5, yaw=0.4, floor_z=0.8, n_unique=7, n_chairs=3)
    poses = walk(known, 10, seed=5)
    write_arkitscenes(known, tmp_path / "3dod", "41069021", poses)
    cfg = scan_build.ScanBuildConfig(source="arkitscenes", root=str(tmp_path / "3dod"), frames_per_scene=4,
                                     video_frames=6, test_fraction=0.0)  # fmt: skip
    scan_build.build_scans(str(tmp_path / "out"), cfg, progress=False)
    import datasets

    rows = list(datasets.load_dataset("parquet", data_files=str(tmp_path / "out" / "data" / "*.parquet"))["train"])
    by_id = dict(zip(frame_timestamps(len(poses)), poses))
    checked = set()
    for row in rows:
        want = expected(row, known, by_id, DEFAULT_K)
        if want is None:
            continue
        check(row, want)
        checked.add(row["question_type"])
    assert {"room_size", "object_count", "object_size", "abs_distance", "camera_depth"} <= checked
    assert {r["source"] for r in rows} == {"arkitscenes"} and {r["scene_id"] for r in rows} == {"41069021"}


def test_a_frame_with_no_horizon_is_skipped_and_counted_not_the_scene(tmp_path):
    from spatialrl.data import scan_build

    known = furnished_room(seed=7, n_unique=5, n_chairs=2)
    poses = walk(known, 3, seed=7)
    down = np.eye(4)  # looking straight down: x east, y south, z down (OpenCV axes)
    down[:3, :3] = np.array([[1.0, 0, 0], [0, -1.0, 0], [0, 0, -1.0]]).T
    down[:3, 3] = (0.0, 0.0, 2.0)
    poses.insert(1, down)
    write_scannet(known, tmp_path, "scene0400_00", poses, axis_alignment=_alignment(), color_size=(324, 240),
                  color_intrinsics=K_COLOR, depth_size=(160, 120), depth_intrinsics=K_DEPTH)  # fmt: skip
    cfg = scan_build.ScanBuildConfig(source="scannet", root=str(tmp_path), frames_per_scene=4, video_frames=4,
                                     test_fraction=0.0)  # fmt: skip
    summary = scan_build.build_scans(str(tmp_path / "out"), cfg, progress=False)
    assert summary["failed"] == {} and sum(summary["rows"].values()) > 0
    card = (tmp_path / "out" / "README.md").read_text()
    assert "unusable frame (no level horizon): 1" in card
