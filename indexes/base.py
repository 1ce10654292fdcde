"""The store interface: what app/, ingest/ and eval/ may ask of a store, whatever its backend.

A store is three parts behind one object, as a backend may hold them in one engine (Postgres) or in
several (SQLite + FAISS + BM25 files):

- the **catalogue**: collections, documents with their statuses, units by id, the models a
  collection's vectors were made with, one atomic commit per document, deletes, and the staged swap
  of a re-embedding;
- the **keyword index**: BM25 over each unit's search text, with the exact score and query-term
  coverage of any given unit (fusion computes every feature for every candidate, so a backend must
  give exact values, not just a ranked list);
- the **vector index**: nearest units per modality, and the stored vectors and sentence vectors of
  given units.

Filters (:class:`UnitFilter`) go to the backend, which applies them where it searches (a SQL
``WHERE``, a FAISS id selector), never as an allow-list the caller filters afterwards.

Records are typed: :class:`NewUnit` is what ingestion writes, ``StoredUnit`` what reads return,
:class:`DocumentRecord` and :class:`CollectionRecord` the catalogue's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from indexes.records import CollectionRecord, DocumentRecord, NewDocument, StagedVectors, StoredUnit, UnitFilter


class WriterBusy(RuntimeError):
    """Another writer holds the store past the wait; the message names it."""


class KeywordScores(Protocol):
    """BM25 for one query over one collection: the top units, and the exact score and query-term
    coverage (idf-weighted share of the query's terms a unit holds) of any unit."""

    coverage_weights: dict[str, float]  # query term -> its idf weight, question words left out
    tokenizer: Callable[[str], list[str]]

    def top(self, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def of(self, unit_ids: np.ndarray) -> np.ndarray: ...

    def coverage_of(self, unit_ids: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class Catalogue(Protocol):
    blob_dir: Path  # where image crops and original files live, shared by every process of the store

    def collection_id(self, name: str, create: bool = False) -> int | None: ...
    def collection_name(self, collection_id: int) -> str | None: ...
    def collections(self) -> list[CollectionRecord]: ...
    def delete_collection(self, collection_id: int) -> None: ...

    def bind_models(self, collection_id: int, models: dict[str, str]) -> None:
        """Record the models of a collection's first vectors; raise ModelMismatch for any other."""

    def models(self, collection_id: int) -> dict[str, str] | None: ...

    def document(self, doc_id: int) -> DocumentRecord | None: ...
    def document_by_source(self, collection_id: int, source: str) -> DocumentRecord | None: ...
    def documents(self, collection_id: int) -> list[DocumentRecord]: ...

    def commit_document(self, doc: NewDocument) -> tuple[int, list[int]]:
        """Store a document and its units in one transaction, replacing an older version of the same
        source; return (document id, unit ids in order). Searches see all of it or none of it."""

    def record_failure(self, collection_id: int, source: str, file_name: str, content_hash: str | None, error: str,
                       size_bytes: int | None = None) -> int:
        """List a file that failed, with its reason; an earlier good version stays searchable."""

    def delete_document(self, doc_id: int) -> None:
        """Delete a document and its units; KeyError if there is none."""

    def units(self, ids: Sequence[int]) -> dict[int, StoredUnit]: ...
    def texts(self, ids: Sequence[int]) -> dict[int, str]: ...
    def document_units(self, doc_id: int) -> list[StoredUnit]: ...
    def unit_ids(self, collection_id: int, filters: UnitFilter | None = None) -> np.ndarray: ...

    def stage_vectors(self, rows: list[StagedVectors]) -> None: ...
    def clear_staged(self, collection_id: int) -> None: ...
    def swap_staged(self, collection_id: int, models: dict[str, str]) -> int:
        """Every unit of the collection takes its staged vectors and the collection its new models, in
        one transaction; raise if any unit has none staged (then nothing changes)."""

    def writer(self, wait_s: float = 600.0) -> AbstractContextManager[None]:
        """Exclusive write session where the backend needs one (one writer per data directory);
        raise WriterBusy after ``wait_s``. Re-entrant."""

    def flush(self, collection_id: int) -> None:
        """Make derived index files durable (a snapshot); a no-op where the backend is durable per commit."""

    def ping(self) -> None:
        """Raise if the store cannot answer."""

    def close(self) -> None: ...


@runtime_checkable
class KeywordIndex(Protocol):
    def keyword_scores(self, collection_id: int, query: str, filters: UnitFilter | None = None) -> KeywordScores: ...


@runtime_checkable
class VectorIndexes(Protocol):
    def vector_count(self, collection_id: int, modality: str) -> int: ...

    def has_vectors(self, collection_id: int, modality: str) -> bool:
        """Whether any unit has a ``modality`` vector: what a query asks, cheaper than a count."""

    def vector_search(self, collection_id: int, modality: str, query: np.ndarray, k: int,
                      filters: UnitFilter | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(unit ids, inner products) of the ``k`` nearest units with a ``modality`` vector, best first."""

    def vectors(self, ids: Sequence[int] | np.ndarray, modality: str) -> tuple[np.ndarray, np.ndarray]:
        """(ids, matrix) for those of the given units that have a ``modality`` vector."""

    def sentence_vectors(self, ids: Sequence[int] | np.ndarray) -> dict[int, np.ndarray]: ...


@runtime_checkable
class DocumentStore(Catalogue, KeywordIndex, VectorIndexes, Protocol):
    """A whole store; the one type app/, ingest/ and eval/ depend on."""


EXACT_FILTERED_MAX = 2048  # a filtered vector search over at most this many units is exact in every backend


def exact_top(ids: np.ndarray, matrix: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best (ids, inner products) of the given vectors: for narrow filters, where scoring every
    allowed unit beats a graph walk that must skip most of its nodes."""
    if not len(ids):
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    scores = matrix @ query
    order = np.argsort(-scores, kind="stable")[:k]
    return ids[order], scores[order].astype(np.float32)

