"""bench.reranker_passes: the rankings it compares, from one set of scores."""

from bench.reranker_passes import mrr, ranking


def row():
    # candidate 2's second sentence is the one that answers; its first sentence scores low
    return {"fused": [3.0, 2.0, 1.9, 1.0], "s1": [1.0, 0.5, -2.0, 0.0], "s2": [None, 0.2, 6.0, -1.0],
            "unit": [10, 11, 12, 13], "doc": ["a", "b", "c", "d"], "relevant": {"c"}}


def test_two_sentences_each_finds_the_answering_sentence():
    assert list(ranking(row(), None, 2.0))[0] == 2


def test_the_second_pass_rereads_only_the_leading_candidates():
    r = row()
    assert list(ranking(r, 0, 2.0))[0] == 0  # one sentence each: the answering sentence is never read
    assert list(ranking(r, 2, 2.0))[0] == 0  # candidate 2 ranks last on one sentence: outside the lead of 2
    assert list(ranking(r, 4, 2.0)) == list(ranking(r, None, 2.0))  # every candidate re-read: two sentences each
    assert mrr(r, ranking(r, None, 2.0)) == 1.0 and mrr(r, ranking(r, 0, 2.0)) < 1.0
