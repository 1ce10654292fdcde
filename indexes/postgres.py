"""The ``postgres`` store backend: collections, documents, units, vectors (pgvector HNSW) and the
keyword index in one PostgreSQL database, so several ``mmrag serve`` replicas and ingestion workers
share it. It implements ``indexes.base.DocumentStore``.

Why the keyword index is not Postgres full-text search: ``ts_rank_cd`` is not BM25, and fusion weighs
the exact BM25 score and query-term coverage of every candidate (docs/benchmarks.md, "Fusion
features"). So the same tokenizer as the local backend (``indexes.tokenize``) fills a postings table
(term, unit, tf, unit length) and a per-collection document-frequency table, and BM25 is summed in
SQL with rank_bm25's formula: scores equal the local backend's.

Consistency: one transaction per document. Commits to one collection take a transaction-scoped
advisory lock on it, so document frequencies and collection totals are updated in order; readers
never wait (MVCC). Vectors of any width share one table; each (modality, width) gets its own partial
HNSW index on a cast of the vector, which is what pgvector needs to index unfixed widths.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from indexes.base import EXACT_FILTERED_MAX, exact_top
from indexes.files import remove_blob
from indexes.records import (
    CollectionRecord,
    DocumentRecord,
    NewDocument,
    StagedVectors,
    StoredUnit,
    UnitFilter,
    check_models,
)
from indexes.tokenize import QUESTION_WORDS, tokenize

log = logging.getLogger(__name__)
SCHEMA_VERSION = "1"
K1, B, EPSILON = 1.5, 0.75, 0.25  # rank_bm25's BM25Okapi defaults, as indexes.bm25
COMMON_SHARE, COMMON_MIN_UNITS = 0.05, 5000  # a term in over 5% of a collection's units is "common" (PostgresKeywordScores.top)
COMMON_CACHE_TERMS = 256  # common terms' postings kept in memory (each ~2 MB per 100k units)

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS mmrag_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS collections (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    generation bigint NOT NULL DEFAULT 0,
    created_at double precision NOT NULL,
    models jsonb,
    n_units bigint NOT NULL DEFAULT 0,      -- BM25's N
    total_terms bigint NOT NULL DEFAULT 0   -- BM25's average length is total_terms / n_units
);
CREATE TABLE IF NOT EXISTS documents (
    id bigserial PRIMARY KEY,
    collection_id bigint NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    source text NOT NULL,
    file_name text NOT NULL,
    content_hash text,
    format text,
    status text NOT NULL,
    error text,
    pages integer,
    n_units integer NOT NULL DEFAULT 0,
    size_bytes bigint,
    original_path text,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    UNIQUE (collection_id, source)
);
CREATE TABLE IF NOT EXISTS units (
    id bigserial PRIMARY KEY,
    document_id bigint NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    collection_id bigint NOT NULL,
    type text NOT NULL,
    position integer NOT NULL,
    page integer,
    bbox jsonb,
    heading jsonb NOT NULL,
    text text NOT NULL,
    html text,
    caption text,
    image_path text,
    meta jsonb NOT NULL,
    n_terms integer NOT NULL
);
CREATE INDEX IF NOT EXISTS units_document ON units (document_id);
CREATE INDEX IF NOT EXISTS units_collection ON units (collection_id, type);
CREATE TABLE IF NOT EXISTS unit_vectors (  -- document and type copied here so filters need no join
    unit_id bigint NOT NULL REFERENCES units(id) ON DELETE CASCADE,
    modality text NOT NULL,
    collection_id bigint NOT NULL,
    document_id bigint NOT NULL,
    type text NOT NULL,
    dim integer NOT NULL,
    vec vector NOT NULL,
    PRIMARY KEY (unit_id, modality)
);
CREATE INDEX IF NOT EXISTS unit_vectors_collection ON unit_vectors (collection_id, modality);
CREATE TABLE IF NOT EXISTS sentence_vectors (
    unit_id bigint PRIMARY KEY REFERENCES units(id) ON DELETE CASCADE,
    n integer NOT NULL,
    vecs bytea NOT NULL  -- float16, n x dim
);
CREATE TABLE IF NOT EXISTS postings (
    collection_id bigint NOT NULL,
    term text NOT NULL,
    unit_id bigint NOT NULL REFERENCES units(id) ON DELETE CASCADE,
    tf integer NOT NULL,
    dl integer NOT NULL,  -- the unit's length in terms, copied here so scoring needs no join
    PRIMARY KEY (collection_id, term, unit_id)
);
CREATE INDEX IF NOT EXISTS postings_unit ON postings (unit_id);
CREATE TABLE IF NOT EXISTS terms (
    collection_id bigint NOT NULL,
    term text NOT NULL,
    df integer NOT NULL,
    PRIMARY KEY (collection_id, term)
);
CREATE TABLE IF NOT EXISTS staged_vectors (
    unit_id bigint PRIMARY KEY,
    collection_id bigint NOT NULL,
    text_vec vector,
    image_vec vector,
    sent_n integer,
    sent_vecs bytea
);
"""

DOC_COLUMNS = ("id, collection_id, source, file_name, status, content_hash, format, error, pages, n_units, size_bytes, "
               "original_path, created_at, updated_at")
UNIT_COLUMNS = "id, document_id, collection_id, type, position, page, bbox, heading, text, html, caption, image_path, meta"
COLUMN = {"text": "text_vec", "image": "image_vec"}


def _clean(value):
    """Postgres text and jsonb cannot hold NUL characters, which extracted PDF text sometimes has."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _json(value) -> str:
    return json.dumps(_clean(value), ensure_ascii=False, default=str)


def _array(v) -> np.ndarray:
    """pgvector's Python type as float32 (newer pgvector returns a Vector object, older a numpy array)."""
    return np.asarray(v.to_numpy() if hasattr(v, "to_numpy") else v, np.float32)


def _f16(v) -> bytes | None:
    return None if v is None or len(v) == 0 else np.asarray(v, np.float16).tobytes()


class PostgresStore:
    def __init__(self, url: str, blob_dir: Path, ef_search: int = 256) -> None:
        self.url = url
        self.blob_dir = Path(blob_dir)
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.ef_search = ef_search
        self._local = threading.local()
        self._conns: list = []
        self._conns_lock = threading.Lock()
        self._idf_cache: dict[tuple[int, int], float] = {}  # (collection, generation) -> rank_bm25's average idf
        self._indexed: set[tuple[str, int]] = set()  # (modality, width) with an HNSW index
        self._postings_cache: OrderedDict[tuple[int, int, str], tuple] = OrderedDict()  # see common_postings
        self._cache_lock = threading.Lock()
        with self._conn().transaction():
            self._conn().execute("SELECT pg_advisory_xact_lock(424242)")  # two processes creating the schema at once
            self._conn().execute(SCHEMA)
            self._conn().execute("INSERT INTO mmrag_meta VALUES ('schema', %s) ON CONFLICT (key) DO NOTHING", (SCHEMA_VERSION,))

    @classmethod
    def from_settings(cls, settings) -> PostgresStore:
        if not settings.postgres_url:
            raise ValueError("MMRAG_STORE=postgres needs MMRAG_POSTGRES_URL (postgresql://user:password@host:port/db)")
        return cls(settings.postgres_url, settings.data_dir / "blobs", settings.faiss_ef_search)

    # -- connections -------------------------------------------------------------------------
    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            import psycopg
            from pgvector.psycopg import register_vector

            conn = psycopg.connect(self.url, autocommit=True)
            try:
                register_vector(conn)
            except psycopg.ProgrammingError:  # a fresh database: the extension comes with the schema
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                register_vector(conn)
            conn.execute(f"SET hnsw.ef_search = {int(self.ef_search)}")
            conn.execute("SET hnsw.iterative_scan = strict_order")  # filtered searches keep looking until k are found
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    def _rows(self, sql: str, params=()) -> list[tuple]:
        return self._conn().execute(sql, params).fetchall()

    @contextmanager
    def _tx(self) -> Iterator:
        conn = self._conn()
        with conn.transaction():
            yield conn

    def close(self) -> None:
        with self._conns_lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
        self._local = threading.local()

    def ping(self) -> None:
        self._rows("SELECT 1")

    @contextmanager
    def writer(self, wait_s: float = 600.0) -> Iterator[None]:
        """Postgres takes concurrent writers (each commit locks its collection briefly): nothing to hold."""
        yield

    def flush(self, collection_id: int) -> None:
        """Every commit is durable when it returns: nothing to snapshot."""

    # -- collections -------------------------------------------------------------------------
    def collection_id(self, name: str, create: bool = False) -> int | None:
        rows = self._rows("SELECT id FROM collections WHERE name = %s", (name,))
        if rows or not create:
            return rows[0][0] if rows else None
        self._conn().execute("INSERT INTO collections (name, created_at) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                             (_clean(name), time.time()))
        return self._rows("SELECT id FROM collections WHERE name = %s", (name,))[0][0]

    def collection_name(self, collection_id: int) -> str | None:
        rows = self._rows("SELECT name FROM collections WHERE id = %s", (collection_id,))
        return rows[0][0] if rows else None

    def collections(self) -> list[CollectionRecord]:
        rows = self._rows(
            "SELECT c.id, c.name, c.generation, c.created_at,"
            " (SELECT count(*) FROM documents d WHERE d.collection_id = c.id AND d.status = 'done'),"
            " c.n_units FROM collections c ORDER BY c.name")
        return [CollectionRecord(*r) for r in rows]

    def delete_collection(self, collection_id: int) -> None:
        blobs = [r[0] for r in self._rows(
            "SELECT image_path FROM units WHERE collection_id = %s AND image_path IS NOT NULL UNION"
            " SELECT original_path FROM documents WHERE collection_id = %s AND original_path IS NOT NULL",
            (collection_id, collection_id))]
        with self._tx() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (collection_id,))
            for table in ("postings", "terms", "unit_vectors"):
                db.execute(f"DELETE FROM {table} WHERE collection_id = %s", (collection_id,))
            db.execute("DELETE FROM units WHERE collection_id = %s", (collection_id,))
            db.execute("DELETE FROM collections WHERE id = %s", (collection_id,))  # documents cascade
        self._collect_garbage_blobs(blobs)

    def bind_models(self, collection_id: int, models: dict[str, str]) -> None:
        with self._tx() as db:
            row = db.execute("SELECT name, models FROM collections WHERE id = %s FOR UPDATE", (collection_id,)).fetchone()
            if row is None:
                return
            name, recorded = row[0], row[1] or {}
            updated = dict(recorded)
            for kind in ("text", "image"):
                new = models.get(kind, "none")
                if new != "none" and recorded.get(kind) != new and not db.execute(
                        "SELECT 1 FROM unit_vectors WHERE collection_id = %s AND modality = %s LIMIT 1", (collection_id, kind)).fetchone():
                    updated[kind] = new  # no vectors of this kind yet: nothing to conflict with
            if updated != recorded:
                db.execute("UPDATE collections SET models = %s WHERE id = %s", (json.dumps(updated), collection_id))
        check_models(name, updated, models)

    def models(self, collection_id: int) -> dict[str, str] | None:
        rows = self._rows("SELECT models FROM collections WHERE id = %s", (collection_id,))
        return rows[0][0] if rows and rows[0][0] else None

    def generation(self, collection_id: int) -> int:
        rows = self._rows("SELECT generation FROM collections WHERE id = %s", (collection_id,))
        return rows[0][0] if rows else -1

    # -- documents ---------------------------------------------------------------------------
    def document(self, doc_id: int) -> DocumentRecord | None:
        rows = self._rows(f"SELECT {DOC_COLUMNS} FROM documents WHERE id = %s", (doc_id,))
        return DocumentRecord(*rows[0]) if rows else None

    def document_by_source(self, collection_id: int, source: str) -> DocumentRecord | None:
        rows = self._rows(f"SELECT {DOC_COLUMNS} FROM documents WHERE collection_id = %s AND source = %s", (collection_id, _clean(source)))
        return DocumentRecord(*rows[0]) if rows else None

    def documents(self, collection_id: int) -> list[DocumentRecord]:
        return [DocumentRecord(*r) for r in self._rows(f"SELECT {DOC_COLUMNS} FROM documents WHERE collection_id = %s ORDER BY id",
                                                      (collection_id,))]

    def commit_document(self, doc: NewDocument) -> tuple[int, list[int]]:
        cid, now = doc.collection_id, time.time()
        tokens = [tokenize(new.unit.search_text()) for new in doc.units]
        self._ensure_vector_indexes(doc)
        with self._tx() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (cid,))
            old = db.execute("SELECT id, original_path FROM documents WHERE collection_id = %s AND source = %s FOR UPDATE",
                             (cid, _clean(doc.source))).fetchone()
            old_paths: list[str] = []
            removed_units, removed_terms = 0, 0
            df_delta: Counter[str] = Counter()
            if old is not None:
                doc_id = old[0]
                old_paths = [r[0] for r in db.execute("SELECT image_path FROM units WHERE document_id = %s AND image_path IS NOT NULL",
                                                      (doc_id,))]
                old_paths += [old[1]] if old[1] else []
                removed_units, removed_terms, df_delta = self._leaving(db, doc_id)
                db.execute("DELETE FROM units WHERE document_id = %s", (doc_id,))  # postings and vectors cascade
                db.execute("UPDATE documents SET file_name=%s, content_hash=%s, format=%s, status='done', error=NULL, pages=%s,"
                           " n_units=%s, size_bytes=%s, original_path=%s, updated_at=%s WHERE id=%s",
                           (_clean(doc.file_name), doc.content_hash, doc.format, doc.pages, len(doc.units), doc.size_bytes,
                            doc.original_path, now, doc_id))
            else:
                doc_id = db.execute(
                    "INSERT INTO documents (collection_id, source, file_name, content_hash, format, status, pages, n_units,"
                    " size_bytes, original_path, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, 'done', %s, %s, %s, %s, %s, %s)"
                    " RETURNING id", (cid, _clean(doc.source), _clean(doc.file_name), doc.content_hash, doc.format, doc.pages,
                                      len(doc.units), doc.size_bytes, doc.original_path, now, now)).fetchone()[0]
            new_ids = self._insert_units(db, cid, doc_id, doc, tokens, df_delta)
            self._apply_df(db, cid, df_delta)
            db.execute("UPDATE collections SET generation = generation + 1, n_units = n_units + %s, total_terms = total_terms + %s"
                       " WHERE id = %s", (len(doc.units) - removed_units, sum(map(len, tokens)) - removed_terms, cid))
        self._collect_garbage_blobs(old_paths)
        return doc_id, new_ids

    def _insert_units(self, db, cid: int, doc_id: int, doc: NewDocument, tokens: list[list[str]], df_delta: Counter) -> list[int]:
        new_ids = []
        for new, toks in zip(doc.units, tokens):
            u = new.unit
            uid = db.execute(
                f"INSERT INTO units ({UNIT_COLUMNS.replace('id, ', '', 1)}, n_terms)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (doc_id, cid, u.type, u.position, u.page, _json(u.bbox) if u.bbox else None, _json(u.heading), _clean(u.text),
                 _clean(u.html), _clean(u.caption), u.image_path, _json(u.meta), len(toks))).fetchone()[0]
            new_ids.append(uid)
        with db.cursor().copy("COPY postings (collection_id, term, unit_id, tf, dl) FROM STDIN") as copy:
            for uid, toks in zip(new_ids, tokens):
                counts = Counter(toks)
                for term, tf in counts.items():
                    copy.write_row((cid, _clean(term), uid, tf, len(toks)))
                df_delta.update(counts.keys())
        rows = [(uid, modality, cid, doc_id, new.unit.type, len(vec), np.asarray(vec, np.float32))
                for uid, new in zip(new_ids, doc.units)
                for modality, vec in (("text", new.text_vec), ("image", new.image_vec)) if vec is not None]
        if rows:
            db.cursor().executemany("INSERT INTO unit_vectors (unit_id, modality, collection_id, document_id, type, dim, vec)"
                                    " VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)
        sentences = [(uid, len(new.sentence_vecs), _f16(new.sentence_vecs)) for uid, new in zip(new_ids, doc.units)
                     if new.sentence_vecs is not None and len(new.sentence_vecs)]
        if sentences:
            db.cursor().executemany("INSERT INTO sentence_vectors (unit_id, n, vecs) VALUES (%s, %s, %s)", sentences)
        return new_ids

    @staticmethod
    def _apply_df(db, cid: int, delta: Counter) -> None:
        changed = sorted((t, n) for t, n in delta.items() if n)
        if not changed:
            return
        db.cursor().executemany("INSERT INTO terms (collection_id, term, df) VALUES (%s, %s, %s)"
                                " ON CONFLICT (collection_id, term) DO UPDATE SET df = terms.df + EXCLUDED.df",
                                [(cid, _clean(t), n) for t, n in changed])
        db.execute("DELETE FROM terms WHERE collection_id = %s AND df <= 0", (cid,))

    def _ensure_vector_indexes(self, doc: NewDocument) -> None:
        """An HNSW index per (modality, width) the first time that width is written (outside the commit's
        transaction: building it takes a lock on the table)."""
        for modality, attr in COLUMN.items():
            widths = {len(getattr(new, attr)) for new in doc.units if getattr(new, attr) is not None}
            for dim in widths:
                self._ensure_index(modality, dim)

    def _ensure_index(self, modality: str, dim: int) -> None:
        if (modality, dim) in self._indexed:
            return
        self._conn().execute(f"CREATE INDEX IF NOT EXISTS unit_vectors_hnsw_{modality}_{int(dim)} ON unit_vectors"
                             f" USING hnsw ((vec::vector({int(dim)})) vector_ip_ops) WITH (m = 16, ef_construction = 64)"
                             f" WHERE modality = '{modality}' AND dim = {int(dim)}")
        self._indexed.add((modality, dim))

    def record_failure(self, collection_id: int, source: str, file_name: str, content_hash: str | None, error: str,
                       size_bytes: int | None = None) -> int:
        now = time.time()
        with self._tx() as db:
            old = db.execute("SELECT id, status FROM documents WHERE collection_id = %s AND source = %s FOR UPDATE",
                             (collection_id, _clean(source))).fetchone()
            if old is None:
                return db.execute("INSERT INTO documents (collection_id, source, file_name, content_hash, status, error, size_bytes,"
                                  " created_at, updated_at) VALUES (%s, %s, %s, %s, 'failed', %s, %s, %s, %s) RETURNING id",
                                  (collection_id, _clean(source), _clean(file_name), content_hash, _clean(error), size_bytes,
                                   now, now)).fetchone()[0]
            if old[1] == "done":
                db.execute("UPDATE documents SET error = %s, updated_at = %s WHERE id = %s",
                           (_clean(f"latest version failed: {error}"), now, old[0]))
            else:
                db.execute("UPDATE documents SET status='failed', error=%s, content_hash=%s, updated_at=%s WHERE id=%s",
                           (_clean(error), content_hash, now, old[0]))
            return old[0]

    def delete_document(self, doc_id: int) -> None:
        doc = self.document(doc_id)
        if doc is None:
            raise KeyError(doc_id)
        paths = [u.image_path for u in self.document_units(doc_id) if u.image_path] + ([doc.original_path] if doc.original_path else [])
        with self._tx() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (doc.collection_id,))
            n, total, delta = self._leaving(db, doc_id)
            if db.execute("DELETE FROM documents WHERE id = %s RETURNING id", (doc_id,)).fetchone() is None:
                raise KeyError(doc_id)  # deleted meanwhile
            self._apply_df(db, doc.collection_id, delta)
            db.execute("UPDATE collections SET generation = generation + 1, n_units = n_units - %s, total_terms = total_terms - %s"
                       " WHERE id = %s", (n, total, doc.collection_id))
        self._collect_garbage_blobs(paths)

    @staticmethod
    def _leaving(db, doc_id: int) -> tuple[int, int, Counter]:
        """What a document's units take out of BM25's statistics: (units, their terms, df changes)."""
        n, total = db.execute("SELECT count(*), coalesce(sum(n_terms), 0) FROM units WHERE document_id = %s", (doc_id,)).fetchone()
        delta: Counter[str] = Counter()
        for term, k in db.execute("SELECT p.term, count(*) FROM postings p JOIN units u ON u.id = p.unit_id"
                                  " WHERE u.document_id = %s GROUP BY p.term", (doc_id,)):
            delta[term] -= k
        return n, total, delta

    def _collect_garbage_blobs(self, removed_paths: list[str]) -> None:
        """Blob files are shared by content hash: remove one only when no unit or document points at it."""
        for path in removed_paths:
            if not self._rows("SELECT 1 FROM units WHERE image_path = %s UNION ALL"
                              " SELECT 1 FROM documents WHERE original_path = %s LIMIT 1", (path, path)):
                remove_blob(self.blob_dir, path)

    # -- units -------------------------------------------------------------------------------
    @staticmethod
    def _unit(r) -> StoredUnit:
        return StoredUnit(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7] or [], r[8], r[9], r[10], r[11], r[12] or {})

    def units(self, ids: Sequence[int]) -> dict[int, StoredUnit]:
        ids = [int(i) for i in ids]
        rows = self._rows(f"SELECT {UNIT_COLUMNS} FROM units WHERE id = ANY(%s)", (ids,)) if ids else []
        return {r[0]: self._unit(r) for r in rows}

    def texts(self, ids: Sequence[int]) -> dict[int, str]:
        ids = [int(i) for i in ids]
        return dict(self._rows("SELECT id, text FROM units WHERE id = ANY(%s)", (ids,))) if ids else {}

    def document_units(self, doc_id: int) -> list[StoredUnit]:
        return [self._unit(r) for r in self._rows(f"SELECT {UNIT_COLUMNS} FROM units WHERE document_id = %s ORDER BY position", (doc_id,))]

    def unit_ids(self, collection_id: int, filters: UnitFilter | None = None) -> np.ndarray:
        if filters is not None and filters.matches_nothing:
            return np.zeros(0, np.int64)
        where, params = _unit_where("", collection_id, filters)
        rows = self._rows(f"SELECT id FROM units WHERE {where} ORDER BY id", params)
        return np.fromiter((r[0] for r in rows), np.int64, len(rows))

    # -- re-embedding --------------------------------------------------------------------------
    def clear_staged(self, collection_id: int) -> None:
        self._conn().execute("DELETE FROM staged_vectors WHERE collection_id = %s OR unit_id NOT IN (SELECT id FROM units)", (collection_id,))

    def stage_vectors(self, rows: list[StagedVectors]) -> None:
        if not rows:
            return
        owners = dict(self._rows("SELECT id, collection_id FROM units WHERE id = ANY(%s)", ([r.unit_id for r in rows],)))
        vec = (lambda v: None if v is None or not len(v) else np.asarray(v, np.float32))  # noqa: E731
        with self._tx() as db:
            db.cursor().executemany(
                "INSERT INTO staged_vectors (unit_id, collection_id, text_vec, image_vec, sent_n, sent_vecs) VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (unit_id) DO UPDATE SET text_vec = EXCLUDED.text_vec, image_vec = EXCLUDED.image_vec,"
                " sent_n = EXCLUDED.sent_n, sent_vecs = EXCLUDED.sent_vecs",
                [(r.unit_id, owners.get(r.unit_id, -1), vec(r.text_vec), vec(r.image_vec),
                  None if r.sentence_vecs is None or not len(r.sentence_vecs) else len(r.sentence_vecs), _f16(r.sentence_vecs))
                 for r in rows])

    def swap_staged(self, collection_id: int, models: dict[str, str]) -> int:
        with self._tx() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (collection_id,))
            n = db.execute("SELECT count(*) FROM units WHERE collection_id = %s", (collection_id,)).fetchone()[0]
            staged = db.execute("SELECT count(*) FROM staged_vectors s JOIN units u ON u.id = s.unit_id WHERE u.collection_id = %s",
                                (collection_id,)).fetchone()[0]
            if staged != n:
                raise RuntimeError(f"re-embedding staged {staged} of {n} units; nothing was changed")
            db.execute("DELETE FROM unit_vectors WHERE collection_id = %s", (collection_id,))
            for modality, column in COLUMN.items():
                db.execute(f"INSERT INTO unit_vectors (unit_id, modality, collection_id, document_id, type, dim, vec)"
                           f" SELECT u.id, %s, u.collection_id, u.document_id, u.type, vector_dims(s.{column}), s.{column}"
                           f" FROM staged_vectors s JOIN units u ON u.id = s.unit_id WHERE u.collection_id = %s AND s.{column} IS NOT NULL",
                           (modality, collection_id))
            db.execute("DELETE FROM sentence_vectors WHERE unit_id IN (SELECT id FROM units WHERE collection_id = %s)", (collection_id,))
            db.execute("INSERT INTO sentence_vectors (unit_id, n, vecs) SELECT s.unit_id, s.sent_n, s.sent_vecs FROM staged_vectors s"
                       " JOIN units u ON u.id = s.unit_id WHERE u.collection_id = %s AND s.sent_vecs IS NOT NULL", (collection_id,))
            db.execute("UPDATE collections SET models = %s, generation = generation + 1 WHERE id = %s", (json.dumps(models), collection_id))
            db.execute("DELETE FROM staged_vectors WHERE collection_id = %s", (collection_id,))
            dims = db.execute("SELECT DISTINCT modality, dim FROM unit_vectors WHERE collection_id = %s", (collection_id,)).fetchall()
        for modality, dim in dims:  # a new model may bring a new width
            self._ensure_index(modality, dim)
        return n

    # -- vectors -------------------------------------------------------------------------------
    def vector_count(self, collection_id: int, modality: str) -> int:
        return self._rows("SELECT count(*) FROM unit_vectors WHERE collection_id = %s AND modality = %s", (collection_id, modality))[0][0]

    def has_vectors(self, collection_id: int, modality: str) -> bool:
        return self._rows("SELECT EXISTS (SELECT 1 FROM unit_vectors WHERE collection_id = %s AND modality = %s)",
                          (collection_id, modality))[0][0]

    def vector_search(self, collection_id: int, modality: str, query: np.ndarray, k: int,
                      filters: UnitFilter | None = None) -> tuple[np.ndarray, np.ndarray]:
        empty = np.zeros(0, np.int64), np.zeros(0, np.float32)
        if filters is not None and filters.matches_nothing:
            return empty
        query = np.asarray(query, np.float32).reshape(-1)
        dim = len(query)
        if filters is not None and (filters.document_ids is not None):
            allowed = self.unit_ids(collection_id, filters)
            if len(allowed) <= EXACT_FILTERED_MAX:  # a narrow filter: exact scores over its units
                return exact_top(*self.vectors(allowed, modality), query, k)
        where, params = _unit_where("v", collection_id, filters)  # unit_vectors carries the unit's type and document
        rows = self._rows(f"SELECT v.unit_id, -(v.vec::vector({dim}) <#> %s::vector({dim})) FROM unit_vectors v WHERE {where}"
                          f" AND v.modality = %s AND v.dim = %s ORDER BY v.vec::vector({dim}) <#> %s::vector({dim}) LIMIT %s",
                          [query, *params, modality, dim, query, int(k)])
        if not rows:
            return empty
        return np.array([r[0] for r in rows], np.int64), np.array([r[1] for r in rows], np.float32)

    def vectors(self, ids, modality: str) -> tuple[np.ndarray, np.ndarray]:
        ids = [int(i) for i in ids]
        rows = self._rows("SELECT unit_id, vec FROM unit_vectors WHERE unit_id = ANY(%s) AND modality = %s", (ids, modality)) if ids else []
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        order = {u: i for i, u in enumerate(ids)}
        rows.sort(key=lambda r: order[r[0]])
        return np.array([r[0] for r in rows], np.int64), np.vstack([_array(r[1]) for r in rows])

    def sentence_vectors(self, ids) -> dict[int, np.ndarray]:
        ids = [int(i) for i in ids]
        rows = self._rows("SELECT unit_id, n, vecs FROM sentence_vectors WHERE unit_id = ANY(%s)", (ids,)) if ids else []
        return {uid: np.frombuffer(blob, dtype=np.float16).reshape(n, -1).astype(np.float32) for uid, n, blob in rows}

    # -- keywords ------------------------------------------------------------------------------
    def keyword_scores(self, collection_id: int, query: str, filters: UnitFilter | None = None) -> PostgresKeywordScores:
        generation, n_docs, total = self._rows("SELECT generation, n_units, total_terms FROM collections WHERE id = %s",
                                               (collection_id,))[0]
        counts = Counter(tokenize(query))
        dfs = dict(self._rows("SELECT term, df FROM terms WHERE collection_id = %s AND term = ANY(%s)",
                              (collection_id, list(counts)))) if counts else {}
        floor = EPSILON * self._average_idf(collection_id, generation, n_docs)
        weights = {}  # term -> idf x its count in the query, as rank_bm25 adds a repeated term again
        for term, count in counts.items():
            df = dfs.get(term)
            if df:
                idf = math.log(n_docs - df + 0.5) - math.log(df + 0.5)
                weights[term] = (idf if idf >= 0 else floor) * count
        unseen = math.log1p((n_docs + 0.5) / 0.5)
        coverage = {t: (math.log1p((n_docs - dfs[t] + 0.5) / (dfs[t] + 0.5)) if dfs.get(t) else unseen)
                    for t in counts if t not in QUESTION_WORDS}
        common = {t for t in weights if n_docs >= COMMON_MIN_UNITS and dfs[t] > COMMON_SHARE * n_docs}
        return PostgresKeywordScores(self, collection_id, weights, coverage, (total / n_docs) if n_docs else 0.0, filters, common,
                                     generation)

    def common_postings(self, collection_id: int, generation: int, term: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(unit ids, tf, unit length) of every posting of ``term``, cached per collection generation: the
        terms in a large share of units, which BM25 must score everywhere, at ~1 ms in numpy instead of
        a scan of 100k postings per query."""
        key = (collection_id, generation, term)
        with self._cache_lock:
            got = self._postings_cache.get(key)
            if got is not None:
                self._postings_cache.move_to_end(key)
                return got
        row = self._rows("SELECT coalesce(array_agg(unit_id), '{}'), coalesce(array_agg(tf), '{}'), coalesce(array_agg(dl), '{}')"
                         " FROM postings WHERE collection_id = %s AND term = %s", (collection_id, term))[0]
        got = (np.array(row[0], np.int64), np.array(row[1], np.float64), np.array(row[2], np.float64))
        with self._cache_lock:
            for stale in [k for k in self._postings_cache if k[0] == collection_id and k[1] != generation]:
                del self._postings_cache[stale]
            self._postings_cache[key] = got
            while len(self._postings_cache) > COMMON_CACHE_TERMS:
                self._postings_cache.popitem(last=False)
        return got

    def _average_idf(self, collection_id: int, generation: int, n_docs: int) -> float:
        """rank_bm25 floors negative idfs at epsilon x the mean idf over the whole vocabulary: one scan
        of the collection's terms per generation, then cached."""
        key = (collection_id, generation)
        if key not in self._idf_cache:
            row = self._rows("SELECT count(*), coalesce(sum(ln(%s - df + 0.5) - ln(df + 0.5)), 0) FROM terms WHERE collection_id = %s",
                             (n_docs, collection_id))[0]
            if len(self._idf_cache) > 256:
                self._idf_cache.clear()
            self._idf_cache[key] = float(row[1]) / row[0] if row[0] else 0.0
        return self._idf_cache[key]


def _unit_where(alias: str, collection_id: int, filters: UnitFilter | None) -> tuple[str, list]:
    p = f"{alias}." if alias else ""
    where, params = f"{p}collection_id = %s", [collection_id]
    if filters is not None and filters.types is not None:
        where += f" AND {p}type = ANY(%s)"
        params.append(list(filters.types))
    if filters is not None and filters.document_ids is not None:
        where += f" AND {p}document_id = ANY(%s)"
        params.append(list(filters.document_ids))
    return where, params


class PostgresKeywordScores:
    """One query's BM25 over one collection, computed in Postgres from the postings table."""

    tokenizer = staticmethod(tokenize)

    def __init__(self, store: PostgresStore, collection_id: int, weights: dict[str, float], coverage: dict[str, float],
                 avgdl: float, filters: UnitFilter | None, common: set[str] = frozenset(), generation: int = -1) -> None:
        self.store, self.collection_id, self.weights, self.avgdl, self.filters = store, collection_id, weights, avgdl, filters
        self.coverage_weights = coverage
        self.common, self.generation = common, generation  # terms in a large share of the units: scored in memory (see top)
        self._postings: tuple[bytes, dict[int, list[tuple[str, int, int]]]] | None = None

    def _score_sql(self) -> str:
        return (f"SUM(q.w * p.tf * {K1 + 1} / (p.tf + {K1} * (1 - {B} + {B} * p.dl / %s)))")

    def top(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The exact BM25 top-k. Summing every posting of a term most units hold ("the", "of") in SQL
        costs ~250 ms at 100k units, so those terms' postings are kept in memory per collection
        generation (``PostgresStore.common_postings``) and scored with numpy; the rarer terms are
        summed in SQL; the two are added per unit. A commit moves the generation, and the next query
        fetches the common terms' postings again."""
        if not self.weights or (self.filters is not None and self.filters.matches_nothing):
            return np.zeros(0, np.int64), np.zeros(0)
        if not self.common:
            return self._sum(list(self.weights), k)
        rare = [t for t in self.weights if t not in self.common]
        ids, scores = [], []
        if rare:
            got = self._sum(rare, None)
            ids.append(got[0])
            scores.append(got[1])
        allowed = self.store.unit_ids(self.collection_id, self.filters) if self.filters is not None else None
        for term in self.common:
            units, tf, dl = self.store.common_postings(self.collection_id, self.generation, term)
            if allowed is not None:
                keep = np.isin(units, allowed)
                units, tf, dl = units[keep], tf[keep], dl[keep]
            ids.append(units)
            scores.append(self.weights[term] * tf * (K1 + 1) / (tf + K1 * (1 - B + B * dl / (self.avgdl or 1.0))))
        unique, where = np.unique(np.concatenate(ids), return_inverse=True)
        total = np.bincount(where, weights=np.concatenate(scores), minlength=len(unique))
        order = np.lexsort((unique, -total))[:k]
        return unique[order], total[order]

    def _sum(self, terms: list[str], k: int | None) -> tuple[np.ndarray, np.ndarray]:
        """BM25 over ``terms`` summed in SQL for every unit holding one (the best ``k``, or all)."""
        join, params = "", []
        if self.filters is not None:
            where, params = _unit_where("u", self.collection_id, self.filters)
            join = f" JOIN units u ON u.id = p.unit_id AND {where}"
        rows = self.store._rows(
            f"SELECT p.unit_id, {self._score_sql()} AS s FROM postings p"
            " JOIN unnest(%s::text[], %s::float8[]) AS q(term, w) ON q.term = p.term"
            f"{join} WHERE p.collection_id = %s AND p.term = ANY(%s)"
            " GROUP BY p.unit_id ORDER BY s DESC, p.unit_id" + (" LIMIT %s" if k is not None else ""),
            [self.avgdl or 1.0, terms, [self.weights[t] for t in terms], *params, self.collection_id, terms]
            + ([int(k)] if k is not None else []))
        return np.array([r[0] for r in rows], np.int64), np.array([r[1] for r in rows], np.float64)

    def _lookup(self, unit_ids: np.ndarray) -> dict[int, list[tuple[str, int, int]]]:
        """The postings of the query's terms (scored and covered) in the given units; the last lookup is
        kept, as fusion asks for scores and then coverage of the same candidates."""
        key = np.asarray(unit_ids, np.int64).tobytes()
        if self._postings is None or self._postings[0] != key:
            terms = sorted(set(self.weights) | set(self.coverage_weights))
            ids = [int(i) for i in unit_ids]
            out: dict[int, list[tuple[str, int, int]]] = {}
            if terms and ids:
                for uid, term, tf, dl in self.store._rows(
                        "SELECT unit_id, term, tf, dl FROM postings WHERE collection_id = %s AND term = ANY(%s) AND unit_id = ANY(%s)",
                        (self.collection_id, terms, ids)):
                    out.setdefault(uid, []).append((term, tf, dl))
            self._postings = (key, out)
        return self._postings[1]

    def of(self, unit_ids: np.ndarray) -> np.ndarray:
        postings = self._lookup(unit_ids)
        out = np.zeros(len(unit_ids))
        for i, uid in enumerate(unit_ids):
            for term, tf, dl in postings.get(int(uid), ()):
                w = self.weights.get(term)
                if w is not None:
                    out[i] += w * tf * (K1 + 1) / (tf + K1 * (1 - B + B * dl / (self.avgdl or 1.0)))
        return out

    def coverage_of(self, unit_ids: np.ndarray) -> np.ndarray:
        total = sum(self.coverage_weights.values())
        postings = self._lookup(unit_ids)
        out = np.zeros(len(unit_ids))
        if not total:
            return out
        for i, uid in enumerate(unit_ids):
            out[i] = sum(self.coverage_weights.get(term, 0.0) for term, _tf, _dl in postings.get(int(uid), ())) / total
        return out
