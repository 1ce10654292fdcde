"""The cross-encoder stage loads a local CrossEncoder folder through sentence-transformers and reorders hits.

No ranking cross-encoder ships offline, so the test builds one from the packaged MiniLM with an
untrained head: it checks the code path (loading by path, scoring, merging), not ranking quality.
"""

import pytest

from app.rerank import CrossEncoderReranker
from app.retrieval import HybridRetriever


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    from sentence_transformers import CrossEncoder

    from mmrag.embedding.text import resolve_text_model

    path = tmp_path_factory.mktemp("ce") / "tiny-ce"
    CrossEncoder(resolve_text_model("packaged:all-MiniLM-L6-v2"), num_labels=1, device="cpu").save(str(path))
    return str(path)


def test_cross_encoder_stage_rescores_the_top_hits(ingestor, fixtures, settings, text_embedder, tiny_cross_encoder):
    ingestor.ingest_paths([fixtures["docx"], fixtures["pdf"], fixtures["txt"]], "c", progress=False)
    plain = HybridRetriever(ingestor.store, settings, text_embedder).retrieve("iron content of volcanic soil", "c", 5)
    reranker = CrossEncoderReranker(tiny_cross_encoder, top_n=5)
    result = HybridRetriever(ingestor.store, settings, text_embedder, reranker=reranker).retrieve("iron content of volcanic soil", "c", 5)
    assert {h.unit.id for h in result.hits} == {h.unit.id for h in plain.hits}
    assert all("cross_encoder" in h.features for h in result.hits)
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)
    assert result.timings["cross_encoder_ms"] > 0
