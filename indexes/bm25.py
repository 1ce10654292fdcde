"""A BM25 inverted index that gives rank_bm25's ``BM25Okapi`` scores without scanning every document.

rank_bm25 is the scoring reference: same k1, b, epsilon, the same idf (negative idf floored at
``epsilon * mean idf``) and the same length normalisation; ``tests/indexes/test_bm25.py`` checks
equality. It scores every document in Python for every query term, which takes ~0.7 s per query at
100k passages; here a query touches only the postings of its terms, in numpy.

Layout: a forward index (per document: term ids and counts) that supports appends and deletes, and
an inverted index compiled from it lazily after changes. Both are flat numpy arrays, saved as one
``.npz`` file with their unit ids, so ids and postings cannot disagree.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from indexes.files import atomic_write
from indexes.tokenize import QUESTION_WORDS, tokenize


class BM25Index:
    def __init__(self, k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25,
                 tokenizer: Callable[[str], list[str]] = tokenize) -> None:
        self.k1, self.b, self.epsilon = k1, b, epsilon
        self.tokenizer = tokenizer
        self.vocab: dict[str, int] = {}
        # forward index, compacted
        self._ids = np.zeros(0, np.int64)
        self._ptr = np.zeros(1, np.int64)
        self._terms = np.zeros(0, np.int32)
        self._tfs = np.zeros(0, np.int32)
        self._pending: list[tuple[int, np.ndarray, np.ndarray]] = []
        self._deleted: set[int] = set()
        self._dirty = True
        self._lock = threading.RLock()

    # -- writing -------------------------------------------------------------------------
    def add(self, items: Iterable[tuple[int, str]]) -> None:
        with self._lock:
            before = len(self._pending)
            for unit_id, text in items:
                counts = Counter(self.tokenizer(text))
                terms = np.fromiter((self.vocab.setdefault(t, len(self.vocab)) for t in counts), np.int32, len(counts))
                tfs = np.fromiter(counts.values(), np.int32, len(counts))
                self._pending.append((int(unit_id), terms, tfs))
                self._deleted.discard(int(unit_id))
            self._dirty |= len(self._pending) > before  # an empty add must not force a recompile

    def remove(self, unit_ids: Iterable[int]) -> None:
        with self._lock:
            gone = {int(i) for i in unit_ids}
            if not gone:
                return
            self._pending = [p for p in self._pending if p[0] not in gone]
            self._deleted |= gone
            self._dirty = True

    def ids(self) -> np.ndarray:
        with self._lock:
            self._compile()
            return self._ids.copy()

    def __len__(self) -> int:
        return len(self.ids())

    # -- compiling -----------------------------------------------------------------------
    def _compile(self) -> None:
        if not self._dirty:
            return
        ids, ptr, terms, tfs = self._ids, self._ptr, self._terms, self._tfs
        if self._pending:
            lens = np.array([len(p[1]) for p in self._pending], np.int64)
            ids = np.concatenate([ids, np.array([p[0] for p in self._pending], np.int64)])
            ptr = np.concatenate([ptr, ptr[-1] + np.cumsum(lens)])
            terms = np.concatenate([terms, *[p[1] for p in self._pending]])
            tfs = np.concatenate([tfs, *[p[2] for p in self._pending]])
            self._pending = []
        if self._deleted:
            keep = ~np.isin(ids, np.fromiter(self._deleted, np.int64, len(self._deleted)))
            lens = np.diff(ptr)
            post_keep = np.repeat(keep, lens)
            ids, terms, tfs = ids[keep], terms[post_keep], tfs[post_keep]
            ptr = np.concatenate([[0], np.cumsum(lens[keep])]).astype(np.int64)
            self._deleted = set()
        # a re-added id keeps only its newest entry
        if len(ids) and len(np.unique(ids)) != len(ids):
            last = {int(u): k for k, u in enumerate(ids)}
            keep = np.zeros(len(ids), bool)
            keep[list(last.values())] = True
            lens = np.diff(ptr)
            post_keep = np.repeat(keep, lens)
            ids, terms, tfs = ids[keep], terms[post_keep], tfs[post_keep]
            ptr = np.concatenate([[0], np.cumsum(lens[keep])]).astype(np.int64)
        self._ids, self._ptr, self._terms, self._tfs = ids, ptr, terms, tfs
        self._build_inverted()
        self._dirty = False

    def _build_inverted(self) -> None:
        n_docs = len(self._ids)
        lens = np.diff(self._ptr)
        doc_of_posting = np.repeat(np.arange(n_docs, dtype=np.int32), lens)
        self._doc_len = np.bincount(doc_of_posting, weights=self._tfs, minlength=n_docs).astype(np.float32)
        order = np.argsort(self._terms, kind="stable")
        self._post_docs = doc_of_posting[order]
        self._post_tfs = self._tfs[order].astype(np.float32)
        df = np.bincount(self._terms, minlength=len(self.vocab)).astype(np.float64)
        self._term_ptr = np.concatenate([[0], np.cumsum(df)]).astype(np.int64)
        self._avgdl = float(self._doc_len.mean()) if n_docs else 0.0
        present = df > 0
        idf = np.zeros(len(self.vocab))
        idf[present] = np.log(n_docs - df[present] + 0.5) - np.log(df[present] + 0.5)
        # rank_bm25: average over the corpus's terms, then floor negative idfs at epsilon * average
        avg = idf[present].mean() if present.any() else 0.0
        idf[present & (idf < 0)] = self.epsilon * avg
        self._idf = idf
        # Coverage weights: a smoothed idf that stays positive (log(1 + (N - df + 0.5) / (df + 0.5)))
        # so that a term in every document still counts a little and an unseen term counts most.
        self._n_docs = n_docs
        self._cov_idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
        self._sorter = np.argsort(self._ids, kind="stable")

    # -- searching -----------------------------------------------------------------------
    def scores(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """Scores of every live document (ids, scores), equal to rank_bm25's ``get_scores``."""
        result = self.score_all(query)
        return result.ids, result.scores

    def score_all(self, query: str) -> BM25Scores:
        """BM25 scores of every live document; ``coverage_of`` on the result gives given documents'
        query-term coverage: the idf-weighted share of the query's distinct terms (less
        :data:`QUESTION_WORDS`) that a document holds at all. Coverage ignores term frequency and length,
        which tells apart passages of one topic, where BM25 is swayed by repeated topic words (as a
        fusion feature it beats the BM25 score: docs/benchmarks.md, "Fusion features tried")."""
        with self._lock:
            self._compile()
            scores = np.zeros(len(self._ids), np.float64)
            matched = np.zeros(len(self._ids), bool)
            counts = Counter(self.tokenizer(query))  # a repeated query term counts again in BM25, as in rank_bm25
            weights = self._coverage_weights(counts)
            total = sum(weights.values())
            known = sorted((self.vocab[t], w) for t, w in weights.items() if t in self.vocab)
            coverage = _Coverage(self._ptr, self._terms, np.array([k for k, _ in known], np.int64),
                                 np.array([w for _, w in known]) / (total or 1.0))
            for term in counts:
                t = self.vocab.get(term)
                lo, hi = (self._term_ptr[t], self._term_ptr[t + 1]) if t is not None else (0, 0)
                if lo == hi:
                    continue
                docs, tf = self._post_docs[lo:hi], self._post_tfs[lo:hi].astype(np.float64)
                norm = self.k1 * (1 - self.b + self.b * self._doc_len[docs] / self._avgdl)
                scores[docs] += self._idf[t] * (tf * (self.k1 + 1) / (tf + norm)) * counts[term]
                matched[docs] = True
            return BM25Scores(self._ids, scores, matched, self._sorter, coverage, weights, self.tokenizer)

    def coverage_weights(self, query: str) -> dict[str, float]:
        """Each distinct query term's coverage weight (see :meth:`score_all`)."""
        with self._lock:
            self._compile()
            return self._coverage_weights(self.tokenizer(query))

    def _coverage_weights(self, terms: Iterable[str]) -> dict[str, float]:
        unseen = float(np.log1p((self._n_docs + 0.5) / 0.5))  # a term no document holds: the rarest there is
        out = {}
        for term in terms:
            if term in QUESTION_WORDS:
                continue
            t = self.vocab.get(term)
            out[term] = float(self._cov_idf[t]) if t is not None and self._term_ptr[t] != self._term_ptr[t + 1] else unseen
        return out

    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        return self.score_all(query).top(k, allowed)

    # -- persistence ---------------------------------------------------------------------
    def save(self, path: Path) -> None:
        with self._lock:
            self._compile()
            terms = sorted(self.vocab, key=self.vocab.get)
            vocab = np.frombuffer(json.dumps(terms, ensure_ascii=False).encode(), np.uint8)
            params = np.array([self.k1, self.b, self.epsilon])

            def write(tmp: str) -> None:
                with open(tmp, "wb") as fh:
                    np.savez(fh, ids=self._ids, ptr=self._ptr, terms=self._terms, tfs=self._tfs, vocab=vocab, params=params)

            atomic_write(path, write)

    @classmethod
    def load(cls, path: Path, tokenizer: Callable[[str], list[str]] = tokenize) -> BM25Index:
        with np.load(path, allow_pickle=False) as z:
            k1, b, eps = (float(v) for v in z["params"])
            index = cls(k1, b, eps, tokenizer)
            terms = json.loads(z["vocab"].tobytes().decode())
            index.vocab = {t: i for i, t in enumerate(terms)}
            index._ids, index._ptr, index._terms, index._tfs = z["ids"], z["ptr"], z["terms"], z["tfs"]
        index._dirty = True
        index._compile()  # now, not on the first query: at 1M units this is seconds of argsort
        return index


class _Coverage:
    """One query's coverage, computed for given documents only (the fusion needs it for ~100 candidates,
    not for a million units): their forward-index rows are looked up against the query's term ids.
    Holds the index arrays of the snapshot it was made from; a later write compiles new arrays."""

    def __init__(self, ptr: np.ndarray, terms: np.ndarray, query_terms: np.ndarray, weights: np.ndarray) -> None:
        self.ptr, self.terms, self.query_terms, self.weights = ptr, terms, query_terms, weights

    def of_rows(self, rows: np.ndarray) -> np.ndarray:
        """Coverage of documents given by their row in the index (one value per row)."""
        if len(rows) == 0 or len(self.query_terms) == 0:
            return np.zeros(len(rows))
        starts, lens = self.ptr[rows], self.ptr[rows + 1] - self.ptr[rows]
        # the postings of all rows, gathered in one flat index: start of each row plus 0..len-1
        offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
        terms = self.terms[np.arange(lens.sum()) + offsets]
        at = np.minimum(np.searchsorted(self.query_terms, terms), len(self.query_terms) - 1)
        hit = np.where(self.query_terms[at] == terms, self.weights[at], 0.0)
        return np.bincount(np.repeat(np.arange(len(rows)), lens), weights=hit, minlength=len(rows))


class BM25Scores:
    """One query's scores over the whole index, for top-k and for looking up given units."""

    def __init__(self, ids: np.ndarray, scores: np.ndarray, matched: np.ndarray, sorter: np.ndarray,
                 coverage: _Coverage | None = None, coverage_weights: dict[str, float] | None = None,
                 tokenizer: Callable[[str], list[str]] = tokenize) -> None:
        self.ids, self.scores, self.matched, self._sorter = ids, scores, matched, sorter
        self._coverage = coverage
        self.coverage_weights = coverage_weights or {}  # distinct query term -> its idf weight (question words left out)
        self.tokenizer = tokenizer
        self.allowed: np.ndarray | None = None

    def restricted(self, allowed: np.ndarray | None) -> BM25Scores:
        """These scores, with :meth:`top` limited to the ``allowed`` units (a filter); lookups of given
        units are unchanged, as corpus statistics do not depend on the filter."""
        if allowed is None:
            return self
        out = BM25Scores(self.ids, self.scores, self.matched, self._sorter, self._coverage, self.coverage_weights, self.tokenizer)
        out.allowed = np.asarray(allowed, np.int64)
        return out

    def top(self, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (ids, scores), best first, among documents holding at least one query term (and, with a
        filter, among the allowed ones).

        (On tiny corpora BM25Okapi's idf can be zero or negative, so "score > 0" would drop real matches.)
        """
        allowed = self.allowed if allowed is None else allowed
        matched = self.matched & np.isin(self.ids, allowed) if allowed is not None else self.matched
        hits = np.flatnonzero(matched)
        if len(hits) > k:
            hits = hits[np.argpartition(-self.scores[hits], k - 1)[:k]]
        order = hits[np.argsort(-self.scores[hits], kind="stable")]
        return self.ids[order], self.scores[order]

    def _rows(self, unit_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each unit's row in the index, and whether it is there at all."""
        unit_ids = np.asarray(unit_ids, np.int64)
        if len(self.ids) == 0:
            return np.zeros(len(unit_ids), np.int64), np.zeros(len(unit_ids), bool)
        pos = np.minimum(np.searchsorted(self.ids, unit_ids, sorter=self._sorter), len(self.ids) - 1)
        rows = self._sorter[pos]
        return rows, self.ids[rows] == unit_ids

    def of(self, unit_ids: np.ndarray) -> np.ndarray:
        """Scores of the given units (0 for units not in the index)."""
        rows, found = self._rows(unit_ids)
        return np.where(found, self.scores[rows], 0.0) if len(self.ids) else np.zeros(len(rows))

    def coverage_of(self, unit_ids: np.ndarray) -> np.ndarray:
        """Query-term coverage of the given units (see :meth:`BM25Index.score_all`; 0 for units not in the index)."""
        rows, found = self._rows(unit_ids)
        if self._coverage is None or not found.any():
            return np.zeros(len(rows))
        out = np.zeros(len(rows))
        out[found] = self._coverage.of_rows(rows[found])
        return out
