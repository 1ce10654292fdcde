"""Guards against inputs that would exhaust memory or time: checked before the heavy work."""

from __future__ import annotations

import io
import warnings
import zipfile

from PIL import Image

from mmrag.errors import CorruptDocument, LimitExceeded
from mmrag.settings import Settings


def check_size(data: bytes, settings: Settings) -> None:
    mb = len(data) / 2**20
    if mb > settings.max_file_mb:
        raise LimitExceeded(f"file is {mb:.1f} MB, over the {settings.max_file_mb:g} MB limit (MMRAG_MAX_FILE_MB)")


def check_pages(n_pages: int, settings: Settings) -> None:
    if n_pages > settings.max_pages:
        raise LimitExceeded(f"{n_pages} pages, over the {settings.max_pages} page limit (MMRAG_MAX_PAGES)")


def check_zip(data: bytes, settings: Settings) -> None:
    """Reject ZIP bombs before python-docx/pptx inflate them."""
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except zipfile.BadZipFile as exc:
        raise CorruptDocument(f"ZIP container is truncated or corrupt ({exc})") from exc
    total = sum(i.file_size for i in infos)
    packed = max(1, sum(i.compress_size for i in infos))
    if total > settings.max_zip_uncompressed_mb * 2**20:
        raise LimitExceeded(f"decompression bomb: inflates to {total / 2**20:.0f} MB (limit {settings.max_zip_uncompressed_mb:g} MB)")
    biggest = max((i for i in infos if i.filename.endswith(".xml")), key=lambda i: i.file_size, default=None)
    if biggest is not None and biggest.file_size > settings.max_xml_mb * 2**20:
        raise LimitExceeded(f"{biggest.filename} inflates to {biggest.file_size / 2**20:.0f} MB, over the "
                            f"{settings.max_xml_mb:g} MB limit of one XML part (MMRAG_MAX_XML_MB)")
    # Real Office files compress 5-20:1; the ratio is checked from 8 MB inflated (a 180 KB file that inflates
    # to 48 MB is 270:1), below that python-docx reads it in seconds.
    if total > 8 * 2**20 and total / packed > settings.max_zip_ratio:
        raise LimitExceeded(f"decompression bomb: compression ratio {total / packed:.0f}:1 (limit {settings.max_zip_ratio:g}:1)")


def open_image(data: bytes, settings: Settings) -> Image.Image:
    """Open and fully decode an image, refusing pixel bombs and truncated files."""
    Image.MAX_IMAGE_PIXELS = settings.max_image_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > settings.max_image_pixels:
                raise LimitExceeded(f"image is {w}x{h} pixels, over the {settings.max_image_pixels} pixel limit (MMRAG_MAX_IMAGE_PIXELS)")
            if getattr(img, "n_frames", 1) > 1:
                check_frames(img, settings)  # later frames can be larger than the first
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise LimitExceeded(f"decompression bomb: {exc}") from exc
    except LimitExceeded:
        raise
    except OSError as exc:
        raise CorruptDocument(f"image cannot be decoded ({exc})") from exc
    return img


MAX_RENDER_PIXELS = 16_000_000  # an A3 page at 200 dpi is 7.8 Mpx; OCR downscales past 2400 px a side anyway


def render_scale(width_pt: float, height_pt: float, dpi: float, settings: Settings) -> float:
    """The scale to render a page at: ``dpi``, lowered so the bitmap stays under the pixel limits.
    A 14,400 pt square page at 200 dpi would be 1.6 Gpx (6 GB of RGB); it renders at ~4,000 px a side."""
    scale = dpi / 72
    cap = min(settings.max_image_pixels, MAX_RENDER_PIXELS)
    pixels = max(1.0, width_pt * scale) * max(1.0, height_pt * scale)
    if pixels > cap:
        scale *= (cap / pixels) ** 0.5
    return scale


def check_frames(img: Image.Image, settings: Settings) -> int:
    """Every frame of a multi-frame image (TIFF, GIF, WebP) against the pixel limit, from its header,
    before any is decoded; and their sum against ten times the limit. Returns the frame count."""
    n = getattr(img, "n_frames", 1)
    check_pages(n, settings)
    total = 0
    for k in range(n):
        img.seek(k)
        w, h = img.size
        if w * h > settings.max_image_pixels:
            raise LimitExceeded(f"frame {k + 1} is {w}x{h} pixels, over the {settings.max_image_pixels} pixel limit (MMRAG_MAX_IMAGE_PIXELS)")
        total += w * h
    if total > 10 * settings.max_image_pixels:
        raise LimitExceeded(f"{n} frames of {total} pixels in all, over ten times MMRAG_MAX_IMAGE_PIXELS")
    img.seek(0)
    return n


def image_fits(width: int, height: int, settings: Settings) -> bool:
    return width * height <= settings.max_image_pixels
