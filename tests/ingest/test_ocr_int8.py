"""The int8 OCR text detector: built once from the wheel's fp32 model, quantised where it counts,
and reading the words of a page as the fp32 detector does."""

from __future__ import annotations

import random

import numpy as np
import onnx
import pytest
from PIL import Image, ImageDraw

from ingest.ocr import RapidOcrEngine
from ingest.ocr_int8 import calibration_pages, int8_detector, wheel_detector
from mmrag.settings import Settings
from tests.fixturegen import font


@pytest.fixture(scope="module")
def int8_path(tmp_path_factory):
    # the cache a user's settings point at (`make install` builds it there), so the ~20 s build is paid once
    return int8_detector(Settings(data_dir=tmp_path_factory.mktemp("data")).model_cache)


def test_built_once_with_every_convolution_in_int8(int8_path):
    stamp = int8_path.stat().st_mtime_ns
    assert int8_detector(int8_path.parents[1]) == int8_path and int8_path.stat().st_mtime_ns == stamp  # not rebuilt
    graph = onnx.load(str(int8_path)).graph
    made_by = {out: node for node in graph.node for out in node.output}
    convs = [n for n in graph.node if n.op_type in ("Conv", "ConvTranspose")]
    assert len(convs) > 20

    def int8(conv) -> bool:  # QDQ: input and weight come dequantised from int8 (ORT runs an integer kernel)
        return all(x in made_by and made_by[x].op_type == "DequantizeLinear" for x in conv.input[:2])

    # the first convolution (pixels in) and the head (the probability map out) stay fp32, the rest is int8
    assert [int8(c) for c in convs] == [False] + [True] * (len(convs) - 4) + [False] * 3
    assert int8_path.stat().st_size < wheel_detector().stat().st_size / 2


def test_calibration_pages_are_the_same_on_every_call():
    first, second = calibration_pages(), calibration_pages()
    assert len(first) == 8 and all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(first, second))
    assert {p.shape[:2] for p in first} == {(2339, 1654), (1350, 2400)}  # A4 reports and 16:9 slides


def _page(seed: int = 3) -> tuple[Image.Image, set[str]]:
    """An A4 scan at 200 dpi: lines of made-up words from 9 to 28 px high (7 to 20 pt)."""
    rng = random.Random(seed)
    page = Image.new("L", (1654, 2339), 255)
    d = ImageDraw.Draw(page)
    printed, y = set(), 120
    for px in (28, 24, 20, 18, 16, 14):
        for _ in range(6):
            words = ["".join(rng.choice("abcdefghijklmnoprstuvwy") for _ in range(rng.randint(4, 9))) for _ in range(6)]
            d.text((120, y), " ".join(words), fill=0, font=font(px * 2))
            printed.update(words)
            y += px * 3
    return page, printed


def test_int8_reads_the_words_fp32_reads(int8_path):
    page, printed = _page()
    read = {}
    for name, model in (("fp32", ""), ("int8", str(int8_path))):
        lines = RapidOcrEngine(0, 1280, model).read(page)
        read[name] = {w.lower() for line in lines for w in line.text.split()}
    fp32, int8 = (len(printed & read[k]) / len(printed) for k in ("fp32", "int8"))
    assert fp32 > 0.8
    assert int8 >= fp32 - 0.05


def test_a_corrupt_source_fails_clearly_and_leaves_nothing(tmp_path):
    bad = tmp_path / "broken_det_small.onnx"
    bad.write_bytes(b"not an onnx graph")
    with pytest.raises(RuntimeError, match="cannot build the int8 OCR detector"):
        int8_detector(tmp_path / "cache", bad)
    assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))  # no half-written model


def test_the_engine_builds_nothing_until_a_page_is_read(tmp_path):
    engine = RapidOcrEngine(0, 1280, int8_cache=str(tmp_path))
    assert engine._rapid is None and not any(tmp_path.iterdir())  # a collection without scans never waits for it


def test_an_unbuildable_detector_falls_back_to_fp32_with_a_warning(tmp_path, caplog):
    from ingest.ocr_int8 import detector_or_fp32

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    with caplog.at_level("WARNING", logger="ingest.ocr_int8"):
        assert detector_or_fp32(str(blocked)) == ""
    assert "using the fp32 one" in caplog.text
