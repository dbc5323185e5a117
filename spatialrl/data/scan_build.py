"""``spatialrl data build --source scannet|arkitscenes``: Numerical3D-style QA from real scans.

Smooth Operator sec. 3.1: Numerical3D's verifiable samples come from annotated real 3D scans
"via geometric projection and template synthesis", balanced across subtasks. This module runs
that pipeline over a dataset on disk, one scene at a time:

1. read the scan (:mod:`spatialrl.data.sources.scannet` / ``.arkitscenes``) into the one
   internal form;
2. pick ``--frames-per-scene`` frames: candidates at an even stride (at most
   ``CANDIDATES_PER_FRAME`` per wanted frame), blurred ones dropped (sharpness below the
   candidates' ``BLUR_QUANTILE``), then in each of K equal stretches of the video the frame
   that shows the most objects clearly (coverage); plus ``--video-frames`` frames sampled
   uniformly over the whole video for the scene-level questions;
3. level, size (``--max-pixels``) and look at each frame (:mod:`spatialrl.data.scan_frames`),
   ask the single-frame and scene-level questions and their mirrored twins
   (:mod:`spatialrl.data.scan_questions`);
4. keep the scene's candidates on disk (``OUT.partial/scenes/``): a killed build, run again with
   the same command, resumes at the first scene not yet done;
5. **select** (Numerical3D's balance): near-duplicates dropped (the same question type about the
   same objects in one scene, asked from another frame), then ``--samples`` questions kept with
   equal quotas per question type (a type with too few candidates gives its share to the
   others) taken round-robin over the scenes, so no scene dominates a type;
6. write the dataset (``data/{train,test}-*.parquet``, the schema of :mod:`spatialrl.data.schema`)
   and its card (``README.md``: the command, the recipe, the pixel budget, counts per question
   type and per scene, the scenes that failed and why, frames skipped and why), then move it
   into place.

A scene that cannot be read is skipped, counted and listed in the card with its error; the
build goes on. Memory holds one scene at a time (the selection reads only the candidates' text).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SOURCES", "ScanBuildConfig", "build_scans", "process_scene", "select_candidates"]

SOURCES = ("scannet", "arkitscenes")
CANDIDATES_PER_FRAME = 4
BLUR_QUANTILE = 0.2
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class ScanBuildConfig:
    """Settings of a scan build (everything that decides the output).

    Attributes:
        source: ``scannet`` or ``arkitscenes``.
        root: the dataset folder (ScanNet: holds ``scans/``; ARKitScenes: the ``3dod`` folder).
        scenes: read at most this many scenes (sorted ids); None: all.
        frames_per_scene: frames per scene that single-frame questions are asked about.
        video_frames: frames a scene-level question shows (sampled uniformly over the video).
        samples: questions to keep after selection (each written with its mirrored twin);
            None: all candidates after near-duplicate removal.
        max_pixels: pixel budget of a stored frame (Qwen2.5-VL's ``smart_resize``); None keeps
            the source resolution.
        seed: base seed (scene ``k`` draws from ``SeedSequence(seed, spawn_key=(k,))``).
        test_fraction: share of scenes in the test split.
        types: question types to ask (None: all).
        image_format: ``png`` (lossless: the mirror is the exact flip) or ``jpeg`` (quality 95).
        mirror: write each question's mirrored twin.
    """

    source: str
    root: str
    scenes: int | None = None
    frames_per_scene: int = 8
    video_frames: int = 16
    samples: int | None = None
    max_pixels: int | None = None
    seed: int = 0
    test_fraction: float = 0.1
    types: tuple[str, ...] | None = None
    image_format: str = "png"
    mirror: bool = True

    def __post_init__(self) -> None:
        from spatialrl.data.schema import QUESTION_TYPES

        if self.source not in SOURCES:
            raise ValueError(f"--source: expected one of {', '.join(SOURCES)}, got {self.source!r}")
        if not Path(self.root).is_dir():
            raise ValueError(f"--root: {self.root} is not a folder")
        for name in ("frames_per_scene", "video_frames"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"--{name.replace('_', '-')}: must be >= 0")
        if self.max_pixels is not None and self.max_pixels < 56 * 56:
            raise ValueError(f"--max-pixels: at least {56 * 56} (56 x 56), got {self.max_pixels}")
        if self.types:
            bad = [t for t in self.types if t not in QUESTION_TYPES]
            if bad:
                raise ValueError(f"--question-types: unknown {bad}; use some of {', '.join(QUESTION_TYPES)}")
        if self.image_format not in ("png", "jpeg"):
            raise ValueError("--image-format: png or jpeg")


# --------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------


def _scene_list(cfg: ScanBuildConfig) -> list[str]:
    if cfg.source == "scannet":
        from spatialrl.data.sources import scannet

        ids = scannet.list_scenes(cfg.root)
    else:
        from spatialrl.data.sources import arkitscenes

        ids = [s if isinstance(s, str) else s[0] for s in arkitscenes.list_scenes(cfg.root)]
    return ids[: cfg.scenes] if cfg.scenes else ids


def _load(cfg: ScanBuildConfig, scene_id: str):
    if cfg.source == "scannet":
        from spatialrl.data.sources import scannet

        return scannet.load_scene(cfg.root, scene_id)
    from spatialrl.data.sources import arkitscenes

    return arkitscenes.load_scene(cfg.root, scene_id)


# --------------------------------------------------------------------------------------
# One scene
# --------------------------------------------------------------------------------------


def _pick_frames(scan, k: int, max_pixels: int | None) -> list[int]:
    """Indices (into ``scan.frames``) of the single-frame question frames (module docstring, 2)."""
    from PIL import Image

    from spatialrl.data.scan_frames import clearly_seen, level_camera, output_size, read_depth, see_objects, sharpness

    n = len(scan.frames)
    if k == 0 or n == 0:
        return []
    m = min(n, k * CANDIDATES_PER_FRAME)
    cand = sorted(set(np.linspace(0, n - 1, m).round().astype(int).tolist()))
    cover, sharp = {}, {}
    for i in cand:
        f = scan.frames[i]
        try:
            cam, _, _ = level_camera(f.camera_to_world, f.color_intrinsics, f.color_size, output_size(*f.color_size, max_pixels))
        except ValueError:
            continue
        views = see_objects(scan.objects, cam, f, read_depth(f), exact_boxes=False)
        cover[i] = sum(1 for v in views if clearly_seen(v))
        with Image.open(f.color_path) as im:
            im.draft("L", (160, 160))  # JPEG: decode at a fraction of the size
            sharp[i] = sharpness(im)
    if not cover:
        return []
    cut = np.quantile(list(sharp.values()), BLUR_QUANTILE) if len(sharp) >= 5 else -1.0
    ok = [i for i in cover if sharp[i] >= cut]
    chosen = []
    for stretch in np.array_split(np.array(ok), min(k, len(ok))):
        if len(stretch):
            chosen.append(max(stretch.tolist(), key=lambda i: (cover[i], sharp[i])))
    return chosen


def _sample_dict(s) -> dict[str, Any]:
    return {"question_type": s.question_type, "answer_type": s.answer_type, "question": s.question, "answer": s.answer,
            "answer_value": s.answer_value, "dimension": s.dimension, "unit": s.unit, "options": list(s.options),
            "answer_index": s.answer_index, "bbox": list(s.bbox), "meta": s.meta}  # fmt: skip


def process_scene(cfg: ScanBuildConfig, k: int, scene_id: str, work: Path) -> dict[str, Any]:
    """Read scene ``scene_id`` (the ``k``-th), write its frames and candidates under ``work``
    (``scenes/<id>/`` and ``scenes/<id>.jsonl``, the latter last and atomically). Returns the
    scene's summary (frames used and skipped)."""
    from spatialrl.data.scan_frames import view_frame
    from spatialrl.data.scan_questions import frame_pairs, scene_pairs

    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(k,)))
    scan = _load(cfg, scene_id)
    img_dir = work / "scenes" / scene_id
    img_dir.mkdir(parents=True, exist_ok=True)
    picked = _pick_frames(scan, cfg.frames_per_scene, cfg.max_pixels)
    n = len(scan.frames)
    video = sorted(set(np.linspace(0, n - 1, min(cfg.video_frames, n)).astype(int).tolist())) if cfg.video_frames and n else []
    ext = "jpg" if cfg.image_format == "jpeg" else "png"
    views = {}
    skipped = dict(scan.skipped)
    for i in sorted(set(picked) | set(video)):
        try:
            fv = view_frame(scan.frames[i], scan.objects, cfg.max_pixels)
        except ValueError as e:  # no level horizon, or an image that does not match its intrinsics
            reason = f"unusable frame ({str(e).split(': ', 1)[-1][:60]})"
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        for mirrored, tag in ((False, "o"), (True, "m")):
            if mirrored and not cfg.mirror:
                continue
            (img_dir / f"{fv.frame.frame_id}-{tag}.{ext}").write_bytes(fv.encoded(mirrored, cfg.image_format))
        views[i] = fv
        fv.image = None  # the pixels are on disk now; the questions need only the geometry
    picked = [i for i in picked if i in views]
    video = [i for i in video if i in views]
    candidates = []
    for j, i in enumerate(picked):
        fv = views[i]
        for p in frame_pairs(fv, scan, rng, cfg.types, balance_offset=k + j):
            candidates.append({"level": "frame", "object_ids": p.object_ids, "frames": [f"{fv.frame.frame_id}"],
                               "original": _sample_dict(p.original), "mirror": _sample_dict(p.mirror)})  # fmt: skip
    if len(video) >= 2:
        for p in scene_pairs(scan, [views[i] for i in video], rng, cfg.types):
            candidates.append({"level": "scene", "object_ids": p.object_ids, "frames": p.frame_ids,
                               "original": _sample_dict(p.original), "mirror": _sample_dict(p.mirror)})  # fmt: skip
    summary = {"scene_id": scene_id, "frames": n, "frames_used": len(views), "skipped_frames": skipped,
               "objects": len(scan.objects), "candidates": len(candidates), "ext": ext,
               "rolls_deg": [round(math.degrees(v.roll), 2) for v in views.values()],
               "image_sizes": sorted({f"{v.camera.width}x{v.camera.height}" for v in views.values()})}  # fmt: skip
    tmp = work / "scenes" / f".{scene_id}.jsonl.tmp"
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(json.dumps({"summary": summary}) + "\n")
        for c in candidates:
            fh.write(json.dumps(c) + "\n")
    os.replace(tmp, work / "scenes" / f"{scene_id}.jsonl")
    return summary


def _pool(workers: int):
    """``workers`` spawned processes, each with one BLAS thread: the depth geometry is numpy
    matrix work, and a BLAS thread pool per process on top of one process per core made the
    build more than twice slower (``benchmarks/scan_build.py``)."""
    import multiprocessing as mp

    one = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    saved = {k: os.environ.get(k) for k in one}
    os.environ.update(one)  # read by numpy as each spawned worker imports it
    try:
        return mp.get_context("spawn").Pool(workers)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _worker(args: tuple) -> tuple[str, dict[str, Any] | None, str | None]:
    cfg, k, scene_id, work = args
    from spatialrl.data.sources.scan import ScanError

    try:
        return scene_id, process_scene(cfg, k, scene_id, Path(work)), None
    except (ScanError, ValueError, OSError) as e:
        return scene_id, None, str(e)


# --------------------------------------------------------------------------------------
# Selection
# --------------------------------------------------------------------------------------


def _dedupe_key(scene_id: str, c: dict[str, Any]) -> tuple:
    meta = c["original"]["meta"]
    return (scene_id, c["level"], c["original"]["question_type"], tuple(sorted(c["object_ids"])),
            meta.get("template"), meta.get("attribute"), meta.get("category"))  # fmt: skip


def select_candidates(per_scene: dict[str, list[dict[str, Any]]], samples: int | None,
                      rng: np.random.Generator) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, int]]:  # fmt: skip
    """Numerical3D's balance (module docstring, step 5): near-duplicates out, then equal quotas
    per question type filled round-robin over scenes. Returns the kept ``(scene_id,
    candidate)`` in scene order and counts (``duplicates`` removed, ``not_selected``)."""
    by_type: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    seen: set = set()
    dup = 0
    for sid in sorted(per_scene):
        cands = per_scene[sid]
        for i in rng.permutation(len(cands)):
            c = cands[i]
            key = _dedupe_key(sid, c)
            if key in seen:
                dup += 1
                continue
            seen.add(key)
            by_type[c["original"]["question_type"]][sid].append(c)
    total = sum(len(v) for t in by_type.values() for v in t.values())
    kept: list[tuple[str, dict[str, Any]]] = []
    if samples is None or samples >= total:
        kept = [(sid, c) for t in by_type.values() for sid, v in t.items() for c in v]
    else:
        avail = {t: sum(len(v) for v in s.values()) for t, s in by_type.items()}
        quota = {t: 0 for t in avail}
        left = samples
        while left > 0:  # water-filling: equal shares, leftovers to the types that still have some
            open_types = [t for t in sorted(avail) if quota[t] < avail[t]]
            if not open_types:
                break
            share = max(1, left // len(open_types))
            for t in open_types:
                add = min(share, avail[t] - quota[t], left)
                quota[t] += add
                left -= add
                if left == 0:
                    break
        for t in sorted(by_type):
            scenes = sorted(by_type[t])
            order = [scenes[i] for i in rng.permutation(len(scenes))]
            pos = {s: 0 for s in scenes}
            taken = 0
            while taken < quota[t]:
                progressed = False
                for s in order:
                    if taken >= quota[t]:
                        break
                    if pos[s] < len(by_type[t][s]):
                        kept.append((s, by_type[t][s][pos[s]]))
                        pos[s] += 1
                        taken += 1
                        progressed = True
                if not progressed:
                    break
    kept.sort(key=lambda sc: sc[0])
    return kept, {"duplicates": dup, "not_selected": total - len(kept)}


# --------------------------------------------------------------------------------------
# The build
# --------------------------------------------------------------------------------------


def _rows(sid: str, q: int, c: dict[str, Any], cfg: ScanBuildConfig, work: Path, ext: str) -> list[dict[str, Any]]:
    from spatialrl.world.questions import QASample
    from spatialrl.data.schema import make_row

    frames = c["frames"]
    tag = "f" + frames[0].replace(".", "_") if c["level"] == "frame" else "v"
    pair_id = f"{sid}-{tag}-q{q:04d}"
    out = []
    for view, key in (("original", "o"), ("mirror", "m")):
        if view == "mirror" and not cfg.mirror:
            continue
        s = dict(c[view])
        meta = s.pop("meta")
        sample = QASample(**s, meta=meta)
        images = [(work / "scenes" / sid / f"{f}-{key}.{ext}").read_bytes() for f in frames]
        scene_json = json.dumps({"source": cfg.source, "scene_id": sid, "frames": frames, "view": view})
        if c["level"] == "frame":
            row = make_row(sample, pair_id=pair_id, view=view, scene_id=sid, image_bytes=images[0],
                           scene_json=scene_json, source=cfg.source)  # fmt: skip
        else:
            row = make_row(sample, pair_id=pair_id, view=view, scene_id=sid, image_bytes=None, frames=images,
                           scene_json=scene_json, source=cfg.source)  # fmt: skip
        out.append(row)
    return out


def build_scans(out: str, cfg: ScanBuildConfig, *, workers: int = 1, overwrite: bool = False,
                progress: bool = True, shard_rows: int = 2000) -> dict[str, Any]:  # fmt: skip
    """Run the build (module docstring) into ``out``. Returns a summary: ``rows`` per split,
    ``seconds``, ``samples_per_second``, ``failed`` scenes."""
    from tqdm import tqdm

    from spatialrl.data.build import AtomicDir, SplitStats, _SplitWriter

    t0 = time.perf_counter()
    out_path = Path(out)
    if out_path.exists() and not overwrite:
        raise FileExistsError(f"--out {out} exists; pass --overwrite to replace it")
    work = out_path.with_name(out_path.name + ".partial")
    settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}
    settings["format_version"] = _FORMAT_VERSION
    marker = work / "settings.json"
    if work.exists():
        old = json.loads(marker.read_text()) if marker.is_file() else None
        if old != settings:
            raise ValueError(f"{work} holds an unfinished build with other settings; delete it to start over")
    else:
        (work / "scenes").mkdir(parents=True)
        (work / "failed").mkdir()
        marker.write_text(json.dumps(settings))
    scene_ids = _scene_list(cfg)
    if not scene_ids:
        raise ValueError(f"--root {cfg.root}: no {cfg.source} scene found (see docs/data.md for the layout)")
    todo = [(k, s) for k, s in enumerate(scene_ids)
            if not (work / "scenes" / f"{s}.jsonl").is_file() and not (work / "failed" / f"{s}.json").is_file()]  # fmt: skip
    bar = tqdm(total=len(scene_ids), initial=len(scene_ids) - len(todo), unit="scene", desc=f"{cfg.source} scenes",
               disable=not progress, file=sys.stderr)  # fmt: skip
    jobs = [(cfg, k, s, str(work)) for k, s in todo]
    if workers <= 1:
        results = map(_worker, jobs)
        pool = None
    else:
        pool = _pool(workers)
        results = pool.imap_unordered(_worker, jobs)
    try:
        for sid, _summary, error in results:
            if error is not None:
                tmp = work / "failed" / f".{sid}.tmp"
                tmp.write_text(json.dumps({"scene_id": sid, "error": error}))
                os.replace(tmp, work / "failed" / f"{sid}.json")
            bar.update(1)
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()

    failed = {p.stem: json.loads(p.read_text())["error"] for p in sorted((work / "failed").glob("*.json"))}
    per_scene: dict[str, list[dict[str, Any]]] = {}
    summaries: dict[str, dict[str, Any]] = {}
    for sid in scene_ids:
        p = work / "scenes" / f"{sid}.jsonl"
        if not p.is_file():
            continue
        lines = p.read_text(encoding="utf-8").splitlines()
        summaries[sid] = json.loads(lines[0])["summary"]
        per_scene[sid] = [json.loads(line) for line in lines[1:]]
    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(1 << 30,)))
    kept, dropped = select_candidates(per_scene, cfg.samples, rng)
    done = sorted(per_scene)
    n_test = round(len(done) * cfg.test_fraction)
    test = set(np.array(done)[np.random.default_rng(cfg.seed).permutation(len(done))[:n_test]].tolist()) if n_test else set()

    target = AtomicDir(out, overwrite)
    try:
        writers: dict[str, Any] = {}
        stats: dict[str, Any] = {}
        counter: Counter = Counter()
        for sid, c in kept:
            split = "test" if sid in test else "train"
            if split not in writers:
                writers[split] = _SplitWriter(target.tmp, split, "hf", shard_rows)
                stats[split] = SplitStats()
            rows = _rows(sid, counter[sid], c, cfg, work, summaries[sid]["ext"])
            counter[sid] += 1
            for r in rows:
                stats[split].add(r)
            writers[split].add(rows)
        files = {s: w.close() for s, w in writers.items() if w.count}
        if "train" not in files:
            raise RuntimeError(f"the build produced no training rows ({len(failed)} scene(s) failed: "
                               f"{'; '.join(list(failed.values())[:3])})")  # fmt: skip
        card = scan_card(cfg, settings, stats, summaries, failed, dropped, kept)
        (target.tmp / "README.md").write_text(card, encoding="utf-8")
        target.commit()
    except BaseException:
        target.abort()
        raise
    shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - t0
    rows = {s: st.rows for s, st in stats.items()}
    return {"out": str(target.out), "rows": rows, "seconds": seconds, "failed": failed,
            "samples_per_second": sum(rows.values()) / max(seconds, 1e-9)}  # fmt: skip


def scan_card(cfg: ScanBuildConfig, settings: dict[str, Any], stats: dict[str, Any], summaries: dict[str, Any],
              failed: dict[str, str], dropped: dict[str, int], kept: list) -> str:  # fmt: skip
    """The dataset card: YAML front matter, the command, the recipe, the pixel budget, counts."""
    import yaml

    from spatialrl import __version__
    from spatialrl.data.build import _table
    from spatialrl.data.load import pixel_budget_record
    from spatialrl.data.schema import QUESTION_TYPES, ROW_ANSWER_TYPE

    front = {"pretty_name": f"spatialrl Numerical3D-style QA from {cfg.source}", "language": ["en"],
             "task_categories": ["visual-question-answering"], "tags": ["spatial-reasoning", cfg.source, "rlvr", "mirror-pairs"],
             "spatialrl": pixel_budget_record(cfg.max_pixels)}  # fmt: skip
    flags = [f"--source {cfg.source}", f"--root {cfg.root}"]
    flags += [f"--scenes {cfg.scenes}"] if cfg.scenes else []
    flags += [f"--frames-per-scene {cfg.frames_per_scene}", f"--video-frames {cfg.video_frames}"]
    flags += [f"--samples {cfg.samples}"] if cfg.samples else []
    flags += [f"--max-pixels {cfg.max_pixels}"] if cfg.max_pixels else []
    flags += [f"--seed {cfg.seed}", f"--test-fraction {cfg.test_fraction}", f"--image-format {cfg.image_format}"]
    flags += [f"--question-types {','.join(cfg.types)}"] if cfg.types else []
    flags += [] if cfg.mirror else ["--no-mirror"]
    sizes = sorted({s for v in summaries.values() for s in v["image_sizes"]})
    lines = ["---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", "",
             f"# spatialrl Numerical3D-style QA from {cfg.source}\n",
             "Verifiable spatial questions computed from annotated real scans, each asked of the (levelled) frame "
             "and of its mirrored twin. Definitions: `docs/data.md` of spatialrl.\n",
             f"Generated by spatialrl {__version__}:\n", "```\nspatialrl data build --out DIR " + " ".join(flags) + "\n```\n",
             "## Pixel budget\n",
             f"max_pixels: `{cfg.max_pixels}` ({'source resolution kept' if not cfg.max_pixels else 'Qwen2.5-VL smart_resize'}); "
             f"stored frame sizes: {', '.join(sizes) or 'none'}. Give the processor the same `max_pixels`.\n",
             "## Recipe\n",
             f"Frames: {cfg.frames_per_scene} a scene for single-frame questions (stride, blur below the "
             f"{BLUR_QUANTILE:.0%} sharpness quantile dropped, best coverage per stretch), {cfg.video_frames} sampled "
             "uniformly for scene-level questions. Selection: near-duplicates removed "
             f"({dropped['duplicates']}), then {'all kept' if not cfg.samples else f'{cfg.samples} questions in equal quotas per type, round-robin over scenes'} "
             f"({dropped['not_selected']} not selected).\n",
             "## Settings\n", _table(["setting", "value"], [[k, f"`{v}`"] for k, v in settings.items()]) + "\n",
             "## Splits\n",
             _table(["split", "rows", "pairs", "scenes"], [[s, st.rows, len(st.pairs), len(st.scenes)] for s, st in stats.items()]) + "\n",
             "## Question types (rows)\n",
             _table(["question_type", "answer_type", *stats],
                    [[qt, ROW_ANSWER_TYPE[qt], *[stats[s].question_types[qt] for s in stats]] for qt in QUESTION_TYPES]) + "\n"]  # fmt: skip
    per_scene = Counter(sid for sid, _ in kept)
    lines += ["## Scenes\n", _table(["scene", "frames", "frames used", "objects", "candidates", "questions kept", "frames skipped"],
              [[sid, v["frames"], v["frames_used"], v["objects"], v["candidates"], per_scene[sid],
                ", ".join(f"{r}: {n}" for r, n in v["skipped_frames"].items()) or "-"] for sid, v in summaries.items()]) + "\n"]  # fmt: skip
    lines += [f"## Failed scenes ({len(failed)})\n"]
    lines += [_table(["scene", "error"], [[s, e.replace("|", "/")] for s, e in failed.items()]) + "\n"] if failed else ["None.\n"]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The scan flags of ``spatialrl data build`` (used with ``--source scannet|arkitscenes``)."""
    g = parser.add_argument_group("real scans (--source scannet | arkitscenes; docs/data.md)")
    g.add_argument("--source", choices=("synthetic", *SOURCES), default="synthetic",
                   help="synthetic world (default) or a real-scan dataset read from --root")
    g.add_argument("--root", metavar="DIR", help="ScanNet: the folder holding scans/; ARKitScenes: the 3dod folder")
    g.add_argument("--frames-per-scene", type=int, default=8, metavar="K", help="frames a scene asked about one at a time (default 8)")
    g.add_argument("--video-frames", type=int, default=16, metavar="K",
                   help="frames a scene-level question shows, sampled uniformly (default 16; 0: no scene-level questions)")
    g.add_argument("--samples", type=int, default=None, metavar="N", help="questions to keep, balanced over types and scenes (default: all)")
    g.add_argument("--max-pixels", type=int, default=None, metavar="P",
                   help="pixel budget of a stored frame (Qwen2.5-VL smart_resize; default: source resolution)")
    g.add_argument("--pixels-from", metavar="RECIPE",
                   help="take --max-pixels from a training recipe's max_pixels (configs/*.yaml), so that the budget "
                        "is declared once; a different --max-pixels is refused")
    g.add_argument("--image-format", choices=("png", "jpeg"), default="png", help="png (lossless, default) or jpeg")
    g.add_argument("--no-mirror", action="store_true", help="do not write the mirrored twins")


def run(args: argparse.Namespace) -> int:
    """``data build`` with ``--source scannet|arkitscenes``."""
    if not args.root:
        print(f"spatialrl data build: error: --source {args.source} needs --root DIR", file=sys.stderr)
        return 2
    try:
        cfg = ScanBuildConfig(
            source=args.source, root=args.root, scenes=args.scenes, frames_per_scene=args.frames_per_scene,
            video_frames=args.video_frames, samples=args.samples, max_pixels=args.max_pixels, seed=args.seed,
            test_fraction=args.test_fraction, types=args.question_types, image_format=args.image_format,
            mirror=not args.no_mirror,
        )  # fmt: skip
        summary = build_scans(args.out, cfg, workers=args.workers, overwrite=args.overwrite, progress=not args.quiet)
    except (FileExistsError, FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"spatialrl data build: error: {e}", file=sys.stderr)
        return 2
    rows = summary["rows"]
    print(f"wrote {sum(rows.values())} rows ({', '.join(f'{s} {n}' for s, n in rows.items())}) to {summary['out']} in "
          f"{summary['seconds']:.1f} s ({summary['samples_per_second']:.0f} samples/s); "
          f"{len(summary['failed'])} scene(s) failed (listed in the card)")  # fmt: skip
    return 0
