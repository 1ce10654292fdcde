"""Each format through the real parser, checked against the fixture's known content."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from ingest.assets import AssetFolder
from ingest.parse import DirectoryImageSink, parse_document
from tests.fixturegen import CAPTION, HEADING, OCR_WORDS, PARA1, PARA2, TABLE, ZH_TEXT


def parse(fixtures, name, settings, tmp_path):
    path = fixtures[name]
    return parse_document(path.read_bytes(), str(path), settings, DirectoryImageSink(tmp_path / "img"), AssetFolder.beside(path))


def by_type(doc, kind):
    return [u for u in doc.units if u.type == kind]


def test_pdf_text_table_image_with_provenance(fixtures, settings, tmp_path):
    doc = parse(fixtures, "pdf", settings, tmp_path)
    assert doc.format == "pdf" and doc.pages == 2
    texts = by_type(doc, "text")
    assert any(PARA1[:40] in u.text and u.heading == [HEADING] and u.page == 1 for u in texts)
    assert any(PARA2[:40] in u.text and u.page == 2 and u.heading[-1] == "Section 2" for u in texts)
    [table] = by_type(doc, "table")
    assert table.meta["rows"] == TABLE
    assert "<th>Iron mg/kg</th>" in table.html and "<td>455</td>" in table.html
    assert table.page == 1 and len(table.bbox) == 4
    [image] = by_type(doc, "image")
    assert image.caption == CAPTION and image.page == 1
    with Image.open(image.image_path) as im:
        assert im.size[0] >= 100  # the embedded picture, decoded


@pytest.mark.parametrize("speed", [{}, {"ocr_det_side": 960, "parse_threads": 1}, {"ocr_det_int8": False}],
                         ids=["defaults", "small-detector", "fp32-detector"])
def test_scanned_pdf_is_ocrd(fixtures, settings, tmp_path, speed):
    """Also with the detector reading a downscaled page on one thread (MMRAG_OCR_DET_SIDE, MMRAG_PARSE_THREADS),
    and with the wheel's fp32 detector instead of the int8 one (MMRAG_OCR_DET_INT8)."""
    from ingest.ocr import get_ocr_engine
    from ingest.ocr_int8 import int8_cache

    settings = settings.model_copy(update=speed)
    doc = parse(fixtures, "scan_pdf", settings, tmp_path)
    text = " ".join(u.text for u in doc.units)
    assert OCR_WORDS in text
    assert "northern cape" in text
    engine = get_ocr_engine(settings.ocr_engine, settings.parse_threads, settings.ocr_det_side, int8_cache(settings))
    cfg = engine._engine.cfg.Det  # the settings reached the detector
    assert cfg.limit_side_len == (960 if "ocr_det_side" in speed else 1280)
    if settings.ocr_det_int8:
        assert "-int8-" in cfg.model_path and cfg.model_path.endswith(".onnx") and Path(cfg.model_path).exists()
    else:
        assert not cfg.model_path  # the wheel's own detector


def test_docx_headings_table_image_alt_and_caption(fixtures, settings, tmp_path):
    doc = parse(fixtures, "docx", settings, tmp_path)
    [table] = by_type(doc, "table")
    assert table.meta["rows"] == TABLE and table.heading == [HEADING, "Measurements"]
    [image] = by_type(doc, "image")
    assert image.meta["alt"] == "red circle on blue" and image.caption == CAPTION
    assert image.image_path.endswith(".png")


def test_pptx_slides_table_and_picture(fixtures, settings, tmp_path):
    doc = parse(fixtures, "pptx", settings, tmp_path)
    [table] = by_type(doc, "table")
    assert table.meta["rows"] == TABLE and table.page == 2 and table.heading == ["Measurements"]
    [image] = by_type(doc, "image")
    assert image.page == 2 and image.meta["alt"] == "red circle on blue" and image.bbox[2] > image.bbox[0]
    assert any(PARA1[:30] in u.text and u.page == 1 for u in by_type(doc, "text"))


def test_html_skips_scripts_and_nav_keeps_table_caption_and_inline_image(fixtures, settings, tmp_path):
    doc = parse(fixtures, "html", settings, tmp_path)
    everything = " ".join(u.text for u in doc.units)
    assert "SCRIPTTEXT" not in everything and "Home | About" not in everything
    [table] = by_type(doc, "table")
    assert table.caption == "Soil samples" and table.meta["rows"] == TABLE
    [image] = by_type(doc, "image")
    assert image.caption == CAPTION and image.meta["alt"] == "red circle on blue"
    assert Image.open(image.image_path).size == (160, 120)


def test_markdown_table(fixtures, settings, tmp_path):
    doc = parse(fixtures, "md", settings, tmp_path)
    [table] = by_type(doc, "table")
    assert table.meta["rows"] == TABLE


def test_chinese_text_file(fixtures, settings, tmp_path):
    doc = parse(fixtures, "zh_txt", settings, tmp_path)
    assert doc.units[0].text == ZH_TEXT


def test_image_file_with_text_is_ocrd_and_kept_as_image(fixtures, settings, tmp_path):
    doc = parse(fixtures, "png", settings, tmp_path)
    [image] = by_type(doc, "image")
    assert OCR_WORDS in image.meta["ocr_text"]
    assert any(OCR_WORDS in u.text for u in by_type(doc, "text"))


def test_multipage_tiff_gives_one_image_per_page(fixtures, settings, tmp_path):
    doc = parse(fixtures, "tiff", settings, tmp_path)
    images = by_type(doc, "image")
    assert [u.page for u in images] == [1, 2]
    assert "FIRST PAGE" in images[0].text and "SECOND PAGE" in images[1].text


def test_photo_without_text_is_one_image_unit(fixtures, settings, tmp_path):
    doc = parse(fixtures, "jpg", settings, tmp_path)
    assert [u.type for u in doc.units] == ["image"]


@pytest.mark.parametrize("name", ["pdf", "docx", "pptx"])
def test_cli_parse_json(fixtures, name, tmp_path):
    out = subprocess.run([sys.executable, "-m", "mmrag", "parse", str(fixtures[name]), "--json", "--image-dir", str(tmp_path)],
                         capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    units = data["units"]
    assert {"text", "table", "image"} <= {u["type"] for u in units} | ({"text"} if name == "pptx" else set())
    for u in units:
        assert {"type", "text", "html", "page", "bbox", "image_path"} <= u.keys()
    assert all(u["html"] for u in units if u["type"] == "table")
    assert all(u["image_path"].startswith(str(tmp_path)) for u in units if u["type"] == "image")
