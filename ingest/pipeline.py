"""Batch ingestion: parse in worker processes while the main process embeds and commits.

Each document commits on its own (one SQLite transaction), so a failure or a crash loses at
most the documents in flight. Parsed documents are embedded together in batches, which keeps
the text model's throughput close to its raw ``encode`` speed even for many small files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from indexes.base import DocumentStore
from indexes.records import NewDocument, NewUnit
from ingest import stageclock
from ingest.assets import AssetFolder
from ingest.chunking import maxsim_texts
from ingest.drafts import Draft, Drafter, drafting
from ingest.limits import image_fits
from ingest.parse import DirectoryImageSink, ParsedDocument, chunker_for, content_hash, display_name, parse_document
from ingest.workers import ParsePool
from mmrag import onnx_models
from mmrag.embedding import ImageEmbedder, TextEmbedder
from mmrag.errors import DocumentError
from mmrag.settings import Settings
from mmrag.units import Unit

log = logging.getLogger(__name__)

SKIP_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
EMBED_SLICE = 1024  # texts embedded between two checks of a job's cancel flag
IMAGE_BATCH = 8
DRAFT_SLICE = 64  # texts of a draft embedded at once


class Cancelled(Exception):
    pass


@dataclass
class FileResult:
    path: str
    status: str  # ok | skipped | failed
    reason: str | None = None
    document_id: int | None = None
    units: int = 0
    format: str | None = None
    seconds: float = 0.0
    conflict: bool = False  # refused: another document is stored under this name (see Item.replace)


@dataclass
class Summary:
    collection: str
    ok: int = 0
    skipped: int = 0
    failed: int = 0
    units: int = 0
    seconds: float = 0.0
    files: list[FileResult] = field(default_factory=list)
    # seconds per stage: parse (in the workers, summed; ocr, layout and tables are parts of it), text
    # (unit vectors), sentences (their sentence vectors), images, commit, snapshot; parsing overlaps
    # the rest, so the stages add up to more than the wall time when a worker parses
    stages: dict[str, float] = field(default_factory=dict)
    drafted: int = 0  # units whose vector was embedded from a draft, while their document parsed


    def add(self, result: FileResult) -> None:
        self.files.append(result)
        setattr(self, result.status, getattr(self, result.status) + 1)
        self.units += result.units

    def to_dict(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "files"}, "files": [asdict(f) for f in self.files]}

    def timed(self, stage: str, seconds: float) -> None:
        self.stages[stage] = self.stages.get(stage, 0.0) + seconds

    def stage_line(self) -> str:
        line = ", ".join(f"{k} {v:.1f}s" for k, v in self.stages.items() if v >= 0.05)
        return line + (f", {self.drafted} units embedded from drafts" if self.drafted else "")


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


@dataclass
class Item:
    """One document to ingest: the file to read, the source it is stored under, the name shown, where
    its relative references may be read (None: nowhere), and whether it may replace another version."""

    path: Path
    source: str
    name: str
    assets: AssetFolder | None = None
    replace: bool = True
    reparse: bool = False  # parse it again even if unchanged (the parsers got better)


# -- worker side ---------------------------------------------------------------------------
def parse_file(path: str, name: str, settings: Settings, blob_dir: str, assets: AssetFolder | None,
               on_draft: Callable[[Draft], None] | None = None) -> tuple[ParsedDocument | None, str | None, float]:
    """Runs in a parse worker (or inline). Returns (parsed, error, seconds); never raises for bad input.
    ``on_draft`` hears the texts of a long document's first pages while the rest parses (ingest.drafts)."""
    t0 = time.perf_counter()
    try:
        data = Path(path).read_bytes()
        sink = DirectoryImageSink(Path(blob_dir))
        drafter = (Drafter(chunker_for(settings), sink, on_draft, settings.parse_draft_s, settings.sentence_vectors)
                   if on_draft else None)
        with stageclock.collecting() as spent, drafting(drafter):
            parsed = parse_document(data, name, settings, sink, assets)
        parsed.timings = dict(spent)
        return parsed, None, time.perf_counter() - t0
    except DocumentError as exc:
        return None, str(exc), time.perf_counter() - t0
    except MemoryError:
        return None, "ran out of memory while parsing", time.perf_counter() - t0
    except Exception as exc:  # belt and braces: a worker must report, not die
        return None, f"could not be parsed ({type(exc).__name__}: {exc})", time.perf_counter() - t0


class Ingestor:
    """Writes documents through the store. Embedders load on first use, so a batch of unchanged
    files (all skipped) costs no model loading. Parsing runs in worker processes under a time and
    memory budget (``ingest.workers``) unless ``parse_workers`` is 0 (inline, no budget: tests)."""

    def __init__(self, store: DocumentStore, settings: Settings, text: TextEmbedder | None = None,
                 image: ImageEmbedder | None | bool = True) -> None:
        self.store, self.settings = store, settings
        self._text = text
        self._image = image  # True: from settings on first use; None: no image vectors
        self._pool: ParsePool | None = None
        self._pool_lock = threading.Lock()

    @property
    def text(self) -> TextEmbedder:
        if self._text is None:
            from mmrag.embedding.factory import new_text_embedder, text_options

            self._text = new_text_embedder(self.settings.text_model, self.settings.embed_batch_size, **text_options(self.settings))
        return self._text

    @property
    def image(self) -> ImageEmbedder | None:
        if self._image is True:
            from mmrag.embedding import get_image_embedder

            self._image = get_image_embedder(self.settings.image_model, self.settings.image_pretrained, str(self.settings.model_cache))
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
        cid = self.store.collection_id(name, create=True)
        self.store.bind_models(cid, self.model_ids())
        return cid

    def pool(self) -> ParsePool | None:
        if self.settings.parse_workers <= 0:
            return None
        with self._pool_lock:
            if self._pool is None:
                self._pool = ParsePool(self.settings.parse_workers, self.settings, self.store.blob_dir)
            return self._pool

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    # -- one document (uploads) ----------------------------------------------------------
    def ingest_bytes(self, data: bytes, file_name: str, collection: str, source: str | None = None,
                     replace: bool = True) -> FileResult:
        """One uploaded document, through the same path as a batch (staged as a file, no references)."""
        name = display_name(file_name)
        staging = self.settings.data_dir / "uploads"
        staging.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=staging, prefix="one-") as tmp:
            path = Path(tmp) / "document"
            path.write_bytes(data)
            summary = self.ingest_items([Item(path, source or f"upload:{name}", name, None, replace)], collection, progress=False)
        result = summary.files[0]
        result.path = name
        return result

    # -- batches -------------------------------------------------------------------------
    def ingest_paths(self, paths: Iterable[str | Path], collection: str, progress: bool = True,
                     on_result: Callable[[FileResult, int], None] | None = None,
                     roots: list[Path] | None = None, cancelled: Callable[[], bool] | None = None,
                     reparse: bool = False) -> Summary:
        """Ingest files and folders. ``on_result(result, total)`` is called after each file (job progress);
        ``reparse`` parses unchanged files again instead of skipping them.

        With ``roots`` (a server job under MMRAG_INGEST_ROOTS), every file found is resolved, links
        included, and one that leads outside the roots fails without being read."""
        items, refused = self.items_for_paths(paths, roots, reparse)
        return self.ingest_items(items, collection, progress, on_result, cancelled, refused)

    def items_for_paths(self, paths: Iterable[str | Path], roots: list[Path] | None = None,
                        reparse: bool = False) -> tuple[list[Item], list[FileResult]]:
        """The documents under ``paths`` (files and folders), and those refused before reading."""
        items, refused = [], []
        roots = [Path(r).resolve() for r in roots] if roots else None
        allowed, denied = tuple(roots or ()), (self.settings.data_dir.resolve(),)
        for f in iter_files(paths):
            if self._is_own_file(f):
                continue
            if roots is not None:
                real = f.resolve()
                if not any(real.is_relative_to(r) for r in roots):
                    refused.append(FileResult(str(f), "failed", "outside MMRAG_INGEST_ROOTS (a link that leads elsewhere): not read"))
                    continue
            items.append(Item(f, str(f), display_name(f.name), AssetFolder(f.resolve().parent, allowed, denied), reparse=reparse))
        return items, refused

    def ingest_items(self, items: list[Item], collection: str, progress: bool = True,
                     on_result: Callable[[FileResult, int], None] | None = None,
                     cancelled: Callable[[], bool] | None = None, refused: list[FileResult] = (),
                     on_stage: Callable[[Item, str], None] | None = None) -> Summary:
        t0 = time.perf_counter()
        summary = Summary(collection)
        cid = self._collection(collection)
        total = len(items) + len(refused)
        bar = _progress(total, progress)
        pool = self.pool()
        window = max(2, 2 * (pool.n if pool else 0))  # parsed documents held in memory at once
        pending: list[tuple[Item, str, int, Future | None]] = []
        ready: list[tuple] = []
        drafts: queue.SimpleQueue[tuple[str, Draft]] = queue.SimpleQueue()  # from the pool's threads
        prepared: dict[str, Prepared] = {}  # source -> vectors embedded from its drafts
        since_save = 0
        parse_seconds: dict[str, float] = {}
        last_save = [time.monotonic()]
        is_cancelled = cancelled or (lambda: False)
        stage = on_stage or (lambda item, name: None)

        def finish(result: FileResult) -> None:
            nonlocal since_save
            prepared.pop(result.path, None)
            result.seconds = result.seconds or parse_seconds.pop(result.path, 0.0)
            summary.add(result)
            bar.update(1)
            bar.set_postfix(ok=summary.ok, skipped=summary.skipped, failed=summary.failed, refresh=False)
            if result.status == "failed":
                log.warning("%s: %s", result.path, result.reason)
            if on_result is not None:
                on_result(result, total)
            since_save += result.status == "ok"

        def snapshot() -> None:
            t_save = time.perf_counter()
            self.store.flush(cid)
            summary.timed("snapshot", time.perf_counter() - t_save)

        def flush_ready() -> None:
            nonlocal since_save
            if ready:
                if is_cancelled():
                    for r in ready:
                        finish(FileResult(r[1], "failed", "cancelled"))
                else:
                    for r in ready:
                        stage(r[6], "embedding")
                    drafted = Prepared.merged(prepared.get(r[1]) for r in ready)
                    try:
                        results = self._embed_and_commit([r[:6] for r in ready], is_cancelled, summary.timed, drafted,
                                                         parsing)
                        summary.drafted += drafted.hits
                    except Cancelled:
                        results = [FileResult(r[1], "failed", "cancelled") for r in ready]
                    for res in results:
                        finish(res)
                ready.clear()
            # Snapshots only shorten the catch-up after a crash (SQLite already holds every commit),
            # and each rewrites whole index files: keep them few on big collections.
            if since_save >= self.settings.commit_every and time.monotonic() - last_save[0] >= self.settings.snapshot_interval_s:
                snapshot()
                since_save = 0
                last_save[0] = time.monotonic()

        def drain_one() -> None:
            item, digest, size, fut = pending[0]
            if fut is None:
                stage(item, "parsing")
                parsed, error, secs = parse_file(str(item.path), item.name, self.settings, str(self.store.blob_dir), item.assets)
            else:
                while not fut.done():  # embed what the worker drafted while it parses the rest
                    take_drafts(wait=0.05)
                while take_drafts(wait=0):
                    pass
                parsed, error, secs = fut.result()
            pending.pop(0)
            error = self._over_limit(parsed, error)
            if error is not None:
                if error != "cancelled":
                    with self.store.writer():
                        doc_id = self.store.record_failure(cid, item.source, item.name, digest, error, size)
                else:
                    doc_id = None
                finish(FileResult(item.source, "failed", error, doc_id, seconds=secs))
                return
            parse_seconds[item.source] = secs
            summary.timed("parse", secs)
            for step, seconds in parsed.timings.items():  # parts of the parse: OCR, layout, tables
                summary.timed(step, seconds)
            ready.append((cid, item.source, item.name, digest, size, parsed, item))
            if sum(len(r[5].units) for r in ready) >= 4 * self.settings.embed_batch_size:  # the last batch flushes after the loop
                flush_ready()

        def parsing() -> bool:
            return any(fut is not None and not fut.done() for *_, fut in pending)

        def take_drafts(wait: float) -> bool:
            """Embed one draft if one comes within ``wait`` seconds; False if none came."""
            try:
                source, draft = drafts.get(timeout=wait) if wait else drafts.get_nowait()
            except queue.Empty:
                return False
            if is_cancelled() or not any(p[0].source == source for p in pending):
                return True  # its document failed meanwhile
            try:
                self._embed_draft(prepared.setdefault(source, Prepared()), draft, summary.timed, parsing)
            except Exception:  # a draft only saves time: the document's own embedding reports any error
                log.debug("draft of %s not embedded", source, exc_info=True)
            return True

        try:
            for result in refused:
                finish(result)
            with self.store.writer():
                for item in items:
                    if is_cancelled():
                        finish(FileResult(item.source, "failed", "cancelled"))
                        continue
                    result = self._precheck(cid, item)
                    if isinstance(result, FileResult):
                        finish(result)
                        continue
                    digest, size = result
                    if pool is not None:
                        stage(item, "parsing")
                        on_draft = (lambda draft, source=item.source: drafts.put((source, draft))) if self.settings.parse_draft_s else None
                        fut = pool.submit(str(item.path), item.name, item.assets, is_cancelled, on_draft)
                    else:
                        fut = None
                    pending.append((item, digest, size, fut))
                    while len(pending) >= window or (pool is None and pending):
                        drain_one()
                while pending:
                    drain_one()
                flush_ready()
                snapshot()
        finally:
            for _item, _d, _s, fut in pending:
                if fut is not None:
                    fut.cancel()
            bar.close()
        summary.seconds = time.perf_counter() - t0
        return summary

    def _over_limit(self, parsed: ParsedDocument | None, error: str | None) -> str | None:
        """The parse error, or why a parsed document is too big to store."""
        if error is None and len(parsed.units) > self.settings.max_units:
            return (f"{len(parsed.units)} units, over the {self.settings.max_units} unit limit of one document "
                    "(MMRAG_MAX_UNITS): split the file")
        return error

    def ingest_one(self, cid: int, item: Item, digest: str, size: int) -> FileResult:
        """Parse (inline), embed and commit one prechecked document: what a Ray worker runs per
        document. Bad input fails its own document with the reason, as in a local batch."""
        parsed, error, secs = parse_file(str(item.path), item.name, self.settings, str(self.store.blob_dir), item.assets)
        error = self._over_limit(parsed, error)
        # no writer session around this: the store takes its lock per commit, so workers embed in parallel
        if error is not None:
            doc_id = self.store.record_failure(cid, item.source, item.name, digest, error, size)
            return FileResult(item.source, "failed", error, doc_id, seconds=secs)
        t0 = time.perf_counter()
        result = self._embed_and_commit([(cid, item.source, item.name, digest, size, parsed)])[0]
        result.seconds = secs + time.perf_counter() - t0
        return result

    def _is_own_file(self, path: Path) -> bool:
        """Our docstore, indexes, images and models, met when the data dir sits inside an ingested folder."""
        data = self.settings.data_dir.resolve()
        p = path.resolve()
        if p.parent == data:
            return p.name.startswith(("mmrag.sqlite", "writer.lock"))
        return any(p.is_relative_to(data / sub) for sub in ("indexes", "blobs", "models", "open_clip_configs", "uploads"))

    def _precheck(self, cid: int, item: Item) -> FileResult | tuple[str, int]:
        """Read and hash a file; unchanged files are skipped before any parsing."""
        path = item.path
        try:
            if not path.exists():
                raise FileNotFoundError("no such file")
            size = path.stat().st_size
            if size > self.settings.max_file_mb * 2**20:
                reason = f"file is {size / 2**20:.1f} MB, over the {self.settings.max_file_mb:g} MB limit (MMRAG_MAX_FILE_MB)"
                with self.store.writer():
                    doc_id = self.store.record_failure(cid, item.source, item.name, None, reason, size)
                return FileResult(item.source, "failed", reason, doc_id)
            digest = content_hash(path.read_bytes())
        except OSError as exc:
            return FileResult(item.source, "failed", f"cannot read file ({exc.strerror or exc})")
        existing = self.store.document_by_source(cid, item.source)
        if existing and existing.status == "done" and existing.content_hash == digest and not item.reparse:
            return FileResult(item.source, "skipped", "unchanged", existing.id, existing.n_units, existing.format)
        if existing and existing.status == "done" and not item.replace:
            # never silent: another file under this name is stored; the caller must ask to replace it
            return FileResult(item.source, "failed", f"a different document named {item.name!r} is already stored "
                              f"(id {existing.id}): upload with replace=true to replace it", existing.id,
                              conflict=True)
        return digest, size

    # -- embedding and commit ------------------------------------------------------------
    def _embed_and_commit(self, docs: list[tuple], cancelled: Callable[[], bool] | None = None,
                          timed: Callable[[str, float], None] | None = None,
                          prepared: Prepared | None = None, parsing: Callable[[], bool] | None = None) -> list[FileResult]:
        """Embed the units of several parsed documents in shared batches, then commit each one.
        ``cancelled`` is checked between slices of the embedding (a 20,000-unit document takes minutes);
        ``timed(stage, seconds)`` hears what each stage cost; ``prepared``: vectors from their drafts;
        ``parsing()``: whether a parse worker is busy meanwhile."""
        timed = timed or (lambda stage, seconds: None)
        prepared = prepared or Prepared()
        all_units: list[Unit] = [u for d in docs for u in d[5].units]
        text_vecs, sentence_vecs = self._text_vectors(all_units, cancelled, timed, prepared)
        t0 = time.perf_counter()
        image_vecs = self._image_vectors(all_units, prepared.images, parsing)
        timed("images", time.perf_counter() - t0)
        t0 = time.perf_counter()
        results, offset = [], 0
        for cid, source, name, digest, size, parsed in docs:
            rows = [NewUnit(unit, text_vecs[offset + k], image_vecs[offset + k], sentence_vecs[offset + k])
                    for k, unit in enumerate(parsed.units)]
            offset += len(parsed.units)
            doc_id, _ids = self.store.commit_document(NewDocument(cid, source, name, digest, parsed.format, parsed.pages, size,
                                                                  rows, parsed.original_path))
            results.append(FileResult(source, "ok", None, doc_id, len(rows), parsed.format))
        timed("commit", time.perf_counter() - t0)
        return results

    def _text_vectors(self, units: list[Unit], cancelled: Callable[[], bool] | None = None,
                      timed: Callable[[str, float], None] = lambda stage, seconds: None,
                      prepared: Prepared | None = None) -> tuple[list[np.ndarray | None], list[np.ndarray | None]]:
        """Unit vectors, and for text units of several sentences, one vector per sentence.

        Sentence vectors feed the reranker's max-sim feature (the best match between the query and
        any one sentence), which recovers passages whose answer sits in one sentence of many. A text
        that repeats (a sentence in every page's footer, a unit that is one sentence of another) is
        embedded once, and a text drafted while the document parsed (``prepared``) not again.
        """
        prepared = prepared or Prepared()
        texts = [u.search_text() for u in units]
        todo = [i for i, t in enumerate(texts) if t.strip()]
        sentences: dict[int, list[str]] = {}
        if self.settings.sentence_vectors:
            for i in todo:
                if units[i].type == "text":
                    parts = maxsim_texts(units[i].text)
                    if parts:
                        sentences[i] = parts
        out: list[np.ndarray | None] = [None] * len(units)
        sent_out: list[np.ndarray | None] = [None] * len(units)
        t0 = time.perf_counter()
        prepared.hits += sum(texts[i] in prepared.passages for i in todo)
        known = self._embed_unique([texts[i] for i in todo], dict(prepared.passages), cancelled)
        for i in todo:
            out[i] = known[texts[i]]
        timed("text", time.perf_counter() - t0)
        t0 = time.perf_counter()
        # a sentence that is also a unit's text takes the unit's vector, as before drafts
        known = self._embed_unique([s for parts in sentences.values() for s in parts], {**prepared.sentences, **known},
                                   cancelled, "sentence")
        for i, parts in sentences.items():
            sent_out[i] = np.stack([known[p] for p in parts])
        timed("sentences", time.perf_counter() - t0)
        return out, sent_out

    def _embed_unique(self, texts: list[str], known: dict[str, np.ndarray], cancelled: Callable[[], bool] | None,
                      kind: str = "passage", step: int = EMBED_SLICE,
                      around: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
                      ) -> dict[str, np.ndarray]:
        """``known`` with a vector for each of ``texts`` it lacked, each distinct text embedded once, ``step``
        texts at a time, each slice inside ``around()``."""
        new = [t for t in dict.fromkeys(texts) if t not in known]
        for start in range(0, len(new), step):
            if cancelled is not None and cancelled():
                raise Cancelled()
            part = new[start:start + step]
            with around():
                known.update(zip(part, self.text.embed(part, kind=kind)))
        return known

    def _embed_draft(self, into: Prepared, draft: Draft, timed: Callable[[str, float], None],
                     parsing: Callable[[], bool]) -> None:
        """Vectors for a draft's texts and images that ``into`` lacks (as the document's own embedding would).
        While ``parsing()``, the text model takes one core: the worker parsing the rest needs the other."""
        for kind, stage, texts, known in (("passage", "text", draft.passages, into.passages),
                                          ("sentence", "sentences", draft.sentences, into.sentences)):
            t0 = time.perf_counter()
            # small slices: the parse may end meanwhile, and the text model take both cores again
            self._embed_unique([t for t in texts if t not in into.passages], known, None, kind, DRAFT_SLICE,
                               lambda: onnx_models.sharing() if parsing() else contextlib.nullcontext())
            timed(stage, time.perf_counter() - t0)
        t0 = time.perf_counter()
        paths = [p for p in dict.fromkeys(draft.images) if p not in into.images]
        units = [Unit("image", "", image_path=p) for p in paths]
        into.images.update((p, v) for p, v in zip(paths, self._image_vectors(units, None, parsing)) if v is not None)
        timed("images", time.perf_counter() - t0)

    def _image_vectors(self, units: list[Unit], known: dict[str, np.ndarray] | None = None,
                       parsing: Callable[[], bool] | None = None) -> list[np.ndarray | None]:
        """Image units' vectors (None where an image cannot be read); ``known``: by image file, already embedded;
        while ``parsing()``, the image model leaves the parse worker half the cores (``torch_beside_parser``)."""
        known = known or {}
        out: list[np.ndarray | None] = [known.get(u.image_path) if u.type == "image" else None for u in units]
        if not any(u.type == "image" and u.image_path and out[i] is None for i, u in enumerate(units)) or self.image is None:
            return out  # the image model loads only for batches that have images
        from PIL import Image

        todo, images = [], []
        for i, u in enumerate(units):
            if u.type == "image" and u.image_path and out[i] is None:
                try:
                    with Image.open(u.image_path) as im:
                        if not image_fits(*im.size, self.settings):  # parsers check too; this process never decodes a bomb
                            raise ValueError(f"{im.size[0]}x{im.size[1]} pixels, over MMRAG_MAX_IMAGE_PIXELS")
                        im.draft("RGB", (448, 448))  # JPEG: decode at reduced size, the model sees 224 px
                        im.load()
                        images.append(im.copy())  # the embedder handles modes and transparency
                    todo.append(i)
                except Exception as exc:  # EMF/WMF and other formats PIL cannot read stay text-findable
                    log.info("image %s not embedded (%s)", u.image_path, exc)
        # small batches: the image model is shared with queries (text-to-image search), which wait for its lock
        for start in range(0, len(images), IMAGE_BATCH):
            with torch_beside_parser(parsing is not None and parsing()):
                vecs = self.image.embed_images(images[start:start + IMAGE_BATCH])
            for i, v in zip(todo[start:start + IMAGE_BATCH], vecs):
                out[i] = v
        return out


@contextlib.contextmanager
def torch_beside_parser(active: bool) -> Iterator[None]:
    """While ``active`` (a parse worker is busy), torch runs on half the cores, one on two.

    torch's OpenMP threads spin at every barrier: with a parse worker's OCR on the same cores the
    image model ran 5.6x slower on 2 threads than alone (236 against 42 ms an image; on one thread
    69 ms), which made picture-heavy PDFs wait on image embedding. ONNX Runtime's text model slows
    only as much as it loses the cores (14.3 texts/s on two threads beside a busy process, 15.1 on
    one), so it keeps its threads."""
    torch = sys.modules.get("torch") if active else None  # loaded by the image model, never here
    before = torch.get_num_threads() if torch is not None else 0
    if torch is None or before <= 1:
        yield
        return
    torch.set_num_threads(max(1, min(before, (os.cpu_count() or 2) // 2)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class Prepared:
    """Vectors embedded from a document's drafts while it parsed: by text (passages and sentences
    apart: they may be embedded differently) and by image file."""

    passages: dict[str, np.ndarray] = field(default_factory=dict)
    sentences: dict[str, np.ndarray] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict)
    hits: int = 0  # units whose text vector was here

    @classmethod
    def merged(cls, parts: Iterable[Prepared | None]) -> Prepared:
        out = cls()
        for p in parts:
            if p is not None:
                out.passages.update(p.passages)
                out.sentences.update(p.sentences)
                out.images.update(p.images)
        return out


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="file", desc="ingest", disable=not enabled, dynamic_ncols=True)
