"""ScanNet v2 scans in their published layout, read into :class:`~.scan.ScanScene`.

Accepted layout (``--root`` holds ``scans/``; ``docs/data.md`` shows it as a tree)::

    ROOT/scans/<scene>/<scene>_vh_clean_2.ply                   mesh (raw sensor frame)
    ROOT/scans/<scene>/<scene>_vh_clean_2.0.010000.segs.json    "segIndices": one segment per vertex
    ROOT/scans/<scene>/<scene>.aggregation.json                 "segGroups": [{"objectId", "label", "segments"}]
    ROOT/scans/<scene>/<scene>.txt                              "axisAlignment = 16 numbers" (row-major 4x4), intrinsics
    exported frames, in the first of these that exists:
      ROOT/scans/<scene>/frames/{color,depth,pose,intrinsic}/   the official SensReader export, in a subfolder
      ROOT/scans/<scene>/{color,depth,pose,intrinsic}/          the same, directly in the scan folder
      ROOT/posed_images/<scene>/                                mmdetection3d's extract_posed_images.py

Conventions (each from the official code, ScanNet/ScanNet unless named):

* SensReader (``SensReader/python/SensorData.py``): ``color/<i>.jpg``, ``depth/<i>.png``
  (uint16, millimetres: ``depth_shift`` 1000), ``pose/<i>.txt`` (4x4 camera-to-world, OpenCV
  axes), ``intrinsic/intrinsic_color.txt`` and ``intrinsic_depth.txt`` (4x4; colour and depth
  have different intrinsics and sizes). ``<i>`` is the sensor frame index, unpadded; with
  ``--frame_skip`` the indices keep their gaps (0, 20, 40, ...). The stream is 30 Hz, so a
  frame's time is ``i / 30`` s.
* mmdetection3d (``data/scannet/extract_posed_images.py``): ``<j:05d>.jpg`` / ``.png`` /
  ``.txt`` and one ``intrinsic.txt`` (colour only). Its frames are a random subset renumbered
  0..N-1, so their order is not time order: :attr:`ScanScene.time_ordered` is False and no
  appearance-order question is asked. Depth intrinsics then come from ``<scene>.txt``
  (``fx_depth``, ``fy_depth``, ``mx_depth``, ``my_depth``).
* ``axisAlignment`` (``<scene>.txt``, applied as ``M @ [x, y, z, 1]`` in mmdetection3d's
  ``load_scannet_data.py`` and ScanNet200's preprocessing) maps the raw mesh to a frame with z
  up and walls along the axes. Poses are in the raw frame, so a camera in the aligned frame is
  ``M @ pose``. A scan without it (``scans_test``) is read with the identity and says so in
  ``files["axisAlignment"]``.
* Poses with ``-inf`` / NaN entries (tracking lost) are skipped and counted.
* Objects: each ``segGroup`` is an object, ``objectId`` its id, ``label`` its category; its
  vertices are those whose ``segIndices`` entry is in its ``segments``. Its box is the
  smallest upright box of its aligned vertices (:func:`~.scan.upright_box`); its height is
  its vertices' z range.
* Floor: :func:`~.floor.floor_area` and :func:`~.floor.floor_height` of the aligned mesh.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .mesh import read_mesh
from .scan import ScanError, ScanFrame, ScanObject, ScanScene, upright_box

__all__ = ["FPS", "list_scenes", "load_scene", "read_meta"]

FPS = 30.0
_LAYOUTS = ("frames", "flat", "posed_images")


def list_scenes(root: str | Path) -> list[str]:
    """Scene ids under ``root/scans`` (sorted) that have a ``_vh_clean_2.ply`` mesh."""
    root = Path(root)
    scans = root / "scans"
    if not scans.is_dir():
        raise ScanError("-", root, "", "no scans/ folder: --root must be the ScanNet folder holding scans/")
    return sorted(p.name for p in scans.iterdir() if p.is_dir() and (p / f"{p.name}_vh_clean_2.ply").is_file())


def read_meta(path: Path, scene: str) -> dict[str, str]:
    """``key = value`` lines of ``<scene>.txt``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ScanError(scene, path, "", f"cannot read: {e.strerror or e}") from None
    meta = {}
    for line in text.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            meta[k.strip()] = v.strip()
    return meta


def _floats(scene: str, file: Path, field: str, text: str, n: int | None = None) -> np.ndarray:
    try:
        a = np.array([float(x) for x in text.split()], dtype=np.float64)
    except ValueError:
        raise ScanError(scene, file, field, f"expected numbers, got {text[:60]!r}") from None
    if n is not None and a.size != n:
        raise ScanError(scene, file, field, f"expected {n} numbers, got {a.size}")
    return a


def _matrix_file(scene: str, path: Path, field: str = "") -> np.ndarray:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ScanError(scene, path, field, f"cannot read: {e.strerror or e}") from None
    a = _floats(scene, path, field or "4x4 matrix", text.replace(",", " "))
    if a.size == 16:
        return a.reshape(4, 4)
    if a.size == 9:
        m = np.eye(4)
        m[:3, :3] = a.reshape(3, 3)
        return m
    raise ScanError(scene, path, field or "4x4 matrix", f"expected a 4x4 (or 3x3) matrix, got {a.size} numbers")


def _load_json(scene: str, path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ScanError(scene, path, "", f"cannot read: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ScanError(scene, path, "", f"invalid JSON: {e}") from None


def _find_frames(root: Path, scene: str) -> tuple[str, Path] | None:
    scan = root / "scans" / scene
    if (scan / "frames" / "pose").is_dir():
        return "frames", scan / "frames"
    if (scan / "pose").is_dir():
        return "flat", scan
    if (root / "posed_images" / scene).is_dir():
        return "posed_images", root / "posed_images" / scene
    return None


def _meta_intrinsics(meta: dict[str, str], kind: str) -> np.ndarray | None:
    keys = [f"fx_{kind}", f"fy_{kind}", f"mx_{kind}", f"my_{kind}"]
    if not all(k in meta for k in keys):
        return None
    fx, fy, cx, cy = (float(meta[k]) for k in keys)
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


def load_scene(root: str | Path, scene: str) -> ScanScene:
    """Read one scan (see the module docstring); raises :class:`ScanError` naming the file and
    field of the first problem."""
    from .floor import floor_area, floor_height

    root = Path(root)
    scan = root / "scans" / scene
    if not scan.is_dir():
        raise ScanError(scene, scan, "", "missing scan folder")
    meta_path = scan / f"{scene}.txt"
    meta = read_meta(meta_path, scene)
    files = {"meta": str(meta_path)}
    if "axisAlignment" in meta:
        align = _floats(scene, meta_path, "axisAlignment", meta["axisAlignment"], 16).reshape(4, 4)
        if not np.allclose(align[3], [0, 0, 0, 1]) or abs(np.linalg.det(align[:3, :3]) - 1) > 1e-3:
            raise ScanError(scene, meta_path, "axisAlignment", "expected a rigid 4x4 transform (row-major, last row 0 0 0 1)")
        files["axisAlignment"] = "applied"
    else:
        align = np.eye(4)
        files["axisAlignment"] = "absent: the identity was used (a scans_test scan?)"

    mesh_path = scan / f"{scene}_vh_clean_2.ply"
    verts_raw, faces = read_mesh(mesh_path, scene)
    verts = verts_raw @ align[:3, :3].T + align[:3, 3]
    segs_path = scan / f"{scene}_vh_clean_2.0.010000.segs.json"
    segs = _load_json(scene, segs_path)
    seg_indices = segs.get("segIndices") if isinstance(segs, dict) else None
    if not isinstance(seg_indices, list):
        raise ScanError(scene, segs_path, "segIndices", "expected a list with one segment id per mesh vertex")
    if len(seg_indices) != len(verts):
        raise ScanError(scene, segs_path, "segIndices", f"has {len(seg_indices)} entries for {len(verts)} mesh vertices")
    seg_indices = np.asarray(seg_indices, dtype=np.int64)
    agg_path = scan / f"{scene}.aggregation.json"
    agg = _load_json(scene, agg_path)
    groups = agg.get("segGroups") if isinstance(agg, dict) else None
    if not isinstance(groups, list):
        raise ScanError(scene, agg_path, "segGroups", "expected a list of {objectId, label, segments}")

    objects: list[ScanObject] = []
    for k, g in enumerate(groups):
        where = f"segGroups[{k}]"
        if not isinstance(g, dict):
            raise ScanError(scene, agg_path, where, "expected an object")
        oid, label, segments = g.get("objectId", g.get("id")), g.get("label"), g.get("segments")
        if not isinstance(oid, int) or isinstance(oid, bool):
            raise ScanError(scene, agg_path, f"{where}.objectId", f"expected an integer, got {oid!r}")
        if not isinstance(label, str) or not label.strip():
            raise ScanError(scene, agg_path, f"{where}.label", f"expected a category name, got {label!r}")
        if not isinstance(segments, list) or not all(isinstance(s, int) for s in segments):
            raise ScanError(scene, agg_path, f"{where}.segments", "expected a list of segment ids")
        pts = verts[np.isin(seg_indices, segments)]
        if len(pts) == 0:
            raise ScanError(scene, agg_path, f"{where}.segments", f"object {oid} ({label}) has no mesh vertex")
        center, size, axes = upright_box(pts)
        objects.append(ScanObject(str(oid), label.strip().lower(), center, size, axes,
                                  float(pts[:, 2].min()), float(pts[:, 2].max())))  # fmt: skip

    frames, skipped, time_ordered = _read_frames(root, scene, meta, align, files)
    return ScanScene(
        source="scannet", scene_id=scene, objects=objects, floor_area=floor_area(verts, faces),
        floor_z=floor_height(verts, faces), frames=frames, skipped=skipped, files=files, time_ordered=time_ordered,
    )  # fmt: skip


def _read_frames(root: Path, scene: str, meta: dict[str, str], align: np.ndarray,
                 files: dict[str, str]) -> tuple[list[ScanFrame], dict[str, int], bool]:  # fmt: skip
    found = _find_frames(root, scene)
    skipped: dict[str, int] = {}
    if found is None:
        files["frames"] = "none found"
        return [], skipped, True
    layout, base = found
    files["frames"] = f"{layout}: {base}"
    if layout == "posed_images":
        k_color_path = base / "intrinsic.txt"
        k_color = _matrix_file(scene, k_color_path)[:3, :3]
        k_depth = _meta_intrinsics(meta, "depth")
        names = sorted((p.stem for p in base.glob("*.txt") if p.stem.isdigit()), key=int)

        def paths(n: str) -> tuple[Path, Path, Path]:
            return base / f"{n}.jpg", base / f"{n}.png", base / f"{n}.txt"
    else:
        intr = base / "intrinsic"
        k_color = _matrix_file(scene, intr / "intrinsic_color.txt")[:3, :3]
        k_depth_path = intr / "intrinsic_depth.txt"
        k_depth = _matrix_file(scene, k_depth_path)[:3, :3] if k_depth_path.is_file() else _meta_intrinsics(meta, "depth")
        names = sorted((p.stem for p in (base / "pose").glob("*.txt") if p.stem.isdigit()), key=int)

        def paths(n: str) -> tuple[Path, Path, Path]:
            return base / "color" / f"{n}.jpg", base / "depth" / f"{n}.png", base / "pose" / f"{n}.txt"

    color_size = depth_size = None
    if "colorWidth" in meta and "colorHeight" in meta:
        color_size = (int(float(meta["colorWidth"])), int(float(meta["colorHeight"])))
    if "depthWidth" in meta and "depthHeight" in meta:
        depth_size = (int(float(meta["depthWidth"])), int(float(meta["depthHeight"])))
    frames: list[ScanFrame] = []
    for n in names:
        color, depth, pose_path = paths(n)
        if not color.is_file():
            color = color.with_suffix(".png") if color.with_suffix(".png").is_file() and layout != "posed_images" else color
        if not color.is_file():
            skipped["no colour image"] = skipped.get("no colour image", 0) + 1
            continue
        pose = _matrix_file(scene, pose_path, "pose")
        if not np.all(np.isfinite(pose)):
            skipped["invalid pose"] = skipped.get("invalid pose", 0) + 1
            continue
        if color_size is None:
            color_size = _image_size(color)
        has_depth = depth.is_file() and k_depth is not None
        if has_depth and depth_size is None:
            depth_size = _image_size(depth)
        if not has_depth:
            skipped["frames without depth (kept; no occlusion test)"] = skipped.get("frames without depth (kept; no occlusion test)", 0) + 1
        frames.append(ScanFrame(
            frame_id=n, time=int(n) / FPS, color_path=color, depth_path=depth if has_depth else None,
            camera_to_world=align @ pose, color_intrinsics=k_color, color_size=color_size,
            depth_intrinsics=k_depth if has_depth else None, depth_size=depth_size if has_depth else None,
        ))  # fmt: skip
    return frames, skipped, layout != "posed_images"
