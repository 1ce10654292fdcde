"""An optional cross-encoder stage over the fused top candidates.

Off by default: no cross-encoder ships offline, and one trained here (MiniLM, 5k pairs) ranked
below BM25 (see the query-path issue). Users with network, or a model folder, set
``MMRAG_CROSS_ENCODER`` to e.g. ``cross-encoder/ms-marco-MiniLM-L6-v2`` or a local path; it reads
query and passage together, which the bi-encoder features cannot.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np

from app.retrieval import Hit, zscore


class CrossEncoderReranker:
    def __init__(self, model: str, top_n: int = 20, weight: float = 1.0, batch_size: int = 32) -> None:
        if Path(model).exists():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import CrossEncoder

        self.name = model
        self.model = CrossEncoder(model, device="cpu")
        self.top_n, self.weight, self.batch_size = top_n, weight, batch_size
        self._lock = threading.Lock()

    def rerank(self, query: str, hits: list[Hit], timings: dict[str, float]) -> list[Hit]:
        """Rescore the first ``top_n`` hits: z(fused) + weight * z(cross-encoder); the rest keep their order."""
        if len(hits) < 2:
            return hits
        t0 = time.perf_counter()
        head, tail = hits[: self.top_n], hits[self.top_n:]
        texts = [h.unit.search_text() for h in head]
        present = np.array([bool(t.strip()) for t in texts])
        with self._lock:
            ce = np.zeros(len(head))
            if present.any():
                ce[present] = self.model.predict([(query, t) for t, p in zip(texts, present) if p], batch_size=self.batch_size,
                                                 show_progress_bar=False)
        fused = np.array([h.score for h in head])
        combined = zscore(fused, np.ones(len(head), bool)) + self.weight * zscore(ce, present)
        for h, c, s in zip(head, ce, combined):
            h.features["cross_encoder"] = float(c)
            h.score = float(s)
        head.sort(key=lambda h: -h.score)
        timings["cross_encoder_ms"] = (time.perf_counter() - t0) * 1000
        return head + tail
