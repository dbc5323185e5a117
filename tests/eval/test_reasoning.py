"""Chain-of-thought keyword statistics (SVQA-R1 appendix G) and think-length statistics."""

from __future__ import annotations

import pytest

from spatialrl.eval.reasoning import (
    COT_KEYWORDS,
    analyze,
    count_cot_keywords,
    keyword_stats,
    think_length_stats,
    think_text,
)


def test_keyword_list_is_the_papers():
    assert len(COT_KEYWORDS) == 41
    assert COT_KEYWORDS[0] == "likely" and COT_KEYWORDS[-1] == "consider that"
    assert "in the first step" in COT_KEYWORDS and "I'm not sure" in COT_KEYWORDS


def test_counting_rules():
    # whole words, case-insensitive; 'so' not inside 'also', 'if' not inside 'different'
    assert count_cot_keywords("Also, a different view.") == {}
    assert count_cot_keywords("SO it is. Therefore, THEN") == {"so": 1, "therefore": 1, "then": 1}
    # longest match at a position, no overlaps: the phrase counts once, not also 'first'
    assert count_cot_keywords("In the first step I measure. First, the bed.") == {"in the first step": 1, "first": 1}
    # 'might be' is one keyword (there is no bare 'be')
    assert count_cot_keywords("It might be 2 m, it could  be 3 m") == {"might be": 1, "could be": 1}
    # curly apostrophes and line breaks inside phrases
    assert count_cot_keywords("I\u2019m not sure; let's\nsay 2 m") == {"i'm not sure": 1, "let's say": 1}
    assert count_cot_keywords(None) == {}


def test_think_text_and_lengths():
    assert think_text("<think> a b </think><answer>x</answer>") == "a b"
    assert think_text("<THINK>a</THINK> mid <think>b c</think>") == "a\nb c"
    assert think_text("<think>truncated, never closed") is None
    texts = [
        "<think>one two three</think><answer>1</answer>",      # 13 chars, 3 tokens
        "<think>a b c d e f g</think><answer>2</answer>",      # 13 chars, 7 tokens
        "<think>x</think>",                                    # 1 char, 1 token
        "no think at all",
        None,                                                  # missing: left out
    ]
    stats = think_length_stats(texts)
    assert stats["responses"] == 4 and stats["with_think"] == 3
    assert stats["share_with_think"] == pytest.approx(3 / 4)
    assert stats["think_chars"] == pytest.approx({"mean": 27 / 3, "median": 13.0, "p90": 13.0})
    # tokens 3, 7, 1: mean 11/3, median 3, p90 = 3 + 0.8 * (7 - 3) = 6.2 (linear interpolation)
    assert stats["think_tokens"] == pytest.approx({"mean": 11 / 3, "median": 3.0, "p90": 6.2})
    assert think_length_stats([])["think_chars"] == {"mean": None, "median": None, "p90": None}


def test_keyword_stats_and_analyze():
    texts = [
        "<think>The sofa is probably 2 m, because the door is 1 m.</think><answer>2 m</answer>",  # probably, because
        "<answer>3 m</answer>",                                                                 # none
        "So I think it is likely 4 m, so 4 m.",                                                 # so x2, i think, likely
    ]
    stats = keyword_stats(texts)
    # counts 2, 0, 4 -> mean 2.0; 2 of 3 responses have at least one
    assert stats["mean_keywords_per_response"] == pytest.approx(2.0)
    assert stats["share_with_keyword"] == pytest.approx(2 / 3)
    assert stats["keyword_counts"] == {"so": 2, "because": 1, "i think": 1, "likely": 1, "probably": 1}
    think_only = keyword_stats(texts, scope="think")
    assert think_only["mean_keywords_per_response"] == pytest.approx(2 / 3)  # only the first has a think block
    with pytest.raises(ValueError):
        keyword_stats(texts, scope="answer")

    report = analyze({"a": {"id": "a", "prediction": texts[0]}, "b": {"id": "b", "prediction": None},
                      "c": {"id": "c", "prediction": texts[2]}})
    assert report["responses"] == 2 and report["missing"] == 1
    assert report["cot"]["mean_keywords_per_response"] == pytest.approx(3.0)  # (2 + 4) / 2
    assert report["think"]["share_with_think"] == pytest.approx(0.5)
    assert analyze(texts)["cot"] == stats


def test_fast_keyword_walk_equals_the_regex():
    """count_cot_keywords walks word tokens; it must find exactly what the keyword regex finds."""
    import random
    from collections import Counter

    from spatialrl.eval import reasoning as R

    words = ["likely", "so", "then", "first", "in", "the", "step", "second", "might", "be", "I", "think", "I'm",
             "not", "sure", "let's", "say", "if", "suppose", "chair", "It", "is", "important", "to", "note", "as",
             "a", "result", "that", "means", "so-called", "I\u2019m", "assuming", "case", "2.5", "So,", "THEN",
             "it's", "_so_", "so_", "'so'", "'if", "\n", "\t"]
    rng = random.Random(0)
    for _ in range(3000):
        text = rng.choice([" ", "", "-", "  ", "\n"]).join(rng.choice(words) for _ in range(rng.randint(0, 30)))
        slow = Counter(R._COT_ORDER[m.lastindex - 1].lower() for m in R._COT_REGEX.finditer(text.translate(R._APOSTROPHES)))
        assert R.count_cot_keywords(text) == slow, text


def test_score_predictions_reports_reasoning_on_request():
    from spatialrl.eval.benchmarks import EvalItem, score_predictions

    items = [EvalItem(id="a", question_type="t", prompt="q", answer="yes", meta={})]
    report = score_predictions(_ExactBench(), items, {"a": "<think>so, probably</think><answer>yes</answer>"},
                               reasoning=True)
    assert report["reasoning"]["cot"]["mean_keywords_per_response"] == 2.0
    assert "reasoning" not in score_predictions(_ExactBench(), items, {"a": "yes"})


class _ExactBench:
    name = "exact"

    def prepare(self, items, texts):
        pass

    def score_item(self, item, prediction):
        from spatialrl.eval.benchmarks import ItemScore

        return ItemScore(float(prediction == item.answer))

    def type_of(self, item):
        return item.question_type

    def aggregate(self, per_type, counts):
        return sum(per_type.values()) / len(per_type)

    def extra_metrics(self, items, texts):
        return {}
