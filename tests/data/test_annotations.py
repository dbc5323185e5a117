"""Real 3D annotations: the hand-written fixtures, error messages, path safety, mirrored twins."""

from __future__ import annotations

import copy
import io
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spatialrl.data.annotations import (
    AnnotationError,
    annotation_rows,
    annotation_samples,
    load_annotation,
    mirror_annotated,
)
from spatialrl.data.schema import validate_row

FIX = Path(__file__).parent / "fixtures" / "annotations"


def test_fixture_scene_and_hand_computed_answers():
    ann = load_annotation(FIX / "scan_001.json")
    s = ann.scene
    assert s.scene_id == "scan_001" and ann.room_known and s.room.floor_area == 20.0
    assert [o.name for o in s.objects] == ["red chair", "brown table", "lamp", "fridge", "blue chair", "box"]
    # camera looks along +y from (2.5, 0.3, 1.5): x is right, depth = y - 0.3
    assert np.allclose(s.camera.right, [1, 0, 0]) and np.allclose(s.camera.forward, [0, 1, 0])
    ctx = ann.context()
    assert ctx.depth[4] == pytest.approx(3.1)
    assert ctx.distance(0, 1) == pytest.approx(math.sqrt(1.5**2 + 0.5**2 + 0.075**2))
    assert ctx.count("chair") == 2 and "box" not in ctx.countable_categories()
    # given visibility and box are used as-is; the box behind the camera is invisible
    assert ann.views[3].visible_fraction == 0.9 and ann.views[4].box == (50.0, 52.0, 66.0, 70.0)
    assert ann.views[5].visible_fraction == 0.0 and ann.views[5].box is None and not ctx.askable[5]
    # the lamp's bottom leaves the image (v > 96): partly visible, box clipped to the image
    assert 0.4 < ann.views[2].visible_fraction < 1.0 and ann.views[2].box[3] == 96.0
    # red chair: x_cam = -1.0 at depth 2.2 -> u = 60 * -1 / 2.2 + 64
    assert ctx.u[0] == pytest.approx(60 * -1.0 / 2.2 + 64)


def test_fixture_questions_are_answered_from_the_annotation():
    ann = load_annotation(FIX / "scan_001.json")
    samples = annotation_samples(ann, np.random.default_rng(0))
    assert len({s.question_type for s in samples}) >= 12
    for s in samples:
        meta = s.meta
        if s.question_type == "object_height":
            assert s.answer_value == ann.scene.objects[meta["objects"][0]].size[2]
        if s.question_type == "room_size":
            assert s.answer == "20.00"
        for i in meta["objects"]:
            assert i != 5  # never asks about the invisible box


def test_camera_to_world_and_missing_room():
    ann = load_annotation(FIX / "scan_002.json")
    cam = ann.scene.camera
    assert cam.yaw == pytest.approx(0.0) and cam.pitch == pytest.approx(0.0)
    assert not ann.room_known and ann.offset == pytest.approx((1.0, -0.8))
    assert cam.position == pytest.approx((0.0, 1.2, 1.4))  # (-1, 2) shifted by the offset
    assert ann.scene.objects[0].center == pytest.approx((3.0, 1.8, 0.4))
    assert ann.scene.scene_id == "scan_002"  # from the file name
    samples = annotation_samples(ann, np.random.default_rng(0))
    assert samples and "room_size" not in {s.question_type for s in samples}


def test_mirrored_annotation():
    ann = load_annotation(FIX / "scan_002.json")
    twin = mirror_annotated(ann)
    a = np.asarray(Image.open(ann.image_path).convert("RGB"))
    b = np.asarray(Image.open(io.BytesIO(twin.image_bytes())))
    assert np.array_equal(b, a[:, ::-1])
    c0, c1 = ann.context(), twin.context()
    assert np.allclose(c1.u, 128 - c0.u) and np.allclose(c1.depth, c0.depth)
    rows = annotation_rows(FIX)
    assert {r["source"] for r in rows} == {"annotation"}
    by_pair: dict[str, dict] = {}
    for r in rows:
        validate_row(r)
        by_pair.setdefault(r["pair_id"], {})[r["view"]] = r
    flips = 0
    for v in by_pair.values():
        o, m = v["original"], v["mirror"]
        if o["answer_value"] is not None:
            assert o["answer_value"] == pytest.approx(m["answer_value"])
        if o["question_type"] in ("rel_direction_allocentric",) or (
            o["question_type"] == "rel_direction" and json.loads(o["meta"])["template"] == "lateral"
        ):
            assert o["answer"] != m["answer"]
            flips += 1
    assert flips >= 1


# ------------------------------------------------------------------------------ errors


def _write(root: Path, data: dict, name: str = "scan_012.json") -> Path:
    (root / "images").mkdir(exist_ok=True)
    shutil.copy(FIX / "images" / "scan_001.png", root / "images" / "scan_001.png")
    p = root / name
    p.write_text(json.dumps(data))
    return p


BASE = json.loads((FIX / "scan_001.json").read_text())


def _mut(fn):
    d = copy.deepcopy(BASE)
    fn(d)
    return d


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["objects"][3].__setitem__("size", [1, -2]),
         "scan_012.json: objects[3].size: expected 3 positive numbers in meters, got [1, -2]"),
        (lambda d: d["objects"][1].__setitem__("size", [1, 0, 2]),
         "scan_012.json: objects[1].size: expected 3 positive numbers in meters, got [1, 0, 2]"),
        (lambda d: d["objects"][0].__setitem__("center", "abc"),
         'scan_012.json: objects[0].center: expected 3 numbers in meters, got "abc"'),
        (lambda d: d["objects"][2].pop("category"), "scan_012.json: objects[2].category: missing (required)"),
        (lambda d: d["objects"][4].__setitem__("sizes", [1, 1, 1]), "scan_012.json: objects[4].sizes: unknown field"),
        (lambda d: d["objects"][0].__setitem__("yaw", True), "scan_012.json: objects[0].yaw: expected an angle in radians"),
        (lambda d: d["objects"][1].__setitem__("visible_fraction", 1.5),
         "scan_012.json: objects[1].visible_fraction: expected a number in [0, 1], got 1.5"),
        (lambda d: d["objects"][4].__setitem__("bbox_2d", [10, 10, 5, 20]), "scan_012.json: objects[4].bbox_2d: expected 0 <= x1 < x2"),
        (lambda d: d["camera"]["intrinsics"].__setitem__("fx", -1), "scan_012.json: camera.intrinsics.fx: expected a positive"),
        (lambda d: d["camera"]["intrinsics"].__setitem__("width", 64),
         "scan_012.json: camera.intrinsics: width x height 64x96 does not match the image size 128x96"),
        (lambda d: d["camera"]["extrinsics"].pop("yaw"), "scan_012.json: camera.extrinsics.yaw: missing (required)"),
        (lambda d: d.__setitem__("objects", {}), "scan_012.json: objects: expected a list of objects"),
        (lambda d: d.__setitem__("room", {"width": 5, "depth": -4, "height": 2}),
         "scan_012.json: room.depth: expected a positive number of meters, got -4"),
        (lambda d: d.__setitem__("format", "other/v9"), "scan_012.json: format: expected 'spatialrl.annotation/v1'"),
        (lambda d: d["camera"].__setitem__("extrinsics", {"camera_to_world": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]}),
         "scan_012.json: camera.extrinsics.camera_to_world: the camera has roll"),
        # the schema's wording for the cases pydantic reports: a typo is named before the key it misses,
        # a union branch lists its own keys, null is not absent, non-finite numbers are rejected
        (lambda d: d["objects"][0].__setitem__("sise", d["objects"][0].pop("size")),
         "scan_012.json: objects[0].sise: unknown field; expected one of ['bbox_2d', 'category', 'center', 'color', "
         "'name', 'size', 'visible_fraction', 'yaw']"),
        (lambda d: d["camera"].__setitem__("extrinsics", {"camera_to_world": [[1, 0, 0, 0]] * 4, "yaw": 0}),
         "scan_012.json: camera.extrinsics.yaw: unknown field; expected one of ['camera_to_world']"),
        (lambda d: d["camera"].__setitem__("extrinsics", 5), "scan_012.json: camera.extrinsics: expected a JSON object, got 5"),
        (lambda d: d["objects"].__setitem__(1, 5), "scan_012.json: objects[1]: expected a JSON object, got 5"),
        (lambda d: d.__setitem__("scene_id", None), "scan_012.json: scene_id: expected a non-empty string, got null"),
        (lambda d: d["objects"][0].__setitem__("center", [1, float("nan"), 0]),
         "scan_012.json: objects[0].center: expected 3 numbers in meters, got [1, NaN, 0]"),
        (lambda d: d["camera"]["intrinsics"].__setitem__("width", 128.0),
         "scan_012.json: camera.intrinsics.width: expected a positive integer number of pixels, got 128.0"),
    ],
)
def test_malformed_annotation_names_file_object_and_field(tmp_path, mutate, message):
    p = _write(tmp_path, _mut(mutate))
    with pytest.raises(AnnotationError) as e:
        load_annotation(p, tmp_path)
    assert str(e.value).startswith(message), str(e.value)


def test_extension_keys_are_ignored(tmp_path):
    def add(d):
        d["x-tool"] = {"name": "labeller"}
        d["_comment"] = "hand-made"
        d["objects"][0]["x-id"] = 17

    p = _write(tmp_path, _mut(add))
    assert [o.name for o in load_annotation(p, tmp_path).scene.objects][0] == "red chair"


def test_invalid_json_and_nested_file_label(tmp_path):
    (tmp_path / "sub").mkdir()
    p = tmp_path / "sub" / "bad.json"
    p.write_text('{"image": "x.png",\n "objects": [}')
    with pytest.raises(AnnotationError, match=r"^sub/bad\.json: invalid JSON at line 2"):
        load_annotation(p, tmp_path)


@pytest.mark.parametrize(
    "image, message",
    [
        ("../scan_001.png", "'..' is not allowed"),
        ("images/../../x.png", "'..' is not allowed"),
        ("/etc/passwd", "absolute"),
        ("C:\\data\\x.png", "absolute"),
        ("images/missing.png", "file not found"),
    ],
)
def test_image_path_must_stay_inside_root(tmp_path, image, message):
    p = _write(tmp_path, _mut(lambda d: d.__setitem__("image", image)))
    with pytest.raises(AnnotationError, match=f"^scan_012.json: image: .*{message}"):
        load_annotation(p, tmp_path)


def test_symlink_escaping_root_is_rejected(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "secret.png"
    shutil.copy(FIX / "images" / "scan_001.png", outside)
    p = _write(root, _mut(lambda d: d.__setitem__("image", "images/link.png")))
    (root / "images" / "link.png").symlink_to(outside)
    with pytest.raises(AnnotationError, match="resolves outside the dataset root"):
        load_annotation(p, root)
    # a symlink that stays inside the root is fine
    (root / "images" / "inside.png").symlink_to(root / "images" / "scan_001.png")
    p = _write(root, _mut(lambda d: d.__setitem__("image", "images/inside.png")))
    assert load_annotation(p, root).image_path.name == "scan_001.png"
