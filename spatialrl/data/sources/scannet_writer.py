"""Write a :class:`~.box_render.KnownScan` in ScanNet v2's published layout.

For tests and ``benchmarks/scan_build.py``: the mesh, segments, aggregation and ``<scene>.txt``
of ``scans/<scene>/``, and frames exported as the official SensReader does (or as
mmdetection3d's ``posed_images``), every file in the layout :mod:`.scannet` documents. The
mesh and poses are written in a raw frame: ``axis_alignment`` maps them back to the known
(aligned) scan, as a real scan's ``axisAlignment`` does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .box_render import Box, KnownScan, box_mesh, render_boxes

__all__ = ["write_scannet"]


def _write_ply(path: Path, verts: np.ndarray, faces: np.ndarray, colors: np.ndarray) -> None:
    from plyfile import PlyData, PlyElement

    v = np.empty(len(verts), dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"),
                                    ("blue", "u1"), ("alpha", "u1")])  # fmt: skip
    v["x"], v["y"], v["z"] = verts[:, 0], verts[:, 1], verts[:, 2]
    v["red"], v["green"], v["blue"], v["alpha"] = colors[:, 0], colors[:, 1], colors[:, 2], 255
    f = np.empty(len(faces), dtype=[("vertex_indices", "i4", (3,))])
    f["vertex_indices"] = faces
    PlyData([PlyElement.describe(v, "vertex"), PlyElement.describe(f, "face")], text=False).write(str(path))


def _matrix_text(m: np.ndarray) -> str:
    return "\n".join(" ".join(f"{x:.9g}" for x in row) for row in np.asarray(m)) + "\n"


def write_scannet(
    known: KnownScan,
    root: str | Path,
    scene: str,
    poses: list[np.ndarray],
    *,
    axis_alignment: np.ndarray | None = None,
    layout: str = "frames",
    frame_ids: list[int] | None = None,
    color_size: tuple[int, int] = (1296, 968),
    color_intrinsics: np.ndarray | None = None,
    depth_size: tuple[int, int] = (640, 480),
    depth_intrinsics: np.ndarray | None = None,
    invalid_pose_ids: tuple[int, ...] = (),
    mesh_step: float = 0.0,
    segments_per_object: int = 2,
    jpeg_quality: int = 95,
    render_scale: int = 1,
) -> Path:
    """Write ``known`` as ``root/scans/<scene>`` (plus frames; ``layout``: ``frames``
    (``scans/<scene>/frames/``), ``flat`` (``scans/<scene>/``) or ``posed_images``).

    ``poses`` are camera-to-world in the known (aligned) frame; ``frame_ids`` their export
    indices (default ``0, 20, 40, ...``); frames in ``invalid_pose_ids`` get a ``-inf`` pose as
    SensReader writes for lost tracking. Objects get ``objectId`` = their index; structure
    boxes are written as objects labelled by their ``label`` after them (as ScanNet annotates
    walls and floors). ``mesh_step`` subdivides box faces (0: 12 triangles a box).
    ``render_scale`` > 1 renders colour images at ``1 / render_scale`` of their size and
    enlarges them (fast writing of large frames for benchmarks; depth is always exact).
    Returns the scan folder."""
    root = Path(root)
    scan = root / "scans" / scene
    scan.mkdir(parents=True, exist_ok=True)
    align = np.eye(4) if axis_alignment is None else np.asarray(axis_alignment, dtype=np.float64)
    unalign = np.linalg.inv(align)
    w, h = color_size
    kc = np.array([[1170.2, 0, 647.75], [0, 1170.2, 483.75], [0, 0, 1]]) if color_intrinsics is None else np.asarray(color_intrinsics)
    dw, dh = depth_size
    kd = np.array([[577.6, 0, 318.9], [0, 577.6, 238.7], [0, 0, 1]]) if depth_intrinsics is None else np.asarray(depth_intrinsics)

    boxes: list[Box] = list(known.objects) + list(known.structure)
    verts, faces, colors, seg_ids, groups = [], [], [], [], []
    n_verts, next_seg = 0, 0
    for i, b in enumerate(boxes):
        v, f = box_mesh(b, mesh_step)
        segs = []
        split = np.array_split(np.arange(len(v)), min(segments_per_object, len(v)))
        for part in split:
            seg_ids.append(np.full(len(part), next_seg))
            segs.append(next_seg)
            next_seg += 1
        order = np.concatenate(split)
        verts.append(v[order])
        inverse = np.empty(len(v), dtype=np.int64)
        inverse[order] = np.arange(len(v))
        faces.append(inverse[f] + n_verts)
        colors.append(np.tile(np.asarray(b.color, dtype=np.uint8), (len(v), 1)))
        n_verts += len(v)
        groups.append({"id": i, "objectId": i, "segments": segs, "label": b.label})
    all_v = np.concatenate(verts)
    raw = all_v @ unalign[:3, :3].T + unalign[:3, 3]
    _write_ply(scan / f"{scene}_vh_clean_2.ply", raw, np.concatenate(faces), np.concatenate(colors))
    (scan / f"{scene}_vh_clean_2.0.010000.segs.json").write_text(json.dumps(
        {"params": {"kThresh": "0.0001", "segMinVerts": "20"}, "sceneId": scene,
         "segIndices": np.concatenate(seg_ids).tolist()}))  # fmt: skip
    (scan / f"{scene}.aggregation.json").write_text(json.dumps(
        {"sceneId": f"scannet.{scene}", "appId": "Aggregator.v2", "segGroups": groups,
         "segmentsFile": f"scannet.{scene}_vh_clean_2.0.010000.segs.json"}))  # fmt: skip
    meta = {
        "axisAlignment": " ".join(f"{x:.9g}" for x in align.ravel()),
        "colorHeight": h, "colorWidth": w, "depthHeight": dh, "depthWidth": dw,
        "fx_color": kc[0, 0], "fy_color": kc[1, 1], "mx_color": kc[0, 2], "my_color": kc[1, 2],
        "fx_depth": kd[0, 0], "fy_depth": kd[1, 1], "mx_depth": kd[0, 2], "my_depth": kd[1, 2],
        "numColorFrames": len(poses), "numDepthFrames": len(poses), "sceneType": "Living room / Lounge",
    }  # fmt: skip
    if axis_alignment is None:
        del meta["axisAlignment"]
    (scan / f"{scene}.txt").write_text("".join(f"{k} = {v}\n" for k, v in meta.items()))

    frame_ids = list(range(0, 20 * len(poses), 20)) if frame_ids is None else list(frame_ids)
    if layout == "posed_images":
        base = root / "posed_images" / scene
        base.mkdir(parents=True, exist_ok=True)
        (base / "intrinsic.txt").write_text(_matrix_text(_homog(kc)))
    else:
        base = scan / "frames" if layout == "frames" else scan
        for sub in ("color", "depth", "pose", "intrinsic"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        (base / "intrinsic" / "intrinsic_color.txt").write_text(_matrix_text(_homog(kc)))
        (base / "intrinsic" / "intrinsic_depth.txt").write_text(_matrix_text(_homog(kd)))
        (base / "intrinsic" / "extrinsic_color.txt").write_text(_matrix_text(np.eye(4)))
        (base / "intrinsic" / "extrinsic_depth.txt").write_text(_matrix_text(np.eye(4)))
    from PIL import Image

    for j, (fid, pose) in enumerate(zip(frame_ids, poses)):
        if render_scale > 1:
            small = (max(1, w // render_scale), max(1, h // render_scale))
            ks = np.diag([small[0] / w, small[1] / h, 1.0]) @ kc
            color = np.asarray(Image.fromarray(render_boxes(boxes, pose, ks, small)[0]).resize(color_size, Image.NEAREST))
        else:
            color, _, _ = render_boxes(boxes, pose, kc, color_size)
        _, depth, _ = render_boxes(boxes, pose, kd, depth_size)
        depth_mm = np.round(depth * 1000).clip(0, 65535).astype(np.uint16)
        raw_pose = np.full((4, 4), -np.inf) if fid in invalid_pose_ids else unalign @ pose
        if layout == "posed_images":
            name = f"{j:05d}"
            cpath, dpath, ppath = base / f"{name}.jpg", base / f"{name}.png", base / f"{name}.txt"
        else:
            cpath, dpath, ppath = (base / "color" / f"{fid}.jpg", base / "depth" / f"{fid}.png",
                                   base / "pose" / f"{fid}.txt")  # fmt: skip
        Image.fromarray(color).save(cpath, quality=jpeg_quality)
        Image.fromarray(depth_mm).save(dpath)
        ppath.write_text(_matrix_text(raw_pose))
    return scan


def _homog(k: np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = k
    return m
