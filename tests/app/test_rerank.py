"""The cross-encoder stage: the packaged sentence reranker by default, any CrossEncoder folder by the same path."""

import numpy as np
import pytest

from app.rerank import CrossEncoderReranker
from app.retrieval import HybridRetriever
from mmrag import reranker as packaged
from tests.conftest import MODEL_CACHE


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    """A CrossEncoder folder with an untrained head: checks the path for user models, not ranking."""
    from sentence_transformers import CrossEncoder

    from mmrag.embedding.text import resolve_text_model

    path = tmp_path_factory.mktemp("ce") / "tiny-ce"
    CrossEncoder(resolve_text_model("packaged:all-MiniLM-L6-v2"), num_labels=1, device="cpu").save(str(path))
    return str(path)


@pytest.fixture(scope="module")
def sentence_reranker():
    return CrossEncoderReranker(packaged.BUILTIN, cache_dir=MODEL_CACHE)


def test_a_user_cross_encoder_reads_whole_passages(ingestor, fixtures, settings, text_embedder, tiny_cross_encoder):
    ingestor.ingest_paths([fixtures["docx"], fixtures["pdf"], fixtures["txt"]], "c", progress=False)
    plain = HybridRetriever(ingestor.store, settings, text_embedder).retrieve("iron content of volcanic soil", "c", 5)
    reranker = CrossEncoderReranker(tiny_cross_encoder, top_n=5)
    assert reranker.inputs == "passage"
    result = HybridRetriever(ingestor.store, settings, text_embedder, reranker=reranker).retrieve("iron content of volcanic soil", "c", 5)
    assert {h.unit.id for h in result.hits} == {h.unit.id for h in plain.hits}
    assert all("cross_encoder" in h.features for h in result.hits)
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)
    assert result.timings["cross_encoder_ms"] > 0


def test_the_packaged_reranker_is_built_once_from_the_delta(tmp_path):
    path = packaged.resolve(packaged.BUILTIN, tmp_path)
    assert (tmp_path / "models").is_dir() and path.startswith(str(tmp_path / "models"))
    stamp = (packaged.Path(path) / "config.json").stat().st_mtime_ns
    assert packaged.resolve(packaged.BUILTIN, tmp_path) == path
    assert (packaged.Path(path) / "config.json").stat().st_mtime_ns == stamp  # not rebuilt
    assert not list((tmp_path / "models").glob(".building-*"))
    assert packaged.resolve("cross-encoder/ms-marco-MiniLM-L6-v2", tmp_path) == "cross-encoder/ms-marco-MiniLM-L6-v2"
    meta = packaged.delta_meta()
    assert meta["inputs"] == "sentences" and meta["base"] == "all-MiniLM-L6-v2"


# Questions against one answering sentence and sentences on the same topic that do not answer: the
# choice between paragraphs of one article that the bi-encoder features get wrong most often.
CASES = [
    ("When did the bridge open to traffic?",
     ["The bridge opened to traffic in 1932, after six years of construction.",
      "The bridge is painted grey and crosses the harbour between the two halves of the city.",
      "Traffic on the bridge is heaviest in the morning, when commuters drive into the centre."], 0),
    ("How many people live in the valley?",
     ["The valley is known for its vineyards and its mild climate.",
      "About 40,000 people live in the valley, most of them in the three market towns.",
      "People first settled the valley in the Bronze Age, as the burial mounds show."], 1),
    ("Who designed the cathedral's dome?",
     ["The dome of the cathedral was designed by the architect Filippo Brunelleschi.",
      "The cathedral's dome is the largest brick dome ever built.",
      "Visitors can climb the 463 steps to the top of the dome."], 0),
]


def test_the_packaged_reranker_prefers_the_sentence_that_answers(sentence_reranker):
    assert sentence_reranker.inputs == "sentences"
    for question, sentences, answer in CASES:
        scores = sentence_reranker.model.predict([(question, s) for s in sentences], show_progress_bar=False)
        assert int(np.argmax(scores)) == answer, (question, scores)


def test_the_sentence_stage_reads_each_candidates_best_sentences(ingestor, fixtures, settings, text_embedder, sentence_reranker):
    ingestor.ingest_paths([fixtures["docx"], fixtures["pdf"], fixtures["txt"]], "c", progress=False)
    retriever = HybridRetriever(ingestor.store, settings, text_embedder, reranker=sentence_reranker)
    result = retriever.retrieve("iron content of volcanic soil", "c", 5)
    assert result.hits and result.timings["cross_encoder_ms"] > 0
    several = [h for h in result.hits if h.sentences]
    assert several, "the fixtures have passages of several sentences"
    for h in several:
        assert all(s in h.unit.text for s in h.sentences) and len(h.sentences) <= 3
    pairs, owner = sentence_reranker._pairs("q", result.hits)
    assert len(pairs) == sum(min(2, len(h.sentences)) if h.sentences else 1 for h in result.hits[:sentence_reranker.top_n])
    assert all("cross_encoder" in h.features for h in result.hits)


def test_the_english_reranker_leaves_chinese_to_the_fused_order(ingestor, fixtures, settings, text_embedder, sentence_reranker):
    ingestor.ingest_paths([fixtures["zh_txt"], fixtures["txt"]], "zh", progress=False)
    plain = HybridRetriever(ingestor.store, settings, text_embedder).retrieve("长江有多长", "zh", 5)
    result = HybridRetriever(ingestor.store, settings, text_embedder, reranker=sentence_reranker).retrieve("长江有多长", "zh", 5)
    assert result.hits and "cross_encoder_ms" in result.timings
    assert [h.unit.id for h in result.hits] == [h.unit.id for h in plain.hits]
    assert not any("cross_encoder" in h.features for h in result.hits)


def test_one_sentence_ranks_and_the_leading_candidates_read_two(ingestor, fixtures, settings, text_embedder,
                                                                sentence_reranker):
    import copy

    ingestor.ingest_paths([fixtures["docx"], fixtures["pdf"], fixtures["txt"]], "c", progress=False)
    question = "What do farmers grow on the slopes of Etna?"

    def retrieve(per_unit, top_sentences, top_candidates):
        r = copy.copy(sentence_reranker)
        r.per_unit, r.top_per_unit, r.top_candidates = per_unit, top_sentences, top_candidates
        return HybridRetriever(ingestor.store, settings, text_embedder, reranker=r).retrieve(question, "c", 5).hits

    one, two, lead = retrieve(1, 1, 0), retrieve(2, 2, 0), retrieve(1, 2, 1)
    top = lead[0]
    assert len(top.sentences) >= 2, "the fixture's best passage has several sentences"
    assert top.unit.id == one[0].unit.id == two[0].unit.id
    both = sentence_reranker.model.predict([(question, s) for s in top.sentences[:2]])
    # the first source is scored on its best two sentences, as when every candidate reads two (int8: the batch
    # sets the activation scale, so scores move a little with the pairs scored beside them)
    assert top.features["cross_encoder"] == pytest.approx(float(np.max(both)), abs=0.05)
    assert top.features["cross_encoder"] == pytest.approx(two[0].features["cross_encoder"], abs=0.05)
    assert top.features["cross_encoder"] >= one[0].features["cross_encoder"] - 1e-6
    ones = {h.unit.id: h.features["cross_encoder"] for h in one}
    for h in lead[1:]:  # the others as read on one sentence
        assert h.features["cross_encoder"] == pytest.approx(ones[h.unit.id])
    every = retrieve(1, 2, 10)  # every candidate reading its next sentence too: the two-sentence scores
    twos = {h.unit.id: h.features["cross_encoder"] for h in two}
    assert all(h.features["cross_encoder"] == pytest.approx(twos[h.unit.id], abs=0.05) for h in every)


def test_the_first_sources_int8_score_is_read_alone_whatever_ranked_it(ingestor, fixtures, settings, text_embedder):
    """int8 scores depend on the pairs batched with them; the first source's, which the abstention bar is
    calibrated on, is read in a batch of its own, so one pass, two passes and two sentences each agree."""
    import copy

    ingestor.ingest_paths([fixtures["docx"], fixtures["pdf"], fixtures["txt"]], "c", progress=False)
    question = "What do farmers grow on the slopes of Etna?"
    int8 = CrossEncoderReranker(packaged.BUILTIN, cache_dir=MODEL_CACHE, int8=True, top_sentences=2, first_alone=True)
    assert int8.first_alone

    def first(per_unit, top_candidates, alone=True):
        r = copy.copy(int8)
        r.per_unit, r.top_candidates, r.first_alone = per_unit, top_candidates, alone
        return HybridRetriever(ingestor.store, settings, text_embedder, reranker=r).retrieve(question, "c", 5).hits[0]

    two_pass, every_two, one_pass = first(1, 3), first(2, 0), first(1, 0)
    # the fixtures hold this passage twice (DOCX and PDF): which copy is first is a tie, its text is not
    assert two_pass.unit.text == every_two.unit.text == one_pass.unit.text
    alone = int8.model.predict([(question, s) for s in two_pass.sentences[:2]])
    assert two_pass.features["cross_encoder"] == float(np.max(alone))
    assert every_two.features["cross_encoder"] == one_pass.features["cross_encoder"] == two_pass.features["cross_encoder"]
    batched = first(1, 3, alone=False)  # scored beside the other candidates' pairs: close, not equal
    assert batched.features["cross_encoder"] == pytest.approx(two_pass.features["cross_encoder"], abs=0.5)
