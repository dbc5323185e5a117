"""`spatialrl data vqasynth`: VQASynth dialogues become single-turn rows, and the SVQA-R1 data path
(vqasynth -> data mirror -> rewards) runs end to end with typed answers."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spatialrl.cli import main
from spatialrl.data.vqasynth_rows import VQASynthRowsError, dialogue_turns


def _png(seed: int, size=(6, 4)) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _turn(role: str, text: str, image: bool = False) -> dict:
    parts = [{"type": "image", "index": 0, "text": None}] if image else []
    return {"role": role, "content": parts + [{"type": "text", "index": None, "text": text}]}


DIALOGUES = [
    [_turn("user", "<image>How far is the chair from the table?", image=True),
     _turn("assistant", "The chair is 1.5 meters from the table."),
     _turn("user", "Is the lamp to the left of the sofa?"),
     _turn("assistant", "Yes, the lamp is to the left of the sofa.")],
    [{"role": "system", "content": [{"type": "text", "index": None, "text": "You are helpful."}]},
     _turn("user", "How many chairs are in the room?", image=True),
     _turn("assistant", "There are 3 chairs."),
     _turn("user", "Is there a window?"),
     _turn("assistant", "No.")],
]


def _write_vqasynth(path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"messages": d, "images": [{"bytes": _png(i), "path": f"img{i}.png"}]} for i, d in enumerate(DIALOGUES)]
    path.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path / "train-00000-of-00001.parquet")


def test_dialogue_turns_pairs_questions_with_answers():
    pairs, image = dialogue_turns("r", {"messages": DIALOGUES[1]})
    assert pairs == [("How many chairs are in the room?", "There are 3 chairs."), ("Is there a window?", "No.")]
    assert image == 0
    bad = [
        ({"messages": []}, "r: field 'messages' must be a non-empty list"),
        ({"messages": [_turn("assistant", "x")]}, "r: field 'messages'[0]: assistant turn without a question"),
        ({"messages": [_turn("user", "a"), _turn("user", "b")]}, "r: field 'messages'[1]: two user turns in a row"),
        ({"messages": [_turn("user", "a")]}, "the last user turn has no answer"),
        ({"messages": [_turn("user", "a"), _turn("assistant", " ")]}, "r: field 'messages'[1].content has no text"),
        ({"messages": [{"role": "bot", "content": "x"}]}, "r: field 'messages'[0].role"),
    ]
    # LLaVA's layout, which the benchmark reader always took, is read here too
    llava = {"conversations": [{"from": "human", "value": "<image>\nHow many chairs?"}, {"from": "gpt", "value": "3"}]}
    assert dialogue_turns("r", llava) == ([("How many chairs?", "3")], 0)
    for record, message in bad:
        with pytest.raises(VQASynthRowsError, match=message.replace("[", r"\[").replace("]", r"\]")):
            dialogue_turns("r", record)


def test_vqasynth_to_single_turn_to_mirror_to_reward(tmp_path, capsys):
    from datasets import load_dataset

    from spatialrl.rewards.schedules import SharpnessSchedule
    from spatialrl.rewards.trl import accuracy_reward

    src, rows_dir, mirrored = tmp_path / "vqasynth", tmp_path / "rows", tmp_path / "mirrored"
    _write_vqasynth(src)
    assert main(["data", "vqasynth", "--data", str(src), "--out", str(rows_dir)]) == 0
    assert "2 dialogues -> 4 single-turn rows" in capsys.readouterr().out
    rows = list(load_dataset(str(rows_dir), split="train", cache_dir=str(tmp_path / "c1")))
    assert [r["id"] for r in rows] == ["train-000000-t0", "train-000000-t1", "train-000001-t0", "train-000001-t1"]
    assert rows[0]["question"] == "How far is the chair from the table?"  # <image> token removed
    assert rows[3]["answer"] == "No." and rows[2]["dialogue"] == "train-000001" and rows[2]["turn"] == 0
    assert np.array_equal(np.asarray(rows[2]["image"]), np.asarray(Image.open(io.BytesIO(_png(1)))))
    assert main(["data", "vqasynth", "--data", str(src), "--out", str(rows_dir)]) == 2  # no silent overwrite

    assert main(["data", "mirror", "--data", str(rows_dir), "--out", str(mirrored), "--quiet"]) == 0
    out = list(load_dataset(str(mirrored), split="train", cache_dir=str(tmp_path / "c2")))
    assert len(out) == 8 and {r["pair_id"] for r in out} == {r["id"] for r in rows}
    by_id = {(r["pair_id"], r["view"]): r for r in out}
    distance = by_id["train-000000-t0", "mirror"]
    assert (distance["answer_type"], distance["answer_value"], distance["dimension"], distance["unit"]) == (
        "open_ended", 1.5, "length", "m")
    lamp = by_id["train-000000-t1", "mirror"]
    assert lamp["answer"] == "Yes, the lamp is to the right of the sofa." and lamp["answer_type"] == "open_ended"
    assert lamp["answer_value"] is None and lamp["options"] == [] and lamp["answer_index"] == -1 and lamp["bbox"] == []
    count = by_id["train-000001-t0", "original"]
    assert (count["answer_type"], count["answer_value"], count["dimension"]) == ("open_ended", 3.0, "count")
    window = by_id["train-000001-t1", "original"]
    assert (window["answer_type"], window["answer"]) == ("discrete", "no")

    # the SNRA accuracy reward reads these columns as GRPO passes them, and does not raise
    columns = {c: [r[c] for r in out] for c in ("answer_type", "answer", "answer_value", "dimension", "options",
                                                 "answer_index", "bbox")}
    truth = {"train-000000-t0": "1.5 m", "train-000001-t0": "3", "train-000001-t1": "no"}
    completions = [f"<think>.</think><answer>{truth.get(r['pair_id'], 'yes')}</answer>" for r in out]
    rewards = accuracy_reward(SharpnessSchedule("fixed", 10.0, 10.0))(completions=completions, **columns)
    for r, reward in zip(out, rewards):
        if r["pair_id"] in truth:
            assert reward == pytest.approx(1.0)
        else:  # a yes/no sentence: open-ended, whatever the accuracy reward makes of it
            assert reward is None or 0.0 <= reward <= 1.0


def test_vqasynth_bad_rows_name_file_row_and_field(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = tmp_path / "v"
    src.mkdir()
    rows = [{"messages": DIALOGUES[0], "images": [{"bytes": _png(0), "path": "a.png"}]},
            {"messages": DIALOGUES[0][:1], "images": [{"bytes": _png(0), "path": "a.png"}]}]
    pq.write_table(pa.Table.from_pylist(rows), src / "train-00000-of-00001.parquet")
    assert main(["data", "vqasynth", "--data", str(src), "--out", str(tmp_path / "o")]) == 2
    assert "train-00000-of-00001.parquet row 1: field 'messages': the last user turn has no answer" in capsys.readouterr().err
    assert main(["data", "vqasynth", "--data", str(src), "--out", str(tmp_path / "o"), "--skip-bad-rows"]) == 0
    summary = json.loads((tmp_path / "o" / "vqasynth_rows.json").read_text())
    assert summary["rows"] == 2 and summary["skipped_dialogues"] == 1


def test_a_truncated_parquet_is_an_error_naming_the_file(tmp_path, capsys):
    src = tmp_path / "src"
    _write_vqasynth(src)
    shard = src / "train-00000-of-00001.parquet"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    assert main(["data", "vqasynth", "--data", str(src), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and shard.name in err and "truncated" in err
