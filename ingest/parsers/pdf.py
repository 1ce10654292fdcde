"""PDF: pypdfium2 for text with positions, images and page renders; pdfplumber for ruled tables.

unstructured's ``fast`` strategy finds no tables or images and ``hi_res`` needs hub models,
so PDFs are parsed here directly (see README, "What we use instead").
"""

from __future__ import annotations

import io
import logging
import re
import statistics
from dataclasses import dataclass

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from ingest import drafts
from ingest.blocks import Block, normalise_rows, overlap_share
from ingest.chunking import _FIGURE_CAPTION
from ingest.layout import GRAPHIC_PATHS_FOR_LAYOUT, LAYOUT_DPI, get_layout_model, graphic_paths
from ingest.limits import check_pages, image_fits, render_scale
from ingest.ocr import OcrEngine, lines_to_paragraphs
from ingest.reading import drop_running_lines, reading_order
from ingest.table_structure import Word, get_table_model, structure_of
from ingest.tables import Run, aligned_tables, join_continued, looks_tabular
from mmrag.errors import CorruptDocument, EncryptedDocument
from mmrag.settings import Settings

log = logging.getLogger(__name__)

MIN_PATHS_FOR_TABLES = 4  # pages with fewer vector paths cannot hold a ruled table
MIN_FIGURE_AREA = 0.02  # of the page: smaller "figures" are icons, bullets, logos
SCAN_TEXT_CHARS = 16  # a page with less text than this and a big image is treated as a scan


@dataclass
class _Line:
    text: str
    bbox: list[float]  # top-left origin
    size: float


def parse_pdf(data: bytes, settings: Settings, ocr: OcrEngine | None) -> list[Block]:
    if b"%%EOF" not in data[-2048:]:
        raise CorruptDocument("PDF is truncated (no %%EOF marker at the end of the file)")
    try:
        doc = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise EncryptedDocument("PDF is encrypted (password-protected): decrypt it and retry") from exc
        raise CorruptDocument(f"PDF cannot be opened ({exc})") from exc
    try:
        n_pages = len(doc)
        if n_pages == 0:
            raise CorruptDocument("PDF has no pages")
        check_pages(n_pages, settings)
        plumber = _LazyPlumber(data)
        blocks: list[Block] = []
        try:
            layout = get_layout_model(settings.pdf_layout, settings.parse_threads)
            table_model = get_table_model(settings)
            heights: dict[int, float] = {}
            for index in range(n_pages):
                blocks.extend(_parse_page(doc, index, plumber, settings, ocr, layout, table_model))
                heights[index + 1] = doc.get_page_size(index)[1]
                drafts.page_done(blocks, index + 1, heights)  # the embedding side may start on these pages
        finally:
            plumber.close()
        return join_continued(drop_running_lines(blocks, heights, n_pages))
    finally:
        doc.close()


class _LazyPlumber:
    """pdfplumber is ~100x slower than pdfium: open it only when a page may hold a table."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pdf = None

    def page(self, index: int):
        if self._pdf is None:
            import pdfplumber

            self._pdf = pdfplumber.open(io.BytesIO(self._data))
        return self._pdf.pages[index]

    def close(self) -> None:
        if self._pdf is not None:
            self._pdf.close()


def _parse_page(doc, index: int, plumber: _LazyPlumber, settings: Settings, ocr: OcrEngine | None, layout=None,
                table_model=None) -> list[Block]:
    page = doc[index]
    page_no = index + 1
    width, height = page.get_size()
    textpage = page.get_textpage()
    try:
        segments = _text_segments(textpage, height)
    finally:
        textpage.close()
    lines = _merge_lines(segments)
    images = list(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=3))
    n_paths = sum(1 for _ in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_PATH], max_depth=2))

    blocks: list[Block] = []
    n_chars = sum(len(ln.text) for ln in lines)
    full_page = [im for im in images if _covers(im, width, height, 0.5)]
    if n_chars < SCAN_TEXT_CHARS and full_page and ocr is not None:
        blocks.extend(_ocr_page(page, page_no, width, height, settings, ocr, layout if settings.scan_layout else None, table_model))
        page.close()
        return blocks

    figures, table_regions = _vector_figures(page, page_no, width, height, settings, layout, lines) if layout is not None and n_paths else ([], [])
    tables = _tables(plumber, index, page_no) if n_paths >= MIN_PATHS_FOR_TABLES else []
    # a "table" that pdfplumber finds inside a chart is its gridlines and labels, not a table
    tables = [t for t in tables if not any(overlap_share(t.bbox, f.bbox) > 0.5 for f in figures)]
    # tables without rulings, from the text runs that no figure or ruled table holds
    taken = [b.bbox for b in tables + figures]
    runs = [Run(sg.text, sg.bbox) for sg in segments if not any(_inside(sg.bbox, box) for box in taken)]
    tables += [Block("table", page=page_no, bbox=t.bbox, rows=t.rows, meta={"table_finder": "aligned"}) for t in aligned_tables(runs)]
    if table_model is not None:
        free = [r for r in table_regions if not any(overlap_share(r, f.bbox) > 0.3 for f in figures)]
        tables = _structured(page, page_no, tables, free, segments, table_model, settings)
    if tables:
        lines = [ln for ln in lines if not any(_inside(ln.bbox, t.bbox) for t in tables)]
    for fig in figures:
        # the chart's own words (title, axis labels, values) become its text, not cut-up body text
        fig.ocr_text = "\n".join(ln.text for ln in lines if _inside(ln.bbox, fig.bbox)) or None
        lines = [ln for ln in lines if not _inside(ln.bbox, fig.bbox)]
    items: list[Block] = _paragraphs(lines, page_no) + tables + figures
    for im in images:
        if _covers(im, width, height, 0.85):
            continue  # page background or the scan under an OCR text layer, not a figure
        left, bottom, right, top = im.get_bounds()
        if any(_inside([left, height - top, right, height - bottom], f.bbox) for f in figures):
            continue  # part of a figure already cropped whole
        block = _image_block(im, page_no, height, settings)
        if block is not None:
            items.append(block)
    page.close()
    return reading_order(items, lambda b: b.bbox)


def _text_segments(textpage, page_height: float) -> list[_Line]:
    """The page's text runs (pdfium's rects: a run of one font on one line, a table cell)."""
    n_rects = textpage.count_rects()
    segments: list[_Line] = []
    for i in range(n_rects):
        left, bottom, right, top = textpage.get_rect(i)
        text = _clean(textpage.get_text_bounded(left, bottom, right, top))
        if not text:
            continue
        cx, cy = (left + right) / 2, (bottom + top) / 2
        ci = pdfium_c.FPDFText_GetCharIndexAtPos(textpage.raw, cx, cy, (right - left) / 2 + 1, (top - bottom) / 2 + 1)
        size = pdfium_c.FPDFText_GetFontSize(textpage.raw, ci) if ci >= 0 else (top - bottom)
        segments.append(_Line(text, [left, page_height - top, right, page_height - bottom], float(size)))
    return segments


def _merge_lines(segments: list[_Line]) -> list[_Line]:
    # Merge segments into lines in content-stream order: that order is the author's reading
    # order (columns, OCR layers), which a sort by coordinates would scramble.
    lines: list[_Line] = []
    for seg in segments:
        if lines:
            last = lines[-1]
            overlap = min(last.bbox[3], seg.bbox[3]) - max(last.bbox[1], seg.bbox[1])
            h = max(1.0, min(last.bbox[3] - last.bbox[1], seg.bbox[3] - seg.bbox[1]))
            if overlap > 0.5 * h and -h < seg.bbox[0] - last.bbox[2] < 4 * h:
                last.text += " " + seg.text
                last.bbox = [min(last.bbox[0], seg.bbox[0]), min(last.bbox[1], seg.bbox[1]), max(last.bbox[2], seg.bbox[2]), max(last.bbox[3], seg.bbox[3])]
                last.size = max(last.size, seg.size)
                continue
        lines.append(_Line(seg.text, list(seg.bbox), seg.size))
    return lines


def _clean(text: str) -> str:
    # pdfium marks a hyphen that breaks a word across lines with \x02; rejoin the word
    text = re.sub(r"\x02\s*", "", text)
    return " ".join(text.split())


def _paragraphs(lines: list[_Line], page_no: int) -> list[Block]:
    """Lines to paragraphs by vertical gap and font size; large short lines become headings."""
    if not lines:
        return []
    body = statistics.median(ln.size for ln in lines)
    blocks: list[Block] = []
    cur: list[_Line] = []

    def flush() -> None:
        if not cur:
            return
        text = " ".join(ln.text for ln in cur)
        text = text.replace("- ", "-").replace("\u00ad ", "") if text.count("- ") > 3 else text
        box = [min(ln.bbox[0] for ln in cur), min(ln.bbox[1] for ln in cur), max(ln.bbox[2] for ln in cur), max(ln.bbox[3] for ln in cur)]
        size = max(ln.size for ln in cur)
        if size >= 1.2 * body and len(text.split()) <= 20 and len(cur) <= 3:
            level = 1 if size >= 1.6 * body else 2
            blocks.append(Block("heading", text, page=page_no, bbox=box, level=level))
        else:
            blocks.append(Block("paragraph", text, page=page_no, bbox=box))
        cur.clear()

    for ln in lines:
        if cur:
            prev = cur[-1]
            h = max(1.0, prev.bbox[3] - prev.bbox[1])
            gap = ln.bbox[1] - prev.bbox[3]
            if gap > 0.7 * h or abs(ln.size - prev.size) > 0.15 * max(ln.size, prev.size) or ln.bbox[1] < prev.bbox[1]:
                flush()
        cur.append(ln)
    flush()
    return blocks


def _tables(plumber: _LazyPlumber, index: int, page_no: int) -> list[Block]:
    """Ruled tables. Where rulings are only partial (e.g. a header rule), columns come from text alignment."""
    try:
        page = plumber.page(index)
        ruled = page.find_tables()
        if not ruled:
            return []
        aligned = page.find_tables({"vertical_strategy": "text", "horizontal_strategy": "lines"})
    except Exception as exc:  # pdfplumber raises many types on odd pages; tables are best effort
        log.warning("page %d: table detection failed (%s)", page_no, exc)
        return []
    blocks = []
    seen: set[tuple] = set()
    for table in ruled:
        best = table
        rows = table.extract()
        for alt in aligned:
            alt_rows = alt.extract()
            # Only when rulings miss columns: the text-aligned table reaches beyond the ruled one.
            wider = (alt.bbox[2] - alt.bbox[0]) > (table.bbox[2] - table.bbox[0]) + 5
            if wider and _inside(table.bbox, alt.bbox, slack=2.0) and len(alt_rows) >= len(rows) and len(alt_rows[0]) > len(rows[0]):
                best, rows = alt, alt_rows
        key = tuple(round(v) for v in best.bbox)
        if key in seen:
            continue  # several ruled fragments resolved to the same aligned table
        seen.add(key)
        rows = normalise_rows(rows)
        if len(rows) < 2 or len(rows[0]) < 2 or sum(1 for r in rows for c in r if c) < 4:
            continue  # diagram boxes and rules, not tables
        blocks.append(Block("table", page=page_no, bbox=[float(v) for v in best.bbox], rows=rows))
    return blocks


def _image_block(obj, page_no: int, page_height: float, settings: Settings) -> Block | None:
    try:
        w, h = obj.get_px_size()
        if min(w, h) < settings.min_image_px:
            return None
        if not image_fits(w, h, settings):
            log.warning("page %d: skipped an embedded image of %dx%d pixels (over MMRAG_MAX_IMAGE_PIXELS)", page_no, w, h)
            return None
        left, bottom, right, top = obj.get_bounds()
        pil = obj.get_bitmap(render=True).to_pil()
    except Exception as exc:  # a broken image stream loses the figure, not the document
        log.warning("page %d: an embedded image could not be decoded (%s)", page_no, exc)
        return None
    buf = io.BytesIO()
    pil.convert("RGB").save(buf, format="PNG")
    return Block("image", page=page_no, bbox=[left, page_height - top, right, page_height - bottom], image=buf.getvalue(), image_ext="png")


def _vector_figures(page, page_no: int, width: float, height: float, settings: Settings, layout,
                    lines: list[_Line]) -> list[Block]:
    """Figures and charts the layout model finds on a page that draws graphics, cropped from a render."""
    if graphic_paths(page, width, height) < GRAPHIC_PATHS_FOR_LAYOUT:
        return [], []
    return _figures(page, page_no, width, height, settings, layout, lines)


def _figures(page, page_no: int, width: float, height: float, settings: Settings, layout, lines: list[_Line],
             max_area: float = 1.0) -> tuple[list[Block], list[list[float]]]:
    """The figures (cropped, as image blocks) and the table regions the layout model finds on a page."""
    scale = render_scale(width, height, LAYOUT_DPI, settings)
    try:
        pil = page.render(scale=scale).to_pil()
        regions = layout.regions(pil, scale)
    except Exception as exc:  # layout is an addition: a page it fails on keeps its text
        log.warning("page %d: layout analysis failed (%s)", page_no, exc)
        return [], []
    blocks = []
    table_regions = [r.bbox for r in regions if r.kind == "table"]
    for r in regions:
        x0, y0, x1, y1 = (max(0.0, r.bbox[0]), max(0.0, r.bbox[1]), min(width, r.bbox[2]), min(height, r.bbox[3]))
        area = (x1 - x0) * (y1 - y0)
        if r.kind != "figure" or area < MIN_FIGURE_AREA * width * height or area > max_area * width * height:
            continue
        # a short line just above the box, within its width, is the chart's title (the model often leaves it out)
        for ln in lines:
            if 0 <= y0 - ln.bbox[3] <= 1.5 * (ln.bbox[3] - ln.bbox[1]) and ln.bbox[0] >= x0 - 2 and ln.bbox[2] <= x1 + 2 \
                    and len(ln.text.split()) <= 15 and not _FIGURE_CAPTION.match(ln.text):
                y0 = ln.bbox[1]
        pad = 4.0  # the model's edges sometimes clip a label: a few points more
        box = [max(0.0, x0 - pad), max(0.0, y0 - pad), min(width, x1 + pad), min(height, y1 + pad)]
        crop = pil.crop(tuple(round(v * scale) for v in box))
        buf = io.BytesIO()
        crop.convert("RGB").save(buf, format="PNG")
        blocks.append(Block("image", page=page_no, bbox=box, image=buf.getvalue(), image_ext="png",
                            meta={"vector_figure": True, "layout_score": round(r.score, 3)}))
    return blocks, table_regions


def _structured(page, page_no: int, tables: list[Block], regions: list[list[float]], segments: list[_Line], model,
                settings: Settings) -> list[Block]:
    """Tables read by the structure model: the ones rules found, and the layout model's table regions
    that rules missed (kept only when what the model reads looks like a table)."""
    found = list(tables)
    for box in regions:
        if not any(overlap_share(box, t.bbox) > 0.3 or overlap_share(t.bbox, box) > 0.5 for t in tables):
            found.append(Block("table", page=page_no, bbox=list(box), meta={"table_finder": "layout"}))
    out = []
    for t in found:
        words = [Word(sg.text, sg.bbox) for sg in segments if _inside(sg.bbox, t.bbox)]
        st = structure_of(model, page, t.bbox, words, settings) if len(words) >= 4 else None
        grid = st.grid() if st is not None else None
        if st is not None and t.rows and not _agrees(t.rows, st.n_cols, grid):
            st = None  # the model misread a table the rules read (long tables, mostly): keep the rules' grid
        if st is not None:
            if t.rows is None and not looks_tabular(grid):
                continue
            t.rows, t.structure = grid, st
            t.meta["table_structure"] = model.name
        if t.rows:
            out.append(t)
    return out


def _agrees(rows: list[list[str]], n_cols: int, model_rows: list[list[str]]) -> bool:
    """The model's cells agree with the rules' grid: as many columns, and every row the rules read with
    all its cells filled comes out of the model the same (the rules go wrong on spans and wrapped
    cells, which leave rows partly empty; the model goes wrong on long tables, dropping words)."""
    if n_cols != len(rows[0]):
        return False
    return all(r in model_rows for r in rows if all(r))


def _ocr_page(page, page_no: int, width: float, height: float, settings: Settings, ocr: OcrEngine, layout=None,
              table_model=None) -> list[Block]:
    """A scan: OCR for the text and, with a layout model, its figures and charts as image units (the
    words read inside a figure become its text; they stay in the page's paragraphs too, as OCR
    cannot tell a chart label from a sentence) and its tables, structured from the OCR'd words."""
    scale = render_scale(width, height, settings.ocr_dpi, settings)  # checked before a pixel is allocated
    pil = page.render(scale=scale, grayscale=True).to_pil()
    lines = ocr.read(pil)
    blocks = []
    for text, box in lines_to_paragraphs(lines):
        bbox = [v / scale for v in box]
        blocks.append(Block("paragraph", text, page=page_no, bbox=bbox, meta={"ocr": True}))
    figures, tables = [], []
    if layout is not None:
        words = [_Line(ln.text, [v / scale for v in ln.bbox], 0.0) for ln in lines]
        found, regions = _figures(page, page_no, width, height, settings, layout, words, max_area=0.85)
        for fig in found:
            fig.ocr_text = "\n".join(w.text for w in words if _inside(w.bbox, fig.bbox)) or None
            fig.meta = {"scanned_figure": True, "layout_score": fig.meta["layout_score"]}
            figures.append(fig)
        if table_model is not None and regions:
            free = [r for r in regions if not any(overlap_share(r, f.bbox) > 0.3 for f in figures)]
            tables = _structured(page, page_no, [], free, words, table_model, settings)
            blocks = [b for b in blocks if not any(_inside(b.bbox, t.bbox) for t in tables)]
    extra = figures + tables
    return reading_order(blocks + extra, lambda b: b.bbox) if extra else blocks


def _covers(obj, width: float, height: float, fraction: float) -> bool:
    left, bottom, right, top = obj.get_bounds()
    return (right - left) * (top - bottom) >= fraction * width * height


def _inside(inner: list[float] | tuple, outer: list[float] | tuple, slack: float = 1.0) -> bool:
    cx, cy = (inner[0] + inner[2]) / 2, (inner[1] + inner[3]) / 2
    return outer[0] - slack <= cx <= outer[2] + slack and outer[1] - slack <= cy <= outer[3] + slack
