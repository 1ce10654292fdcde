"""Hostile files, generated: bombs, huge pages and frames, documents that take long to parse."""

from __future__ import annotations

import io
import random
import zipfile

from PIL import Image


def _docx_with_body(paragraphs: str) -> bytes:
    import docx

    buf = io.BytesIO()
    docx.Document().save(buf)

    def edit(name: str, data: bytes) -> bytes:
        if name != "word/document.xml":
            return data
        xml = data.decode()
        at = xml.index("<w:body>") + len("<w:body>")
        return (xml[:at] + paragraphs + xml[at:]).encode()

    return _rewrite_zip(buf.getvalue(), edit)


def _rewrite_zip(container: bytes, edit) -> bytes:
    """The same OOXML container with each part passed through ``edit(name, bytes)``."""
    src = zipfile.ZipFile(io.BytesIO(container))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            z.writestr(info.filename, edit(info.filename, src.read(info.filename)))
    return out.getvalue()


def big_docx(n_paragraphs: int, seed: int = 3) -> bytes:
    """A DOCX under every size limit (varied words compress ~5:1) whose parse takes seconds."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(5000)]
    body = "".join(f"<w:p><w:r><w:t>{' '.join(rng.choice(words) for _ in range(8))}</w:t></w:r></w:p>" for _ in range(n_paragraphs))
    return _docx_with_body(body)


def docx_bomb() -> bytes:
    """~160 KB that inflates to ~42 MB of XML: 700,000 identical paragraphs (python-docx takes minutes)."""
    return _docx_with_body("<w:p><w:r><w:t>same words every time here</w:t></w:r></w:p>" * 700_000)


def huge_page_pdf(points: int = 14_400) -> bytes:
    """A PDF of a few hundred bytes: one 14,400 x 14,400 pt page (200 inches) covered by a 1-pixel
    image, so it looks like a scan and is rendered for OCR: 1.6 Gpx at 200 dpi if nothing checks."""
    content = f"q {points} 0 0 {points} 0 0 cm /I Do Q".encode()
    objects = [
        b"<</Type/Catalog/Pages 2 0 R>>",
        b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        f"<</Type/Page/Parent 2 0 R/MediaBox[0 0 {points} {points}]/Resources<</XObject<</I 5 0 R>>>>/Contents 4 0 R>>".encode(),
        b"<</Length %d>>stream\n" % len(content) + content + b"\nendstream",
        b"<</Type/XObject/Subtype/Image/Width 1/Height 1/ColorSpace/DeviceGray/BitsPerComponent 8/Length 1>>stream\n\x80\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj" % i + body + b"endobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def tiff_with_huge_second_frame(side: int = 12_000) -> bytes:
    """A small first frame, then a 144 Mpx bilevel frame (CCITT group 4: a few KB on disk)."""
    first = Image.new("1", (64, 64), 1)
    big = Image.new("1", (side, side), 1)
    buf = io.BytesIO()
    first.save(buf, format="TIFF", save_all=True, append_images=[big], compression="group4")
    return buf.getvalue()


def pptx_with_linked_picture() -> bytes:
    """A deck whose one picture is linked to a file on the author's disk, not embedded."""
    import re

    from pptx import Presentation
    from pptx.util import Inches

    from tests.fixturegen import picture, png_bytes

    prs = Presentation()
    slide = prs.slides.add_slide(prs.slide_layouts[5])
    slide.shapes.title.text = "Linked picture deck"
    slide.shapes.add_picture(io.BytesIO(png_bytes(picture())), Inches(1), Inches(2))
    slide.shapes.add_textbox(Inches(1), Inches(5), Inches(5), Inches(1)).text_frame.text = "Quarterly lava output rose."
    buf = io.BytesIO()
    prs.save(buf)

    def edit(name: str, data: bytes) -> bytes:
        if name == "ppt/slides/slide1.xml":
            return data.replace(b'r:embed="', b'r:link="')
        if name == "ppt/slides/_rels/slide1.xml.rels":
            return re.sub(rb'(<Relationship [^>]*Target=")\.\./media/image1\.png"',
                          rb'\1file:///C:/pictures/lava.png" TargetMode="External"', data)
        return data

    return _rewrite_zip(buf.getvalue(), edit)
