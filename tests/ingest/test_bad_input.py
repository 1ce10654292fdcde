"""Bad input fails its own document with a reason a user can act on."""

import pytest

from ingest.parse import DirectoryImageSink, parse_document
from mmrag.errors import CorruptDocument, DocumentError, EncryptedDocument, LimitExceeded, UnsupportedFormat


@pytest.mark.parametrize("name,error,words", [
    ("empty", CorruptDocument, "empty file"),
    ("truncated_pdf", CorruptDocument, "truncated"),
    ("encrypted_pdf", EncryptedDocument, "encrypted"),
    ("encrypted_docx", EncryptedDocument, "password"),
    ("garbage_docx", UnsupportedFormat, "unrecognised binary"),
    ("truncated_docx", CorruptDocument, "truncated or corrupt"),
    ("zip_bomb", LimitExceeded, "decompression bomb"),
    ("truncated_png", CorruptDocument, "truncated"),
    ("pixel_bomb", LimitExceeded, "decompression bomb"),
    ("xlsx", UnsupportedFormat, "spreadsheets"),
    ("empty_docx", CorruptDocument, "no extractable content"),
])
def test_bad_file_raises_clear_error(fixtures, settings, tmp_path, name, error, words):
    path = fixtures[name]
    with pytest.raises(error, match=words):
        parse_document(path.read_bytes(), str(path), settings, DirectoryImageSink(tmp_path))


def test_page_limit(fixtures, settings, tmp_path):
    settings.max_pages = 1
    with pytest.raises(LimitExceeded, match="2 pages, over the 1 page limit"):
        parse_document(fixtures["pdf"].read_bytes(), "x.pdf", settings, DirectoryImageSink(tmp_path))


def test_size_limit(fixtures, settings, tmp_path):
    settings.max_file_mb = 0.001
    with pytest.raises(LimitExceeded, match="MB limit"):
        parse_document(fixtures["pdf"].read_bytes(), "x.pdf", settings, DirectoryImageSink(tmp_path))


def test_parser_crash_becomes_document_error(settings, tmp_path):
    # A PDF header over junk: pdfium refuses it; the error names the format and the cause.
    data = b"%PDF-1.7\n" + b"\x00garbage" * 100 + b"\n%%EOF\n"
    with pytest.raises(DocumentError, match="PDF cannot be opened"):
        parse_document(data, "x.pdf", settings, DirectoryImageSink(tmp_path))
