"""File type by content, not by extension."""

from __future__ import annotations

import io
import re
import zipfile

from mmrag.errors import CorruptDocument, EncryptedDocument, UnsupportedFormat

FORMATS = ("pdf", "docx", "pptx", "html", "markdown", "text", "image")

_IMAGE_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
]
_BMP_DIB_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}
_HTML_RE = re.compile(rb"<!doctype\s+html|<html[\s>]|<body[\s>]|<head[\s>]", re.I)
_TAG_RE = re.compile(rb"<(p|div|img|table|h[1-6]|ul|ol|a|span|section|article)[\s>/]", re.I)
_MD_SIGNS = re.compile(r"^(#{1,6} \S|```|\|.*\|\s*$|[-*+] \S|\d+\. \S|> \S)|\[[^\]]+\]\([^)]+\)|\*\*\S", re.M)


def detect_format(data: bytes, name: str = "") -> str:
    """Return one of FORMATS, or raise a DocumentError saying what the bytes are."""
    if not data:
        raise CorruptDocument("empty file (0 bytes)")
    head = data[:2048]
    at = head.find(b"%PDF-", 0, 1024)
    # the header may follow a little junk (the spec allows 1 KiB of it), but not markup: "%PDF-" in an
    # HTML comment or a Markdown code span is text that mentions PDF
    if at == 0 or (at > 0 and not re.search(rb"[<>#`]|[A-Za-z]{3}", head[:at])):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return _office_kind(data)
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        # OLE2: either a legacy .doc/.ppt/.xls or an OOXML file wrapped by password encryption.
        if "EncryptedPackage".encode("utf-16-le") in data[:1 << 20] or b"EncryptedPackage" in data:
            raise EncryptedDocument("password-protected (encrypted) Office document: remove the password and retry")
        raise UnsupportedFormat("legacy binary Office file (.doc/.ppt/.xls): save it as .docx/.pptx or PDF")
    for magic, _kind in _IMAGE_MAGIC:
        if head.startswith(magic):
            return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image"
    if _is_bmp(head):
        return "image"
    return detect_text_format(data, name)


def _is_bmp(head: bytes) -> bool:
    """"BM" alone is two letters ("BMW 7系列…"): a BMP also has a known DIB header size and sane fields."""
    if len(head) < 30 or not head.startswith(b"BM"):
        return False
    dib = int.from_bytes(head[14:18], "little")
    planes = int.from_bytes(head[26:28], "little")
    return dib in _BMP_DIB_SIZES and planes == 1


def detect_text_format(data: bytes, name: str = "") -> str:
    """html, markdown or text for bytes that decode as text; UnsupportedFormat otherwise."""
    head = data[:2048]
    text = _as_text(head)
    if text is None:
        raise UnsupportedFormat(f"unrecognised binary content (starts with {head[:8]!r})")
    if _HTML_RE.search(head) or (name.lower().endswith((".html", ".htm", ".xhtml")) and _TAG_RE.search(head)):
        return "html"  # a fragment without <html> or <body> is HTML when its name says so and it holds tags
    if name.lower().endswith((".md", ".markdown")) or len(_MD_SIGNS.findall(text)) >= 2:
        return "markdown"
    return "text"


def _office_kind(data: bytes) -> str:
    try:
        names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    except zipfile.BadZipFile as exc:
        raise CorruptDocument(f"ZIP container is truncated or corrupt ({exc})") from exc
    if "word/document.xml" in names:
        return "docx"
    if "ppt/presentation.xml" in names:
        return "pptx"
    if "xl/workbook.xml" in names:
        raise UnsupportedFormat("spreadsheets (.xlsx) are not supported yet: export the sheet as PDF or HTML")
    raise UnsupportedFormat("ZIP archive that is not a DOCX or PPTX document")


def _as_text(head: bytes) -> str | None:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head.decode("utf-16", errors="ignore")
    if b"\x00" in head:
        return None
    for enc in ("utf-8", "gb18030"):
        try:
            return head.decode(enc)
        except UnicodeDecodeError as exc:
            if exc.start > len(head) - 4:  # a multibyte char cut by the 2 KiB window
                return head[: exc.start].decode(enc)
    controls = sum(b < 9 or 13 < b < 32 for b in head)
    return None if controls > len(head) * 0.05 else head.decode("latin-1")


def decode_text(data: bytes) -> str:
    """Decode a text file: BOMs, UTF-8, then GB18030 (common for Chinese files), then Latin-1."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    for enc in ("utf-8", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")
