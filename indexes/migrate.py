"""Copy collections from one store to another (``mmrag store copy``): how a one-machine deployment
moves to Postgres without parsing or embedding anything again.

Each document is read whole from the source (units, vectors, sentence vectors) and committed to the
target in one transaction, as ingestion would. A document the target already holds unchanged (same
source and content hash) is skipped, so an interrupted copy is resumed by running it again. Blob
files (figures, original PDFs) are copied when the two stores keep them in different folders.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from indexes.base import DocumentStore
from indexes.records import NewDocument, NewUnit
from mmrag.units import Unit

log = logging.getLogger(__name__)


def _blob(path: str | None, src: DocumentStore, dst: DocumentStore) -> str | None:
    if not path or Path(src.blob_dir).resolve() == Path(dst.blob_dir).resolve():
        return path
    p = Path(path).resolve()
    if not p.is_relative_to(Path(src.blob_dir).resolve()) or not p.exists():
        return path
    target = Path(dst.blob_dir) / p.relative_to(Path(src.blob_dir).resolve())
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, target)
    return str(target)


def copy_collection(src: DocumentStore, dst: DocumentStore, name: str, target: str | None = None,
                    progress: bool = True) -> dict:
    cid = src.collection_id(name)
    if cid is None:
        raise KeyError(name)
    to = dst.collection_id(target or name, create=True)
    models = {k: v for k, v in (src.models(cid) or {}).items() if k in ("text", "image")}
    if models:
        dst.bind_models(to, models)  # ModelMismatch if the target collection holds vectors of other models
    t0 = time.perf_counter()
    copied = skipped = failed = units = 0
    from tqdm import tqdm

    docs = src.documents(cid)
    with dst.writer():
        for doc in tqdm(docs, desc=f"copy {name}", unit="doc", disable=not progress, dynamic_ncols=True):
            have = dst.document_by_source(to, doc.source)
            if have is not None and have.status == doc.status and have.content_hash == doc.content_hash:
                skipped += 1
                continue
            if doc.status != "done":
                dst.record_failure(to, doc.source, doc.file_name, doc.content_hash, doc.error or "failed", doc.size_bytes)
                failed += 1
                continue
            stored = src.document_units(doc.id)
            ids = [u.id for u in stored]
            text = {int(i): v for i, v in zip(*src.vectors(ids, "text"))}
            image = {int(i): v for i, v in zip(*src.vectors(ids, "image"))}
            sentences = src.sentence_vectors(ids)
            rows = [NewUnit(Unit(u.type, u.text, u.page, u.bbox, u.heading, u.position, u.html, _blob(u.image_path, src, dst),
                                 u.caption, u.meta), text.get(u.id), image.get(u.id), sentences.get(u.id)) for u in stored]
            dst.commit_document(NewDocument(to, doc.source, doc.file_name, doc.content_hash or "", doc.format or "", doc.pages,
                                            doc.size_bytes or 0, rows, _blob(doc.original_path, src, dst)))
            copied += 1
            units += len(rows)
        dst.flush(to)
    seconds = time.perf_counter() - t0
    log.info("copied %s: %d documents (%d units), %d unchanged, %d failed listed, in %.1fs", name, copied, units, skipped, failed, seconds)
    return {"collection": name, "to": target or name, "documents": copied, "units": units, "unchanged": skipped,
            "failed_listed": failed, "seconds": round(seconds, 1)}
