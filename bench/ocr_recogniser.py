"""The OCR recogniser's batching: seconds per page and the words read, for lines per batch and the width
every line crop is padded to at least.

rapidocr recognises the detector's line crops 48 px high, sorted by width, in batches padded to the widest
line of the batch and never narrower than its minimum width (the wheel: 6 lines, 320 px). Two kinds of page:

- ``--text-layer``: pages of PDFs that carry a text layer, rendered as ingestion renders a scan and OCR'd;
  the truth is the page's own text layer, so token recall (lowercased, punctuation stripped, counted with
  multiplicity) is measured against what the page says, not against another OCR setting.
- ``--scans``: scanned pages (no text layer): the tokens each setting reads differently from the wheel's
  batching, with examples, to see what changes where there is no truth.

    python -m bench.ocr_recogniser --text-layer ../shared/data/mmlongbench-dev/passages/dev001.pdf:3 \\
        --text-layer .../dev016.pdf:1,3 --scans .../dev015.pdf:3,20 --scans .../dev025.pdf:5,30
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

from bench.ocr_speed import render
from bench.report import machine, write_section

# (lines a batch, minimum width in px); the first is the wheel's and the reference for --scans
VARIANTS = [(6, 320), (1, 320), (2, 320), (2, 160), (2, 96), (2, 48), (6, 96)]
PUNCT = ".,;:!?()[]{}\"'“”‘’*•·-–—"


def tokens(text: str) -> Counter:
    words = (w.strip(PUNCT) for w in text.lower().split())
    return Counter(w for w in words if any(ch.isalnum() for ch in w))


def text_layer(specs: list[str]) -> list[Counter]:
    import pypdfium2 as pdfium

    out = []
    for spec in specs:
        path, pages = spec.rsplit(":", 1)
        doc = pdfium.PdfDocument(path)
        out += [tokens(doc[int(i)].get_textpage().get_text_range()) for i in pages.split(",")]
    return out


def read(images: list, batch: int, width: int) -> tuple[float, float, list[Counter]]:
    """Seconds a page in all and in recognition, and each page's tokens, with the default detector."""
    from ingest.ocr import RapidOcrEngine
    from ingest.ocr_int8 import int8_cache
    from mmrag.settings import Settings

    settings = Settings()
    engine = RapidOcrEngine(0, settings.ocr_det_side, int8_cache=int8_cache(settings), rec_batch=batch,
                            rec_min_width=width)._engine  # the raw result carries per-step seconds
    engine(images[0])  # warm-up
    rec, pages = 0.0, []
    t0 = time.perf_counter()
    for im in images:
        out = engine(im)
        rec += float((list(out.elapse_list or []) + [0, 0, 0])[2] or 0)
        pages.append(tokens(" ".join(out.txts or ())))
    return (time.perf_counter() - t0) / len(images), rec / len(images), pages


def label(batch: int, width: int) -> str:
    from ingest.ocr import RapidOcrEngine

    tag = " (the wheel's)" if (batch, width) == VARIANTS[0] else ""
    tag += " (default)" if (batch, width) == (RapidOcrEngine.rec_batch, RapidOcrEngine.rec_min_width) else ""
    return f"{batch} lines, at least {width} px{tag}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text-layer", action="append", default=[], help="PDF:0-based pages with a text layer (repeatable)")
    ap.add_argument("--scans", action="append", default=[], help="PDF:0-based scanned pages (repeatable)")
    ap.add_argument("--dpi", type=int, default=200)
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    a = ap.parse_args()
    if not a.text_layer or not a.scans:
        ap.error("--text-layer and --scans")
    truth, layer_images, scan_images = text_layer(a.text_layer), render(a.text_layer, a.dpi), render(a.scans, a.dpi)
    total = sum(sum(t.values()) for t in truth)
    rows, reference, examples = [], None, {}
    for batch, width in VARIANTS:
        per_page, rec, pages = read(layer_images, batch, width)
        recall = sum(sum((t & p).values()) for t, p in zip(truth, pages)) / total
        scan_page, scan_rec, scans = read(scan_images, batch, width)
        reference = reference or scans
        lost = sum(((r - s) for r, s in zip(reference, scans)), Counter())
        gained = sum(((s - r) for r, s in zip(reference, scans)), Counter())
        examples[(batch, width)] = (sorted(lost.elements())[:12], sorted(gained.elements())[:12])
        rows.append((label(batch, width), per_page, rec, recall, scan_page, scan_rec, sum(lost.values()), sum(gained.values())))
        print(rows[-1], flush=True)
    lines = ["## OCR recogniser batching (#22)", "",
             f"Machine: {machine()}. Command: `python -m bench.ocr_recogniser "
             + " ".join([f"--text-layer {p}" for p in a.text_layer] + [f"--scans {p}" for p in a.scans])
             + f"`. Pages rendered at {a.dpi} dpi as ingestion renders a scan, read by rapidocr with the default "
             f"detector; {len(layer_images)} pages of PDFs with a text layer ({total} tokens in it: the truth for "
             f"token recall) and {len(scan_images)} scanned pages (tokens read differently from the wheel's batching: "
             "lost / gained). Seconds per page in all and in recognition.", "",
             "| recogniser batches | text-layer pages s/page | recognition | token recall | scans s/page | recognition "
             "| tokens lost / gained |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {lb} | {pp:.2f} | {rc:.2f} | {rl:.4f} | {sp:.2f} | {sr:.2f} | {lo} / {ga} |"
              for lb, pp, rc, rl, sp, sr, lo, ga in rows]
    lines += ["", "Tokens read differently on the scans (first 12 each way):", ""]
    lines += [f"- {label(*v)}: lost {' '.join(f'`{t}`' for t in lo) or '-'}; gained {' '.join(f'`{t}`' for t in ga) or '-'}"
              for v, (lo, ga) in examples.items() if v != VARIANTS[0]]
    write_section(a.out, "ocr-recogniser", "\n".join(lines))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
