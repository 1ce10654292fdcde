from __future__ import annotations

from typing import Protocol

import numpy as np
from PIL import Image


class TextEmbedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: list[str], kind: str = "passage") -> np.ndarray:
        """L2-normalised float32 matrix, one row per text. ``kind`` is 'query', 'passage', or 'sentence'
        (a sentence of a passage, embedded as a passage; an engine may run it at lower precision)."""
        ...


class ImageEmbedder(Protocol):
    """An image-text model: images and texts land in one space."""

    name: str
    dim: int

    def embed_images(self, images: list[Image.Image]) -> np.ndarray: ...

    def embed_texts(self, texts: list[str]) -> np.ndarray: ...
