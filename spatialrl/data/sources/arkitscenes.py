"""Read an ARKitScenes 3DOD scan into a :class:`~spatialrl.data.sources.scan.ScanScene`.

Layout accepted (the ``3dod`` download of apple/ARKitScenes, ``download_data.py 3dod``; the
frame folders as ``threedod/benchmark_scripts/utils/tenFpsDataLoader.py`` reads them)::

    <root>/                              the "3dod" folder
      Training/ | Validation/            the split (DATA.md, "Training and Validation")
        <video_id>/
          <video_id>_3dod_annotation.json
          <video_id>_3dod_mesh.ply       optional (download_data.py lists video ids without it)
          <video_id>_frames/
            lowres_wide/<video_id>_<ts>.png             RGB, e.g. 41254925_6845.704.png
            lowres_depth/<video_id>_<ts>.png            uint16, millimetres (DATA.md)
            lowres_wide_intrinsics/<video_id>_<ts>.pincam
            lowres_wide.traj

Conventions, each with its official source (apple/ARKitScenes, ``threedod/benchmark_scripts``):

- **Frame names.** ``<video_id>_<ts>.png`` with ``ts`` in seconds to 3 decimals;
  ``TenFpsDataLoader.__init__`` takes the frame id as the part after ``_``. The official loader
  lists ``lowres_depth``; this reader lists ``lowres_wide`` (the frames are colour frames) and
  takes the depth image of the same name where there is one.
- **Poses.** A ``.traj`` line is ``ts ax ay az tx ty tz`` (DATA.md): an axis-angle rotation
  (radians) and a translation (metres) that map WORLD to CAMERA. ``TrajStringToMatrix`` builds
  ``[Rodrigues(a) | t]`` (``utils/rotation.py: convert_angle_axis_to_matrix3``, cv2.Rodrigues;
  here ``scipy...Rotation.from_rotvec``) and returns its inverse, the camera-to-world pose,
  which ``generate_point`` applies to camera points. Camera axes are OpenCV's.
- **Pose matching.** ``TenFpsDataLoader`` keys poses by ``f"{round(ts, 3):.3f}"`` and takes a
  frame's pose by exact key, else from a traj timestamp within 0.005 s (``__getitem__``; it
  keeps the last such key, this reader the nearest). A frame with no pose within 0.005 s is
  skipped and counted (``skipped["no pose"]``).
- **Intrinsics.** ``<video_id>_<ts>.pincam`` is one line ``w h fx fy cx cy`` (DATA.md;
  ``st2_camera_intrinsics``). ``TenFpsDataLoader.__init__`` tries the frame's own name, then
  ``ts - 0.001``, then ``ts + 0.001`` (the published names differ by a millisecond now and
  then). A frame with none of them is skipped and counted (``skipped["no intrinsics"]``).
  The colour size is the pincam's ``w h`` (the PNG is not opened).
- **Depth intrinsics.** lowres_wide and lowres_depth are both 256 x 192 in the 3DOD release and
  ``generate_point`` back-projects depth pixels with the colour (lowres_wide) intrinsics
  unchanged. Here the depth intrinsics are the colour intrinsics scaled to the depth image's
  size (read from its PNG header): the same matrix when the sizes agree. (The official loader's
  branch for a depth image of another size pads the colour image into the depth frame instead
  of scaling; the 3DOD release does not need it.)
- **Boxes.** ``data[i].segments.obbAligned`` holds ``centroid`` (3), ``axesLengths`` (3, full
  lengths) and ``normalizedAxes`` (9) (``extract_gt``; threedod/README.md "Annotation file
  format"). ``rotmat = reshape(normalizedAxes, (3, 3))`` and ``compute_box_3d`` (``box_utils``)
  places the corners at ``rotmat.T @ offsets``: each ROW of ``rotmat`` is a box axis and
  ``axesLengths[i]`` runs along row ``i``. Older annotation files name the box ``obb``: read
  when there is no ``obbAligned``. A left-handed ``rotmat`` (det -1) has its third row negated:
  the same box, a proper rotation.
- **World.** Metres, gravity-aligned, z up (the boxes are upright in it), but the floor is not at
  z = 0 and the walls are not axis-aligned: ``floor_z`` and ``floor_area`` come from the mesh
  (:mod:`.floor`: the upward-facing floor triangles' median height; the union of the
  near-horizontal triangles' floor-plan projections), or ``floor_z`` from the boxes' lowest
  corners (1st percentile) and no area when there is no mesh.
- **Objects.** ``object_id`` is the annotation's ``uid``, ``category`` its ``label`` in lower
  case (``extract_gt`` keeps the raw label too; its taxonomy filter is not applied here).
- **Time.** A frame's ``time`` is its ``ts`` minus the first frame's, ``frame_id`` its ``ts``
  as written in the file name.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
from spatialrl._extras import requires_extra

with requires_extra("train"):
    from PIL import Image
    from scipy.spatial.transform import Rotation

from .floor import floor_area, floor_height
from .mesh import read_mesh
from .scan import ScanError, ScanFrame, ScanObject, ScanScene

__all__ = ["SPLITS", "list_scenes", "load_scene", "scene_folder"]

SPLITS = ("Training", "Validation")
POSE_TOLERANCE = 0.005  # s, TenFpsDataLoader.__getitem__
INTRINSICS_OFFSETS = (-0.001, 0.001)  # s, after the frame's own name: TenFpsDataLoader.__init__, in this order


def list_scenes(root: str | Path) -> list[tuple[str, Path]]:
    """``(video_id, folder)`` of every scan under ``root`` (the ``3dod`` folder), both splits,
    sorted by video id (numerically: the ids are digit strings). A scan is a folder holding ``<video_id>_3dod_annotation.json`` or
    ``<video_id>_frames``."""
    root = Path(root)
    splits = [root / s for s in SPLITS if (root / s).is_dir()]
    if not splits:
        raise ScanError("*", root, "", f"no {' or '.join(s + '/' for s in SPLITS)} folder: not an ARKitScenes 3dod root")
    found = []
    for split in splits:
        for d in split.iterdir():
            if d.is_dir() and ((d / f"{d.name}_3dod_annotation.json").is_file() or (d / f"{d.name}_frames").is_dir()):
                found.append((d.name, d))
    return sorted(found, key=lambda x: (len(x[0]), x[0], str(x[1])))


def scene_folder(root_or_folder: str | Path, video_id: str) -> Path:
    """The scan's folder: ``root_or_folder`` itself when it is named ``video_id``, else
    ``<root_or_folder>/<video_id>`` or ``<root_or_folder>/<split>/<video_id>``."""
    base = Path(root_or_folder)
    for cand in [base] if base.name == video_id else [base / video_id] + [base / s / video_id for s in SPLITS]:
        if cand.is_dir():
            return cand
    raise ScanError(video_id, base / video_id, "", "no scan folder (looked in the folder itself, <root>/<id> and <root>/<split>/<id>)")


def load_scene(root_or_folder: str | Path, video_id: str) -> ScanScene:
    """Read the scan ``video_id`` (see the module docstring for the layout) into a
    :class:`ScanScene`. Raises :class:`ScanError` naming the scene, the file and the field
    when a file is missing or malformed."""
    video_id = str(video_id)
    folder = scene_folder(root_or_folder, video_id)
    ann = folder / f"{video_id}_3dod_annotation.json"
    mesh = folder / f"{video_id}_3dod_mesh.ply"
    frames_dir = folder / f"{video_id}_frames"
    objects = read_annotation(ann, video_id)
    files = {"annotation": str(ann)}
    if mesh.is_file():
        vertices, faces = read_mesh(mesh, video_id)
        files["mesh"] = str(mesh)
        area: float | None = floor_area(vertices, faces)
        floor_z = floor_height(vertices, faces)
    else:
        if not objects:
            raise ScanError(video_id, mesh, "", "missing, and no annotated object to place the floor by")
        area = None
        floor_z = floor_height(np.concatenate([o.corners() for o in objects]))
    frames, skipped = read_frames(frames_dir, video_id)
    files["frames"] = str(frames_dir)
    return ScanScene(source="arkitscenes", scene_id=video_id, objects=objects, floor_area=area, floor_z=floor_z,
                     frames=frames, skipped=skipped, files=files)


def _numbers(value, n: int, scene: str, file: Path, field: str, positive: bool = False) -> np.ndarray:
    what = f"expected {n} {'positive ' if positive else ''}numbers"
    if not isinstance(value, list) or len(value) != n or not all(
        isinstance(x, (int, float)) and not isinstance(x, bool) for x in value
    ):
        raise ScanError(scene, file, field, f"{what}, got {json.dumps(value)[:80]}")
    a = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(a)) or (positive and not np.all(a > 0)):
        raise ScanError(scene, file, field, f"{what}, got {json.dumps(value)[:80]}")
    return a


def read_annotation(path: Path, scene: str) -> list[ScanObject]:
    """The annotated boxes of ``<video_id>_3dod_annotation.json`` as :class:`ScanObject`."""
    if not path.is_file():
        raise ScanError(scene, path, "", "missing")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ScanError(scene, path, "", f"not readable JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise ScanError(scene, path, "data", "expected a top-level object with a 'data' list")
    objects, seen = [], set()
    for i, item in enumerate(doc["data"]):
        at = f"data[{i}]"
        if not isinstance(item, dict):
            raise ScanError(scene, path, at, "expected an object")
        uid, label = item.get("uid"), item.get("label")
        if not isinstance(uid, (str, int)) or isinstance(uid, bool) or str(uid) == "":
            raise ScanError(scene, path, f"{at}.uid", f"expected a non-empty string, got {uid!r}")
        if str(uid) in seen:
            raise ScanError(scene, path, f"{at}.uid", f"duplicate uid {uid!r}")
        seen.add(str(uid))
        if not isinstance(label, str) or not label.strip():
            raise ScanError(scene, path, f"{at}.label", f"expected a non-empty string, got {label!r}")
        segments = item.get("segments")
        key = next((k for k in ("obbAligned", "obb") if isinstance(segments, dict) and isinstance(segments.get(k), dict)), None)
        if key is None:
            raise ScanError(scene, path, f"{at}.segments.obbAligned", "missing (no obbAligned or obb box)")
        box, at = segments[key], f"{at}.segments.{key}"
        center = _numbers(box.get("centroid"), 3, scene, path, f"{at}.centroid")
        size = _numbers(box.get("axesLengths"), 3, scene, path, f"{at}.axesLengths", positive=True)
        rot = _numbers(box.get("normalizedAxes"), 9, scene, path, f"{at}.normalizedAxes").reshape(3, 3)
        if np.abs(rot @ rot.T - np.eye(3)).max() > 1e-3:
            raise ScanError(scene, path, f"{at}.normalizedAxes", "expected 3 orthonormal rows (a rotation matrix)")
        if np.linalg.det(rot) < 0:
            rot[2] = -rot[2]
        # compute_box_3d: corners = rotmat.T @ offsets, so the box spans sum_i +-size[i]/2 * rot[i].
        half_z = np.abs(rot[:, 2]) @ size / 2
        objects.append(ScanObject(
            object_id=str(uid), category=label.strip().lower(), center=tuple(map(float, center)),
            size=tuple(map(float, size)), axes=tuple(tuple(map(float, r)) for r in rot),
            z_min=float(center[2] - half_z), z_max=float(center[2] + half_z)))
    return objects


def read_traj(path: Path, scene: str) -> dict[str, tuple[float, np.ndarray]]:
    """``lowres_wide.traj`` as ``{f"{round(ts, 3):.3f}": (ts, camera_to_world (4, 4))}``."""
    if not path.is_file():
        raise ScanError(scene, path, "", "missing")
    poses = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        tokens = line.split()
        try:
            values = [float(t) for t in tokens]
        except ValueError:
            values = []
        if len(values) != 7 or not all(math.isfinite(x) for x in values):
            raise ScanError(scene, path, f"line {n}", f"expected 7 numbers 'ts ax ay az tx ty tz', got {line.strip()[:80]!r}")
        R = Rotation.from_rotvec(values[1:4]).as_matrix()  # world -> camera
        pose = np.eye(4)
        pose[:3, :3] = R.T
        pose[:3, 3] = -R.T @ np.asarray(values[4:7])
        poses[f"{round(values[0], 3):.3f}"] = (values[0], pose)
    return poses


def read_pincam(path: Path, scene: str) -> tuple[np.ndarray, tuple[int, int]]:
    """``(K (3, 3), (width, height))`` of a ``.pincam`` file."""
    try:
        tokens = path.read_text(encoding="utf-8").split()
        values = [float(t) for t in tokens]
    except (OSError, UnicodeDecodeError, ValueError):
        values = []
    if len(values) != 6 or not all(math.isfinite(x) for x in values) or min(values[:4]) <= 0 or values[0] % 1 or values[1] % 1:
        raise ScanError(scene, path, "w h fx fy cx cy", "expected one line of 6 numbers, w and h whole, w h fx fy positive")
    w, h, fx, fy, cx, cy = values
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]), (int(w), int(h))


def _image_size(path: Path, scene: str) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            return im.size
    except Exception as e:
        raise ScanError(scene, path, "", f"not a readable image: {e}") from None


def read_frames(frames_dir: Path, scene: str) -> tuple[list[ScanFrame], dict[str, int]]:
    """The frames of ``<video_id>_frames/`` in time order, and those skipped by reason."""
    color_dir, depth_dir = frames_dir / "lowres_wide", frames_dir / "lowres_depth"
    intr_dir = frames_dir / "lowres_wide_intrinsics"
    for d in (frames_dir, color_dir, intr_dir):
        if not d.is_dir():
            raise ScanError(scene, d, "", "missing folder")
    poses = read_traj(frames_dir / "lowres_wide.traj", scene)
    keys = sorted(poses, key=float)
    traj_ts = np.array([poses[k][0] for k in keys])
    pattern = re.compile(rf"^{re.escape(scene)}_(\d+(?:\.\d+)?)\.png$")
    named, skipped = [], {}
    for p in color_dir.iterdir():
        m = pattern.match(p.name)
        if m:
            named.append((float(m.group(1)), m.group(1), p))
        elif p.suffix.lower() == ".png":
            skipped["unrecognised file name"] = skipped.get("unrecognised file name", 0) + 1
    named.sort()
    frames = []
    t_first = named[0][0] if named else 0.0
    for ts, ts_str, color in named:
        key = f"{round(ts, 3):.3f}"
        if key in poses:
            pose = poses[key][1]
        else:
            j = int(np.argmin(np.abs(traj_ts - ts))) if len(traj_ts) else -1
            if j < 0 or abs(traj_ts[j] - ts) >= POSE_TOLERANCE:
                skipped["no pose"] = skipped.get("no pose", 0) + 1
                continue
            pose = poses[keys[j]][1]
        names = [ts_str] + [f"{ts + d:.3f}" for d in INTRINSICS_OFFSETS]
        pincam = next((q for q in (intr_dir / f"{scene}_{n}.pincam" for n in names) if q.is_file()), None)
        if pincam is None:
            skipped["no intrinsics"] = skipped.get("no intrinsics", 0) + 1
            continue
        K, color_size = read_pincam(pincam, scene)
        depth = depth_dir / color.name
        depth_path, depth_K, depth_size = None, None, None
        if depth.is_file():
            depth_path, depth_size = depth, _image_size(depth, scene)
            sx, sy = depth_size[0] / color_size[0], depth_size[1] / color_size[1]
            depth_K = np.diag([sx, sy, 1.0]) @ K
        frames.append(ScanFrame(frame_id=ts_str, time=ts - t_first, color_path=color, depth_path=depth_path,
                                camera_to_world=pose.copy(), color_intrinsics=K, color_size=color_size,
                                depth_intrinsics=depth_K, depth_size=depth_size, depth_scale=1000.0))
    return frames, skipped
