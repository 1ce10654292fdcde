"""Hybrid retrieval: BM25, dense text vectors and image vectors, fused into one ranked list.

Stage 1 (recall): each channel returns its top ``recall_k`` candidates.
Stage 2 (rerank): every candidate from any channel gets every feature computed exactly (its BM25
score from the full score vector, its query-term coverage from its indexed terms, its cosine from
its stored vector, its best-sentence cosine from its stored sentence vectors, its best sentence by
cosine and query-term coverage together, its image-text score for figures), so fusion never guesses a
missing score. Convex fusion z-normalises each feature over
the candidates and takes a weighted sum; RRF over the channel ranks is offered for comparison.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

import numpy as np

from indexes.base import DocumentStore
from indexes.records import StoredUnit, UnitFilter, check_models
from indexes.tokenize import term_finder
from ingest.chunking import maxsim_texts
from mmrag.embedding import ImageEmbedder, TextEmbedder
from mmrag.settings import Settings

CHANNELS = ("bm25", "dense", "image")
FEATURES = ("bm25", "coverage", "dense", "maxsim", "sentence", "image")
BEST_SENTENCES = 3  # kept per candidate for the sentence reranker (it reads 2 by default)


@dataclass
class Filters:
    types: list[str] | None = None  # text / table / image
    document_ids: list[int] | None = None

    def to_unit_filter(self) -> UnitFilter | None:
        return UnitFilter.of(self.types, self.document_ids)


@dataclass
class Hit:
    unit: StoredUnit
    score: float
    features: dict[str, float] = field(default_factory=dict)
    ranks: dict[str, int] = field(default_factory=dict)
    sentences: tuple[str, ...] = ()  # its sentences best first by the sentence feature (units of several)


@dataclass
class Retrieval:
    hits: list[Hit]
    timings: dict[str, float]


@dataclass
class Candidates:
    """The recall stage's output: candidate unit ids, their channel ranks and their features."""

    ids: np.ndarray
    ranks: list[dict[str, int]]
    features: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (values, present)
    timings: dict[str, float]
    sentences: dict[int, tuple[str, ...]] = field(default_factory=dict)  # unit id -> its best sentences


def zscore(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """z-score over the candidates that have the feature; absent ones sit at the mean (0)."""
    out = np.zeros_like(values, dtype=np.float64)
    if present.sum() >= 2:
        v = values[present]
        sd = v.std()
        out[present] = (v - v.mean()) / (sd if sd > 1e-9 else 1.0)
    return out


def convex(features: dict[str, tuple[np.ndarray, np.ndarray]], weights: dict[str, float]) -> np.ndarray:
    n = len(next(iter(features.values()))[0]) if features else 0
    total = np.zeros(n)
    for name, (vals, present) in features.items():
        w = weights.get(name, 0.0)
        if w:
            total += w * zscore(vals, present)
    return total


@functools.lru_cache(maxsize=20_000)
def _sentences(text: str) -> tuple[str, ...]:
    """A unit's sentences as ingestion split them for its sentence vectors; cached, as splitting every
    candidate's text again cost ~10 ms per query and hot passages come back query after query."""
    return tuple(maxsim_texts(text))


class HybridRetriever:
    def __init__(self, store: DocumentStore, settings: Settings, text: TextEmbedder, image: ImageEmbedder | None = None,
                 reranker=None) -> None:
        self.store, self.settings, self.text, self.image = store, settings, text, image
        self.reranker = reranker  # optional cross-encoder stage (app.rerank)

    @property
    def weights(self) -> dict[str, float]:
        s = self.settings
        return {"bm25": s.weight_bm25, "coverage": s.weight_coverage, "dense": s.weight_dense, "maxsim": s.weight_maxsim,
                "sentence": s.weight_sentence, "image": s.weight_image}

    def candidates(self, query: str, collection: str, k: int, filters: Filters | None = None,
                   channels: tuple[str, ...] = CHANNELS) -> Candidates:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        store = self.store
        cid = store.collection_id(collection)
        if cid is None:
            raise KeyError(collection)
        n_text, n_image = store.has_vectors(cid, "text"), store.has_vectors(cid, "image")  # a count would scan in Postgres
        self._check_models(collection, cid, n_image)
        where = filters.to_unit_filter() if filters is not None else None
        empty = Candidates(np.zeros(0, np.int64), [], {}, timings)
        if where is not None and where.matches_nothing:
            return empty
        cand: dict[int, dict[str, int]] = {}

        def collect(name: str, ids) -> None:
            for rank, uid in enumerate(ids[:k]):  # the backend applied the filter
                cand.setdefault(int(uid), {})[name] = rank

        bm25 = store.keyword_scores(cid, query, where) if "bm25" in channels else None
        if bm25 is not None:
            collect("bm25", bm25.top(k)[0])
        timings["bm25_ms"] = (time.perf_counter() - t0) * 1000

        t1 = time.perf_counter()
        qvec = self.text.embed([query], kind="query") if "dense" in channels and n_text else None
        if qvec is not None:
            collect("dense", store.vector_search(cid, "text", qvec[0], k, where)[0])
        timings["dense_ms"] = (time.perf_counter() - t1) * 1000

        t2 = time.perf_counter()
        ivec = None
        if self.image is not None and n_image:
            ivec = self.image.embed_texts([query])
            if "image" in channels:
                collect("image", store.vector_search(cid, "image", ivec[0], k, where)[0])
        timings["image_ms"] = (time.perf_counter() - t2) * 1000
        if not cand:
            return empty

        t3 = time.perf_counter()
        ids = np.fromiter(cand, np.int64, len(cand))
        features: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        best: dict[int, tuple[str, ...]] = {}
        if bm25 is not None:
            features["bm25"] = (bm25.of(ids), np.ones(len(ids), bool))
            features["coverage"] = (bm25.coverage_of(ids), np.ones(len(ids), bool))
        if qvec is not None:
            features["dense"] = self._cosines(ids, qvec[0], "text")
            sentences = store.sentence_vectors(ids)
            features["maxsim"] = self._maxsim(ids, qvec[0], features["dense"], sentences)
            if bm25 is not None and self.settings.weight_sentence:  # weight 0 in settings: not computed (~12 ms a query)
                features["sentence"] = self._sentence_match(ids, qvec[0], features["dense"], sentences, features["coverage"][0],
                                                            bm25.coverage_weights, bm25.tokenizer, best)
        if ivec is not None and "image" in channels:
            features["image"] = self._cosines(ids, ivec[0], "image")
        timings["features_ms"] = (time.perf_counter() - t3) * 1000
        return Candidates(ids, [cand[int(u)] for u in ids], features, timings, best)

    def _check_models(self, collection: str, cid: int, n_image: int) -> None:
        # every query (one small read): a collection can be re-embedded under a running server
        current = {"text": self.text.name, "image": self.image.name if self.image is not None and n_image else "none"}
        check_models(collection, self.store.models(cid), current)  # raises ModelMismatch

    def _cosines(self, ids: np.ndarray, vec: np.ndarray, modality: str) -> tuple[np.ndarray, np.ndarray]:
        got, matrix = self.store.vectors(ids, modality)
        vals, present = np.zeros(len(ids)), np.zeros(len(ids), bool)
        if len(got):
            where = {int(u): i for i, u in enumerate(ids)}
            idx = np.array([where[int(u)] for u in got])
            vals[idx] = matrix @ vec
            present[idx] = True
        return vals, present

    def _maxsim(self, ids: np.ndarray, vec: np.ndarray, dense: tuple[np.ndarray, np.ndarray],
                sentences: dict[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Best cosine between the query and any one sentence; the unit's own cosine where it has one sentence."""
        vals, present = dense[0].copy(), dense[1].copy()
        for i, uid in enumerate(ids):
            sv = sentences.get(int(uid))
            if sv is not None:
                vals[i] = max(vals[i], float((sv @ vec).max()))
                present[i] = True
        return vals, present

    def _sentence_match(self, ids: np.ndarray, vec: np.ndarray, dense: tuple[np.ndarray, np.ndarray],
                        sentences: dict[int, np.ndarray], coverage: np.ndarray, weights: dict[str, float],
                        tokenizer, best: dict[int, tuple[str, ...]]) -> tuple[np.ndarray, np.ndarray]:
        """The best sentence by cosine + ``sentence_coverage_weight`` x its query-term coverage.

        Max-sim and coverage, taken apart, can each be won by a different sentence of a passage on the
        right topic; the sentence that answers a question usually has both: it means the same thing
        and holds the question's rarer words. Coverage uses BM25's idf weights (question words left
        out), over the sentence's own terms. A unit of one sentence (no sentence vectors) scores its own
        cosine and coverage: the coverage feature, which BM25's forward index already gave, so only
        units of several sentences have their text read and matched. ``best`` gets each of those units'
        top sentences by this score: what the sentence reranker (app.rerank) reads.
        """
        lam = self.settings.sentence_coverage_weight
        present = dense[1].copy()
        vals = np.where(present, dense[0] + lam * coverage, dense[0])
        total = sum(weights.values())
        several = [i for i, uid in enumerate(ids) if present[i] and int(uid) in sentences]
        if not total or not several:
            return vals, present
        texts = self.store.texts(ids[several])
        finder = term_finder(list(weights), tokenizer)
        for i in several:
            uid = int(ids[i])
            sv, text = sentences[uid], texts.get(uid)
            parts = _sentences(text) if text is not None else ()
            if len(parts) != len(sv):  # sentences stored by another chunker version: the unit as a whole
                continue
            covered = np.array([sum(weights[t] for t in terms) for terms in finder.per_sentence(text, parts)]) / total
            scores = sv @ vec + lam * covered
            vals[i] = float(scores.max())
            best[uid] = tuple(parts[k] for k in np.argsort(-scores)[:BEST_SENTENCES])
        return vals, present

    def retrieve(self, query: str, collection: str, top_k: int = 10, filters: Filters | None = None,
                 channels: tuple[str, ...] = CHANNELS, fusion: str | None = None,
                 weights: dict[str, float] | None = None, cross_encoder: bool = True) -> Retrieval:
        t0 = time.perf_counter()
        cands = self.candidates(query, collection, max(self.settings.recall_k, top_k), filters, channels)
        timings = cands.timings
        if len(cands.ids) == 0:
            timings["total_ms"] = (time.perf_counter() - t0) * 1000
            return Retrieval([], timings)
        t1 = time.perf_counter()
        if (fusion or self.settings.fusion) == "rrf":
            scores = np.array([sum(1.0 / (self.settings.rrf_k + r + 1) for r in ranks.values()) for ranks in cands.ranks])
        else:
            scores = convex(cands.features, {**self.weights, **(weights or {})})
        reranker = self.reranker if cross_encoder else None
        depth = max(top_k, reranker.top_n) if reranker is not None else top_k
        order = np.argsort(-scores, kind="stable")[:depth]
        units = self.store.units([int(cands.ids[i]) for i in order])
        hits = []
        for i in order:
            uid = int(cands.ids[i])
            if uid in units:
                feats = {n: float(v[0][i]) for n, v in cands.features.items() if v[1][i]}
                hits.append(Hit(units[uid], float(scores[i]), feats, cands.ranks[i], cands.sentences.get(uid, ())))
        timings["rerank_ms"] = (time.perf_counter() - t1) * 1000
        if reranker is not None:
            hits = reranker.rerank(query, hits, timings)
        timings["total_ms"] = (time.perf_counter() - t0) * 1000
        return Retrieval(hits[:top_k], timings)
