"""VQASynth / OpenSpaces open-ended spatial VQA: dialogue splitting, appendix-B typing, Table 4 metrics.

The fixture is written in the published format (HF parquet: ``messages`` = list of
{role, content: [{index, text, type}]}, ``images`` = list of image structs) by ``write_vqasynth``.
"""

from __future__ import annotations

import io
import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from spatialrl.cli import main as cli_main
from spatialrl.eval.benchmarks import (
    BenchmarkDataError,
    get_benchmark,
    score_predictions,
)
from spatialrl.eval.benchmarks.vqasynth import (
    OpenSpacesBench,
    VQASynthBench,
    answer_text,
    task_type,
    yes_no_polarity,
)
from spatialrl.eval.judge import Judge
from spatialrl.rewards.semantic import SemanticScorer

PART = pa.struct([("index", pa.int64()), ("text", pa.string()), ("type", pa.string())])
SCHEMA = pa.schema([
    ("messages", pa.list_(pa.struct([("content", pa.list_(PART)), ("role", pa.string())]))),
    ("images", pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))),
])

DIALOGUES = [
    [  # row 0
        ("What is the distance between the chair and the table?", "The chair is 1.5 meters from the table."),
        ("Is the chair to the left of the table from the viewer's perspective?",
         "Yes, the chair is to the left of the table."),
        ("Please provide the bounding box coordinate of the region this sentence describes: chair",
         "[0.1, 0.2, 0.5, 0.6]"),
    ],
    [  # row 1
        ("Is the lamp above the sofa?", "No, the lamp is not above the sofa."),
        ("How far is the lamp from the sofa?", "They are 80 centimeters apart."),
        ("What color is the sofa?", "The sofa is red."),
        ("Where is the lamp?", "[10, 10, 50, 40]"),
    ],
]
PREDICTIONS = {
    "test/0/0": "<think>the chair is near</think><answer>The chair is 1 meter from the table.</answer>",
    "test/0/1": "<answer>Yes</answer>",
    "test/0/2": "<answer>[10, 10, 50, 30]</answer>",
    "test/1/0": "<answer>Yes, it is above.</answer>",
    "test/1/1": "<answer>about 2 m</answer>",
    # test/1/2 missing
    "test/1/3": "<answer>[30, 10, 70, 40]</answer>",
    "test/9/0": "<answer>unknown id</answer>",
}


def _png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (0, 90, 200)).save(buf, format="PNG")
    return buf.getvalue()


def _messages(pairs):
    out = []
    for k, (q, a) in enumerate(pairs):
        parts = ([{"index": 0, "text": None, "type": "image"}] if k == 0 else []) + [
            {"index": None, "text": q, "type": "text"}]
        out.append({"content": parts, "role": "user"})
        out.append({"content": [{"index": None, "text": a, "type": "text"}], "role": "assistant"})
    return out


def write_vqasynth(root, dialogues=DIALOGUES, split="test"):
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    rows = [{"messages": _messages(d), "images": [{"bytes": _png(100, 50), "path": None}]} for d in dialogues]
    path = data / f"{split}-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), path)
    return path


@pytest.fixture(scope="module")
def scorer():
    s = SemanticScorer()
    s.embed(["warm up"])  # load all-MiniLM-L6-v2 once for the module
    return s


@pytest.fixture
def data_dir(tmp_path):
    write_vqasynth(tmp_path / "vqa")
    write_vqasynth(tmp_path / "vqa", [[("Train question?", "Train answer.")]], split="train")  # ignored
    return tmp_path / "vqa"


def test_typing_rules():
    # appendix B keyword lists, case-insensitive, whole words
    assert task_type("HOW FAR is the lamp?", "2 m") == "distance"
    assert task_type("Which is closer, the A or the B?", "The A.") == "other"  # no length in the truth
    assert task_type("Is the A closer to camera compared to the B?", "Yes.") == "yes_no"
    assert task_type("Draw a box around the cup.", "(1,2),(3,4)") == "bbox"
    assert task_type("Where is the cup?", "On the table.") == "other"  # no box in the truth
    assert task_type("How wide is the A?", "It is 0.5 m.") == "other"  # 'it is' but a number
    assert task_type("Can you confirm it?", "I don't think so.") == "yes_no"
    assert task_type("Can you confirm it?", "I don\u2019t think so.") == "yes_no"  # curly apostrophe
    assert task_type("Describe it.", "Nothing known.") == "other"  # 'no' inside 'nothing' is no match
    assert yes_no_polarity("That is True.") is True
    assert yes_no_polarity("Incorrect, the A is not on the left.") is False  # alias 'not'
    assert yes_no_polarity("Indeed, the A is above.") is True  # alias 'indeed'
    assert yes_no_polarity("The A is red.") is None
    assert answer_text("<think>hmm</think> It is brown.") == "It is brown."
    assert answer_text("<think>x</think><answer>A</answer>") == "A"
    assert answer_text(None) is None


def test_load_splits_dialogues(data_dir):
    items = VQASynthBench().load(data_dir)
    assert [it.id for it in items] == ["test/0/0", "test/0/1", "test/0/2", "test/1/0", "test/1/1", "test/1/2", "test/1/3"]
    assert [it.question_type for it in items] == ["distance", "yes_no", "bbox", "yes_no", "distance", "other", "bbox"]
    assert items[1].prompt == "Is the chair to the left of the table from the viewer's perspective?"
    assert items[1].answer == "Yes, the chair is to the left of the table."
    assert items[4].images[0].size == (100, 50) and items[4].meta["image_size"] == (100, 50)
    bench = VQASynthBench()
    assert bench.prompt(items[0], "original").endswith("output the final answer in <answer> </answer> tags.")
    # a single file of the train split is read when given explicitly
    train = VQASynthBench().load(data_dir / "data" / "train-00000-of-00001.parquet")
    assert [it.id for it in train] == ["train/0/0"]


def test_llava_conversations_jsonl(tmp_path):
    path = tmp_path / "test.jsonl"
    row = {"image": "img/1.jpg", "conversations": [
        {"from": "human", "value": "<image>\nHow far is the door from the bed?"},
        {"from": "gpt", "value": "About 3 feet."},
        {"from": "human", "value": "Is the bed red?"},
        {"from": "gpt", "value": "No."},
    ]}
    path.write_text(json.dumps(row) + "\n")
    items = get_benchmark("openspaces").load(path)
    assert [(it.id, it.prompt, it.answer, it.question_type) for it in items] == [
        ("test/0/0", "How far is the door from the bed?", "About 3 feet.", "distance"),
        ("test/0/1", "Is the bed red?", "No.", "yes_no"),
    ]
    assert items[0].images == ["img/1.jpg"]


def test_scores_hand_computed(data_dir, scorer, monkeypatch):
    monkeypatch.delenv("SPATIALRL_JUDGE_MODEL", raising=False)
    bench = VQASynthBench(scorer=scorer)
    items = bench.load(data_dir)
    preds = {k: {"prediction": v} for k, v in PREDICTIONS.items()}
    report = score_predictions(bench, items, preds)
    m = report["metrics"]

    # sBERT: cosine of the answer text with the truth, 0 for the missing item; overall = mean of 7
    answers = [answer_text(PREDICTIONS.get(it.id)) for it in items]
    sims = scorer.similarity(answers, [it.answer for it in items])
    assert sims[5] == 0.0
    assert report["overall"] == pytest.approx(100 * sims.mean())
    assert m["sbert"] == pytest.approx(100 * sims.mean())
    assert report["per_type"]["bbox"] == pytest.approx(100 * (sims[2] + sims[6]) / 2)
    assert report["per_type"]["other"] == 0.0
    assert report["counts"]["per_type"] == {"bbox": 2, "distance": 2, "other": 1, "yes_no": 2}
    assert m["counts"] == {"bbox": 2, "yes_no": 2, "distance": 2, "other": 1}

    # BLEU (sacrebleu 13a tokens). Clipped unigram matches / hypothesis tokens per item:
    #  7/9 (The chair is from the table .), 1/1 (Yes), 5/9 ([ , , , ]), 4/6 (, is above .), 0/3, 0/0 (missing),
    #  7/9 ([ , 10 , , 40 ]) -> p1 = 24/37; hypothesis length c = 37, reference length r = 60
    #  -> BP = exp(1 - 60/37). Bigrams: 5/8, 0/0, 0/8, 0/5, 0/2, 0/0, 4/8 -> p2 = 9/31.
    bp = math.exp(1 - 60 / 37)
    assert m["bleu1"] == pytest.approx(100 * bp * 24 / 37)
    assert m["bleu2"] == pytest.approx(100 * bp * math.sqrt(24 / 37 * 9 / 31))

    # bbox: test/0/2 pixel box / (100, 50) = (0.1, 0.2, 0.5, 0.6) -> IoU 1; test/1/3 (pixels, both):
    # intersection 20 x 30 = 600, union 1200 + 1200 - 600 = 1800 -> IoU 1/3
    assert m["bbox_miou"] == pytest.approx(100 * (1 + 1 / 3) / 2)
    assert m["bbox_acc_0.75"] == pytest.approx(50.0)
    # yes/no: test/0/1 Yes == Yes; test/1/0 'Yes, it is above.' vs 'No, ...' -> 1/2
    assert m["yes_no_acc"] == pytest.approx(50.0)
    # distance: 1.0 m in [0.75, 3.0] ok; 2 m not in [0.4, 1.6] -> 1/2
    assert m["distance_acc"] == pytest.approx(50.0)
    assert "llm" not in m  # no judge configured
    assert report["missing_ids"] == ["test/1/2"] and report["unknown_ids"] == ["test/9/0"]

    # the batched path (prepare) gives the same per-item scores
    batched = VQASynthBench(scorer=scorer)
    batched.prepare(items, [PREDICTIONS.get(it.id) for it in items])
    assert [batched.score_item(it, PREDICTIONS.get(it.id)).score for it in items] == pytest.approx(list(sims))


class FakeChat:
    """Stands in for ChatClient: replies by prompt content; one request raises (a failed call)."""

    model = "fake-judge"

    def __init__(self):
        self.prompts: list[str] = []

    def chat(self, messages, **params):
        prompt = messages[0]["content"]
        self.prompts.append(prompt)
        assert params == {"temperature": 0.0, "max_tokens": 16}
        if prompt.startswith("You are an evaluator. Given a Yes/No question"):
            return "1" if "ground-truth answer: Yes, the chair" in prompt else "0"
        if "Question: Where is the lamp?" in prompt:
            raise RuntimeError("connection refused")
        if "Question: How far is the lamp" in prompt:
            return "maybe"
        if "Question: What is the distance" in prompt or "Question: Is the chair to the left" in prompt:
            return "**1**"
        return "0"


def test_llm_judge_metrics(data_dir, scorer):
    client = FakeChat()
    bench = VQASynthBench(judge=Judge(client, workers=2), scorer=scorer)
    items = bench.load(data_dir)
    report = score_predictions(bench, items, {k: {"prediction": v} for k, v in PREDICTIONS.items()})
    m = report["metrics"]
    # open judgement on the 6 answered items: 0/0 -> 1, 0/1 -> 1, 0/2 -> 0, 1/0 -> 0, 1/1 malformed,
    # 1/3 failed; the missing 1/2 is not sent and counts as wrong -> 2/7
    assert m["llm"] == pytest.approx(100 * 2 / 7)
    # B.2 judgement on the 2 yes/no items: 0/1 -> 1, 1/0 -> 0
    assert m["yes_no_acc_llm"] == pytest.approx(50.0)
    assert m["judge"] == {"model": "fake-judge", "judgements": 8, "not_sent_empty_or_missing": 1,
                          "malformed": 1, "failed": 1}
    assert len(client.prompts) == 8
    b2 = [p for p in client.prompts if p.startswith("You are an evaluator. Given a Yes/No")]
    # verbatim B.2: "ground-truth answer: {gt}." so a truth ending in "." gives ".."
    assert "Predicted answer: Yes, ground-truth answer: Yes, the chair is to the left of the table..\n" in b2[0] + b2[1]


def test_malformed_dialogues_name_file_record_field(tmp_path):
    path = tmp_path / "test.jsonl"

    def check(row, pattern):
        path.write_text(json.dumps({"messages": [{"role": "user", "content": "ok?"},
                                                 {"role": "assistant", "content": "ok"}]}) + "\n"
                        + json.dumps(row) + "\n")
        with pytest.raises(BenchmarkDataError, match=pattern):
            VQASynthBench().load(path)

    user = {"role": "user", "content": [{"type": "text", "text": "Q?", "index": None}]}
    answer = {"role": "assistant", "content": [{"type": "text", "text": "A.", "index": None}]}
    check({"messages": [user, user, answer]}, r"test\.jsonl:2: field 'messages'\[1\]: two user turns in a row")
    check({"messages": [user]}, r"test\.jsonl:2: field 'messages': the last user turn has no answer")
    check({"messages": [answer]}, r"test\.jsonl:2: field 'messages'\[0\]: assistant turn without a question")
    check({"messages": [{"role": "robot", "content": "x"}]}, r"test\.jsonl:2: field 'messages'\[0\]\.role must be")
    check({"messages": [user, {"role": "assistant", "content": [{"type": "text", "text": 3}]}]},
          r"test\.jsonl:2: field 'messages'\[1\]\.content\[0\]\.text must be a string")
    check({"images": []}, r"test\.jsonl:2: field 'messages' missing")

    bad = tmp_path / "data" / "test-00000-of-00001.parquet"
    bad.parent.mkdir()
    pq.write_table(pa.table({"images": [[1]]}), bad)
    with pytest.raises(BenchmarkDataError, match=r"test-00000-of-00001\.parquet:record 1: field 'messages' missing"):
        VQASynthBench().load(tmp_path / "data")


def test_cli_eval_score_end_to_end(data_dir, tmp_path, scorer, monkeypatch, capsys):
    monkeypatch.delenv("SPATIALRL_JUDGE_MODEL", raising=False)
    # the module's scorer (model loaded, these texts embedded already) instead of a second instance
    monkeypatch.setattr(VQASynthBench, "default_scorer", scorer)
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": k, "prediction": v}) + "\n" for k, v in PREDICTIONS.items()))
    out = tmp_path / "SCORES.json"
    rc = cli_main(["eval", "score", "--benchmark", "vqasynth", "--data", str(data_dir),
                   "--predictions", str(preds), "--out", str(out)])
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["benchmark"] == "vqasynth"
    assert report["metrics"]["distance_acc"] == pytest.approx(50.0)
    # eval score loads without images (with_images=False) but keeps their size for the box frame
    assert report["metrics"]["bbox_miou"] == pytest.approx(100 * (1 + 1 / 3) / 2)
    assert report["counts"] == {"items": 7, "predictions": 7, "scored": 6, "missing": 1, "unknown": 1,
                                "per_type": {"bbox": 2, "distance": 2, "other": 1, "yes_no": 2}}
    assert "vqasynth: overall" in capsys.readouterr().out
    assert isinstance(get_benchmark("openspaces"), OpenSpacesBench)
