"""The parsers' common output: blocks in reading order, before chunking."""

from __future__ import annotations

import html as html_lib
from dataclasses import dataclass, field
from typing import Literal

BlockKind = Literal["heading", "paragraph", "table", "image"]


@dataclass
class Block:
    kind: BlockKind
    text: str = ""
    page: int | None = None
    bbox: list[float] | None = None
    level: int = 1  # headings: 1 is outermost
    rows: list[list[str]] | None = None  # tables: first row is the header
    caption: str | None = None
    image: bytes | None = None  # images: encoded bytes (PNG/JPEG/...)
    image_ext: str = "png"
    alt: str | None = None
    ocr_text: str | None = None
    meta: dict = field(default_factory=dict)
    structure: object | None = None  # tables: an ingest.table_structure.Structure (spans) where a model read one


def overlap_share(a, b) -> float:
    """The share of box ``a`` (x0, y0, x1, y1) that lies inside box ``b``."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    area = max(1e-6, (a[2] - a[0]) * (a[3] - a[1]))
    return max(0.0, w) * max(0.0, h) / area


def clean_cell(value: object) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def normalise_rows(rows: list[list[object]]) -> list[list[str]]:
    """Clean cells, drop empty rows, pad ragged rows to one width."""
    cleaned = [[clean_cell(c) for c in row] for row in rows]
    cleaned = [r for r in cleaned if any(r)]
    width = max((len(r) for r in cleaned), default=0)
    return [r + [""] * (width - len(r)) for r in cleaned]


def rows_to_html(rows: list[list[str]], caption: str | None = None) -> str:
    esc = html_lib.escape
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{esc(caption)}</caption>")
    if rows:
        out.append("<thead><tr>" + "".join(f"<th>{esc(c)}</th>" for c in rows[0]) + "</tr></thead>")
        out.append("<tbody>")
        for row in rows[1:]:
            out.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
        out.append("</tbody>")
    out.append("</table>")
    return "".join(out)


def rows_to_text(rows: list[list[str]]) -> str:
    return "\n".join(" | ".join(row) for row in rows)
