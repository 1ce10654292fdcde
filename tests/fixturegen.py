"""Generates the test documents: every format, and every kind of bad input.

Generated rather than committed so each one is small, readable here, and its truth is known.
"""

from __future__ import annotations

import base64
import io
import os
import zipfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

HEADING = "Volcanic Soil Survey"
PARA1 = ("Basalt weathers into fertile soil rich in iron and magnesium. Farmers on the slopes of Etna "
         "grow pistachios and grapes in this dark ground.")
PARA2 = "Drainage is fast because the pumice layer is porous. Irrigation is scheduled twice a week in summer."
TABLE = [["Site", "pH", "Iron mg/kg"], ["Etna north", "6.8", "412"], ["Etna south", "7.1", "388"], ["Vesuvius", "6.5", "455"]]
CAPTION = "Figure 1: A red circle on a blue square"
OCR_WORDS = "HARBOUR LIGHTHOUSE KEEPER"
ZH_TEXT = "长江是中国最长的河流，全长约六千三百公里。三峡大坝位于湖北省宜昌市。"


def font(size: int = 40):
    return ImageFont.load_default(size=size)


def picture(size=(160, 120)) -> Image.Image:
    img = Image.new("RGB", size, (30, 60, 200))
    d = ImageDraw.Draw(img)
    d.ellipse([30, 20, 130, 100], fill=(220, 20, 20))
    return img


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def text_image(text: str = OCR_WORDS, size=(1400, 220)) -> Image.Image:
    img = Image.new("RGB", size, "white")
    ImageDraw.Draw(img).text((40, 70), text, fill="black", font=font(64))
    return img


def make_pdf(path: Path, pages: int = 2) -> Path:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Image as RLImage
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    story = [Paragraph(HEADING, styles["Title"]), Paragraph(PARA1, styles["BodyText"]), Spacer(1, 12)]
    table = Table(TABLE)
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black)]))
    story += [table, Spacer(1, 12)]
    story += [RLImage(io.BytesIO(png_bytes(picture())), width=160, height=120), Paragraph(CAPTION, styles["Italic"])]
    for n in range(2, pages + 1):
        story += [PageBreak(), Paragraph(f"Section {n}", styles["Heading2"]), Paragraph(PARA2, styles["BodyText"])]
    SimpleDocTemplate(str(path), pagesize=A4).build(story)
    return path


def make_scanned_pdf(path: Path) -> Path:
    page = Image.new("L", (1654, 2339), 255)  # A4 at 200 dpi
    d = ImageDraw.Draw(page)
    d.text((150, 300), OCR_WORDS, fill=0, font=font(72))
    d.text((150, 500), "The tower stands on the northern cape", fill=0, font=font(56))
    page.save(path, format="PDF", resolution=200)
    return path


def make_encrypted_pdf(src: Path, path: Path) -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for p in PdfReader(src).pages:
        writer.add_page(p)
    writer.encrypt(user_password="secret", owner_password="owner")
    with open(path, "wb") as fh:
        writer.write(fh)
    return path


def make_docx(path: Path) -> Path:
    import docx
    from docx.shared import Inches

    d = docx.Document()
    d.add_heading(HEADING, level=1)
    d.add_paragraph(PARA1)
    d.add_heading("Measurements", level=2)
    t = d.add_table(rows=len(TABLE), cols=len(TABLE[0]))
    for r, row in enumerate(TABLE):
        for c, val in enumerate(row):
            t.cell(r, c).text = val
    d.add_picture(io.BytesIO(png_bytes(picture())), width=Inches(2))
    d.inline_shapes[0]._inline.docPr.set("descr", "red circle on blue")
    d.add_paragraph(CAPTION, style="Caption")
    d.add_paragraph(PARA2)
    d.save(path)
    return path


def make_pptx(path: Path) -> Path:
    from pptx import Presentation
    from pptx.util import Inches

    prs = Presentation()
    s1 = prs.slides.add_slide(prs.slide_layouts[1])
    s1.shapes.title.text = HEADING
    s1.placeholders[1].text = PARA1
    s2 = prs.slides.add_slide(prs.slide_layouts[5])
    s2.shapes.title.text = "Measurements"
    shape = s2.shapes.add_table(len(TABLE), len(TABLE[0]), Inches(0.5), Inches(1.5), Inches(6), Inches(2))
    for r, row in enumerate(TABLE):
        for c, val in enumerate(row):
            shape.table.cell(r, c).text = val
    pic = s2.shapes.add_picture(io.BytesIO(png_bytes(picture())), Inches(6.5), Inches(4), Inches(2))
    pic._element.nvPicPr.cNvPr.set("descr", "red circle on blue")
    prs.save(path)
    return path


def make_html(path: Path) -> Path:
    b64 = base64.b64encode(png_bytes(picture())).decode()
    rows = "".join("<tr>" + "".join(f"<{'th' if i == 0 else 'td'}>{c}</{'th' if i == 0 else 'td'}>" for c in row) + "</tr>"
                   for i, row in enumerate(TABLE))
    path.write_text(f"""<!DOCTYPE html><html><head><title>t</title><script>var ignored = "SCRIPTTEXT";</script></head>
<body><nav>Home | About</nav><h1>{HEADING}</h1><p>{PARA1}</p>
<h2>Measurements</h2><table><caption>Soil samples</caption>{rows}</table>
<figure><img src="data:image/png;base64,{b64}" alt="red circle on blue"><figcaption>{CAPTION}</figcaption></figure>
<p>{PARA2}</p></body></html>""", encoding="utf-8")
    return path


def make_markdown(path: Path) -> Path:
    table = "\n".join("| " + " | ".join(r) + " |" for r in TABLE[:1]) + "\n|" + "---|" * len(TABLE[0]) + "\n"
    table += "\n".join("| " + " | ".join(r) + " |" for r in TABLE[1:])
    path.write_text(f"# {HEADING}\n\n{PARA1}\n\n## Measurements\n\n{table}\n\n- {PARA2}\n", encoding="utf-8")
    return path


def make_fixtures(root: Path) -> dict[str, Path]:
    """Write every fixture under ``root``; returns name -> path."""
    root = Path(root)
    good, bad = root / "good", root / "bad"
    good.mkdir(parents=True, exist_ok=True)
    bad.mkdir(parents=True, exist_ok=True)
    f: dict[str, Path] = {}
    f["pdf"] = make_pdf(good / "survey.pdf")
    f["scan_pdf"] = make_scanned_pdf(good / "scan.pdf")
    f["docx"] = make_docx(good / "survey.docx")
    f["pptx"] = make_pptx(good / "survey.pptx")
    f["html"] = make_html(good / "survey.html")
    f["md"] = make_markdown(good / "survey.md")
    f["txt"] = good / "notes.txt"
    f["txt"].write_text(f"{PARA1}\n\n{PARA2}\n", encoding="utf-8")
    f["zh_txt"] = good / "yangtze.txt"
    f["zh_txt"].write_bytes(ZH_TEXT.encode("gb18030"))  # GB18030: what many Chinese Windows tools write
    f["png"] = good / "sign.png"
    text_image().save(f["png"])
    f["jpg"] = good / "photo.jpg"
    picture((320, 240)).save(f["jpg"], quality=90)
    f["tiff"] = good / "pages.tiff"
    text_image("FIRST PAGE").save(f["tiff"], save_all=True, append_images=[text_image("SECOND PAGE")])
    # mislabelled but valid: detected by content
    f["png_as_pdf"] = good / "really-a-png.pdf"
    f["png_as_pdf"].write_bytes(png_bytes(picture()))
    f["html_as_txt"] = good / "really-html.txt"
    f["html_as_txt"].write_text(f["html"].read_text(encoding="utf-8"), encoding="utf-8")

    f["empty"] = bad / "empty.pdf"
    f["empty"].write_bytes(b"")
    data = f["pdf"].read_bytes()
    f["truncated_pdf"] = bad / "truncated.pdf"
    f["truncated_pdf"].write_bytes(data[: len(data) // 2])
    f["encrypted_pdf"] = make_encrypted_pdf(f["pdf"], bad / "encrypted.pdf")
    f["garbage_docx"] = bad / "garbage.docx"
    f["garbage_docx"].write_bytes(os.urandom(4096))
    docx_bytes = f["docx"].read_bytes()
    f["truncated_docx"] = bad / "truncated.docx"
    f["truncated_docx"].write_bytes(docx_bytes[: len(docx_bytes) // 2])
    f["encrypted_docx"] = bad / "password.docx"
    _encrypt_docx(f["docx"], f["encrypted_docx"])
    f["zip_bomb"] = bad / "bomb.docx"
    with zipfile.ZipFile(f["zip_bomb"], "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", b"\0" * (64 * 2**20))  # 64 MB of zeros in ~64 KB
    f["truncated_png"] = bad / "truncated.png"
    png = png_bytes(text_image())
    f["truncated_png"].write_bytes(png[: len(png) // 3])
    f["pixel_bomb"] = bad / "huge.png"
    Image.new("1", (12000, 12000)).save(f["pixel_bomb"])  # 144 Mpx; tiny file
    f["xlsx"] = bad / "sheet.xlsx"
    with zipfile.ZipFile(f["xlsx"], "w") as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
    f["empty_docx"] = bad / "blank.docx"
    import docx

    docx.Document().save(f["empty_docx"])
    return f


def _encrypt_docx(src: Path, dst: Path) -> None:
    import msoffcrypto
    from msoffcrypto.format.ooxml import OOXMLFile

    with open(src, "rb") as fin, open(dst, "wb") as fout:
        OOXMLFile(fin).encrypt("secret", fout)
    assert msoffcrypto  # imported for its side effects on older versions


if __name__ == "__main__":
    import sys

    for name, p in make_fixtures(Path(sys.argv[1])).items():
        print(f"{name:16} {p}")


CHART_TITLE = "Share of adults who recycle"
CHART_AXIS = "Survey year"


def make_chart_report(path: Path) -> Path:
    """A report page with a vector bar chart (paths only: no embedded image), its caption, body text,
    and a line chart with curves on a second page."""
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.charts.lineplots import LinePlot
    from reportlab.graphics.shapes import Drawing, String
    from reportlab.lib.pagesizes import letter
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer

    styles = getSampleStyleSheet()
    bars = Drawing(400, 220)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 50, 40, 320, 150
    chart.data = [[31, 45, 52, 61], [22, 30, 41, 38]]
    chart.categoryAxis.categoryNames = ["2019", "2020", "2021", "2022"]
    chart.valueAxis.valueMin = 0
    bars.add(chart)
    bars.add(String(200, 205, CHART_TITLE, textAnchor="middle", fontSize=11))
    bars.add(String(200, 8, CHART_AXIS, textAnchor="middle", fontSize=9))
    lines = Drawing(400, 200)
    plot = LinePlot()
    plot.x, plot.y, plot.width, plot.height = 50, 30, 320, 150
    plot.data = [[(1, 3.1), (2, 4.4), (3, 2.9), (4, 5.8), (5, 6.3)]]
    lines.add(plot)
    lines.add(String(200, 188, "Tonnes collected per month", textAnchor="middle", fontSize=11))
    body = "Most adults now recycle at home, and the share has grown every year of the survey. "
    story = [Paragraph("Recycling habits report", styles["Title"]), Paragraph(body * 4, styles["BodyText"]), Spacer(1, 12),
             bars, Paragraph("Figure 1: Recycling by year, in percent of adults.", styles["Italic"]), Spacer(1, 12),
             Paragraph("Collection schemes differ between regions and change the figures. " * 4, styles["BodyText"]),
             PageBreak(), Paragraph("Monthly collection", styles["Heading2"]), lines,
             Paragraph("Figure 2: Tonnes collected per month.", styles["Italic"])]
    SimpleDocTemplate(str(path), pagesize=letter).build(story)
    return path


COLUMN_TEXTS = [
    "Alpha column opens the study of tidal energy along the northern coast.",
    "Bravo paragraph continues the left column with turbine costs per megawatt.",
    "Charlie paragraph starts the right column and covers grid connection.",
    "Delta paragraph ends the right column with the storage plan for winter.",
]


def make_two_column_report(path: Path, pages: int = 4) -> Path:
    """Pages of two text columns under a full-width title, with a running header, a running footer
    and a page number on every page. The left column is written to the PDF after the right one,
    so content-stream order is not reading order."""
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    width, height = letter
    c = canvas.Canvas(str(path), pagesize=letter)
    for n in range(1, pages + 1):
        c.setFont("Helvetica", 8)
        c.drawString(72, height - 30, "Coastal Energy Review 2024 - Annual Edition")
        c.drawString(72, 24, "Prepared by the Regional Energy Office, confidential draft")
        c.drawRightString(width - 72, 24, str(n))
        c.setFont("Helvetica-Bold", 16)
        c.drawString(72, height - 80, f"Section {n}: tidal power findings across the whole width of the page")
        c.setFont("Helvetica", 10)
        columns = [(width / 2 + 12, COLUMN_TEXTS[2:]), (72, COLUMN_TEXTS[:2])]  # right column first
        for x, texts in columns:
            y = height - 120
            for text in texts:
                for line in _wrap(f"{text} (page {n})", 40):
                    c.drawString(x, y, line)
                    y -= 13
                y -= 14
        c.showPage()
    c.save()
    return path


def _wrap(text: str, width: int) -> list[str]:
    lines, cur = [], ""
    for word in text.split():
        if cur and len(cur) + 1 + len(word) > width:
            lines.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}".strip()
    return lines + [cur] if cur else lines


BORDERLESS = [["Region", "Households", "Share recycling", "Change"],
              ["North coast", "41,200", "63%", "+4"],
              ["Inland valleys", "18,950", "57%", "+2"],
              ["Capital district", "102,400", "71%", "+6"],
              ["Islands", "6,310", "48%", "-1"],
              ["All regions", "168,860", "66%", "+4"]]


def make_borderless_table_report(path: Path) -> Path:
    """A report page whose table has no rulings at all: columns by alignment only, between body text."""
    from reportlab.lib.pagesizes import letter
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    table = Table(BORDERLESS, colWidths=[130, 90, 100, 60])
    table.setStyle(TableStyle([("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"), ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                               ("BOTTOMPADDING", (0, 0), (-1, -1), 4)]))
    body = "Households were asked whether they separate paper, glass and plastics every week. "
    story = [Paragraph("Regional results", styles["Heading1"]), Paragraph(body * 3, styles["BodyText"]), Spacer(1, 10),
             Paragraph("Table 2: Households recycling by region, 2023.", styles["Italic"]), Spacer(1, 4), table,
             Spacer(1, 12), Paragraph("The capital district leads because collection there is weekly. " * 3, styles["BodyText"])]
    SimpleDocTemplate(str(path), pagesize=letter).build(story)
    return path


SPANNED = [["Region", "2022", "", "2023", ""],
           ["", "Q1", "Q2", "Q1", "Q2"],
           ["North", "12", "14", "15", "17"],
           ["South", "9", "11", "10", "13"],
           ["Coastal towns and the outer islands", "20", "21", "22", "25"],
           ["West", "5", "6", "8", "9"]]
SPANNED_ROWS = [["Region", "2022 Q1", "2022 Q2", "2023 Q1", "2023 Q2"],
                ["North", "12", "14", "15", "17"],
                ["South", "9", "11", "10", "13"],
                ["Coastal towns and the outer islands", "20", "21", "22", "25"],
                ["West", "5", "6", "8", "9"]]


def make_spanned_table_pdf(path: Path, ruled: bool) -> Path:
    """A table whose header has group cells spanning two columns each, a row label spanning the two
    header rows, and a row label that wraps onto two lines; ruled as a grid, or with one rule only."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    cell = styles["BodyText"]
    data = [[Paragraph(c, cell) if k == 0 and len(c) > 20 else c for k, c in enumerate(row)] for row in SPANNED]
    style = [("SPAN", (1, 0), (2, 0)), ("SPAN", (3, 0), (4, 0)), ("SPAN", (0, 0), (0, 1)),
             ("ALIGN", (1, 0), (-1, -1), "CENTER"), ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]
    style.append(("GRID", (0, 0), (-1, -1), 0.5, "black") if ruled else ("LINEBELOW", (1, 0), (-1, 0), 0.5, "black"))
    table = Table(data, colWidths=[110, 60, 60, 60, 60])
    table.setStyle(TableStyle(style))
    story = [Paragraph("Sales by region and quarter", styles["Heading2"]), Spacer(1, 12), table, Spacer(1, 12),
             Paragraph("Sales grew in every region in 2023, most on the coast. " * 3, cell)]
    SimpleDocTemplate(str(path), pagesize=A4).build(story)
    return path


CHART_DATA = {"categories": ["2020", "2021", "2022"], "series": {"Wind": [12.5, 14.0, 17.25], "Solar": [3.0, 5.5, 9.0]}}


def _chart_pptx(path: Path) -> Path:
    from pptx import Presentation
    from pptx.chart.data import CategoryChartData
    from pptx.enum.chart import XL_CHART_TYPE
    from pptx.util import Inches

    prs = Presentation()
    slide = prs.slides.add_slide(prs.slide_layouts[5])
    slide.shapes.title.text = "Renewable output"
    data = CategoryChartData()
    data.categories = CHART_DATA["categories"]
    for name, values in CHART_DATA["series"].items():
        data.add_series(name, values)
    frame = slide.shapes.add_chart(XL_CHART_TYPE.COLUMN_CLUSTERED, Inches(1), Inches(1.5), Inches(7), Inches(4.5), data)
    frame.chart.has_title = True
    frame.chart.chart_title.text_frame.text = "Generation in TWh"
    prs.save(str(path))
    return path


def make_chart_pptx(path: Path) -> Path:
    """A slide with a native column chart (data in the file, no picture of it)."""
    return _chart_pptx(path)


def make_chart_docx(path: Path) -> Path:
    """A DOCX with a native chart between two paragraphs. python-docx cannot draw charts, so the chart
    part python-pptx wrote is related from the document and referenced by an inline drawing, as Word does."""
    import docx
    from docx.opc.constants import RELATIONSHIP_TYPE as RT
    from docx.opc.packuri import PackURI
    from docx.opc.part import Part
    from docx.oxml import parse_xml

    deck = _chart_pptx(path.with_suffix(".pptx"))
    with zipfile.ZipFile(deck) as z:
        chart_xml = z.read(next(n for n in z.namelist() if n.startswith("ppt/charts/chart") and n.endswith(".xml")))
    deck.unlink()
    document = docx.Document()
    document.add_paragraph("Output grew every year, wind most of all.")
    part = Part(PackURI("/word/charts/chart1.xml"), "application/vnd.openxmlformats-officedocument.drawingml.chart+xml",
                chart_xml, document.part.package)
    rid = document.part.relate_to(part, RT.CHART)
    drawing = parse_xml(
        '<w:r xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:drawing>'
        '<wp:inline xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing">'
        '<wp:extent cx="5486400" cy="3200400"/><wp:docPr id="1" name="Chart 1"/>'
        '<a:graphic xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main">'
        '<a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/chart">'
        f'<c:chart xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart" '
        f'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" r:id="{rid}"/>'
        '</a:graphicData></a:graphic></wp:inline></w:drawing></w:r>')
    document.add_paragraph()._p.append(drawing)
    document.add_paragraph("Solar tripled over the period.")
    document.save(str(path))
    return path


LONG_TABLE = [["Station", "Rainfall mm", "Days"]] + [[f"Station {k:02d}", str(400 + 7 * k), str(100 + k)] for k in range(1, 71)]


def make_continued_table_pdf(path: Path) -> Path:
    """A ruled table too long for one page: reportlab splits it and repeats the header on the next."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Table, TableStyle

    styles = getSampleStyleSheet()
    table = Table(LONG_TABLE, repeatRows=1)
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black)]))
    story = [Paragraph("Rainfall by station", styles["Heading1"]), Paragraph("Table 4: Rainfall in 2023.", styles["Italic"]), table,
             Paragraph("Stations in the west record the most rain.", styles["BodyText"])]
    SimpleDocTemplate(str(path), pagesize=A4).build(story)
    return path


def make_scanned_chart_report(path: Path) -> Path:
    """The chart report's first page as a scan: a 200-dpi picture of it in a PDF, no text layer."""
    return _as_scan(make_chart_report(path.with_name(path.stem + "-src.pdf")), path)


def make_scanned_table_pdf(path: Path) -> Path:
    """The ruled spanned table's page as a scan."""
    return _as_scan(make_spanned_table_pdf(path.with_name(path.stem + "-src.pdf"), ruled=True), path)


def _as_scan(src: Path, path: Path) -> Path:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(src))
    image = doc[0].render(scale=200 / 72, grayscale=True).to_pil()
    doc.close()
    src.unlink()
    image.save(path, format="PDF", resolution=200)
    return path
