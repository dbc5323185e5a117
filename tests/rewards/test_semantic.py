"""Sentence-BERT semantic reward (SVQA-R1 sec. 3.2) with the packaged all-MiniLM-L6-v2."""

import pickle

import numpy as np
import pytest

from spatialrl.rewards.semantic import SemanticScorer, load_sentence_model


@pytest.fixture(scope="module")
def scorer():
    return SemanticScorer()


def test_synonyms_score_higher_than_unrelated(scorer):
    scores = scorer.similarity(
        ["couch", "the sofa", "a blue lamp", "2 meters", "left", None, "   "],
        ["sofa", "sofa", "sofa", "2 m", "left", "sofa", "sofa"],
    )
    assert scores[0] > scores[2] + 0.2  # the paper's own example: "sofa" vs "couch"
    assert scores[1] > scores[2]
    assert scores[4] == pytest.approx(1.0, abs=1e-5)
    assert scores[5] == 0.0 and scores[6] == 0.0
    assert np.all((scores >= 0) & (scores <= 1))


def test_embeddings_are_cached(scorer, monkeypatch):
    model = scorer.model
    calls = []
    original = model.encode

    def counting_encode(texts, **kwargs):
        calls.append(list(texts))
        return original(texts, **kwargs)

    monkeypatch.setattr(model, "encode", counting_encode)
    scorer.similarity(["a red chair", "a red chair"], ["the chair", "the chair"])
    scorer.similarity(["a red chair"], ["the chair"])
    encoded = [t for batch in calls for t in batch]
    assert sorted(encoded) == ["a red chair", "the chair"]  # each distinct text once, across calls


def test_model_loaded_once_and_scorer_pickles_without_it(scorer):
    assert load_sentence_model() is scorer.model
    clone = pickle.loads(pickle.dumps(scorer))
    assert clone._cache == {} and clone.similarity(["left"], ["left"])[0] == pytest.approx(1.0, abs=1e-5)


def test_bad_input_named(scorer):
    with pytest.raises(ValueError, match="references"):
        scorer.similarity(["a"], ["a", "b"])
    with pytest.raises(ValueError, match=r"references\[0\]"):
        scorer.similarity(["a"], [None])
