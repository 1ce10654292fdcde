"""OCR engines behind one small interface, chosen by name in settings."""

from __future__ import annotations

import logging
import shutil
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import numpy as np
from PIL import Image

from ingest.stageclock import timed

log = logging.getLogger(__name__)


@dataclass
class OcrLine:
    text: str
    bbox: list[float]  # x0, y0, x1, y1 in the image's pixels
    score: float


class OcrEngine(Protocol):
    name: str

    def read(self, image: Image.Image) -> list[OcrLine]: ...


class RapidOcrEngine:
    """PP-OCR ONNX models shipped inside the ``rapidocr`` wheel: no download, no system package."""

    name = "rapidocr"
    max_side = 2400  # larger scans are downscaled: same text, about half the time
    # The recogniser reads line crops 48 px high, a batch padded to its widest line and every line to at least
    # the wheel's 320 px (rapidocr's defaults: 6 lines, 320 px). Slides are mostly short lines (labels, axis
    # ticks, titles), so most of that was padding: 2 lines a batch, padded to at least 96 px, recognise 1.45x
    # faster on report and slide pages and read the same words of their text layer; on scans they also split
    # words the padded read ran together ("325years", "Speed(mph)"). bench.ocr_recogniser measures it.
    rec_batch, rec_min_width = 2, 96

    def __init__(self, threads: int = 0, det_side: int = 0, det_model: str = "", int8_cache: str = "",
                 rec_batch: int = 0, rec_min_width: int = 0) -> None:
        """``det_model``: a detector file instead of the wheel's; ``int8_cache``: the int8 detector built
        (ingest.ocr_int8) under this model cache, looked up or built when the first page is read, so a
        collection without scans never waits for it. ``rec_batch`` / ``rec_min_width``: the recogniser's
        batching (0: this class's); 6 / 320 is the wheel's."""
        self._params: dict = {"EngineConfig.onnxruntime.intra_op_num_threads": threads} if threads else {}
        self._params.update({"Rec.rec_batch_num": rec_batch or self.rec_batch,
                             "Rec.rec_img_shape": [3, 48, rec_min_width or self.rec_min_width]})
        if det_side:  # the detector's input, not the line crops the recogniser reads
            self._params.update({"Det.limit_type": "max", "Det.limit_side_len": det_side})
        self._det_model, self._int8_cache = det_model, int8_cache
        self._rapid = None
        self._lock = threading.Lock()  # the ONNX sessions are not shared across threads safely

    @property
    def _engine(self):
        with self._lock:
            if self._rapid is None:
                from rapidocr import RapidOCR

                from ingest.ocr_int8 import detector_or_fp32

                params = dict(self._params)
                model = self._det_model or (detector_or_fp32(self._int8_cache) if self._int8_cache else "")
                if model:  # the recogniser and the angle classifier stay the wheel's
                    params["Det.model_path"] = model
                logging.getLogger("RapidOCR").setLevel(logging.ERROR)  # model-file chatter, "no text found" on photos
                self._rapid = RapidOCR(params=params)
                logging.getLogger("RapidOCR").setLevel(logging.ERROR)
            return self._rapid

    @timed("ocr")
    def read(self, image: Image.Image) -> list[OcrLine]:
        img = image.convert("RGB")  # 1-bit and palette scans detect nothing otherwise
        scale = min(1.0, self.max_side / max(img.size))
        if scale < 1.0:
            img = img.resize((int(img.width * scale), int(img.height * scale)), Image.LANCZOS)
        engine = self._engine
        with self._lock:
            out = engine(np.asarray(img))
        if not out.txts:
            return []
        lines = []
        for text, box, score in zip(out.txts, out.boxes, out.scores):
            pts = np.asarray(box, dtype=float) / scale
            lines.append(OcrLine(text.strip(), [pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()], float(score)))
        return [line for line in lines if line.text]


class TesseractEngine:
    """Debian's ``tesseract-ocr`` through pytesseract, for users who already run it."""

    name = "tesseract"

    def __init__(self, lang: str = "eng") -> None:
        if not shutil.which("tesseract"):
            raise RuntimeError("tesseract is not installed: apt-get install tesseract-ocr, or set MMRAG_OCR_ENGINE=rapidocr")
        import pytesseract

        self._tess = pytesseract
        self.lang = lang

    @timed("ocr")
    def read(self, image: Image.Image) -> list[OcrLine]:
        data = self._tess.image_to_data(image.convert("RGB"), lang=self.lang, output_type=self._tess.Output.DICT)
        lines: dict[tuple, OcrLine] = {}
        for i, word in enumerate(data["text"]):
            if not word.strip():
                continue
            key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
            x, y, w, h = data["left"][i], data["top"][i], data["width"][i], data["height"][i]
            if key in lines:
                ln = lines[key]
                ln.text += " " + word
                ln.bbox = [min(ln.bbox[0], x), min(ln.bbox[1], y), max(ln.bbox[2], x + w), max(ln.bbox[3], y + h)]
            else:
                lines[key] = OcrLine(word, [x, y, x + w, y + h], float(data["conf"][i]) / 100)
        return list(lines.values())


@lru_cache(maxsize=4)
def get_ocr_engine(name: str, threads: int = 0, det_side: int = 0, int8_cache: str = "") -> OcrEngine | None:
    if name == "none":
        return None
    if name == "rapidocr":
        return RapidOcrEngine(threads, det_side, int8_cache=int8_cache)
    if name == "tesseract":
        return TesseractEngine()
    raise ValueError(f"unknown OCR engine {name!r}: use rapidocr, tesseract or none")


def lines_to_paragraphs(lines: list[OcrLine]) -> list[tuple[str, list[float]]]:
    """Group OCR lines into paragraphs in reading order, column by column.

    A line joins the open paragraph right above it that it overlaps horizontally, so the two
    columns of a brochure are not read across. Paragraphs wider than half the text block (titles,
    footers) separate bands; within a band, columns are read left to right, each top to bottom.
    """
    if not lines:
        return []
    lines = sorted(lines, key=lambda ln: (ln.bbox[1], ln.bbox[0]))
    heights = sorted(ln.bbox[3] - ln.bbox[1] for ln in lines)
    typical = heights[len(heights) // 2] or 1.0
    paras: list[dict] = []
    for ln in lines:
        x0, y0, x1, y1 = ln.bbox
        best = None
        for p in paras:
            last = p["last"]
            overlap = min(x1, last[2]) - max(x0, last[0])
            gap = y0 - last[3]
            para_width = p["box"][2] - p["box"][0]
            # a line much wider than the paragraph spans both columns: it starts a new block
            if (x1 - x0) > 1.4 * para_width:
                continue
            if overlap > 0.3 * min(x1 - x0, last[2] - last[0]) and -0.5 * typical < gap < 0.9 * typical:
                if best is None or last[3] > best["last"][3]:
                    best = p
        if best is None:
            paras.append({"texts": [ln.text], "box": list(ln.bbox), "last": list(ln.bbox)})
        else:
            best["texts"].append(ln.text)
            b = best["box"]
            best["box"] = [min(b[0], x0), min(b[1], y0), max(b[2], x1), max(b[3], y1)]
            best["last"] = list(ln.bbox)
    left = min(p["box"][0] for p in paras)
    right = max(p["box"][2] for p in paras)
    width = max(1.0, right - left)
    mid = left + width / 2
    ordered: list[dict] = []
    band: list[dict] = []

    def flush_band() -> None:
        band.sort(key=lambda p: (0 if (p["box"][0] + p["box"][2]) / 2 < mid else 1, p["box"][1]))
        ordered.extend(band)
        band.clear()

    for p in sorted(paras, key=lambda p: p["box"][1]):
        if p["box"][2] - p["box"][0] > 0.6 * width:
            flush_band()
            ordered.append(p)
        else:
            band.append(p)
    flush_band()
    return [(" ".join(p["texts"]), p["box"]) for p in ordered]
