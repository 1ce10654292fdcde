"""The inverted index must give rank_bm25's scores exactly (it is the scoring reference)."""

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from indexes.bm25 import BM25Index
from indexes.tokenize import QUESTION_WORDS, tokenize

CORPUS = [
    "The quick brown fox jumps over the lazy dog",
    "A fox is a small omnivorous mammal",
    "Dogs and foxes are both canids; the dog is domesticated",
    "Paris is the capital and most populous city of France",
    "The Eiffel Tower is in Paris",
    "长江是中国最长的河流",
    "黄河是中国第二长的河流，the Yellow River",
    "the the the the the",
    "Completely unrelated text about quantum chromodynamics",
]
QUERIES = ["fox dog", "Paris capital", "the", "长江 河流", "Yellow River 黄河", "nothing matches zzz", "dog dog fox"]


def reference_scores(docs, query):
    return BM25Okapi([tokenize(d) for d in docs]).get_scores(tokenize(query))


@pytest.mark.parametrize("query", QUERIES)
def test_scores_equal_rank_bm25(query):
    index = BM25Index()
    index.add(enumerate(CORPUS))
    ids, scores = index.scores(query)
    np.testing.assert_allclose(scores, reference_scores(CORPUS, query)[ids], rtol=1e-6, atol=1e-9)


def test_after_removals_and_readds_scores_equal_a_fresh_reference():
    index = BM25Index()
    index.add((i + 100, t) for i, t in enumerate(CORPUS))
    index.remove([101, 105])
    index.add([(200, "a new fox appears in Paris")])
    index.add([(103, CORPUS[3] + " again")])  # replaced text under the same id
    live = {i + 100: t for i, t in enumerate(CORPUS) if i not in (1, 5)}
    live[200] = "a new fox appears in Paris"
    live[103] = CORPUS[3] + " again"
    ids, scores = index.scores("fox Paris")
    ref = dict(zip(live, reference_scores(list(live.values()), "fox Paris")))
    assert sorted(ids.tolist()) == sorted(live)
    np.testing.assert_allclose(scores, [ref[i] for i in ids], rtol=1e-6)
    coverage = dict(zip(live, reference_coverage(list(live.values()), "fox Paris")))
    np.testing.assert_allclose(index.score_all("fox Paris").coverage_of(ids), [coverage[i] for i in ids], rtol=1e-9)


def test_search_returns_best_first_and_skips_non_matching(tmp_path):
    index = BM25Index()
    index.add(enumerate(CORPUS))
    ids, scores = index.search("Eiffel Paris", k=5)
    assert ids[0] == 4 and set(ids) == {3, 4} and all(np.diff(scores) <= 0)
    ids, _ = index.search("Eiffel Paris", k=5, allowed=np.array([3]))
    assert ids.tolist() == [3]


def test_save_and_load_round_trip(tmp_path):
    index = BM25Index()
    index.add(enumerate(CORPUS))
    index.remove([2])
    index.save(tmp_path / "bm25.npz")
    loaded = BM25Index.load(tmp_path / "bm25.npz")
    for q in QUERIES:
        a_ids, a = index.scores(q)
        b_ids, b = loaded.scores(q)
        assert a_ids.tolist() == b_ids.tolist()
        np.testing.assert_allclose(a, b)


def test_mixed_language_tokenization():
    assert tokenize("Hello 长江大桥 World") [:1] == ["hello"]
    toks = tokenize("Hello 长江大桥 World")
    assert toks[-1] == "world" and "长江" in "".join(toks)


def reference_coverage(docs, query):
    """Written out from the definition: idf-weighted share of the query's distinct terms a document holds."""
    tokenized = [set(tokenize(d)) for d in docs]
    n = len(docs)

    def weight(term):
        df = sum(term in d for d in tokenized)
        return np.log1p((n - df + 0.5) / (df + 0.5))

    terms = set(tokenize(query)) - QUESTION_WORDS
    total = sum(weight(t) for t in terms)
    return np.array([sum(weight(t) for t in terms & d) / total if total else 0.0 for d in tokenized])


@pytest.mark.parametrize("query", QUERIES)
def test_coverage_matches_its_definition(query):
    index = BM25Index()
    index.add(enumerate(CORPUS))
    result = index.score_all(query)
    np.testing.assert_allclose(result.coverage_of(result.ids), reference_coverage(CORPUS, query)[result.ids], rtol=1e-9)
    np.testing.assert_allclose(result.coverage_of(np.array([4, 0, 99])),
                               [*reference_coverage(CORPUS, query)[[4, 0]], 0.0])  # 99: not in the index


def test_coverage_counts_distinct_terms_not_repetitions():
    # one passage repeats the topic word; the other holds most query terms once
    docs = ["Normandy Normandy Normandy Normandy duchy history of Normandy and the Normans",
            "In 911 the Viking leader Rollo signed a treaty with king Charles of Normandy",
            *CORPUS]
    index = BM25Index()
    index.add(enumerate(docs))
    result = index.score_all("Which king signed a treaty with Rollo about Normandy")
    coverage = result.coverage_of(np.array([0, 1]))
    assert coverage[1] > 0.5 and 0 < coverage[0] < 0.3
    once = BM25Index()
    once.add(enumerate(["duchy history of Normandy and the Normans", *docs[1:]]))
    assert once.score_all("Which king signed a treaty with Rollo about Normandy").coverage_of([0])[0] == pytest.approx(coverage[0])


def test_question_words_do_not_count_towards_coverage():
    index = BM25Index()
    index.add(enumerate(CORPUS))
    result = index.score_all("What is the capital of France?")
    assert result.coverage_of(np.array([3]))[0] == pytest.approx(1.0)  # holds "capital" and "france"
    assert result.coverage_of(np.array([4]))[0] == 0.0  # holds only "the" and "is"
    assert result.of(np.array([4]))[0] > 0  # which BM25 still scores
