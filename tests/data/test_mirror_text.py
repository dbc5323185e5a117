"""Rule-based mirroring (SVQA-R1 sec. 3.1, appendix A), the LLM rewriter, and `data mirror`."""

from __future__ import annotations

import base64
import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from spatialrl.data.mirror_text import (
    REASONS,
    SVQA_R1_REWRITE_PROMPT,
    build_rewrite_messages,
    check_llm_rewrite,
    mirror_fields,
    parse_rewrite_reply,
    rewrite_text,
)
from tests.helpers.fake_openai import FakeOpenAI

W, H = 640, 480
SKIP = object()

# (input, expected mirrored text or (SKIP, reason), options)
RULES = [
    # left/right words (appendix A.1)
    ("Is the cup to the left of the plate?", "Is the cup to the right of the plate?", {}),
    ("left of the right chair", "right of the left chair", {}),  # simultaneous swap
    ("The LEFT chair is near the Right wall.", "The RIGHT chair is near the Left wall.", {}),
    ("Left.", "Right.", {}),
    ("right", "left", {}),
    ("Which is the leftmost object?", "Which is the rightmost object?", {}),
    ("The LEFTMOST cup and the rightmost bowl", "The RIGHTMOST cup and the leftmost bowl", {}),
    ("He holds it in his left-hand glove.", "He holds it in his right-hand glove.", {}),
    ("in the top-left corner", "in the top-right corner", {}),
    ("on the right side of the table", "on the left side of the table", {}),
    ("Is the dog left or right of the cat?", "Is the dog right or left of the cat?", {}),
    ("Objects from left to right: cup, bowl.", "Objects from right to left: cup, bowl.", {}),
    ("The cup is left of the plate.", "The cup is right of the plate.", {}),
    ("The lamp is right next to the bed, on the left.", "The lamp is right next to the bed, on the right.", {}),
    ("A right angle is formed on the left.", "A right angle is formed on the right.", {}),
    ("Keep it right side up.", "Keep it right side up.", {}),
    ("Is the man left-handed?", "Is the man right-handed?", {}),
    ("The cup is 2.5 meters to the left of 3 chairs.", "The cup is 2.5 meters to the right of 3 chairs.", {}),
    ("The answer is left.", "The answer is right.", {}),
    ("How many chairs are there? 4", "How many chairs are there? 4", {}),  # appendix A.3
    # rotation senses
    ("The fan spins clockwise.", "The fan spins counterclockwise.", {}),
    ("Turn it Counterclockwise.", "Turn it Clockwise.", {}),
    ("Rotate anti-clockwise, not clockwise.", "Rotate clockwise, not anti-clockwise.", {}),
    # clock directions: h -> 12 - h
    ("The car is at 3 o'clock.", "The car is at 9 o'clock.", {}),
    ("at 12 o'clock and at 6 o'clock", "at 12 o'clock and at 6 o'clock", {}),
    ("The bird is at 10 o’clock.", "The bird is at 2 o’clock.", {}),
    ("at 1:30 o'clock", "at 10:30 o'clock", {}),
    ("Three o'clock, left side", "Nine o'clock, right side", {}),
    # coordinates (appendix A.2)
    ("The box is [100, 50, 200, 150].", "The box is [440, 50, 540, 150].", {}),
    ("the left box [0, 0, 640.0, 10]", "the right box [0.0, 0, 640, 10]", {}),  # decimals follow the source
    ("bbox (0.1, 0.2, 0.4, 0.5)", "bbox (0.6, 0.2, 0.9, 0.5)", {"coords": "norm1"}),
    ('{"bbox_2d": [100, 200, 300, 400]}', '{"bbox_2d": [700, 200, 900, 400]}', {"coords": "norm1000"}),
    ("<|box_start|>(10,20),(30,40)<|box_end|>", "<|box_start|>(610,20),(630,40)<|box_end|>", {}),
    ("The point is at (40, 30).", "The point is at (600, 30).", {}),
    ("[100, 50, 20, 30]", "[520, 50, 20, 30]", {"box_format": "xywh"}),
    ("[700, 50, 900, 150]", "[100, 50, 300, 150]", {"coords": "auto"}),
    ("[0.25, 0.1, 0.5, 0.2]", "[0.5, 0.1, 0.75, 0.2]", {"coords": "auto"}),
    # left out, with the reason
    ("How many apples are left?", (SKIP, "left_not_direction"), {}),
    ("Is there any cake left over?", (SKIP, "left_not_direction"), {}),
    ("He left the room.", (SKIP, "left_not_direction"), {}),
    ("What is left of the cake?", (SKIP, "ambiguous_left_right"), {}),
    ("Is the dog right?", (SKIP, "ambiguous_left_right"), {}),
    ("Is this the right answer?", (SKIP, "right_not_direction"), {}),
    ("What does the sign on the left say?", (SKIP, "text_reading"), {}),
    ("What is written on the right mug?", (SKIP, "text_reading"), {}),
    ("Which building is on the east side?", (SKIP, "compass_direction"), {}),
    ("Is the boat's starboard side visible?", (SKIP, "nautical_side"), {}),
    ("What time does the clock show?", (SKIP, "clock_reading"), {}),
    ("[10, 20, 5, 40]", (SKIP, "invalid_box"), {}),
    ("[100, 50, 700, 150]", (SKIP, "box_out_of_bounds"), {}),
    ("[0.1, 0.2, 0.3, 0.4]", (SKIP, "box_looks_normalised"), {}),
    ("(1, 2, 3) meters", (SKIP, "unsupported_coordinates"), {}),
    ("[100, 50, 200, 150]", (SKIP, "ambiguous_box_coordinates"), {"coords": "auto"}),
    ("[1.5, 0.2, 1.9, 0.5]", (SKIP, "box_out_of_bounds"), {"coords": "norm1"}),
]


@pytest.mark.parametrize("text,expected,opts", RULES, ids=[r[0][:40] for r in RULES])
def test_rule_table(text, expected, opts):
    out = rewrite_text(text, width=W, height=H, **opts)
    if isinstance(expected, tuple):
        assert out.text is None and out.reason == expected[1], out
        assert out.reason in REASONS
    else:
        assert out.ok, out
        assert out.text == expected


def test_rule_table_size():
    assert len(RULES) >= 25
    assert sum(isinstance(r[1], tuple) for r in RULES) >= 10


@pytest.mark.parametrize(
    "text,opts",
    [(r[0], r[2]) for r in RULES if isinstance(r[1], str) and "anti" not in r[0] and r[2].get("coords") != "auto"],
)
def test_mirroring_twice_is_identity(text, opts):
    once = rewrite_text(text, width=W, height=H, **opts).text
    assert rewrite_text(once, width=W, height=H, **opts).text == text


PHRASES = [
    "the cup is on the left",
    "the bowl is to the right of the plate",
    "the leftmost chair",
    "3 chairs",
    "2.5 meters apart",
    "at 4 o'clock",
    "it turns clockwise",
    "right next to the lamp",
    "the box [10, 20, 30, 40]",
    "the Right-hand door",
]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(PHRASES), min_size=1, max_size=6))
def test_property_swap_is_involution_and_keeps_numbers(parts):
    text = ", ".join(parts) + "."
    once = rewrite_text(text, width=W, height=H)
    assert once.ok, once
    assert rewrite_text(once.text, width=W, height=H).text == text
    lower, new = text.lower(), once.text.lower()
    # each spatial left became right and vice versa ("right next to" is kept)
    assert new.count("left") == lower.count("right") - lower.count("right next")
    assert new.count("right") - new.count("right next") == lower.count("left")
    # distances and counts unchanged
    assert ("2.5 meters" in text) == ("2.5 meters" in once.text)


def test_mirror_fields_boxes_in_answer_and_column():
    row = {"question": "Where is the cup on the left?", "answer": "[10, 0, 20, 5]", "bbox": [[10, 0, 20, 5], [0, 0, 1, 1]]}
    out = mirror_fields(row, text_fields=["question", "answer"], coord_fields=["bbox"], width=100, height=50)
    assert out.ok and out.has_coords
    assert out.values == {"question": "Where is the cup on the right?", "answer": "[80, 0, 90, 5]", "bbox": [[80, 0, 90, 5], [99, 0, 100, 1]]}
    floats = mirror_fields({"a": [0.1, 0.2, 0.3, 0.4]}, text_fields=["a"], width=100, height=50, coords="norm1")
    assert floats.values == {"a": [0.7, 0.2, 0.9, 0.4]}
    bad = mirror_fields({"q": "left", "b": [5, 0, 1, 1]}, text_fields=["q"], coord_fields=["b"], width=100, height=50)
    assert bad.reason == "invalid_box"
    invariant = mirror_fields({"q": "How far apart?", "a": 2.5}, text_fields=["q", "a"], width=1, height=1)
    assert invariant.values == {"q": "How far apart?", "a": 2.5}


# ---------------------------------------------------------------------------------------
# LLM reply parsing and the rule check
# ---------------------------------------------------------------------------------------


def test_prompt_is_the_papers_and_fills_placeholders():
    assert SVQA_R1_REWRITE_PROMPT.startswith("You are a spatial reasoning assistant.")
    assert "verify the correctness of the left/right spatial relationship" in SVQA_R1_REWRITE_PROMPT
    msgs = build_rewrite_messages("Is {answer} left?", "Yes {question}")
    content = msgs[0]["content"]
    assert "Original question: Is {answer} left?. Original answer: Yes {question}." in content
    assert msgs[0]["role"] == "user"


@pytest.mark.parametrize(
    "reply,expected",
    [
        ('{"question": "Q?", "answer": "A"}', ("Q?", "A")),
        ('```json\n{"question": "Q?", "answer": "A"}\n```', ("Q?", "A")),
        ('Sure! {"rewritten_question": "Q?", "rewritten_answer": "A"} Hope it helps.', ("Q?", "A")),
        ('{"original_question": "x", "flipped_question": "Q?", "original_answer": "y", "flipped_answer": "A"}', ("Q?", "A")),
        ('{"flipped": {"question": "Q?", "answer": "A"}, "original": {"question": "x", "answer": "y"}}', ("Q?", "A")),
        ('{"Question": "Q?", "Answer": 3}', ("Q?", "3")),
        ('{"question": "Q?", "answer": [1, 2, 3, 4]}', ("Q?", "[1, 2, 3, 4]")),
        ('{"question": "Q?"}', None),
        ('{"question": "", "answer": "A"}', None),
        ("I cannot do that.", None),
        ('{"question": "Q?", "answer": "A"', None),
        ("[1, 2]", None),
        ("", None),
        (None, None),
        ('{"question_a": "Q1", "question_b": "Q2", "answer": "A"}', None),  # ambiguous keys
    ],
)
def test_parse_rewrite_reply(reply, expected):
    assert parse_rewrite_reply(reply) == expected


def test_check_llm_rewrite():
    assert check_llm_rewrite("Is the cup on the left?", "Is the cup positioned on the right?") is None
    assert check_llm_rewrite("Is the cup on the left?", "Is the cup on the left?") == "left_right_mismatch"
    assert check_llm_rewrite("left of the right chair", "left of the right chair") == "left_right_mismatch"
    assert check_llm_rewrite("It is 2 m to the left.", "It is 3 m to the right.") == "numbers_changed"
    assert check_llm_rewrite("At 3 o'clock, on the left.", "At 9 o'clock, on the right.") is None
    assert check_llm_rewrite("At 3 o'clock.", "At 3 o'clock.") == "numbers_changed"
    assert check_llm_rewrite("It spins clockwise.", "It spins counterclockwise.") is None
    assert check_llm_rewrite("On the left.", "On the right (after the flip).") == "mentions_flip"
    assert check_llm_rewrite("Right next to the left bed.", "Right next to the right bed.") is None


# ---------------------------------------------------------------------------------------
# End to end: `spatialrl data mirror`
# ---------------------------------------------------------------------------------------

SECRET = "sk-mirror-test-QQ9-DISTINCTIVE-41b7"


def _png(path: Path, w: int = 7, h: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return pixels


def _png_bytes(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, size=(4, 6, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _main(argv: list[str]) -> int:
    from spatialrl.cli import main

    return main(argv)


def _load(out: Path) -> list[dict]:
    import datasets

    # as a user would load it; a private cache keeps the machine's HF cache clean
    ds = datasets.load_dataset(str(out), split="train", cache_dir=str(out.parent / f".hf-cache-{out.name}"))
    return list(ds)


FIXTURE_ROWS = [
    {"id": "a", "image": "img/a.png", "question": "Is the red cube to the left of the blue ball?", "answer": "Yes, it is on the left."},
    {"id": "b", "image": "img/a.png", "question": "Where is the cup? Give [x1, y1, x2, y2].", "answer": "[1, 0, 3, 2]", "bbox": [1, 0, 3, 2]},
    {"id": "c", "image": "img/b.png", "question": "How many chairs are there?", "answer": "3"},
    {"id": "d", "image": "img/a.png", "question": "How many apples are left?", "answer": "2"},
    {"id": "e", "image": "img/a.png", "question": "What does the sign say?", "answer": "STOP"},
    {"id": "f", "image": "img/b.png", "question": "What is at 3 o'clock from the car?", "answer": "A tree, 4 meters away."},
    {"id": "g", "image": None, "question": "Is the mug on the right?", "answer": "No, it is on the left."},
    {"id": "h", "image": None, "question": "Which way does the wheel turn?", "answer": "Clockwise."},
]


@pytest.fixture
def fixture_dir(tmp_path):
    data = tmp_path / "data"
    a = _png(data / "img" / "a.png", seed=1)
    b = _png(data / "img" / "b.png", seed=2)
    rows = [dict(r) for r in FIXTURE_ROWS]
    rows[6]["image"] = "data:image/png;base64," + base64.b64encode(_png_bytes(3)).decode()
    rows[7]["image"] = {"bytes": base64.b64encode(_png_bytes(4)).decode(), "path": "wheel.png"}
    for r in rows:
        r.setdefault("bbox", None)
    _write_jsonl(data / "data.jsonl", rows)
    return data, {"a": a, "b": b}


def test_end_to_end_jsonl(fixture_dir, tmp_path, capsys):
    data, pixels = fixture_dir
    out = tmp_path / "out"
    rc = _main(["data", "mirror", "--data", str(data / "data.jsonl"), "--out", str(out), "--bbox-column", "bbox", "--quiet"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "mirrored 6 of 8 rows" in printed and "left_not_direction=1" in printed and "text_reading=1" in printed

    rows = _load(out)
    assert len(rows) == 12
    assert [r["view"] for r in rows] == ["original", "mirror"] * 6
    pairs = {}
    for r in rows:
        pairs.setdefault(r["pair_id"], {})[r["view"]] = r
    assert sorted(pairs) == ["a", "b", "c", "f", "g", "h"]

    a = pairs["a"]
    assert a["original"]["question"] == FIXTURE_ROWS[0]["question"]
    assert a["mirror"]["question"] == "Is the red cube to the right of the blue ball?"
    assert a["mirror"]["answer"] == "Yes, it is on the right."
    assert a["mirror"]["mirror_rewrite"] == "rules" and a["original"]["mirror_rewrite"] is None
    # the mirrored image is the exact horizontal flip
    assert np.array_equal(np.asarray(a["original"]["image"]), pixels["a"])
    assert np.array_equal(np.asarray(a["mirror"]["image"]), pixels["a"][:, ::-1])
    assert np.array_equal(np.asarray(pairs["c"]["mirror"]["image"]), pixels["b"][:, ::-1])

    b = pairs["b"]  # width 7: x1' = 7 - 3, x2' = 7 - 1
    assert b["mirror"]["answer"] == "[4, 0, 6, 2]"
    assert b["mirror"]["bbox"] == [4, 0, 6, 2] and b["original"]["bbox"] == [1, 0, 3, 2]
    assert b["mirror"]["question"] == FIXTURE_ROWS[1]["question"]
    assert pairs["c"]["mirror"]["answer"] == "3" and pairs["c"]["mirror"]["mirror_rewrite"] == "unchanged"
    assert pairs["f"]["mirror"]["question"] == "What is at 9 o'clock from the car?"
    assert pairs["f"]["mirror"]["answer"] == "A tree, 4 meters away."
    assert pairs["g"]["mirror"]["answer"] == "No, it is on the right."
    assert pairs["h"]["mirror"]["answer"] == "Counterclockwise."
    embedded = np.asarray(Image.open(io.BytesIO(_png_bytes(3))))
    assert np.array_equal(np.asarray(pairs["g"]["mirror"]["image"]), embedded[:, ::-1])

    report = json.loads((out / "mirror_report.json").read_text())
    assert report["rows_in"] == 8 and report["pairs"] == 6 and report["rows_out"] == 12
    assert report["skipped"] == {"left_not_direction": 1, "text_reading": 1}
    assert report["rewritten"] == 5 and report["unchanged"] == 1
    skipped = [json.loads(line) for line in (out / "skipped.jsonl").read_text().splitlines()]
    assert [(s["row"], s["reason"]) for s in skipped] == [("data.jsonl:4", "left_not_direction"), ("data.jsonl:5", "text_reading")]
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "configs:" not in card and "| `text_reading` | 1 |" in card

    # a second run needs --overwrite
    assert _main(["data", "mirror", "--data", str(data / "data.jsonl"), "--out", str(out), "--bbox-column", "bbox",
                  "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_bad_input_errors_name_file_line_and_field(tmp_path, capsys):
    data = tmp_path / "data"
    _png(data / "a.png")
    _png(tmp_path / "outside.png")
    good = {"image": "a.png", "question": "Left?", "answer": "Yes"}
    cases = [
        ([good, {"image": "a.png", "answer": "Yes"}], "data.jsonl:2: field 'question' missing"),
        ([good, good, {"image": "../outside.png", "question": "q", "answer": "a"}], "data.jsonl:3: field 'image': image path '../outside.png' is outside the data root"),
        ([{"image": "nope.png", "question": "q", "answer": "a"}], "data.jsonl:1: field 'image': image file 'nope.png' not found"),
        ([good, {"image": "a.png", "question": "q", "answer": None}], "data.jsonl:2: field 'answer' is null"),
    ]
    for rows, message in cases:
        _write_jsonl(data / "data.jsonl", rows)
        rc = _main(["data", "mirror", "--data", str(data / "data.jsonl"), "--out", str(tmp_path / "o"), "--quiet", "--overwrite"])
        assert rc == 2
        assert message in capsys.readouterr().err
    (data / "link.png").symlink_to(tmp_path / "outside.png")  # a link out of the root
    _write_jsonl(data / "data.jsonl", [{"image": "link.png", "question": "q", "answer": "a"}])
    assert _main(["data", "mirror", "--data", str(data / "data.jsonl"), "--out", str(tmp_path / "o"), "--quiet", "--overwrite"]) == 2
    assert "image path 'link.png' is outside the data root" in capsys.readouterr().err
    (data / "data.jsonl").write_text(json.dumps(good) + "\n{not json\n")
    assert _main(["data", "mirror", "--data", str(data / "data.jsonl"), "--out", str(tmp_path / "o"), "--quiet", "--overwrite"]) == 2
    assert "data.jsonl:2: invalid JSON" in capsys.readouterr().err

    # --skip-bad-rows counts them instead
    _write_jsonl(data / "data.jsonl", [good, {"image": "a.png", "answer": "x"}, {"image": "../outside.png", "question": "q", "answer": "a"}])
    out = tmp_path / "skipping"
    assert _main(["data", "mirror", "--data", str(data / "data.jsonl"), "--out", str(out), "--quiet", "--skip-bad-rows"]) == 0
    report = json.loads((out / "mirror_report.json").read_text())
    assert report["pairs"] == 1 and report["skipped"] == {"bad_row": 2}


def test_hugging_face_inputs(tmp_path):
    import datasets

    pixels = [np.random.default_rng(i).integers(0, 256, size=(5, 8, 3), dtype=np.uint8) for i in range(3)]
    ds = datasets.Dataset.from_dict(
        {
            "img": [Image.fromarray(p) for p in pixels],
            "q": ["Is the cat on the left?", "How many are left?", "Where is it? [0, 0, 2, 2]"],
            "a": ["yes", "2", "[0, 0, 2, 2]"],
        },
        features=datasets.Features({"img": datasets.Image(), "q": datasets.Value("string"), "a": datasets.Value("string")}),
    )
    saved = tmp_path / "saved"
    ds.save_to_disk(str(saved))
    layout = tmp_path / "layout"
    (layout / "data").mkdir(parents=True)
    ds.to_parquet(str(layout / "data" / "train-00000-of-00001.parquet"))
    for i, src in enumerate([saved, layout]):
        out = tmp_path / f"out{i}"
        args = ["data", "mirror", "--data", str(src), "--out", str(out), "--quiet", "--image-column", "img", "--question-column", "q", "--answer-column", "a"]
        assert _main(args) == 0
        rows = _load(out)
        assert len(rows) == 4
        assert rows[1]["q"] == "Is the cat on the right?" and rows[1]["pair_id"] == "00000000"
        assert rows[3]["a"] == "[6, 0, 8, 2]" and rows[3]["pair_id"] == "00000002"
        assert np.array_equal(np.asarray(rows[1]["img"]), pixels[0][:, ::-1])
        assert json.loads((out / "mirror_report.json").read_text())["skipped"] == {"left_not_direction": 1}
    assert _main(["data", "mirror", "--data", str(saved), "--out", str(tmp_path / "x"), "--quiet"]) == 2


# ---------------------------------------------------------------------------------------
# The LLM rewriter against a real HTTP server on 127.0.0.1
# ---------------------------------------------------------------------------------------


def reply_by_substring(replies: dict[str, str]):
    """The reply whose key is a substring of the prompt, else "no idea"."""
    return lambda body: next((r for k, r in replies.items() if k in body["messages"][0]["content"]), "no idea")


LLM_ROWS = [
    # accepted: a natural rewrite that passes the rule check
    {"image": "a.png", "question": "Is the red cube to the left of the blue ball?", "answer": "Yes, it is on the left."},
    # fails the check (nothing swapped): counted, rules used instead
    {"image": "a.png", "question": "Is the green cone on the right?", "answer": "No, it is on the left."},
    # malformed reply: counted, rules used instead
    {"image": "a.png", "question": "Is the lamp on the left?", "answer": "Yes."},
    # the rules cannot classify it; the LLM's rewrite passes the check and is used
    {"image": "a.png", "question": "Is the dog right?", "answer": "Yes."},
    # the rules cannot classify it and the LLM's rewrite fails the check: skipped
    {"image": "a.png", "question": "Is the cat right?", "answer": "Yes."},
    # boxes and unaffected rows are never sent
    {"image": "a.png", "question": "Where is the cup?", "answer": "[1, 0, 3, 2]"},
    {"image": "a.png", "question": "How many chairs?", "answer": "4"},
]
LLM_REPLIES = {
    "red cube": '```json\n{"question": "Is the red cube positioned to the right of the blue ball?", "answer": "Yes, it is on the right side."}\n```',
    "green cone": '{"question": "Is the green cone on the right?", "answer": "No, it is on the left."}',
    "lamp": "Sure! Here is the flipped version: the lamp is on the right.",
    "dog": '{"rewritten_question": "Is the dog on the left?", "rewritten_answer": "Yes."}',
    "cat": '{"question": "Is the cat right?", "answer": "Yes."}',
}


def test_llm_rewriter_end_to_end(tmp_path, monkeypatch, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    data = tmp_path / "data"
    pixels = _png(data / "a.png")
    _write_jsonl(data / "data.jsonl", LLM_ROWS)
    monkeypatch.setenv("MIRROR_TEST_KEY", SECRET)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    cache = tmp_path / "cache"

    def args(out: Path, url: str) -> list[str]:
        return [
            "data", "mirror", "--data", str(data / "data.jsonl"), "--out", str(out), "--quiet",
            "--llm", "--base-url", url, "--model", "fake-gpt", "--api-key-env", "MIRROR_TEST_KEY",
            "--llm-cache", str(cache), "--llm-backoff", "0", "--llm-retries", "2", "--llm-timeout", "5",
        ]

    with FakeOpenAI(reply_by_substring(LLM_REPLIES), statuses=[500]) as server:
        assert _main(args(tmp_path / "out1", server.base_url)) == 0
        first = len(server.requests)
    assert first == 5 + 1  # five eligible rows, one transient 500 retried
    for body in server.requests:
        assert body["model"] == "fake-gpt" and body["temperature"] == 0.0
        assert body["messages"][0]["content"].startswith("You are a spatial reasoning assistant.")

    rows = _load(tmp_path / "out1")
    mirrors = {r["pair_id"]: r for r in rows if r["view"] == "mirror"}
    assert sorted(mirrors) == ["00000000", "00000001", "00000002", "00000003", "00000005", "00000006"]
    assert mirrors["00000000"]["question"] == "Is the red cube positioned to the right of the blue ball?"
    assert mirrors["00000000"]["mirror_rewrite"] == "llm"
    assert mirrors["00000001"]["answer"] == "No, it is on the right."  # rule fallback
    assert mirrors["00000001"]["mirror_rewrite"] == "rules"
    assert mirrors["00000002"]["question"] == "Is the lamp on the right?"
    assert mirrors["00000003"]["question"] == "Is the dog on the left?"
    assert mirrors["00000005"]["answer"] == "[4, 0, 6, 2]"
    assert np.array_equal(np.asarray(mirrors["00000003"]["image"]), pixels[:, ::-1])

    report = json.loads((tmp_path / "out1" / "mirror_report.json").read_text())
    assert report["skipped"] == {"ambiguous_left_right": 1}
    assert report["by_method"] == {"llm": 2, "rules": 3, "unchanged": 1}
    outcomes = report["llm"]["outcomes"]
    assert outcomes["accepted"] == 2 and outcomes["malformed_reply"] == 1
    assert outcomes["rejected_left_right_mismatch"] == 2 and outcomes["fallback_rules"] == 2
    assert report["llm"]["client"]["retries"] == 1

    # a rerun makes zero requests: every reply comes from the cache
    with FakeOpenAI(reply_by_substring(LLM_REPLIES)) as server:
        assert _main(args(tmp_path / "out2", server.base_url)) == 0
        assert server.requests == []
    again = json.loads((tmp_path / "out2" / "mirror_report.json").read_text())
    assert again["llm"]["client"]["cache_hits"] == 5 and again["llm"]["client"]["requests"] == 0
    assert [r["question"] for r in _load(tmp_path / "out2")] == [r["question"] for r in rows]

    # the key is in no output file, cache entry, printed line or log record
    captured = capsys.readouterr()
    for path in [*(tmp_path / "out1").rglob("*"), *(tmp_path / "out2").rglob("*"), *cache.rglob("*")]:
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in captured.out + captured.err + caplog.text


def test_llm_unreachable_falls_back_to_rules(tmp_path, monkeypatch):
    data = tmp_path / "data"
    _png(data / "a.png")
    _write_jsonl(data / "data.jsonl", LLM_ROWS[:4])
    with FakeOpenAI(reply_by_substring({})) as server:
        url = server.base_url  # closed after this block: connections are refused
    monkeypatch.setenv("MIRROR_TEST_KEY", SECRET)
    out = tmp_path / "out"
    rc = _main([
        "data", "mirror", "--data", str(data / "data.jsonl"), "--out", str(out), "--quiet", "--llm",
        "--base-url", url, "--model", "m", "--api-key-env", "MIRROR_TEST_KEY", "--llm-cache", str(tmp_path / "c"),
        "--llm-retries", "1", "--llm-backoff", "0", "--llm-timeout", "2",
    ])
    assert rc == 0
    report = json.loads((out / "mirror_report.json").read_text())
    assert report["by_method"] == {"rules": 3}
    assert report["skipped"] == {"ambiguous_left_right": 1}
    assert report["llm"]["outcomes"]["transport_error"] == 4


def test_report_url_drops_credentials():
    from spatialrl.data.mirror_text.output import safe_url

    assert safe_url("http://user:pw@127.0.0.1:8000/v1?api_key=x") == "http://127.0.0.1:8000/v1"


def test_llm_needs_a_model(tmp_path, capsys):
    data = tmp_path / "data"
    _png(data / "a.png")
    _write_jsonl(data / "data.jsonl", LLM_ROWS[:1])
    assert _main(["data", "mirror", "--data", str(data / "data.jsonl"), "--out", str(tmp_path / "o"), "--llm", "--base-url", "http://127.0.0.1:9/v1"]) == 2
    assert "--model" in capsys.readouterr().err


def test_mirror_output_has_typed_answers_the_accuracy_reward_reads(fixture_dir, tmp_path):
    from spatialrl.rewards.schedules import SharpnessSchedule
    from spatialrl.rewards.trl import accuracy_reward

    data, _ = fixture_dir
    out = tmp_path / "out"
    assert _main(["data", "mirror", "--data", str(data / "data.jsonl"), "--out", str(out), "--bbox-column", "bbox",
                  "--quiet"]) == 0
    rows = {(r["pair_id"], r["view"]): r for r in _load(out)}
    box = rows["b", "mirror"]  # the mirrored view's box, flipped with the image (width 7)
    assert (box["answer_type"], box["bbox"]) == ("grounding", [4.0, 0.0, 6.0, 2.0])
    assert rows["b", "original"]["bbox"] == [1.0, 0.0, 3.0, 2.0]
    count = rows["c", "mirror"]
    assert (count["answer_type"], count["answer_value"], count["dimension"], count["unit"]) == ("open_ended", 3.0, "count", "")
    left = rows["a", "mirror"]  # a yes/no sentence stays the semantic reward's reference
    assert (left["answer_type"], left["answer_value"], left["dimension"], left["bbox"]) == ("open_ended", None, None, [])
    assert all(r["options"] == [] and r["answer_index"] == -1 for r in rows.values())
    ordered = list(rows.values())
    columns = {c: [r[c] for r in ordered] for c in ("answer_type", "answer", "answer_value", "dimension", "options",
                                                     "answer_index", "bbox")}
    verifiable = {"b", "c"}  # a box and a count; "a"'s sentence has no verifiable value
    completions = [f"<think>.</think><answer>{r['answer'] if r['pair_id'] != 'b' else r['bbox']}</answer>" for r in ordered]
    rewards = accuracy_reward(SharpnessSchedule("fixed", 10.0, 10.0))(completions=completions, **columns)
    for r, reward in zip(ordered, rewards):
        if r["pair_id"] in verifiable:
            assert reward == pytest.approx(1.0), r["pair_id"]


def test_a_non_finite_box_is_an_error_naming_the_record_and_field(tmp_path, capsys):
    data = tmp_path / "data"
    _png(data / "a.png")
    good = {"id": "g", "image": "a.png", "question": "Where is the cup?", "answer": "[1, 0, 3, 2]", "bbox": [1, 0, 3, 2]}
    bad = {**good, "id": "n", "bbox": [1, float("nan"), 3, 2]}
    _write_jsonl(data / "data.jsonl", [good, bad])  # json writes NaN, json.loads reads it back
    args = ["data", "mirror", "--data", str(data / "data.jsonl"), "--bbox-column", "bbox", "--quiet"]
    assert _main(args + ["--out", str(tmp_path / "o")]) == 2
    assert "data.jsonl:2: field 'bbox': non-finite number nan in the coordinates" in capsys.readouterr().err
    assert _main(args + ["--out", str(tmp_path / "skipping"), "--skip-bad-rows"]) == 0
    report = json.loads((tmp_path / "skipping" / "mirror_report.json").read_text())
    assert report["pairs"] == 1 and report["skipped"] == {"bad_row": 1}


def test_input_columns_named_like_the_typed_ones_are_kept_and_any_answer_column_gives_the_reference(tmp_path, capsys):
    """An input 'options' column used to be refused; it is kept as 'input_options'. With
    --answer-column NAME the canonical reference still lands in 'answer', which the rewards read."""
    data = tmp_path / "data"
    _png(data / "a.png")
    rows = [{"id": "y", "image": "a.png", "question": "Is the cup on the left?", "resp": "Yes.", "options": ["x", "y"]}]
    _write_jsonl(data / "data.jsonl", rows)
    out = tmp_path / "out"
    assert _main(["data", "mirror", "--data", str(data / "data.jsonl"), "--out", str(out), "--answer-column", "resp",
                  "--quiet"]) == 0
    assert "kept as input_options" in capsys.readouterr().err
    by_view = {r["view"]: r for r in _load(out)}
    original = by_view["original"]
    assert original["input_options"] == ["x", "y"] and original["options"] == []
    assert (original["answer_type"], original["answer"], original["resp"]) == ("discrete", "yes", "Yes.")
