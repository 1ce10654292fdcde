"""Everything a request needs, built once per process from the settings."""

from __future__ import annotations

from functools import cached_property

from app.answer import QueryPipeline
from app.retrieval import HybridRetriever
from indexes.factory import open_store
from ingest.pipeline import Ingestor
from mmrag.embedding import get_image_embedder, get_text_embedder
from mmrag.embedding.factory import text_options
from mmrag.settings import Settings


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = open_store(settings)

    @cached_property
    def text(self):
        return get_text_embedder(self.settings.text_model, self.settings.embed_batch_size, **text_options(self.settings))

    @cached_property
    def image(self):
        return get_image_embedder(self.settings.image_model, self.settings.image_pretrained, str(self.settings.model_cache))

    @cached_property
    def generator(self):
        from app.generation.factory import make_generator

        return make_generator(self.settings, self.text, self.store.sentence_vectors)

    @cached_property
    def reranker(self):
        if not self.settings.cross_encoder:
            return None
        from app.rerank import CrossEncoderReranker

        s = self.settings
        return CrossEncoderReranker(s.cross_encoder, s.cross_encoder_top_n, s.cross_encoder_weight, s.cross_encoder_inputs,
                                    s.cross_encoder_sentences, cache_dir=s.model_cache, runtime=s.cross_encoder_runtime,
                                    int8=s.cross_encoder_int8, threads=s.cross_encoder_threads,
                                    top_sentences=s.cross_encoder_top_sentences,
                                    top_candidates=s.cross_encoder_top_candidates,
                                    first_alone=s.cross_encoder_first_alone)

    @cached_property
    def pages(self):
        from app.pages import PageImages

        return PageImages(self.store, self.settings)

    @cached_property
    def pipeline(self) -> QueryPipeline:
        return QueryPipeline(HybridRetriever(self.store, self.settings, self.text, self.image, self.reranker), self.generator)

    @cached_property
    def ingestor(self) -> Ingestor:
        # its own text model instance (None: loaded on first use), so queries never queue behind ingestion;
        # and at least one parse worker: the time and memory budgets that keep a hostile upload from
        # taking the server down exist only in workers
        settings = self.settings if self.settings.parse_workers > 0 else self.settings.model_copy(update={"parse_workers": 1})
        return Ingestor(self.store, settings, None, self.image)

    def batch_ingestor(self) -> Ingestor:
        """For `mmrag ingest` and `mmrag reembed`: its models load on first use (a batch of unchanged
        files loads none) and parse workers follow MMRAG_PARSE_WORKERS."""
        return Ingestor(self.store, self.settings)

    def close(self) -> None:
        """Stop the parse workers (they would die with the process anyway)."""
        if "ingestor" in self.__dict__:
            self.ingestor.close()

    def warm_up(self) -> None:
        """Load the models now, so the first query does not pay for it. Besides the pipeline's models that
        is the text model's session for questions (passages have their own; ~0.14 s) and jieba's dictionary
        (~0.5 s), which the sentence feature needs for any collection holding Chinese text, even to rank an
        English question: without these the samples' first /query took ~0.8 s and the next ~0.1 s. jieba
        costs every server ~0.6 s of start-up and ~70 MB, also where no collection holds Chinese; knowing
        that would take a scan of the stored texts or every collection's BM25 vocabulary, so it loads always."""
        from indexes.tokenize import tokenize

        _ = self.pipeline
        self.text.embed(["warm up"], kind="query")
        tokenize("预热")
