"""FAISS vector indexes that carry their own id map and size themselves.

Ids are the docstore's unit ids, stored inside the FAISS file (``IndexIDMap2``/IVF ids), so an
index and its id map are one file and cannot disagree. Small collections use exact inner-product
search; past ``flat_max`` vectors the index is rebuilt as an approximate one: HNSW by default, or IVF
(``nlist`` ~ 4*sqrt(n), searched with ``nprobe`` lists). bench.vector_index measured both on real
(e5) vectors: IVF at nprobe 16 found 74% of the exact top-100, HNSW (M 32, efSearch 256) 98% in
about the same time, because e5's vectors crowd into a narrow cone that coarse clusters split badly.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from indexes.files import atomic_write

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexParams:
    flat_max: int = 20_000  # exact search up to here (~12 ms per 100k vectors a query on one of these cores)
    ann: str = "hnsw"  # past flat_max: "hnsw" or "ivf"
    hnsw_m: int = 32
    ef_construction: int = 40
    ef_search: int = 256
    nprobe: int = 16  # IVF only

    @classmethod
    def from_settings(cls, settings) -> IndexParams:
        return cls(settings.faiss_flat_max, settings.faiss_ann, settings.faiss_hnsw_m, settings.faiss_ef_construction,
                   settings.faiss_ef_search, settings.faiss_nprobe)


@contextmanager
def _build_threads() -> Iterator[None]:
    """Every core for a bulk build, whatever OMP_NUM_THREADS says: the server sets one thread for
    queries (where more only contend), but an HNSW build over 100k vectors took 97 s on one core."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


class VectorIndex:
    def __init__(self, dim: int, params: IndexParams | None = None) -> None:
        self.dim = dim
        self.params = params or IndexParams()
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        # HNSW cannot take vectors out: removed ids are masked at search until the next rebuild. They
        # are not saved; a reloaded index gets them back as ids the docstore lacks, and the store's
        # reconcile masks them again.
        self._deleted = np.zeros(0, np.int64)
        self._selector = None
        # _lock guards the FAISS object for searches and the swap; _write_lock keeps writers in line, so
        # that a rebuild can run outside _lock while searches go on against the old index.
        self._lock = threading.RLock()
        self._write_lock = threading.RLock()

    @property
    def kind(self) -> str:
        if self._ivf() is not None:
            return "ivf"
        return "hnsw" if isinstance(self._inner(), faiss.IndexHNSW) else "flat"

    def _inner(self):
        return faiss.downcast_index(self._index.index) if isinstance(self._index, faiss.IndexIDMap2) else None

    def _ivf(self):
        try:
            return faiss.extract_index_ivf(self._index)
        except RuntimeError:
            return None

    def _all_ids(self) -> np.ndarray:
        """Every id held, masked ones included."""
        ivf = self._ivf()
        if ivf is None:
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)
        invlists = ivf.invlists
        out = [faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
               for i in range(ivf.nlist) if invlists.list_size(i)]
        return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)

    def __len__(self) -> int:
        return int(self._index.ntotal) - len(self._deleted)

    def ids(self) -> np.ndarray:
        with self._lock:
            ids = self._all_ids()
            return ids[~np.isin(ids, self._deleted)] if len(self._deleted) else ids

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        with self._write_lock:
            if len(self._deleted) and np.isin(ids, self._deleted).any():
                self._rebuild_beside()  # an id comes back: its masked vector must go first
            with self._lock:
                self._index.add_with_ids(vectors, ids)
                grown = self.kind == "flat" and len(self) > self.params.flat_max
            if grown:  # past flat_max: the approximate index is built while the flat one still answers
                self._rebuild_beside()

    def remove(self, ids: np.ndarray) -> int:
        if len(ids) == 0:
            return 0
        ids = np.asarray(ids, dtype=np.int64)
        with self._write_lock, self._lock:
            if self.kind != "hnsw":
                return int(self._index.remove_ids(ids))
            held = np.setdiff1d(ids[np.isin(ids, self._all_ids())], self._deleted)
            self._deleted = np.union1d(self._deleted, held)
            self._selector = None
            return len(held)

    @property
    def needs_compaction(self) -> bool:
        """Masked vectors past a fifth of the index: searches walk them for nothing, and recall drops."""
        return len(self._deleted) > 0.2 * self._index.ntotal

    def compact(self) -> None:
        """Rebuild without the masked vectors while searches go on against the old index."""
        with self._write_lock:
            if len(self._deleted):
                self._rebuild_beside()

    def _rebuild_beside(self) -> None:
        """Rebuild from the live vectors beside the current index, then swap. Writers wait (the caller
        holds _write_lock); searches do not: an HNSW build takes seconds at 20k vectors and minutes at a
        million."""
        with self._lock:
            ids, vectors = self._live_contents()
        rebuilt = self._build(ids, vectors)
        with self._lock:
            self._index, self._deleted, self._selector = rebuilt, np.zeros(0, np.int64), None

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of shape (n_queries, k); missing hits have id -1. ``allowed``: only these ids
        (a filter, applied inside the search by an id selector, so no over-fetching)."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        with self._lock:
            if len(self) == 0 or (allowed is not None and len(allowed) == 0):
                n = len(queries)
                return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
            k = min(k, len(self))
            kind = self.kind
            keep: list = []  # selectors must outlive the search
            sel = None
            if allowed is not None:
                allowed = np.ascontiguousarray(allowed, np.int64)
                sel = faiss.IDSelectorBatch(len(allowed), faiss.swig_ptr(allowed))
                keep += [sel, allowed]
            if kind == "hnsw" and len(self._deleted):
                if self._selector is None:
                    batch = faiss.IDSelectorBatch(len(self._deleted), faiss.swig_ptr(self._deleted))
                    self._selector = (faiss.IDSelectorNot(batch), batch)  # keep both alive
                sel = self._selector[0] if sel is None else faiss.IDSelectorAnd(sel, self._selector[0])
                keep.append(sel)
            if kind == "ivf":
                self._ivf().nprobe = self.params.nprobe
                if sel is None:
                    return self._index.search(queries, k)
                params = faiss.SearchParametersIVF(sel=sel, nprobe=self.params.nprobe)
            elif kind == "hnsw":
                params = faiss.SearchParametersHNSW()
                # a filter hides part of the graph: widen the beam by the share it hides (capped)
                share = 1.0 if allowed is None else max(len(allowed) / max(len(self), 1), 1e-3)
                params.efSearch = int(min(max(self.params.ef_search, k) / share, max(4096, k)))
                if sel is not None:
                    params.sel = sel
            else:
                if sel is None:
                    return self._index.search(queries, k)
                params = faiss.SearchParameters(sel=sel)
            return self._index.search(queries, k, params=params)

    def _live_contents(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of every vector not masked."""
        ivf = self._ivf()
        if ivf is not None:  # IVFFlat keeps each list's vectors as raw float32 codes
            parts = [(faiss.rev_swig_ptr(ivf.invlists.get_ids(i), ivf.invlists.list_size(i)).copy(),
                      faiss.rev_swig_ptr(ivf.invlists.get_codes(i), ivf.invlists.list_size(i) * ivf.code_size).copy())
                     for i in range(ivf.nlist) if ivf.invlists.list_size(i)]
            ids = np.concatenate([p[0] for p in parts]).astype(np.int64) if parts else np.zeros(0, np.int64)
            vectors = (np.concatenate([p[1] for p in parts]).view(np.float32).reshape(-1, self.dim) if parts
                       else np.zeros((0, self.dim), np.float32))
        else:
            ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
            vectors = self._inner().reconstruct_n(0, len(ids)) if len(ids) else np.zeros((0, self.dim), np.float32)
        live = ~np.isin(ids, self._deleted)
        return ids[live], vectors[live]

    def _build(self, ids: np.ndarray, vectors: np.ndarray):
        n = len(ids)
        if n <= self.params.flat_max:
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        elif self.params.ann == "ivf":
            return self._build_ivf(ids, vectors)
        else:
            log.info("building an HNSW index over %d vectors (M %d): minutes per million on 2 cores", n, self.params.hnsw_m)
            inner = faiss.IndexHNSWFlat(self.dim, self.params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self.params.ef_construction
            index = faiss.IndexIDMap2(inner)
        if n:
            with _build_threads():
                index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        return index

    def _build_ivf(self, ids: np.ndarray, vectors: np.ndarray):
        n = len(ids)
        nlist = max(16, int(4 * math.sqrt(n)))
        quantizer = faiss.IndexFlatIP(self.dim)
        ivf = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        sample = vectors[rng.choice(n, size=min(n, nlist * 64), replace=False)]
        ivf.train(sample)
        ivf.add_with_ids(vectors, ids)
        ivf.nprobe = self.params.nprobe
        return ivf

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, dim: int, params: IndexParams | None = None) -> VectorIndex:
        """Bulk build: picks flat or approximate from the size up front (no flat detour)."""
        index = cls(dim, params)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, dim)
        index._index = index._build(np.asarray(ids, np.int64), vectors)
        return index

    def save(self, path: Path) -> None:
        with self._write_lock, self._lock:
            atomic_write(path, lambda tmp: faiss.write_index(self._index, tmp))

    @classmethod
    def load(cls, path: Path, dim: int, params: IndexParams | None = None) -> VectorIndex:
        index = cls(dim, params)
        index._index = faiss.read_index(str(path))
        if index._index.d != dim:
            raise ValueError(f"{path} holds {index._index.d}-d vectors, the model makes {dim}-d")
        return index

    def wanted_kind(self) -> str:
        """The kind the settings ask for at this size."""
        return "flat" if len(self) <= self.params.flat_max else self.params.ann

    def conform(self) -> bool:
        """Rebuild as the settings' kind if it is another (a snapshot from older settings); True if rebuilt."""
        with self._write_lock:
            if self.kind == self.wanted_kind():
                return False
            log.info("vector index: %s over %d vectors, the settings ask for %s: rebuilding", self.kind, len(self), self.wanted_kind())
            self._rebuild_beside()
            return True
