"""FAISS vector indexes that carry their own id map and size themselves.

Ids are the docstore's unit ids, stored inside the FAISS file (``IndexIDMap2``/IVF ids), so an
index and its id map are one file and cannot disagree. Small collections use exact inner-product
search; past ``flat_max`` vectors the index is rebuilt as IVF (``nlist`` ~ 4*sqrt(n)), searched
with ``nprobe`` lists.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import faiss
import numpy as np

from indexes.files import atomic_write


class VectorIndex:
    def __init__(self, dim: int, flat_max: int = 100_000, nprobe: int = 16) -> None:
        self.dim = dim
        self.flat_max = flat_max
        self.nprobe = nprobe
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._lock = threading.RLock()

    @property
    def kind(self) -> str:
        return "ivf" if self._ivf() is not None else "flat"

    def _ivf(self):
        try:
            return faiss.extract_index_ivf(self._index)
        except RuntimeError:
            return None

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        with self._lock:
            ivf = self._ivf()
            if ivf is None:
                return faiss.vector_to_array(self._index.id_map).astype(np.int64)
            invlists = ivf.invlists
            out = [faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
                   for i in range(ivf.nlist) if invlists.list_size(i)]
            return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        with self._lock:
            self._index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))
            if self.kind == "flat" and len(self) > self.flat_max:
                self._grow_to_ivf()

    def remove(self, ids: np.ndarray) -> int:
        if len(ids) == 0:
            return 0
        with self._lock:
            return int(self._index.remove_ids(np.asarray(ids, dtype=np.int64)))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of shape (n_queries, k); missing hits have id -1."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        with self._lock:
            if len(self) == 0:
                n = len(queries)
                return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
            ivf = self._ivf()
            if ivf is not None:
                ivf.nprobe = self.nprobe
            return self._index.search(queries, min(k, len(self)))

    def _grow_to_ivf(self) -> None:
        ids = self.ids()
        vectors = np.vstack([self._index.reconstruct(int(i)) for i in ids]) if self.kind == "flat" else None
        self._index = self._build_ivf(ids, vectors)

    def _build_ivf(self, ids: np.ndarray, vectors: np.ndarray):
        n = len(ids)
        nlist = max(16, int(4 * math.sqrt(n)))
        quantizer = faiss.IndexFlatIP(self.dim)
        ivf = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        sample = vectors[rng.choice(n, size=min(n, nlist * 64), replace=False)]
        ivf.train(sample)
        ivf.add_with_ids(vectors, ids)
        ivf.nprobe = self.nprobe
        return ivf

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, dim: int, flat_max: int = 100_000, nprobe: int = 16) -> VectorIndex:
        """Bulk build: picks flat or IVF from the size up front (no flat detour)."""
        index = cls(dim, flat_max, nprobe)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, dim)
        if len(ids) > flat_max:
            index._index = index._build_ivf(np.asarray(ids, np.int64), vectors)
        else:
            index.add(ids, vectors)
        return index

    def save(self, path: Path) -> None:
        with self._lock:
            atomic_write(path, lambda tmp: faiss.write_index(self._index, tmp))

    @classmethod
    def load(cls, path: Path, dim: int, flat_max: int = 100_000, nprobe: int = 16) -> VectorIndex:
        index = cls(dim, flat_max, nprobe)
        index._index = faiss.read_index(str(path))
        if index._index.d != dim:
            raise ValueError(f"{path} holds {index._index.d}-d vectors, the model makes {dim}-d: rebuild with `mmrag reindex`")
        return index
