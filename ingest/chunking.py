"""Blocks to units: heading-aware text chunks on sentence boundaries, tables, images."""

from __future__ import annotations

import re
from collections.abc import Callable

from ingest.blocks import Block, rows_to_html, rows_to_text
from mmrag.units import Unit

ImageSink = Callable[[bytes, str], str]  # (bytes, extension) -> path where the image now lives

_TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|\w+|[^\w\s]", re.U)
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+(?=[\"'(\[]?[A-Z0-9\u00c0-\u024f])|(?<=[。！？；])")
_FIGURE_CAPTION = re.compile(r"^(fig(ure)?|image|photo|chart|diagram|plate|illustration|图|圖)\.?\s*[\dIVX]*\s*[:.\-–—]?", re.I)
_TABLE_CAPTION = re.compile(r"^(table|tab\.|表)\s*[\dIVX]+", re.I)
NEARBY_CHARS = 300
CHARS_PER_TOKEN = 8  # English runs 4-6 characters a token; a unit past 8 a token is split by characters


def count_tokens(text: str) -> int:
    """Words, CJK characters and punctuation: close to a sub-word tokenizer's count, no model needed."""
    return len(_TOKEN.findall(text))


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def sentence_bounds(text: str) -> list[int]:
    """Where split_sentences cuts (and every line break), as offsets: 0, ..., len(text)."""
    cuts = {m.end() for m in _SENTENCE_END.finditer(text)} | {m.end() for m in re.finditer(r"\n+", text)}
    return [0, *sorted(c for c in cuts if 0 < c < len(text)), len(text)]


_CJK_END = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]$")


def join_sentences(sentences: list[str]) -> str:
    """Join with spaces, except after CJK text, which has none between sentences."""
    out = ""
    for s in sentences:
        out += s if not out or _CJK_END.search(out) else " " + s
    return out


def maxsim_texts(text: str, windows: bool = False) -> list[str]:
    """The texts of a unit whose vectors feed the max-sim feature: each sentence. Empty for a unit of
    one sentence (its own vector serves).

    `windows` adds each adjacent pair of sentences, which carries what a lone sentence loses to its
    neighbour ("It is the second-longest river..."). Measured by bench.fusion_features and not used:
    no gain over the shipped features, for 81% more embedding work at ingestion.
    """
    sentences = split_sentences(text)
    if len(sentences) < 2:
        return []
    pairs = [join_sentences(sentences[i:i + 2]) for i in range(len(sentences) - 1)] if windows else []
    return sentences + pairs


def _bbox_union(a: list[float] | None, b: list[float] | None) -> list[float] | None:
    if a is None:
        return list(b) if b else None
    if b is None:
        return a
    return [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]


class Chunker:
    def __init__(self, chunk_tokens: int = 200, table_max_tokens: int = 400, overlap_sentences: int = 0) -> None:
        self.chunk_tokens = chunk_tokens
        self.table_max_tokens = table_max_tokens
        self.overlap = overlap_sentences
        # A unit is never longer than this either: count_tokens sees a 50 MB run of letters as one word.
        self.max_chars = chunk_tokens * CHARS_PER_TOKEN

    def units(self, blocks: list[Block], sink: ImageSink) -> list[Unit]:
        out: list[Unit] = []
        headings: list[tuple[int, str]] = []
        buf: list[str] = []
        buf_tokens = 0
        buf_page: int | None = None
        buf_box: list[float] | None = None

        def path() -> list[str]:
            return [t for _, t in headings]

        def flush(keep_overlap: bool = False) -> None:
            nonlocal buf, buf_tokens, buf_box
            if buf:
                out.append(Unit("text", join_sentences(buf), page=buf_page, bbox=buf_box, heading=path()))
            tail = buf[-self.overlap:] if keep_overlap and self.overlap and buf else []
            buf, buf_box = list(tail), None
            buf_tokens = sum(count_tokens(s) for s in buf)

        def add_sentence(sentence: str, page: int | None, box: list[float] | None) -> None:
            nonlocal buf_tokens, buf_page, buf_box
            n = count_tokens(sentence)
            if buf and (page != buf_page or buf_tokens + n > self.chunk_tokens):
                flush(keep_overlap=page == buf_page)
            if n > self.chunk_tokens or len(sentence) > self.max_chars:  # an enormous "sentence" (lists, OCR, one 50 MB word)
                for piece in _split_long(sentence, self.chunk_tokens, self.max_chars):
                    buf_page = page
                    buf.append(piece)
                    buf_box = _bbox_union(buf_box, box)
                    flush()
                return
            buf_page = page
            buf.append(sentence)
            buf_tokens += n
            buf_box = _bbox_union(buf_box, box)

        for i, block in enumerate(blocks):
            if block.kind == "heading":
                flush()
                while headings and headings[-1][0] >= block.level:
                    headings.pop()
                headings.append((block.level, block.text))
            elif block.kind == "paragraph":
                for sentence in split_sentences(block.text):
                    add_sentence(sentence, block.page, block.bbox)
            elif block.kind == "table":
                flush()
                caption = block.caption or _adjacent_caption(blocks, i, _TABLE_CAPTION)
                out.extend(self._table_units(block, caption, path()))
            elif block.kind == "image":
                caption = block.caption or _adjacent_caption(blocks, i, _FIGURE_CAPTION)
                out.append(self._image_unit(blocks, i, caption, path(), sink))
        flush()
        for position, unit in enumerate(out):
            unit.position = position
        return out

    def _table_units(self, block: Block, caption: str | None, heading: list[str]) -> list[Unit]:
        rows = block.rows or []
        header, body = rows[0], rows[1:]
        parts: list[list[list[str]]] = []
        cur: list[list[str]] = []
        budget = self.table_max_tokens - count_tokens(" ".join(header))
        used = 0
        for row in body:
            n = count_tokens(" ".join(row))
            if cur and used + n > budget:
                parts.append(cur)
                cur, used = [], 0
            cur.append(row)
            used += n
        if cur or not parts:
            parts.append(cur)
        units = []
        for k, part in enumerate(parts):
            part_rows = [header, *part]
            meta = {**block.meta, "rows": part_rows, "n_rows": len(body)}
            if len(parts) > 1:
                meta["part"] = f"{k + 1}/{len(parts)}"
            # the spans survive where the table stays one unit; a part of a long table is a flat grid
            html = block.structure.html(caption) if block.structure is not None and len(parts) == 1 else rows_to_html(part_rows, caption)
            units.append(Unit("table", rows_to_text(part_rows), page=block.page, bbox=block.bbox, heading=heading,
                              html=html, caption=caption, meta=meta))
        return units

    def _image_unit(self, blocks: list[Block], i: int, caption: str | None, heading: list[str], sink: ImageSink) -> Unit:
        block = blocks[i]
        nearby = _nearby_text(blocks, i)
        parts = [p for p in (caption, block.alt, block.ocr_text) if p]
        meta = {"alt": block.alt, "ocr_text": block.ocr_text, "nearby_text": nearby}
        meta.update(block.meta)
        path = sink(block.image or b"", block.image_ext)
        return Unit("image", "\n".join(dict.fromkeys(parts)), page=block.page, bbox=block.bbox, heading=heading,
                    image_path=path, caption=caption, meta={k: v for k, v in meta.items() if v})


def _adjacent_caption(blocks: list[Block], i: int, pattern: re.Pattern) -> str | None:
    """A caption is the paragraph right after (or before) a figure or table that looks like one."""
    for j in (i + 1, i - 1):
        if 0 <= j < len(blocks) and blocks[j].kind == "paragraph":
            b = blocks[j]
            if (b.meta.get("caption") or pattern.match(b.text)) and count_tokens(b.text) <= 80:
                return b.text
    return None


def _nearby_text(blocks: list[Block], i: int) -> str:
    before = next((b.text for b in reversed(blocks[max(0, i - 3):i]) if b.kind in ("paragraph", "heading")), "")
    after = next((b.text for b in blocks[i + 1:i + 4] if b.kind in ("paragraph", "heading")), "")
    return " … ".join(t[-NEARBY_CHARS:] if k == 0 else t[:NEARBY_CHARS] for k, t in enumerate((before, after)) if t)


def _split_long(text: str, limit: int, max_chars: int) -> list[str]:
    """Pieces of at most ``limit`` tokens and ``max_chars`` characters: by words, a word longer than
    ``max_chars`` by characters; text without spaces (Chinese) by runs of characters."""
    if " " not in text:
        step = max(1, min(limit, max_chars))
        return [text[k:k + step] for k in range(0, len(text), step)]
    pieces, cur, used, chars = [], [], 0, 0
    for word in text.split():
        for tok in (word[k:k + max_chars] for k in range(0, len(word), max_chars)):
            n = count_tokens(tok) or 1
            if cur and (used + n > limit or chars + len(tok) + 1 > max_chars):
                pieces.append(" ".join(cur))
                cur, used, chars = [], 0, 0
            cur.append(tok)
            used += n
            chars += len(tok) + 1
    if cur:
        pieces.append(" ".join(cur))
    return pieces
