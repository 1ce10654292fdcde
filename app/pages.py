"""Page images for citations: a PDF page rendered from the stored original (the cited unit's box drawn
on request), and any unit's region cut from its page.

Boxes are in PDF points, top-left origin, for PDFs; in pixels for image documents, whose pages are
their own stored images. pdfium is not thread-safe, and routes run in a thread pool: one lock.
"""

from __future__ import annotations

import io
import threading
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw

from indexes.records import DocumentRecord
from ingest.limits import render_scale

_PDFIUM = threading.Lock()
MAX_SIDE = 2400  # pixels: an image document's page is shown at most this large
HIGHLIGHT = (230, 80, 0)


class NoPageImage(LookupError):
    """The document or unit has no page to show (a DOCX, a page out of range, a file gone)."""


class PageImages:
    def __init__(self, store, settings) -> None:
        self.store, self.settings = store, settings

    def renderable(self, doc: DocumentRecord) -> bool:
        return bool(doc.original_path) or doc.format == "image"

    def page_png(self, doc: DocumentRecord, page: int, dpi: int | None = None, box: list[float] | None = None) -> bytes:
        image, scale = self._page(doc, page, dpi or self.settings.page_dpi)
        if box:
            image = image.convert("RGB")
            overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
            draw = ImageDraw.Draw(overlay)
            rect = [v * scale for v in box]
            draw.rectangle(rect, fill=(*HIGHLIGHT, 40), outline=(*HIGHLIGHT, 255), width=max(2, round(2 * scale)))
            image = Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")
        return _png(image)

    def crop_png(self, doc: DocumentRecord, unit, dpi: int | None = None) -> bytes:
        if unit.type == "image" and unit.image_path and self._own(unit.image_path):
            with Image.open(unit.image_path) as im:  # the figure as it was cut at ingestion
                return _png(im.convert("RGB"))
        if not unit.page or not unit.bbox:
            raise NoPageImage(f"unit {unit.id} has no region on a page")
        image, scale = self._page(doc, unit.page, dpi or 150)
        x0, y0, x1, y1 = (round(v * scale) for v in unit.bbox)
        pad = round(4 * scale)
        return _png(image.crop((max(0, x0 - pad), max(0, y0 - pad), min(image.width, x1 + pad), min(image.height, y1 + pad))))

    # -- where the pixels come from --------------------------------------------------------
    def _own(self, path: str) -> bool:
        p = Path(path)
        return p.resolve().is_relative_to(self.store.blob_dir.resolve()) and p.is_file()

    def _page(self, doc: DocumentRecord, page: int, dpi: int) -> tuple[Image.Image, float]:
        """The page as an image and its pixels per box unit."""
        if doc.original_path:
            if not self._own(doc.original_path):
                raise NoPageImage("the stored PDF is gone: ingest the document again")
            return _render_pdf(doc.original_path, page, dpi, self.settings.max_image_pixels)
        if doc.format == "image":
            frames = [u for u in self.store.document_units(doc.id) if u.type == "image" and u.page == page and u.image_path]
            if not frames or not self._own(frames[0].image_path):
                raise NoPageImage(f"document {doc.id} has no page {page}")
            with Image.open(frames[0].image_path) as im:
                im = im.convert("RGB")
            scale = min(1.0, MAX_SIDE / max(im.size))
            return (im.resize((round(im.width * scale), round(im.height * scale))) if scale < 1 else im), scale
        raise NoPageImage(f"pages are shown for PDFs and images; document {doc.id} is {doc.format}"
                          " (or was ingested before PDFs were kept: ingest it again)")


@lru_cache(maxsize=8)  # a few pages (~6 MB each at 110 dpi): a reader looks at several citations of one page
def _render_pdf(path: str, page: int, dpi: int, max_pixels: int) -> tuple[Image.Image, float]:
    import pypdfium2 as pdfium

    from mmrag.settings import Settings

    with _PDFIUM:
        doc = pdfium.PdfDocument(path)
        try:
            if not 1 <= page <= len(doc):
                raise NoPageImage(f"page {page} is out of range (1-{len(doc)})")
            p = doc[page - 1]
            width, height = p.get_size()
            scale = render_scale(width, height, dpi, Settings.model_construct(max_image_pixels=max_pixels))
            image = p.render(scale=scale).to_pil().convert("RGB")
            p.close()
        finally:
            doc.close()
    return image, scale


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)
    return buf.getvalue()
