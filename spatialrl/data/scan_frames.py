"""One real frame made ready for questions: levelled, sized to the pixel budget, objects seen.

Smooth Operator sec. 3.1 derives its questions "via geometric projection" from annotated
scans. For each frame of a :class:`~spatialrl.data.sources.scan.ScanScene` this module:

1. **Levels** the camera. Real frames roll a few degrees; the question templates reason with
   a camera whose image x axis is horizontal (left/right as seen in the image, and a mirror
   plane that is vertical). The frame is resampled as seen by the same camera turned about
   its optical axis until level (a pure rotation about the optical centre, so the warp is the
   homography ``K' R K^-1`` and no geometry changes), with its principal point moved to the
   image centre (so the mirrored twin is the exact horizontal flip). A levelled frame shows
   a little black in its corners, as much as the roll.
2. **Sizes** it: the source resolution, or with ``max_pixels`` the size Qwen2.5-VL's
   processor would choose for it (``transformers``' ``smart_resize``: sides multiples of 28,
   at most ``max_pixels`` pixels), done in the same warp. The processor then keeps the stored
   size, so 2D boxes and the model's input agree.
3. **Sees** each object: points on the box faces turned to the camera (a 7 x 7 grid a face)
   are projected; a point counts as seen when it falls inside the image and the frame's depth
   map does not show something nearer than it (``depth < z - OCCLUSION_TOL(z)``; no depth
   reading counts as seen). ``visible_fraction`` is the share of those points seen. The 2D box
   is where the sensor saw the object: the depth readings that fall inside its box (2 cm slack),
   projected into the stored image, less the floor or table it stands on (readings near its
   bottom outside its footprint), together with the face points seen (which reach where the
   depth camera, whose field of view is not the colour camera's, does not).
4. **Scores** frames for selection: :func:`sharpness` (variance of the Laplacian of a grey
   thumbnail) and :func:`clearly_seen` objects (the question templates' rule).

Deviation from the annotation path: an object is a box, so "seen" is about its box faces,
not its exact surface: a box face in front of a chair's legs counts as seen when the wall
behind shows through them.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np

from spatialrl._image_size import smart_resize
from spatialrl.data.sources.scan import EXCLUDED_CATEGORIES, ScanFrame, ScanObject
from spatialrl.world.questions import MIN_BOX_SIDE, MIN_VISIBLE_FRACTION, ObjectView
from spatialrl.world.scene import Camera

__all__ = [
    "FACE_GRID", "FrameView", "OCCLUSION_TOL", "clearly_seen", "level_camera", "output_size", "read_depth",
    "see_objects", "sharpness", "view_frame",
]  # fmt: skip

FACE_GRID = 7
NEAR = 0.05


def OCCLUSION_TOL(z: np.ndarray) -> np.ndarray:  # noqa: N802 - a documented constant-like rule
    """Depth slack (m) before a nearer depth reading hides a point: 5 cm plus 5 % of its depth
    (sensor noise grows with depth; ScanNet's depth and colour are registered only roughly)."""
    return 0.05 + 0.05 * z


@dataclass
class FrameView:
    """A frame ready for questions: the stored image and the levelled camera it was taken by.

    Attributes:
        frame: the source frame.
        image: the levelled, sized RGB image (PIL).
        camera: the levelled camera for ``image`` (world frame, no roll, principal point at
            the image centre).
        views: one :class:`ObjectView` per scene object (stored-image pixels).
        roll: the roll removed (rad).
    """

    frame: ScanFrame
    image: object
    camera: Camera
    views: list[ObjectView]
    roll: float

    def encoded(self, mirrored: bool = False, fmt: str = "png") -> bytes:
        """The image's PNG (or JPEG) bytes, horizontally flipped for the mirrored twin."""
        from PIL import ImageOps

        img = ImageOps.mirror(self.image) if mirrored else self.image
        buf = io.BytesIO()
        if fmt == "jpeg":
            img.save(buf, format="JPEG", quality=95)
        else:
            img.save(buf, format="PNG", compress_level=1)
        return buf.getvalue()


def output_size(width: int, height: int, max_pixels: int | None, factor: int = 28, min_pixels: int = 56 * 56) -> tuple[int, int]:
    """``(width, height)`` of the stored frame: unchanged without a budget, else the size
    Qwen2.5-VL's processor resizes to (:func:`spatialrl._image_size.smart_resize`)."""
    if not max_pixels:
        return width, height
    return smart_resize(width, height, min_pixels, max_pixels, factor)


def level_camera(camera_to_world: np.ndarray, k: np.ndarray, size: tuple[int, int],
                 out_size: tuple[int, int]) -> tuple[Camera, float, np.ndarray]:  # fmt: skip
    """The levelled camera for an ``out_size`` image, the roll removed (rad), and the (3, 3)
    homography from output pixels to source pixels (pixel centres at ``i + 0.5``)."""
    R = np.asarray(camera_to_world, dtype=np.float64)[:3, :3]
    fwd = R[:, 2] / np.linalg.norm(R[:, 2])
    if abs(fwd[2]) > 0.999:
        raise ValueError("camera looks straight up or down: no level horizon")
    yaw = math.atan2(fwd[1], fwd[0])
    pitch = math.asin(max(-1.0, min(1.0, fwd[2])))
    w, h = size
    ow, oh = out_size
    sx, sy = ow / w, oh / h
    cam = Camera(tuple(np.asarray(camera_to_world)[:3, 3]), yaw, pitch, k[0, 0] * sx, k[1, 1] * sy, ow / 2, oh / 2, ow, oh)
    R_level = cam.rotation().T  # columns: right, down, forward (camera-to-world)
    rel = R.T @ R_level  # level camera axes in the source camera's frame
    roll = math.atan2(rel[1, 0], rel[0, 0])
    k_out = np.array([[cam.fx, 0, cam.cx], [0, cam.fy, cam.cy], [0, 0, 1.0]])
    H = np.asarray(k, dtype=np.float64) @ rel @ np.linalg.inv(k_out)
    return cam, roll, H / H[2, 2]


def _face_points(obj: ScanObject, eye: np.ndarray) -> np.ndarray:
    """Points on the faces of the box that turn towards ``eye`` ((N, 3) world)."""
    R = obj.rotation  # columns: box axes
    half = np.asarray(obj.size) / 2
    t = np.linspace(-1.0, 1.0, FACE_GRID)
    ga, gb = np.meshgrid(t, t, indexing="ij")
    out = []
    local_eye = R.T @ (eye - np.asarray(obj.center))
    for axis in range(3):
        a, b = [k for k in range(3) if k != axis]
        for sign in (-1.0, 1.0):
            if sign * local_eye[axis] <= half[axis]:  # the face turns away (or is edge-on)
                continue
            p = np.zeros((ga.size, 3))
            p[:, a], p[:, b], p[:, axis] = ga.ravel() * half[a], gb.ravel() * half[b], sign * half[axis]
            out.append(p)
    if not out:  # the eye is inside the box
        return np.zeros((0, 3))
    return np.concatenate(out) @ R.T + np.asarray(obj.center)


def see_objects(objects: list[ScanObject], camera: Camera, frame: ScanFrame, depth: np.ndarray | None,
                exact_boxes: bool = True) -> list[ObjectView]:  # fmt: skip
    """One :class:`ObjectView` per object for the levelled ``camera`` (see the module
    docstring, step 3); ``depth`` is the frame's depth map in metres (or None). Without
    ``exact_boxes`` (enough to count what a frame shows), and for the categories no question
    asks about (walls, floors: :data:`EXCLUDED_CATEGORIES`), 2D boxes come from the face points
    alone, which is much cheaper."""
    eye = np.asarray(camera.position, dtype=np.float64)
    views = []
    if depth is not None:
        pose = np.asarray(frame.camera_to_world, dtype=np.float64)
        w2c_R, w2c_t = pose[:3, :3].T, -pose[:3, :3].T @ pose[:3, 3]
        kd = np.asarray(frame.depth_intrinsics, dtype=np.float64)
        dh, dw = depth.shape
    for obj in objects:
        pts = _face_points(obj, eye)
        if len(pts) == 0:
            views.append(ObjectView(0.0, None))
            continue
        pc = camera.world_to_camera(pts)
        z = pc[:, 2]
        ok = z > NEAR
        zs = np.where(ok, z, 1.0)
        u = camera.fx * pc[:, 0] / zs + camera.cx
        v = camera.fy * pc[:, 1] / zs + camera.cy
        seen = ok & (u >= 0) & (u <= camera.width) & (v >= 0) & (v <= camera.height)
        if depth is not None and seen.any():
            pd = pts[seen] @ w2c_R.T + w2c_t
            zd = pd[:, 2]
            okd = zd > NEAR
            ud = np.floor(kd[0, 0] * pd[:, 0] / np.where(okd, zd, 1) + kd[0, 2]).astype(np.int64)
            vd = np.floor(kd[1, 1] * pd[:, 1] / np.where(okd, zd, 1) + kd[1, 2]).astype(np.int64)
            inside = okd & (ud >= 0) & (ud < dw) & (vd >= 0) & (vd < dh)
            reading = np.zeros(len(pd))
            reading[inside] = depth[vd[inside], ud[inside]]
            hidden = (reading > 0) & (reading < zd - OCCLUSION_TOL(zd))
            idx = np.flatnonzero(seen)
            seen[idx[hidden]] = False
        frac = float(seen.mean())
        if not seen.any():
            views.append(ObjectView(frac, None))
            continue
        # the face points seen lie inside the visible part (a grid: they fall short of its edges);
        # the depth readings in the box reach its edges, but only where the depth camera sees
        # (its field of view is not the colour camera's): the box takes both
        x1, y1, x2, y2 = u[seen].min(), v[seen].min(), u[seen].max(), v[seen].max()
        wanted = exact_boxes and depth is not None and obj.category not in EXCLUDED_CATEGORIES
        extent = _depth_extent(obj, camera, depth, pose, kd) if wanted else None
        if extent is not None:
            x1, y1, x2, y2 = min(x1, extent[0]), min(y1, extent[1]), max(x2, extent[2]), max(y2, extent[3])
        x1, x2 = float(np.clip(x1, 0, camera.width)), float(np.clip(x2, 0, camera.width))
        y1, y2 = float(np.clip(y1, 0, camera.height)), float(np.clip(y2, 0, camera.height))
        box = (round(x1, 1), round(y1, 1), round(x2, 1), round(y2, 1))
        views.append(ObjectView(frac, box if box[2] > box[0] and box[3] > box[1] else None))
    return views


BOX_TOL = 0.02  # m: a depth reading this far outside an object's box still belongs to it


def _depth_extent(obj: ScanObject, camera: Camera, depth: np.ndarray, pose: np.ndarray,
                  kd: np.ndarray) -> tuple[float, float, float, float] | None:  # fmt: skip
    """The pixel box (in the levelled ``camera``'s image) of the depth readings that fall in
    ``obj``'s box (``BOX_TOL`` slack; readings near its bottom outside its footprint are its
    support): the object's visible part as the sensor saw it, clipped
    by the image border and by whatever stands in front. Only the depth pixels inside the
    projection of the box's corners are looked at. None when no reading falls in the box."""
    dh, dw = depth.shape
    w2c = np.linalg.inv(pose)
    cc = obj.corners() @ w2c[:3, :3].T + w2c[:3, 3]
    if (cc[:, 2] > NEAR).all():
        cu = kd[0, 0] * cc[:, 0] / cc[:, 2] + kd[0, 2]
        cv = kd[1, 1] * cc[:, 1] / cc[:, 2] + kd[1, 2]
        u0, u1 = max(0, int(np.floor(cu.min()))), min(dw, int(np.ceil(cu.max())) + 1)
        v0, v1 = max(0, int(np.floor(cv.min()))), min(dh, int(np.ceil(cv.max())) + 1)
    else:  # a corner behind the camera: the projection is unbounded
        u0, u1, v0, v1 = 0, dw, 0, dh
    if u1 <= u0 or v1 <= v0:
        return None
    d = depth[v0:v1, u0:u1]
    vv, uu = np.nonzero(d > 0)
    if len(vv) == 0:
        return None
    z = d[vv, uu].astype(np.float64)
    cam = np.stack([(uu + u0 + 0.5 - kd[0, 2]) / kd[0, 0] * z, (vv + v0 + 0.5 - kd[1, 2]) / kd[1, 1] * z, z], axis=1)
    world = cam @ pose[:3, :3].T + pose[:3, 3]
    local = (world - np.asarray(obj.center)) @ obj.rotation
    inside = np.all(np.abs(local) <= np.asarray(obj.size) / 2 + BOX_TOL, axis=1)
    # the floor (or the table) an object stands on touches its box: a reading near the bottom
    # and outside the footprint is the support, not the object
    half = np.asarray(obj.size) / 2
    support = (world[:, 2] < obj.z_min + BOX_TOL) & np.any(np.abs(local[:, :2]) > half[:2] + 0.01, axis=1)
    inside &= ~support
    if not inside.any():
        return None
    pc = camera.world_to_camera(world[inside])
    u = camera.fx * pc[:, 0] / pc[:, 2] + camera.cx
    v = camera.fy * pc[:, 1] / pc[:, 2] + camera.cy
    # each reading stands for a depth pixel: half its footprint in the stored image on each side
    hu, hv = 0.5 * camera.fx / kd[0, 0], 0.5 * camera.fy / kd[1, 1]
    return (float(u.min() - hu), float(v.min() - hv), float(u.max() + hu), float(v.max() + hv))


def read_depth(frame: ScanFrame) -> np.ndarray | None:
    """The frame's depth map in metres (None without one)."""
    if frame.depth_path is None:
        return None
    from PIL import Image

    with Image.open(frame.depth_path) as im:
        return np.asarray(im, dtype=np.float32) / float(frame.depth_scale)


def sharpness(image) -> float:
    """Variance of the Laplacian of a 160-pixel-wide grey thumbnail of ``image`` (PIL): low
    for a blurred frame."""
    from scipy.ndimage import laplace

    grey = image.convert("L")
    grey = grey.resize((160, max(1, round(160 * grey.height / grey.width))))
    return float(laplace(np.asarray(grey, dtype=np.float32)).var())


def clearly_seen(view: ObjectView) -> bool:
    """The question templates' rule (``SceneContext``): at least ``MIN_VISIBLE_FRACTION`` seen
    and a 2D box of at least ``MIN_BOX_SIDE`` pixels a side."""
    if view.box is None or view.visible_fraction < MIN_VISIBLE_FRACTION:
        return False
    x1, y1, x2, y2 = view.box
    return (x2 - x1) >= MIN_BOX_SIDE and (y2 - y1) >= MIN_BOX_SIDE


def view_frame(frame: ScanFrame, objects: list[ScanObject], max_pixels: int | None,
               depth: np.ndarray | None = None) -> FrameView:  # fmt: skip
    """Level, size and look at one frame (the module docstring's steps 1-4)."""
    from PIL import Image

    with Image.open(frame.color_path) as im:
        src = im.convert("RGB")
    if src.size != tuple(frame.color_size):
        raise ValueError(f"{frame.color_path}: image is {src.size[0]}x{src.size[1]}, the intrinsics are for "
                         f"{frame.color_size[0]}x{frame.color_size[1]}")  # fmt: skip
    out = output_size(*src.size, max_pixels)
    camera, roll, H = level_camera(frame.camera_to_world, frame.color_intrinsics, src.size, out)
    identity = np.allclose(H, np.eye(3), atol=1e-9)
    if identity:
        image = src
    else:
        image = src.transform(out, Image.PERSPECTIVE, tuple(H.ravel()[:8]), Image.BILINEAR)
    if depth is None:
        depth = read_depth(frame)
    views = see_objects(objects, camera, frame, depth)
    return FrameView(frame, image, camera, views, roll)
