"""The fused features on a real store: real parsing, the default embedder, real BM25 and FAISS."""

import numpy as np

from app.retrieval import HybridRetriever
from ingest.chunking import maxsim_texts

# Two paragraphs of one article. In the first, the sentence that answers the question both means what
# it asks and holds its rare word ("Ketterer"). In the second, one sentence is about the same thing and
# another holds "Ketterer", so each sentence-level feature taken apart is won there too.
ANSWER = ("The bridge was opened to traffic in 1932. Its steel arch was designed by the engineer Ketterer. "
          "Trams crossed it until the line closed.")
DISTRACTOR = ("The bridge's steel arch was designed to carry two railway tracks. Ketterer later lived in Basel. "
              "The old ferry stopped running when the bridge opened.")
QUESTION = "Who designed the steel arch of the bridge, Ketterer?"


def test_sentence_feature_is_the_best_sentence_by_cosine_plus_weighted_coverage(ingestor, settings, text_embedder, tmp_path):
    for name, text in (("answer.txt", ANSWER), ("distractor.txt", DISTRACTOR)):
        (tmp_path / name).write_text(text)
    ingestor.ingest_paths([tmp_path / "answer.txt", tmp_path / "distractor.txt"], "c", progress=False)
    retriever = HybridRetriever(ingestor.store, settings, text_embedder)
    cands = retriever.candidates(QUESTION, "c", 10)
    assert len(cands.ids) == 2

    # Recomputed here from its definition: sentences embedded again, coverage from BM25's idf weights.
    bm25 = ingestor.store.indexes(ingestor.store.collection_id("c")).bm25
    weights = bm25.coverage_weights(QUESTION)
    q = text_embedder.embed([QUESTION], kind="query")[0]
    units = ingestor.store.units(list(cands.ids))
    vals, present = cands.features["sentence"]
    for i, uid in enumerate(cands.ids):
        sentences = maxsim_texts(units[int(uid)].text)
        assert len(sentences) == 3
        cos = text_embedder.embed(sentences, kind="sentence") @ q  # as ingestion embedded them (int8 by default)
        cov = np.array([sum(weights.get(t, 0.0) for t in set(bm25.tokenizer(s))) for s in sentences]) / sum(weights.values())
        assert present[i]
        # int8 sentence vectors (the default) scale activations per batch, so a sentence's vector moves with the
        # texts it was embedded beside (~3e-3 in cosine here); fp32 batching moved the 4-bit model by ~1e-5
        assert abs(vals[i] - np.max(cos + settings.sentence_coverage_weight * cov)) < 6e-3

    by_name = {units[int(u)].document_id: i for i, u in enumerate(cands.ids)}
    docs = {d.file_name: d.id for d in ingestor.store.documents(ingestor.store.collection_id("c"))}
    answer, distractor = by_name[docs["answer.txt"]], by_name[docs["distractor.txt"]]
    assert vals[answer] > vals[distractor]
    hits = retriever.retrieve(QUESTION, "c", 2, weights={"sentence": 1.0, "bm25": 0, "coverage": 0, "dense": 0, "maxsim": 0}).hits
    assert hits[0].unit.document_id == docs["answer.txt"] and "sentence" in hits[0].features


def test_sentence_feature_falls_back_to_the_unit_when_it_has_one_sentence(ingestor, settings, text_embedder, tmp_path):
    (tmp_path / "one.txt").write_text("The lighthouse keeper lit the lamp at dusk.")
    ingestor.ingest_paths([tmp_path / "one.txt"], "c", progress=False)
    cands = HybridRetriever(ingestor.store, settings, text_embedder).candidates("when was the lamp lit", "c", 10)
    dense, sentence = cands.features["dense"][0], cands.features["sentence"][0]
    # every query term but the question words is in the unit: coverage 1, so cosine + the full weight
    assert abs(sentence[0] - (dense[0] + settings.sentence_coverage_weight)) < 1e-6


def test_sentence_feature_is_not_computed_when_its_weight_is_zero(ingestor, settings, text_embedder, tmp_path):
    (tmp_path / "one.txt").write_text("The lighthouse keeper lit the lamp at dusk. The ships saw it from afar.")
    ingestor.ingest_paths([tmp_path / "one.txt"], "c", progress=False)
    off = settings.model_copy(update={"weight_sentence": 0.0})
    cands = HybridRetriever(ingestor.store, off, text_embedder).candidates("when was the lamp lit", "c", 10)
    assert "sentence" not in cands.features and "maxsim" in cands.features
