"""OCR cost on scanned pages: seconds per page by step (text detection, angle classification,
recognition) for the detector's input size and the threads it runs on, and how many of the words
read at full size each setting still reads.

Pages are rendered as ingestion renders scans (grayscale at ``MMRAG_OCR_DPI``, longest side at most
2400 px) and read by rapidocr with the settings ``MMRAG_PARSE_THREADS`` and ``MMRAG_OCR_DET_SIDE``
set; the first setting is the reference for word recall.

    python -m bench.ocr_speed --pages ../shared/data/mmlongbench-dev/passages/dev015.pdf:3,20 \\
        --pages .../dev025.pdf:5,30 --pages .../dev030.pdf:4,40 --pages .../dev003.pdf:10
    python -m bench.ocr_speed --small-print 7,8,9,10     # generated small-print pages, recall of the printed words
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench.report import machine, write_section

# (label, threads (0: one per core), detector side (0: as rendered), int8 detector); the first is the reference
SETTINGS = [("as rendered, threads per core", 0, 0, False), ("as rendered, 1 thread", 1, 0, False),
            ("detector side 1920, 1 thread", 1, 1920, False), ("detector side 1600, 1 thread", 1, 1600, False),
            ("detector side 1280, 1 thread", 1, 1280, False), ("detector side 1280, threads per core", 0, 1280, False),
            ("detector side 1280, int8 detector, 1 thread", 1, 1280, True),
            ("detector side 1280, int8 detector, threads per core (default)", 0, 1280, True)]


def render(specs: list[str], dpi: int) -> list:
    import pypdfium2 as pdfium

    from ingest.ocr import RapidOcrEngine

    images = []
    for spec in specs:
        path, pages = spec.rsplit(":", 1)
        doc = pdfium.PdfDocument(path)
        for i in (int(p) for p in pages.split(",")):
            pil = doc[i].render(scale=dpi / 72, grayscale=True).to_pil().convert("RGB")
            scale = min(1.0, RapidOcrEngine.max_side / max(pil.size))  # as the engine's read() does
            if scale < 1.0:
                pil = pil.resize((int(pil.width * scale), int(pil.height * scale)))
            images.append(np.asarray(pil))
    return images


def measure(images: list, threads: int, det_side: int, int8: bool = False) -> tuple[float, np.ndarray, list[set[str]]]:
    from ingest.ocr import RapidOcrEngine
    from ingest.ocr_int8 import int8_detector
    from mmrag.settings import Settings

    model = str(int8_detector(Settings().model_cache)) if int8 else ""
    engine = RapidOcrEngine(threads, det_side, model)._engine  # the raw result carries per-step seconds
    engine(images[0])  # warm-up
    steps, words = np.zeros(3), []
    t0 = time.perf_counter()
    for im in images:
        out = engine(im)
        steps += [float(v or 0) for v in (list(out.elapse_list or []) + [0, 0, 0])[:3]]
        words.append({w.lower() for line in out.txts or () for w in line.split()})
    return (time.perf_counter() - t0) / len(images), steps / len(images), words


def small_print_pages(path: Path, size: float, pages: int, seed: int = 0) -> set[str]:
    """A4 pages of running text in ``size``-point Helvetica (words drawn from this repository's README),
    a report in small print as a scanner would see it; returns the words printed."""
    import random
    import re

    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.pdfgen import canvas

    vocab = sorted(set(re.findall(r"[A-Za-z]{3,14}", (Path(__file__).parents[1] / "README.md").read_text())))
    rng, printed = random.Random(seed), set()
    c = canvas.Canvas(str(path), pagesize=A4)
    for _ in range(pages):
        c.setFont("Helvetica", size)
        y = A4[1] - 50
        while y > 50:
            line = []
            while stringWidth(" ".join(line), "Helvetica", size) < A4[0] - 110:
                line.append(rng.choice(vocab))
            c.drawString(50, y, " ".join(line[:-1]))
            printed.update(w.lower() for w in line[:-1])
            y -= size * 1.4
        c.showPage()
    c.save()
    return printed


def small_print(sizes: list[float], dpi: int, out: Path) -> None:
    """Word recall against the words printed, by print size: full detector input, 1280 px, 1280 px in int8."""
    import tempfile

    settings = [s for s in SETTINGS if s[1] == 0]  # threads per core: as rendered, detector side 1280, and in int8
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            pdf = Path(tmp) / f"small-{size}.pdf"
            printed = small_print_pages(pdf, size, 2)
            images = render([f"{pdf}:0,1"], dpi)
            for label, threads, side, int8 in settings:
                per_page, _, words = measure(images, threads, side, int8)
                recall = len(printed & set().union(*words)) / len(printed)
                rows.append((size, label, per_page, recall))
                print(size, label, f"{per_page:.2f} s/page recall {recall:.3f}", flush=True)
    lines = ["## OCR of small print: the detector's input size (#22)", "",
             f"Machine: {machine()}. Command: `python -m bench.ocr_speed --small-print "
             + ",".join(f"{s:g}" for s in sizes) + f"`. Two generated A4 pages a size, running text in Helvetica, "
             f"rendered at {dpi} dpi ({images[0].shape[1]}x{images[0].shape[0]} px) as ingestion renders a scan; "
             "word recall: the share of the distinct words printed that OCR reads back exactly.", "",
             "| print size (pt) | setting | s/page | word recall |", "|---|---|---|---|"]
    lines += [f"| {size:g} | {label} | {pp:.2f} | {rc:.3f} |" for size, label, pp, rc in rows]
    write_section(out, "ocr-small-print", "\n".join(lines))
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", action="append", help="PDF:0-based page numbers, comma-separated (repeatable)")
    ap.add_argument("--small-print", help="instead: generated A4 pages in these print sizes (points, comma-separated), "
                                          "word recall against the printed words")
    ap.add_argument("--dpi", type=int, default=200)
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    a = ap.parse_args()
    if a.small_print:
        small_print([float(x) for x in a.small_print.split(",")], a.dpi, a.out)
        return
    if not a.pages:
        ap.error("--pages or --small-print")
    images = render(a.pages, a.dpi)
    rows, reference = [], None
    for label, threads, side, int8 in SETTINGS:
        per_page, steps, words = measure(images, threads, side, int8)
        reference = reference or words
        recall = float(np.mean([len(r & w) / max(1, len(r)) for r, w in zip(reference, words)]))
        rows.append((label, per_page, steps, recall, sum(map(len, words))))
        print(label, f"{per_page:.2f} s/page", np.round(steps, 2), f"recall {recall:.3f}", flush=True)
    sizes = sorted({f"{im.shape[1]}x{im.shape[0]}" for im in images})
    lines = ["## OCR cost on scanned pages (#22)", "",
             f"Machine: {machine()}. Command: `python -m bench.ocr_speed " + " ".join(f"--pages {p}" for p in a.pages)
             + f"`. {len(images)} scanned pages rendered at {a.dpi} dpi ({', '.join(sizes)} px), read by rapidocr "
             "(PP-OCRv6 small detector and recogniser, from its wheel; the int8 detector is built from it by "
             "`ingest.ocr_int8`, static quantisation calibrated on generated pages); seconds per page, the steps as rapidocr times "
             "them; word recall: the share of the distinct words read by the first setting that each one reads too.", "",
             "| setting | s/page | detection | angle | recognition | word recall | words |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {label} | {pp:.2f} | {st[0]:.2f} | {st[1]:.2f} | {st[2]:.2f} | {rc:.3f} | {n} |"
              for label, pp, st, rc, n in rows]
    write_section(a.out, "ocr-speed", "\n".join(lines))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
