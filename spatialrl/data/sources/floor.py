"""A room's floor from its mesh: its height and its area, one rule for every scan source.

VSI-Bench's room-size question asks for the room's floor area. World-axis bounding boxes of a
scan overstate it whenever the walls are not axis-aligned (ARKitScenes' world is only
gravity-aligned) or the room is not a rectangle, so the area here comes from the room's own
geometry: the union of the floor-plan (xy) projections of the mesh's near-horizontal
triangles, i.e. floor, tables, beds, sills and ceiling as far as they were scanned. The
furniture tops fill the floor the scanner never saw under them; walls (vertical, zero
projected area) add nothing. A scan standing in for walls with closed boxes adds their top and
bottom faces, so such walls should be thin (the real meshes' walls are surfaces).

``floor_height`` finds the floor's level as a low percentile of the vertex heights (the floor
is the lowest large surface of an indoor scan; the percentile ignores the few stray vertices
below it) and, given the faces, refines it to the median height of the upward-facing
near-horizontal triangles there.
"""

from __future__ import annotations

import numpy as np
from spatialrl._extras import requires_extra

with requires_extra("train"):
    import shapely

__all__ = ["floor_area", "floor_height"]


def floor_height(vertices: np.ndarray, faces: np.ndarray | None = None, percentile: float = 1.0, band: float = 0.15) -> float:
    """Height (m, z up) of the floor.

    Without ``faces``: the ``percentile``-th percentile of the vertices' z. With ``faces``:
    that percentile only finds the floor's level; the height is the area-weighted median z of
    the near-horizontal triangles facing up (as wound) within ``band`` metres above it, or of
    all near-horizontal ones there when none faces up (a mesh wound the other way). The median
    is the floor's own level, not its noise's low tail, and a closed floor slab (a synthetic
    scan's box) gives its top, not its bottom."""
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    if len(v) == 0:
        raise ValueError("floor_height: no vertices")
    low = float(np.percentile(v[:, 2], percentile))
    if faces is None:
        return low
    n, area, keep = _horizontal(v, faces)
    zc = v[np.asarray(faces, dtype=np.int64).reshape(-1, 3)].mean(axis=1)[:, 2]
    near = keep & (zc >= low - 0.02) & (zc <= low + band)
    up = near & (n[:, 2] > 0)
    pick = up if up.any() else near
    if not pick.any():
        return low
    z, w = zc[pick], area[pick]
    order = np.argsort(z)
    cum = np.cumsum(w[order])
    return float(z[order][np.searchsorted(cum, cum[-1] / 2)])


def _horizontal(v: np.ndarray, faces: np.ndarray, min_normal_z: float = 0.7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per triangle: its (unnormalised) normal as wound, its area, and whether it is near
    horizontal (``|n_z| > min_normal_z |n|``)."""
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    n = np.cross(b - a, c - a)
    norm = np.linalg.norm(n, axis=1)
    return n, norm / 2, (norm > 0) & (np.abs(n[:, 2]) > min_normal_z * norm)


#: Above this many near-horizontal triangles the union is rasterised (``RASTER_CELL``) instead of
#: computed exactly: GEOS's union of a real scan's hundred thousand triangles takes seconds, and the
#: builder reads one scan at a time (``benchmarks/scan_build.py`` times the whole build).
EXACT_LIMIT = 20_000
#: Raster cell (m). A cell counts when a sample of a triangle falls in it, so the area is
#: overstated by up to half a cell along the outline: under 1 % for a 6 x 5 m room.
RASTER_CELL = 0.02


def floor_area(vertices: np.ndarray, faces: np.ndarray, min_normal_z: float = 0.7, grid_size: float | None = None) -> float:
    """The room's floor area (m^2): the area of the union of the xy projections of the
    triangles whose unit normal has ``|n_z| > min_normal_z`` (either winding).

    Exact for up to :data:`EXACT_LIMIT` such triangles: one ``shapely.polygons`` call builds them
    and ``shapely.union_all`` merges them (optionally on a ``grid_size`` metre precision grid).
    A larger mesh (a real scan) is rasterised: every triangle is sampled about three times a
    :data:`RASTER_CELL` cell, the cells hit are counted after filling the holes that no
    horizontal surface covers (the floor under a bed the scanner never saw)."""
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if len(f) == 0:
        return 0.0
    _, area, keep = _horizontal(v, f, min_normal_z)
    if not keep.any():
        return 0.0
    a, b, c = v[f[keep, 0]], v[f[keep, 1]], v[f[keep, 2]]
    if keep.sum() > EXACT_LIMIT:
        return _raster_area(a[:, :2], b[:, :2], c[:, :2])
    rings = np.stack([a[:, :2], b[:, :2], c[:, :2], a[:, :2]], axis=1)
    return float(shapely.union_all(shapely.polygons(rings), grid_size=grid_size).area)


def _raster_area(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    from scipy.ndimage import binary_fill_holes

    cell = RASTER_CELL
    proj = 0.5 * np.abs((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))
    k = np.ceil(3 * proj / cell**2).astype(np.int64) + 1
    idx = np.repeat(np.arange(len(a)), k)
    rng = np.random.default_rng(0)
    r1, r2 = rng.random(len(idx)), rng.random(len(idx))
    flip = r1 + r2 > 1
    r1[flip], r2[flip] = 1 - r1[flip], 1 - r2[flip]
    pts = a[idx] + r1[:, None] * (b[idx] - a[idx]) + r2[:, None] * (c[idx] - a[idx])
    pts = np.concatenate([pts, a, b, c])
    lo = pts.min(axis=0)
    ij = np.floor((pts - lo) / cell).astype(np.int64)
    grid = np.zeros(ij.max(axis=0) + 1, dtype=bool)
    grid[ij[:, 0], ij[:, 1]] = True
    return float(binary_fill_holes(grid).sum() * cell**2)
