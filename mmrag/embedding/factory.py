"""Embedders chosen by name in settings, built once per process."""

from __future__ import annotations

from functools import lru_cache

from mmrag.embedding.base import ImageEmbedder, TextEmbedder


@lru_cache(maxsize=4)
def get_text_embedder(model: str, batch_size: int = 64) -> TextEmbedder:
    from mmrag.embedding.text import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(model, batch_size)


@lru_cache(maxsize=4)
def get_image_embedder(model: str, pretrained: str, cache_dir: str = "./data") -> ImageEmbedder | None:
    """``model`` 'none' turns image vectors off (images stay findable by caption, alt and OCR text)."""
    if model in ("", "none"):
        return None
    from mmrag.embedding.image import OpenClipEmbedder

    return OpenClipEmbedder(model, pretrained, cache_dir)
