"""Tables without rulings, found from the PDF's own text runs: rows of short runs whose gaps line up
into columns, several rows in a row.

pdfplumber finds ruled tables well, but a borderless table (columns by alignment only, the common
kind in reports) has no lines to find; its "text" strategy calls every page a table. Here a table
must look like one: at least three rows of at least two cells, the cells short (a two-column page of
prose has two runs per row too, but long ones), the columns consistent down the rows.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

MIN_ROWS = 3
MAX_CELL_CHARS = 25  # median characters per cell of a column; a line of a prose column runs longer
MAX_LABEL_CHARS = 40  # the first column (row labels) may run longer
MIN_FILL = 0.6
MAX_PENDING = 2  # lines of one cell in a row of their own (wrapped, or centred on a taller row)  # share of the grid's cells that hold text


@dataclass
class Run:
    text: str
    bbox: list[float]  # x0, y0, x1, y1, top-left origin


@dataclass
class AlignedTable:
    bbox: list[float]
    rows: list[list[str]]


def _rows(runs: list[Run]) -> list[list[Run]]:
    """Runs grouped into visual rows (vertical overlap), top to bottom, each left to right."""
    rows: list[list[Run]] = []
    for run in sorted(runs, key=lambda r: (r.bbox[1], r.bbox[0])):
        if rows:
            last = rows[-1]
            top, bottom = min(r.bbox[1] for r in last), max(r.bbox[3] for r in last)
            h = min(bottom - top, run.bbox[3] - run.bbox[1])
            if min(bottom, run.bbox[3]) - max(top, run.bbox[1]) > 0.5 * max(1.0, h):
                last.append(run)
                continue
        rows.append([run])
    return [sorted(r, key=lambda r: r.bbox[0]) for r in rows]


def _height(row: list[Run]) -> float:
    return max(1.0, statistics.median(r.bbox[3] - r.bbox[1] for r in row))


def _is_cell_row(row: list[Run]) -> bool:
    """Two or more runs with gaps wider than a word space between them."""
    if len(row) < 2:
        return False
    h = _height(row)
    return all(b.bbox[0] - a.bbox[2] >= 0.9 * h for a, b in zip(row, row[1:]))


def aligned_tables(runs: list[Run]) -> list[AlignedTable]:
    rows = _rows(runs)
    tables: list[AlignedTable] = []
    block: list[list[Run]] = []

    def close() -> None:
        if len(block) >= MIN_ROWS:
            table = _grid(block)
            if table is not None:
                tables.append(table)
        block.clear()

    pending: list[list[Run]] = []  # short lines inside a table: a wrapped cell, a label centred across rows
    for row in rows:
        if _is_cell_row(row):
            if block:
                prev = (pending or block)[-1]
                gap = min(r.bbox[1] for r in row) - max(r.bbox[3] for r in prev)
                if gap > 2.5 * _height(prev):
                    close()
                    pending.clear()
            block.extend(pending)
            pending.clear()
            block.append(row)
        elif block and len(pending) < MAX_PENDING and sum(len(r.text) for r in row) <= MAX_LABEL_CHARS:
            pending.append(row)
        else:
            close()
            pending.clear()
    close()
    return tables


def _grid(block: list[list[Run]]) -> AlignedTable | None:
    cells = [r for row in block for r in row]
    h = statistics.median(r.bbox[3] - r.bbox[1] for r in cells)
    # columns: the x-extents of all cells, merged; a run that bridges two columns (a spanning header)
    # is left out of the merge so it cannot fuse them, and so is a first row with fewer cells than the
    # rows below (group headers centred over their columns would make columns of their own)
    typical = statistics.median(len(row) for row in block[1:])
    body = [r for row in (block[1:] if len(block[0]) < typical else block) for r in row]
    spans = sorted((r.bbox[0], r.bbox[2]) for r in body)
    widths = sorted(b - a for a, b in spans)
    wide = widths[int(0.9 * (len(widths) - 1))] * 1.5
    columns: list[list[float]] = []
    for a, b in spans:
        if b - a > wide and len(spans) > 6:
            continue
        if columns and a - columns[-1][1] < 0.9 * h:
            columns[-1][1] = max(columns[-1][1], b)
        else:
            columns.append([a, b])
    if len(columns) < 2:
        return None
    grid = [[""] * len(columns) for _ in block]
    for i, row in enumerate(block):
        for r in row:
            hit = [k for k, (a, b) in enumerate(columns) if min(b, r.bbox[2]) - max(a, r.bbox[0]) > 0]
            centre = (r.bbox[0] + r.bbox[2]) / 2
            k = hit[0] if hit else min(range(len(columns)), key=lambda k: abs((columns[k][0] + columns[k][1]) / 2 - centre))
            grid[i][k] = f"{grid[i][k]} {r.text}".strip()
    filled = sum(1 for row in grid for c in row if c)
    if filled < MIN_FILL * len(columns) * len(grid):
        return None
    if any(sum(1 for row in grid if row[k]) < 0.5 * len(grid) for k in range(len(columns))):
        return None  # a column that is mostly empty is a stray run, not a column
    first = [row[0] for row in grid[1:] if row[0]]
    if len(columns) > 2 and first and sum(c[0].islower() for c in first) >= 0.5 * len(first):
        # the first "column" is a prose column beside the table (its lines go on in lower case)
        return _grid([[r for r in row if r.bbox[2] > columns[0][1]] for row in block])
    if not looks_tabular(grid):
        return None
    box = [min(r.bbox[0] for r in cells), min(r.bbox[1] for r in cells), max(r.bbox[2] for r in cells), max(r.bbox[3] for r in cells)]
    return AlignedTable(box, grid)


def looks_tabular(grid: list[list[str]]) -> bool:
    """Short cells, and figures in a column or three columns at least. Two columns of prose (a
    two-column page, side-by-side text boxes) have runs per row too, but long ones and few digits."""
    columns = [[row[k] for row in grid if row[k]] for k in range(len(grid[0]))]
    if any(sum(len(c) == 1 and not c.isalnum() for c in col) >= 0.8 * len(col) for col in columns):
        return False  # a column of bullets: a list
    lengths = [statistics.median(len(c) for c in col) for col in columns]
    if lengths[0] > MAX_LABEL_CHARS or any(n > MAX_CELL_CHARS for n in lengths[1:]):
        return False
    numeric = any(sum(any(ch.isdigit() for ch in c) for c in col) >= 0.5 * len(col) for col in columns[1:])
    return numeric or len(columns) >= 3


def join_continued(blocks: list) -> list:
    """A table that ends its page and goes on first thing on the next becomes one table, when the next
    page's part has as many columns and repeats the header (then dropped) or spans the same width.
    Runs after running headers and footers are gone, so they do not stand between the parts."""
    out: list = []
    for b in blocks:
        prev = out[-1] if out else None
        if (b.kind == "table" and prev is not None and prev.kind == "table" and prev.rows and b.rows and b.page
                and b.page == prev.meta.get("pages", [prev.page])[-1] + 1 and len(prev.rows[0]) == len(b.rows[0])):
            same_header = b.rows[0] == prev.rows[0]
            aligned = bool(prev.bbox and b.bbox) and abs(prev.bbox[0] - b.bbox[0]) <= 8 and abs(prev.bbox[2] - b.bbox[2]) <= 8
            if same_header or aligned:
                prev.rows = prev.rows + (b.rows[1:] if same_header else b.rows)
                prev.meta["pages"] = [*prev.meta.get("pages", [prev.page]), b.page]
                prev.structure = None  # its spans were read on the first page alone
                continue
        out.append(b)
    return out
