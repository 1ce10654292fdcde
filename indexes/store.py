"""The ``local`` store backend: a SQLite docstore plus, per collection, FAISS text and image indexes
and a BM25 index, in one data directory. It implements ``indexes.base.DocumentStore``.

Consistency rules:
- SQLite is the source of truth; a document commits in one transaction.
- Index files are snapshots named by collection id; each carries its own unit ids. Whenever a
  process loads them, or sees the collection's generation move, it reconciles them with SQLite
  by id difference. So a ``kill -9`` between the SQLite commit and the snapshot, or a second
  process writing, costs at most a catch-up on the next access, never a wrong answer.
- One writer at a time per data directory (an advisory file lock).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from indexes.base import EXACT_FILTERED_MAX, WriterBusy, exact_top
from indexes.bm25 import BM25Index, BM25Scores
from indexes.docstore import DocStore
from indexes.files import atomic_write_bytes, remove_blob
from indexes.lock import lock_report, write_owner
from indexes.records import CollectionRecord, DocumentRecord, NewDocument, StagedVectors, StoredUnit, UnitFilter
from indexes.vectors import IndexParams, VectorIndex

log = logging.getLogger(__name__)

MODALITIES = {"text": "text_vec", "image": "image_vec"}


def _id_diff(have: np.ndarray, want: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ids an index holds that the docstore no longer has, ids the docstore has that the index lacks)."""
    return np.setdiff1d(have, want, assume_unique=True), np.setdiff1d(want, have, assume_unique=True)


@dataclass
class CollectionIndexes:
    collection_id: int
    generation: int = -1
    vectors: dict[str, VectorIndex | None] = field(default_factory=lambda: {"text": None, "image": None})
    bm25: BM25Index = field(default_factory=BM25Index)
    models: dict | None = None  # the collection's models when these vectors were loaded (see _reconcile)
    lock: threading.RLock = field(default_factory=threading.RLock)


def _remove(index: VectorIndex, ids: np.ndarray) -> None:
    """Take ids out of a vector index; compact it once masked ids pile up (the index is rebuilt beside
    the old one, which answers searches meanwhile)."""
    index.remove(ids)
    if index.needs_compaction:
        index.compact()


class LocalStore:
    """SQLite is the truth; FAISS and BM25 are derived, cached per collection and snapshotted."""

    def __init__(self, data_dir: Path, params: IndexParams | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.docs = DocStore(self.data_dir / "mmrag.sqlite")
        self.index_dir = self.data_dir / "indexes"
        self.blob_dir = self.data_dir / "blobs"
        self.params = params or IndexParams()
        self._cache: dict[int, CollectionIndexes] = {}
        self._cache_lock = threading.Lock()
        self._writer_fd: int | None = None
        self._writer_depth = 0
        self._thread_lock = threading.RLock()
        self._allowed: dict[tuple, np.ndarray] = {}  # (collection, generation, filter) -> unit ids, a small cache

    @classmethod
    def from_settings(cls, settings) -> LocalStore:
        return cls(settings.data_dir, IndexParams.from_settings(settings))

    # -- writer lock ---------------------------------------------------------------------
    @contextmanager
    def writer(self, wait_s: float = 600.0) -> Iterator[None]:
        """Hold the data directory's writer lock: re-entrant in one thread; other threads of this
        process and other processes wait up to ``wait_s``, then get WriterBusy naming the holder."""
        if not self._thread_lock.acquire(timeout=wait_s):
            raise WriterBusy(f"{self.data_dir} is being written by this process (an ingestion job or a delete is running): retry shortly")
        try:
            if self._writer_depth:
                self._writer_depth += 1
                try:
                    yield
                finally:
                    self._writer_depth -= 1
                return
            fd = os.open(self.data_dir / "writer.lock", os.O_RDWR | os.O_CREAT, 0o644)  # O_CLOEXEC: not passed on exec
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        os.close(fd)
                        raise WriterBusy(lock_report(self.data_dir / "writer.lock")) from None
                    time.sleep(0.2)
            write_owner(fd)
            self._writer_fd, self._writer_depth = fd, 1
            try:
                yield
            finally:
                self._writer_depth = 0
                self._writer_fd = None
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
        finally:
            self._thread_lock.release()

    # -- indexes -------------------------------------------------------------------------
    def _dir(self, collection_id: int) -> Path:
        return self.index_dir / str(collection_id)

    def indexes(self, collection_id: int) -> CollectionIndexes:
        """The collection's indexes, loaded or caught up with SQLite if it moved on."""
        with self._cache_lock:
            cached = self._cache.get(collection_id)
            if cached is None:
                cached = self._load(collection_id)
                self._cache[collection_id] = cached
        generation = self.docs.generation(collection_id)
        if cached.generation != generation:
            with cached.lock:
                if cached.generation != generation:
                    self._reconcile(cached, generation)
        return cached

    def _load(self, collection_id: int) -> CollectionIndexes:
        ci = CollectionIndexes(collection_id)
        folder = self._dir(collection_id)
        manifest_path = folder / "manifest.json"
        if not manifest_path.exists():
            return ci
        try:
            manifest = json.loads(manifest_path.read_text())
            for name, dim in manifest.get("dims", {}).items():
                path = folder / f"{name}.faiss"
                if dim and path.exists():
                    index = ci.vectors[name] = VectorIndex.load(path, dim, self.params)
                    if index.conform():  # e.g. an IVF snapshot from before HNSW: rebuilt once, then saved
                        self._save_conformed(index, path)
            if (folder / "bm25.npz").exists():
                ci.bm25 = BM25Index.load(folder / "bm25.npz")
            ci.models = manifest.get("models")
        except Exception as exc:  # a damaged snapshot is rebuilt from SQLite, never trusted
            log.warning("index snapshot of collection %d unreadable (%s); rebuilding from the docstore", collection_id, exc)
            return CollectionIndexes(collection_id)
        return ci

    def _save_conformed(self, index: VectorIndex, path: Path) -> None:
        """Save a snapshot rebuilt on load, but only while no other process writes: a writer may be
        saving a newer snapshot of the same collection, which an older one must not replace. Skipped,
        the rebuild simply happens again at the next load."""
        try:
            with self.writer(wait_s=0):
                index.save(path)
        except WriterBusy:
            log.info("%s rebuilt to the settings in memory; not saved while another process writes", path)

    def _reconcile(self, ci: CollectionIndexes, generation: int) -> None:
        t0 = time.perf_counter()
        changed = 0
        models, old = self.docs.models(ci.collection_id) or {}, ci.models or {}
        for name in MODALITIES:
            if old.get(name) and models.get(name) != old.get(name):  # re-embedded: same ids, other vectors
                ci.vectors[name] = None  # rebuilt from SQLite below
        ci.models = models
        for name, column in MODALITIES.items():
            db_ids = self.docs.unit_ids(ci.collection_id, column)
            index = ci.vectors[name]
            extra, missing = _id_diff(index.ids() if index is not None else np.zeros(0, np.int64), db_ids)
            if index is not None and len(extra):
                _remove(index, extra)
            if len(missing):
                ids, matrix = self.docs.vectors(missing, column)
                if index is None or index.dim != matrix.shape[1]:
                    # first vectors, or the model changed: rebuild this modality from SQLite
                    ids, matrix = self.docs.vectors(db_ids, column)
                    index = ci.vectors[name] = VectorIndex.build(ids, matrix, matrix.shape[1], self.params)
                else:
                    index.add(ids, matrix)
            changed += len(extra) + len(missing)
        extra, missing = _id_diff(ci.bm25.ids(), self.docs.unit_ids(ci.collection_id))
        ci.bm25.remove(extra)
        ci.bm25.add(self.docs.search_texts(missing))
        changed += len(extra) + len(missing)
        ci.generation = generation
        if changed:
            log.info("collection %d: indexes caught up with the docstore (%d changes, %.2fs)", ci.collection_id, changed, time.perf_counter() - t0)

    def flush(self, collection_id: int) -> None:
        """Snapshot the collection's indexes; each file is replaced atomically, manifest last."""
        ci = self.indexes(collection_id)
        folder = self._dir(collection_id)
        folder.mkdir(parents=True, exist_ok=True)
        with ci.lock:
            dims = {}
            for name, index in ci.vectors.items():
                if index is not None:
                    index.save(folder / f"{name}.faiss")
                    dims[name] = index.dim
                else:
                    (folder / f"{name}.faiss").unlink(missing_ok=True)
            ci.bm25.save(folder / "bm25.npz")
            manifest = {"generation": ci.generation, "dims": dims, "models": ci.models, "saved_at": time.time(),
                        "counts": {"bm25": len(ci.bm25), **{k: len(v) for k, v in ci.vectors.items() if v is not None}}}
            atomic_write_bytes(folder / "manifest.json", json.dumps(manifest, indent=1).encode())

    # -- writes --------------------------------------------------------------------------
    def commit_document(self, doc: NewDocument) -> tuple[int, list[int]]:
        """Store a document (replacing an older version) and update the live indexes."""
        collection_id = doc.collection_id
        with self.writer():
            ci = self.indexes(collection_id)
            old = self.docs.document_by_source(collection_id, doc.source)
            old_paths = [u.image_path for u in self.docs.document_units(old.id)] if old else []
            if old and old.original_path:
                old_paths.append(old.original_path)
            with ci.lock:
                doc_id, new_ids, removed = self.docs.replace_document(doc)
                generation = self.docs.generation(collection_id)
                if ci.generation == generation - 1:
                    self._apply(ci, new_ids, removed, doc)
                    ci.generation = generation
                else:  # someone else wrote in between: catch up by id difference
                    self._reconcile(ci, generation)
            self._collect_garbage_blobs([p for p in old_paths if p])
        return doc_id, new_ids

    def _apply(self, ci: CollectionIndexes, new_ids: list[int], removed: list[int], doc: NewDocument) -> None:
        removed_arr = np.array(removed, np.int64)
        for index in ci.vectors.values():
            if index is not None and len(removed_arr):
                _remove(index, removed_arr)
        ci.bm25.remove(removed)
        for name, column in MODALITIES.items():
            pairs = [(i, getattr(u, column)) for i, u in zip(new_ids, doc.units) if getattr(u, column) is not None]
            if not pairs:
                continue
            ids = np.array([p[0] for p in pairs], np.int64)
            matrix = np.vstack([np.asarray(p[1], np.float32) for p in pairs])
            if ci.vectors[name] is None:
                ci.vectors[name] = VectorIndex(matrix.shape[1], self.params)
            ci.vectors[name].add(ids, matrix)
        ci.bm25.add((i, u.unit.search_text()) for i, u in zip(new_ids, doc.units))

    def delete_document(self, doc_id: int) -> None:
        with self.writer():
            units = self.docs.document_units(doc_id)
            record = self.docs.document(doc_id)
            original = record.original_path if record else None
            collection_id, _removed = self.docs.delete_document(doc_id)
            self.indexes(collection_id)  # reconcile removes them from every index
            self.flush(collection_id)
            self._collect_garbage_blobs([u.image_path for u in units if u.image_path] + ([original] if original else []))

    def delete_collection(self, collection_id: int) -> None:
        with self.writer():
            blobs = [r[0] for r in self.docs.query(
                "SELECT image_path FROM units WHERE collection_id = ? AND image_path IS NOT NULL UNION"
                " SELECT original_path FROM documents WHERE collection_id = ? AND original_path IS NOT NULL",
                (collection_id, collection_id))]
            self.docs.delete_collection(collection_id)
            with self._cache_lock:
                self._cache.pop(collection_id, None)
            shutil.rmtree(self._dir(collection_id), ignore_errors=True)
            self._collect_garbage_blobs(blobs)

    def _collect_garbage_blobs(self, removed_paths: list[str]) -> None:
        """Blob files (images, original PDFs) are shared by content hash: remove one only when no unit
        or document points at it."""
        for path in removed_paths:
            if not self.docs.query("SELECT 1 FROM units WHERE image_path = ? UNION ALL"
                                   " SELECT 1 FROM documents WHERE original_path = ? LIMIT 1", (path, path)):
                remove_blob(self.blob_dir, path)

    # -- the catalogue (indexes.base.Catalogue) ------------------------------------------------
    def collection_id(self, name: str, create: bool = False) -> int | None:
        return self.docs.collection_id(name, create)

    def collection_name(self, collection_id: int) -> str | None:
        return self.docs.collection_name(collection_id)

    def collections(self) -> list[CollectionRecord]:
        return self.docs.collections()

    def bind_models(self, collection_id: int, models: dict[str, str]) -> None:
        self.docs.bind_models(collection_id, models)

    def models(self, collection_id: int) -> dict[str, str] | None:
        return self.docs.models(collection_id)

    def document(self, doc_id: int) -> DocumentRecord | None:
        return self.docs.document(doc_id)

    def document_by_source(self, collection_id: int, source: str) -> DocumentRecord | None:
        return self.docs.document_by_source(collection_id, source)

    def documents(self, collection_id: int) -> list[DocumentRecord]:
        return self.docs.documents(collection_id)

    def record_failure(self, collection_id: int, source: str, file_name: str, content_hash: str | None, error: str,
                       size_bytes: int | None = None) -> int:
        with self.writer():
            return self.docs.record_failure(collection_id, source, file_name, content_hash, error, size_bytes)

    def units(self, ids) -> dict[int, StoredUnit]:
        return self.docs.units(ids)

    def texts(self, ids) -> dict[int, str]:
        return self.docs.texts(ids)

    def document_units(self, doc_id: int) -> list[StoredUnit]:
        return self.docs.document_units(doc_id)

    def unit_ids(self, collection_id: int, filters: UnitFilter | None = None) -> np.ndarray:
        return self.docs.unit_ids(collection_id, None, filters)

    def stage_vectors(self, rows: list[StagedVectors]) -> None:
        self.docs.stage_vectors(rows)

    def clear_staged(self, collection_id: int) -> None:
        self.docs.clear_staged(collection_id)

    def swap_staged(self, collection_id: int, models: dict[str, str]) -> int:
        with self.writer():
            n = self.docs.swap_staged(collection_id, models)
            self.indexes(collection_id)  # the model record moved: vectors rebuild from SQLite
            self.flush(collection_id)
        return n

    def bulk_load(self, docs) -> int:
        """Many new documents in one SQLite transaction, then the indexes built in bulk (much faster than
        commit by commit past ~100k units, where every commit grows FAISS and BM25). Returns units."""
        with self.writer():
            n = self.docs.insert_documents(docs)
        return n

    def ping(self) -> None:
        self.docs.query("SELECT 1")  # WAL: a read never waits for a writer

    def close(self) -> None:
        self.docs.close()

    # -- searching (indexes.base.KeywordIndex, VectorIndexes) ----------------------------------
    def _allowed_ids(self, collection_id: int, filters: UnitFilter | None) -> np.ndarray | None:
        """The units a filter admits, sorted; cached per collection generation (a filter repeats across
        a query's channels, and across the queries of one client)."""
        if filters is None:
            return None
        key = (collection_id, self.docs.generation(collection_id), filters)
        got = self._allowed.get(key)
        if got is None:
            got = self.docs.unit_ids(collection_id, None, filters)
            if len(self._allowed) > 64:
                self._allowed.clear()
            self._allowed[key] = got
        return got

    def keyword_scores(self, collection_id: int, query: str, filters: UnitFilter | None = None) -> BM25Scores:
        scores = self.indexes(collection_id).bm25.score_all(query)
        return scores.restricted(self._allowed_ids(collection_id, filters))

    def vector_count(self, collection_id: int, modality: str) -> int:
        index = self.indexes(collection_id).vectors[modality]
        return 0 if index is None else len(index)

    def has_vectors(self, collection_id: int, modality: str) -> bool:
        return self.vector_count(collection_id, modality) > 0

    def vector_search(self, collection_id: int, modality: str, query: np.ndarray, k: int,
                      filters: UnitFilter | None = None) -> tuple[np.ndarray, np.ndarray]:
        index = self.indexes(collection_id).vectors[modality]
        allowed = self._allowed_ids(collection_id, filters)
        if index is None or len(index) == 0 or (allowed is not None and len(allowed) == 0):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        query = np.asarray(query, np.float32).reshape(-1)
        if allowed is not None and len(allowed) <= EXACT_FILTERED_MAX:
            # a narrow filter: exact scores over its units beat a graph walk that must skip most nodes
            return exact_top(*self.vectors(allowed, modality), query, k)
        scores, ids = index.search(query[None, :], k, allowed)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def vectors(self, ids, modality: str) -> tuple[np.ndarray, np.ndarray]:
        return self.docs.vectors(np.asarray(ids, np.int64), MODALITIES[modality])

    def sentence_vectors(self, ids) -> dict[int, np.ndarray]:
        return self.docs.sentence_vectors(np.asarray(ids, np.int64))

