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

    def embedding_text(self) -> str:
        """The text a text embedder and BM25 see: heading context first, then content."""
        parts = []
        if self.heading:
            parts.append(" > ".join(self.heading))
        if self.caption and self.caption not in self.text:
            parts.append(self.caption)
        parts.append(self.text)
        return "\n".join(p for p in parts if p)
