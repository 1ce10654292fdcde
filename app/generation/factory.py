"""Generation backends chosen by name (``MMRAG_LLM_BACKEND``)."""

from __future__ import annotations

from app.generation.base import Generator
from mmrag.embedding import TextEmbedder
from mmrag.settings import Settings

BACKENDS = ("extractive", "openai", "ollama")


def make_generator(settings: Settings, text: TextEmbedder) -> Generator:
    name = settings.llm_backend.lower()
    if name == "extractive":
        from app.generation.extractive import ExtractiveGenerator

        return ExtractiveGenerator(text)
    if name in ("openai", "ollama"):
        from app.generation.llm import make_http_backend

        return make_http_backend(name, settings)
    raise ValueError(f"unknown LLM backend {settings.llm_backend!r}: choose one of {', '.join(BACKENDS)}")
