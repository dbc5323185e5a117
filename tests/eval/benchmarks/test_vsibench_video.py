"""VSI-Bench from its videos: frames sampled with PyAV at the official indices, `eval run` end to end.

The videos are written here with PyAV (64x48 libx264). Each frame carries its index as a 6-bit
barcode of black and white vertical stripes, which survives lossy compression, so a sampled
frame tells which frame of the video it was. The layout is VSI-Bench's: the test parquet with
the official columns and ``<root>/<dataset>/<scene_name>.mp4``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spatialrl.eval.benchmarks import BenchmarkDataError, get_benchmark
from spatialrl.data.video import VideoError, VideoFrames, frame_indices, sample_frames
from tests.eval.benchmarks.test_vsibench import SCHEMA  # the published parquet's columns and types

WIDTH, HEIGHT, BITS = 64, 48, 6
STRIPE = WIDTH // BITS  # 10 px per bit, the last 4 px unused


def write_video(path: Path, n: int, fmt: str | None = None) -> Path:
    """An ``n``-frame video whose frame ``i`` shows ``i`` in binary (stripe ``b`` white = bit ``b``)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(n):
            image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
            for bit in range(BITS):
                if i >> bit & 1:
                    image[:, bit * STRIPE:(bit + 1) * STRIPE] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def frame_number(image) -> int:
    pixels = np.asarray(image.convert("L"), dtype=float)
    return sum(1 << bit for bit in range(BITS)
               if pixels[:, bit * STRIPE + 2:(bit + 1) * STRIPE - 2].mean() > 128)


def write_layout(root: Path, scenes: dict[tuple[str, str], int], missing: tuple[str, str] | None = None,
                 interleave: bool = False) -> Path:
    """The official layout: test parquet (two questions per scene) and one video per scene."""
    records = []
    for k, ((dataset, scene), n) in enumerate(scenes.items()):
        if (dataset, scene) != missing:
            write_video(root / dataset / f"{scene}.mp4", n)
        records.append({"id": 2 * k, "dataset": dataset, "scene_name": scene, "question_type": "object_counting",
                        "question": "How many chair(s) are in this room?", "ground_truth": "2", "options": None})
        records.append({"id": 2 * k + 1, "dataset": dataset, "scene_name": scene,
                        "question_type": "object_rel_distance", "question": "Which is closest to the bed?",
                        "ground_truth": "B", "options": ["A. sofa", "B. lamp", "C. table"]})
    if interleave:  # scenes mixed, as a file need not group them
        records = records[0::2] + records[1::2]
    pq.write_table(pa.Table.from_pylist(records, schema=SCHEMA), root / "test-00000-of-00001.parquet")
    return root


def test_official_indices_by_frame_content(tmp_path):
    video = write_video(tmp_path / "v.mp4", 37)
    for n in (1, 4, 8, 32):
        frames = sample_frames(video, n)
        expected = np.linspace(0, 36, n, dtype=int).tolist()  # llava_onevision.py::load_video
        assert [frame_number(im) for im in frames] == expected == frame_indices(37, n)
        assert all(im.mode == "RGB" and im.size == (WIDTH, HEIGHT) for im in frames)
    # Shorter than n: linspace with dtype=int repeats frames, as the official decord path does.
    short = write_video(tmp_path / "short.mp4", 5)
    assert [frame_number(im) for im in sample_frames(short, 8)] == [0, 0, 1, 1, 2, 2, 3, 4]
    # A container that does not state its frame count (Matroska): counted by decoding.
    mkv = write_video(tmp_path / "v.mkv", 23, fmt="matroska")
    assert [frame_number(im) for im in sample_frames(mkv, 6)] == [0, 4, 8, 13, 17, 22]


def test_video_errors_name_the_file_and_item(tmp_path):
    with pytest.raises(VideoError, match=r"nope\.mp4 \(item '7'\): video not found"):
        sample_frames(tmp_path / "nope.mp4", 4, item_id="7")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    with pytest.raises(VideoError, match=r"junk\.mp4 \(item 'x'\): not a readable video"):
        list(VideoFrames(junk, 4, "x"))
    with pytest.raises(ValueError, match="num_frames must be >= 1"):
        sample_frames(junk, 0)


def test_load_gives_lazy_frames_and_checks_videos(tmp_path):
    root = write_layout(tmp_path / "vsi", {("scannet", "scene0001_00"): 30, ("arkitscenes", "41069025"): 12})
    bench = get_benchmark("vsibench")
    plain = bench.load(root)  # scoring: the path, nothing opened
    assert plain[0].images == [str(root / "scannet" / "scene0001_00.mp4")]
    items = bench.load(root, num_frames=4)
    frames = items[2].images
    assert isinstance(frames, VideoFrames) and len(frames) == 4 and frames.item_id == "2"
    assert [frame_number(im) for im in frames] == [0, 3, 7, 11]
    assert bench.load(root, num_frames=4, with_images=False)[0].images == plain[0].images

    gone = write_layout(tmp_path / "gone", {("scannet", "scene0001_00"): 8, ("scannetpp", "abc123"): 8},
                        missing=("scannetpp", "abc123"))
    assert len(bench.load(gone)) == 4  # scoring needs no video
    with pytest.raises(BenchmarkDataError, match=r"row 2 \(id 2\).*scannetpp/abc123\.mp4, which does not exist"):
        bench.load(gone, num_frames=4)


def test_eval_run_scores_vsibench_from_videos(tmp_path, capsys, monkeypatch):
    import spatialrl.eval.runner as runner
    from spatialrl.cli import main
    from spatialrl.models.tiny import build_tiny_model

    seen: list[list[int]] = []  # the frames each prompt reached the model with

    def spy(model, processor, texts, images, *args, **kwargs):
        seen.extend([frame_number(im) for im in item] for item in images)
        return generate_batch(model, processor, texts, images, *args, **kwargs)

    generate_batch = runner.generate_batch
    monkeypatch.setattr(runner, "generate_batch", spy)

    model = tmp_path / "tiny"
    build_tiny_model(model, "tiny", seed=0, corpus_scenes=2)
    root = write_layout(tmp_path / "vsi", {("scannet", "scene0001_00"): 30, ("arkitscenes", "41069025"): 12},
                        interleave=True)
    out = tmp_path / "out"

    def argv(frames: str, *extra: str) -> list[str]:
        return ["eval", "run", "--model", str(model), "--benchmark", "vsibench", "--data", str(root), "--out",
                str(out), "--num-frames", frames, "--batch-size", "2", "--max-new-tokens", "3", "--threads", "1",
                "--no-progress", *extra]

    assert main(argv("4")) == 0
    assert "vsibench overall" in capsys.readouterr().out
    predictions = [json.loads(line) for line in (out / "tiny" / "predictions.jsonl").read_text().splitlines()]
    assert sorted(p["id"] for p in predictions) == ["0", "1", "2", "3"]
    # linspace(0, total - 1, 4, dtype=int); the questions of one video generated together (each
    # video decoded once), whatever the file's order
    assert seen == [[0, 3, 7, 11]] * 2 + [[0, 9, 19, 29]] * 2
    scores = json.loads((out / "tiny" / "scores.json").read_text())
    assert scores["counts"]["scored"] == 4 and set(scores["per_type"]) == {"object_counting", "object_rel_distance"}
    assert scores["run"]["num_frames"] == 4 and "linspace" in scores["run"]["frame_sampling"]
    assert json.loads((out / "tiny" / "run.json").read_text())["num_frames"] == 4

    # Resuming with another frame count would mix two evaluations in one file: refused.
    assert main(argv("8")) == 2
    assert "(num_frames: 4 before, 8 now)" in capsys.readouterr().err
    # A video that disappears after loading fails the run with its name and the item's id.
    (root / "arkitscenes" / "41069025.mp4").write_bytes(b"\0" * 64)
    assert main(argv("4", "--overwrite")) == 2
    assert "41069025.mp4 (item '2'): not a readable video" in capsys.readouterr().err
    # A benchmark without videos refuses the option.
    assert main(["eval", "run", "--model", str(model), "--benchmark", "cvbench", "--data", str(root),
                 "--out", str(out), "--num-frames", "4"]) == 2
    assert "--num-frames: cvbench has no videos" in capsys.readouterr().err
