"""Embedders behind small protocols; a factory picks one by name from settings."""

from mmrag.embedding.base import ImageEmbedder, TextEmbedder
from mmrag.embedding.factory import get_image_embedder, get_text_embedder

__all__ = ["ImageEmbedder", "TextEmbedder", "get_image_embedder", "get_text_embedder"]
