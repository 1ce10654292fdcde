"""Hostile and odd inputs at the parser level: each fails its own document with a reason, or is read."""

from __future__ import annotations

import pytest

from ingest.assets import AssetFolder
from ingest.detect import detect_format
from ingest.parse import DirectoryImageSink, display_name, parse_document
from mmrag.errors import LimitExceeded
from tests.fixturegen import picture, png_bytes
from tests.hostile import docx_bomb, pptx_with_linked_picture, tiff_with_huge_second_frame


def parse(data: bytes, name: str, settings, tmp_path, assets=None):
    return parse_document(data, name, settings, DirectoryImageSink(tmp_path / "img"), assets)


def test_text_that_starts_like_a_bitmap_or_mentions_pdf_is_text(settings, tmp_path):
    bmw = "BMW 7系列是宝马的旗舰轿车。第一代于1977年推出。".encode()
    assert detect_format(bmw) == "text"
    assert "旗舰" in parse(bmw, "bmw.txt", settings, tmp_path).units[0].text
    page = b"<html><body><!-- saved from %PDF-1.7 export --><p>Magma chambers feed volcanoes.</p></body></html>"
    assert detect_format(page) == "html"
    assert "Magma" in parse(page, "page.html", settings, tmp_path).units[0].text
    assert detect_format(png_bytes(picture())) == "image"


def test_a_linked_picture_is_skipped_and_the_deck_is_read(settings, tmp_path):
    doc = parse(pptx_with_linked_picture(), "deck.pptx", settings, tmp_path)
    assert [u.type for u in doc.units] == ["text"] and "lava output" in doc.units[0].text


def test_decompression_and_frame_bombs_are_refused_before_decoding(settings, tmp_path):
    with pytest.raises(LimitExceeded, match="decompression bomb|MMRAG_MAX_XML_MB"):
        parse(docx_bomb(), "bomb.docx", settings, tmp_path)
    with pytest.raises(LimitExceeded, match="frame 2 is 12000x12000"):
        parse(tiff_with_huge_second_frame(), "scan.tif", settings, tmp_path)


def test_no_unit_is_longer_than_the_chunk_limit(settings, tmp_path):
    doc = parse(b"x" * 200_000 + b"\n\n" + b"word " * 5000, "long.txt", settings, tmp_path)
    assert max(len(u.text) for u in doc.units) <= settings.chunk_tokens * 8


def test_references_resolve_in_the_documents_folder_only(settings, tmp_path):
    site, outside = tmp_path / "site", tmp_path / "outside"
    site.mkdir()
    outside.mkdir()
    pic = png_bytes(picture())
    (site / "ok.png").write_bytes(pic)
    (outside / "away.png").write_bytes(pic)
    (site / "link.png").symlink_to(outside / "away.png")  # inside by name, outside once resolved
    (site / "notes.png").write_text("API_KEY=hunter2")  # named like a picture, not one
    html = (b'<p>Pictures.</p><img src="ok.png"><img src="link.png"><img src="../outside/away.png">'
            b'<img src="notes.png"><img src="/etc/passwd"><img src=".env">')
    beside = AssetFolder.beside(site / "page.html")
    assert len([u for u in parse(html, "page.html", settings, tmp_path, beside).units if u.type == "image"]) == 1
    # an upload has no folder: nothing is read at all, whatever the working directory holds
    assert not [u for u in parse(html, "page.html", settings, tmp_path).units if u.type == "image"]
    # the data directory is never a source, even inside the document's folder
    denied = AssetFolder.beside(site / "page.html", denied=[site])
    assert not [u for u in parse(html, "page.html", settings, tmp_path, denied).units if u.type == "image"]


def test_display_names_are_safe_to_show():
    assert display_name("../../etc/passwd") == "passwd"
    assert display_name("report\u202egpj.exe") == "reportgpj.exe"
    assert display_name("a\x00b.txt") == "ab.txt"
    long = display_name("x" * 400 + ".pdf")
    assert len(long) == 200 and long.endswith(".pdf")
