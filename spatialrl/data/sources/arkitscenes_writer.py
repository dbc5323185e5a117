"""Write a :class:`~spatialrl.data.sources.box_render.KnownScan` in ARKitScenes' 3DOD layout.

The files are those :mod:`.arkitscenes` reads (its docstring has the layout and the official
source of every convention): the annotation JSON with ``obbAligned`` boxes, a PLY mesh of the
boxes, and ``<video_id>_frames/`` with RGB and uint16-millimetre depth PNGs rendered by
:func:`~spatialrl.data.sources.box_render.render_boxes`, a ``.pincam`` per frame and
``lowres_wide.traj`` (world-to-camera axis-angle lines). Like the published scans, the traj
timestamps carry more digits than the frame names and some pincam names are a millisecond off
theirs (``ts_jitter``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from spatialrl._extras import requires_extra

with requires_extra("train"):
    from PIL import Image
    from plyfile import PlyData, PlyElement
    from scipy.spatial.transform import Rotation

from .box_render import KnownScan, box_mesh, render_boxes

__all__ = ["DEFAULT_K", "frame_timestamps", "write_arkitscenes"]

# A lowres_wide camera at 256 x 192 (the 3DOD release's size; focal length of that order).
DEFAULT_K = np.array([[211.0, 0.0, 127.5], [0.0, 211.0, 95.5], [0.0, 0.0, 1.0]])


def frame_timestamps(n: int, t0: float = 6845.704, dt: float = 0.1) -> list[str]:
    """The frame names' timestamps, 3 decimals: ``t0 + i dt``."""
    return [f"{t0 + i * dt:.3f}" for i in range(n)]


def write_arkitscenes(
    known: KnownScan,
    root: str | Path,
    video_id: str,
    poses: list[np.ndarray],
    size: tuple[int, int] = (256, 192),
    K: np.ndarray | None = None,
    split: str = "Training",
    t0: float = 6845.704,
    dt: float = 0.1,
    ts_jitter: bool = True,
    mesh_step: float = 0.0,
    omit_poses: Iterable[int] = (),
    uids: list[str] | None = None,
) -> Path:
    """Write ``known`` as the scan ``<root>/<split>/<video_id>/`` seen from ``poses``
    (camera-to-world, OpenCV axes), one frame each at ``t0 + i dt`` seconds; return the folder.

    Args:
        size, K: the lowres_wide (and lowres_depth) image size and intrinsics (default
            :data:`DEFAULT_K`).
        ts_jitter: as in the published data, the traj lines' timestamps are written to 5
            decimals a fraction of a millisecond off the frame's (every third frame 2 ms off,
            so only the 0.005 s tolerance matches it), and every fourth pincam is named a
            millisecond before or after its frame.
        mesh_step: the mesh's grid (m) on every box face (``0``: 8 corners per box; about
            0.03 gives a real scan's ~200k vertices for a room).
        omit_poses: frame indices to leave out of the traj (frames with no pose).
        uids: the objects' uids (default ``"0"``, ``"1"``, ... : ``objects[i]``'s index).
    """
    K = DEFAULT_K if K is None else np.asarray(K, dtype=np.float64)
    uids = [str(i) for i in range(len(known.objects))] if uids is None else [str(u) for u in uids]
    if len(uids) != len(known.objects):
        raise ValueError(f"write_arkitscenes: {len(uids)} uids for {len(known.objects)} objects")
    folder = Path(root) / split / video_id
    frames = folder / f"{video_id}_frames"
    for sub in ("lowres_wide", "lowres_depth", "lowres_wide_intrinsics"):
        (frames / sub).mkdir(parents=True, exist_ok=True)

    data = [{"uid": uid, "label": b.label, "objectId": i,
             "segments": {"obbAligned": {"centroid": list(map(float, b.center)), "axesLengths": list(map(float, b.size)),
                                         "normalizedAxes": [float(x) for row in b.axes for x in row]}}}
            for i, (uid, b) in enumerate(zip(uids, known.objects))]
    doc = {"data": data, "stats": {}, "comment": "", "confirm": True, "skipped": False}
    (folder / f"{video_id}_3dod_annotation.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    _write_mesh(folder / f"{video_id}_3dod_mesh.ply", known, mesh_step)

    boxes = list(known.objects) + list(known.structure)
    omit = set(omit_poses)
    w, h = size
    traj = []
    for i, (ts, pose) in enumerate(zip(frame_timestamps(len(poses), t0, dt), poses)):
        pose = np.asarray(pose, dtype=np.float64)
        name = f"{video_id}_{ts}"
        color, depth, _ = render_boxes(boxes, pose, K, size)
        Image.fromarray(color).save(frames / "lowres_wide" / f"{name}.png")
        mm = np.clip(np.round(depth * 1000.0), 0, 65535).astype(np.uint16)
        Image.fromarray(mm).save(frames / "lowres_depth" / f"{name}.png")
        pin_ts = float(ts) + ((-0.001 if i % 8 == 3 else 0.001) if ts_jitter and i % 4 == 3 else 0.0)
        (frames / "lowres_wide_intrinsics" / f"{video_id}_{pin_ts:.3f}.pincam").write_text(
            f"{w} {h} {K[0, 0]} {K[1, 1]} {K[0, 2]} {K[1, 2]}\n", encoding="utf-8")
        if i in omit:
            continue
        R_wc = pose[:3, :3].T  # world -> camera
        t_wc = -R_wc @ pose[:3, 3]
        aa = Rotation.from_matrix(R_wc).as_rotvec()
        traj_ts = float(ts) + ((0.002 if i % 3 == 2 else 0.0003) if ts_jitter else 0.0)
        traj.append(f"{traj_ts:.5f} " + " ".join(f"{x:.10f}" for x in (*aa, *t_wc)))
    (frames / "lowres_wide.traj").write_text("\n".join(traj) + "\n", encoding="utf-8")
    return folder


def _write_mesh(path: Path, known: KnownScan, step: float) -> None:
    verts, faces, colors, n = [], [], [], 0
    for b in list(known.objects) + list(known.structure):
        v, f = box_mesh(b, step)
        verts.append(v)
        faces.append(f + n)
        colors.append(np.tile(np.asarray(b.color, dtype=np.uint8), (len(v), 1)))
        n += len(v)
    v, f, c = np.concatenate(verts), np.concatenate(faces), np.concatenate(colors)
    vertex = np.empty(len(v), dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    vertex["x"], vertex["y"], vertex["z"] = v[:, 0], v[:, 1], v[:, 2]
    vertex["red"], vertex["green"], vertex["blue"] = c[:, 0], c[:, 1], c[:, 2]
    face = np.empty(len(f), dtype=[("vertex_indices", "i4", (3,))])
    face["vertex_indices"] = f
    PlyData([PlyElement.describe(vertex, "vertex"), PlyElement.describe(face, "face")]).write(str(path))
