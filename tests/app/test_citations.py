"""An LLM's [n] citations are checked against what source n says."""

from __future__ import annotations

from app.generation.citations import check_citations

SOURCES = {1: "The reactor was shut down in 1986 after the accident at the plant.",
           2: "Solar panels should be cleaned twice a year, in spring and in autumn.",
           3: "长江全长约六千三百公里，是中国最长的河流。"}


def test_a_supported_citation_stays():
    text, fixes = check_citations("Panels are cleaned twice a year [2]. The reactor shut down in 1986 [1].", SOURCES)
    assert text == "Panels are cleaned twice a year [2]. The reactor shut down in 1986 [1]." and fixes == []


def test_a_citation_of_the_wrong_source_moves_to_the_one_that_says_it():
    text, fixes = check_citations("Clean the panels twice a year, in spring and autumn [1].", SOURCES)
    assert text == "Clean the panels twice a year, in spring and autumn [2]."
    assert [(f.cited, f.now) for f in fixes] == [(1, 2)] and fixes[0].best > fixes[0].support


def test_a_citation_no_source_supports_is_removed_and_one_past_the_sources_too():
    text, fixes = check_citations("The sky over the plant is green [1]. Panels are cleaned twice [7].", SOURCES)
    assert text == "The sky over the plant is green. Panels are cleaned twice [2]."
    assert [(f.cited, f.now) for f in fixes] == [(1, None), (7, 2)]


def test_uncited_sentences_and_duplicate_markers():
    text, fixes = check_citations("I am not sure. The reactor was shut down in 1986 [1][1].", SOURCES)
    assert text == "I am not sure. The reactor was shut down in 1986 [1]." and fixes == []


def test_chinese_sentences_are_checked_by_their_words():
    text, fixes = check_citations("长江全长约六千三百公里 [1]。", SOURCES)
    assert text == "长江全长约六千三百公里 [3]。" and [(f.cited, f.now) for f in fixes] == [(1, 3)]
