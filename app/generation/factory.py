"""Generation backends chosen by name (``MMRAG_LLM_BACKEND``)."""

from __future__ import annotations

from app.generation.base import Generator
from mmrag.embedding import TextEmbedder
from mmrag.settings import Settings

BACKENDS = ("reader", "extractive", "openai", "ollama", "local")


def make_generator(settings: Settings, text: TextEmbedder, stored_sentences=None) -> Generator:
    """``stored_sentences``: the store's ``sentence_vectors`` (unit ids -> vectors), which the
    extractive answer reuses instead of embedding those sentences again."""
    name = settings.llm_backend.lower()
    if name == "reader":
        from app.generation.extractive import ExtractiveGenerator
        from app.generation.reader import ReaderGenerator
        from mmrag.reader_e5 import BUILTIN as MULTILINGUAL
        from mmrag.reader_e5 import open_reader

        reader = open_reader(settings.reader_model, settings.model_cache, settings.reader_threads, settings.reader_int8)
        generator = ReaderGenerator(reader, ExtractiveGenerator(text, stored_sentences), settings.reader_threshold,
                                    settings.reader_sources, settings.reader_rank_penalty, settings.reader_relevance_weight,
                                    settings.reader_relevance_center, settings.reader_threshold_alone)
        generator.wordless = (settings.reader_multilingual_sources, settings.reader_multilingual_rank_penalty,
                              settings.reader_multilingual_threshold)
        if settings.reader_multilingual and settings.reader_model != MULTILINGUAL:
            import threading

            from mmrag.reader_e5 import E5SpanReader

            lock, held = threading.Lock(), []

            def load() -> E5SpanReader:  # on the first Chinese question: English-only services never hold it
                with lock:
                    if not held:
                        held.append(E5SpanReader(settings.model_cache, threads=settings.reader_threads,
                                                 int8=settings.reader_int8))
                    return held[0]

            generator.multilingual = load
        return generator
    if name == "extractive":
        from app.generation.extractive import ExtractiveGenerator

        return ExtractiveGenerator(text, stored_sentences)
    if name in ("openai", "ollama"):
        from app.generation.llm import make_http_backend

        return make_http_backend(name, settings)
    if name == "local":
        # llama.cpp's server started and supervised by mmrag, spoken to as any OpenAI-style server
        from app.generation.llm import make_http_backend
        from app.generation.local import shared_server

        server = shared_server(settings)
        local = settings.model_copy(update={"llm_url": server.url + "/v1", "llm_model": settings.local_model, "llm_api_key": ""})
        backend = make_http_backend("openai", local)
        backend.name = "local"
        return backend
    raise ValueError(f"unknown LLM backend {settings.llm_backend!r}: choose one of {', '.join(BACKENDS)}")
