import pytest

from ingest.detect import decode_text, detect_format
from mmrag.errors import CorruptDocument, EncryptedDocument, UnsupportedFormat


@pytest.mark.parametrize("name,fmt", [
    ("pdf", "pdf"), ("scan_pdf", "pdf"), ("docx", "docx"), ("pptx", "pptx"), ("html", "html"), ("md", "markdown"),
    ("txt", "text"), ("zh_txt", "text"), ("png", "image"), ("jpg", "image"), ("tiff", "image"),
])
def test_formats_are_detected_from_content(fixtures, name, fmt):
    path = fixtures[name]
    assert detect_format(path.read_bytes(), path.name) == fmt


def test_extension_does_not_decide(fixtures):
    assert detect_format(fixtures["png_as_pdf"].read_bytes(), "really-a-png.pdf") == "image"
    assert detect_format(fixtures["html_as_txt"].read_bytes(), "really-html.txt") == "html"
    assert detect_format(fixtures["md"].read_bytes(), "no-extension") == "markdown"


@pytest.mark.parametrize("name,error,words", [
    ("empty", CorruptDocument, "empty"),
    ("garbage_docx", UnsupportedFormat, "unrecognised"),
    ("truncated_docx", CorruptDocument, "truncated"),
    ("encrypted_docx", EncryptedDocument, "password"),
    ("xlsx", UnsupportedFormat, "spreadsheet"),
])
def test_unusable_bytes_raise_a_reason(fixtures, name, error, words):
    with pytest.raises(error, match=words):
        detect_format(fixtures[name].read_bytes(), fixtures[name].name)


def test_gb18030_text_is_decoded(fixtures):
    assert "长江" in decode_text(fixtures["zh_txt"].read_bytes())
