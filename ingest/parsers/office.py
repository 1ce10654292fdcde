"""DOCX and PPTX through python-docx and python-pptx.

unstructured drops DOCX/PPTX pictures unless a picture partitioner is registered and needs a
spaCy model download offline; reading the OOXML directly keeps images, alt text and table cells.
"""

from __future__ import annotations

import io
import logging
import re

from ingest.blocks import Block, normalise_rows
from ingest.charts import chart_parts, read_chart
from ingest.limits import check_pages, check_zip
from mmrag.errors import CorruptDocument, LimitExceeded
from mmrag.settings import Settings

log = logging.getLogger(__name__)

_NS = {
    "w": "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    "a": "http://schemas.openxmlformats.org/drawingml/2006/main",
    "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "wp": "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing",
    "v": "urn:schemas-microsoft-com:vml",
}
_HEADING_RE = re.compile(r"^(heading|titre|überschrift|标题)\s*(\d)", re.I)
EMU_PER_PT = 12700


def _image_ext(content_type: str) -> str:
    sub = content_type.split("/")[-1].lower()
    return {"jpeg": "jpg", "x-emf": "emf", "x-wmf": "wmf", "tiff": "tif"}.get(sub, sub)


def parse_docx(data: bytes, settings: Settings) -> list[Block]:
    check_zip(data, settings)
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:
        raise CorruptDocument(f"DOCX cannot be read ({type(exc).__name__}: {exc})") from exc
    part = document.part
    body = document.element.body
    n_paragraphs = sum(1 for _ in body.iter(f"{{{_NS['w']}}}p"))
    if n_paragraphs > settings.max_paragraphs:
        raise LimitExceeded(f"{n_paragraphs} paragraphs, over the {settings.max_paragraphs} limit (MMRAG_MAX_PARAGRAPHS)")
    styles: dict[str | None, str] = {}  # python-docx looks a style up in the styles part on every call
    blocks: list[Block] = []
    for child in body.iterchildren():
        tag = child.tag.split("}")[-1]
        if tag == "p":
            para = Paragraph(child, document)
            blocks.extend(_docx_images(child, part))
            blocks.extend(chart_blocks(chart_parts(child, part)))
            text = para.text.strip()
            if not text:
                continue
            style_id = child.style
            if style_id not in styles:
                styles[style_id] = (para.style.name if para.style is not None else "") or ""
            style = styles[style_id]
            m = _HEADING_RE.match(style)
            if style.lower() == "title":
                blocks.append(Block("heading", text, level=1))
            elif m:
                blocks.append(Block("heading", text, level=int(m.group(2))))
            else:
                meta = {"caption": True} if style.lower() == "caption" else {}
                blocks.append(Block("paragraph", text, meta=meta))
        elif tag == "tbl":
            table = Table(child, document)
            rows = normalise_rows([[cell.text for cell in row.cells] for row in table.rows])
            if rows:
                blocks.append(Block("table", rows=rows))
            for blip_owner in child.iter(f"{{{_NS['w']}}}p"):
                blocks.extend(_docx_images(blip_owner, part))
    return blocks


def _docx_images(element, part) -> list[Block]:
    out = []
    for drawing in element.iter(f"{{{_NS['wp']}}}inline", f"{{{_NS['wp']}}}anchor"):
        doc_pr = drawing.find(f"{{{_NS['wp']}}}docPr")
        alt = None
        if doc_pr is not None:
            alt = (doc_pr.get("descr") or doc_pr.get("title") or "").strip() or None
        for blip in drawing.iter(f"{{{_NS['a']}}}blip"):
            rid = blip.get(f"{{{_NS['r']}}}embed")
            if not rid or rid not in part.related_parts:
                continue
            img = part.related_parts[rid]
            out.append(Block("image", image=img.blob, image_ext=_image_ext(img.content_type), alt=alt))
    return out


def parse_pptx(data: bytes, settings: Settings) -> list[Block]:
    check_zip(data, settings)
    from pptx import Presentation

    try:
        prs = Presentation(io.BytesIO(data))
    except Exception as exc:
        raise CorruptDocument(f"PPTX cannot be read ({type(exc).__name__}: {exc})") from exc
    check_pages(len(prs.slides), settings)
    blocks: list[Block] = []
    for number, slide in enumerate(prs.slides, start=1):
        shapes = sorted(_flatten(slide.shapes), key=lambda s: ((s.top or 0), (s.left or 0)))
        title_shape = slide.shapes.title
        if title_shape is not None and title_shape.has_text_frame and title_shape.text_frame.text.strip():
            blocks.append(Block("heading", title_shape.text_frame.text.strip(), page=number, bbox=_bbox(title_shape), level=1))
        for shape in shapes:
            if title_shape is not None and shape.shape_id == title_shape.shape_id:
                continue
            blocks.extend(_shape_blocks(shape, number))
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame.text.strip() if slide.notes_slide.notes_text_frame else ""
            if notes:
                blocks.append(Block("paragraph", notes, page=number, meta={"speaker_notes": True}))
    return blocks


def _flatten(shapes):
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    for shape in shapes:
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            yield from _flatten(shape.shapes)
        else:
            yield shape


def _bbox(shape) -> list[float] | None:
    if shape.left is None or shape.top is None:
        return None
    x0, y0 = shape.left / EMU_PER_PT, shape.top / EMU_PER_PT
    return [x0, y0, x0 + (shape.width or 0) / EMU_PER_PT, y0 + (shape.height or 0) / EMU_PER_PT]


def chart_blocks(parts: list[bytes], page: int | None = None, box: list[float] | None = None) -> list[Block]:
    """A native chart becomes a table of its data, titled by the chart (rendering it needs an Office
    renderer, which is not here: the numbers are what questions ask about)."""
    out = []
    for xml in parts:
        chart = read_chart(xml)
        if chart is not None and len(chart.rows) > 1:
            caption = f"Chart: {chart.title}" if chart.title else "Chart"
            out.append(Block("table", page=page, bbox=box, rows=chart.rows, caption=caption,
                             meta={"chart": chart.kind}))
    return out


def _shape_blocks(shape, page: int) -> list[Block]:
    box = _bbox(shape)
    if getattr(shape, "has_chart", False) and shape.has_chart:
        return chart_blocks(chart_parts(shape._element, shape.part), page, box)
    if getattr(shape, "has_table", False) and shape.has_table:
        rows = normalise_rows([[cell.text for cell in row.cells] for row in shape.table.rows])
        return [Block("table", page=page, bbox=box, rows=rows)] if rows else []
    if hasattr(type(shape), "image"):
        try:
            image = shape.image
            blob, ext = image.blob, image.ext
        except Exception as exc:  # a linked (not embedded) picture has no blob: the picture goes, the deck stays
            log.warning("slide %d: picture skipped (%s)", page, exc)
            return []
        c_nv_pr = shape._element.find(".//{http://schemas.openxmlformats.org/presentationml/2006/main}cNvPr")
        alt = (c_nv_pr.get("descr") or "").strip() or None if c_nv_pr is not None else None
        return [Block("image", page=page, bbox=box, image=blob, image_ext=ext, alt=alt)]
    if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
        text = "\n".join(p.text for p in shape.text_frame.paragraphs if p.text.strip()).strip()
        return [Block("paragraph", text, page=page, bbox=box)] if text else []
    return []
