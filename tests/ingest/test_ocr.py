"""The OCR recogniser's batching: short lines padded little, read as the wheel's batching reads them."""

from __future__ import annotations

import random
from collections import Counter

from PIL import Image, ImageDraw

from ingest.ocr import RapidOcrEngine
from tests.fixturegen import font


def _slide(seed: int = 5) -> tuple[Image.Image, list[str]]:
    """A 16:9 slide at 200 dpi: short labels (a word or two, numbers, prices) as charts and decks have them."""
    rng = random.Random(seed)
    page = Image.new("L", (2134, 1200), 255)
    d = ImageDraw.Draw(page)
    printed, y = [], 80
    while y < 1100:
        x, px = 80, rng.choice((18, 22, 26, 32))
        while True:
            label = rng.choice(("Revenue", "Speed (mph)", "Total Distance", "Elevation", "Aerial", "Hybrid", "Road",
                                f"{rng.randint(1, 9)},{rng.randint(100, 999)}", f"${rng.randint(10, 999)}.99",
                                f"{rng.randint(1, 99)}%", str(rng.randint(1990, 2030))))
            width = d.textlength(label, font=font(px * 2))
            if x + width > 2050:
                break
            d.text((x, y), label, fill=0, font=font(px * 2))
            printed += label.lower().replace("(", "").replace(")", "").split()
            x += width + rng.randint(120, 300)
        y += px * 4
    return page, printed


def _recall(engine: RapidOcrEngine, page: Image.Image, printed: list[str]) -> float:
    """The share of the printed words read back, each as often as printed."""
    read = Counter(w.strip("()").lower() for line in engine.read(page) for w in line.text.split())
    return sum((Counter(printed) & read).values()) / len(printed)


def test_short_lines_read_as_the_wheels_batching_reads_them():
    page, printed = _slide()
    assert len(printed) > 60
    default = RapidOcrEngine(0, 1280)
    assert default._params["Rec.rec_batch_num"] == 2 and default._params["Rec.rec_img_shape"] == [3, 48, 96]
    wheel = RapidOcrEngine(0, 1280, rec_batch=6, rec_min_width=320)
    ours, theirs = _recall(default, page, printed), _recall(wheel, page, printed)
    assert theirs > 0.9
    assert ours >= theirs - 0.02
