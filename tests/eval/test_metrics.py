"""Metrics against values worked out by hand, and against the reference implementations."""

import pytest

from eval import metrics


def test_bleu_by_hand():
    # unigram 8/8, bigram 6/7, trigram 5/6, 4-gram 4/5; brevity penalty exp(1 - 9/8)
    hyp = "the quick brown fox jumps over the dog"
    ref = "the quick brown fox jumps over the lazy dog"
    expected = 100 * 2.718281828 ** (1 - 9 / 8) * (1 * 6 / 7 * 5 / 6 * 4 / 5) ** 0.25
    assert metrics.corpus_bleu([hyp], [[ref]]) == pytest.approx(expected, abs=0.01)
    assert metrics.corpus_bleu(["a b c d"], [["a b c d"]]) == pytest.approx(100.0)


def test_bleu_with_uneven_reference_counts_matches_sacrebleu():
    import sacrebleu

    preds = ["the cat sat on the mat", "a dog barked loudly at night"]
    refs = [["the cat sat on the mat", "a cat sat on a mat"], ["the dog barked at night"]]
    expected = sacrebleu.corpus_bleu(preds, [["the cat sat on the mat", "the dog barked at night"], ["a cat sat on a mat", ""]]).score
    assert metrics.corpus_bleu(preds, refs) == pytest.approx(expected)


def wordnet_available() -> bool:
    try:
        metrics.ensure_wordnet()
        return True
    except metrics.MetricSetupError:
        return False


needs_wordnet = pytest.mark.skipif(not wordnet_available(), reason="WordNet not set up: apt-get install wordnet-base wordnet-sense-index && python -m eval.wordnet")


@needs_wordnet
def test_meteor_by_hand_and_against_nltk():
    # identical 3-word sentences: F-mean 1, one chunk: penalty 0.5 * (1/3)**3
    assert metrics.meteor("the cat sat", ["the cat sat"]) == pytest.approx(1 - 0.5 / 27, abs=1e-4)
    from nltk.translate.meteor_score import meteor_score

    hyp, refs = "It is a guide to action", ["It is a guide to action that ensures", "It is the guiding principle"]
    assert metrics.meteor(hyp, refs) == pytest.approx(meteor_score([r.lower().split() for r in refs], hyp.lower().split()))


def test_meteor_without_wordnet_says_how_to_set_it_up(tmp_path):
    import os
    import subprocess
    import sys

    code = ("import nltk; nltk.data.path[:] = []\n"
            "from eval.metrics import meteor, MetricSetupError\n"
            "try:\n    meteor('a', ['a'])\nexcept MetricSetupError as e:\n    print('ERR', e)\n")
    env = {**os.environ, "NLTK_DATA": str(tmp_path), "MMRAG_NLTK_DATA": str(tmp_path / "none")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path.parent).stdout
    if "ERR" not in out:
        pytest.skip("WordNet is installed system-wide for NLTK here")
    assert "wordnet-base" in out and "nltk.download" in out


def test_exact_match_and_f1_by_hand():
    assert metrics.exact_match("The Eiffel Tower!", ["eiffel tower"]) == 1.0
    assert metrics.token_f1("the tall tower in paris", ["eiffel tower paris"]) == pytest.approx(2 * (2 / 4) * (2 / 3) / (2 / 4 + 2 / 3))


def test_chinese_answers_are_scored_by_character():
    """DRCD-style: a near miss in Chinese earns partial F1 (split on spaces it would be one token, F1 0)."""
    assert metrics.answer_tokens("1898年，北京 University!") == ["1898", "年", "北", "京", "university"]
    assert metrics.exact_match("「北京大學」。", ["北京大學"]) == 1.0
    assert metrics.token_f1("北京大學", ["北京"]) == pytest.approx(2 * (2 / 4) * 1.0 / (2 / 4 + 1.0))
    assert metrics.token_f1("上海", ["北京"]) == 0.0
    assert metrics.sentence_bleu("北京大學在北京", ["北京大學在北京"]) == pytest.approx(100.0)
    assert metrics.answer_tokens("The Eiffel Tower!") == ["eiffel", "tower"]  # English as SQuAD scores it


def test_retrieval_metrics_by_hand():
    ranking = ["a", "b", "c", "d"]
    assert metrics.recall_at(ranking, {"c", "x"}, 5) == 0.5
    assert metrics.mrr_at(ranking, {"c"}) == pytest.approx(1 / 3)
    assert metrics.ndcg_at(ranking, {"b"}) == pytest.approx(1 / 1.5849625)
    assert metrics.doc_ranking(["a", "a", "b", "a", "c"]) == ["a", "b", "c"]


def test_page_hits_count_an_evidence_page_among_the_first_distinct_pages():
    from eval.run import Prediction, page_scores

    retrieved = [{"file_name": "a.pdf", "page": 3}, {"file_name": "a.pdf", "page": 3}, {"file_name": "b.pdf", "page": 5},
                 {"file_name": "a.pdf", "page": 9}]
    p = Prediction("q", "?", [], ["a.pdf"], retrieved=retrieved, meta={"evidence_pages": [9]})
    assert page_scores(p) == {"page_hit@1": 0.0, "page_hit@5": 1.0, "page_hit@10": 1.0}  # the third distinct page
    p.meta["evidence_pages"] = [5]  # page 5 of a.pdf, not of b.pdf
    assert page_scores(p)["page_hit@10"] == 0.0


def test_page_hits_by_unit_type_rank_each_kind_alone_and_reach_the_report(tmp_path):
    from eval.report import write_outputs
    from eval.run import Prediction, aggregate, score_prediction

    retrieved = [{"file_name": "a.pdf", "page": p, "type": t, "score": 1.0} for p, t in [(1, "text"), (2, "text"), (3, "text"), (4, "text"),
                                                                          (5, "text"), (7, "image"), (6, "table")]]
    p = Prediction("q", "?", [], ["a.pdf"], retrieved=retrieved, meta={"evidence_pages": [7], "evidence_sources": ["Chart"]})
    score_prediction(p)
    out = aggregate([p], with_meteor=False)
    assert out["page_hit@5"] == 0.0  # the sixth distinct page
    assert out["page_hit@5_by_unit_type"] == {"text": 0.0, "table": 0.0, "image": 1.0}
    assert out["page_hit@5_by_source"] == {"Chart": {"questions": 1, "page_hit@5": 0.0}}
    write_outputs(tmp_path, "pages", {"default": (out, [p])}, "mmrag eval", "test machine")
    report = (tmp_path / "report.md").read_text()
    assert "| image | 1.000 |" in report and "| Chart | 1 | 0.000 |" in report


def test_a_table_joined_across_pages_counts_for_each_page():
    from eval.run import Prediction, page_scores

    retrieved = [{"file_name": "a.pdf", "page": 4, "pages": [4, 5], "type": "table"}]
    p = Prediction("q", "?", [], ["a.pdf"], retrieved=retrieved, meta={"evidence_pages": [5]})
    assert page_scores(p)["page_hit@1"] == 0.0 and page_scores(p)["page_hit@5"] == 1.0
