"""Image files (PNG, JPEG, TIFF, GIF, BMP, WebP): one image unit per frame, plus OCR text."""

from __future__ import annotations

import io

from PIL import ImageSequence

from ingest.blocks import Block
from ingest.limits import check_pages, open_image
from ingest.ocr import OcrEngine, lines_to_paragraphs
from mmrag.settings import Settings

MIN_OCR_CHARS = 6  # fewer recognised characters are mostly noise on a photo, not text


def parse_image(data: bytes, settings: Settings, ocr: OcrEngine | None) -> list[Block]:
    img = open_image(data, settings)
    frames = [f.copy() for f in ImageSequence.Iterator(img)] if getattr(img, "n_frames", 1) > 1 else [img]
    if img.format == "GIF":
        frames = frames[:1]  # an animation is one picture
    check_pages(len(frames), settings)
    blocks: list[Block] = []
    for page, frame in enumerate(frames, start=1):
        if len(frames) == 1 and img.format in ("PNG", "JPEG"):
            payload, ext = data, "jpg" if img.format == "JPEG" else "png"
        else:
            buf = io.BytesIO()
            frame.convert("RGB").save(buf, format="PNG")
            payload, ext = buf.getvalue(), "png"
        paragraphs = lines_to_paragraphs(ocr.read(frame)) if ocr is not None else []
        ocr_text = "\n".join(t for t, _ in paragraphs)
        w, h = frame.size
        blocks.append(Block("image", page=page, bbox=[0, 0, w, h], image=payload, image_ext=ext,
                            ocr_text=ocr_text if len(ocr_text) >= MIN_OCR_CHARS else None))
        if len(ocr_text) >= MIN_OCR_CHARS:
            # A scan saved as an image is a text document: its words are searchable passages too.
            blocks.extend(Block("paragraph", t, page=page, bbox=b, meta={"ocr": True}) for t, b in paragraphs)
    return blocks
