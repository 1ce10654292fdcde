"""HTML, Markdown (rendered to HTML first) and plain text."""

from __future__ import annotations

import base64
import binascii
import logging
import re

from ingest.assets import AssetFolder
from ingest.blocks import Block, normalise_rows
from ingest.detect import decode_text

log = logging.getLogger(__name__)

_SKIP = {"script", "style", "noscript", "template", "nav", "footer", "header", "aside", "form", "button", "svg", "head"}
_BLOCK_TEXT = {"p", "li", "pre", "blockquote", "dt", "dd", "address", "summary", "td", "th"}
_CONTAINERS = {"div", "section", "article", "main", "body", "html", "ul", "ol", "dl", "details", "span", "center"}
_DATA_URI = re.compile(r"^data:image/([a-z0-9.+-]+);base64,(.*)$", re.I | re.S)


def parse_html(data: bytes | str, assets: AssetFolder | None = None) -> list[Block]:
    import lxml.html

    text = data if isinstance(data, str) else decode_text(data)
    if not text.strip():
        return []
    root = lxml.html.document_fromstring(text)
    blocks: list[Block] = []
    _walk(root, blocks, assets)
    return blocks


def _text(el) -> str:
    return " ".join(el.text_content().split())


def _walk(el, blocks: list[Block], assets: AssetFolder | None) -> None:
    for child in el:
        tag = child.tag if isinstance(child.tag, str) else ""
        tag = tag.lower()
        if not tag or tag in _SKIP:
            continue
        if re.fullmatch(r"h[1-6]", tag):
            text = _text(child)
            if text:
                blocks.append(Block("heading", text, level=int(tag[1])))
        elif tag == "table":
            _table(child, blocks)
        elif tag == "img":
            _image(child, blocks, assets)
        elif tag == "figure":
            for img in child.iter("img"):
                _image(img, blocks, assets)
            cap = child.find(".//figcaption")
            if cap is not None and blocks and blocks[-1].kind == "image":
                blocks[-1].caption = _text(cap)
        elif tag in _BLOCK_TEXT:
            for img in child.iter("img"):
                _image(img, blocks, assets)
            text = child.text_content().strip() if tag == "pre" else _text(child)
            if text:
                blocks.append(Block("paragraph", text))
        elif tag in _CONTAINERS or len(child):
            # text directly inside a container (no <p>) still counts
            own = " ".join((child.text or "").split())
            if own and tag not in ("ul", "ol", "dl"):
                blocks.append(Block("paragraph", own))
            _walk(child, blocks, assets)
            tail = " ".join((child.tail or "").split())
            if tail:
                blocks.append(Block("paragraph", tail))
        else:
            text = _text(child)
            if text:
                blocks.append(Block("paragraph", text))


def _table(el, blocks: list[Block]) -> None:
    rows = []
    for tr in el.iter("tr"):
        rows.append([_text(cell) for cell in tr if isinstance(cell.tag, str) and cell.tag.lower() in ("td", "th")])
    rows = normalise_rows(rows)
    cap = el.find("caption")
    caption = _text(cap) if cap is not None else None
    if len(rows) == 1 and len(rows[0]) == 1:  # layout tables holding one cell of prose
        blocks.append(Block("paragraph", rows[0][0]))
    elif rows:
        blocks.append(Block("table", rows=rows, caption=caption))


def _image(el, blocks: list[Block], assets: AssetFolder | None) -> None:
    src = (el.get("src") or "").strip()
    alt = (el.get("alt") or el.get("title") or "").strip() or None
    data, ext = None, "png"
    m = _DATA_URI.match(src)
    if m:
        try:
            data, ext = base64.b64decode(m.group(2), validate=False), m.group(1).lower().replace("jpeg", "jpg")
        except (binascii.Error, ValueError):
            data = None
    elif src and assets is not None and ":" not in src.split("/")[0] and not src.startswith("//"):
        # A local file beside the page (never fetched over the network: no SSRF); AssetFolder says which.
        found = assets.read_image(src)
        if found:
            data, ext = found
    if data:
        blocks.append(Block("image", image=data, image_ext=ext, alt=alt))
    elif alt:
        blocks.append(Block("paragraph", f"[image: {alt}]", meta={"image_alt_only": True}))


def parse_markdown(data: bytes, assets: AssetFolder | None = None) -> list[Block]:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark").enable("table")
    return parse_html(md.render(decode_text(data)), assets)


def parse_text(data: bytes) -> list[Block]:
    text = decode_text(data).replace("\r\n", "\n").replace("\r", "\n")
    blocks = []
    for para in re.split(r"\n\s*\n", text):
        para = para.strip()
        if para:
            blocks.append(Block("paragraph", " ".join(para.split()) if not _looks_preformatted(para) else para))
    return blocks


def _looks_preformatted(para: str) -> bool:
    lines = para.split("\n")
    return len(lines) > 2 and sum(1 for ln in lines if ln.startswith(("    ", "\t"))) > len(lines) / 2
