"""Checks the parsing acceptance items on the real documents of a docs folder (run by hand).

    python scripts/check_docs.py ../shared/data/docs
"""

from __future__ import annotations

import csv
import sys
import tempfile
from pathlib import Path

from ingest.parse import DirectoryImageSink, parse_document
from mmrag.errors import DocumentError
from mmrag.settings import Settings


def cer(hyp: str, ref: str) -> float:
    hyp, ref = " ".join(hyp.split()), " ".join(ref.split())
    prev = list(range(len(ref) + 1))
    for i, a in enumerate(hyp, 1):
        cur = [i] + [0] * len(ref)
        for j, b in enumerate(ref, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a != b))
        prev = cur
    return prev[-1] / max(1, len(ref))


def main(folder: Path) -> int:
    settings = Settings()
    sink = DirectoryImageSink(Path(tempfile.mkdtemp()))

    def parse(name):
        return parse_document((folder / name).read_bytes(), name, settings, sink).units

    results = []
    tables = [u for u in parse("mtcars-table.pdf") if u.type == "table" and u.page == 1]
    rows = tables[0].meta["rows"][:1] + [r for u in tables for r in u.meta["rows"][1:]]
    truth = list(csv.reader(open(folder / "mtcars-table.page1.csv")))
    truth[0][0] = ""  # the CSV names the row-label column '""'; the PDF leaves it blank
    results.append(("mtcars-table.pdf page 1 table == CSV", rows == truth, f"{len(rows)} rows x {len(rows[0])} cols"))
    images = [u for u in parse("having-images.docx") if u.type == "image"]
    results.append(("having-images.docx yields 5 images", len(images) == 5, f"{len(images)} images"))
    text = " ".join(u.text for u in parse("linn.pdf") if u.type == "text")
    rate = cer(text, (folder / "linn.txt").read_text())
    results.append(("linn.pdf OCR CER <= 5%", rate <= 0.05, f"CER {rate:.1%}"))
    try:
        parse("encrypted-file.pdf")
        results.append(("encrypted-file.pdf fails naming encryption", False, "parsed"))
    except DocumentError as exc:
        results.append(("encrypted-file.pdf fails naming encryption", "encrypt" in str(exc), str(exc)))
    pics = [u for u in parse("shp-picture.pptx") if u.type == "image"]
    tbls = [u for u in parse("tbl-cell.pptx") if u.type == "table"]
    results.append(("PPTX picture and tables come out", bool(pics) and bool(tbls), f"{len(pics)} pictures, {len(tbls)} tables"))
    for name, ok, detail in results:
        print(f"{'PASS' if ok else 'FAIL'}  {name}  ({detail})")
    return 0 if all(ok for _, ok, _ in results) else 1


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/docs")))
