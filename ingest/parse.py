"""One entry point from bytes to units: detect, guard, parse, chunk."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ingest.assets import AssetFolder
from ingest.blocks import Block
from ingest.chunking import Chunker, ImageSink
from ingest.detect import detect_format, detect_text_format
from ingest.limits import check_size
from ingest.ocr import get_ocr_engine
from ingest.ocr_int8 import int8_cache
from mmrag.errors import CorruptDocument, DocumentError
from mmrag.settings import Settings
from mmrag.units import Unit

log = logging.getLogger(__name__)


@dataclass
class ParsedDocument:
    format: str
    units: list[Unit]
    pages: int | None = None
    warnings: list[str] = field(default_factory=list)
    original_path: str | None = None  # the stored file its pages are rendered from (PDFs)
    timings: dict[str, float] = field(default_factory=dict)  # seconds in OCR, layout, tables (ingest.stageclock)


_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff/\\\\]")


def display_name(name: str | None, limit: int = 200) -> str:
    """A client's file name made safe to store, show and log: its last path part, without control
    or bidi characters (which disguise an extension: "report\u202efdp.exe"), at most ``limit``
    characters with the extension kept."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME.sub("", name).strip().strip(".") or "upload"
    if len(name) > limit:
        stem, dot, ext = name.rpartition(".")
        ext = ext if dot and len(ext) <= 10 else ""
        name = (stem if ext else name)[: limit - len(ext) - 2] + "…" + ("." + ext if ext else "")
    return name


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class DirectoryImageSink:
    """Writes each image once, named by its content hash, atomically (temp file + rename)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def __call__(self, data: bytes, ext: str) -> str:
        digest = hashlib.sha256(data).hexdigest()
        sub = self.directory / digest[:2]
        path = sub / f"{digest}.{ext or 'bin'}"
        if not path.exists():
            sub.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=sub, suffix=".part")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        return str(path)


def parse_blocks(data: bytes, name: str, settings: Settings, assets: AssetFolder | None = None) -> tuple[str, list[Block]]:
    check_size(data, settings)
    fmt = detect_format(data, name)
    ocr = None
    if fmt in ("pdf", "image"):
        ocr = get_ocr_engine(settings.ocr_engine, settings.parse_threads, settings.ocr_det_side, int8_cache(settings))
    try:
        return fmt, _parse_as(fmt, data, settings, assets, ocr)
    except CorruptDocument:
        if fmt not in ("pdf", "image") or (fmt == "pdf" and data.startswith(b"%PDF-")) or not _decodes(data):
            raise
        try:  # a text file that happens to start like a binary format ("BM…", "%PDF-" quoted)
            fallback = detect_text_format(data, name)
        except DocumentError:
            raise  # not text either: the first reason stands
        log.warning("%s: not a readable %s, but it decodes as %s: ingested as %s", name, fmt, fallback, fallback)
        return fallback, _parse_as(fallback, data, settings, assets, None)


def _decodes(data: bytes) -> bool:
    for enc in ("utf-8", "gb18030"):
        try:
            data.decode(enc)
            return True
        except UnicodeDecodeError:
            continue
    return False


def _parse_as(fmt: str, data: bytes, settings: Settings, assets: AssetFolder | None, ocr) -> list[Block]:
    if fmt == "pdf":
        from ingest.parsers.pdf import parse_pdf

        blocks = parse_pdf(data, settings, ocr)
    elif fmt == "docx":
        from ingest.parsers.office import parse_docx

        blocks = parse_docx(data, settings)
    elif fmt == "pptx":
        from ingest.parsers.office import parse_pptx

        blocks = parse_pptx(data, settings)
    elif fmt == "image":
        from ingest.parsers.image import parse_image

        blocks = parse_image(data, settings, ocr)
    else:
        from ingest.parsers import web

        if fmt == "html":
            blocks = web.parse_html(data, assets)
        elif fmt == "markdown":
            blocks = web.parse_markdown(data, assets)
        else:
            blocks = web.parse_text(data)
    return blocks


def chunker_for(settings: Settings) -> Chunker:
    return Chunker(settings.chunk_tokens, settings.table_max_tokens, settings.chunk_overlap_sentences)


def parse_document(data: bytes, name: str, settings: Settings, sink: ImageSink,
                   assets: AssetFolder | None = None) -> ParsedDocument:
    """Parse one file's bytes. Raises DocumentError (with a reason a user can act on) for bad input.

    ``name`` is only a name (it picks nothing from disk); ``assets`` is where relative references
    may be read, None for none (an upload).
    """
    try:
        fmt, blocks = parse_blocks(data, name, settings, assets)
    except DocumentError:
        raise
    except MemoryError as exc:
        raise CorruptDocument("ran out of memory while parsing") from exc
    except Exception as exc:  # a parser bug or an odd file must fail this document only
        log.debug("parser crashed on %s", name, exc_info=True)
        raise CorruptDocument(f"could not be parsed ({type(exc).__name__}: {exc})") from exc
    units = chunker_for(settings).units(blocks, sink)
    if not units:
        hint = " (a scan with OCR disabled?)" if fmt in ("pdf", "image") and settings.ocr_engine == "none" else ""
        raise CorruptDocument(f"no extractable content: the {fmt} holds no text, table or image{hint}")
    pages = max((u.page or 0 for u in units), default=0) or None
    # a PDF is kept (once per content) so that a citation can show its page; an image document's
    # pages are its own stored images
    original = sink(data, "pdf") if fmt == "pdf" and settings.keep_originals else None
    return ParsedDocument(fmt, units, pages, original_path=original)
