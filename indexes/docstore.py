"""SQLite docstore: collections, documents and units, with their vectors. The source of truth.

Every write is one transaction, so a document is wholly visible or absent, even after ``kill -9``
(WAL journal, ``synchronous=FULL``). The FAISS and BM25 files are derived from these rows and are
reconciled with them on load (see ``indexes.store``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from indexes.records import (
    LEGACY_MODELS,
    CollectionRecord,
    DocumentRecord,
    NewDocument,
    StagedVectors,
    StoredUnit,
    UnitFilter,
    check_models,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS collections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    generation INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    models TEXT  -- JSON {"text": ..., "image": ...}: what its vectors were made with
);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    file_name TEXT NOT NULL,
    content_hash TEXT,
    format TEXT,
    status TEXT NOT NULL,
    error TEXT,
    pages INTEGER,
    n_units INTEGER NOT NULL DEFAULT 0,
    size_bytes INTEGER,
    original_path TEXT,  -- the stored file pages are rendered from (PDF), in the blob folder
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (collection_id, source)
);
CREATE TABLE IF NOT EXISTS units (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    collection_id INTEGER NOT NULL,
    type TEXT NOT NULL,
    position INTEGER NOT NULL,
    page INTEGER,
    bbox TEXT,
    heading TEXT,
    text TEXT NOT NULL,
    html TEXT,
    caption TEXT,
    image_path TEXT,
    meta TEXT,
    text_vec BLOB,
    image_vec BLOB
);
CREATE INDEX IF NOT EXISTS units_document ON units(document_id);
CREATE TABLE IF NOT EXISTS sentence_vecs (
    unit_id INTEGER PRIMARY KEY REFERENCES units(id) ON DELETE CASCADE,
    n INTEGER NOT NULL,
    vecs BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS units_collection ON units(collection_id);
CREATE TABLE IF NOT EXISTS staged_vecs (  -- new vectors of a re-embedding, swapped in by one transaction
    unit_id INTEGER PRIMARY KEY,
    text_vec BLOB,
    image_vec BLOB,
    sent_n INTEGER,
    sent_vecs BLOB
);
"""
# AUTOINCREMENT: ids are never reused, so an index file that holds id N can only mean that unit.

UNIT_COLUMNS = "id, document_id, collection_id, type, position, page, bbox, heading, text, html, caption, image_path, meta"


def _unit(row: sqlite3.Row) -> StoredUnit:
    return StoredUnit(row["id"], row["document_id"], row["collection_id"], row["type"], row["position"], row["page"],
                      json.loads(row["bbox"]) if row["bbox"] else None, json.loads(row["heading"] or "[]"), row["text"],
                      row["html"], row["caption"], row["image_path"], json.loads(row["meta"] or "{}"))


def _document(row: sqlite3.Row | None) -> DocumentRecord | None:
    return None if row is None else DocumentRecord(**{k: row[k] for k in row.keys()})


def _blob(v, dtype) -> bytes | None:
    return None if v is None or len(v) == 0 else np.asarray(v, dtype).tobytes()


class DocStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._conn().executescript(SCHEMA)  # executescript manages its own transaction
        columns = {r["name"] for r in self.query("PRAGMA table_info(collections)")}
        if "models" not in columns:
            self._record_legacy_models()
        if "original_path" not in {r["name"] for r in self.query("PRAGMA table_info(documents)")}:
            self._conn().execute("ALTER TABLE documents ADD COLUMN original_path TEXT")  # stores from before pages were rendered

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: writers queue instead of failing mid-way)."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        return self._conn().execute(sql, params).fetchall()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- collections ---------------------------------------------------------------------
    def collection_id(self, name: str, create: bool = False) -> int | None:
        rows = self.query("SELECT id FROM collections WHERE name = ?", (name,))
        if rows:
            return rows[0]["id"]
        if not create:
            return None
        with self.tx() as db:
            db.execute("INSERT OR IGNORE INTO collections (name, created_at) VALUES (?, ?)", (name, time.time()))
        return self.query("SELECT id FROM collections WHERE name = ?", (name,))[0]["id"]

    def collection_name(self, collection_id: int) -> str | None:
        rows = self.query("SELECT name FROM collections WHERE id = ?", (collection_id,))
        return rows[0]["name"] if rows else None

    def collections(self) -> list[CollectionRecord]:
        rows = self.query(
            "SELECT c.id, c.name, c.generation, c.created_at,"
            " (SELECT COUNT(*) FROM documents d WHERE d.collection_id = c.id AND d.status = 'done') AS documents,"
            " (SELECT COUNT(*) FROM units u WHERE u.collection_id = c.id) AS units"
            " FROM collections c ORDER BY c.name")
        return [CollectionRecord(**dict(r)) for r in rows]

    def _record_legacy_models(self) -> None:
        """A data dir from before collections recorded their models: its collections were embedded
        with the defaults of then (the default text model has changed since), so that is what is
        recorded; a process configured otherwise is refused with a message, never served vectors of
        another model."""
        with self.tx() as db:
            db.execute("ALTER TABLE collections ADD COLUMN models TEXT")
            for row in db.execute("SELECT id FROM collections").fetchall():
                cid = row["id"]
                if not db.execute("SELECT 1 FROM units WHERE collection_id = ? LIMIT 1", (cid,)).fetchone():
                    continue
                images = db.execute("SELECT 1 FROM units WHERE collection_id = ? AND image_vec IS NOT NULL LIMIT 1", (cid,)).fetchone()
                models = {**LEGACY_MODELS, "image": LEGACY_MODELS["image"] if images else "none", "assumed": True}
                db.execute("UPDATE collections SET models = ? WHERE id = ?", (json.dumps(models), cid))

    def bind_models(self, collection_id: int, models: dict[str, str]) -> None:
        """Record the models of a collection's first vectors; refuse vectors from any other model.

        Vectors of two models in one index are silently wrong (or, with other widths, a FAISS
        crash), so a mismatch is an error that names both and what to do.
        """
        with self.tx() as db:
            row = db.execute("SELECT name, models FROM collections WHERE id = ?", (collection_id,)).fetchone()
            if row is None:
                return
            recorded = json.loads(row["models"]) if row["models"] else {}
            updated = dict(recorded)
            for kind, column in (("text", "text_vec"), ("image", "image_vec")):
                new = models.get(kind, "none")
                if new != "none" and recorded.get(kind) != new and not db.execute(
                        f"SELECT 1 FROM units WHERE collection_id = ? AND {column} IS NOT NULL LIMIT 1", (collection_id,)).fetchone():
                    updated[kind] = new  # no vectors of this kind yet: nothing to conflict with
            if updated != recorded:
                db.execute("UPDATE collections SET models = ? WHERE id = ?", (json.dumps(updated), collection_id))
        check_models(row["name"], updated, models)

    # -- re-embedding ----------------------------------------------------------------------
    def clear_staged(self, collection_id: int) -> None:
        with self.tx() as db:  # leftovers of an interrupted run, and of units deleted since
            db.execute("DELETE FROM staged_vecs WHERE unit_id IN (SELECT id FROM units WHERE collection_id = ?)"
                       " OR unit_id NOT IN (SELECT id FROM units)", (collection_id,))

    def stage_vectors(self, rows: list[StagedVectors]) -> None:
        """Vectors kept aside until :meth:`swap_staged`."""
        with self.tx() as db:
            db.executemany("INSERT OR REPLACE INTO staged_vecs (unit_id, text_vec, image_vec, sent_n, sent_vecs) VALUES (?, ?, ?, ?, ?)",
                           [(r.unit_id, _blob(r.text_vec, np.float32), _blob(r.image_vec, np.float32),
                             None if r.sentence_vecs is None or not len(r.sentence_vecs) else len(r.sentence_vecs),
                             _blob(r.sentence_vecs, np.float16)) for r in rows])

    def swap_staged(self, collection_id: int, models: dict[str, str]) -> int:
        """Every unit of the collection takes its staged vectors, and the collection its new models,
        in one transaction: a crash leaves the old vectors and models, never a mix."""
        with self.tx() as db:
            n = db.execute("SELECT COUNT(*) FROM units WHERE collection_id = ?", (collection_id,)).fetchone()[0]
            staged = db.execute("SELECT COUNT(*) FROM staged_vecs s JOIN units u ON u.id = s.unit_id WHERE u.collection_id = ?",
                                (collection_id,)).fetchone()[0]
            if staged != n:
                raise RuntimeError(f"re-embedding staged {staged} of {n} units; nothing was changed")
            db.execute("UPDATE units SET text_vec = (SELECT text_vec FROM staged_vecs WHERE unit_id = units.id),"
                       " image_vec = (SELECT image_vec FROM staged_vecs WHERE unit_id = units.id) WHERE collection_id = ?",
                       (collection_id,))
            db.execute("DELETE FROM sentence_vecs WHERE unit_id IN (SELECT id FROM units WHERE collection_id = ?)", (collection_id,))
            db.execute("INSERT INTO sentence_vecs (unit_id, n, vecs) SELECT unit_id, sent_n, sent_vecs FROM staged_vecs"
                       " WHERE sent_vecs IS NOT NULL")
            db.execute("UPDATE collections SET models = ?, generation = generation + 1 WHERE id = ?", (json.dumps(models), collection_id))
            db.execute("DELETE FROM staged_vecs WHERE unit_id IN (SELECT id FROM units WHERE collection_id = ?)", (collection_id,))
        return n

    def models(self, collection_id: int) -> dict[str, str] | None:
        rows = self.query("SELECT models FROM collections WHERE id = ?", (collection_id,))
        return json.loads(rows[0]["models"]) if rows and rows[0]["models"] else None

    def generation(self, collection_id: int) -> int:
        rows = self.query("SELECT generation FROM collections WHERE id = ?", (collection_id,))
        return rows[0]["generation"] if rows else -1

    def delete_collection(self, collection_id: int) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM units WHERE collection_id = ?", (collection_id,))
            db.execute("DELETE FROM documents WHERE collection_id = ?", (collection_id,))
            db.execute("DELETE FROM collections WHERE id = ?", (collection_id,))

    # -- documents -----------------------------------------------------------------------
    def document(self, doc_id: int) -> DocumentRecord | None:
        rows = self.query("SELECT * FROM documents WHERE id = ?", (doc_id,))
        return _document(rows[0] if rows else None)

    def document_by_source(self, collection_id: int, source: str) -> DocumentRecord | None:
        rows = self.query("SELECT * FROM documents WHERE collection_id = ? AND source = ?", (collection_id, source))
        return _document(rows[0] if rows else None)

    def documents(self, collection_id: int) -> list[DocumentRecord]:
        return [_document(r) for r in self.query("SELECT * FROM documents WHERE collection_id = ? ORDER BY id", (collection_id,))]

    def replace_document(self, doc: NewDocument) -> tuple[int, list[int], list[int]]:
        """Write a parsed document and its units in one transaction, replacing an older version.
        Returns (document id, new unit ids, removed unit ids)."""
        with self.tx() as db:
            out = self._write_document(db, doc, time.time())
            db.execute("UPDATE collections SET generation = generation + 1 WHERE id = ?", (doc.collection_id,))
        return out

    def insert_documents(self, docs) -> int:
        """Many new documents in one transaction (bulk loads: benchmarks, migrations); the indexes
        catch up in bulk at their next load. Returns the units written."""
        n, touched = 0, set()
        with self.tx() as db:
            now = time.time()
            for doc in docs:
                n += len(self._write_document(db, doc, now)[1])
                touched.add(doc.collection_id)
            for cid in touched:
                db.execute("UPDATE collections SET generation = generation + 1 WHERE id = ?", (cid,))
        return n

    @staticmethod
    def _write_document(db: sqlite3.Connection, doc: NewDocument, now: float) -> tuple[int, list[int], list[int]]:
        collection_id, source, file_name, content_hash, fmt = doc.collection_id, doc.source, doc.file_name, doc.content_hash, doc.format
        pages, size_bytes, original_path, units = doc.pages, doc.size_bytes, doc.original_path, doc.units
        old = db.execute("SELECT id FROM documents WHERE collection_id = ? AND source = ?", (collection_id, source)).fetchone()
        removed: list[int] = []
        if old is not None:
            removed = [r[0] for r in db.execute("SELECT id FROM units WHERE document_id = ?", (old[0],))]
            db.execute("DELETE FROM units WHERE document_id = ?", (old[0],))
            db.execute(
                "UPDATE documents SET file_name=?, content_hash=?, format=?, status='done', error=NULL, pages=?,"
                " n_units=?, size_bytes=?, original_path=?, updated_at=? WHERE id=?",
                (file_name, content_hash, fmt, pages, len(units), size_bytes, original_path, now, old[0]))
            doc_id = old[0]
        else:
            cur = db.execute(
                "INSERT INTO documents (collection_id, source, file_name, content_hash, format, status, pages, n_units,"
                " size_bytes, original_path, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'done', ?, ?, ?, ?, ?, ?)",
                (collection_id, source, file_name, content_hash, fmt, pages, len(units), size_bytes, original_path, now, now))
            doc_id = cur.lastrowid
        new_ids = []
        for new in units:
            u = new.unit
            cur = db.execute(
                f"INSERT INTO units ({UNIT_COLUMNS.replace('id, ', '', 1)}, text_vec, image_vec)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (doc_id, collection_id, u.type, u.position, u.page, json.dumps(u.bbox) if u.bbox else None,
                 json.dumps(u.heading, ensure_ascii=False), u.text, u.html, u.caption, u.image_path,
                 json.dumps(u.meta, ensure_ascii=False, default=str), _blob(new.text_vec, np.float32), _blob(new.image_vec, np.float32)))
            new_ids.append(cur.lastrowid)
            sv = new.sentence_vecs
            if sv is not None and len(sv):
                # float16 halves the space; max-sim ranking is unchanged at this precision
                db.execute("INSERT INTO sentence_vecs (unit_id, n, vecs) VALUES (?, ?, ?)",
                           (cur.lastrowid, len(sv), np.asarray(sv, np.float16).tobytes()))
        return doc_id, new_ids, removed

    def record_failure(self, collection_id: int, source: str, file_name: str, content_hash: str | None, error: str,
                       size_bytes: int | None = None) -> int:
        """A failed file is listed with its reason. An earlier good version of it stays searchable."""
        now = time.time()
        with self.tx() as db:
            old = db.execute("SELECT id, status FROM documents WHERE collection_id = ? AND source = ?", (collection_id, source)).fetchone()
            if old is None:
                cur = db.execute(
                    "INSERT INTO documents (collection_id, source, file_name, content_hash, status, error, size_bytes,"
                    " created_at, updated_at) VALUES (?, ?, ?, ?, 'failed', ?, ?, ?, ?)",
                    (collection_id, source, file_name, content_hash, error, size_bytes, now, now))
                return cur.lastrowid
            if old["status"] == "done":
                db.execute("UPDATE documents SET error = ?, updated_at = ? WHERE id = ?", (f"latest version failed: {error}", now, old["id"]))
            else:
                db.execute("UPDATE documents SET status='failed', error=?, content_hash=?, updated_at=? WHERE id=?",
                           (error, content_hash, now, old["id"]))
            return old["id"]

    def delete_document(self, doc_id: int) -> tuple[int, list[int]]:
        """Delete a document and its units. Returns (collection id, removed unit ids)."""
        with self.tx() as db:
            row = db.execute("SELECT collection_id FROM documents WHERE id = ?", (doc_id,)).fetchone()
            if row is None:
                raise KeyError(doc_id)
            removed = [r[0] for r in db.execute("SELECT id FROM units WHERE document_id = ?", (doc_id,))]
            db.execute("DELETE FROM units WHERE document_id = ?", (doc_id,))
            db.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
            db.execute("UPDATE collections SET generation = generation + 1 WHERE id = ?", (row[0],))
        return row[0], removed

    # -- units ---------------------------------------------------------------------------
    def _rows_for_ids(self, sql: str, ids) -> Iterator[sqlite3.Row]:
        """Run ``sql`` (with one ``{ids}`` placeholder for an IN list) over ids in chunks under SQLite's parameter limit."""
        ids = [int(i) for i in ids]
        for start in range(0, len(ids), 900):
            chunk = ids[start:start + 900]
            yield from self._conn().execute(sql.format(ids=",".join("?" * len(chunk))), chunk)

    def units(self, ids: list[int]) -> dict[int, StoredUnit]:
        rows = self._rows_for_ids(f"SELECT {UNIT_COLUMNS} FROM units WHERE id IN ({{ids}})", ids)
        return {row["id"]: _unit(row) for row in rows}

    def texts(self, ids) -> dict[int, str]:
        """Each given unit's text: what the sentence feature reads, cheaper than whole units."""
        return dict(self._rows_for_ids("SELECT id, text FROM units WHERE id IN ({ids})", ids))

    def document_units(self, doc_id: int) -> list[StoredUnit]:
        return [_unit(r) for r in self.query(f"SELECT {UNIT_COLUMNS} FROM units WHERE document_id = ? ORDER BY position", (doc_id,))]

    def unit_ids(self, collection_id: int, column: str | None = None, filters: UnitFilter | None = None) -> np.ndarray:
        """Ids of a collection's units, in id order: those with ``column`` (text_vec, image_vec) set, and
        matching ``filters``."""
        if filters is not None and filters.matches_nothing:
            return np.zeros(0, np.int64)
        sql, params = "SELECT id FROM units WHERE collection_id = ?", [collection_id]
        if column is not None:
            sql += f" AND {column} IS NOT NULL"
        if filters is not None and filters.types is not None:
            sql += f" AND type IN ({','.join('?' * len(filters.types))})"
            params += list(filters.types)
        if filters is not None and filters.document_ids is not None:
            sql += f" AND document_id IN ({','.join('?' * len(filters.document_ids))})"
            params += list(filters.document_ids)
        rows = self._conn().execute(sql + " ORDER BY id", params).fetchall()
        return np.fromiter((r[0] for r in rows), np.int64, len(rows))

    def vectors(self, ids: np.ndarray, column: str) -> tuple[np.ndarray, np.ndarray]:
        """(ids, matrix) for the given unit ids that have a vector in ``column``."""
        got_ids, vecs = [], []
        for row in self._rows_for_ids(f"SELECT id, {column} FROM units WHERE id IN ({{ids}}) AND {column} IS NOT NULL", ids):
            got_ids.append(row[0])
            vecs.append(np.frombuffer(row[1], dtype=np.float32))
        matrix = np.vstack(vecs) if vecs else np.zeros((0, 0), np.float32)
        return np.array(got_ids, np.int64), matrix

    def sentence_vectors(self, ids: np.ndarray) -> dict[int, np.ndarray]:
        """Per unit, its sentences' vectors (n x dim, float32), for units that have them."""
        rows = self._rows_for_ids("SELECT unit_id, n, vecs FROM sentence_vecs WHERE unit_id IN ({ids})", ids)
        return {uid: np.frombuffer(blob, dtype=np.float16).reshape(n, -1).astype(np.float32) for uid, n, blob in rows}

    def search_texts(self, ids: np.ndarray) -> list[tuple[int, str]]:
        units = self.units(list(ids))
        return [(i, units[i].search_text()) for i in ids if i in units]
