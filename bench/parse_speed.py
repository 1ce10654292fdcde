"""Parse speed of PDFs: mmrag with and without the layout step, beside pdfplumber (text and tables on
every page) and docvortex (rule-based layout), on the same files; OCR'd scans measured apart.

    python -m bench.parse_speed --pdfs ../shared/data/mmlongbench-dev/passages [--every 2] [--scans 2]

docvortex is not a dependency: ``pip install docvortex==0.6.4`` to include it. Writes the
"parse-speed" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench.ingest import make_long_pdf, page_count, time_parse, time_pdfplumber
from bench.report import machine, write_section


def has_text_layer(path: Path) -> bool:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(path))
    try:
        return sum(len(doc[i].get_textpage().get_text_range().split()) for i in range(min(5, len(doc)))) >= 100
    finally:
        doc.close()


def _parse_one(args: tuple[str, dict]) -> int:
    from ingest.parse import DirectoryImageSink, parse_document
    from mmrag.errors import DocumentError
    from mmrag.settings import Settings

    path, kwargs = args
    with tempfile.TemporaryDirectory() as tmp:
        try:
            return len(parse_document(Path(path).read_bytes(), path, Settings(**kwargs), DirectoryImageSink(Path(tmp))).units)
        except DocumentError:
            return 0


def time_parallel(files: list[Path], kwargs: dict, workers: int) -> float:
    """Files parsed by ``workers`` processes at once, as ingestion with MMRAG_PARSE_WORKERS does."""
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_parse_one, [(str(files[0]), kwargs)] * workers))  # load the models in every worker first
        t0 = time.perf_counter()
        list(pool.map(_parse_one, [(str(f), kwargs) for f in files]))
        return time.perf_counter() - t0


def time_docvortex(files: list[Path]) -> float | None:
    try:
        import docvortex
        from loguru import logger
    except ImportError:
        return None
    logger.disable("docvortex")  # it logs every table it finds at DEBUG
    t0 = time.perf_counter()
    for f in files:
        try:
            docvortex.parse(f, parse_mode="txt")
        except Exception as exc:
            print(f"docvortex failed on {f.name}: {exc}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pdfs", type=Path, required=True, help="a folder of real PDFs")
    ap.add_argument("--every", type=int, default=1, help="take every n-th PDF with a text layer (a shorter run)")
    ap.add_argument("--scans", type=int, default=2, help="PDFs without a text layer to time with OCR")
    ap.add_argument("--pages", type=int, default=200, help="pages of the generated PDF")
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = ap.parse_args()
    from mmrag.settings import Settings

    all_pdfs = sorted(args.pdfs.glob("*.pdf"))
    digital = [f for f in all_pdfs if has_text_layer(f)]
    scans = [f for f in all_pdfs if f not in digital][: args.scans]
    digital = digital[:: args.every]
    work = Path(tempfile.mkdtemp())
    generated = [make_long_pdf(work / f"generated-{args.pages}p.pdf", args.pages)]
    base = {"data_dir": str(work / "d"), "parse_workers": 0, "ocr_engine": "rapidocr"}
    on, off = {**base, "pdf_layout": "rapid-layout"}, {**base, "pdf_layout": "none"}
    time_parse(generated[:1], Settings(**on))  # load the models before any clock starts
    rows = []
    for label, files in ((f"dev PDFs with a text layer ({len(digital)})", digital), (f"generated {args.pages}-page PDF", generated)):
        pages = sum(page_count(f) for f in files)
        timings = {"mmrag, layout on": time_parse(files, Settings(**on))[0],
                   "mmrag, layout off": time_parse(files, Settings(**off))[0],
                   "mmrag, layout on, 2 processes": time_parallel(files, on, 2) if len(files) > 1 else None,
                   "pdfplumber text + tables": time_pdfplumber(files),
                   "docvortex 0.6.4": time_docvortex(files)}
        rows.append((label, pages, timings))
        print(label, pages, {k: v and round(v, 1) for k, v in timings.items()})
    if scans:
        pages = sum(page_count(f) for f in scans)
        rows.append((f"dev scans, OCR ({len(scans)})", pages,
                     {"mmrag, layout on": time_parse(scans, Settings(**on))[0],
                      "mmrag, layout on, 2 processes": time_parallel(scans, on, 2) if len(scans) > 1 else None}))
        print(rows[-1])
    names = list(dict.fromkeys(k for _, _, t in rows for k in t))
    lines = ["## Parse speed: PDFs with the layout step (#19)", "",
             f"Machine: {machine()}. Command: `python -m bench.parse_speed --pdfs ../shared/data/mmlongbench-dev/passages "
             f"--every {args.every} --scans {args.scans}` (docvortex installed by hand: it is not a dependency).", "",
             "Pages per second, parse only (no embedding), one process unless marked; in brackets, that speed as a multiple of mmrag's with layout on.", "",
             "| files | pages | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for label, pages, timings in rows:
        ref = timings["mmrag, layout on"]
        cells = []
        for n in names:
            t = timings.get(n)
            cells.append("n/a" if not t else f"{pages / t:.2f} ({ref / t:.2f}x)" if n != "mmrag, layout on" else f"{pages / t:.2f}")
        lines.append(f"| {label} | {pages} | " + " | ".join(cells) + " |")
    write_section(args.out, "parse-speed", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":  # docvortex and the process pool spawn workers
    main()
