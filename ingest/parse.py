"""One entry point from bytes to units: detect, guard, parse, chunk."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ingest.blocks import Block
from ingest.chunking import Chunker, ImageSink
from ingest.detect import detect_format
from ingest.limits import check_size
from ingest.ocr import get_ocr_engine
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


def parse_blocks(data: bytes, name: str, settings: Settings) -> tuple[str, list[Block]]:
    check_size(data, settings)
    fmt = detect_format(data, name)
    ocr = get_ocr_engine(settings.ocr_engine) if fmt in ("pdf", "image") else None
    source = Path(name) if name else None
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
            blocks = web.parse_html(data, source)
        elif fmt == "markdown":
            blocks = web.parse_markdown(data, source)
        else:
            blocks = web.parse_text(data)
    return fmt, blocks


def parse_document(data: bytes, name: str, settings: Settings, sink: ImageSink) -> ParsedDocument:
    """Parse one file's bytes. Raises DocumentError (with a reason a user can act on) for bad input."""
    try:
        fmt, blocks = parse_blocks(data, name, settings)
    except DocumentError:
        raise
    except MemoryError as exc:
        raise CorruptDocument("ran out of memory while parsing") from exc
    except Exception as exc:  # a parser bug or an odd file must fail this document only
        log.debug("parser crashed on %s", name, exc_info=True)
        raise CorruptDocument(f"could not be parsed ({type(exc).__name__}: {exc})") from exc
    chunker = Chunker(settings.chunk_tokens, settings.table_max_tokens, settings.chunk_overlap_sentences)
    units = chunker.units(blocks, sink)
    if not units:
        hint = " (a scan with OCR disabled?)" if fmt in ("pdf", "image") and settings.ocr_engine == "none" else ""
        raise CorruptDocument(f"no extractable content: the {fmt} holds no text, table or image{hint}")
    pages = max((u.page or 0 for u in units), default=0) or None
    return ParsedDocument(fmt, units, pages)
