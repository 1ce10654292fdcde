"""Hybrid retrieval: BM25, dense text vectors and image vectors, fused into one list.

Every candidate from any channel gets every feature computed exactly (its BM25 score from the
full score vector, its dense cosine from its stored vector), so fusion never guesses a missing
score. Convex fusion z-normalises each feature over the candidate set and takes a weighted sum;
RRF is offered for comparison.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from indexes.docstore import StoredUnit
from indexes.store import Store
from mmrag.embedding import ImageEmbedder, TextEmbedder
from mmrag.settings import Settings

CHANNELS = ("bm25", "dense", "image")


@dataclass
class Filters:
    types: list[str] | None = None  # text / table / image
    document_ids: list[int] | None = None


@dataclass
class Hit:
    unit: StoredUnit
    score: float
    features: dict[str, float] = field(default_factory=dict)
    ranks: dict[str, int] = field(default_factory=dict)


@dataclass
class Retrieval:
    hits: list[Hit]
    timings: dict[str, float]


def _z(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """z-score over the candidates that have the feature; absent ones sit at the mean (0)."""
    out = np.zeros_like(values)
    if present.sum() >= 2:
        v = values[present]
        sd = v.std()
        out[present] = (v - v.mean()) / (sd if sd > 1e-9 else 1.0)
    return out


class HybridRetriever:
    def __init__(self, store: Store, settings: Settings, text: TextEmbedder, image: ImageEmbedder | None = None) -> None:
        self.store, self.settings, self.text, self.image = store, settings, text, image

    def _allowed(self, cid: int, filters: Filters | None) -> np.ndarray | None:
        if filters is None or (not filters.types and not filters.document_ids):
            return None
        sql, params = "SELECT id FROM units WHERE collection_id = ?", [cid]
        if filters.types:
            sql += f" AND type IN ({','.join('?' * len(filters.types))})"
            params += list(filters.types)
        if filters.document_ids:
            sql += f" AND document_id IN ({','.join('?' * len(filters.document_ids))})"
            params += [int(d) for d in filters.document_ids]
        return np.array([r[0] for r in self.store.docs.query(sql, tuple(params))], np.int64)

    def retrieve(self, query: str, collection: str, top_k: int = 10, filters: Filters | None = None,
                 channels: tuple[str, ...] = CHANNELS, fusion: str | None = None) -> Retrieval:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        cid = self.store.docs.collection_id(collection)
        if cid is None:
            raise KeyError(collection)
        ci = self.store.indexes(cid)
        allowed = self._allowed(cid, filters)
        if allowed is not None and len(allowed) == 0:
            return Retrieval([], {"total_ms": 0.0})
        allowed_set = set(allowed.tolist()) if allowed is not None else None
        k = max(self.settings.recall_k, top_k)
        cand: dict[int, dict[str, int]] = {}  # unit id -> channel -> rank

        def collect(name: str, ids) -> None:
            rank = 0
            for uid in ids:
                uid = int(uid)
                if uid < 0 or (allowed_set is not None and uid not in allowed_set):
                    continue
                cand.setdefault(uid, {})[name] = rank
                rank += 1

        bm25 = ci.bm25.score_all(query) if "bm25" in channels else None
        if bm25 is not None:
            ids, _ = bm25.top(k, allowed)
            collect("bm25", ids)
        timings["bm25_ms"] = (time.perf_counter() - t0) * 1000

        t1 = time.perf_counter()
        qvec = None
        if "dense" in channels and ci.vectors["text"] is not None:
            qvec = self.text.embed([query], kind="query")
            over = k if allowed is None else min(len(ci.vectors["text"]), k * 8)
            _, ids = ci.vectors["text"].search(qvec, over)
            collect("dense", ids[0][:over])
        timings["dense_ms"] = (time.perf_counter() - t1) * 1000

        t2 = time.perf_counter()
        ivec = None
        if "image" in channels and self.image is not None and ci.vectors["image"] is not None and len(ci.vectors["image"]):
            ivec = self.image.embed_texts([query])
            over = k if allowed is None else min(len(ci.vectors["image"]), k * 8)
            _, ids = ci.vectors["image"].search(ivec, over)
            collect("image", ids[0])
        timings["image_ms"] = (time.perf_counter() - t2) * 1000

        t3 = time.perf_counter()
        hits = self._fuse(cand, bm25, qvec, ivec, fusion or self.settings.fusion)
        hits = hits[:top_k]
        units = self.store.docs.units([h[0] for h in hits])
        out = [Hit(units[uid], score, feats, cand[uid]) for uid, score, feats in hits if uid in units]
        timings["fuse_ms"] = (time.perf_counter() - t3) * 1000
        timings["total_ms"] = (time.perf_counter() - t0) * 1000
        return Retrieval(out, timings)

    def _fuse(self, cand, bm25, qvec, ivec, fusion: str) -> list[tuple[int, float, dict]]:
        if not cand:
            return []
        ids = np.fromiter(cand, np.int64, len(cand))
        if fusion == "rrf":
            scores = np.array([sum(1.0 / (self.settings.rrf_k + r + 1) for r in cand[int(u)].values()) for u in ids])
            order = np.argsort(-scores, kind="stable")
            return [(int(ids[i]), float(scores[i]), {}) for i in order]
        feats = {}
        if bm25 is not None:
            feats["bm25"] = (bm25.of(ids), np.ones(len(ids), bool))
        for name, vec, column in (("dense", qvec, "text_vec"), ("image", ivec, "image_vec")):
            if vec is None:
                continue
            got, matrix = self.store.docs.vectors(ids, column)
            vals = np.zeros(len(ids))
            present = np.zeros(len(ids), bool)
            if len(got):
                where = {int(u): i for i, u in enumerate(ids)}
                idx = np.array([where[int(u)] for u in got])
                vals[idx] = matrix @ vec[0]
                present[idx] = True
            feats[name] = (vals, present)
        weights = {"bm25": self.settings.weight_bm25, "dense": self.settings.weight_dense, "image": self.settings.weight_image}
        total = np.zeros(len(ids))
        for name, (vals, present) in feats.items():
            total += weights[name] * _z(vals, present)
        order = np.argsort(-total, kind="stable")
        return [(int(ids[i]), float(total[i]), {n: float(v[0][i]) for n, v in feats.items() if v[1][i]}) for i in order]
