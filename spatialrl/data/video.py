"""Frames of a video, sampled the way VSI-Bench's own evaluation samples them, decoded with PyAV.

One sampler for every video spatialrl reads: VSI-Bench's videos in ``spatialrl eval run``
and video records in ``spatialrl data import`` (so imported VSI-style training rows see their
videos as the benchmark does).

Official code: vision-x-nyu/thinking-in-space @ 51e089c3 (its lmms-eval fork).

- Which frames: ``lmms_eval/models/llava_onevision.py``, ``Llava_OneVision.load_video`` (the
  default ``video_decode_backend="decord"``; ``llava_vid.py``, ``LlavaVid.load_video``, for
  LLaVA-NeXT-Video, is the same): the frame count is ``len(VideoReader(path))``, the
  indices ``np.linspace(0, total_frame_num - 1, max_frames_num, dtype=int)`` -- uniform, first
  and last frame included, each index truncated toward zero. :func:`frame_indices` is that rule.
- How many: ``evaluate_all_in_one.sh`` sets ``num_frames=32`` and passes
  ``max_frames_num=$num_frames`` to LLaVA-OneVision, LLaVA-NeXT-Video, VILA, LongVILA and
  LongVA (the 72B/40B models 32 as well); InternVL2 gets 8, GPT-4o 16. Our default is 32.
- A video shorter than ``num_frames``: ``linspace`` with ``dtype=int`` repeats indices (10
  frames, 32 samples -> frame 0 three times ...), so the model sees ``num_frames`` images with
  repeats. We keep that. (The fork's PyAV backend, ``model_utils/load_video.py::read_video_pyav``,
  instead takes ``min(total, num_frm)`` distinct frames; it is not the default and never matters
  on VSI-Bench, whose scans are hundreds of frames long.)

Decoding is ours: decord is not a dependency (it has no current wheels). The frame count is the
container's (``stream.frames``, the ``nb_frames`` that decord's index also reports for MP4);
where the container does not say (0), a first pass counts decoded frames. The frames are then
decoded in one pass and only the sampled ones are kept and converted to RGB, so a video never
sits in memory whole. If the container's count overstates what decodes, the indices are
recomputed from the decoded count in a second pass rather than silently repeating a frame.

A missing or undecodable video raises :class:`VideoError` naming the file and, given one, the
benchmark item that needs it. :class:`VideoFrames` is a lazy stand-in for an item's image list:
the runner's ``list(item.images)`` decodes it, one batch at a time.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["FRAME_SAMPLING", "VideoError", "VideoFrames", "frame_indices", "sample_frames"]

#: What the runner records in run.json / scores.json about how frames were chosen.
FRAME_SAMPLING = ("uniform: np.linspace(0, total - 1, num_frames, dtype=int), repeats when the video is shorter "
                  "(thinking-in-space lmms_eval/models/llava_onevision.py::load_video)")

# Questions of one scene share its video (VSI-Bench has ~18 questions per scene), and a video is
# decoded whole to reach its last frame; keeping the sampled frames of the last few videos
# (num_frames images each, not the video) saves decoding the same scan again and again.
_CACHE_SIZE = 4
_cache: OrderedDict[tuple[Any, ...], list[Any]] = OrderedDict()
_cache_lock = threading.Lock()


class VideoError(ValueError):
    """A video that is missing or cannot be decoded; the message names the file (and the item)."""


def frame_indices(total: int, num_frames: int) -> list[int]:
    """The official indices: ``np.linspace(0, total - 1, num_frames, dtype=int)`` as a list."""
    import numpy as np

    if total < 1:
        raise ValueError(f"a video needs at least one frame, got {total}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    return np.linspace(0, total - 1, num_frames, dtype=int).tolist()


def _where(path: Path, item_id: str | None) -> str:
    return f"{path}" + (f" (item {item_id!r})" if item_id is not None else "")


def _open(path: Path, item_id: str | None) -> Any:
    import av

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise VideoError(f"{_where(path, item_id)}: not a readable video ({exc})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{_where(path, item_id)}: the file has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame threading: decoding the whole scan is the slow part
    return container


def _decode(path: Path, item_id: str | None, wanted: set[int] | None) -> tuple[int, dict[int, Any]]:
    """One decoding pass: the number of frames decoded and the RGB images of the ``wanted`` ones
    (``None``: count only). Stops after the last wanted frame."""
    import av

    container = _open(path, item_id)
    images: dict[int, Any] = {}
    last = max(wanted) if wanted else -1
    count = 0
    try:
        for count, frame in enumerate(container.decode(video=0), start=1):
            index = count - 1
            if wanted is not None and index in wanted:
                images[index] = frame.to_image()  # rgb24 PIL image
                if index == last:
                    break
    except (av.FFmpegError, OSError) as exc:
        raise VideoError(f"{_where(path, item_id)}: cannot decode it after {count} frames ({exc})") from None
    finally:
        container.close()
    return count, images


def _container_frames(path: Path, item_id: str | None) -> int:
    container = _open(path, item_id)
    try:
        return int(container.streams.video[0].frames or 0)
    finally:
        container.close()


def sample_frames(path: str | os.PathLike[str], num_frames: int = 32, *, item_id: str | None = None) -> list[Any]:
    """``num_frames`` RGB PIL images of the video at ``path``, at :func:`frame_indices` (the
    official uniform rule; repeated frames for a shorter video). ``item_id`` only names the
    benchmark item in a :class:`VideoError`."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    file = Path(path)
    try:
        stat = file.stat()
    except OSError:
        raise VideoError(f"{_where(file, item_id)}: video not found") from None
    key = (str(file.resolve()), stat.st_mtime_ns, stat.st_size, num_frames)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return list(_cache[key])

    total = _container_frames(file, item_id)
    if total < 1:  # the container does not say: count by decoding
        total, _ = _decode(file, item_id, None)
    if total < 1:
        raise VideoError(f"{_where(file, item_id)}: the video has no frames")
    indices = frame_indices(total, num_frames)
    decoded, images = _decode(file, item_id, set(indices))
    if len(images) < len(set(indices)):
        # The container promised more frames than decode (e.g. a truncated file): sample the
        # frames that exist, with the same rule, rather than inventing the missing ones.
        if decoded < 1:
            raise VideoError(f"{_where(file, item_id)}: no frame decodes")
        indices = frame_indices(decoded, num_frames)
        _, images = _decode(file, item_id, set(indices))
    frames = [images[i] for i in indices]
    with _cache_lock:
        _cache[key] = frames
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return list(frames)


class VideoFrames(Sequence):
    """The sampled frames of one video, decoded when iterated (``list(frames)``), not before.

    Stands in for ``EvalItem.images``: its length is ``num_frames`` without decoding, and each
    iteration decodes (or takes the last few videos' frames from a small cache), so a run holds
    only the batch in flight. Indexing decodes too; iterate once instead.
    """

    sampling = FRAME_SAMPLING

    def __init__(self, path: str | os.PathLike[str], num_frames: int = 32, item_id: str | None = None) -> None:
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        self.path = str(path)
        self.num_frames = int(num_frames)
        self.item_id = item_id

    def frames(self) -> list[Any]:
        return sample_frames(self.path, self.num_frames, item_id=self.item_id)

    def __len__(self) -> int:
        return self.num_frames

    def __iter__(self) -> Iterator[Any]:
        return iter(self.frames())

    def __getitem__(self, index: Any) -> Any:
        return self.frames()[index]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VideoFrames):
            return NotImplemented
        return (self.path, self.num_frames) == (other.path, other.num_frames)

    __hash__ = None  # type: ignore[assignment]  # mutable attributes, like the list it replaces

    def __repr__(self) -> str:
        return f"VideoFrames({self.path!r}, num_frames={self.num_frames})"
