"""The OCR text detector in int8, built once from the fp32 model in the rapidocr wheel.

The detector is a convolution network that spends half of a scanned page's OCR time (docs/benchmarks.md,
"ocr-speed"). ONNX Runtime's *dynamic* int8 makes it slower (its integer convolution has no fast
kernel); *static* int8 (QDQ: activations quantised with ranges measured beforehand, weight scales per
output channel) runs on the integer convolution kernels: 2.1-2.5x faster on these cores
(docs/benchmarks.md, "The OCR text detector in int8"). Static quantisation needs calibration pages;
they are generated here, so the file builds the same way on any machine from the wheel alone:
paragraphs in many print sizes, headings, a ruled table, dark slide bands with light text, a chart's
bars and a photo-like gradient, at a scan's 200 dpi. The recogniser stays fp32 (static int8 lost words
there and gained little).
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

BUILD_TIMEOUT_S = 900  # ~20 s on 2 idle cores; generous for a busy or slow machine


# the calibration's vocabulary, fixed so every machine builds the same file: English words of a report's
# length mix (made-up letter strings calibrated no better: 0.957 of the fp32 words read against 0.956)
WORDS = """
annual report revenue growth market share customer service quality energy water health education public policy
survey results respondents percent increase decrease compared with previous year first second third quarter total
average median number people households companies countries region national international government program
project management development research analysis data information technology digital online mobile users access
network security performance results strategy investment capital cost price value sales income profit operating
financial statements notes assets liabilities equity cash flow table figure chart source page section chapter
summary introduction conclusion recommendations key findings overview background methods sample population age
group gender women men children students teachers schools university hospital patients care services community
local city urban rural transport housing employment workers jobs wages labour industry manufacturing agriculture
food trade exports imports economy inflation interest rate bank credit loans debt budget spending tax social
climate change emissions carbon renewable solar wind power electricity production consumption environment
the of and to in for on with by from at as is are was were be has have that this these which will can may more
most than other new all its their our between during after before about over under within per each also
"""


def int8_cache(settings) -> str:
    """The model cache to find or build the int8 detector in, or "" where the settings keep the fp32 one."""
    return str(settings.model_cache) if settings.ocr_engine == "rapidocr" and settings.ocr_det_int8 else ""


@lru_cache(maxsize=2)
def detector_or_fp32(cache: str) -> str:
    """The int8 detector's file, built if need be; "" (the wheel's fp32 model) where it cannot be built
    (an unforeseen rapidocr or ONNX Runtime, no memory): logged once, slower OCR, never a failed document."""
    try:
        return str(int8_detector(Path(cache)))
    except Exception as exc:  # noqa: BLE001 - any failure here only costs speed
        log.warning("int8 OCR detector unavailable (%s): using the fp32 one", exc)
        return ""


def wheel_detector() -> Path:
    """The fp32 detector rapidocr loads by default (its config names the file in its models folder)."""
    import rapidocr

    models = Path(rapidocr.__file__).parent / "models"
    found = sorted(models.glob("*_det_*.onnx"))
    if not found:
        raise RuntimeError(f"no text detector in {models}: reinstall rapidocr")
    return found[0]


def target(cache: Path, source: Path | None = None) -> Path:
    """Where the int8 file of ``source`` lives: its name changes with the wheel's model and with this
    file (the calibration pages and the quantiser's options), so a change is never served stale."""
    source = source or wheel_detector()
    digest = hashlib.sha256(source.read_bytes() + Path(__file__).read_bytes()).hexdigest()[:12]
    return cache / "ocr" / f"{source.stem}-int8-{digest}.onnx"


def int8_detector(cache: Path, source: Path | None = None) -> Path:
    """``cache``/ocr/<detector>-int8-<hash>.onnx, built on first use (about 20 s on 2 cores).

    The build runs in a child process: calibration peaks at ~3.4 GB, which a parse worker must neither
    count against its memory budget (MMRAG_PARSE_MEMORY_MB would stop it mid-build, failing the scan that
    asked) nor keep after the build."""
    source = source or wheel_detector()
    path = target(cache, source)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    log.info("building the int8 OCR text detector from %s (once, about 20 s)", source.name)
    try:
        done = subprocess.run([sys.executable, "-m", "ingest.ocr_int8", str(source), str(path)], capture_output=True,
                              text=True, timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"cannot build the int8 OCR detector from {source}: over {BUILD_TIMEOUT_S} s") from exc
    if done.returncode != 0 or not path.exists():
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise RuntimeError(f"cannot build the int8 OCR detector from {source}: {why}")
    return path


def build(source: Path, path: Path) -> None:
    """The build itself, in this process: quantised into a temporary file beside ``path``, then moved
    there in one step, so a reader never sees half a model and a failed build leaves nothing."""
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        os.replace(_quantize(source, Path(tmp)), path)


def _quantize(source: Path, tmp: Path) -> Path:
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = tmp / "pre.onnx"
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser's hints go to the root logger; not actionable here
    try:
        quant_pre_process(str(source), str(pre), skip_symbolic_shape=True)  # folds batch norms, infers shapes
        # the wheel's graph is opset 11; per-channel DequantizeLinear needs 13
        model = version_converter.convert_version(onnx.load(str(pre)), 17)
        onnx.save(model, str(pre))
        graph = model.graph
        name = graph.input[0].name
        inputs = [{name: x} for x in detector_inputs(calibration_pages())]

        class Pages(CalibrationDataReader):
            def __init__(self) -> None:
                self._it = iter(inputs)

            def get_next(self):
                return next(self._it, None)

        out = tmp / "int8.onnx"
        quantize_static(str(pre), str(out), Pages(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, extra_options={"CalibMovingAverage": True},
                        nodes_to_exclude=fp32_convolutions(graph))
    finally:
        root.setLevel(level)
    return out


def fp32_convolutions(graph) -> list[str]:
    """The convolutions kept in fp32: the first (it reads the page's pixels) and the last three (the head
    that draws the text-probability map the box threshold cuts). Measured on generated 6-12 pt pages,
    quantising them too read fewer printed words at 9-12 pt (0.814-0.888 against 0.839-0.912)."""
    convs = [n.name for n in graph.node if n.op_type in ("Conv", "ConvTranspose")]
    return convs[:1] + convs[-3:]


def detector_inputs(pages: list[np.ndarray], side: int = 1280) -> list[np.ndarray]:
    """The tensors rapidocr's detector sees for these pages at this input size (its own pre-processing)."""
    from rapidocr import RapidOCR

    engine = RapidOCR(params={"Det.limit_type": "max", "Det.limit_side_len": side, "Global.use_rec": False,
                              "Global.use_cls": False})
    logging.getLogger("RapidOCR").setLevel(logging.ERROR)
    engine(pages[0])  # the detector loads on first use
    seen: list[np.ndarray] = []
    session = engine.text_det.session

    class Recording:
        def __call__(self, x):
            seen.append(x.copy())
            return session(x)

        def __getattr__(self, attr):
            return getattr(session, attr)

    engine.text_det.session = Recording()
    for page in pages:
        engine(page)
    return seen


def calibration_pages(seed: int = 0) -> list[np.ndarray]:
    """Eight generated pages (RGB arrays as a 200-dpi scan renders): A4 reports in 7-14 pt with
    headings and a ruled table, and 16:9 slides with dark title bands, big type, bars and a photo."""
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    rng = random.Random(seed)
    words = WORDS.split()

    def font(px: int):
        for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
            try:
                return ImageFont.truetype(name, px)
            except OSError:
                continue
        return ImageFont.load_default(size=px)

    def sentence(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n)).capitalize() + "."

    def text_block(draw, x: int, y: int, width: int, px: int, lines: int, fill: int = 0) -> int:
        f = font(px)
        for _ in range(lines):
            line = sentence(40)
            while draw.textlength(line, font=f) > width and " " in line:
                line = line.rsplit(" ", 1)[0]
            draw.text((x, y), line, font=f, fill=fill)
            y += int(px * 1.45)
        return y

    pages = []
    for pt in (7, 9, 11, 14):  # A4 at 200 dpi: 1654 x 2339
        img = Image.new("L", (1654, 2339), 255)
        d = ImageDraw.Draw(img)
        px = round(pt * 200 / 72)
        y = text_block(d, 140, 140, 1370, px * 2, 1)  # heading
        y = text_block(d, 140, y + 30, 1370, px, 18)
        x0, cols, rows = 140, 4, 6  # a ruled table of numbers
        for r in range(rows + 1):
            d.line((x0, y + 40 + r * px * 2, x0 + 1370, y + 40 + r * px * 2), fill=0, width=2)
        for r in range(rows):
            for c in range(cols):
                cell = rng.choice(words) if c == 0 else f"{rng.uniform(0, 999):.1f}"
                d.text((x0 + 10 + c * 340, y + 45 + r * px * 2), cell, font=font(px), fill=0)
        text_block(d, 140, y + 80 + rows * px * 2, 1370, px, 10)
        pages.append(img)
    for k in range(4):  # 16:9 slides at 200 dpi, downscaled as scans are (2400 px long side)
        img = Image.new("L", (2400, 1350), 255 if k % 2 else 235)
        d = ImageDraw.Draw(img)
        d.rectangle((0, 0, 2400, 220), fill=40 + 30 * k)  # a dark title band, light text on it
        text_block(d, 90, 60, 2200, 90, 1, fill=250)
        text_block(d, 90, 300, 1150, 44 + 6 * k, 9)
        for b in range(6):  # a bar chart with its labels
            h = rng.randint(100, 600)
            d.rectangle((1350 + b * 160, 1150 - h, 1350 + b * 160 + 100, 1150), fill=60 + 25 * b)
            d.text((1350 + b * 160, 1170), str(2019 + b), font=font(34), fill=0)
        grad = np.linspace(0, 255, 500)[None, :] * np.linspace(0.3, 1, 350)[:, None]
        noise = np.random.default_rng(seed + k).normal(0, 25, (350, 500))
        photo = Image.fromarray(np.clip(grad + noise, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(2))
        img.paste(photo, (1850, 950 - 350 * (k % 2)))
        pages.append(img)
    return [np.asarray(p.convert("RGB")) for p in pages]


if __name__ == "__main__":  # the child process int8_detector starts: python -m ingest.ocr_int8 SOURCE TARGET
    try:
        build(Path(sys.argv[1]), Path(sys.argv[2]))
    except Exception as exc:  # onnx, protobuf and the quantiser each raise their own kinds; the parent reports it
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
