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
    if total > 50 * 2**20 and total / packed > settings.max_zip_ratio:
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
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise LimitExceeded(f"decompression bomb: {exc}") from exc
    except LimitExceeded:
        raise
    except OSError as exc:
        raise CorruptDocument(f"image cannot be decoded ({exc})") from exc
    return img


def image_fits(width: int, height: int, settings: Settings) -> bool:
    return width * height <= settings.max_image_pixels
