"""Batch ingestion: parse in worker processes while the main process embeds and commits.

Each document commits on its own (one SQLite transaction), so a failure or a crash loses at
most the documents in flight. Parsed documents are embedded together in batches, which keeps
the text model's throughput close to its raw ``encode`` speed even for many small files.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from indexes.store import Store
from ingest.chunking import maxsim_texts
from ingest.parse import DirectoryImageSink, ParsedDocument, content_hash, parse_document
from mmrag.embedding import ImageEmbedder, TextEmbedder
from mmrag.errors import DocumentError
from mmrag.settings import Settings
from mmrag.units import Unit

log = logging.getLogger(__name__)

SKIP_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}


@dataclass
class FileResult:
    path: str
    status: str  # ok | skipped | failed
    reason: str | None = None
    document_id: int | None = None
    units: int = 0
    format: str | None = None
    seconds: float = 0.0


@dataclass
class Summary:
    collection: str
    ok: int = 0
    skipped: int = 0
    failed: int = 0
    units: int = 0
    seconds: float = 0.0
    files: list[FileResult] = field(default_factory=list)

    def add(self, result: FileResult) -> None:
        self.files.append(result)
        setattr(self, result.status, getattr(self, result.status) + 1)
        self.units += result.units

    def to_dict(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "files"}, "files": [asdict(f) for f in self.files]}


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files and folders (recursive, sorted, hidden files skipped); a missing path is reported, not skipped."""
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for sub in sorted(p.rglob("*")):
                rel = sub.relative_to(p)
                if sub.is_file() and not any(part.startswith(".") for part in rel.parts) and sub.name not in SKIP_NAMES:
                    yield sub
        else:
            yield p


# -- worker side ---------------------------------------------------------------------------
def _parse_file(path: str, settings: Settings, blob_dir: str) -> tuple[ParsedDocument | None, str | None, float]:
    """Runs in a worker process. Returns (parsed, error, seconds); never raises for bad input."""
    t0 = time.perf_counter()
    try:
        data = Path(path).read_bytes()
        return parse_document(data, path, settings, DirectoryImageSink(Path(blob_dir))), None, time.perf_counter() - t0
    except DocumentError as exc:
        return None, str(exc), time.perf_counter() - t0
    except Exception as exc:  # belt and braces: a worker must report, not die
        return None, f"could not be parsed ({type(exc).__name__}: {exc})", time.perf_counter() - t0


def _init_worker() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    logging.getLogger("RapidOCR").setLevel(logging.WARNING)


class Ingestor:
    """Writes documents through the store. Embedders load on first use, so a batch of unchanged
    files (all skipped) costs no model loading."""

    def __init__(self, store: Store, settings: Settings, text: TextEmbedder | None = None,
                 image: ImageEmbedder | None | bool = True) -> None:
        self.store, self.settings = store, settings
        self._text = text
        self._image = image  # True: from settings on first use; None: no image vectors

    @property
    def text(self) -> TextEmbedder:
        if self._text is None:
            from mmrag.embedding import get_text_embedder

            self._text = get_text_embedder(self.settings.text_model, self.settings.embed_batch_size)
        return self._text

    @property
    def image(self) -> ImageEmbedder | None:
        if self._image is True:
            from mmrag.embedding import get_image_embedder

            self._image = get_image_embedder(self.settings.image_model, self.settings.image_pretrained, str(self.settings.data_dir))
        return self._image

    def model_ids(self) -> dict[str, str]:
        """The models this ingestor embeds with, named without loading them."""
        from mmrag.embedding.factory import image_model_id

        text = self._text.name if self._text is not None else self.settings.text_model
        if self._image is True:
            image = image_model_id(self.settings.image_model, self.settings.image_pretrained)
        else:
            image = self._image.name if self._image is not None else "none"
        return {"text": text, "image": image}

    def _collection(self, name: str) -> int:
        cid = self.store.docs.collection_id(name, create=True)
        self.store.docs.bind_models(cid, self.model_ids())
        return cid

    # -- one document (uploads) ----------------------------------------------------------
    def ingest_bytes(self, data: bytes, file_name: str, collection: str, source: str | None = None) -> FileResult:
        t0 = time.perf_counter()
        cid = self._collection(collection)
        source = source or f"upload:{file_name}"
        digest = content_hash(data)
        existing = self.store.docs.document_by_source(cid, source)
        if existing and existing["status"] == "done" and existing["content_hash"] == digest:
            return FileResult(file_name, "skipped", "unchanged", existing["id"], existing["n_units"], existing["format"])
        try:
            parsed = parse_document(data, file_name, self.settings, DirectoryImageSink(self.store.blob_dir))
        except DocumentError as exc:
            with self.store.writer():
                doc_id = self.store.docs.record_failure(cid, source, Path(file_name).name, digest, str(exc), len(data))
            return FileResult(file_name, "failed", str(exc), doc_id, seconds=time.perf_counter() - t0)
        result = self._embed_and_commit([(cid, source, Path(file_name).name, digest, len(data), parsed)])[0]
        self.store.save(cid)
        result.path, result.seconds = file_name, time.perf_counter() - t0
        return result

    # -- batches -------------------------------------------------------------------------
    def ingest_paths(self, paths: Iterable[str | Path], collection: str, progress: bool = True,
                     on_result: Callable[[FileResult, int], None] | None = None) -> Summary:
        """Ingest files and folders. ``on_result(result, total)`` is called after each file (job progress)."""
        t0 = time.perf_counter()
        summary = Summary(collection)
        cid = self._collection(collection)
        files = [f for f in iter_files(paths) if not self._is_own_file(f)]
        bar = _progress(len(files), progress)
        workers = self.settings.parse_workers
        pool = ProcessPoolExecutor(workers, initializer=_init_worker) if workers > 0 and len(files) > 1 else None
        window = max(2, 2 * workers)  # parsed documents held in memory at once
        pending: list[tuple[Path, str, int, Future | None]] = []
        ready: list[tuple] = []
        since_save = 0
        parse_seconds: dict[str, float] = {}
        last_save = [time.monotonic()]

        def finish(result: FileResult) -> None:
            nonlocal since_save
            result.seconds = result.seconds or parse_seconds.pop(result.path, 0.0)
            summary.add(result)
            bar.update(1)
            bar.set_postfix(ok=summary.ok, skipped=summary.skipped, failed=summary.failed, refresh=False)
            if result.status == "failed":
                log.warning("%s: %s", result.path, result.reason)
            if on_result is not None:
                on_result(result, len(files))
            since_save += result.status == "ok"

        def flush_ready() -> None:
            nonlocal since_save
            if ready:
                for res in self._embed_and_commit(ready):
                    finish(res)
                ready.clear()
            # Snapshots only shorten the catch-up after a crash (SQLite already holds every commit),
            # and each rewrites whole index files: keep them few on big collections.
            if since_save >= self.settings.commit_every and time.monotonic() - last_save[0] >= self.settings.snapshot_interval_s:
                self.store.save(cid)
                since_save = 0
                last_save[0] = time.monotonic()

        def drain_one() -> None:
            path, digest, size, fut = pending.pop(0)
            parsed, error, secs = fut.result() if fut else _parse_file(str(path), self.settings, str(self.store.blob_dir))
            if error is not None:
                with self.store.writer():
                    doc_id = self.store.docs.record_failure(cid, str(path), path.name, digest, error, size)
                finish(FileResult(str(path), "failed", error, doc_id, seconds=secs))
                return
            parse_seconds[str(path)] = secs
            ready.append((cid, str(path), path.name, digest, size, parsed))
            if sum(len(r[5].units) for r in ready) >= 4 * self.settings.embed_batch_size:  # the last batch flushes after the loop
                flush_ready()

        try:
            with self.store.writer():
                for path in files:
                    result = self._precheck(cid, path)
                    if isinstance(result, FileResult):
                        finish(result)
                        continue
                    digest, size = result
                    fut = pool.submit(_parse_file, str(path), self.settings, str(self.store.blob_dir)) if pool else None
                    pending.append((path, digest, size, fut))
                    while len(pending) >= window or (pool is None and pending):
                        drain_one()
                while pending:
                    drain_one()
                flush_ready()
                self.store.save(cid)
        finally:
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
            bar.close()
        summary.seconds = time.perf_counter() - t0
        return summary

    def _is_own_file(self, path: Path) -> bool:
        """Our docstore, indexes, images and models, met when the data dir sits inside an ingested folder."""
        data = self.store.data_dir.resolve()
        p = path.resolve()
        if p.parent == data:
            return p.name.startswith(("mmrag.sqlite", "writer.lock"))
        return any(p.is_relative_to(data / sub) for sub in ("indexes", "blobs", "models", "open_clip_configs"))

    def _precheck(self, cid: int, path: Path) -> FileResult | tuple[str, int]:
        """Read and hash a file; unchanged files are skipped before any parsing."""
        try:
            if not path.exists():
                raise FileNotFoundError("no such file")
            size = path.stat().st_size
            if size > self.settings.max_file_mb * 2**20:
                reason = f"file is {size / 2**20:.1f} MB, over the {self.settings.max_file_mb:g} MB limit (MMRAG_MAX_FILE_MB)"
                with self.store.writer():
                    doc_id = self.store.docs.record_failure(cid, str(path), path.name, None, reason, size)
                return FileResult(str(path), "failed", reason, doc_id)
            digest = content_hash(path.read_bytes())
        except OSError as exc:
            return FileResult(str(path), "failed", f"cannot read file ({exc.strerror or exc})")
        existing = self.store.docs.document_by_source(cid, str(path))
        if existing and existing["status"] == "done" and existing["content_hash"] == digest:
            return FileResult(str(path), "skipped", "unchanged", existing["id"], existing["n_units"], existing["format"])
        return digest, size

    # -- embedding and commit ------------------------------------------------------------
    def _embed_and_commit(self, docs: list[tuple]) -> list[FileResult]:
        """Embed the units of several parsed documents in shared batches, then commit each one."""
        all_units: list[Unit] = [u for d in docs for u in d[5].units]
        text_vecs, sentence_vecs = self._text_vectors(all_units)
        image_vecs = self._image_vectors(all_units)
        results, offset = [], 0
        for cid, source, name, digest, size, parsed in docs:
            rows = []
            for k, unit in enumerate(parsed.units):
                row = unit.to_dict()
                row["text_vec"] = text_vecs[offset + k]
                row["image_vec"] = image_vecs[offset + k]
                row["sentence_vecs"] = sentence_vecs[offset + k]
                rows.append(row)
            offset += len(parsed.units)
            doc_id, _ids = self.store.commit_document(cid, source, name, digest, parsed.format, parsed.pages, size, rows)
            results.append(FileResult(source, "ok", None, doc_id, len(rows), parsed.format))
        return results

    def _text_vectors(self, units: list[Unit]) -> tuple[list[np.ndarray | None], list[np.ndarray | None]]:
        """Unit vectors, and for text units of several sentences, one vector per sentence.

        Sentence vectors feed the reranker's max-sim feature (the best match between the query and
        any one sentence), which recovers passages whose answer sits in one sentence of many. They
        are embedded in the same batched call as the units.
        """
        texts = [u.search_text() for u in units]
        todo = [i for i, t in enumerate(texts) if t.strip()]
        sentences: dict[int, list[str]] = {}
        if self.settings.sentence_vectors:
            for i in todo:
                if units[i].type == "text":
                    parts = maxsim_texts(units[i].text)
                    if parts:
                        sentences[i] = parts
        batch = [texts[i] for i in todo] + [s for parts in sentences.values() for s in parts]
        out: list[np.ndarray | None] = [None] * len(units)
        sent_out: list[np.ndarray | None] = [None] * len(units)
        if batch:
            vecs = self.text.embed(batch, kind="passage")
            for k, i in enumerate(todo):
                out[i] = vecs[k]
            offset = len(todo)
            for i, parts in sentences.items():
                sent_out[i] = vecs[offset:offset + len(parts)]
                offset += len(parts)
        return out, sent_out

    def _image_vectors(self, units: list[Unit]) -> list[np.ndarray | None]:
        out: list[np.ndarray | None] = [None] * len(units)
        if not any(u.type == "image" and u.image_path for u in units) or self.image is None:
            return out  # the image model loads only for batches that have images
        from PIL import Image

        todo, images = [], []
        for i, u in enumerate(units):
            if u.type == "image" and u.image_path:
                try:
                    with Image.open(u.image_path) as im:
                        im.draft("RGB", (448, 448))  # JPEG: decode at reduced size, the model sees 224 px
                        im.load()
                        images.append(im.copy())  # the embedder handles modes and transparency
                    todo.append(i)
                except Exception as exc:  # EMF/WMF and other formats PIL cannot read stay text-findable
                    log.info("image %s not embedded (%s)", u.image_path, exc)
        for start in range(0, len(images), 32):
            vecs = self.image.embed_images(images[start:start + 32])
            for i, v in zip(todo[start:start + 32], vecs):
                out[i] = v
        return out


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="file", desc="ingest", disable=not enabled, dynamic_ncols=True)
