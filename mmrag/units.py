"""What a document becomes: units of text, tables and images, each with provenance."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

UnitType = Literal["text", "table", "image"]


@dataclass
class Unit:
    type: UnitType
    text: str
    page: int | None = None
    bbox: list[float] | None = None  # x0, y0, x1, y1 in points, origin top-left
    heading: list[str] = field(default_factory=list)  # heading path, outermost first
    position: int = 0  # order within the document
    html: str | None = None  # tables
    image_path: str | None = None  # images: file on disk
    caption: str | None = None
    meta: dict = field(default_factory=dict)  # alt text, OCR text, nearby text, rows, ...

    def to_dict(self) -> dict:
        return asdict(self)

    def search_text(self) -> str:
        return search_text(self.heading, self.caption, self.text)


def search_text(heading: list[str], caption: str | None, text: str) -> str:
    """What the text embedder and BM25 see: the heading path as context, the caption, the content."""
    parts = [" > ".join(heading)] if heading else []
    if caption and caption not in text:
        parts.append(caption)
    parts.append(text)
    return "\n".join(p for p in parts if p)
