"""Drafts: the texts of a large document's first pages, sent while its later pages still parse.

Without them a 200-page PDF parses for seconds while the process that embeds waits, then embeds
while the parse worker waits. A parser calls ``page_done`` after each page; while a parse is
``drafting``, every ``MMRAG_PARSE_DRAFT_S`` of parsing the pages finished since the last draft are chunked
as the whole document will be (running headers and footers dropped by the pages seen so far, under
the headings open at that point) and their texts go to the embedding side (``Draft``). The document
is still parsed, chunked and committed whole: the drafted vectors are only a cache keyed by text
(and image file), so a unit whose text came out different in the end (a running line seen only
later, a table continued on the next page) is simply embedded then. Nothing is stored from a draft.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ingest.blocks import Block
from ingest.chunking import Chunker, ImageSink, maxsim_texts

_local = threading.local()


@dataclass
class Draft:
    """What the embedding side can start on: unit texts, their sentences, stored image files."""

    passages: list[str] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.passages or self.sentences or self.images)


class Drafter:
    """Turns the blocks of finished pages into drafts, at most one per ``every_s`` of parsing."""

    def __init__(self, chunker: Chunker, sink: ImageSink, send: Callable[[Draft], None], every_s: float,
                 sentences: bool = True) -> None:
        self.chunker, self.sink, self.send = chunker, sink, send
        self.every_s, self.sentences = every_s, sentences
        self.done_pages = 0  # pages already drafted
        self.last = time.perf_counter()

    def page_done(self, blocks: list[Block], page: int, heights: dict[int, float]) -> None:
        if time.perf_counter() - self.last < self.every_s:
            return
        from ingest.reading import drop_running_lines

        kept = drop_running_lines(blocks, heights, page)
        draft = self.draft(kept, self.done_pages, page)
        self.done_pages, self.last = page, time.perf_counter()
        if draft:
            self.send(draft)

    def draft(self, blocks: list[Block], after: int, upto: int) -> Draft:
        """The texts of pages ``after`` < page <= ``upto``, chunked under the headings open before them."""
        open_headings: list[Block] = []
        fresh: list[Block] = []
        for b in blocks:
            page = b.page or 0
            if page <= after:
                if b.kind == "heading":
                    while open_headings and open_headings[-1].level >= b.level:
                        open_headings.pop()
                    open_headings.append(b)
            elif page <= upto:
                fresh.append(b)
        out = Draft()
        for unit in self.chunker.units(open_headings + fresh, self.sink):
            if unit.type == "image":
                if unit.image_path:
                    out.images.append(unit.image_path)
            text = unit.search_text()
            if text.strip():
                out.passages.append(text)
            if self.sentences and unit.type == "text":
                out.sentences.extend(maxsim_texts(unit.text))
        return out


@contextmanager
def drafting(drafter: Drafter | None) -> Iterator[None]:
    """Parsers on this thread report finished pages to ``drafter`` (None: to nobody)."""
    previous = getattr(_local, "drafter", None)
    _local.drafter = drafter
    try:
        yield
    finally:
        _local.drafter = previous


def page_done(blocks: list[Block], page: int, heights: dict[int, float]) -> None:
    """Called by a parser after each page (``blocks``: all so far, ``heights``: page -> height)."""
    drafter = getattr(_local, "drafter", None)
    if drafter is not None:
        drafter.page_done(blocks, page, heights)
