"""Read a scan's triangle mesh (PLY) into numpy arrays, for every source.

ScanNet's ``_vh_clean_2.ply`` and ARKitScenes' ``_3dod_mesh.ply`` are binary PLY files of
triangles. plyfile reads a list property element by element in Python unless it is told the
list length, so triangles are read with ``known_list_len`` (many times faster on a real scan's
mesh) and anything else falls back to the general reader, fan-triangulated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from spatialrl._extras import requires_extra

with requires_extra("train"):
    from plyfile import PlyData

from .scan import ScanError

__all__ = ["read_mesh"]


def read_mesh(path: Path, scene: str) -> tuple[np.ndarray, np.ndarray]:
    """``(vertices (N, 3) float64, faces (M, 3) int64)`` of a scan mesh
    (polygons fan-triangulated), for any source."""
    try:
        try:  # fast path: every face a triangle (the ARKit meshes)
            ply = PlyData.read(str(path), known_list_len={"face": {"vertex_indices": 3}})
            faces = np.asarray(ply["face"]["vertex_indices"], dtype=np.int64).reshape(-1, 3)
        except Exception:
            ply = PlyData.read(str(path))
            faces = _triangulate(ply, path, scene)
        v = ply["vertex"]
        vertices = np.stack([np.asarray(v[k], dtype=np.float64) for k in ("x", "y", "z")], axis=1)
    except ScanError:
        raise
    except KeyError as e:
        raise ScanError(scene, path, str(e).strip("'\""), "missing element or property") from None
    except Exception as e:
        raise ScanError(scene, path, "", f"not a readable PLY mesh: {e}") from None
    if len(vertices) == 0 or not np.all(np.isfinite(vertices)):
        raise ScanError(scene, path, "vertex", "expected finite x, y, z for at least one vertex")
    if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ScanError(scene, path, "face.vertex_indices", f"index out of range 0..{len(vertices) - 1}")
    return vertices, faces


def _triangulate(ply: PlyData, path: Path, scene: str) -> np.ndarray:
    face = ply["face"]
    names = [p.name for p in face.properties]
    name = next((n for n in ("vertex_indices", "vertex_index") if n in names), None)
    if name is None:
        raise ScanError(scene, path, "face.vertex_indices", "missing")
    tris = []
    for poly in face[name]:
        p = np.asarray(poly, dtype=np.int64)
        tris.extend((p[0], p[k], p[k + 1]) for k in range(1, len(p) - 1))
    return np.asarray(tris, dtype=np.int64).reshape(-1, 3)
