"""Exact, vectorised ray-casting renderer for :class:`~spatialrl.world.scene.Scene`.

One ray per pixel, through the pixel centre: pixel (column i, row j) samples the camera-frame
direction ``d = ((i + 0.5 - cx) / fx, (j + 0.5 - cy) / fy, 1)``. Because ``d`` has unit
z-component, the ray parameter ``t`` of a hit *is* its z-depth. Every ray is intersected
analytically (no triangles, no near-plane clipping):

* the room: the six planes of its box, from inside (exact; the camera is inside the room);
* box objects: slab test in each object's local frame;
* ``ball`` objects: ray-sphere intersection.

The nearest hit wins (z-buffer; ties keep the lower object index). All arithmetic is float64
element-wise numpy (no BLAS, no transcendental functions on per-pixel data), so the output
is deterministic and a mirrored scene renders as the exact horizontal flip (see
:mod:`.mirror`). Work is done per object on the pixel block covered by its projected
bounding box, so cost grows with the pixels objects cover, not with their number.

Outputs (:class:`RenderResult`), for an image of ``W x H`` pixels:

``image`` (H, W, 3) uint8
    ``base * shade`` blended toward the fog grey :data:`FOG_COLOR` with weight
    ``1 - 1 / (1 + FOG_DENSITY * depth)``, where ``shade = AMBIENT + DIFFUSE * max(0, n . L)``
    with ``n`` the surface normal and ``L`` a fixed light direction in the camera frame
    (:data:`LIGHT_CAM`: from above and behind the camera; it has no x component, so shading is
    symmetric under the horizontal flip). ``base`` is the object's :data:`COLORS` entry; the
    floor is a grey checkerboard of :data:`TILE` m tiles (centred on the room's x mid-line),
    walls are a lighter grey, the ceiling lighter still.
``depth`` (H, W) float32
    Metric z-depth (m, along the optical axis, not the Euclidean ray length) of the surface
    seen at the pixel centre. Finite everywhere: walls, floor and ceiling are surfaces.
``instance`` (H, W) int16
    Index into ``scene.objects`` of the surface seen at the pixel centre; :data:`FLOOR` (-1)
    for the floor, :data:`WALL` (-2) for walls and ceiling.
``boxes2d[i]``
    Tight box ``(x1, y1, x2, y2)`` in pixels of the *visible* pixels of object i
    (``x1, y1`` = first column/row, ``x2, y2`` = last column/row + 1, i.e. exclusive pixel
    edges), or ``None`` when no pixel of it is visible.
``visible_pixels[i]``
    Number of pixels with ``instance == i``.
``unoccluded_pixels[i]``
    Number of pixel centres whose ray hits object i when all other objects are removed,
    counted on the pixel grid *extended beyond the image* by one image size on every side
    (columns ``-W .. 2W-1``, rows ``-H .. 2H-1``). An object reaching beyond that window
    (only possible when it is very close to or straddles the camera plane) is counted within
    the window only. It is left at 0 (not computed) for an object whose projection misses
    the image entirely.
``visible_fraction[i]``
    ``visible_pixels[i] / unoccluded_pixels[i]`` (0 if the latter is 0), in [0, 1]. Both
    occlusion by other objects and parts outside the image reduce it; an object smaller
    than a pixel may hit no pixel centre and gets 0.
``projected_boxes2d[i]``
    Bounding box ``(u_min, v_min, u_max, v_max)`` of the projections of object i's 8 box
    corners (continuous pixel coordinates, not clipped to the image), or ``None`` if any
    corner is at or behind the camera plane. For a fully visible box object it matches
    ``boxes2d[i]`` to within a pixel.
``camera``
    The camera with intrinsics rescaled to ``W x H`` (use it to project points onto this
    image).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .scene import COLORS, Camera, Scene

__all__ = ["FLOOR", "WALL", "RenderResult", "render", "save_png"]

FLOOR = -1
WALL = -2

#: Direction towards the light in camera coordinates (x right, y down, z forward): up and
#: behind the camera. Zero x component keeps shading symmetric under a horizontal flip.
LIGHT_CAM = np.array([0.0, -0.8, -1.0]) / math.sqrt(0.8**2 + 1.0)
AMBIENT = 0.45
DIFFUSE = 0.55
FOG_COLOR = 128.0
FOG_DENSITY = 0.06
TILE = 0.5
FLOOR_COLORS = ((118.0, 112.0, 106.0), (98.0, 93.0, 88.0))
WALL_COLOR = (160.0, 160.0, 166.0)
CEILING_COLOR = (186.0, 186.0, 190.0)

# Room surface codes in the shading palette (after the objects).
_N_ROOM = 4  # floor A, floor B, wall, ceiling


@dataclass
class RenderResult:
    """See the module docstring for the exact definition of each field."""

    image: np.ndarray
    depth: np.ndarray
    instance: np.ndarray
    boxes2d: list[tuple[float, float, float, float] | None]
    visible_fraction: list[float]
    visible_pixels: list[int]
    unoccluded_pixels: list[int]
    projected_boxes2d: list[tuple[float, float, float, float] | None]
    camera: Camera

    @property
    def width(self) -> int:
        return self.image.shape[1]

    @property
    def height(self) -> int:
        return self.image.shape[0]

    def is_visible(self, i: int, min_fraction: float = 0.0, min_pixels: int = 1) -> bool:
        """Whether object ``i`` shows at least ``min_pixels`` pixels and ``min_fraction``."""
        return self.visible_pixels[i] >= min_pixels and self.visible_fraction[i] >= min_fraction


def _shade(n_cam: np.ndarray) -> float:
    return AMBIENT + DIFFUSE * max(0.0, float(n_cam @ LIGHT_CAM))


def _pixel_dirs(lo: int, hi: int, c: float, f: float) -> np.ndarray:
    """Camera-frame ray component through pixel centres lo..hi-1 (one axis)."""
    return (np.arange(lo, hi, dtype=np.float64) + 0.5 - c) / f


def _render_room(scene: Scene, cam: Camera, R: np.ndarray, xc: np.ndarray, yc: np.ndarray):
    """Depth, palette key and shade of the room surfaces for every pixel."""
    room = scene.room
    p = cam.position
    H, W = len(yc), len(xc)
    xs, ys = xc[None, :], yc[:, None]
    # s_a = world axis a's component of the (unnormalised) ray direction, = R[:, a] . d
    best_t = np.full((H, W), np.inf)
    plane = np.zeros((H, W), dtype=np.int8)
    comps = []
    for a, extent in enumerate((room.width, room.depth, room.height)):
        g = R[:, a]
        s = (xs * g[0] + ys * g[1]) + g[2]
        comps.append(s)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(s > 0, (extent - p[a]) / s, (0.0 - p[a]) / s)
        t = np.where(s == 0, np.inf, t)
        closer = t < best_t
        best_t = np.where(closer, t, best_t)
        # plane code: 2a for the 0-plane (s < 0), 2a + 1 for the far plane (s > 0)
        plane = np.where(closer, (2 * a + (s > 0)).astype(np.int8), plane)
    # Shading per plane: inward normals in camera coordinates.
    shades = np.empty(6)
    for a in range(3):
        shades[2 * a] = _shade(R[:, a])  # plane coord 0, inward normal +axis
        shades[2 * a + 1] = _shade(-R[:, a])
    shade = shades[plane]
    key = np.where(plane == 5, 3, 2).astype(np.int16)  # ceiling / walls
    inst = np.full((H, W), WALL, dtype=np.int16)
    floor = plane == 4
    if floor.any():
        t = best_t[floor]
        wx = p[0] + t * comps[0][floor]
        wy = p[1] + t * comps[1][floor]
        # Tiles centred on the room's x mid-line so that x -> W - x keeps the pattern.
        ix = np.floor((wx - room.width / 2) / TILE + 0.5)
        iy = np.floor(wy / TILE)
        key[floor] = ((ix + iy) % 2).astype(np.int16)
        inst[floor] = FLOOR
    return best_t, key, shade, inst


_EDGES = ((0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7))
_Z_CLIP = 1e-4


def _block(obj_cam_corners: np.ndarray, cam: Camera, W: int, H: int):
    """Pixel block (r0, r1, c0, c1) on the extended grid [-W, 2W) x [-H, 2H) containing every
    pixel centre whose ray can hit the object, and the projected corner box (or None).

    The box is clipped to camera z >= 1e-4 m before projecting, so objects straddling the
    camera plane still get a tight block (a ray meeting the object only at z < 1e-4 m is
    ignored)."""
    z = obj_cam_corners[:, 2]
    proj = None
    if np.all(z > 1e-9):
        pts = obj_cam_corners
    elif np.all(z < _Z_CLIP):
        return (0, 0, 0, 0), None
    else:
        extra = []
        for a, b in _EDGES:
            za, zb = z[a], z[b]
            if (za < _Z_CLIP) != (zb < _Z_CLIP):
                s = (_Z_CLIP - za) / (zb - za)
                extra.append(obj_cam_corners[a] + s * (obj_cam_corners[b] - obj_cam_corners[a]))
        pts = np.concatenate([obj_cam_corners[z >= _Z_CLIP], np.array(extra).reshape(-1, 3)])
    u = cam.fx * pts[:, 0] / pts[:, 2] + cam.cx
    v = cam.fy * pts[:, 1] / pts[:, 2] + cam.cy
    box = (float(u.min()), float(v.min()), float(u.max()), float(v.max()))
    if np.all(z > 1e-9):
        proj = box
    # centre i + 0.5 in [umin, umax]  <=>  i in [umin - 0.5, umax - 0.5]; pad by one pixel
    c0 = max(-W, math.floor(max(box[0], -4.0 * W) - 0.5) - 1)
    c1 = min(2 * W, math.ceil(min(box[2], 4.0 * W) - 0.5) + 2)
    r0 = max(-H, math.floor(max(box[1], -4.0 * H) - 0.5) - 1)
    r1 = min(2 * H, math.ceil(min(box[3], 4.0 * H) - 0.5) + 2)
    return (r0, r1, c0, c1), proj


def _cast_box(obj, cam_R: np.ndarray, cam_pos: np.ndarray, xs: np.ndarray, ys: np.ndarray):
    """Slab test. Returns (hit mask, t, shade) on the block given by xs (1, w), ys (h, 1)."""
    rot = obj.rotation()  # columns: local axes in world
    axes_cam = cam_R @ rot  # columns: local axes in camera coords
    c_cam = cam_R @ (np.asarray(obj.center) - cam_pos)
    tnear = tfar = None
    face = None
    dls = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for k in range(3):
            a = axes_cam[:, k]
            h = obj.size[k] / 2
            o = -float(a @ c_cam)  # camera origin in local coordinate k
            dl = (xs * a[0] + ys * a[1]) + a[2]
            dls.append(dl)
            t1 = (-h - o) / dl
            t2 = (h - o) / dl
            tn = np.fmin(t1, t2)
            tf = np.fmax(t1, t2)
            if tnear is None:
                tnear, tfar, face = tn, tf, np.zeros(tn.shape, dtype=np.int8)
            else:
                m = tn > tnear
                tnear = np.where(m, tn, tnear)
                face = np.where(m, np.int8(k), face)
                tfar = np.fmin(tfar, tf)
    hit = (tnear <= tfar) & (tnear > 0)
    # Entered face on axis k has outward normal -sign(dl_k) * axis_k.
    dl_face = np.choose(face, dls)
    fidx = 2 * face + (dl_face > 0)
    shades = np.empty(6)
    for k in range(3):
        shades[2 * k] = _shade(axes_cam[:, k])  # dl <= 0: entered through the +k face
        shades[2 * k + 1] = _shade(-axes_cam[:, k])
    return hit, tnear, shades[fidx]


def _cast_sphere(obj, cam_R: np.ndarray, cam_pos: np.ndarray, xs: np.ndarray, ys: np.ndarray):
    """Ray-sphere test in camera coordinates. Returns (hit, t, shade)."""
    c = cam_R @ (np.asarray(obj.center) - cam_pos)
    r = obj.size[0] / 2
    a = (xs * xs + ys * ys) + 1.0
    b = (xs * c[0] + ys * c[1]) + c[2]  # d . c
    cc = float(c @ c) - r * r
    disc = b * b - a * cc
    hit = disc >= 0
    root = np.sqrt(np.where(hit, disc, 0.0))
    t = (b - root) / a
    hit &= t > 0
    # n = (t d - c) / r ; n . L with L_x = 0
    dL = ys * LIGHT_CAM[1] + LIGHT_CAM[2]
    ndotl = (t * dL - float(c[1] * LIGHT_CAM[1] + c[2] * LIGHT_CAM[2])) / r
    shade = AMBIENT + DIFFUSE * np.maximum(ndotl, 0.0)
    return hit, t, shade


def render(scene: Scene, width: int = 112, height: int | None = None) -> RenderResult:
    """Render ``scene`` at ``width x height`` pixels (height defaults to keeping the camera's
    aspect ratio, i.e. ``width`` for the square sampled cameras). The camera intrinsics are
    rescaled to the requested size, so every size shows the same view."""
    cam = scene.camera.with_image_size(width, height)
    W, H = cam.width, cam.height
    R = cam.rotation()
    pos = np.asarray(cam.position)
    xc = _pixel_dirs(0, W, cam.cx, cam.fx)
    yc = _pixel_dirs(0, H, cam.cy, cam.fy)

    depth, key, shade, inst = _render_room(scene, cam, R, xc, yc)
    key = key + len(scene.objects)  # room palette entries come after the objects

    n = len(scene.objects)
    unoccluded = [0] * n
    projected: list[tuple[float, float, float, float] | None] = [None] * n
    inimg_blocks: list[tuple[int, int, int, int] | None] = [None] * n
    for i, obj in enumerate(scene.objects):
        corners_cam = (obj.corners() - pos) @ R.T
        (r0, r1, c0, c1), proj = _block(corners_cam, cam, W, H)
        projected[i] = proj
        if r1 <= r0 or c1 <= c0:
            continue
        # Skip the off-image part unless the object reaches into the image at all.
        ir0, ir1, ic0, ic1 = max(r0, 0), min(r1, H), max(c0, 0), min(c1, W)
        if ir1 <= ir0 or ic1 <= ic0:
            continue
        xs = _pixel_dirs(c0, c1, cam.cx, cam.fx)[None, :]
        ys = _pixel_dirs(r0, r1, cam.cy, cam.fy)[:, None]
        cast = _cast_sphere if obj.shape == "sphere" else _cast_box
        hit, t, sh = cast(obj, R, pos, xs, ys)
        unoccluded[i] = int(np.count_nonzero(hit))
        if unoccluded[i] == 0:
            continue
        # In-image part of the block -> z-buffer.
        sl = (slice(ir0 - r0, ir1 - r0), slice(ic0 - c0, ic1 - c0))
        hit_i, t_i = hit[sl], t[sl]
        sh_i = sh[sl] if np.ndim(sh) else np.broadcast_to(sh, hit_i.shape)
        dv = depth[ir0:ir1, ic0:ic1]
        win = hit_i & (t_i < dv)
        dv[win] = t_i[win]
        inst[ir0:ir1, ic0:ic1][win] = i
        key[ir0:ir1, ic0:ic1][win] = i
        shade[ir0:ir1, ic0:ic1][win] = sh_i[win]
        inimg_blocks[i] = (ir0, ir1, ic0, ic1)

    boxes: list[tuple[float, float, float, float] | None] = [None] * n
    visible = [0] * n
    for i, blk in enumerate(inimg_blocks):
        if blk is None:
            continue
        ir0, ir1, ic0, ic1 = blk
        m = inst[ir0:ir1, ic0:ic1] == i
        cnt = int(np.count_nonzero(m))
        visible[i] = cnt
        if cnt:
            rows = np.flatnonzero(m.any(axis=1))
            cols = np.flatnonzero(m.any(axis=0))
            boxes[i] = (float(ic0 + cols[0]), float(ir0 + rows[0]), float(ic0 + cols[-1] + 1), float(ir0 + rows[-1] + 1))
    fractions = [min(1.0, v / u) if u else 0.0 for v, u in zip(visible, unoccluded)]

    palette = np.array(
        [COLORS[o.color] for o in scene.objects] + list(FLOOR_COLORS) + [WALL_COLOR, CEILING_COLOR],
        dtype=np.float64,
    ).reshape(-1, 3)
    fog = 1.0 / (1.0 + FOG_DENSITY * depth)
    lit = palette[key] * (shade * fog)[..., None] + (FOG_COLOR * (1.0 - fog))[..., None]
    image = np.clip(np.rint(lit), 0, 255).astype(np.uint8)
    return RenderResult(
        image=image,
        depth=depth.astype(np.float32),
        instance=inst,
        boxes2d=boxes,
        visible_fraction=fractions,
        visible_pixels=visible,
        unoccluded_pixels=unoccluded,
        projected_boxes2d=projected,
        camera=cam,
    )


def save_png(result_or_image, path) -> None:
    """Write a render (or an (H, W, 3) uint8 array) to ``path`` as PNG (needs Pillow)."""
    from PIL import Image

    img = result_or_image.image if isinstance(result_or_image, RenderResult) else result_or_image
    Image.fromarray(np.asarray(img, dtype=np.uint8)).save(path)
